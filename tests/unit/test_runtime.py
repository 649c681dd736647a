"""Device choice and seeding (tdann.runtime)."""

import random

import numpy as np
import pytest
import torch

from tdann import runtime


def test_auto_picks_what_the_machine_has_and_cuda_without_one_is_an_error():
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(runtime.DeviceError, match="'cuda' requested"):
            runtime.resolve_device("cuda")


def test_seed_everything_repeats_python_numpy_and_torch_draws():
    def draws():
        runtime.seed_everything(3)
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    assert draws() == draws()
