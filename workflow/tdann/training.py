"""Training stages 1 and 3: self-supervised task loss plus the spatial loss (docs/reference.md §1-2, §8).

``L = L_task + sum_k alpha_k * SL_k`` (docs/reference.md §1): SimCLR NT-Xent for the ventral ResNet-18, MoCo v2 for the
dorsal R3D-18, plus the spatial loss on every tapped BasicBlock. Stage 1 trains with ``alpha = 0`` (its responses feed
SwapOpt, docs/reference.md §3); stage 3 trains a fresh network on the SwapOpt'd positions.

Robustness, because the runs are long and run under SLURM (docs/reference.md §8):

* Checkpoints go to ``run_dir`` (not a Snakemake output, which Snakemake deletes when a job fails), are written
  atomically (temporary file + rename) and load with ``torch.load(weights_only=True)``. A rerun with the same
  ``run_dir`` resumes; on CPU its final weights equal an uninterrupted run bit for bit, because every random draw
  comes from a generator seeded by ``(seed, step)`` (data order, augmentations, sampled neighbourhoods, MoCo's key
  shuffle), and the global torch / CUDA / numpy / python RNG states are restored from the checkpoint as well.
* A non-finite loss raises :class:`NonFiniteLossError` naming the step and every loss term before any weight is
  touched, so the last checkpoint stays good.
* SIGTERM (SLURM preemption) finishes the current step, writes a checkpoint and raises :class:`Preempted`, whose
  ``exit_code`` (75, EX_TEMPFAIL) a script passes to ``sys.exit`` so that a Snakemake retry resumes.
* Under ``torchrun`` (environment variables ``RANK`` / ``WORLD_SIZE``) the model runs in DistributedDataParallel;
  see :func:`train` for how the global batch is split and what that means for BatchNorm and the spatial loss.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor, nn

from . import augment, losses, models, positions, ssl
from .chance import chance_levels
from .progress import Progress
from .runtime import resolve_device

#: Exit code of a preempted run (EX_TEMPFAIL from sysexits.h): "try again later".
EXIT_PREEMPTED = 75
CHECKPOINT_NAME = "checkpoint.pt"
HEAD_NAME = "head.pt"
RUN_LOG_NAME = "train_log.csv"
CHECKPOINT_FORMAT = "tdann.training/1"
log_ = logging.getLogger("tdann.training")

# Config fields that may change between a run and its resumption; every other field must match the checkpoint.
_RESUMABLE_CHANGES = ("device", "threads", "checkpoint_every", "log_every", "eval_batches")
#: fields added after checkpoints were written: a config at these values keys and resumes as before they existed
_LATER_FIELDS = {"amp": "none", "channels_last": False, "topo_factor": 3.0}


class TrainConfigError(ValueError):
    """A training configuration value that is missing, unknown or out of range."""


class DataStoreError(ValueError):
    """A data store (HDF5) that lacks the expected datasets or holds data of the wrong shape or type."""


class TrainingError(RuntimeError):
    """Base class of errors raised while training."""


class ResumeError(TrainingError):
    """A checkpoint in the run directory that cannot be read or was written by a different configuration."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the message names the step and the value of every loss term."""


class Preempted(TrainingError):
    """SIGTERM arrived: the current step was finished and a checkpoint written; rerun to resume."""

    exit_code = EXIT_PREEMPTED


