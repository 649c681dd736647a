"""Training a two-stream network with the spatial loss on its areas, comparing presets paired by seed, and the tasks' chance."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import cycle
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..losses import sl_rel
from ..progress import Progress
from .net import PresetError, TwoStreamNet, direction_targets, to_input


def _sheet_positions(c: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Unit positions (c*h*w, 2) on a unit sheet, channel-major: each location's anchor on a regular grid, each
    channel jittered uniformly within the anchor's cell (a small form of docs/reference.md §2)."""
    yy, xx = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    anchor = torch.stack([xx, yy], -1).reshape(1, h * w, 2).expand(c, -1, -1)
    jitter = (torch.rand(c, h * w, 2, generator=gen) - 0.5) * torch.tensor([1 / w, 1 / h])
    return (anchor + jitter).reshape(-1, 2)


def spatial_loss(features: torch.Tensor, positions: torch.Tensor, window: float, gen: torch.Generator,
                 max_units: int = 256) -> torch.Tensor:
    """SL_Rel (:func:`tdann.losses.sl_rel`) on one random square window of at most ``max_units`` units; distances
    are in sheet units (side 1). Fewer than 3 units in the window: 0."""
    f = features.flatten(1)
    lo = torch.rand(2, generator=gen) * (1 - window)
    inside = ((positions >= lo) & (positions <= lo + window)).all(1).nonzero().squeeze(1)
    if len(inside) > max_units:
        inside = inside[torch.randperm(len(inside), generator=gen)[:max_units]]
    if len(inside) < 3:
        return features.new_zeros(())
    return sl_rel(f[:, inside.to(f.device)], positions[inside].to(f.device))


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


def task_chance(eval_batches: Sequence, n_classes: int) -> dict[str, float]:
    """Chance of the what / where tasks on held-out ``(x, (labels, positions))`` batches: accuracy 1 / classes
    (or the majority class's share, if larger) and the position error of the best constant guess (the held-out
    mean position), with the number of held-out scenes."""
    labels = torch.cat([y for _, (y, _) in eval_batches]).numpy()
    pos = torch.cat([p for _, (_, p) in eval_batches]).numpy().astype(float)
    share = np.bincount(labels, minlength=n_classes).max() / len(labels)
    return {"chance_acc": float(max(1.0 / n_classes, share)),
            "chance_error": float(np.linalg.norm(pos - pos.mean(0), axis=1).mean()), "n_eval": int(len(labels))}
