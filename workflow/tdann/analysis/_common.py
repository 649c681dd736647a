"""Argument checks and circular helpers shared by the analyses."""

from __future__ import annotations

from typing import Any

import numpy as np

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _positions(positions: Any, n: int | None = None, name: str = "positions") -> np.ndarray:
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {pos.shape}")
    if n is not None and pos.shape[0] != n:
        raise ValueError(f"{name} has {pos.shape[0]} rows but there are {n} units")
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name} contains non-finite values")
    return pos


def _curves(angles: Any, curves: Any, name: str = "curves") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (A,) axis and (N, A) tuning curves (a 1-D curve is one unit)."""
    x = np.asarray(angles, dtype=float).ravel()
    r = np.atleast_2d(np.asarray(curves, dtype=float))
    if r.ndim != 2 or r.shape[1] != x.size:
        raise ValueError(f"{name} must have shape (N, {x.size}) to match the axis, got {r.shape}")
    if x.size < 3:
        raise ValueError(f"a tuning axis needs at least 3 samples, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(r))):
        raise ValueError(f"{name} or its axis contains non-finite values")
    return x, r


def _nonneg(r: np.ndarray) -> np.ndarray:
    """Shift each unit's curve up by ``-min`` where its minimum is negative (else unchanged).

    Vector metrics (CV, DSI) assume non-negative responses; pre-ReLU activations can be negative.
    Curves that are already non-negative are left as they are so their selectivity is not inflated.
    """
    return r - np.minimum(r.min(axis=1, keepdims=True), 0.0)


def _resultant(r: np.ndarray, theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised resultant ``|sum r e^{ik theta}| / sum r`` and its angle (rad), per unit."""
    z = r @ np.exp(1j * k * theta)
    total = r.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        length = np.where(total > 0, np.abs(z) / total, np.nan)
    return length, np.angle(z)


def circular_difference(a: Any, b: Any, period: float | None) -> np.ndarray:
    """|a - b| on a circle of the given period (in [0, period/2]); plain |a - b| when period is None."""
    d = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    if period is None:
        return d
    d = np.mod(d, period)
    return np.minimum(d, period - d)
