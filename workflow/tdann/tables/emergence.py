"""Emergence of maps against the three controls, verdicts, paired comparisons with alpha = 0, pinwheel densities, biological anchors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import RINGACH_2002, spacing_resolved
from ..naming import MAPS, format_alpha, parse_model, run_name, untrained_name
from ._common import TASK, TUNING, _paired, _value


def emergence(metrics: pd.DataFrame, alphas: list[float], seeds: list[int], positions: str,
              analysis_cfg: dict, index: str = "smoothness", seed: int = 0,
              exclude: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """For each map and alpha > 0: the index over seeds beside each control, with paired statistics.

    Columns: stream, area, layer, alpha, control, model_mean, model_sd, control_mean, control_sd, diff_mean,
    diff_ci_low, diff_ci_high (bootstrap over seeds), p_paired_t, n_seeds, beats (CI low > 0).
    Controls: alpha = 0 (same positions), shuffled positions (same model), untrained (same positions).
    ``exclude``: (stream, model) pairs that count as missing, the trained models that did not learn
    (:func:`not_learnt`): a seed whose alpha > 0 model or alpha = 0 control did not learn drops out of the pairs.
    """
    rng = np.random.default_rng(seed)
    if exclude:
        metrics = metrics[[(s, m) not in exclude for s, m in zip(metrics["stream"], metrics["model"])]]
    rows = []
    for stream, area, key, stimset, prefix in MAPS:
        if stream not in set(metrics["stream"]):
            continue
        layer = analysis_cfg[key]
        for alpha in [a for a in alphas if a > 0]:
            trained = [run_name(alpha, s) for s in seeds]
            model_vals = np.array([_value(metrics, stream, m, layer, stimset, prefix + index) for m in trained])
            controls = {
                "alpha=0": [_value(metrics, stream, run_name(0, s), layer, stimset, prefix + index) for s in seeds],
                "shuffled": [_value(metrics, stream, m, layer, stimset, f"{prefix}shuffled_{index}") for m in trained],
                f"untrained ({positions})": [
                    _value(metrics, stream, untrained_name(positions, s), layer, stimset, prefix + index)
                    for s in seeds
                ],
            }
            for control, vals in controls.items():
                rows.append(dict(stream=stream, area=area, layer=layer, stimset=stimset, index=index, alpha=alpha,
                                 control=control, **_paired(model_vals, np.array(vals), rng)))
    return pd.DataFrame(rows)


def spreads(metrics: pd.DataFrame, seeds: list[int], analysis_cfg: dict) -> pd.DataFrame:
    """Per map (stream, area) and alpha: the mean spread of preferences over seeds (1 - resultant length; 1 =
    uniform, 0 = every unit alike) and the side of the layer's retinotopic grid.

    docs/reference.md §9: strong alpha can collapse a layer to one preferred orientation, which a normalised
    smoothness index hides (the spread exposes it), and a 2 x 2 layer scores four uniform patches as "smooth".
    """
    rows = []
    for stream, area, key, stimset, prefix in MAPS:
        at_layer = metrics[(metrics["stream"] == stream) & (metrics["layer"] == analysis_cfg[key])]
        grid = at_layer.loc[at_layer["metric"].isin(["grid_h", "grid_w"]), "value"]
        side = float(grid.min()) if len(grid) else np.nan
        sel = at_layer[(at_layer["stimset"] == stimset) & (at_layer["metric"] == f"{prefix}spread")]
        values = {m: v for m, v in zip(sel["model"], sel["value"])}
        for model in at_layer["model"].unique():
            info = parse_model(model)
            if info["kind"] == "trained" and info["seed"] in seeds:
                rows.append(dict(stream=stream, area=area, alpha=info["alpha"], spread=values.get(model, np.nan),
                                 grid=side))
    if not rows:
        return pd.DataFrame(columns=["stream", "area", "alpha", "spread", "grid"])
    return pd.DataFrame(rows).groupby(["stream", "area", "alpha"], as_index=False)[["spread", "grid"]].mean()


def verdicts(table: pd.DataFrame, spread: pd.DataFrame | None = None, collapse_ratio: float = 0.75,
             min_grid: int = 4) -> pd.DataFrame:
    """Per map and alpha: did the map emerge? It must beat every control with >= 3 seeds, not be a collapse (mean
    preference spread below ``collapse_ratio`` x that of alpha = 0), and sit on a retinotopic grid of at least
    ``min_grid`` x ``min_grid`` locations (see :func:`spreads`)."""
    if table.empty:
        return table
    g = table.groupby(["stream", "area", "layer", "index", "alpha"], sort=False)
    out = g.agg(model_mean=("model_mean", "first"), beats_all=("beats", "all"), n_seeds=("n_seeds", "min"))
    out = out.reset_index()
    if spread is None or spread.empty:
        spread = pd.DataFrame(columns=["stream", "area", "alpha", "spread", "grid"])
    out = out.merge(spread, on=["stream", "area", "alpha"], how="left")
    zero = spread[spread["alpha"] == 0][["stream", "area", "spread"]].rename(columns={"spread": "spread_alpha0"})
    out = out.merge(zero, on=["stream", "area"], how="left")
    out["collapsed"] = (out["spread"] < collapse_ratio * out["spread_alpha0"]).fillna(False).astype(bool)
    out["coarse"] = (out["grid"] < min_grid).fillna(False).astype(bool)
    return out.assign(emerged=lambda d: d["beats_all"] & (d["n_seeds"] >= 3) & ~d["collapsed"] & ~d["coarse"])


def comparisons(metrics: pd.DataFrame, tradeoff_table: pd.DataFrame, alphas: list[float], seeds: list[int],
                analysis_cfg: dict, seed: int = 0) -> pd.DataFrame:
    """Each alpha > 0 against alpha = 0, paired by seed, for the task metrics (held-out task loss and top-1, held-out
    spatial loss: the trade-off), pinwheel densities (per lambda^2) and the MT-like layer's tuning (DSI, circular
    variance, axial component, fraction direction-selective). Columns as :func:`emergence`, with ``quantity`` and,
    instead of ``beats``, ``change``: higher / lower where the bootstrap CI of the difference excludes 0 with >= 3
    seeds, else n.s. (or "too few seeds" / "not measured")."""
    rng = np.random.default_rng(seed)
    rows = []
    for stream in [s for s in ("ventral", "dorsal") if s in set(tradeoff_table["stream"])]:
        t = tradeoff_table[tradeoff_table["stream"] == stream]
        for quantity in [q for q in TASK if q in t.columns and t[q].notna().any()]:
            zero = _per_seed(t, quantity, 0.0, seeds)
            for alpha in [a for a in alphas if a > 0]:
                rows.append(dict(stream=stream, area="task", layer="", stimset="held-out", quantity=quantity,
                                 alpha=alpha, control="alpha=0", **_paired(_per_seed(t, quantity, alpha, seeds), zero,
                                                                           rng)))
    for stream, area, key, stimset, metric in TUNING:
        if stream not in set(metrics["stream"]):
            continue
        layer = analysis_cfg[key]
        where = (metrics, stream, layer, stimset, metric)
        zero = np.array([_tuning_value(*where, run_name(0, s)) for s in seeds])
        for alpha in [a for a in alphas if a > 0]:
            vals = np.array([_tuning_value(*where, run_name(alpha, s)) for s in seeds])
            rows.append(dict(stream=stream, area=area, layer=layer, stimset=stimset, quantity=metric, alpha=alpha,
                             control="alpha=0", **_paired(vals, zero, rng)))
    if not rows:
        return pd.DataFrame(rows)
    out = pd.DataFrame(rows).drop(columns="beats")
    out["change"] = np.where(out["diff_ci_low"] > 0, "higher", np.where(out["diff_ci_high"] < 0, "lower", "n.s."))
    out.loc[out["n_seeds"] < 3, "change"] = "too few seeds"
    out.loc[out["n_seeds"] == 0, "change"] = "not measured"
    return out


def _per_seed(table: pd.DataFrame, quantity: str, alpha: float, seeds: list[int]) -> np.ndarray:
    """One trade-off quantity at one alpha, in the order of ``seeds`` (NaN where a seed is missing)."""
    sel = table[np.isclose(table["alpha"], alpha)].set_index("seed")[quantity]
    return np.array([float(sel.get(s, np.nan)) for s in seeds])


def _tuning_value(metrics: pd.DataFrame, stream: str, layer: str, stimset: str, metric: str, model: str) -> float:
    """A map metric of one model; a pinwheel density counts only where lambda could be measured."""
    ok = not metric.endswith("pinwheel_density") or _value(
        metrics, stream, model, layer, stimset, metric.split("_")[0] + "_lambda_fit_ok") == 1
    return _value(metrics, stream, model, layer, stimset, metric) if ok else np.nan


def pinwheels(metrics: pd.DataFrame, alphas: list[float], seeds: list[int], positions: str,
              analysis_cfg: dict, exclude: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Pinwheel density per lambda^2 of the V1-like orientation and MT-like direction maps, pooled over seeds.

    Per map and model group (each alpha, the untrained network): the seeds whose lambda could be measured from the
    map's spectrum (``metrics.spacing_resolved``: a fit, at least 3 grid spacings per column, at least 4 Lambda^2 of
    map), their pinwheel count and sheet area in lambda^2 (summed), the pooled density count / area with a 95%
    Poisson (Garwood) interval, the per-seed mean and SD, and whether pi lies inside the interval (pi per lambda^2:
    carnivore and primate orientation maps, and any Gaussian random field with a narrow isotropic spectrum,
    docs/reference.md §4). A handful of pinwheels gives a wide interval: the interval, not the point, is the result.
    ``exclude``: (stream, model) of trained models that did not learn (:func:`not_learnt`); they are left out and
    counted in ``n_not_learnt``.
    """
    exclude = exclude or set()
    groups = [(f"alpha={format_alpha(a)}", [run_name(a, s) for s in seeds]) for a in alphas]
    groups.append((f"untrained ({positions})", [untrained_name(positions, s) for s in seeds]))
    rows = []
    for stream, area, key, stimset, metric in TUNING:
        if not metric.endswith("pinwheel_density") or stream not in set(metrics["stream"]):
            continue
        layer, prefix = analysis_cfg[key], metric.split("_")[0] + "_"
        for group, models in groups:
            found = [(_value(metrics, stream, m, layer, stimset, prefix + "pinwheels"),
                    _value(metrics, stream, m, layer, stimset, prefix + "area_lambda2"),
                    spacing_resolved(_value(metrics, stream, m, layer, stimset, prefix + "lambda_fit_ok"),
                                     _value(metrics, stream, m, layer, stimset, prefix + "lambda_mm"),
                                     _value(metrics, stream, m, layer, stimset, "grid_spacing_mm"),
                                     _value(metrics, stream, m, layer, stimset, prefix + "area_lambda2")))
                   for m in models]
            learnt = [(stream, m) not in exclude for m in models]
            got = np.array([(n, a) for (n, a, ok), keep in zip(found, learnt)
                            if keep and ok and np.isfinite(n) and a > 0]).reshape(-1, 2)
            count, area_l2 = float(got[:, 0].sum()), float(got[:, 1].sum())
            density = count / area_l2 if area_l2 > 0 else np.nan
            low = stats.chi2.ppf(0.025, 2 * count) / 2 / area_l2 if count > 0 else 0.0
            high = stats.chi2.ppf(0.975, 2 * count + 2) / 2 / area_l2 if area_l2 > 0 else np.nan
            per_seed = got[:, 0] / got[:, 1] if len(got) else np.array([])
            rows.append(dict(stream=stream, area=area, layer=layer, stimset=stimset, model=group,
                             n_seeds=len(got), n_not_learnt=int(len(models) - sum(learnt)), pinwheels=count, area_lambda2=area_l2, density=density,
                             ci_low=low if area_l2 > 0 else np.nan, ci_high=high,
                             seed_mean=float(per_seed.mean()) if len(per_seed) else np.nan,
                             seed_sd=float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
                             pi_inside=bool(area_l2 > 0 and low <= np.pi <= high)))
    return pd.DataFrame(rows)


