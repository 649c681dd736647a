"""The networks and losses of a training config: the encoder with its task head, the spatial loss per layer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .. import losses, models, positions, ssl
from .config import (
    TrainConfig,
    TrainConfigError,
)


def build(cfg: TrainConfig) -> tuple[models.Encoder, nn.Module]:
    """(encoder, task module): the task module is a :class:`tdann.ssl.SimCLRNet` or a :class:`tdann.ssl.MoCo` around the encoder."""
    torch.manual_seed(cfg.seed)
    encoder = models.build_model(cfg.arch, cfg.width, cfg.stem)
    encoder.fc.requires_grad_(False)  # the classifier is not trained by self-supervision (and DDP needs no grad)
    if cfg.task == "simclr":
        head = ssl.ProjectionHead(encoder.embed_dim, cfg.proj_hidden, cfg.proj_dim, batch_norm=cfg.head_bn)
        return encoder, ssl.SimCLRNet(encoder, head)
    moco = ssl.MoCo(encoder, None, dim=cfg.proj_dim, K=cfg.moco_k, m=cfg.moco_m, T=cfg.temperature, mlp=True,
                       head_bn=cfg.head_bn, batch_negatives=cfg.moco_batch_negatives)
    return encoder, moco


def spatial_losses(cfg: TrainConfig, sheets_path: str | Path, n_per_batch: int,
                    encoder: nn.Module | None = None) -> dict[str, losses.SheetLoss]:
    """The spatial loss of every tapped layer: SL_Rel / SL_Abs on the sheet, or (``sl_kind: topo``) TopoLoss on
    the weights of ``encoder``'s tapped blocks (the sheet then only places units for the maps)."""
    sheets = positions.load_sheets(sheets_path)
    missing = [layer for layer in cfg.layers if layer not in sheets]
    if missing:
        raise TrainConfigError(f"{sheets_path}: no sheet for tapped layers {missing}; it has {sorted(sheets)}")
    if cfg.sl_kind == "topo":
        if encoder is None:
            raise TrainConfigError("sl_kind 'topo' needs the encoder whose weights it reads")
        try:
            return {layer: losses.TopoWeightLoss(encoder.get_submodule(layer), cfg.topo_factor)
                    for layer in cfg.layers}
        except ValueError as err:
            raise TrainConfigError(f"topo_factor: {err}") from None
    out: dict[str, losses.SheetLoss] = {}
    for layer in cfg.layers:
        s = sheets[layer]
        out[layer] = losses.SpatialLoss(
            torch.as_tensor(s.positions), torch.as_tensor(s.neighborhoods), kind=cfg.sl_kind,
            neighborhoods_per_batch=min(n_per_batch, len(s.neighborhoods)),
        )
    return out


def check_units(layer: str, features: Tensor, sl: losses.SpatialLoss, sheets_path: str | Path) -> None:
    if features.shape[1] != sl.positions.shape[0]:
        raise TrainConfigError(
            f"{sheets_path}: layer {layer!r} sheet has {sl.positions.shape[0]} units but the model's layer has "
            f"{features.shape[1]} (sheets built for another width, stem or input size?)"
        )
