"""Tests of tdann.swapopt: the fast batched path against the plain reference, and SwapOpt's properties."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import oracles
from tdann import swapopt as so

LIB = Path(so.__file__).resolve().parents[1]


def smooth_layer(n_units: int, n_stim: int, side: float, seed: int, n_dead: int = 0):
    """Units whose responses depend smoothly on a hidden 2D coordinate; positions are those coordinates shuffled."""
    rng = np.random.default_rng(seed)
    hidden = rng.uniform(0, side, size=(n_units, 2))
    freqs = rng.normal(size=(n_stim, 2)) * 2 * np.pi / side * 1.5
    phases = rng.uniform(0, 2 * np.pi, size=(n_stim, 1))
    responses = np.cos(freqs @ hidden.T + phases) + 0.3 * rng.normal(size=(n_stim, n_units))
    responses[:, :n_dead] = 0.25  # constant (dead) units
    positions = hidden[rng.permutation(n_units)].astype(np.float32)
    return responses, positions


@pytest.mark.parametrize("lockstep_min", [1, so.CPU_LOCKSTEP_MIN])  # torch lockstep / numpy window loop
def test_fast_equals_reference_same_accepted_swaps(monkeypatch, lockstep_min):
    """Same seed -> the fast path (float64) and the reference make the same swaps in every window."""
    monkeypatch.setattr(so, "CPU_LOCKSTEP_MIN", lockstep_min)
    responses, positions = smooth_layer(300, 48, side=10.0, seed=1, n_dead=3)
    args = dict(width=3.0, n_windows=40, attempts_per_window=50, max_units=25, seed=7, per_window=True)
    ref_pos, ref = oracles.swapopt_reference(responses, positions, **args)
    assert ref["windows"] >= 35 and ref["accepted"] > 0
    assert (ref["window_units"] == 25).any() and (ref["window_units"] < 25).any()  # subsampled and whole windows
    for per_batch in (1, 8):
        pos, fast = so.swapopt(responses, positions, dtype=torch.float64, windows_per_batch=per_batch, **args)
        np.testing.assert_array_equal(fast["window_index"], ref["window_index"])
        np.testing.assert_array_equal(fast["window_accepted"], ref["window_accepted"])
        np.testing.assert_array_equal(pos, ref_pos)
        np.testing.assert_allclose(fast["window_sl_before"], ref["window_sl_before"], atol=1e-9)
        np.testing.assert_allclose(fast["window_sl_after"], ref["window_sl_after"], atol=1e-9)
        assert fast["attempts"] == ref["attempts"] == ref["windows"] * 50
    assert fast["batches"] < fast["windows"]  # windows really ran together


def test_positions_are_a_permutation_and_loss_never_increases():
    responses, positions = smooth_layer(400, 32, side=10.0, seed=2)
    new, stats = so.swapopt(responses, positions, 2.5, n_windows=60, attempts_per_window=200, seed=0,
                            per_window=True)
    assert new.dtype == np.float32 and new.shape == positions.shape
    assert not np.array_equal(new, positions)
    np.testing.assert_array_equal(np.sort(new.view("f4,f4"), axis=0), np.sort(positions.view("f4,f4"), axis=0))
    assert (stats["window_sl_after"] <= stats["window_sl_before"] + 1e-6).all()
    assert (stats["window_sl_after"][stats["window_accepted"] > 0] < stats["window_sl_before"][
        stats["window_accepted"] > 0]).all()


def test_two_row_test_equals_full_window_decrease():
    """The O(k) acceptance test agrees with recomputing the full-window SL (module docstring's claim)."""
    rng = np.random.default_rng(3)
    k = 30
    responses = rng.normal(size=(20, k)) + np.linspace(0, 3, k)[None] * rng.normal(size=(20, 1))
    corr = oracles._reference_corr(responses)
    coords = rng.uniform(0, 2, size=(k, 2))
    decisions = 0
    for a, b in so.draw_pairs(rng, k, 100):
        swapped = coords.copy()
        swapped[[a, b]] = swapped[[b, a]]
        full = so.window_sl(corr, swapped) < so.window_sl(corr, coords)
        _, accepted = oracles.swap_window_reference(corr, coords, np.array([[a, b]]))
        _slot, fast, _, _ = so.swap_windows([torch.tensor(corr)], [torch.tensor(coords)], torch.tensor([[[a, b]]]))
        assert full == bool(accepted) == bool(fast.item())
        decisions += full
    assert 10 < decisions < 90


def test_ties_are_rejected():
    """A swap that leaves the loss unchanged is not kept: two dead units, or two units on the same spot."""
    rng = np.random.default_rng(8)
    responses = rng.normal(size=(16, 12))
    responses[:, :2] = 1.0  # units 0 and 1 are dead: identical (zero) correlation rows
    corr = oracles._reference_corr(responses)
    coords = rng.uniform(0, 1, size=(12, 2))
    coords[3] = coords[2]
    pairs = np.array([[0, 1], [1, 0], [2, 3], [3, 2]] * 5)
    _, accepted = oracles.swap_window_reference(corr, coords, pairs)
    _, fast, before, after = so.swap_windows([torch.tensor(corr)], [torch.tensor(coords)],
                                             torch.tensor(pairs)[:, None])
    assert accepted == 0 and fast.item() == 0 and after.item() == pytest.approx(before.item())


def test_seeds_differ_and_windows_draw_their_own_pairs():
    responses, positions = smooth_layer(300, 32, side=10.0, seed=4)
    a, _ = so.swapopt(responses, positions, 3.0, n_windows=20, attempts_per_window=100, seed=0)
    b, _ = so.swapopt(responses, positions, 3.0, n_windows=20, attempts_per_window=100, seed=1)
    c, _ = so.swapopt(responses, positions, 3.0, n_windows=20, attempts_per_window=100, seed=0)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    windows = list(so.draw_windows(positions, 3.0, 20, 100, max_units=20, seed=0))
    same_size = [w for w in windows if w.size == 20]
    assert len(same_size) >= 2
    first = same_size[0].pairs
    assert all(not np.array_equal(first, w.pairs) for w in same_size[1:])
    assert all((w.pairs[:, 0] != w.pairs[:, 1]).all() and w.pairs.max() < w.size for w in windows)


def test_lowers_window_loss_on_structured_layer():
    """Shuffled positions of smoothly tuned units: SwapOpt recovers part of the map (lower SL, nearby alike)."""
    responses, positions = smooth_layer(1500, 40, side=20.0, seed=5)
    new, stats = so.swapopt(responses, positions, 4.0, n_windows=300, attempts_per_window=300, seed=0)
    assert stats["sl_after"] < stats["sl_before"] - 0.03
    assert stats["accepted"] > 0.05 * stats["attempts"]

    def near_corr(pos: np.ndarray) -> float:  # mean correlation of unit pairs closer than 1 mm
        corr = oracles._reference_corr(responses)
        d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
        close = (d < 1.0) & ~np.eye(len(pos), dtype=bool)
        return float(corr[close].mean())

    assert near_corr(new) > near_corr(positions) + 0.05


def test_bad_inputs_raise_clear_errors():
    responses, positions = smooth_layer(50, 8, side=5.0, seed=6)
    with pytest.raises(so.SwapOptError, match="width"):
        so.swapopt(responses, positions, 50.0, n_windows=2)
    with pytest.raises(so.SwapOptError, match="responses"):
        so.swapopt(responses[:, :40], positions, 1.0, n_windows=2)
    bad = responses.copy()
    bad[0, 0] = np.nan
    with pytest.raises(so.SwapOptError, match="NaN"):
        so.swapopt(bad, positions, 1.0, n_windows=2)
    with pytest.raises(so.SwapOptError, match="n_windows"):
        so.swapopt(responses, positions, 1.0, n_windows=0)
    with pytest.raises(so.SwapOptError, match="windows_per_batch"):
        so.swapopt(responses, positions, 1.0, n_windows=2, windows_per_batch=0)


MEMORY_SCRIPT = """
import json, resource, sys, numpy as np, torch
torch.set_num_threads(1)
from tdann import swapopt as so
n, s = 100_352, 64
rng = np.random.default_rng(0)
responses = rng.normal(size=(s, n)).astype(np.float32)
side = 36.75
positions = rng.uniform(0, side, size=(n, 2)).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
new, stats = so.swapopt(responses, positions, 2.5, n_windows=8, attempts_per_window=50, seed=0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
same = bool((np.sort(new, 0) == np.sort(positions, 0)).all())
print(json.dumps({"grew_mb": (after - before) / 1024, "windows": stats["windows"], "same": same}))
"""


def test_memory_no_units_by_units_matrix():
    """100k units x 64 stimuli: runs and the peak memory grows by far less than an N x N matrix (40 GB)."""
    env = dict(os.environ, PYTHONPATH=str(LIB), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["windows"] >= 4 and result["same"]
    assert result["grew_mb"] < 300  # z-scores are 26 MB; an N x N float32 matrix would be 40,000 MB
