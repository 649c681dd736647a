"""Checkpoints: weights with their architecture, resumable state with every RNG, the resume check."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import models
from .config import CHECKPOINT_FORMAT, LATER_FIELDS, RESUMABLE_CHANGES, ResumeError, TrainConfig


def save_weights(model: nn.Module, path: str | Path, cfg: TrainConfig | None = None) -> Path:
    """Write the encoder's plain state dict atomically (:func:`tdann.models.save_weights`), with its architecture
    from ``cfg`` (the default resnet18 at width 1 without one)."""
    if cfg is None:
        return models.save_weights(model, path, "resnet18")
    return models.save_weights(model, path, cfg.arch, cfg.width, cfg.stem, cfg.input_size, cfg.clip_len)

# --------------------------------------------------------------------------------------------- checkpoints


def rng_state(device: torch.device) -> dict[str, Any]:
    """Global RNG states as tensors and plain types (``weights_only`` safe)."""
    _, key, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy": {"key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(pystate, dtype=torch.int64), "gauss": pygauss},
    }


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``; an unreadable file raises :class:`ResumeError`."""
    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ResumeError(f"{path}: cannot read checkpoint ({err}); delete it to start over") from err
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    return ck


def check_resume(cfg: TrainConfig, ck: Mapping[str, Any], path: Path) -> None:
    saved, now = ck["config"], cfg.to_dict()
    saved = {**LATER_FIELDS, **saved}
    diff = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if diff:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ResumeError(f"{path}: checkpoint was written with a different config ({details}); "
                          "use a new run directory or delete the checkpoint")
