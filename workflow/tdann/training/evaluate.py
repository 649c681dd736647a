"""Held-out evaluation of a trained encoder: task loss and top-1 against chance, the spatial loss per layer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import losses, models, ssl
from ..chance import chance_levels
from ..runtime import resolve_device
from .batches import TrainingStore, seed_of, views
from .build import check_units, spatial_losses
from .config import DataStoreError, TrainConfig, TrainConfigError

# --------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    cfg: TrainConfig,
    weights_path: str | Path,
    data_path: str | Path,
    sheets_path: str | Path,
    n_batches: int | None = None,
    seed: int = 0,
    head_path: str | Path | None = None,
    neighborhoods_per_batch: int = 64,
) -> dict[str, float]:
    """Held-out (val split) task loss and top-1, and spatial loss per tapped layer: the two axes of the α trade-off.

    Each batch is two augmented views (augmentation seeded by ``seed`` and the batch index, so every network sees
    the same views). The contrastive metric is NT-Xent with ``cfg.temperature`` and top-1 = fraction of views whose
    partner is the most similar of the 2B-1 others, computed on the projection head's output when ``head_path``
    (the run's ``head.pt``, SimCLR or MoCo query head) is given, else on the pooled encoder embedding, which needs
    no head and works for both tasks. Each batch holds distinct samples drawn at random over the val split; the
    result carries the chance values (:func:`chance_levels`) and the loss and top-1 as ratios of them. SL is the mean over ``neighborhoods_per_batch`` sampled neighbourhoods per batch and layer, on the
    features of both views. The model runs in eval mode (BatchNorm running statistics).
    """
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n_batches = cfg.eval_batches if n_batches is None else int(n_batches)
    if n_batches < 1:
        raise TrainConfigError(f"n_batches must be >= 1, got {n_batches}")
    store = TrainingStore(data_path, cfg.data_kind, split=1)
    if len(store) < 2:
        raise DataStoreError(f"{data_path}: the val split holds {len(store)} sample(s); need >= 2")
    batch = min(cfg.batch_size, len(store))
    encoder = models.load_weights(weights_path, cfg.arch, cfg.width, cfg.stem).to(device).eval()
    project: Callable[[Tensor], Tensor] = encoder.embed
    if head_path is not None:
        hidden = cfg.proj_hidden if cfg.task == "simclr" else encoder.embed_dim  # MoCo's head is e -> e -> dim
        head = ssl.ProjectionHead(encoder.embed_dim, hidden, cfg.proj_dim, batch_norm=cfg.head_bn)
        try:
            head.load_state_dict(torch.load(head_path, map_location="cpu", weights_only=True))
        except Exception as err:
            raise models.CheckpointError(f"{head_path}: not a projection head for this config ({err})") from err
        head.to(device).eval()
        project = lambda x: head(encoder.embed(x))  # noqa: E731
    sls = {k: v.to(device) for k, v in spatial_losses(cfg, sheets_path, neighborhoods_per_batch, encoder).items()}
    totals: dict[str, float] = {"task_loss": 0.0, "task_top1": 0.0, **{f"sl_{k}": 0.0 for k in cfg.layers}}
    with models.FeatureTaps(encoder, cfg.layers, time_average=cfg.time_average) as taps:
        order = np.random.default_rng([int(seed), 0xE7A1])
        for b in range(n_batches):
            # distinct samples per batch, drawn across the whole split: consecutive clips of one video overlap in
            # time, and a batch of them would make the partner task unfairly hard for every network alike
            idx = np.sort(order.choice(len(store), size=batch, replace=False))
            v1, v2 = views(cfg, store.get(idx).to(device), torch.Generator().manual_seed(seed_of(seed, 3, b)))
            z = project(torch.cat([v1, v2]))
            loss, top1 = ssl.nt_xent(z[:batch], z[batch:], cfg.temperature)
            totals["task_loss"] += float(loss)
            totals["task_top1"] += float(top1)
            for i, (layer, sl) in enumerate(sls.items()):
                feats = taps.flat(layer)
                if not isinstance(sl, losses.TopoWeightLoss):
                    check_units(layer, feats, sl, sheets_path)
                totals[f"sl_{layer}"] += float(sl(feats, torch.Generator().manual_seed(seed_of(seed, 4, b, i))))
    store.close()
    out = {k: v / n_batches for k, v in totals.items()}
    out["sl_mean"] = float(np.mean([out[f"sl_{k}"] for k in cfg.layers]))
    out["n_samples"] = float(n_batches * batch)
    out["n_val"] = float(len(store))
    out["eval_batch_size"] = float(batch)
    out.update(chance_levels(batch))
    out["task_loss_ratio"] = out["task_loss"] / out["task_loss_chance"]
    out["task_top1_ratio"] = out["task_top1"] / out["task_top1_chance"]
    return out
