"""The two-stream network: areas wired by a species connectivity preset (gains per connection)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Output downsampling of each area relative to the input (architecture, not connectivity).
AREA_SCALE: dict[str, int] = {"V1": 2, "V2": 4, "V4": 8, "IT": 16, "MT": 8, "LIP": 16}
#: Channel multiplier of each area relative to ``width``.
AREA_WIDTH: dict[str, int] = {"V1": 1, "V2": 2, "V4": 4, "IT": 8, "MT": 4, "LIP": 8}
VENTRAL_HEAD, DORSAL_HEAD = "IT", "LIP"


class PresetError(ValueError):
    """A connectivity preset names unknown areas, is cyclic, or leaves an area without input."""


def parse_connectivity(connectivity: Mapping[str, Any]) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Validate a preset; return the areas in computation (topological) order and the edges ``{(src, dst): g}``.

    Errors name the culprits: unknown areas (in ``areas`` or in gains), malformed keys, negative or non-numeric
    gains, edges to or from areas not in ``areas``, cycles, missing heads (IT, LIP), areas with no non-zero input.
    """
    if not isinstance(connectivity, Mapping) or "gains" not in connectivity:
        raise PresetError(f"connectivity must be a dict with 'areas' and 'gains', got {connectivity!r:.200}")
    areas = list(connectivity.get("areas", AREA_SCALE))
    unknown = sorted(set(areas) - set(AREA_SCALE))
    edges: dict[tuple[str, str], float] = {}
    bad_keys = []
    for key, g in connectivity["gains"].items():
        parts = [p.strip() for p in str(key).split("->")]
        if len(parts) != 2 or not all(parts):
            bad_keys.append(str(key))
            continue
        try:
            g = float(g)
        except (TypeError, ValueError):
            raise PresetError(f"gain {key!r} is not a number: {g!r}") from None
        if not math.isfinite(g) or g < 0:
            raise PresetError(f"gain {key!r} must be finite and >= 0, got {g}")
        edges[(parts[0], parts[1])] = g
    if bad_keys:
        raise PresetError(f"gain keys must look like 'SRC->DST': {bad_keys}")
    unknown += sorted({a for e in edges for a in e if a not in AREA_SCALE and a != "input"} - set(unknown))
    if unknown:
        raise PresetError(f"unknown area names {unknown}; known areas: {list(AREA_SCALE)} (and 'input')")
    absent = sorted({a for e in edges for a in e if a not in areas and a != "input"})
    if absent:
        raise PresetError(f"gains use areas not listed in 'areas': {absent}")
    if any(dst == "input" for _, dst in edges):
        raise PresetError("no connection may end at 'input'")
    missing_heads = [h for h in (VENTRAL_HEAD, DORSAL_HEAD) if h not in areas]
    if missing_heads:
        raise PresetError(f"areas must include the heads {missing_heads}")
    if "V1" in areas and not any(src == "input" for src, _ in edges):
        edges[("input", "V1")] = 1.0
    order: list[str] = []
    done = {"input"}
    todo = list(areas)
    while todo:
        ready = [a for a in todo if all(s in done for (s, d) in edges if d == a)]
        if not ready:
            raise PresetError(f"connectivity has a cycle among {todo}")
        for a in ready:
            order.append(a)
            done.add(a)
            todo.remove(a)
    silent = [a for a in order if not any(g > 0 for (s, d), g in edges.items() if d == a)]
    if silent:
        raise PresetError(f"areas without any non-zero input: {silent}")
    return order, edges


def _edge_name(src: str, dst: str) -> str:
    return f"{src}__{dst}"


