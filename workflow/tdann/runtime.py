"""Where and how a step runs: the device, and seeding of every random number generator a step uses.

Light on purpose: steps that never touch torch (tables, figures) import this through provenance, so torch is
imported only where a caller asks for a device or has imported it already.
"""

from __future__ import annotations

import contextlib
import random
import sys
from typing import Any


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def resolve_device(name: str) -> Any:
    """``auto`` -> CUDA if available, else CPU; asking for CUDA without one raises :class:`DeviceError`."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available (run.device: auto uses the CPU)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (torch only where the caller has imported it: importing torch costs ~3 s per
    job, which steps that never use it should not pay)."""
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