def anchors(metrics: pd.DataFrame, alphas: list[float], seeds: list[int], positions: str,
            analysis_cfg: dict) -> pd.DataFrame:
    """Orientation tuning of the V1-like layers against macaque V1 (Ringach et al. 2002; ``metrics.RINGACH_2002``):
    per stream and model group (each alpha, the untrained network), the mean over seeds of the circular-variance
    median, quartiles and fraction of units with CV < 0.6 (units with mean grating response above
    ``anchor_min_response``), beside the macaque values; ``cv_ks_d`` is the Kolmogorov-Smirnov distance to the
    macaque distribution where the raw file is configured (``analysis.ringach_dataset``), else NaN."""
    cfg = dict(analysis_cfg)
    groups = [(f"alpha={format_alpha(a)}", [run_name(a, s) for s in seeds]) for a in alphas]
    groups.append((f"untrained ({positions})", [untrained_name(positions, s) for s in seeds]))
    rows = []
    for stream, stimset in (("ventral", "gratings"), ("dorsal", "drifting")):
        if stream not in set(metrics["stream"]):
            continue
        for group, models in groups:
            row = dict(stream=stream, area="V1", layer=cfg["v1_layer"], model=group)
            for q in ("cv_median", "cv_q25", "cv_q75", "frac_selective", "anchor_units", "cv_ks_d"):
                vals = np.array([_value(metrics, stream, m, cfg["v1_layer"], stimset, f"ori_{q}") for m in models])
                row[q] = float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan
            row["n_seeds"] = int(np.isfinite([_value(metrics, stream, m, cfg["v1_layer"], stimset, "ori_cv_median")
                                              for m in models]).sum())
            rows.append(row)
    rows.append(dict(stream="macaque (Ringach et al. 2002)", area="V1", layer="", model="308 neurons",
                     cv_median=RINGACH_2002["cv_median"], cv_q25=RINGACH_2002["cv_q25"],
                     cv_q75=RINGACH_2002["cv_q75"], frac_selective=RINGACH_2002["frac_selective"],
                     anchor_units=308.0, cv_ks_d=0.0, n_seeds=1))
    return pd.DataFrame(rows)