# --------------------------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Everything that determines a training run (docs/reference.md §1 for the published values).

    ``lr`` is the absolute learning rate. Configs give it per 256 samples, as the papers do (SimCLR 0.3, MoCo 0.03;
    Chen et al. 2020, He et al. 2020), and :func:`scaled_lr` turns that into ``lr`` for the batch size (linear
    scaling rule): at batch 32 SimCLR runs at 0.0375. Running the per-256 value unscaled at a small batch (8x too
    high at batch 32) collapses SimCLR to identical embeddings (NT-Xent = ln(2B - 1), see :func:`chance_levels`).
    ``alpha`` is one weight for every tapped layer or a dict layer -> weight (missing layers get 0).
    ``bn_groups`` > 1 runs the batch in that many chunks with separate BatchNorm statistics (as on separate GPUs
    without SyncBatchNorm), so one process reproduces a multi-GPU run (SimCLR only).
    ``proj_hidden`` is the SimCLR head's hidden width; MoCo's head is embed_dim -> embed_dim -> ``proj_dim``.
    ``head_bn`` adds BatchNorm after the head's hidden layer (SimCLR v2, MoCo v3). SimCLR v1 and MoCo v2 have none;
    at laptop scale (batch 16-32, a few hundred SGD steps) a head without it falls into the collapsed state
    (NT-Xent = ln(2B - 1)) and stays there: a tiny ResNet-18 on 200 grating images reached 0.99 x chance in 200
    steps without it and 0.82 x chance with it (``tests/unit/test_training.py``).
    ``sync_bn`` converts BatchNorm to SyncBatchNorm under multi-GPU DDP (CUDA only; torch's SyncBatchNorm has no
    CPU implementation). ``threads`` 0 leaves torch's thread count alone.
    ``amp="bf16"`` runs the network's forward passes under bf16 autocast on CUDA devices (the NT-Xent and spatial
    losses, and the held-out evaluation, stay in float32; MoCo's loss is part of its forward; on a CPU it is
    ignored); ``channels_last`` stores weights and
    inputs as channels_last (2D) / channels_last_3d (3D). Both are for GPUs (``python -m tdann.gpucheck`` measures
    their gain) and change results only at the precision of their arithmetic.
    """

    stream: str = "ventral"
    arch: str = "resnet18"
    width: float = 1.0
    stem: str = "standard"
    input_size: int = 224
    clip_len: int = 16
    task: str = "simclr"
    alpha: float | dict[str, float] = 0.25
    layers: tuple[str, ...] = models.LAYERS
    sl_kind: str = "rel"
    topo_factor: float = 3.0
    neighborhoods_per_batch: int = 8
    time_average: bool = True
    steps: int = 1000
    batch_size: int = 512
    lr: float = 0.6
    momentum: float = 0.9
    weight_decay: float = 1e-6
    warmup_steps: int = 10
    schedule: str = "cosine"
    temperature: float = 0.1
    proj_hidden: int = 512
    proj_dim: int = 128
    head_bn: bool = False
    moco_k: int = 65536
    moco_m: float = 0.999
    moco_batch_negatives: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    bn_groups: int = 1
    sync_bn: bool = False
    amp: str = "none"
    channels_last: bool = False
    checkpoint_every: int = 100
    log_every: int = 10
    eval_batches: int = 10

    def __post_init__(self) -> None:
        self.layers = tuple(self.layers)
        if isinstance(self.alpha, Mapping):
            self.alpha = {str(k): float(v) for k, v in self.alpha.items()}
        else:
            self.alpha = float(self.alpha)
        self.validate()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build from a plain dict (config file); unknown keys raise :class:`TrainConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TrainConfigError(f"unknown training config keys: {unknown}; known keys: {sorted(names)}")
        return cls(**dict(d))

    @classmethod
    def from_stream(cls, stream: str, cfg: Mapping[str, Any], stage: str, alpha: float, seed: int,
                    device: str = "auto", threads: int = 1) -> TrainConfig:
        """The run of one stage (``pretrain`` or ``train``) of a stream as the workflow config gives it
        (``streams.<stream>``, validated against the schema, which holds the defaults): the schedule's steps and
        batch, the learning rate scaled from ``lr_per_256``, each layer's alpha = ``alpha`` x its ``alpha_scale``,
        the ``optim`` keys as they are; checkpoints every quarter and log lines every 1/20 of the steps."""
        schedule = cfg[stage]
        return cls.from_dict(dict(
            stream=stream, arch=cfg["arch"], width=cfg["width"], stem=cfg["stem"], input_size=cfg["input_size"],
            clip_len=cfg["clip_len"], task=cfg["task"], layers=tuple(cfg["layers"]),
            alpha={layer: float(alpha) * float(spec.get("alpha_scale", 1.0)) for layer, spec in cfg["layers"].items()},
            steps=schedule["steps"], batch_size=schedule["batch_size"],
            lr=scaled_lr(schedule["lr_per_256"], schedule["batch_size"]), warmup_steps=schedule["warmup_steps"],
            seed=int(seed), device=device, threads=int(threads),
            checkpoint_every=max(1, schedule["steps"] // 4), log_every=max(1, schedule["steps"] // 20),
            **cfg["optim"],
        ))

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (JSON and ``weights_only`` safe) that :meth:`from_dict` turns back into this config."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["layers"] = list(self.layers)
        d["alpha"] = dict(self.alpha) if isinstance(self.alpha, dict) else self.alpha
        return d

    def layer_alpha(self, layer: str) -> float:
        """Spatial-loss weight of ``layer``."""
        if isinstance(self.alpha, dict):
            return float(self.alpha.get(layer, 0.0))
        return float(self.alpha)

    @property
    def data_kind(self) -> str:
        """``images`` for the 2D model, ``clips`` for the 3D one."""
        return "clips" if self.arch == "r3d_18" else "images"

    def validate(self) -> None:
        """Raise :class:`TrainConfigError` naming the first bad field."""
        streams = {"ventral": "resnet18", "dorsal": "r3d_18"}
        if self.stream not in streams:
            raise TrainConfigError(f"stream must be one of {sorted(streams)}, got {self.stream!r}")
        if self.arch != streams[self.stream]:
            raise TrainConfigError(f"stream {self.stream!r} uses arch {streams[self.stream]!r}, got {self.arch!r}")
        choices = {"stem": models.STEMS, "task": ("simclr", "moco"), "sl_kind": ("rel", "abs", "topo"),
                   "schedule": ("cosine", "constant"), "amp": ("none", "bf16"), "channels_last": (False, True)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        bad_layers = [layer for layer in self.layers if layer not in models.LAYERS]
        if not self.layers or bad_layers:
            raise TrainConfigError(f"layers must be a non-empty subset of {models.LAYERS}, got bad {bad_layers}")
        if isinstance(self.alpha, dict):
            extra = sorted(set(self.alpha) - set(self.layers))
            if extra:
                raise TrainConfigError(f"alpha names layers that are not tapped: {extra}")
            values = list(self.alpha.values())
        else:
            values = [self.alpha]
        if any(not (math.isfinite(v) and v >= 0) for v in values):
            raise TrainConfigError(f"alpha must be finite and >= 0, got {self.alpha!r}")
        positive = {"width": self.width, "input_size": self.input_size, "steps": self.steps, "lr": self.lr,
                    "temperature": self.temperature, "neighborhoods_per_batch": self.neighborhoods_per_batch,
                    "checkpoint_every": self.checkpoint_every, "log_every": self.log_every,
                    "bn_groups": self.bn_groups, "proj_hidden": self.proj_hidden, "proj_dim": self.proj_dim,
                    "eval_batches": self.eval_batches}
        if self.arch == "r3d_18":
            positive["clip_len"] = self.clip_len
        if self.task == "moco":
            positive["moco_k"] = self.moco_k
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise TrainConfigError(f"{name} must be > 0, got {value!r}")
        if self.batch_size < 2 * self.bn_groups or self.batch_size % self.bn_groups:
            raise TrainConfigError(
                f"batch_size {self.batch_size} must be a multiple of bn_groups {self.bn_groups} with >= 2 per group"
            )
        if self.task == "moco" and self.bn_groups != 1:
            raise TrainConfigError("bn_groups > 1 is for SimCLR; MoCo splits its key batch itself")
        if self.task == "moco" and self.moco_k < self.batch_size:
            raise TrainConfigError(f"moco_k {self.moco_k} must be >= batch_size {self.batch_size}")
        if self.task == "moco" and not 0 <= self.moco_m < 1:
            raise TrainConfigError(f"moco_m must be in [0, 1), got {self.moco_m!r}")
        for name in ("momentum", "weight_decay", "warmup_steps", "threads", "seed"):
            if getattr(self, name) < 0:
                raise TrainConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.warmup_steps >= self.steps and self.warmup_steps > 0:
            raise TrainConfigError(f"warmup_steps {self.warmup_steps} must be < steps {self.steps}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise TrainConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


def scaled_lr(lr_per_256: float, batch_size: int) -> float:
    """Learning rate for ``batch_size`` from the published rate per 256 samples (linear scaling rule, as in the
    SimCLR and MoCo papers: SimCLR 0.3 per 256 -> 0.6 at 512, 0.0375 at 32)."""
    if not (math.isfinite(lr_per_256) and lr_per_256 > 0) or int(batch_size) < 1:
        raise TrainConfigError(f"lr_per_256 must be > 0 and batch_size >= 1, got {lr_per_256!r}, {batch_size!r}")
    return float(lr_per_256) * int(batch_size) / 256.0


#: A trained model "learnt" only if its held-out task loss is below this fraction of chance (issue 16).
LEARNT_LOSS_RATIO = 0.95


def run_key(cfg: TrainConfig, *input_digests: str) -> str:
    """A 16-hex key of everything that determines a run: the config (less the fields that may change on resume)
    and the digests of its inputs (data store, sheet). The run folder is named by it, so a checkpoint is reused only
    by the very run that wrote it: new data, a new sheet or a new setting start a fresh run instead of resuming a
    stale one (or refusing to run)."""
    fields = {k: v for k, v in cfg.to_dict().items()
              if k not in _RESUMABLE_CHANGES and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}
    blob = json.dumps({"config": fields, "inputs": list(input_digests)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Learning-rate multiplier before update ``step`` (0-based): linear warmup, then cosine decay to 0."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------- data


def _split_flags(f: h5py.File) -> np.ndarray:
    """Per-sample split flags: ``split`` (image store), or the clip store's ``video_split`` of each clip's video."""
    if "split" in f:
        return f["split"][()]
    return f["video_split"][()][f["clip_video"][()]]


class _Store:
    """One split of an image or clip store: ``images`` (N,H,W,3) or ``clips`` (N,T,H,W,3) uint8, ``split`` (N,).

    ``split`` 0 is train, 1 is val. A file under ``max_bytes`` is read into memory once; a larger one stays open
    and each batch is read from disk.
    """

    def __init__(self, path: str | Path, kind: str, split: int, max_bytes: int = 1 << 30) -> None:
        self.path = Path(path)
        try:
            self._file: h5py.File | None = h5py.File(self.path, "r")
        except OSError as err:
            raise DataStoreError(f"{self.path}: cannot open data store ({err})") from err
        try:
            self._ds = self._check(self._file, kind)
            flags = _split_flags(self._file)
            if flags.shape != (self._ds.shape[0],):
                raise DataStoreError(f"{self.path}: 'split' has shape {flags.shape}, expected ({self._ds.shape[0]},)")
            self.rows = np.flatnonzero(flags == split)
            if len(self.rows) == 0:
                raise DataStoreError(f"{self.path}: the {'train' if split == 0 else 'val'} split is empty")
            self._mem: Tensor | None = None
            if self._ds.size < max_bytes:  # uint8: elements == bytes
                self._mem = torch.from_numpy(self._ds[()][self.rows])
                self.close()
        except BaseException:
            self.close()
            raise

    def _check(self, f: h5py.File, kind: str) -> h5py.Dataset:
        if kind not in f or ("split" not in f and "video_split" not in f):
            other = "clips" if kind == "images" else "images"
            hint = f" (it holds {other!r}: wrong stream for this store?)" if other in f else ""
            raise DataStoreError(f"{self.path}: needs datasets {kind!r} and 'split'{hint}; found {sorted(f)}")
        ds = f[kind]
        ndim = 4 if kind == "images" else 5
        if ds.dtype != np.uint8 or ds.ndim != ndim or ds.shape[-1] != 3:
            raise DataStoreError(
                f"{self.path}: {kind!r} must be uint8 with {ndim} dims ending in 3 channels, got {ds.dtype} {ds.shape}"
            )
        return ds

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, idx: np.ndarray) -> Tensor:
        """Samples ``idx`` (indices into this split, repeats allowed) as a uint8 tensor."""
        if self._mem is not None:
            return self._mem[torch.from_numpy(np.asarray(idx, dtype=np.int64))]
        unique, inverse = np.unique(self.rows[idx], return_inverse=True)  # h5py wants increasing, unique rows
        return torch.from_numpy(self._ds[unique][inverse])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Prefetch:
    """The training batches of steps ``start`` ... ``stop - 1``, read ahead by a background thread (h5py releases
    the GIL while it reads a disk-backed store) and pinned for an asynchronous copy when the device is a GPU.
    The batch of a step is the one :func:`batch_indices` names, so reading ahead changes no number."""

    def __init__(self, store: _Store, batch_size: int, seed: int, start: int, stop: int, pin: bool,
                 depth: int = 2) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._halt = threading.Event()
        self._args = (store, batch_size, seed, start, stop, pin)
        self._thread = threading.Thread(target=self._run, name="tdann-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        store, batch_size, seed, start, stop, pin = self._args
        try:
            for step in range(start, stop):
                x = store.get(batch_indices(len(store), batch_size, step, seed))
                item = (step, x.pin_memory() if pin else x)
                while not self._halt.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._halt.is_set():
                    return
        except BaseException as err:  # handed to the training loop, which raises it
            self._q.put((None, err))

    def get(self, step: int) -> Tensor:
        got, x = self._q.get()
        if got is None:
            raise x
        if got != step:
            raise RuntimeError(f"prefetch out of order: got the batch of step {got}, expected {step}")
        return x

    def close(self) -> None:
        self._halt.set()
        self._thread.join(timeout=10)


def _seed(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (seed, purpose, step, ...)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] >> np.uint64(1))


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, 0xDA7A, epoch]).permutation(n)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices (into the train split) of the global batch of update ``step`` (0-based).

    Epochs visit the data in a permutation seeded by ``(seed, epoch)``, so the data order is a pure function of
    ``(seed, step)``: a resumed run sees exactly the batches an uninterrupted one would have seen.
    """
    pos = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = pos // n
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        sel = epochs == epoch
        out[sel] = _epoch_permutation(n, seed, int(epoch))[pos[sel] % n]
    return out


