"""Bidirectional coding (docs/reference.md §6): a unit's two poles relative to its baseline, the semantic axis
between them, and the tables that report both beside their controls.

After Franke, Karantzas et al. 2025: a neuron is driven above an elevated baseline by preferred features and pushed
below it by distinct non-preferred ones. :func:`tdann.screening.screen` computes the poles of every screened unit
with :func:`pole_bootstrap` and :func:`tdann.screening.add_semantic_axes` the axis with :func:`axis_separation`;
the table functions read what those wrote. Pure numpy / pandas: no model, no files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import analysis


def pole_bootstrap(sample: np.ndarray, n_inputs: int, k: int, n_boot: int = 500, seed: int = 0,
                   level: float = 0.95, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Bootstrap over inputs of each unit's two poles relative to its baseline (docs/reference.md §6).

    ``sample`` (m, units): the responses of m natural inputs drawn uniformly from the store's ``n_inputs`` (the
    screening reservoir; all of them when the store is small). Per resample of the m inputs (with replacement):
    the baseline is the median response, the low pole the mean of the ``k_m = max(1, round(k m / n_inputs))``
    lowest responses (the same share of inputs as the k LAIs of the whole store), the high pole the mean of the
    k_m highest. Returns percentile CIs (``level``) of ``low_depth = baseline - low pole`` and ``high_height =
    high pole - baseline``: a low pole is significantly below baseline where ``low_ci_low > 0``. A unit pinned at a
    floor (post-ReLU zeros over half the inputs) has depth 0 in every resample and is never significant.
    """
    x = np.asarray(sample, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"pole_bootstrap needs a sample (m >= 2, units), got shape {x.shape}")
    m, n_units = x.shape
    km = int(min(m // 2, max(1, round(k * m / max(int(n_inputs), m)))))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, m, size=(int(n_boot), m))
    low = np.empty((int(n_boot), n_units), np.float32)
    high = np.empty_like(low)
    kth = sorted({km - 1, (m - 1) // 2, m // 2, m - km})
    for lo in range(0, n_units, chunk):
        cols = slice(lo, lo + chunk)
        for b, idx in enumerate(draws):
            part = np.partition(x[idx, cols], kth, axis=0)
            median = 0.5 * (part[(m - 1) // 2] + part[m // 2])
            low[b, cols] = median - part[:km].mean(axis=0)
            high[b, cols] = part[m - km:].mean(axis=0) - median
    q = [(1 - level) / 2, (1 + level) / 2]
    low_ci, high_ci = np.quantile(low, q, axis=0), np.quantile(high, q, axis=0)
    return {"low_ci_low": low_ci[0], "low_ci_high": low_ci[1], "high_ci_low": high_ci[0],
            "high_ci_high": high_ci[1], "k_sample": np.full(n_units, km)}


def axis_separation(top_emb: np.ndarray, bottom_emb: np.ndarray, seed: int = 0,
                    top_groups: np.ndarray | None = None, bottom_groups: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """How well a unit's semantic axis separates held-out MAIs from LAIs (docs/reference.md §6).

    ``top_emb``, ``bottom_emb`` (units, k, d): embeddings of each unit's k MAIs and k LAIs in rank order. The axis
    is fit on the even ranks (mean MAI embedding - mean LAI embedding) and tested on the odd ranks: ``auc`` is the
    share of (held-out MAI, held-out LAI) pairs that the projection on the axis orders correctly (ties 1/2; 0.5 =
    no separation). ``auc_other``: the same held-out inputs on another unit's axis (a random derangement of the
    units), the control that a generic "MAI vs LAI" direction (e.g. contrast) would also pass.

    ``top_groups``, ``bottom_groups`` (units, k): the source (photo, video) of each input. Given, a held-out input
    counts only if no input the axis was fit on comes from its source, so that crops of one photo or clips of one
    video cannot carry the axis from fit to test; a unit left without a held-out MAI or LAI gets NaN
    (``n_pairs`` 0).
    """
    top, bottom = np.asarray(top_emb, np.float64), np.asarray(bottom_emb, np.float64)
    if top.ndim != 3 or top.shape != bottom.shape or top.shape[1] < 2:
        raise ValueError(f"axis_separation needs equal (units, k >= 2, d) arrays, got {top.shape}, {bottom.shape}")
    axis = top[:, 0::2].mean(1) - bottom[:, 0::2].mean(1)
    n = len(axis)
    keep_t = np.ones(top[:, 1::2].shape[:2], bool)
    keep_b = np.ones_like(keep_t)
    if top_groups is not None and bottom_groups is not None:
        tg, bg = np.asarray(top_groups), np.asarray(bottom_groups)
        fit = np.concatenate([tg[:, 0::2], bg[:, 0::2]], axis=1)
        keep_t = ~(tg[:, 1::2, None] == fit[:, None, :]).any(-1)
        keep_b = ~(bg[:, 1::2, None] == fit[:, None, :]).any(-1)
    weight = (keep_t[:, :, None] & keep_b[:, None, :]).astype(float)
    n_pairs = weight.sum(axis=(1, 2))
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    other = np.empty(n, dtype=int)
    other[order] = np.roll(order, 1)  # a derangement when n >= 2: no unit gets its own axis

    def auc(axes: np.ndarray) -> np.ndarray:
        pt = np.einsum("ukd,ud->uk", top[:, 1::2], axes)
        pb = np.einsum("ukd,ud->uk", bottom[:, 1::2], axes)
        diff = pt[:, :, None] - pb[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (((diff > 0) + 0.5 * (diff == 0)) * weight).sum(axis=(1, 2)) / np.where(n_pairs > 0, n_pairs,
                                                                                             np.nan)

    return {"auc": auc(axis), "auc_other": auc(axis[other]) if n >= 2 else np.full(n, np.nan), "n_pairs": n_pairs}


def screening_units(layers: dict[str, dict[str, dict[str, np.ndarray]]]) -> pd.DataFrame:
    """One row per (signal, layer, screened unit): baseline (median response to natural inputs), Gini, skew, the
    low pole's depth below baseline and the high pole's height above it with their bootstrap CIs, whether the low
    pole is significantly below baseline, and (screened signal) the semantic axis AUCs.

    ``layers``: signal -> layer -> the arrays of :func:`tdann.screening.load_screen`.
    """
    frames = []
    for signal, by_layer in layers.items():
        for layer, scr in by_layer.items():
            n = len(scr["units"])
            df = pd.DataFrame(dict(signal=signal, layer=layer, unit=scr["units"], baseline=scr["q50"],
                                   mean=scr["mean"], gini=scr["gini"], skew=scr["skew"],
                                   low_depth=scr["low_depth"], low_ci_low=scr.get("low_ci_low", np.full(n, np.nan)),
                                   low_ci_high=scr.get("low_ci_high", np.full(n, np.nan)),
                                   high_height=scr["high_height"],
                                   high_ci_low=scr.get("high_ci_low", np.full(n, np.nan)),
                                   high_ci_high=scr.get("high_ci_high", np.full(n, np.nan)),
                                   best_natural=scr["top_val"][:, 0], worst_natural=scr["bottom_val"][:, 0],
                                   axis_auc=scr.get("axis_auc", np.full(n, np.nan)),
                                   axis_auc_other=scr.get("axis_auc_other", np.full(n, np.nan)),
                                   axis_pairs=scr.get("axis_pairs", np.full(n, np.nan))))
            df["low_below_baseline"] = df["low_ci_low"] > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                df["depth_ratio"] = df["low_depth"] / df["high_height"]
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def screening_poles(units: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (stream, model, signal, layer), as present: how many units have a low pole significantly below baseline (exact 95% CI), the median
    baseline, depth, height and depth / height, and the semantic axis's held-out AUC beside the other-unit control
    (means with bootstrap CIs over the units that have a held-out pair, ``n_axis_units``; ``axis_specific``: the
    paired CI of auc - auc_other lies above 0)."""
    rng = np.random.default_rng(seed)
    rows = []
    keys = [k for k in ("stream", "model") if k in units.columns] + ["signal", "layer"]
    for key, g in units.groupby(keys, sort=False):
        n, hits = len(g), int(g["low_below_baseline"].sum())
        lo, hi = analysis.clopper_pearson(hits, n)
        row = dict(zip(keys, key)) | dict(n_units=n, n_low_below=hits, frac_low_below=hits / n,
                   frac_low_below_ci_low=lo, frac_low_below_ci_high=hi,
                   baseline_median=float(g["baseline"].median()), low_depth_median=float(g["low_depth"].median()),
                   high_height_median=float(g["high_height"].median()),
                   depth_ratio_median=float(g["depth_ratio"].median()),
                   n_lai_ties_at_floor=int((g["low_depth"] <= 0).sum()))
        auc, other = g["axis_auc"].to_numpy(float), g["axis_auc_other"].to_numpy(float)
        row["n_axis_units"] = int(np.isfinite(auc).sum())
        if np.isfinite(auc).sum() >= 2:
            a_lo, a_hi = analysis.bootstrap_ci(auc, rng=rng)
            o_lo, o_hi = analysis.bootstrap_ci(other, rng=rng)
            d_lo, _ = analysis.bootstrap_ci(auc - other, rng=rng)
            row |= dict(axis_auc_mean=float(np.nanmean(auc)), axis_auc_ci_low=a_lo, axis_auc_ci_high=a_hi,
                        axis_auc_other_mean=float(np.nanmean(other)), axis_auc_other_ci_low=o_lo,
                        axis_auc_other_ci_high=o_hi, axis_specific=bool(np.isfinite(d_lo) and d_lo > 0))
        rows.append(row)
    return pd.DataFrame(rows)


def synthesis_checks(synthesis: dict[str, dict], units: pd.DataFrame) -> pd.DataFrame:
    """One row per (layer, unit, parameterisation, pole, seed): the synthesised input's response beside the natural
    bound it must beat (an MEI above the best natural input, an LEI below the worst) and the unit's baseline;
    ``passes`` says whether it did, ``margin`` by how much (positive = beats it).

    ``synthesis``: layer -> {"units": (n,), "<param>/<pole>": activations (n units, seeds)}; ``units``: the
    screened signal's rows of :func:`screening_units`.
    """
    rows = []
    for layer, syn in synthesis.items():
        ref = units[units["layer"] == layer].set_index("unit")
        for key, acts in syn.items():
            if key == "units":
                continue
            param, pole = key.split("/")
            for i, unit in enumerate(syn["units"]):
                r = ref.loc[int(unit)]
                bound = float(r["best_natural"] if pole == "mei" else r["worst_natural"])
                for seed, value in enumerate(np.asarray(acts)[i]):
                    margin = float(value - bound) if pole == "mei" else float(bound - value)
                    rows.append(dict(layer=layer, unit=int(unit), param=param, pole=pole, seed_index=seed,
                                     activation=float(value), natural_bound=bound, baseline=float(r["baseline"]),
                                     margin=margin, passes=bool(margin > 0)))
    return pd.DataFrame(rows)


#: Per-unit screening measures compared between the trained network and its untrained initialisation.
SCREENING_MEASURES = ("low_depth", "high_height", "depth_ratio", "gini", "axis_auc")


def screening_vs_untrained(units: pd.DataFrame, model: str, untrained: str, signal: str,
                           seed: int = 0) -> pd.DataFrame:
    """Per layer and measure: the trained network against its untrained initialisation, unit by unit (the same
    screened unit indices, so the same places on the sheet): both means and the paired difference with its
    bootstrap 95% CI over units. One trained and one untrained network: the CIs are over units, not seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    sel = units[units["signal"] == signal]
    for layer in dict.fromkeys(sel["layer"]):
        a = sel[(sel["model"] == model) & (sel["layer"] == layer)].set_index("unit")
        b = sel[(sel["model"] == untrained) & (sel["layer"] == layer)].set_index("unit")
        common = a.index.intersection(b.index)
        for measure in SCREENING_MEASURES:
            x, y = a.loc[common, measure].to_numpy(float), b.loc[common, measure].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            lo, hi = analysis.bootstrap_ci(x[ok] - y[ok], rng=rng)
            rows.append(dict(layer=layer, signal=signal, measure=measure, model=model, untrained=untrained,
                             model_mean=float(np.mean(x[ok])) if ok.any() else np.nan,
                             untrained_mean=float(np.mean(y[ok])) if ok.any() else np.nan,
                             diff_mean=float(np.mean(x[ok] - y[ok])) if ok.any() else np.nan,
                             diff_ci_low=lo, diff_ci_high=hi, n_units=int(ok.sum()),
                             differs=bool(np.isfinite(lo) and (lo > 0 or hi < 0))))
    return pd.DataFrame(rows)
