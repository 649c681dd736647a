"""Tuning metrics and cortical-map analyses of model units.

Inputs are plain numpy: ``responses`` (S, N) = stimuli x units, a ``params`` DataFrame with one row
per stimulus, ``positions`` (N, 2) in mm on the simulated cortical sheet. Angles are in degrees at the
API and radians inside. Definitions follow docs/reference.md §4 (map metrics) and §5 (MT anchors); the
extra far-distance smoothness index and the preference spread follow the lessons of docs/reference.md §9.

Map convention: a grid map ``m`` of side ``G`` pixels over a square sheet of side ``L`` mm has pixel
``m[i, j]`` centred at ``x = (j + 0.5) L / G``, ``y = (i + 0.5) L / G`` (row = y, column = x), with
``positions[:, 0] = x`` and ``positions[:, 1] = y``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, optimize, sparse, stats
from scipy.cluster.vq import kmeans2, vq
from scipy.spatial import cKDTree

RngLike = np.random.Generator | int | None

# --------------------------------------------------------------------------------------------
# validation helpers


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


# --------------------------------------------------------------------------------------------
# batched non-linear least squares (Levenberg-Marquardt with box bounds by clipping)


def _fit_batched(
    model: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    p0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_iter: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``y (N, A) ~ model(p (N, P), x)`` for all units at once; returns (params, r2).

    ``model`` returns the prediction (N, A) and its Jacobian (N, A, P). Steps that do not lower a
    unit's squared error are rejected and that unit's damping grows (classic LM), so the result is
    never worse than the clipped initial guess.
    """
    p = np.clip(p0, lo, hi)
    f, jac = model(p, x)
    cost = ((y - f) ** 2).sum(axis=1)
    lam = np.full(len(p), 1e-2)
    eye = np.eye(p.shape[1])
    for _ in range(n_iter):
        act = np.flatnonzero(lam < 1e6)  # units with many rejected steps in a row have converged
        if act.size == 0:
            break
        ja, ya = jac[act], y[act]
        jtj = np.einsum("nap,naq->npq", ja, ja)
        grad = np.einsum("nap,na->np", ja, ya - f[act])
        diag = np.einsum("npp->np", jtj)
        damp = lam[act, None] * (diag + 1e-9 * (1.0 + diag.max(axis=1, keepdims=True)))
        step = np.linalg.solve(jtj + damp[:, :, None] * eye, grad[:, :, None])[:, :, 0]
        p_new = np.clip(p[act] + step, lo, hi)
        f_new, jac_new = model(p_new, x)
        cost_new = ((ya - f_new) ** 2).sum(axis=1)
        better = cost_new < cost[act]
        idx = act[better]
        p[idx], f[idx], jac[idx], cost[idx] = p_new[better], f_new[better], jac_new[better], cost_new[better]
        lam[act] = np.where(better, lam[act] * 0.3, lam[act] * 10.0).clip(1e-9, 1e12)
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - cost / ss_tot, np.nan)
    return p, r2


def _kappa_from_resultant(length: np.ndarray) -> np.ndarray:
    """Approximate inverse of ``I1(k)/I0(k)`` (Fisher 1993), used as the von Mises initial guess."""
    r = np.clip(np.nan_to_num(length), 0.0, 0.99)
    return np.where(r < 0.53, 2 * r + r**3 + 5 * r**5 / 6,
                    np.where(r < 0.85, -0.4 + 1.39 * r + 0.43 / (1 - r), 1 / (r**3 - 4 * r**2 + 3 * r)))


