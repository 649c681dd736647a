"""DistributedDataParallel plumbing: the process group torchrun announces and the gather with gradients."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor

from ..runtime import resolve_device

# --------------------------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    owned: bool = False  # we initialised the process group (and destroy it at the end)

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group announced by torchrun's environment (``WORLD_SIZE`` > 1), if any."""
    if dist.is_available() and dist.is_initialized():
        d = Dist(dist.get_rank(), dist.get_world_size(), owned=False)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        d = Dist(rank, world, owned=True)
    else:
        return Dist(), resolve_device(device_name)
    device = resolve_device(device_name)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", d.rank % torch.cuda.device_count()))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if d.owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=d.rank, world_size=d.world)
    return d, device


def gather_with_grad(x: Tensor) -> Tensor:
    """All-gather along dim 0 that passes gradients back to each rank's own slice (torch's autograd-aware
    ``all_gather``: its backward sums every rank's gradient for the slice, by reduce-scatter on NCCL and
    all-to-all on gloo). Every rank computes the same loss on the gathered tensor; DDP's gradient averaging then
    yields the single-process gradient (tests/unit/test_ddp.py)."""
    return torch.cat(dist_nn.all_gather(x.contiguous()))
