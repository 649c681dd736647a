"""Chance values of the contrastive tasks, against a network that learnt nothing (uniform logits)."""

import math

import numpy as np
import pytest

from tdann import chance


def _uniform_cross_entropy(n_candidates: int) -> float:
    logits = np.zeros(n_candidates)
    return float(-(logits[0] - np.log(np.exp(logits).sum())))


@pytest.mark.parametrize("task, batch, k, neg, candidates", [
    ("simclr", 32, 0, False, 63), ("moco", 16, 1024, False, 1025), ("moco", 16, 256, True, 256 + 16),
])
def test_training_loss_chance_is_the_uniform_cross_entropy(task, batch, k, neg, candidates):
    assert chance.training_loss_chance(task, batch, k, neg) == pytest.approx(_uniform_cross_entropy(candidates))


def test_queue_warmup_and_bad_settings():
    assert chance.queue_warmup_steps(1024, 16) == 64 and chance.queue_warmup_steps(0, 16) == 0
    assert chance.chance_levels(16)["task_top1_chance"] == pytest.approx(1 / 31)
    with pytest.raises(ValueError, match="moco_k"):
        chance.training_loss_chance("moco", 16, 0)
    with pytest.raises(ValueError, match="task"):
        chance.training_loss_chance("byol", 16)
    assert math.isclose(chance.training_loss_chance("simclr", 1), 0.0)