def _fit_von_mises(theta: np.ndarray, r: np.ndarray, k: int, pref: np.ndarray) -> pd.DataFrame:
    """Fit ``b + a exp(kappa (cos(k (theta - mu)) - 1))`` per unit (theta in rad, k = 2 orientation).

    ``a`` is the peak height above the baseline ``b``; the initial kappa inverts the Bessel ratio of
    the curve's k-th harmonic, the initial mu is its vector preference ``pref`` (rad, in theta units).
    """
    lo_r, hi_r = r.min(axis=1), r.max(axis=1)
    length, _ = _resultant(r - lo_r[:, None], theta, k)
    p0 = np.stack([lo_r, hi_r - lo_r, _kappa_from_resultant(length), pref], axis=1)
    lo = np.array([-np.inf, 0.0, 0.0, -np.inf])
    hi = np.array([np.inf, np.inf, 50.0, np.inf])

    def model(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b, a, kap, mu = (p[:, i:i + 1] for i in range(4))
        c, s = np.cos(k * (t - mu)), np.sin(k * (t - mu))
        e = np.exp(kap * (c - 1.0))
        f = b + a * e
        jac = np.stack([np.ones_like(f), e, a * e * (c - 1.0), a * e * kap * k * s], axis=2)
        return f, jac

    p, r2 = _fit_batched(model, p0, lo, hi, theta, r)
    period_deg = 360.0 / k
    return pd.DataFrame({
        "vm_pref": np.mod(np.degrees(p[:, 3]), period_deg),
        "vm_kappa": p[:, 2], "vm_amplitude": p[:, 1], "vm_baseline": p[:, 0], "vm_r2": r2,
    })


# --------------------------------------------------------------------------------------------
# tuning


def tuning_curves(
    responses: Any,
    params: pd.DataFrame,
    angle_col: str,
    average: Sequence[str] = ("phase",),
    best_of: Sequence[str] = ("sf", "tf", "colour", "coherence", "speed"),
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each unit's tuning curve over ``angle_col`` at its best stimulus condition.

    Responses are first averaged over all stimuli sharing the angle and the condition columns
    (``best_of`` columns present in ``params``) -- i.e. over ``average`` (phase) and anything else
    that varies. For every unit the condition whose curve has the largest peak is chosen.
    Returns ``angles`` (A,) in degrees (sorted), ``curves`` (N, A) and ``best``: for each condition
    column, the chosen value per unit (N,). Every condition must have been shown at every angle.
    """
    r = np.asarray(responses)
    if r.ndim != 2:
        raise ValueError(f"responses must be (stimuli, units), got shape {r.shape}")
    if not np.issubdtype(r.dtype, np.floating):
        r = r.astype(float)
    if len(params) != r.shape[0]:
        raise ValueError(f"params has {len(params)} rows but responses has {r.shape[0]} stimuli")
    if angle_col not in params.columns:
        raise ValueError(f"angle column {angle_col!r} not in params columns {list(params.columns)}")
    overlap = set(average) & (set(best_of) | {angle_col})
    if overlap:
        raise ValueError(f"columns {sorted(overlap)} are both averaged and kept as conditions")
    cond_cols = [c for c in best_of if c in params.columns]
    raw_angles = params[angle_col].to_numpy(dtype=float)
    if not np.all(np.isfinite(raw_angles)):
        raise ValueError(f"angle column {angle_col!r} contains non-finite values")
    angles, angle_idx = np.unique(raw_angles, return_inverse=True)
    if cond_cols:
        cond_code = params.groupby(cond_cols, sort=True, dropna=False).ngroup().to_numpy()
    else:
        cond_code = np.zeros(len(params), dtype=int)
    n_cond, n_ang = int(cond_code.max()) + 1, angles.size
    cell = cond_code * n_ang + angle_idx
    counts = np.bincount(cell, minlength=n_cond * n_ang)
    if np.any(counts == 0):
        c, a = divmod(int(np.flatnonzero(counts == 0)[0]), n_ang)
        row = params.iloc[int(np.flatnonzero(cond_code == c)[0])]
        raise ValueError(f"condition {dict(row[cond_cols])} has no stimulus at {angle_col}={angles[a]}")
    summer = sparse.csr_matrix((np.ones(len(cell), dtype=r.dtype), (cell, np.arange(len(cell)))),
                               shape=(n_cond * n_ang, len(cell)))
    means = np.asarray(summer @ r) / counts[:, None].astype(r.dtype)
    means = means.reshape(n_cond, n_ang, -1)                       # (C, A, N)
    best = np.argmax(means.max(axis=1), axis=0)                    # (N,)
    curves = np.take_along_axis(means, best[None, None, :], axis=0)[0].T  # (N, A)
    first_row = np.array([np.flatnonzero(cond_code == c)[0] for c in range(n_cond)])
    chosen = {c: params[c].to_numpy()[first_row][best] for c in cond_cols}
    return angles, curves, chosen


def orientation_metrics(angles_deg: Any, curves: Any, fit: bool = True) -> pd.DataFrame:
    """Orientation tuning per unit (docs/reference.md §4).

    Columns: ``pref_ori`` (deg in [0, 180), angle of ``sum r e^{2i theta}`` / 2),
    ``cv_ori = 1 - |sum r e^{2i theta}| / sum r``, ``peak_to_peak`` (max - min of the raw curve),
    and with ``fit`` a von Mises fit ``b + a exp(kappa (cos 2(theta - mu) - 1))``: ``vm_kappa``,
    ``vm_pref`` (deg), ``vm_amplitude``, ``vm_baseline``, ``vm_r2``. Curves with negative values are
    shifted up by their minimum before the vector metrics (see ``_nonneg``); the fit uses raw curves.
    Units with an all-zero (shifted) curve get NaN CV.
    """
    x, r = _curves(angles_deg, curves)
    theta = np.radians(x)
    rn = _nonneg(r)
    length, ang = _resultant(rn, theta, 2)
    out = pd.DataFrame({
        "pref_ori": np.mod(np.degrees(ang) / 2.0, 180.0),
        "cv_ori": 1.0 - length,
        "peak_to_peak": r.max(axis=1) - r.min(axis=1),
    })
    if fit:
        fitted = _fit_von_mises(theta, r, 2, ang / 2.0)
        out = pd.concat([out, fitted.rename(columns={"vm_pref": "vm_pref_ori"})], axis=1)
    return out


def direction_metrics(angles_deg: Any, curves: Any, fit: bool = False) -> pd.DataFrame:
    """Direction tuning per unit (docs/reference.md §4); angles should cover the full circle.

    Columns: ``pref_dir`` (deg in [0, 360), angle of ``sum r e^{i theta}``), ``dsi_vector =
    |sum r e^{i theta}| / sum r``, ``cv_dir = 1 - dsi_vector``, ``dsi_classic = (R_pref - R_null) /
    (R_pref + R_null)`` with R_pref the largest sampled response and R_null the response at the
    sampled direction closest to the opposite one, ``axial = |sum r e^{2i theta}| / sum r`` and
    ``pref_axis`` (deg in [0, 180)). Vector metrics and the classic DSI use curves shifted to be
    non-negative (``_nonneg``). With ``fit`` adds a von Mises fit (k = 1): ``vm_pref_dir``, ...
    """
    x, r = _curves(angles_deg, curves)
    theta = np.radians(x)
    rn = _nonneg(r)
    dsi, ang1 = _resultant(rn, theta, 1)
    axial, ang2 = _resultant(rn, theta, 2)
    i_pref = np.argmax(rn, axis=1)
    opposite = np.radians(x[i_pref] + 180.0)
    i_null = np.argmin(np.abs(np.angle(np.exp(1j * (theta[None, :] - opposite[:, None])))), axis=1)
    rows = np.arange(len(rn))
    r_pref, r_null = rn[rows, i_pref], rn[rows, i_null]
    with np.errstate(invalid="ignore", divide="ignore"):
        classic = np.where(r_pref + r_null > 0, (r_pref - r_null) / (r_pref + r_null), np.nan)
    out = pd.DataFrame({
        "pref_dir": np.mod(np.degrees(ang1), 360.0),
        "dsi_vector": dsi,
        "cv_dir": 1.0 - dsi,
        "dsi_classic": classic,
        "axial": axial,
        "pref_axis": np.mod(np.degrees(ang2) / 2.0, 180.0),
    })
    if fit:
        fitted = _fit_von_mises(theta, r, 1, ang1)
        out = pd.concat([out, fitted.rename(columns={"vm_pref": "vm_pref_dir"})], axis=1)
    return out


def speed_tuning(speeds: Any, curves: Any, v0: float = 0.3, sigma0: float = 1.25) -> pd.DataFrame:
    """Log-Gaussian speed tuning per unit (Nover et al. 2005; docs/reference.md §5).

    Fits ``R(v) = b + A exp(-(q(v) - q_p)^2 / (2 sigma^2))`` with ``q(v) = ln((|v| + v0) / v0)``;
    ``v0`` (same unit as ``speeds``; 0.3 deg/s in MT) is held fixed, ``sigma`` starts at ``sigma0``
    (MT: 1.2-1.3) and is bounded to [0.1, 5]; ``q_p >= 0`` so the preferred speed is non-negative.
    Columns: ``pref_speed = v0 (e^{q_p} - 1)``, ``q_pref``, ``sigma``, ``amplitude``, ``baseline``,
    ``r2``, and ``peak_speed`` (the sampled speed with the largest response).
    """
    if not v0 > 0:
        raise ValueError(f"v0 must be positive, got {v0}")
    v, r = _curves(speeds, curves, name="speed curves")
    q = np.log((np.abs(v) + v0) / v0)
    i_peak = np.argmax(r, axis=1)
    p0 = np.stack([r.min(axis=1), np.ptp(r, axis=1), q[i_peak], np.full(len(r), sigma0)], axis=1)
    lo = np.array([-np.inf, 0.0, 0.0, 0.1])
    hi = np.array([np.inf, np.inf, q.max() + 2.0, 5.0])

    def model(p: np.ndarray, qq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b, a, qp, s = (p[:, i:i + 1] for i in range(4))
        d = qq - qp
        e = np.exp(-(d**2) / (2 * s**2))
        f = b + a * e
        jac = np.stack([np.ones_like(f), e, a * e * d / s**2, a * e * d**2 / s**3], axis=2)
        return f, jac

    p, r2 = _fit_batched(model, p0, lo, hi, q, r)
    return pd.DataFrame({
        "pref_speed": v0 * np.expm1(p[:, 2]), "q_pref": p[:, 2], "sigma": p[:, 3],
        "amplitude": p[:, 1], "baseline": p[:, 0], "r2": r2, "peak_speed": np.abs(v)[i_peak],
    })


def category_selectivity(
    responses: Any,
    labels: Sequence[str],
    categories: Sequence[str] = ("faces", "bodies", "characters", "places", "objects"),
) -> pd.DataFrame:
    """Welch t of each unit for each category vs all other stimuli (docs/reference.md §4, fLoc).

    ``t = (m_in - m_out) / sqrt(v_in / n_in + v_out / n_out)`` with unbiased variances, identical to
    ``scipy.stats.ttest_ind(equal_var=False)``. Constant units (zero variance) get NaN, without
    warnings. Returns an (N x categories) DataFrame.
    """
    r = np.asarray(responses, dtype=float)
    lab = np.asarray(labels).astype(str)
    if r.ndim != 2 or lab.shape != (r.shape[0],):
        raise ValueError(f"responses {r.shape} and labels {lab.shape} must be (S, N) and (S,)")
    out = {}
    for cat in categories:
        inside = lab == cat
        n_in, n_out = int(inside.sum()), int((~inside).sum())
        if n_in < 2 or n_out < 2:
            raise ValueError(f"category {cat!r} needs >= 2 stimuli in and out, has {n_in} / {n_out}")
        a, b = r[inside], r[~inside]
        se2 = a.var(axis=0, ddof=1) / n_in + b.var(axis=0, ddof=1) / n_out
        with np.errstate(invalid="ignore", divide="ignore"):
            out[cat] = np.where(se2 > 0, (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(se2), np.nan)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# smoothness of maps


def _default_bins(pos: np.ndarray, n_bins: int = 10) -> np.ndarray:
    extent = float(np.ptp(pos, axis=0).max())
    return np.linspace(0.0, 0.5 * extent, n_bins + 1)


def _select_top(values: np.ndarray, weights: Any, top_frac: float) -> np.ndarray:
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


def _spread(values: np.ndarray, period: float | None) -> float:
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
    sel = _select_top(vals, weights, top_frac)
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
    out.update(bin_centres=0.5 * (bins[1:] + bins[:-1]), spread=_spread(vals, period), n_units=len(sel))
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


# --------------------------------------------------------------------------------------------
# grid maps, column spacing, pinwheels


def grid_map(positions: Any, values: Any, sheet_size: float, grid_px: int, sigma_mm: float) -> np.ndarray:
    """Gaussian-windowed mean of unit values on a ``grid_px`` x ``grid_px`` grid over the sheet.

    ``values`` may be complex (orientation: ``r e^{2i theta}``, direction: ``e^{i theta}``) or real
    (t values); NaN values are skipped. Pixel centres follow the module's map convention; pixels with
    no unit within reach (total weight < 1e-12) are 0. Positions must lie in [0, sheet_size] mm
    (5% slack) so that pixel-coordinate or wrong-sheet inputs are caught.
    """
    vals = np.asarray(values).ravel()
    pos = _positions(positions, vals.size)
    if sheet_size <= 0 or grid_px < 2 or sigma_mm <= 0:
        raise ValueError(f"need sheet_size > 0, grid_px >= 2, sigma_mm > 0; got {sheet_size}, "
                         f"{grid_px}, {sigma_mm}")
    slack = 0.05 * sheet_size
    if pos.min() < -slack or pos.max() > sheet_size + slack:
        raise ValueError(f"positions span [{pos.min():.3g}, {pos.max():.3g}] mm, outside the "
                         f"{sheet_size} mm sheet")
    ok = np.isfinite(vals)
    pos, vals = pos[ok], vals[ok]
    centres = (np.arange(grid_px) + 0.5) * sheet_size / grid_px
    wx = np.exp(-((centres[:, None] - pos[None, :, 0]) ** 2) / (2 * sigma_mm**2))  # (G, N)
    wy = np.exp(-((centres[:, None] - pos[None, :, 1]) ** 2) / (2 * sigma_mm**2))
    num = (wy * vals[None, :]) @ wx.T
    den = wy @ wx.T
    out = np.zeros_like(num)
    good = den > 1e-12
    out[good] = num[good] / den[good]
    return out


def _radial_spectrum(zmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power of the mean-free map; k in cycles per map side (integer bins)."""
    g = zmap.shape[0]
    power = np.abs(np.fft.fft2(zmap - zmap.mean())) ** 2
    f = np.fft.fftfreq(g) * g
    kr = np.rint(np.hypot(f[:, None], f[None, :])).astype(int)
    k = np.arange(1, g // 2 + 1)
    sums = np.bincount(kr.ravel(), weights=power.ravel(), minlength=g)
    counts = np.bincount(kr.ravel(), minlength=g)
    return k.astype(float), sums[k] / counts[k]


def _kaschube(k: np.ndarray, a0: float, a1: float, a2: float, a3: float, a4: float, a5: float) -> np.ndarray:
    return a0 * np.exp(-((k - a1) ** 2) / (2 * a2**2)) + a3 + a4 * k + a5 * k**2


def column_spacing(zmap: Any, pixel_mm: float) -> dict[str, Any]:
    """Column spacing Lambda from the radially averaged power spectrum (Kaschube et al. 2010).

    docs/reference.md §4: fit ``a0 exp(-(k - a1)^2 / (2 a2^2)) + a3 + a4 k + a5 k^2`` to the spectrum of
    the square complex map (k in cycles per map side, power normalised to max 1);
    ``Lambda_mm = side_mm / a1`` with ``side_mm = G * pixel_mm``. If the fit fails or puts the
    peak below one cycle per map (a spacing larger than the map cannot be measured from it) or at
    the highest frequency, the spectrum's arg-max is used and ``fit_ok`` is False.
    Returns dict(Lambda_mm, k_peak (cycles per map), k_peak_per_mm, fit_params, fit_ok, k, power).
    """
    z = np.asarray(zmap)
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] < 8:
        raise ValueError(f"zmap must be a square map of side >= 8, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("zmap contains non-finite values")
    if pixel_mm <= 0:
        raise ValueError(f"pixel_mm must be positive, got {pixel_mm}")
    k, power = _radial_spectrum(z)
    if power.max() <= 0:
        raise ValueError("zmap is constant: no spectrum to fit")
    power = power / power.max()
    k_arg = float(k[np.argmax(power)])
    p0 = [1.0, k_arg, max(1.0, k_arg / 4), 0.0, 0.0, 0.0]
    bounds = ([0, 0.5, 0.3, -np.inf, -np.inf, -np.inf], [np.inf, k[-1], k[-1], np.inf, np.inf, np.inf])
    fit_ok = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(_kaschube, k, power, p0=p0, bounds=bounds, maxfev=20000)
        k_peak = float(params[1])
        fit_ok = 1.0 <= k_peak < k[-1] and params[0] > 0
    except (RuntimeError, ValueError):
        params = np.full(6, np.nan)
        fit_ok = False
    if not fit_ok:
        k_peak = k_arg
    side_mm = z.shape[0] * pixel_mm
    return dict(Lambda_mm=side_mm / k_peak, k_peak=k_peak, k_peak_per_mm=k_peak / side_mm,
                fit_params=np.asarray(params), fit_ok=bool(fit_ok), k=k, power=power)


def pinwheels(zmap: Any, periodic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pinwheel centres and charges of a complex map (docs/reference.md §4).

    A pinwheel is where the zero contours of Re z and Im z cross, i.e. where the phase of z winds by
    +-2 pi around a grid plaquette (2 x 2 neighbouring pixels). The winding of each plaquette is the
    sum of its wrapped phase steps / 2 pi (counter-clockwise in (x, y)). For an orientation map
    ``z = r e^{2i theta}`` the orientation theta itself winds by +-pi, so a charge of +-1 here is
    a +-1/2 pinwheel. Positions are (x, y) in pixel-index units (pixel (i, j) centre = (j, i)), so
    a plaquette centre is at half-integers; in mm: ``(pos + 0.5) * pixel_mm``. With ``periodic``
    the map wraps (for FFT-made fields) and every pixel starts a plaquette.
    Returns (positions (M, 2), charges (M,) in {-1, +1}).
    """
    z = np.asarray(zmap)
    if z.ndim != 2 or min(z.shape) < 2 or not np.iscomplexobj(z):
        raise ValueError(f"zmap must be a 2-D complex map, got {z.dtype} {z.shape}")
    phase = np.angle(z)
    if periodic:
        p00, p01 = phase, np.roll(phase, -1, axis=1)
        p11, p10 = np.roll(p01, -1, axis=0), np.roll(phase, -1, axis=0)
    else:
        p00, p01, p11, p10 = phase[:-1, :-1], phase[:-1, 1:], phase[1:, 1:], phase[1:, :-1]

    def wrap(d: np.ndarray) -> np.ndarray:
        return np.angle(np.exp(1j * d))

    # Counter-clockwise in (x = column, y = row): (0,0) -> (0,1) -> (1,1) -> (1,0) -> back.
    winding = (wrap(p01 - p00) + wrap(p11 - p01) + wrap(p10 - p11) + wrap(p00 - p10)) / (2 * np.pi)
    charge = np.rint(winding).astype(int)
    rows, cols = np.nonzero(charge)
    return np.stack([cols + 0.5, rows + 0.5], axis=1).astype(float), charge[rows, cols]


def pinwheel_area(grid_px: int, pixel_mm: float, periodic: bool = False) -> float:
    """Sheet area (mm^2) that :func:`pinwheels` searches: the (G - 1)^2 plaquettes of a G x G map (G^2 if
    periodic). Dividing a count by the full G^2 area underestimates the density by 2/G (4% at 48 px, 23% at 8 px)."""
    cells = grid_px if periodic else grid_px - 1
    return float(cells * pixel_mm) ** 2


def pinwheel_density(count: int, area_mm2: float, Lambda_mm: float) -> tuple[float, float]:
    """Pinwheels per hypercolumn area ``Lambda^2`` (Kaschube et al. 2010: pi in cortex and in GRFs); ``area_mm2`` is the
    area the counter covered (:func:`pinwheel_area`).

    Returns (density, standard error), the error treating the count as Poisson (sqrt(count)).
    """
    if area_mm2 <= 0 or Lambda_mm <= 0 or count < 0:
        raise ValueError(f"need count >= 0, area > 0, Lambda > 0; got {count}, {area_mm2}, {Lambda_mm}")
    n_hyper = area_mm2 / Lambda_mm**2
    return count / n_hyper, float(np.sqrt(count)) / n_hyper


# --------------------------------------------------------------------------------------------
# category patches, wiring length, orientation / direction relation


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


# --------------------------------------------------------------------------------------------
# statistics for the results table


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion k / n (every share in the tables: probe accuracies, the fraction
    of units with a low pole); (nan, nan) for n = 0."""
    if n <= 0:
        return (np.nan, np.nan)
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def bootstrap_ci(values: Any, n: int = 2000, rng: RngLike = None, ci: float = 0.95,
                 stat: Callable[[np.ndarray], Any] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap confidence interval (low, high) of ``stat`` over finite ``values`` (scipy.stats.bootstrap).

    ``stat`` must take an ``axis`` argument (np.mean, np.median, ...). Fewer than 2 finite values
    give (nan, nan): no spread can be estimated from one seed.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not 0 < ci < 1 or n < 1:
        raise ValueError(f"need 0 < ci < 1 and n >= 1, got ci={ci}, n={n}")
    if v.size < 2:
        return (np.nan, np.nan)
    res = stats.bootstrap((v,), stat, n_resamples=n, confidence_level=ci, method="percentile", vectorized=True,
                          axis=-1, rng=_rng(rng))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_test(a: Any, b: Any) -> dict[str, float]:
    """Paired comparison of a and b (e.g. alpha > 0 vs alpha = 0 over seeds).

    Pairs with a NaN are dropped. Returns n, mean_diff (a - b), the paired t test (t, p_t) and the
    Wilcoxon signed-rank test (w, p_wilcoxon); NaN where a test is undefined (n < 2, all
    differences equal).
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_test needs equal lengths, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = dict(n=float(x.size), mean_diff=float(np.mean(x - y)) if x.size else np.nan,
               t=np.nan, p_t=np.nan, w=np.nan, p_wilcoxon=np.nan)
    if x.size < 2:
        return out
    d = x - y
    if np.ptp(d) > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            res = stats.ttest_rel(x, y)
        out.update(t=float(res.statistic), p_t=float(res.pvalue))
    if np.any(d != 0):
        try:
            w = stats.wilcoxon(x, y)
            out.update(w=float(w.statistic), p_wilcoxon=float(w.pvalue))
        except ValueError:
            pass
    return out
