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

Modules: ``config`` (:class:`TrainConfig`, errors, schedule), ``batches`` (store, read-ahead, data order, views),
``build`` (encoder, task head, spatial losses), ``checkpoint`` (weights, resumable state), ``distributed`` (process
group, gather), ``loop`` (:func:`train`), ``evaluate`` (:func:`evaluate`), ``torchrun`` (several processes per job).
"""

from .batches import TrainingStore, batch_indices
from .checkpoint import load_checkpoint, save_weights
from .config import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    EXIT_PREEMPTED,
    HEAD_NAME,
    LEARNT_LOSS_RATIO,
    RUN_LOG_NAME,
    DataStoreError,
    NonFiniteLossError,
    Preempted,
    ResumeError,
    TrainConfig,
    TrainConfigError,
    TrainingError,
    lr_factor,
    run_key,
    scaled_lr,
)
from .evaluate import evaluate
from .loop import train
from .torchrun import PREEMPTED_FLAG, main_ddp, train_distributed

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "EXIT_PREEMPTED", "HEAD_NAME", "LEARNT_LOSS_RATIO", "PREEMPTED_FLAG",
    "RUN_LOG_NAME", "DataStoreError", "NonFiniteLossError", "Preempted", "ResumeError", "TrainConfig",
    "TrainConfigError", "TrainingError", "TrainingStore", "batch_indices", "evaluate", "load_checkpoint", "lr_factor",
    "main_ddp", "run_key", "save_weights", "scaled_lr", "train", "train_distributed",
]
