"""The training configuration (:class:`TrainConfig`), its errors, and the schedule and key derived from it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import models

#: Exit code of a preempted run (EX_TEMPFAIL from sysexits.h): "try again later".
EXIT_PREEMPTED = 75
CHECKPOINT_NAME = "checkpoint.pt"
HEAD_NAME = "head.pt"
RUN_LOG_NAME = "train_log.csv"
CHECKPOINT_FORMAT = "tdann.training/1"
log_ = logging.getLogger("tdann.training")

# Config fields that may change between a run and its resumption; every other field must match the checkpoint.
RESUMABLE_CHANGES = ("device", "threads", "checkpoint_every", "log_every", "eval_batches")
#: fields added after checkpoints were written: a config at these values keys and resumes as before they existed
LATER_FIELDS = {"amp": "none", "channels_last": False, "topo_factor": 3.0}


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
              if k not in RESUMABLE_CHANGES and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
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