class TwoStreamNet(nn.Module):
    """Small convolutional two-stream network wired by a connectivity preset.

    Args:
        connectivity: a preset ``{"areas": [...], "gains": {"SRC->DST": g}}`` (the species presets of the config's ``twostream.species``).
        width: channels of V1; other areas scale by ``AREA_WIDTH``.
        in_channels: input channels (3 for images; 3 * frames for clips with frames stacked as channels).
        n_classes: ventral head outputs (object categories).
        dorsal_task: "position" (2D regression) or "direction" (motion direction as (cos, sin)).
    """

    def __init__(self, connectivity: Mapping[str, Any], width: int = 8, in_channels: int = 3, n_classes: int = 2,
                 dorsal_task: str = "position") -> None:
        super().__init__()
        if dorsal_task not in ("position", "direction"):
            raise PresetError(f"dorsal_task must be 'position' or 'direction', got {dorsal_task!r}")
        if width < 1 or in_channels < 1 or n_classes < 2:
            raise ValueError(
                f"need width >= 1, in_channels >= 1, n_classes >= 2; got {width}, {in_channels}, {n_classes}"
            )
        self.order, self.edges = parse_connectivity(connectivity)
        self.in_channels, self.n_classes, self.dorsal_task = in_channels, n_classes, dorsal_task
        ch = {a: width * AREA_WIDTH[a] for a in self.order} | {"input": in_channels}
        self.proj = nn.ModuleDict({_edge_name(s, d): nn.Conv2d(ch[s], ch[d], 1, bias=False) for s, d in self.edges})
        self.area = nn.ModuleDict({a: nn.Sequential(nn.Conv2d(ch[a], ch[a], 3, stride=2, padding=1, bias=False),
                                                    nn.BatchNorm2d(ch[a]), nn.ReLU(inplace=True)) for a in self.order})
        for (s, d), g in self.edges.items():
            self.register_buffer(f"gain_{_edge_name(s, d)}", torch.tensor(float(g)))
        self.ventral_head = nn.Linear(ch[VENTRAL_HEAD] * 4, n_classes)
        self.dorsal_head = nn.Linear(ch[DORSAL_HEAD] * 4, 2)

    def gain(self, src: str, dst: str) -> float:
        """The configured gain of ``src->dst`` (0 when absent)."""
        if (src, dst) not in self.edges:
            return 0.0
        return float(getattr(self, f"gain_{_edge_name(src, dst)}"))

    def forward(self, x: torch.Tensor, return_areas: bool = False):
        """``x`` (B, in_channels, H, W) -> (class logits (B, n_classes), dorsal output (B, 2)[, area outputs])."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"TwoStreamNet expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        out: dict[str, torch.Tensor] = {"input": x}
        for a in self.order:
            # input resolution of the area's stride-2 conv
            res = (max(1, math.ceil(2 * x.shape[-2] / AREA_SCALE[a])), max(1, math.ceil(2 * x.shape[-1] / AREA_SCALE[a])))
            total = 0
            for (s, d) in self.edges:
                if d != a:
                    continue
                g = getattr(self, f"gain_{_edge_name(s, d)}")
                src = out[s]
                if src.shape[-2:] != res:
                    shrink = src.shape[-2] >= res[0] and src.shape[-1] >= res[1]
                    src = F.adaptive_avg_pool2d(src, res) if shrink else F.interpolate(src, size=res)
                total = total + g * self.proj[_edge_name(s, d)](src)
            out[a] = self.area[a](total)
        logits = self.ventral_head(F.adaptive_avg_pool2d(out[VENTRAL_HEAD], 2).flatten(1))
        dorsal = self.dorsal_head(F.adaptive_avg_pool2d(out[DORSAL_HEAD], 2).flatten(1))
        if self.dorsal_task == "direction":
            dorsal = F.normalize(dorsal, dim=1)
        return (logits, dorsal, out) if return_areas else (logits, dorsal)


def to_input(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Images (B, C, H, W) or clips (B, C, T, H, W) as the net's (B, in_channels, H, W): clip frames are stacked as
    channels; an image is repeated as a static clip when ``in_channels`` is a multiple of its channels."""
    if x.ndim == 5:
        x = x.flatten(1, 2)
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W) or clips (B, C, T, H, W), got {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        if in_channels % x.shape[1]:
            raise ValueError(f"cannot map {x.shape[1]} input channels to the net's {in_channels}")
        x = x.repeat(1, in_channels // x.shape[1], 1, 1)
    return x


def direction_targets(y: torch.Tensor) -> torch.Tensor:
    """Motion direction as unit vectors (B, 2): angles (B,) in radians, or (B, 2) vectors (normalised)."""
    y = y.float()
    return torch.stack([y.cos(), y.sin()], 1) if y.ndim == 1 else F.normalize(y, dim=1)