def _views(cfg: TrainConfig, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if cfg.data_kind == "clips":
        return augment.clip_views(batch, cfg.clip_len, cfg.input_size, generator)
    return augment.image_views(batch, cfg.input_size, generator)


# --------------------------------------------------------------------------------------------- model pieces


def _build(cfg: TrainConfig) -> tuple[models.Encoder, nn.Module]:
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


def _spatial_losses(cfg: TrainConfig, sheets_path: str | Path, n_per_batch: int,
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


def _check_units(layer: str, features: Tensor, sl: losses.SpatialLoss, sheets_path: str | Path) -> None:
    if features.shape[1] != sl.positions.shape[0]:
        raise TrainConfigError(
            f"{sheets_path}: layer {layer!r} sheet has {sl.positions.shape[0]} units but the model's layer has "
            f"{features.shape[1]} (sheets built for another width, stem or input size?)"
        )


def save_weights(model: nn.Module, path: str | Path, cfg: TrainConfig | None = None) -> Path:
    """Write the encoder's plain state dict atomically (:func:`tdann.models.save_weights`), with its architecture
    from ``cfg`` (the default resnet18 at width 1 without one)."""
    if cfg is None:
        return models.save_weights(model, path, "resnet18")
    return models.save_weights(model, path, cfg.arch, cfg.width, cfg.stem, cfg.input_size, cfg.clip_len)

# --------------------------------------------------------------------------------------------- checkpoints


def _rng_state(device: torch.device) -> dict[str, Any]:
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


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
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


def _check_resume(cfg: TrainConfig, ck: Mapping[str, Any], path: Path) -> None:
    saved, now = ck["config"], cfg.to_dict()
    saved = {**_LATER_FIELDS, **saved}
    diff = [k for k in now if k not in _RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if diff:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ResumeError(f"{path}: checkpoint was written with a different config ({details}); "
                          "use a new run directory or delete the checkpoint")


# --------------------------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    owned: bool = False  # we initialised the process group (and destroy it at the end)

    @property
    def active(self) -> bool:
        return self.world > 1


def _init_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    """Join the process group announced by torchrun's environment (``WORLD_SIZE`` > 1), if any."""
    if dist.is_available() and dist.is_initialized():
        d = _Dist(dist.get_rank(), dist.get_world_size(), owned=False)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        d = _Dist(rank, world, owned=True)
    else:
        return _Dist(), resolve_device(device_name)
    device = resolve_device(device_name)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", d.rank % torch.cuda.device_count()))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if d.owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=d.rank, world_size=d.world)
    return d, device


def _gather_with_grad(x: Tensor) -> Tensor:
    """All-gather along dim 0 that passes gradients back to each rank's own slice (torch's autograd-aware
    ``all_gather``: its backward sums every rank's gradient for the slice, by reduce-scatter on NCCL and
    all-to-all on gloo). Every rank computes the same loss on the gathered tensor; DDP's gradient averaging then
    yields the single-process gradient (tests/unit/test_ddp.py)."""
    return torch.cat(dist_nn.all_gather(x.contiguous()))


# --------------------------------------------------------------------------------------------- signals


class _StopFlag:
    """Sets ``requested`` on SIGTERM (SLURM preemption) while active; a no-op outside the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._installed = False
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._old if self._old is not None else signal.SIG_DFL)
            self._installed = False


# --------------------------------------------------------------------------------------------- log


class _Log:
    """Per-step CSV rows in the run directory, appended in chunks; on resume, rows past the checkpoint are cut."""

    def __init__(self, path: Path, columns: list[str], resume_step: int, enabled: bool) -> None:
        self.path, self.columns, self.enabled = path, columns, enabled
        self.rows: list[dict[str, float]] = []
        if not enabled:
            return
        if resume_step > 0 and path.exists():
            old = pd.read_csv(path)
            if list(old.columns) != columns:
                raise ResumeError(f"{path}: log columns {list(old.columns)} differ from {columns}")
            old[old["step"] <= resume_step].to_csv(path, index=False)
        else:
            pd.DataFrame(columns=columns).to_csv(path, index=False)

    def add(self, row: dict[str, float]) -> None:
        if self.enabled:
            self.rows.append(row)

    def flush(self) -> None:
        if self.enabled and self.rows:
            pd.DataFrame(self.rows, columns=self.columns).to_csv(self.path, mode="a", header=False, index=False)
            self.rows = []

    def last(self) -> dict[str, float]:
        frame = pd.read_csv(self.path)
        return frame.iloc[-1].to_dict() if len(frame) else {}


# --------------------------------------------------------------------------------------------- training


def train(
    cfg: TrainConfig,
    data_path: str | Path,
    sheets_path: str | Path,
    run_dir: str | Path,
    weights_out: str | Path,
    log_csv: str | Path,
    progress: bool | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume training of) one network; write its encoder weights and per-step log.

    Returns a summary: steps, the step resumed from, the last step's losses, wall time and output paths.
    ``on_step(step)`` is called after every completed update (after any checkpoint): a test hook.

    Multi-GPU (torchrun): every rank draws the same *global* batch and the same augmentations (so results do not
    depend on the number of GPUs) and keeps its slice. SimCLR embeddings are all-gathered (with gradients), so the
    NT-Xent loss sees the whole global batch as in one process; so does the spatial loss (the units of the sampled
    neighbourhoods are all-gathered). BatchNorm statistics are per rank (the local slice) unless ``sync_bn``
    (CUDA only); ``bn_groups`` reproduces per-rank BatchNorm on one device, and ``tests/unit/test_ddp.py`` checks
    that 2 gloo ranks equal one process with ``bn_groups=2``. With MoCo each rank keeps its own queue of its own
    keys (no cross-rank enqueue). Only rank 0 writes checkpoints, logs and weights.
    """
    run_dir, weights_out, log_csv = Path(run_dir), Path(weights_out), Path(log_csv)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ddp, device = _init_distributed(cfg.device)
    try:
        return _train(cfg, data_path, sheets_path, run_dir, weights_out, log_csv, progress, on_step, ddp, device)
    finally:
        if ddp.owned and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, data_path: str | Path, sheets_path: str | Path, run_dir: Path, weights_out: Path,
           log_csv: Path, progress: bool | None, on_step: Callable[[int], None] | None, ddp: _Dist,
           device: torch.device) -> dict[str, Any]:
    if cfg.batch_size % ddp.world or cfg.batch_size // ddp.world < 2:
        raise TrainConfigError(f"batch_size {cfg.batch_size} must be divisible by the {ddp.world} ranks, >= 2 each")
    if ddp.active and cfg.bn_groups != 1:
        raise TrainConfigError("bn_groups > 1 emulates several GPUs on one; use bn_groups = 1 under DDP")
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT_NAME
    store = _Store(data_path, cfg.data_kind, split=0)
    encoder, task = _build(cfg)
    sls = {k: v.to(device) for k, v in _spatial_losses(cfg, sheets_path, cfg.neighborhoods_per_batch,
                                                        encoder).items()}
    encoder.to(device), task.to(device)
    fmt = _memory_format(cfg)
    if fmt is not None:
        task.to(memory_format=fmt)
    if cfg.amp == "bf16" and device.type != "cuda":
        log_.info("amp: bf16 is a CUDA setting; training on %s in float32", device)
    if ddp.active and cfg.sync_bn:
        if device.type != "cuda":
            raise TrainConfigError("sync_bn needs CUDA (torch's SyncBatchNorm has no CPU implementation)")
        task = nn.SyncBatchNorm.convert_sync_batchnorm(task)
        encoder = task.encoder if cfg.task == "simclr" else task.encoder_q
    params = [p for p in task.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))

    start = 0
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        _check_resume(cfg, ck, ckpt_path)
        task.load_state_dict(ck["task"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"], device)
        start = int(ck["step"])
        log_.info("resuming %s from step %d of %d", ckpt_path, start, cfg.steps)
    net: nn.Module = task
    if ddp.active:
        net = nn.parallel.DistributedDataParallel(
            task, device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=cfg.task != "moco",  # MoCo: rank-local queues (and BN statistics)
        )

    columns = ["step", "task_loss", "task_top1", *[f"sl_{k}" for k in cfg.layers], "total_loss", "lr",
               "samples_per_s"]
    log = _Log(run_dir / RUN_LOG_NAME, columns, start, enabled=ddp.rank == 0)

    def save_checkpoint(step: int) -> None:
        log.flush()
        bad = [k for k, v in task.named_parameters() if not bool(torch.isfinite(v).all())]
        if bad:  # a finite loss can still be followed by an overflowing update: keep the last good checkpoint
            raise NonFiniteLossError(
                f"non-finite parameters after step {step} ({len(bad)} tensors, first {bad[0]!r}); checkpoint not "
                f"written, last good checkpoint: {ckpt_path if ckpt_path.exists() else 'none'}")
        if ddp.rank == 0:
            models.atomic_save({
                "format": CHECKPOINT_FORMAT, "step": step, "config": cfg.to_dict(),
                "model": encoder.state_dict(), "task": task.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": _rng_state(device),
                "generators": _generator_seeds(cfg, step),
            }, ckpt_path)

    t_start = time.perf_counter()
    bar = Progress(cfg.steps, "train", "step", enabled=False if ddp.rank != 0 else progress, milestones=0, initial=start)
    last: dict[str, float] = {}
    on_gpu = device.type == "cuda"
    batches = _Prefetch(store, cfg.batch_size, cfg.seed, start, cfg.steps, pin=on_gpu)
    with models.FeatureTaps(encoder, cfg.layers, time_average=cfg.time_average) as taps, _StopFlag() as stop, \
            contextlib.closing(batches):
        task.train()
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(_seed(cfg.seed, 1, step))
            x = batches.get(step).to(device, non_blocking=on_gpu)
            v1, v2 = _views(cfg, x, gen)  # the global batch, on every rank
            n_local = cfg.batch_size // ddp.world
            v1, v2 = (v[ddp.rank * n_local:(ddp.rank + 1) * n_local] for v in (v1, v2))
            if fmt is not None:
                v1, v2 = v1.contiguous(memory_format=fmt), v2.contiguous(memory_format=fmt)
            task_loss, top1, sl_values = _step_losses(cfg, net, taps, sls, v1, v2, step, ddp, sheets_path)
            total = task_loss + sum(cfg.layer_alpha(k) * v for k, v in sl_values.items())

            terms = torch.stack([task_loss.detach(), top1.detach(), *[v.detach() for v in sl_values.values()],
                                 total.detach(), torch.tensor(float(stop.requested), device=device)])
            if ddp.active:
                dist.all_reduce(terms)
                terms[:-1] /= ddp.world
            values = terms.tolist()
            if not all(math.isfinite(v) for v in values[:-1]):
                names = ["task_loss", "task_top1", *[f"sl_{k}" for k in cfg.layers], "total_loss"]
                listing = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, values))
                raise NonFiniteLossError(f"non-finite loss at step {step + 1}: {listing}; last good checkpoint: "
                                         f"{ckpt_path if ckpt_path.exists() else 'none'}")
            lr_now = opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()

            done = step + 1
            row = dict(zip(columns, [done, *values[:-1], lr_now, cfg.batch_size / (time.perf_counter() - t0)]))
            log.add(row)
            last = row
            bar.update(1)
            if done % cfg.log_every == 0:
                log.flush()
                if ddp.rank == 0:
                    log_.info("step %d/%d: %s", done, cfg.steps, ", ".join(
                        f"{k} {row[k]:.4g}" for k in ("task_loss", "task_top1", "total_loss", "lr", "samples_per_s")))
                bar.set_postfix(loss=f"{row['total_loss']:.4f}", task=f"{row['task_loss']:.4f}")
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                save_checkpoint(done)
            if on_step is not None:
                on_step(done)
            if (values[-1] > 0) if ddp.active else stop.requested:  # ranks stop together
                if done % cfg.checkpoint_every and done != cfg.steps:
                    save_checkpoint(done)
                bar.close()
                raise Preempted(f"SIGTERM at step {done}: checkpoint written to {ckpt_path}; rerun to resume "
                                f"(exit code {EXIT_PREEMPTED})")
    bar.close()
    store.close()
    if start >= cfg.steps and ddp.rank == 0:
        last = log.last() if (run_dir / RUN_LOG_NAME).exists() else {}
    log.flush()
    if ddp.rank == 0:
        save_weights(encoder, weights_out, cfg)
        head = task.get_submodule("head" if cfg.task == "simclr" else "head_q")
        models.atomic_save({k: v.detach().cpu().clone() for k, v in head.state_dict().items()}, run_dir / HEAD_NAME)
        log_csv.parent.mkdir(parents=True, exist_ok=True)
        if (run_dir / RUN_LOG_NAME).resolve() != log_csv.resolve():
            shutil.copyfile(run_dir / RUN_LOG_NAME, log_csv)
    if ddp.active:
        dist.barrier()
    return {"steps": cfg.steps, "resumed_from": start, "last": last, "seconds": time.perf_counter() - t_start,
            "weights": str(weights_out), "head": str(run_dir / HEAD_NAME), "checkpoint": str(ckpt_path),
            "world_size": ddp.world, "device": str(device)}


def _generator_seeds(cfg: TrainConfig, step: int) -> dict[str, int]:
    """Seeds of the next update's generators. They are derived from ``(seed, step)`` (data order from
    ``(seed, epoch)``), so resuming needs no stored generator state; they are recorded for audit only."""
    return {"next_step": step, "augment": _seed(cfg.seed, 1, step),
            "spatial_loss_first_layer": _seed(cfg.seed, 2, step, 0)}


def _step_losses(cfg: TrainConfig, net: nn.Module, taps: models.FeatureTaps, sls: Mapping[str, losses.SheetLoss],
                 v1: Tensor, v2: Tensor, step: int, ddp: _Dist, sheets_path: str | Path
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Task loss, its top-1 and the spatial loss per layer of one update, from this rank's views.

    SimCLR forwards both views as one batch (in ``bn_groups`` chunks); the spatial loss is computed on the
    tapped features of all of them. MoCo's spatial loss uses the query encoder's features of view 1.
    """
    if cfg.task == "moco":
        gen = torch.Generator().manual_seed(_seed(cfg.seed, 5, step))  # MoCo's key shuffle
        with _autocast(cfg, v1.device):
            loss, top1 = net(v1, v2, generator=gen)
        loss = loss.float()
        feats = {layer: taps.flat(layer) for layer in cfg.layers}
        return loss, top1.float(), _spatial(cfg, sls, feats, step, ddp, sheets_path)
    z1s, z2s, chunks = [], [], []
    bn_state: list[tuple[nn.Module, str, Tensor]] = []
    for g, (c1, c2) in enumerate(zip(v1.chunk(cfg.bn_groups), v2.chunk(cfg.bn_groups))):
        with _autocast(cfg, v1.device):
            z = net(torch.cat([c1, c2]))
        z1s.append(z[: len(c1)])
        z2s.append(z[len(c1):])
        chunks.append({layer: taps.flat(layer) for layer in cfg.layers})
        if g == 0 and cfg.bn_groups > 1:  # running statistics follow group 0, as DDP keeps rank 0's
            bn_state = [(m, k, b.clone()) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                        for k, b in m._buffers.items() if b is not None]
    for module, name, saved in bn_state:  # replace, not copy_: autograd saved the updated tensors
        module._buffers[name] = saved
    feats = {layer: torch.cat([c[layer] for c in chunks]) for layer in cfg.layers}
    z1, z2 = torch.cat(z1s), torch.cat(z2s)
    if ddp.active:
        z1, z2 = _gather_with_grad(z1), _gather_with_grad(z2)
    loss, top1 = ssl.nt_xent(z1, z2, cfg.temperature)
    return loss, top1.float(), _spatial(cfg, sls, feats, step, ddp, sheets_path)


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast of a forward pass when ``cfg.amp == "bf16"`` on a CUDA device (the losses computed after it
    stay float32). On a CPU the setting is ignored: CPU bf16 is slower than float32 there, and its BatchNorm over
    3D feature maps overflowed the running variance within one step (r3d_18, torch 2.14)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16" and device.type == "cuda")


def _memory_format(cfg: TrainConfig) -> torch.memory_format | None:
    return models.memory_format(cfg.arch) if cfg.channels_last else None


def _spatial(cfg: TrainConfig, sls: Mapping[str, losses.SheetLoss], feats: Mapping[str, Tensor], step: int, ddp: _Dist,
             sheets_path: str | Path) -> dict[str, Tensor]:
    """Spatial loss per layer on ``neighborhoods_per_batch`` neighbourhoods drawn from ``(seed, step, layer)``.

    Under DDP only the units of the sampled neighbourhoods are all-gathered (with gradients), so the correlations
    run over the global batch exactly as in one process, at a cost of n*k values per sample and layer.
    Layers with alpha 0 are computed on detached features: logged, not trained.
    """
    out = {}
    for i, (layer, sl) in enumerate(sls.items()):
        if isinstance(sl, losses.TopoWeightLoss):  # weights, replicated on every rank: no features, no gather
            out[layer] = sl.loss_at() if cfg.layer_alpha(layer) else sl.loss_at().detach()
            continue
        f = feats[layer]
        _check_units(layer, f, sl, sheets_path)
        if cfg.layer_alpha(layer) == 0:
            f = f.detach()
        idx = sl.sample(torch.Generator().manual_seed(_seed(cfg.seed, 2, step, i)))
        if not ddp.active:
            out[layer] = sl.loss_at(f, idx)
            continue
        nbs = sl.neighborhoods[idx]
        n, k = nbs.shape
        sub = _gather_with_grad(f[:, nbs.reshape(-1)])  # (global batch, n*k)
        one = losses.sl_rel if cfg.sl_kind == "rel" else losses.sl_abs
        per_nb = [one(sub[:, j * k:(j + 1) * k].float(), sl.positions[nbs[j]]) for j in range(n)]
        out[layer] = torch.stack(per_nb).mean()
    return out


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
    store = _Store(data_path, cfg.data_kind, split=1)
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
    sls = {k: v.to(device) for k, v in _spatial_losses(cfg, sheets_path, neighborhoods_per_batch, encoder).items()}
    totals: dict[str, float] = {"task_loss": 0.0, "task_top1": 0.0, **{f"sl_{k}": 0.0 for k in cfg.layers}}
    with models.FeatureTaps(encoder, cfg.layers, time_average=cfg.time_average) as taps:
        order = np.random.default_rng([int(seed), 0xE7A1])
        for b in range(n_batches):
            # distinct samples per batch, drawn across the whole split: consecutive clips of one video overlap in
            # time, and a batch of them would make the partner task unfairly hard for every network alike
            idx = np.sort(order.choice(len(store), size=batch, replace=False))
            v1, v2 = _views(cfg, store.get(idx).to(device), torch.Generator().manual_seed(_seed(seed, 3, b)))
            z = project(torch.cat([v1, v2]))
            loss, top1 = ssl.nt_xent(z[:batch], z[batch:], cfg.temperature)
            totals["task_loss"] += float(loss)
            totals["task_top1"] += float(top1)
            for i, (layer, sl) in enumerate(sls.items()):
                feats = taps.flat(layer)
                if not isinstance(sl, losses.TopoWeightLoss):
                    _check_units(layer, feats, sl, sheets_path)
                totals[f"sl_{layer}"] += float(sl(feats, torch.Generator().manual_seed(_seed(seed, 4, b, i))))
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


# --------------------------------------------------------------------------------------------- torchrun entry


PREEMPTED_FLAG = "preempted"  # written by rank 0 of a torchrun job that stopped on SIGTERM


def train_distributed(cfg: TrainConfig, data_path: str | Path, sheets_path: str | Path, run_dir: str | Path,
                      weights_out: str | Path, log_csv: str | Path, nproc: int) -> dict[str, Any]:
    """:func:`train` in ``nproc`` processes under torchrun (DDP: NCCL on GPUs, gloo on CPUs), from a rule's job.

    The config goes to the ranks as JSON in ``run_dir``; rank 0 writes the statistics :func:`train` returns. A
    SIGTERM (SLURM preemption) reaches every rank: they checkpoint together and this raises :class:`Preempted`, so
    the job exits 75 and its retry resumes, as a one-process job does."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path, stats_path, flag = run_dir / "ddp_config.json", run_dir / "ddp_stats.json", run_dir / PREEMPTED_FLAG
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    stats_path.unlink(missing_ok=True)
    flag.unlink(missing_ok=True)
    library = str(Path(__file__).resolve().parents[1])  # this checkout's tdann, for every rank
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, *inherited])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "tdann.training", "--config", str(cfg_path), "--data", str(data_path), "--sheets", str(sheets_path),
           "--run-dir", str(run_dir), "--weights", str(weights_out), "--log-csv", str(log_csv),
           "--stats", str(stats_path)]
    log_.info("DDP over %d processes: %s", nproc, " ".join(cmd))
    done = subprocess.run(cmd, env=env)
    if flag.exists() or done.returncode == EXIT_PREEMPTED:
        flag.unlink(missing_ok=True)
        raise Preempted(f"SIGTERM: the {nproc} ranks checkpointed to {run_dir}; rerun to resume "
                        f"(exit code {EXIT_PREEMPTED})")
    if done.returncode != 0 or not stats_path.exists():
        raise TrainingError(f"torchrun over {nproc} processes exited {done.returncode} ({run_dir}; the ranks' "
                            "errors are in this job's log above)")
    return json.loads(stats_path.read_text())


