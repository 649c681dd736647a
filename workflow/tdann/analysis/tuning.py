"""Tuning of single units: tuning curves, orientation / direction tuning with von Mises fits (batched Levenberg-Marquardt), speed tuning, category selectivity (docs/reference.md §4-5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._common import _curves, _nonneg, _resultant


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
