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
import gzip
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import cycle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .progress import Progress

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


def _dorsal_error(net: TwoStreamNet, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-input dorsal error: position, Euclidean distance in target units; direction, angle in degrees."""
    if net.dorsal_task == "position":
        return torch.linalg.norm(pred - y.float(), dim=1)
    cos = (pred * direction_targets(y)).sum(1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))


def _evaluate(net: TwoStreamNet, image_batches: Iterable, dorsal_batches: Iterable | None,
              device: str) -> dict[str, float]:
    """Ventral accuracy and dorsal error (position: mean Euclidean distance in target units; direction: mean
    absolute angular error in degrees) over the given batches, in eval mode. ``dorsal_batches=None``: the image
    batches carry both targets, ``(x, (labels, dorsal targets))``."""
    net.eval()
    correct = total = 0
    errs = []
    with torch.no_grad():
        for x, y in image_batches:
            logits, pred = net(to_input(x.to(device), net.in_channels))
            if dorsal_batches is None:
                y, yd = y
                errs.append(_dorsal_error(net, pred, yd.to(device)))
            correct += int((logits.argmax(1) == y.to(device)).sum())
            total += len(y)
        for x, y in dorsal_batches or ():
            _, pred = net(to_input(x.to(device), net.in_channels))
            errs.append(_dorsal_error(net, pred, y.to(device)))
    net.train()
    dorsal_error = float(torch.cat(errs).mean()) if errs else float("nan")
    return {"ventral_acc": correct / max(total, 1), "dorsal_error": dorsal_error}


def _endless(batches: Iterable) -> Iterator:
    """Batches for training: a sequence is cycled; any other iterable (e.g. a :class:`SceneSampler`) is read on."""
    return cycle(batches) if isinstance(batches, Sequence) else iter(batches)


def train_two_stream(
    net: TwoStreamNet,
    image_batches: Iterable,
    dorsal_batches: Iterable | None,
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
    areas of ``sl_alpha[area] * SL_Rel``). SGD with momentum 0.9 and a cosine schedule. Sequences of batches are
    cycled; other iterables (a :class:`SceneSampler`) give fresh batches. ``dorsal_batches=None``: one stream of
    what / where batches ``(x, (labels, positions))`` trains both heads on the same images (the eval image
    batches then carry both targets too).

    Returns metrics: ventral_acc and dorsal_error on the eval batches (the training batches when none are given),
    the initial and final losses, and the final spatial loss per area with ``alpha > 0``.
    """
    sl_alpha = {a: float(v) for a, v in (sl_alpha or {}).items() if float(v) != 0.0}
    unknown = sorted(set(sl_alpha) - set(net.order))
    if unknown:
        raise PresetError(f"sl_alpha names areas not in the net: {unknown} (areas: {net.order})")
    joint = dorsal_batches is None
    if steps < 1 or (isinstance(image_batches, Sequence) and not image_batches) or (
            not joint and isinstance(dorsal_batches, Sequence) and not dorsal_batches):
        raise ValueError("train_two_stream needs steps >= 1 and non-empty image and dorsal batches")
    if eval_image_batches is None and not isinstance(image_batches, Sequence):
        raise ValueError("training from an endless sampler needs eval_image_batches (held-out batches)")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    positions: dict[str, torch.Tensor] = {}
    history: list[float] = []
    sl_last: dict[str, float] = {}
    images = _endless(image_batches)
    dorsal = None if dorsal_batches is None else _endless(dorsal_batches)
    bar = Progress(steps, f"two-stream (seed {seed})", "step")
    for _ in range(steps):
        xi, yi = next(images)
        logits, pred, areas = net(to_input(xi.to(device), net.in_channels), return_areas=True)
        if joint:
            yi, yd = yi
            feats = dict(areas)
        else:
            assert dorsal is not None
            xd, yd = next(dorsal)
            _, pred, areas_d = net(to_input(xd.to(device), net.in_channels), return_areas=True)
            feats = {a: torch.cat([areas[a], areas_d[a]]) for a in sl_alpha}
        yd = yd.to(device)
        target = yd.float() if net.dorsal_task == "position" else direction_targets(yd)
        loss = F.cross_entropy(logits, yi.to(device)) + F.mse_loss(pred, target)
        for a, alpha in sl_alpha.items():
            if a not in positions:
                c, h, w = feats[a].shape[1:]
                positions[a] = _sheet_positions(c, h, w, gen)
            sl = spatial_loss(feats[a], positions[a], sl_window, gen)
            sl_last[a] = sl.item()
            loss = loss + alpha * sl
        if not torch.isfinite(loss):
            raise RuntimeError(f"training diverged (loss {float(loss)}) at step {len(history)}; lower lr={lr}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        bar.update()
    bar.close()
    eval_dorsal = None if joint else (eval_dorsal_batches or dorsal_batches)
    metrics: dict[str, Any] = _evaluate(net, eval_image_batches or image_batches, eval_dorsal, device)
    k = max(1, len(history) // 10)
    metrics |= {"loss_start": float(np.mean(history[:k])), "loss_end": float(np.mean(history[-k:])),
                "steps": steps, "dorsal_task": net.dorsal_task}
    metrics |= {f"sl_{a}": v for a, v in sl_last.items()}
    return metrics


def compare_presets(
    presets: Mapping[str, Mapping[str, Any]],
    image_batches: Sequence | Callable[[int], Iterable],
    dorsal_batches: Sequence | None,
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
    dorsal_error and the losses, so the effect of the connectivity preset can be read off.

    ``image_batches`` may be a function ``seed -> batches`` (e.g. a :class:`SceneSampler` per seed): every preset
    then trains on the same fresh stream for a given seed, so presets are compared paired by seed.
    ``in_channels`` defaults to the dorsal input's channels (clip frames stacked; 3 for what / where scenes)."""
    if in_channels is None:
        given = dorsal_batches or eval_image_batches
        if not given:
            raise ValueError("compare_presets needs in_channels, dorsal_batches or eval_image_batches")
        xd = given[0][0]
        in_channels = xd.shape[1] * xd.shape[2] if xd.ndim == 5 else xd.shape[1]
    rows = []
    for species, preset in presets.items():
        for seed in seeds:
            torch.manual_seed(seed)
            net = TwoStreamNet(copy.deepcopy(dict(preset)), width, in_channels, n_classes, dorsal_task)
            batches = image_batches(seed) if callable(image_batches) else image_batches
            m = train_two_stream(net, batches, dorsal_batches, steps, lr, seed, sl_alpha,
                                 eval_image_batches, eval_dorsal_batches, device=device)
            rows.append({"species": species, "seed": seed, **m})
    return pd.DataFrame(rows)


def chance_levels(eval_batches: Sequence, n_classes: int) -> dict[str, float]:
    """Chance of the what / where tasks on held-out ``(x, (labels, positions))`` batches: accuracy 1 / classes
    (or the majority class's share, if larger) and the position error of the best constant guess (the held-out
    mean position), with the number of held-out scenes."""
    labels = torch.cat([y for _, (y, _) in eval_batches]).numpy()
    pos = torch.cat([p for _, (_, p) in eval_batches]).numpy().astype(float)
    share = np.bincount(labels, minlength=n_classes).max() / len(labels)
    return {"chance_acc": float(max(1.0 / n_classes, share)),
            "chance_error": float(np.linalg.norm(pos - pos.mean(0), axis=1).mean()), "n_eval": int(len(labels))}


# ----------------------------------------------------------------------------------------------
# what / where scenes: one object at a random position (category and x, y position as labels)
# ----------------------------------------------------------------------------------------------
#: Procedural object categories of :func:`object_scenes` (index = class label).
SHAPES = ("disk", "square", "triangle", "cross", "ring", "bar")
#: Fashion-MNIST's ten class names, in label order (Xiao et al. 2017).
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle boot")
_IDX_DTYPES: dict[int, np.dtype | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
               0x0E: np.dtype(">f8")}


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of procedural shape ``kind`` in object coordinates (u, v) (radius 1 at the object's scale)."""
    name = SHAPES[kind]
    if name == "disk":
        return u**2 + v**2 <= 1.0
    if name == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if name == "triangle":  # apex up, base at v = 0.7
        return (v <= 0.7) & (v >= -1.0 + 1.7 * np.abs(u))
    if name == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    if name == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1.0) & (r2 >= 0.45)
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.28)  # bar


def object_scenes(n: int, size: int, rng: np.random.Generator, glyphs: np.ndarray | None = None,
                  glyph_labels: np.ndarray | None = None, scale: tuple[float, float] = (0.14, 0.24),
                  background_contrast: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` what / where scenes: one object on a noisy background, at a random position.

    Objects are the procedural :data:`SHAPES` (random radius ``scale`` x size, orientation for the bar and cross,
    luminance and colour) or, given ``glyphs`` (N, h, w) uint8 with ``glyph_labels`` (N,), e.g. Fashion-MNIST,
    a random glyph pasted at 1.6-2.4 x its radius. The object lies wholly inside the image. Returns images
    (n, 3, size, size) float32 in [0, 1], category labels (n,) int64 and positions (n, 2) float32: the object's
    centre (x right, y down), scaled so that the image spans [-1, 1].
    """
    if n < 1 or size < 8:
        raise ValueError(f"object_scenes needs n >= 1 and size >= 8, got {n}, {size}")
    if (glyphs is None) != (glyph_labels is None):
        raise ValueError("glyphs and glyph_labels go together")
    grey = rng.uniform(0.35, 0.65, size=(n, 1, 1, 1))
    images = grey + background_contrast * rng.standard_normal((n, 1, size, size))
    images = np.repeat(images, 3, axis=1)
    labels = np.empty(n, dtype=np.int64)
    centres = np.empty((n, 2), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for i in range(n):
        radius = rng.uniform(*scale) * size
        cx, cy = rng.uniform(radius, size - radius, size=2)
        polarity = rng.choice([-1.0, 1.0])
        colour = np.clip(grey[i, :, 0, 0] + polarity * rng.uniform(0.25, 0.45) * (0.6 + 0.4 * rng.random(3)), 0, 1)
        if glyphs is None:
            labels[i] = rng.integers(len(SHAPES))
            theta = rng.uniform(0, np.pi) if SHAPES[labels[i]] in ("bar", "cross") else 0.0
            du, dv = (xx - cx) / radius, (yy - cy) / radius
            u, v = du * np.cos(theta) + dv * np.sin(theta), -du * np.sin(theta) + dv * np.cos(theta)
            alpha = _shape_mask(int(labels[i]), u, v).astype(float)
        else:
            assert glyph_labels is not None  # SceneSampler checks glyphs and labels come together
            j = rng.integers(len(glyphs))
            labels[i] = int(glyph_labels[j])
            alpha = _paste(glyphs[j].astype(float) / 255.0, size, cx, cy, radius)
        images[i] = images[i] * (1 - alpha) + colour[:, None, None] * alpha
        centres[i] = (cx / size * 2 - 1, cy / size * 2 - 1)
    return np.clip(images, 0, 1).astype(np.float32), labels, centres


def _paste(glyph: np.ndarray, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """A (size, size) alpha map: ``glyph`` (h, w) in [0, 1] resized to 2 x ``radius`` and centred at (cx, cy)."""
    side = max(2, int(round(2 * radius)))
    g = F.interpolate(torch.as_tensor(glyph, dtype=torch.float32)[None, None], size=(side, side), mode="area")[0, 0]
    out = np.zeros((size, size))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x0, y0 = min(max(x0, 0), size - side), min(max(y0, 0), size - side)
    out[y0:y0 + side, x0:x0 + side] = g.numpy()
    return out


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (the MNIST / Fashion-MNIST format; ``.gz`` read as gzip) as a numpy array.

    Errors name the file: a bad magic number, an unknown element type, or a size that does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read an IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] < 1:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX dimensions {dims} need {expected} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_fashion_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (N, 28, 28) uint8 and labels (N,) from ``folder``, as distributed (IDX files, gzipped
    or not, found anywhere under ``folder``): ``train-images-idx3-ubyte`` / ``t10k-images-idx3-ubyte`` and their
    ``-labels-idx1-ubyte`` files. Errors name the missing or inconsistent file."""
    if split not in ("train", "t10k"):
        raise ValueError(f"Fashion-MNIST split must be 'train' or 't10k', got {split!r}")
    found = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{split}-{kind}"
        hits = sorted(p for p in Path(folder).rglob(f"{name}*") if p.name in (name, name + ".gz"))
        if not hits:
            raise FileNotFoundError(f"{folder}: no {name} or {name}.gz (the Fashion-MNIST IDX files)")
        found[kind] = hits[0]
    images, labels = read_idx(found["images-idx3-ubyte"]), read_idx(found["labels-idx1-ubyte"])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{found['images-idx3-ubyte']}: images {images.shape} and labels {labels.shape} of "
                         f"{found['labels-idx1-ubyte']} do not pair up")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
        raise ValueError(f"{found['labels-idx1-ubyte']}: labels outside 0..9")
    return images.astype(np.uint8), labels.astype(np.int64)


class SceneSampler:
    """Endless training batches of fresh what / where scenes (no scene is seen twice, so nothing can be memorised):
    each item is ``(images, (labels, positions))`` as tensors. ``glyphs`` as in :func:`object_scenes`."""

    def __init__(self, batch: int, size: int, seed: int, glyphs: np.ndarray | None = None,
                 glyph_labels: np.ndarray | None = None) -> None:
        self.batch, self.size = int(batch), int(size)
        self.rng = np.random.default_rng(seed)
        self.glyphs, self.glyph_labels = glyphs, glyph_labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
        while True:
            yield scene_batch(self.batch, self.size, self.rng, self.glyphs, self.glyph_labels)


def scene_batch(n: int, size: int, rng: np.random.Generator, glyphs: np.ndarray | None = None,
                glyph_labels: np.ndarray | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One batch of :func:`object_scenes` as tensors ``(images, (labels, positions))``."""
    x, y, pos = object_scenes(n, size, rng, glyphs, glyph_labels)
    return torch.from_numpy(x), (torch.from_numpy(y), torch.from_numpy(pos))