def main_ddp(argv: list[str] | None = None) -> int:
    """Entry point for ``torchrun --nproc_per_node=N -m tdann.training --config cfg.json ...``.

    The JSON file holds a :class:`TrainConfig` dict. Returns 0, or :data:`EXIT_PREEMPTED` after SIGTERM.
    """
    p = argparse.ArgumentParser(prog="python -m tdann.training", description=main_ddp.__doc__)
    p.add_argument("--config", required=True, help="JSON file with the TrainConfig fields")
    p.add_argument("--data", required=True, help="HDF5 image or clip store")
    p.add_argument("--sheets", required=True, help="HDF5 sheets file (positions, neighbourhoods)")
    p.add_argument("--run-dir", required=True, help="directory for checkpoints (resumed from if present)")
    p.add_argument("--weights", required=True, help="output: encoder state dict")
    p.add_argument("--log-csv", required=True, help="output: per-step CSV log")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stats", help="output (rank 0): JSON of the run's statistics")
    args = p.parse_args(argv)
    try:
        cfg = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    except (OSError, json.JSONDecodeError) as err:
        raise TrainConfigError(f"{args.config}: cannot read config ({err})") from err
    rank0 = int(os.environ.get("RANK", "0")) == 0
    try:
        stats = train(cfg, args.data, args.sheets, args.run_dir, args.weights, args.log_csv,
                      progress=False if args.no_progress else None)
    except Preempted as err:
        print(err, file=sys.stderr)
        if rank0:
            (Path(args.run_dir) / PREEMPTED_FLAG).write_text(str(err))
        return EXIT_PREEMPTED
    if args.stats and rank0:
        Path(args.stats).write_text(json.dumps(stats, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main_ddp())
