"""Chance values of the contrastive tasks: what a network that learnt nothing scores (torch-free, for tables and
figures as well as training).

A collapsed or random embedding cannot tell a view's partner from the other candidates, so its cross-entropy is the
log of the number of candidates and its top-1 one over that number:

* SimCLR (NT-Xent over 2B views): each view has 2B - 1 candidates -> ``ln(2B - 1)``, ``1 / (2B - 1)``. The held-out
  measure of every model (``tdann.training.evaluate``) is this in-batch one, for both tasks.
* MoCo v2 training loss: the positive key against K queued keys -> ``ln(K + 1)``; with in-batch negatives
  (``optim.moco_batch_negatives``) also against the batch's B - 1 other keys -> ``ln(K + B)``. The queue starts
  with random keys and is refilled after ``K / B`` steps (the warm-up).
"""

from __future__ import annotations

import math


def chance_levels(batch_size: int) -> dict[str, float]:
    """Chance of the held-out in-batch measure for ``batch_size`` pairs: NT-Xent and top-1."""
    n = 2 * int(batch_size) - 1
    if n < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return {"task_loss_chance": math.log(n), "task_top1_chance": 1.0 / n}


def training_loss_chance(task: str, batch_size: int, moco_k: int = 0, batch_negatives: bool = False) -> float:
    """Chance value of the training loss that the train log records."""
    if task == "simclr":
        return chance_levels(batch_size)["task_loss_chance"]
    if task == "moco":
        if int(moco_k) < 1:
            raise ValueError(f"moco needs a queue (moco_k >= 1), got {moco_k}")
        return math.log(int(moco_k) + 1 + (int(batch_size) - 1 if batch_negatives else 0))
    raise ValueError(f"unknown task {task!r}")


def queue_warmup_steps(moco_k: int, batch_size: int) -> int:
    """Steps until MoCo's queue holds only keys of the network (none of its random initial keys)."""
    return math.ceil(int(moco_k) / int(batch_size)) if int(moco_k) > 0 else 0
