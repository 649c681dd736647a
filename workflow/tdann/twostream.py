"""Two-stream species model: shared V1/V2 stages that split into a ventral branch (V4 -> IT, object category) and a
dorsal branch (MT -> LIP, object position or motion direction), wired by a species connectivity preset.

The wiring is data: a preset ``{"areas": [...], "gains": {"SRC->DST": g, ...}}`` says which areas exist and how
strongly each feeds the next. The input of an area is ``sum_src gain[src->dst] * proj(resample(src output))``
(``proj`` a 1x1 convolution per connection, ``resample`` average pooling / interpolation to the area's input
resolution); the area then applies conv3x3 (stride 2) + BatchNorm + ReLU. A zero gain removes the connection's
contribution (and its gradient). The image enters through the pseudo-area ``input`` (``input->V1``, gain 1 unless
given). Presets come from config; ``default_presets()`` ships documented defaults.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import cycle
from typing import Any

import numpy as np
import pandas as pd
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


def default_presets() -> dict[str, dict[str, Any]]:
    """Default connectivity presets (YAML-able) for human, marmoset and mouse.

    These gains are *modelling choices* that encode qualitative anatomy, not measured weights:
    - human (and macaque): a deep hierarchy V1 -> V2 -> V4 -> IT and V2 -> MT -> LIP; V1 also projects directly to
      MT (layer 4B, a strong, fast magnocellular route) and weakly to V4.
    - marmoset: the same primate plan with a relatively larger, more direct V1 -> MT route (MT is large and
      prominent in the marmoset) and a slightly stronger V1 -> V4 projection.
    - mouse: a shallow hierarchy in which V1 projects directly and strongly to all higher visual areas; the area
      names stand for functional analogues (e.g. LM ~ V2/ventral, AL/RL/AM ~ dorsal), so V1 -> V4 and V1 -> MT
      shortcuts are strong and the V2 relay is weaker.
    """
    areas = ["V1", "V2", "V4", "IT", "MT", "LIP"]
    return {
        "human": {"areas": list(areas), "gains": {
            "V1->V2": 1.0, "V2->V4": 1.0, "V4->IT": 1.0, "V2->MT": 0.7, "MT->LIP": 1.0, "V1->V4": 0.1, "V1->MT": 0.5}},
        "marmoset": {"areas": list(areas), "gains": {
            "V1->V2": 1.0, "V2->V4": 0.9, "V4->IT": 1.0, "V2->MT": 0.5, "MT->LIP": 1.0, "V1->V4": 0.2, "V1->MT": 0.8}},
        "mouse": {"areas": list(areas), "gains": {
            "V1->V2": 0.6, "V2->V4": 0.4, "V4->IT": 0.8, "V2->MT": 0.3, "MT->LIP": 0.8, "V1->V4": 0.8, "V1->MT": 0.8}},
    }


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
        connectivity: a preset ``{"areas": [...], "gains": {"SRC->DST": g}}`` (see ``default_presets``).
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
            res = tuple(max(1, math.ceil(2 * n / AREA_SCALE[a])) for n in x.shape[-2:])
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


def _sheet_positions(c: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Unit positions (c*h*w, 2) on a unit sheet, channel-major: each location's anchor on a regular grid, each
    channel jittered uniformly within the anchor's cell (a small form of docs/reference.md §2)."""
    yy, xx = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    anchor = torch.stack([xx, yy], -1).reshape(1, h * w, 2).expand(c, -1, -1)
    jitter = (torch.rand(c, h * w, 2, generator=gen) - 0.5) * torch.tensor([1 / w, 1 / h])
    return (anchor + jitter).reshape(-1, 2)


