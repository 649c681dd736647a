"""The training loop: the task and spatial losses per step, SIGTERM, the CSV log, checkpoints, resume."""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import losses, models, ssl
from ..progress import Progress
from .batches import Prefetch, TrainingStore, seed_of, views
from .build import build, check_units, spatial_losses
from .checkpoint import check_resume, load_checkpoint, rng_state, save_weights, set_rng_state
from .config import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    EXIT_PREEMPTED,
    HEAD_NAME,
    RUN_LOG_NAME,
    NonFiniteLossError,
    Preempted,
    ResumeError,
    TrainConfig,
    TrainConfigError,
    log_,
    lr_factor,
)
from .distributed import Dist, gather_with_grad, init_distributed

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
    ddp, device = init_distributed(cfg.device)
    try:
        return _train(cfg, data_path, sheets_path, run_dir, weights_out, log_csv, progress, on_step, ddp, device)
    finally:
        if ddp.owned and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, data_path: str | Path, sheets_path: str | Path, run_dir: Path, weights_out: Path,
           log_csv: Path, progress: bool | None, on_step: Callable[[int], None] | None, ddp: Dist,
           device: torch.device) -> dict[str, Any]:
    if cfg.batch_size % ddp.world or cfg.batch_size // ddp.world < 2:
        raise TrainConfigError(f"batch_size {cfg.batch_size} must be divisible by the {ddp.world} ranks, >= 2 each")
    if ddp.active and cfg.bn_groups != 1:
        raise TrainConfigError("bn_groups > 1 emulates several GPUs on one; use bn_groups = 1 under DDP")
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT_NAME
    store = TrainingStore(data_path, cfg.data_kind, split=0)
    encoder, task = build(cfg)
    sls = {k: v.to(device) for k, v in spatial_losses(cfg, sheets_path, cfg.neighborhoods_per_batch,
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
        check_resume(cfg, ck, ckpt_path)
        task.load_state_dict(ck["task"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"], device)
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
                "scheduler": sched.state_dict(), "rng": rng_state(device),
                "generators": _generator_seeds(cfg, step),
            }, ckpt_path)

    t_start = time.perf_counter()
    bar = Progress(cfg.steps, "train", "step", enabled=False if ddp.rank != 0 else progress, milestones=0, initial=start)
    last: dict[str, float] = {}
    on_gpu = device.type == "cuda"
    batches = Prefetch(store, cfg.batch_size, cfg.seed, start, cfg.steps, pin=on_gpu)
    with models.FeatureTaps(encoder, cfg.layers, time_average=cfg.time_average) as taps, _StopFlag() as stop, \
            contextlib.closing(batches):
        task.train()
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(seed_of(cfg.seed, 1, step))
            x = batches.get(step).to(device, non_blocking=on_gpu)
            v1, v2 = views(cfg, x, gen)  # the global batch, on every rank
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
    return {"next_step": step, "augment": seed_of(cfg.seed, 1, step),
            "spatial_loss_first_layer": seed_of(cfg.seed, 2, step, 0)}


def _step_losses(cfg: TrainConfig, net: nn.Module, taps: models.FeatureTaps, sls: Mapping[str, losses.SheetLoss],
                 v1: Tensor, v2: Tensor, step: int, ddp: Dist, sheets_path: str | Path
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Task loss, its top-1 and the spatial loss per layer of one update, from this rank's views.

    SimCLR forwards both views as one batch (in ``bn_groups`` chunks); the spatial loss is computed on the
    tapped features of all of them. MoCo's spatial loss uses the query encoder's features of view 1.
    """
    if cfg.task == "moco":
        gen = torch.Generator().manual_seed(seed_of(cfg.seed, 5, step))  # MoCo's key shuffle
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
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    loss, top1 = ssl.nt_xent(z1, z2, cfg.temperature)
    return loss, top1.float(), _spatial(cfg, sls, feats, step, ddp, sheets_path)


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast of a forward pass when ``cfg.amp == "bf16"`` on a CUDA device (the losses computed after it
    stay float32). On a CPU the setting is ignored: CPU bf16 is slower than float32 there, and its BatchNorm over
    3D feature maps overflowed the running variance within one step (r3d_18, torch 2.14)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16" and device.type == "cuda")


def _memory_format(cfg: TrainConfig) -> torch.memory_format | None:
    return models.memory_format(cfg.arch) if cfg.channels_last else None


def _spatial(cfg: TrainConfig, sls: Mapping[str, losses.SheetLoss], feats: Mapping[str, Tensor], step: int, ddp: Dist,
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
        check_units(layer, f, sl, sheets_path)
        if cfg.layer_alpha(layer) == 0:
            f = f.detach()
        idx = sl.sample(torch.Generator().manual_seed(seed_of(cfg.seed, 2, step, i)))
        if not ddp.active:
            out[layer] = sl.loss_at(f, idx)
            continue
        nbs = sl.neighborhoods[idx]
        n, k = nbs.shape
        sub = gather_with_grad(f[:, nbs.reshape(-1)])  # (global batch, n*k)
        one = losses.sl_rel if cfg.sl_kind == "rel" else losses.sl_abs
        per_nb = [one(sub[:, j * k:(j + 1) * k].float(), sl.positions[nbs[j]]) for j in range(n)]
        out[layer] = torch.stack(per_nb).mean()
    return out
