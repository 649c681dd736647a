"""Category patches, the wiring length of selective units, and the relation of orientation and direction preferences."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage, optimize
from scipy.cluster.vq import kmeans2, vq
from scipy.spatial import cKDTree

from ._common import RngLike, _positions, _rng, circular_difference
from .maps import grid_map


def category_patches(
    positions: Any,
    t_values: Any,
    sheet_size: float,
    grid_px: int,
    sigma_mm: float = 2.4,
    threshold: float = 2.0,
    min_area: float = 100.0,
    max_area: float = 4500.0,
    min_units: int = 10,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Category-selective patches of a VTC sheet (docs/reference.md §4).

    The t map is smoothed on the grid (Gaussian window, ``sigma_mm`` = 2.4 mm; NaN units skipped),
    thresholded at ``t > threshold``; 4-connected components with ``min_area`` <= area <= ``max_area``
    mm^2 holding >= ``min_units`` units are patches. Returns (patches, t_map) with each patch a dict
    (mask (G, G) bool, area_mm2, n_units, centroid_mm (x, y)).
    """
    t = np.asarray(t_values, dtype=float).ravel()
    pos = _positions(positions, t.size)
    tmap = grid_map(pos, t, sheet_size, grid_px, sigma_mm)
    pixel_mm = sheet_size / grid_px
    labels, n = ndimage.label(tmap > threshold)
    ij = np.clip((pos // pixel_mm).astype(int), 0, grid_px - 1)
    unit_label = labels[ij[:, 1], ij[:, 0]]
    unit_counts = np.bincount(unit_label, minlength=n + 1)
    px_counts = np.bincount(labels.ravel(), minlength=n + 1)
    patches = []
    for lab in range(1, n + 1):
        area = px_counts[lab] * pixel_mm**2
        if min_area <= area <= max_area and unit_counts[lab] >= min_units:
            mask = labels == lab
            rows, cols = np.nonzero(mask)
            centroid = ((cols.mean() + 0.5) * pixel_mm, (rows.mean() + 0.5) * pixel_mm)
            patches.append(dict(mask=mask, area_mm2=float(area), n_units=int(unit_counts[lab]),
                                centroid_mm=centroid))
    return patches, tmap


def selectivity_rsm(t_maps: Any) -> np.ndarray:
    """(C, C) Pearson correlation between smoothed selectivity maps (docs/reference.md §4).

    ``t_maps`` is an array (C, ...) or a mapping name -> map (order kept). Pixels that are NaN in
    any map are dropped.
    """
    maps = list(t_maps.values()) if isinstance(t_maps, Mapping) else list(t_maps)
    flat = np.array([np.asarray(m, dtype=float).ravel() for m in maps])
    if flat.ndim != 2 or len(flat) < 2:
        raise ValueError("selectivity_rsm needs at least 2 maps of equal size")
    flat = flat[:, np.all(np.isfinite(flat), axis=0)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(flat)


def _cluster_centroids(x: np.ndarray, thr_mm: float, gen: np.random.Generator, n_init: int = 3) -> np.ndarray:
    """k-means centroids with k = 1, 2, ... until the inertia is <= N thr^2 (best of n_init runs)."""
    target = len(x) * thr_mm**2
    for k in range(1, len(x) + 1):
        best, best_inertia = None, np.inf
        for _ in range(n_init):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cents, _ = kmeans2(x, k, minit="++", rng=gen)
            labels, dist = vq(x, cents)
            inertia = float((dist**2).sum())
            if inertia < best_inertia:
                best, best_inertia = cents[np.unique(labels)], inertia
        if best is not None and best_inertia <= target:
            return best
    return x.copy()


def wiring_length(
    src_pos: Any,
    src_active: Any,
    tgt_pos: Any,
    tgt_active: Any,
    thr_mm: float,
    rng: RngLike = 0,
) -> float:
    """Wiring length between the active units of a source and a target layer (docs/reference.md §4).

    Each layer's active units (boolean masks) are clustered with k-means, k growing until the
    inertia is <= N thr_mm^2; source and target centroids are matched one-to-one with
    ``linear_sum_assignment`` (min(k_src, k_tgt) pairs) and the matched distances summed. Positions
    must be in one common frame (mm). Returns 0.0 when either layer has no active unit.
    """
    if thr_mm <= 0:
        raise ValueError(f"thr_mm must be positive, got {thr_mm}")
    gen = _rng(rng)
    cents = []
    for name, pos, act in (("src", src_pos, src_active), ("tgt", tgt_pos, tgt_active)):
        p = _positions(pos, name=f"{name}_pos")
        a = np.asarray(act, dtype=bool).ravel()
        if a.shape != (len(p),):
            raise ValueError(f"{name}_active has shape {a.shape}, expected ({len(p)},)")
        if not a.any():
            return 0.0
        cents.append(_cluster_centroids(p[a], thr_mm, gen))
    cost = np.linalg.norm(cents[0][:, None, :] - cents[1][None, :, :], axis=2)
    rows, cols = optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def _pair_subset(pos: np.ndarray, radius_mm: float, budget: int, gen: np.random.Generator) -> np.ndarray:
    """Indices of a uniform random subset of the units small enough that its pairs closer than ``radius_mm``
    number about ``budget`` or fewer (estimated from the units' bounding box); all units when they already do. A
    pair of the subset is a uniform draw from the pairs of all units."""
    n = len(pos)
    area = float(np.prod(np.ptp(pos, axis=0))) if n > 1 else 0.0
    expected = n * (n - 1) / 2 * min(1.0, np.pi * radius_mm**2 / area) if area > 0 else n * (n - 1) / 2
    if expected <= budget:
        return np.arange(n)
    m = max(2, int(n * np.sqrt(budget / expected)))
    return np.sort(gen.choice(n, m, replace=False))


def orientation_direction_relation(
    pref_ori: Any,
    pref_dir: Any,
    positions: Any,
    radius_mm: float,
    opposite_tol: float = 30.0,
    same_domain: float = 22.5,
    max_pairs: int = 200_000,
    rng: RngLike = None,
) -> dict[str, Any]:
    """Do opposite directions share an orientation domain? (docs/reference.md §5, Albright 1984).

    Among unit pairs closer than ``radius_mm``, "opposite" pairs have |delta dir| >= 180 -
    ``opposite_tol`` deg. Compares their |delta ori| (period 180) with that of all nearby pairs:
    means, the fraction within ``same_domain`` deg, and histograms (10 bins over [0, 90]). Random
    orientations give a mean of 45 and a fraction of 0.25; a value far below says opposite
    directions sit inside one orientation domain. At most ``max_pairs`` random nearby pairs are used; on a dense
    layer they are drawn from a random subset of the units (:func:`_pair_subset`), never by listing every nearby
    pair (a 200,704-unit layer1 holds ~10^9 of them).
    """
    ori = np.asarray(pref_ori, dtype=float).ravel()
    dirs = np.asarray(pref_dir, dtype=float).ravel()
    if ori.shape != dirs.shape:
        raise ValueError(f"pref_ori {ori.shape} and pref_dir {dirs.shape} differ in length")
    pos = _positions(positions, ori.size)
    if radius_mm <= 0:
        raise ValueError(f"radius_mm must be positive, got {radius_mm}")
    gen = _rng(rng)
    units = _pair_subset(pos, radius_mm, 20 * max_pairs, gen)
    pairs = units[cKDTree(pos[units]).query_pairs(radius_mm, output_type="ndarray")].reshape(-1, 2)
    if len(pairs) > max_pairs:
        pairs = pairs[gen.choice(len(pairs), max_pairs, replace=False)]
    d_ori = circular_difference(ori[pairs[:, 0]], ori[pairs[:, 1]], 180.0)
    d_dir = circular_difference(dirs[pairs[:, 0]], dirs[pairs[:, 1]], 360.0)
    ok = np.isfinite(d_ori) & np.isfinite(d_dir)
    d_ori, d_dir = d_ori[ok], d_dir[ok]
    opp = d_dir >= 180.0 - opposite_tol
    edges = np.linspace(0, 90, 11)

    def summary(d: np.ndarray) -> tuple[float, float]:
        return (float(d.mean()), float((d < same_domain).mean())) if d.size else (np.nan, np.nan)

    m_opp, f_opp = summary(d_ori[opp])
    m_all, f_all = summary(d_ori)
    return dict(mean_dori_opposite=m_opp, mean_dori_all=m_all, frac_same_domain_opposite=f_opp,
                frac_same_domain_all=f_all, n_opposite=int(opp.sum()), n_pairs=int(ok.sum()),
                hist_edges=edges, hist_opposite=np.histogram(d_ori[opp], edges)[0],
                hist_all=np.histogram(d_ori, edges)[0])