def spatial_loss(features: torch.Tensor, positions: torch.Tensor, window: float, gen: torch.Generator,
                 max_units: int = 256) -> torch.Tensor:
    """SL_Rel on one random square window (docs/reference.md §2): ``(1 - pearson(r_tri, D_tri)) / 2`` with r the
    unit correlations across the batch and ``D = 1 / (d + 1)``. Distances are in sheet units (side 1)."""
    f = features.flatten(1)
    lo = torch.rand(2, generator=gen) * (1 - window)
    inside = ((positions >= lo) & (positions <= lo + window)).all(1).nonzero().squeeze(1)
    if len(inside) > max_units:
        inside = inside[torch.randperm(len(inside), generator=gen)[:max_units]]
    if len(inside) < 3:
        return features.new_zeros(())
    r = f[:, inside.to(f.device)]
    r = (r - r.mean(0)) / (r.std(0) + 1e-6)
    corr = r.T @ r / (r.shape[0] - 1)
    pos = positions[inside].to(f.device)
    dist = 1.0 / (torch.cdist(pos, pos) + 1.0)
    i, j = torch.tril_indices(len(inside), len(inside), offset=-1, device=f.device)
    a, b = corr[i, j], dist[i, j]
    a, b = a - a.mean(), b - b.mean()
    pearson = (a * b).sum() / (a.norm() * b.norm() + 1e-8)
    return (1 - pearson) / 2


def _evaluate(net: TwoStreamNet, image_batches: Iterable, dorsal_batches: Iterable, device: str) -> dict[str, float]:
    """Ventral accuracy and dorsal error (position: mean Euclidean distance in target units; direction: mean
    absolute angular error in degrees) over the given batches, in eval mode."""
    net.eval()
    correct = total = 0
    errs = []
    with torch.no_grad():
        for x, y in image_batches:
            logits, _ = net(to_input(x.to(device), net.in_channels))
            correct += int((logits.argmax(1) == y.to(device)).sum())
            total += len(y)
        for x, y in dorsal_batches:
            _, pred = net(to_input(x.to(device), net.in_channels))
            y = y.to(device)
            if net.dorsal_task == "position":
                errs.append(torch.linalg.norm(pred - y.float(), dim=1))
            else:
                t = direction_targets(y)
                cos = (pred * t).sum(1).clamp(-1, 1)
                errs.append(torch.rad2deg(torch.acos(cos)))
    net.train()
    dorsal_error = float(torch.cat(errs).mean()) if errs else float("nan")
    return {"ventral_acc": correct / max(total, 1), "dorsal_error": dorsal_error}


