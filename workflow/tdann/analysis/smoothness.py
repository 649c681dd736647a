"""Smoothness of maps: similarity of unit pairs against cortical distance, with the shuffled-position null (docs/reference.md §4, §9)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ._common import RngLike, _positions, _rng, circular_difference


def _default_bins(pos: np.ndarray, n_bins: int = 10) -> np.ndarray:
    extent = float(np.ptp(pos, axis=0).max())
    return np.linspace(0.0, 0.5 * extent, n_bins + 1)


def select_top(values: np.ndarray, weights: Any, top_frac: float) -> np.ndarray:
    """Indices of finite-valued units, restricted to the top ``top_frac`` by ``weights``."""
    if not 0 < top_frac <= 1:
        raise ValueError(f"top_frac must be in (0, 1], got {top_frac}")
    ok = np.flatnonzero(np.isfinite(values))
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != values.shape:
            raise ValueError(f"weights shape {w.shape} does not match values {values.shape}")
        ok = ok[np.isfinite(w[ok])]
        n_keep = max(int(np.ceil(top_frac * ok.size)), 2)
        ok = ok[np.argsort(-w[ok], kind="stable")[:n_keep]]
    if ok.size < 2:
        raise ValueError("smoothness needs at least 2 units with finite values and weights")
    return ok


def spread(values: np.ndarray, period: float | None) -> float:
    """1 - resultant length of ``e^{2 pi i v / period}`` (0 = all equal, ~1 = uniform); std if scalar."""
    if period is None:
        return float(np.std(values))
    return float(1.0 - np.abs(np.mean(np.exp(2j * np.pi * values / period))))


def protocol_bins(hypercolumn_mm: float, n_bins: int = 9) -> np.ndarray:
    """Distance bin edges of the published smoothness analysis (Margalit et al. 2024; spacetorch
    ``get_smoothness_curves``): an analysis window 4/3 of a hypercolumn wide, distances up to half its diagonal,
    ``sqrt(2 w^2) / 2`` (3.30 mm for the model's 3.5 mm hypercolumn), in ``n_bins`` equal bins."""
    if not hypercolumn_mm > 0 or int(n_bins) < 1:
        raise ValueError(f"need hypercolumn_mm > 0 and n_bins >= 1, got {hypercolumn_mm!r}, {n_bins!r}")
    width = hypercolumn_mm * 4.0 / 3.0
    return np.linspace(0.0, np.sqrt(2 * width**2) / 2, int(n_bins) + 1)


def _pair_curve(pos: np.ndarray, vals: np.ndarray, period: float | None, bins: np.ndarray,
                i: np.ndarray, j: np.ndarray) -> dict[str, Any]:
    d = pos[i] - pos[j]
    dist = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
    diff = circular_difference(vals[i], vals[j], period)
    which = np.digitize(dist, bins) - 1
    keep = (which >= 0) & (which < len(bins) - 1)
    nb = len(bins) - 1
    counts = np.bincount(which[keep], minlength=nb)
    sums = np.bincount(which[keep], weights=diff[keep], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    empty = np.flatnonzero(counts == 0)
    if empty.size:  # the published curve is cut at its first empty bin
        curve[empty[0]:] = np.nan
    peak = np.nanmax(curve) if np.any(counts > 0) else np.nan
    far = np.nanmean(curve[-3:]) if np.any(counts[-3:] > 0) else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        index = (peak - curve[0]) / peak
        far_index = (far - curve[0]) / far
    return dict(curve=curve, counts=counts, index=float(index), far_index=float(far_index),
                chance=float(diff.mean()) if len(diff) else np.nan)


def smoothness(
    positions: Any,
    values: Any,
    period: float | None,
    weights: Any = None,
    top_frac: float = 0.25,
    bins: Any = None,
    max_pairs: int = 200_000,
    rng: RngLike = None,
    n_samples: int | None = None,
    sample_size: int = 1000,
) -> dict[str, Any]:
    """Map smoothness: mean |difference in preference| of unit pairs binned by cortical distance.

    With ``n_samples`` it follows the published protocol (spacetorch ``metric_difference_over_distance``): draw
    ``n_samples`` random sets of ``sample_size`` selected units (all of them if fewer), take every pair of each set,
    compute one curve and one index per set, and report the mean curve and the mean index (``index_all`` holds
    them); pairs farther than the last bin edge are dropped. Without it, all pairs (or ``max_pairs`` random ones).

    docs/reference.md §4: uses the top ``top_frac`` units by ``weights`` (tuning strength; all units if
    None), ``index = (max(curve) - curve[0]) / max(curve)``. docs/reference.md §9: also ``far_index`` =
    (mean of the last 3 bins - curve[0]) / that mean, less noisy on small sheets, and ``spread`` =
    1 - resultant length of ``e^{2 pi i v / period}`` (std for scalar maps), which exposes a collapse
    to one preference that the normalised indices hide. ``period`` is 180 (orientation), 360
    (direction) or None (scalars). ``bins`` are distance edges in mm (default: 10 bins up to half the
    sheet extent). All pairs are used when there are at most ``max_pairs``, else ``max_pairs`` random
    pairs. Returns dict(curve, bin_centres, counts, index, far_index, spread, chance = mean
    difference over all sampled pairs, n_units).
    """
    vals = np.asarray(values, dtype=float).ravel()
    pos = _positions(positions, vals.size)
    if period is not None and period <= 0:
        raise ValueError(f"period must be positive or None, got {period}")
    bins = _default_bins(pos) if bins is None else np.asarray(bins, dtype=float)
    if bins.ndim != 1 or bins.size < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"bins must be increasing distance edges in mm, got {bins}")
    sel = select_top(vals, weights, top_frac)
    pos, vals = pos[sel], vals[sel]
    gen = _rng(rng)
    if n_samples is None:
        i, j = _sample_pairs(len(sel), max_pairs, gen)
        out = _pair_curve(pos, vals, period, bins, i, j)
    else:
        if int(n_samples) < 1 or int(sample_size) < 2:
            raise ValueError(f"need n_samples >= 1 and sample_size >= 2, got {n_samples!r}, {sample_size!r}")
        k = min(int(sample_size), len(sel))
        runs = []
        for _ in range(int(n_samples)):
            pick = gen.choice(len(sel), size=k, replace=False)
            # only pairs within the last bin edge count: a k-d tree finds them without forming all k^2 / 2
            pairs = cKDTree(pos[pick]).query_pairs(float(bins[-1]), output_type="ndarray")
            i, j = (pairs[:, 0], pairs[:, 1]) if len(pairs) else (np.zeros(0, int), np.zeros(0, int))
            runs.append(_pair_curve(pos[pick], vals[pick], period, bins, i, j))
        out = dict(runs[0])
        with warnings.catch_warnings():  # a bin empty in every sample stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            out["curve"] = np.nanmean([r["curve"] for r in runs], axis=0)
            out["index"] = float(np.nanmean([r["index"] for r in runs]))
            out["far_index"] = float(np.nanmean([r["far_index"] for r in runs]))
        out["counts"] = np.sum([r["counts"] for r in runs], axis=0)
        out["chance"] = float(np.mean([r["chance"] for r in runs]))
        out["index_all"] = np.array([r["index"] for r in runs])
    out.update(bin_centres=0.5 * (bins[1:] + bins[:-1]), spread=spread(vals, period), n_units=len(sel))
    return out


def _sample_pairs(n: int, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j if there are at most ``max_pairs``, else that many random pairs with i != j."""
    if n * (n - 1) // 2 <= max_pairs:
        return np.triu_indices(n, k=1)
    i = rng.integers(n, size=max_pairs)
    j = rng.integers(n - 1, size=max_pairs)
    return i, j + (j >= i)


def shuffled_smoothness(
    positions: Any,
    values: Any,
    period: float | None,
    weights: Any = None,
    top_frac: float = 0.25,
    bins: Any = None,
    max_pairs: int = 200_000,
    rng: RngLike = None,
    n_shuffles: int = 10,
    n_samples: int | None = None,
    sample_size: int = 1000,
) -> dict[str, Any]:
    """The null control of :func:`smoothness`: the same with positions randomly permuted.

    Returns the mean curve / index / far_index over ``n_shuffles`` permutations plus the per-shuffle
    ``index_all`` and ``far_index_all``; the bins default to the real map's so curves are comparable.
    """
    if n_shuffles < 1:
        raise ValueError(f"n_shuffles must be >= 1, got {n_shuffles}")
    gen = _rng(rng)
    pos = _positions(positions)
    bins = _default_bins(pos) if bins is None else bins
    runs = [smoothness(pos[gen.permutation(len(pos))], values, period, weights, top_frac, bins,
                       max_pairs, gen, n_samples, sample_size) for _ in range(n_shuffles)]
    out = dict(runs[0])
    out["curve"] = np.nanmean([r["curve"] for r in runs], axis=0)
    out["counts"] = np.sum([r["counts"] for r in runs], axis=0)
    out["index_all"] = np.array([r["index"] for r in runs])
    out["far_index_all"] = np.array([r["far_index"] for r in runs])
    out["index"] = float(np.nanmean(out["index_all"]))
    out["far_index"] = float(np.nanmean(out["far_index_all"]))
    return out