def train_two_stream(
    net: TwoStreamNet,
    image_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    dorsal_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    steps: int = 100,
    lr: float = 0.05,
    seed: int = 0,
    sl_alpha: Mapping[str, float] | None = None,
    eval_image_batches: Sequence | None = None,
    eval_dorsal_batches: Sequence | None = None,
    sl_window: float = 0.3,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train both heads jointly: each step one image batch (images, class labels) and one dorsal batch (images or
    clips, positions (B, 2) or directions (angles (B,) / unit vectors)); loss = cross-entropy + MSE (+ sum over
    areas of ``sl_alpha[area] * SL_Rel``). SGD with momentum 0.9 and a cosine schedule; batches are cycled.

    Returns metrics: ventral_acc and dorsal_error on the eval batches (the training batches when none are given),
    the initial and final losses, and the final spatial loss per area with ``alpha > 0``.
    """
    sl_alpha = {a: float(v) for a, v in (sl_alpha or {}).items() if float(v) != 0.0}
    unknown = sorted(set(sl_alpha) - set(net.order))
    if unknown:
        raise PresetError(f"sl_alpha names areas not in the net: {unknown} (areas: {net.order})")
    if steps < 1 or not image_batches or not dorsal_batches:
        raise ValueError("train_two_stream needs steps >= 1 and non-empty image and dorsal batches")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    positions: dict[str, torch.Tensor] = {}
    history = []
    sl_last: dict[str, float] = {}
    for _, (xi, yi), (xd, yd) in zip(range(steps), cycle(image_batches), cycle(dorsal_batches)):
        logits, _, areas = net(to_input(xi.to(device), net.in_channels), return_areas=True)
        _, pred, areas_d = net(to_input(xd.to(device), net.in_channels), return_areas=True)
        yd = yd.to(device)
        target = yd.float() if net.dorsal_task == "position" else direction_targets(yd)
        loss = F.cross_entropy(logits, yi.to(device)) + F.mse_loss(pred, target)
        for a, alpha in sl_alpha.items():
            feats = torch.cat([areas[a], areas_d[a]])
            if a not in positions:
                positions[a] = _sheet_positions(*feats.shape[1:], gen)
            sl = spatial_loss(feats, positions[a], sl_window, gen)
            sl_last[a] = sl.item()
            loss = loss + alpha * sl
        if not torch.isfinite(loss):
            raise RuntimeError(f"training diverged (loss {float(loss)}) at step {len(history)}; lower lr={lr}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
    metrics = _evaluate(net, eval_image_batches or image_batches, eval_dorsal_batches or dorsal_batches, device)
    k = max(1, len(history) // 10)
    metrics |= {"loss_start": float(np.mean(history[:k])), "loss_end": float(np.mean(history[-k:])),
                "steps": steps, "dorsal_task": net.dorsal_task}
    metrics |= {f"sl_{a}": v for a, v in sl_last.items()}
    return metrics


def compare_presets(
    presets: Mapping[str, Mapping[str, Any]],
    image_batches: Sequence,
    dorsal_batches: Sequence,
    eval_image_batches: Sequence | None = None,
    eval_dorsal_batches: Sequence | None = None,
    width: int = 8,
    in_channels: int | None = None,
    n_classes: int = 2,
    dorsal_task: str = "position",
    steps: int = 100,
    lr: float = 0.05,
    seeds: Sequence[int] = (0,),
    sl_alpha: Mapping[str, float] | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Train one net per species preset and seed on the same data; one row per (species, seed) with ventral_acc,
    dorsal_error and the losses, so the effect of the connectivity preset can be read off. ``in_channels``
    defaults to the dorsal input's channels (clip frames stacked)."""
    if in_channels is None:
        xd = dorsal_batches[0][0]
        in_channels = xd.shape[1] * xd.shape[2] if xd.ndim == 5 else xd.shape[1]
    rows = []
    for species, preset in presets.items():
        for seed in seeds:
            torch.manual_seed(seed)
            net = TwoStreamNet(copy.deepcopy(dict(preset)), width, in_channels, n_classes, dorsal_task)
            m = train_two_stream(net, image_batches, dorsal_batches, steps, lr, seed, sl_alpha,
                                 eval_image_batches, eval_dorsal_batches, device=device)
            rows.append({"species": species, "seed": seed, **m})
    return pd.DataFrame(rows)


def pipeline_batches(images: np.ndarray, categories: Sequence[str], clips: np.ndarray, directions_deg: np.ndarray,
                     size: int, batch: int, val_fraction: float = 0.25, seed: int = 0) -> dict[str, list]:
    """The pipeline's own data as training / held-out batches for :func:`train_two_stream`.

    Ventral: category images (N, 3, H, W) with string labels -> class indices (sorted names); dorsal: motion clips
    (M, 3, T, H, W) (random dots or drifting gratings) with their direction in degrees -> radians. Both are resized to
    ``size`` and split at random (seeded) into train and held-out parts. Returns dict(train_images, train_dorsal,
    eval_images, eval_dorsal, classes).
    """
    if len(images) != len(categories) or len(clips) != len(directions_deg):
        raise ValueError("pipeline_batches: every image needs a category and every clip a direction")
    gen = np.random.default_rng(seed)
    classes = sorted(set(map(str, categories)))
    labels = torch.tensor([classes.index(str(c)) for c in categories])
    x_img = F.interpolate(torch.as_tensor(images, dtype=torch.float32), size=(size, size), mode="area")
    c = torch.as_tensor(clips, dtype=torch.float32)
    t = c.shape[2]
    x_clip = F.interpolate(c, size=(t, size, size), mode="area")
    y_dir = torch.as_tensor(np.radians(np.asarray(directions_deg, dtype=float)), dtype=torch.float32)

    def split(x: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
        order = torch.as_tensor(gen.permutation(len(x)))
        n_val = max(1, int(round(val_fraction * len(x))))
        val, train = order[:n_val], order[n_val:]
        chunks = [(x[train[i:i + batch]], y[train[i:i + batch]]) for i in range(0, len(train), batch)]
        return chunks, [(x[val], y[val])]

    train_images, eval_images = split(x_img, labels)
    train_dorsal, eval_dorsal = split(x_clip, y_dir)
    return dict(train_images=train_images, train_dorsal=train_dorsal, eval_images=eval_images,
                eval_dorsal=eval_dorsal, classes=classes)
