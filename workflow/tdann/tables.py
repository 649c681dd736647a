"""Result tables: the alpha trade-off and the emergence comparisons with their statistics (docs/reference.md §9).

A map "emerges" in a layer only where the trained alpha > 0 network beats, across seeds, all three controls: the
alpha = 0 network on the same positions, the shuffled-position null of the same network, and the untrained network
on the same positions.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import stats

from . import analysis, report
from .metrics import RINGACH_2002, probe_layer_of, spacing_resolved
from .naming import format_alpha, parse_model, run_name, untrained_name

# (stream, area, layer config key, stimset, metric prefix): the maps the results table is about
MAPS = (
    ("ventral", "V1", "v1_layer", "gratings", "ori_"),
    ("ventral", "VTC", "vtc_layer", "categories", "cat_faces_t_"),
    ("dorsal", "V1", "v1_layer", "drifting", "ori_"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_"),
)


#: Linear probes per stream (stimulus sets): ventral localizer category, dorsal motion direction. The first of each
#: is the primary probe that decides "learnt"; the others are reported. Dot direction is not required: at 32 px even
#: the untrained network's first block decodes it at only 0.2-0.4 (16 directions), so it tests the stimulus more
#: than the network.
PROBES = {"ventral": ("categories",), "dorsal": ("drifting", "dots")}
_DEFAULTS = {"v1_layer": "layer2.0", "vtc_layer": "layer4.1", "mt_layer": "layer3.1",
             "probe_layer": {"ventral": "layer4.1", "dorsal": "layer3.1"}}  # the schema's defaults


def _probe_values(metrics: pd.DataFrame, stream: str, model: str, layer: str | None) -> dict[str, float]:
    """``probe_<stimset>`` accuracy, ``_ci_lo``, ``_ci_hi`` and ``_chance`` of one model (NaN if not measured)."""
    out = {}
    for stimset in PROBES.get(stream, ()):
        for suffix, metric in (("", "probe_accuracy"), ("_ci_lo", "probe_ci_lo"), ("_ci_hi", "probe_ci_hi"),
                               ("_chance", "probe_chance")):
            out[f"probe_{stimset}{suffix}"] = _value(metrics, stream, model, layer, stimset, metric)
    return out


def learning(metrics: pd.DataFrame, evals: pd.DataFrame, analysis_cfg: dict | None = None,
             loss_ratio: float = 0.95) -> pd.DataFrame:
    """Did each network learn? One row per model: trained (stage 3 and stage 1) and the untrained controls.

    Held-out contrastive loss and top-1 beside their chance values (``tdann.chance.chance_levels``) and the linear
    probes with their 95% intervals beside chance (``tdann.probe``). A trained model ``learnt`` when its held-out
    loss is below ``loss_ratio`` x chance and its primary probe's interval (:data:`PROBES`) lies above chance; an
    untrained
    network is a control and never "learnt". Tables and figures mark models that did not learn, and
    :func:`emergence` leaves them out.
    """
    cfg = {**_DEFAULTS, **(analysis_cfg or {})}
    rows = []
    ev = {(e["stream"], "pretrain" if e["stage"] == "pretrain" else run_name(e["alpha"], e["seed"])): e
          for e in evals.to_dict("records")}
    for (stream, model), _ in metrics.groupby(["stream", "model"], sort=False):
        info = parse_model(model)
        row = dict(stream=stream, model=model, kind=info["kind"], alpha=info["alpha"], seed=info["seed"])
        e = ev.get((stream, model), {})
        for key in ("task_loss", "task_loss_chance", "task_loss_ratio", "task_top1", "task_top1_chance"):
            row[key] = float(e.get(key, np.nan))
        probes = _probe_values(metrics, stream, model, probe_layer_of(cfg, stream))
        row.update(probes)
        primary = PROBES.get(stream, (None,))[0]
        row["probe_layer"] = probe_layer_of(cfg, stream)
        row["probe_above_chance"] = bool(primary and probes[f"probe_{primary}_ci_lo"] > probes[f"probe_{primary}_chance"])
        row["learnt"] = bool(info["kind"] in ("trained", "pretrain") and row["task_loss_ratio"] < loss_ratio
                             and row["probe_above_chance"])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["stream", "kind", "alpha", "seed"]).reset_index(drop=True)


def not_learnt(learning_table: pd.DataFrame) -> set[tuple[str, str]]:
    """(stream, model) of the trained models that did not learn: left out of every emergence verdict."""
    t = learning_table[learning_table["kind"].isin(["trained", "pretrain"]) & ~learning_table["learnt"].astype(bool)]
    return set(zip(t["stream"], t["model"]))


def tradeoff(metrics: pd.DataFrame, evals: pd.DataFrame, analysis_cfg: dict | None = None,
             learning_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trained model (stream, alpha, seed): task metrics on held-out data (contrastive loss and top-1
    with their chance values, linear probes) and whether it learnt (:func:`learning`, computed unless
    ``learning_table`` gives it), beside map smoothness."""
    cfg = {**_DEFAULTS, **(analysis_cfg or {})}
    table = learning(metrics, evals, cfg) if learning_table is None else learning_table
    learnt = table.set_index(["stream", "model"])["learnt"].to_dict()
    ev = evals[evals["stage"] == "train"].copy()
    numeric = [c for c in ev.columns if c not in ("stream", "stage") and pd.api.types.is_numeric_dtype(ev[c])]
    rows = []
    for _, e in ev.iterrows():
        model = run_name(e["alpha"], e["seed"])
        row = {"stream": e["stream"], "alpha": e["alpha"], "seed": int(e["seed"]), "model": model}
        row.update({c: e[c] for c in numeric if c not in ("alpha", "seed")})
        row.update(_probe_values(metrics, e["stream"], model, probe_layer_of(cfg, e["stream"])))
        row["learnt"] = bool(learnt.get((e["stream"], model), False))
        m = metrics[(metrics["stream"] == e["stream"]) & (metrics["model"] == model)]
        for stream, area, key, stimset, prefix in MAPS:
            if stream != e["stream"]:
                continue
            sel = m[(m["layer"] == cfg[key]) & (m["stimset"] == stimset)]
            for suffix in ("smoothness", "far_index", "spread"):
                val = sel.loc[sel["metric"] == prefix + suffix, "value"]
                if len(val):
                    row[f"{area}_{prefix}{suffix}"] = float(val.iloc[0])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["stream", "alpha", "seed"]).reset_index(drop=True)


def _value(metrics: pd.DataFrame, stream: str, model: str, layer: str | None, stimset: str, metric: str) -> float:
    sel = metrics[(metrics["stream"] == stream) & (metrics["model"] == model) & (metrics["layer"] == layer)
                  & (metrics["stimset"] == stimset) & (metrics["metric"] == metric)]
    return float(sel["value"].iloc[0]) if len(sel) else np.nan


def _paired(model_vals: np.ndarray, ctrl: np.ndarray, rng: np.random.Generator) -> dict:
    """Seed-paired statistics of model - control: means and SDs, the mean difference with its bootstrap 95% CI,
    the paired t test's p, the number of complete pairs, and ``beats`` (CI low > 0: with 3 seeds, every paired
    difference is positive)."""
    diff = model_vals - ctrl
    ok = np.isfinite(diff)
    lo, hi = analysis.bootstrap_ci(diff[ok], rng=rng)
    test = analysis.paired_test(model_vals[ok], ctrl[ok]) if ok.sum() >= 2 else {}

    def sd(v: np.ndarray) -> float:
        return float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else np.nan
    return dict(model_mean=float(np.mean(model_vals[ok])) if ok.any() else np.nan, model_sd=sd(model_vals),
                control_mean=float(np.mean(ctrl[ok])) if ok.any() else np.nan, control_sd=sd(ctrl),
                diff_mean=float(np.mean(diff[ok])) if ok.any() else np.nan, diff_ci_low=lo, diff_ci_high=hi,
                p_paired_t=test.get("p_t", np.nan), n_seeds=int(ok.sum()), beats=bool(np.isfinite(lo) and lo > 0))


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


# Per-model quantities compared between alpha > 0 and alpha = 0 (the trade-off, pinwheels, MT tuning):
# (stream, area, layer config key, stimset, metric); task quantities come from the trade-off table.
TUNING = (
    ("ventral", "V1", "v1_layer", "gratings", "ori_pinwheel_density"),
    ("dorsal", "V1", "v1_layer", "drifting", "ori_pinwheel_density"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_pinwheel_density"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_dsi"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_cv"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_axial"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_frac_ds"),
)
# held-out task loss / top-1, held-out spatial loss, linear probes (trade-off table)
TASK = ("task_loss", "task_top1", "sl_mean", "probe_categories", "probe_drifting", "probe_dots")


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
    cfg = {**_DEFAULTS, **analysis_cfg}
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


def published(metrics: pd.DataFrame, models: dict[str, dict], controls: dict[str, str],
              analysis_cfg: dict) -> pd.DataFrame:
    """The published TDANN networks' maps beside their controls, one row per (model, quantity).

    ``models``: id -> {"label", "alpha"}; ``controls``: id -> the untrained network's id on the same positions.
    V1-like layer (gratings): smoothness and far index with the shuffled-position null, circular variance, the
    fraction orientation-selective, and column spacing and pinwheel density only where the spacing was measured
    (:func:`tdann.metrics.spacing_resolved`; NaN otherwise). VTC-like layer (categories): per category the t-map
    smoothness with its null, patch count and area, the fraction selective; the category probe with its chance."""
    cfg = {**_DEFAULTS, **(analysis_cfg or {})}
    v1, vtc = cfg["v1_layer"], cfg["vtc_layer"]
    cats = sorted({m.split("_")[1] for m in metrics["metric"] if m.startswith("cat_") and m.endswith("_patches")})
    rows = []
    for model, info in models.items():
        for who, mid in (("published", model), ("untrained_control", controls[model])):
            val = functools.partial(_value, metrics, "ventral", mid)
            resolved = spacing_resolved(val(v1, "gratings", "ori_lambda_fit_ok"), val(v1, "gratings", "ori_lambda_mm"),
                                        val(v1, "gratings", "grid_spacing_mm"), val(v1, "gratings", "ori_area_lambda2"))
            quantities = [
                ("V1", v1, "gratings", "orientation smoothness index", "ori_smoothness", "ori_shuffled_smoothness"),
                ("V1", v1, "gratings", "orientation far index", "ori_far_index", "ori_shuffled_far_index"),
                ("V1", v1, "gratings", "mean circular variance", "ori_mean_cv", None),
                ("V1", v1, "gratings", "fraction orientation-selective", "ori_frac_selective", None),
                ("V1", v1, "gratings", "column spacing (mm)", "ori_lambda_mm", None),
                ("V1", v1, "gratings", "pinwheels per column spacing^2", "ori_pinwheel_density", None),
            ]
            for c in cats:
                quantities += [
                    ("VTC", vtc, "categories", f"{c}: t-map smoothness index", f"cat_{c}_t_smoothness",
                     f"cat_{c}_t_shuffled_smoothness"),
                    ("VTC", vtc, "categories", f"{c}: patches", f"cat_{c}_patches", None),
                    ("VTC", vtc, "categories", f"{c}: patch area (mm^2)", f"cat_{c}_patch_area_mm2", None),
                    ("VTC", vtc, "categories", f"{c}: fraction selective", f"cat_{c}_frac_selective", None),
                ]
            quantities.append(("VTC", vtc, "categories", "category probe accuracy", "probe_accuracy", "probe_chance"))
            for area, layer, stimset, name, metric, null in quantities:
                value = val(layer, stimset, metric)
                if metric in ("ori_lambda_mm", "ori_pinwheel_density") and not resolved:
                    value = np.nan
                rows.append(dict(model=model, label=info.get("label", model), alpha=info.get("alpha", np.nan),
                                 network=who, network_id=mid, area=area, layer=layer, stimset=stimset,
                                 quantity=name, metric=metric, value=value,
                                 null=val(layer, stimset, null) if null else np.nan,
                                 null_kind={None: "", "probe_chance": "chance"}.get(null, "shuffled positions")))
    return pd.DataFrame(rows)


def published_markdown(table: pd.DataFrame) -> str:
    """:func:`published` as one Markdown table per published network: a row per quantity, the network's value and
    its null beside the untrained control's."""
    parts = []
    for model, t in table.groupby("model", sort=False):
        pub = t[t["network"] == "published"].set_index(["area", "quantity"])
        ctl = t[t["network"] == "untrained_control"].set_index(["area", "quantity"])
        wide = pd.DataFrame({"published": pub["value"], "published null": pub["null"],
                             "untrained": ctl["value"], "untrained null": ctl["null"],
                             "null": pub["null_kind"]}).reset_index()
        alpha = t["alpha"].iloc[0]
        head = f"### {t['label'].iloc[0]} (`{model}`" + (f", alpha {format_alpha(alpha)})" if np.isfinite(alpha) else ")")
        parts.append(head + "\n\n" + report.to_markdown(wide))
    return "\n\n".join(parts)


def settings_sweep(metrics: pd.DataFrame, evals: pd.DataFrame, alphas: list[float], seeds: list[int],
                   analysis_cfg: dict) -> pd.DataFrame:
    """The settings sweep of docs/reference.md §9 / issue 11: per (stream, variant, map, alpha > 0), did the map
    emerge from the retinotopic sheet, and at what cost?

    ``metrics``: the tidy metrics of every sweep model with a ``variant`` column (models ``a<alpha>_s<seed>`` and
    ``untrained-retinotopic_s<seed>``); ``evals``: one row per trained model (stream, variant, alpha, seed, task_loss,
    train_seconds). Verdicts as in :func:`verdicts` (all three controls beaten with >= 3 seeds, no collapse, a grid of
    >= 4 x 4), for the normalised index (``emerged``) and its far-distance variant (``emerged_far``).
    """
    out = []
    for (stream, variant), sub in metrics.groupby(["stream", "variant"], sort=False):
        parts = {}
        for index in ("smoothness", "far_index"):
            em = emergence(sub, alphas, seeds, "retinotopic", analysis_cfg, index=index)
            parts[index] = em[np.isfinite(em["model_mean"].astype(float))]
        if parts["smoothness"].empty:
            continue
        v = verdicts(pd.concat(parts.values(), ignore_index=True), spreads(sub, seeds, analysis_cfg))
        controls = parts["smoothness"].pivot_table(index=["area", "alpha"], columns="control", values="control_mean")
        ev = evals[(evals["stream"] == stream) & (evals["variant"] == variant)]
        for (area, layer, alpha), g in v.groupby(["area", "layer", "alpha"], sort=False):
            smooth, far = (g[g["index"] == i].iloc[0] for i in ("smoothness", "far_index"))
            ctrl = controls.loc[(area, alpha)]
            at = ev[ev["alpha"] == alpha]
            zero = ev[ev["alpha"] == 0]
            out.append(dict(
                stream=stream, variant=variant, area=area, layer=layer, alpha=alpha, grid=smooth["grid"],
                smoothness=smooth["model_mean"], alpha0=ctrl.get("alpha=0", np.nan),
                shuffled=ctrl.get("shuffled", np.nan), untrained=ctrl.get("untrained (retinotopic)", np.nan),
                spread=smooth["spread"], spread_alpha0=smooth["spread_alpha0"], beats_all=bool(smooth["beats_all"]),
                collapsed=bool(smooth["collapsed"]), coarse=bool(smooth["coarse"]),
                emerged=bool(smooth["emerged"]), emerged_far=bool(far["emerged"]),
                task_loss=float(at["task_loss"].mean()) if len(at) else np.nan,
                task_loss_alpha0=float(zero["task_loss"].mean()) if len(zero) else np.nan,
                train_seconds=float(ev["train_seconds"].mean()) if "train_seconds" in ev and len(ev) else np.nan,
                n_seeds=int(smooth["n_seeds"]),
            ))
    return pd.DataFrame(out)


#: The two-stream network's held-out scores: (column, its chance column, direction in which it beats chance).
TWOSTREAM_METRICS = (("ventral_acc", "chance_acc", 1.0), ("dorsal_error", "chance_error", -1.0))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p values (step-down, monotone, capped at 1); NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out


def twostream(table: pd.DataFrame, seed: int = 0, level: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per species preset and over seeds, the held-out scores against chance; and every pair of presets compared.

    ``table``: one row per (species, seed) with ventral_acc, dorsal_error, chance_acc, chance_error, n_eval.
    Summary (one row per species and metric): mean, SD, bootstrap 95% CI over seeds, chance, ``beats_chance``
    (the whole CI on the right side of chance). Pairs (one row per pair and metric): the seed-paired difference
    a - b with its bootstrap CI, the paired t test's p, Holm's adjustment over the pairs of that metric and
    ``significant`` (adjusted p < ``level``). Seeds pair because a seed fixes the initialisation and the scenes.
    """
    rng = np.random.default_rng(seed)
    species = list(dict.fromkeys(table["species"]))
    summary, pairs = [], []
    for metric, chance_col, sign in TWOSTREAM_METRICS:
        for sp in species:
            rows = table[table["species"] == sp]
            v = rows[metric].to_numpy(float)
            lo, hi = analysis.bootstrap_ci(v, rng=rng)
            chance = float(rows[chance_col].iloc[0])
            beats = bool(np.isfinite(lo) and (lo > chance if sign > 0 else hi < chance))
            summary.append(dict(species=sp, metric=metric, mean=float(np.mean(v)),
                                sd=float(np.std(v, ddof=1)) if len(v) > 1 else np.nan, ci_low=lo, ci_high=hi,
                                chance=chance, beats_chance=beats, n_seeds=len(v), n_eval=int(rows["n_eval"].iloc[0])))
        block = []
        for i, a in enumerate(species):
            for b in species[i + 1:]:
                va = table[table["species"] == a].set_index("seed")[metric]
                vb = table[table["species"] == b].set_index("seed")[metric]
                seeds = sorted(set(va.index) & set(vb.index))
                stats_ = _paired(va.loc[seeds].to_numpy(float), vb.loc[seeds].to_numpy(float), rng)
                block.append(dict(metric=metric, a=a, b=b, diff_mean=stats_["diff_mean"],
                                  diff_ci_low=stats_["diff_ci_low"], diff_ci_high=stats_["diff_ci_high"],
                                  p_paired_t=stats_["p_paired_t"], n_seeds=stats_["n_seeds"]))
        adjusted = holm(np.array([r["p_paired_t"] for r in block]))
        for r, p in zip(block, adjusted):
            pairs.append(r | dict(p_holm=p, significant=bool(np.isfinite(p) and p < level)))
    return pd.DataFrame(summary), pd.DataFrame(pairs)


# ----------------------------------------------------------------------------------------------
# topographic objectives side by side (settings-sweep variants that differ in the spatial objective)
# ----------------------------------------------------------------------------------------------
def objectives(metrics: pd.DataFrame, evals: pd.DataFrame, alphas: list[float], seeds: list[int],
               analysis_cfg: dict, labels: dict[tuple[str, str], str], seed: int = 0,
               loss_ratio: float = 0.95) -> pd.DataFrame:
    """Task cost against map smoothness per topographic objective, each trained from the same retinotopic start
    and measured by the same metrics and controls.

    ``metrics`` / ``evals`` as for :func:`settings_sweep`; ``labels``: (stream, variant) -> objective name, for
    the variants compared. One row per (stream, objective, area, alpha) including alpha = 0: the smoothness index
    (mean, SD over seeds), its paired difference from the shuffled-position null and from the untrained network
    (bootstrap CIs), and the task cost, the held-out task loss minus that of alpha = 0 of the same seed (paired,
    bootstrap CI). ``smoothness_matched_*``: every other objective's smoothness interpolated at this point's task
    cost (linearly along its alpha curve, alpha = 0 included), NaN outside the costs that objective covers, and
    ``matched_diff_*`` = this objective's smoothness minus it: the comparison at matched task cost.
    ``n_learnt``: seeds whose held-out task loss is below ``loss_ratio`` x chance (as in :func:`learning`; the
    sweep measures no probe), ``task_loss_ratio`` its mean: a point whose networks did not learn shows an untrained
    map's smoothness, not a learnt one's.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for (stream, variant), label in labels.items():
        sub = metrics[(metrics["stream"] == stream) & (metrics["variant"] == variant)]
        ev = evals[(evals["stream"] == stream) & (evals["variant"] == variant)]
        if sub.empty:
            continue
        base_loss = ev[ev["alpha"] == 0].set_index("seed")["task_loss"]
        em = emergence(sub, [a for a in alphas if a > 0] + [0.0], seeds, "retinotopic", analysis_cfg)
        for area, key, stimset, prefix in {(a, k, s, p) for st, a, k, s, p in MAPS if st == stream}:
            layer = str(analysis_cfg.get(key, _DEFAULTS.get(key)))
            for alpha in sorted(alphas):
                vals = np.array([_value(sub, stream, run_name(alpha, s), layer, stimset, prefix + "smoothness")
                                 for s in seeds])
                if not np.isfinite(vals).any():
                    continue
                loss = ev[ev["alpha"] == alpha].set_index("seed")["task_loss"]
                ratio = ev[ev["alpha"] == alpha]["task_loss_ratio"] if "task_loss_ratio" in ev else pd.Series([])
                common = sorted(set(loss.index) & set(base_loss.index))
                cost = loss.loc[common].to_numpy(float) - base_loss.loc[common].to_numpy(float)
                lo, hi = analysis.bootstrap_ci(cost, rng=rng) if alpha > 0 else (0.0, 0.0)
                row = dict(stream=stream, objective=label, variant=variant, area=area, layer=layer, alpha=alpha,
                           smoothness=float(np.nanmean(vals)),
                           smoothness_sd=float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else np.nan,
                           task_loss=float(loss.mean()) if len(loss) else np.nan,
                           task_loss_ratio=float(ratio.mean()) if len(ratio) else np.nan,
                           n_learnt=int((ratio < loss_ratio).sum()),
                           task_cost=float(np.mean(cost)) if len(cost) else np.nan, task_cost_ci_low=lo,
                           task_cost_ci_high=hi, n_seeds=int(np.isfinite(vals).sum()))
                for control, name in (("shuffled", "shuffled"), ("untrained (retinotopic)", "untrained")):
                    c = em[(em["area"] == area) & (em["alpha"] == alpha) & (em["control"] == control)]
                    if alpha > 0 and len(c):
                        row |= {f"vs_{name}_diff": float(c["diff_mean"].iloc[0]),
                                f"vs_{name}_ci_low": float(c["diff_ci_low"].iloc[0]),
                                f"vs_{name}_ci_high": float(c["diff_ci_high"].iloc[0]),
                                f"{name}_mean": float(c["control_mean"].iloc[0])}
                rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for _, g in table.groupby(["stream", "area"]):
        for other, og in g.groupby("objective"):
            og = og.sort_values("task_cost")
            x, y = og["task_cost"].to_numpy(float), og["smoothness"].to_numpy(float)
            for i in g.index:
                if table.at[i, "objective"] == other:
                    continue
                c = table.at[i, "task_cost"]
                inside = np.isfinite(c) and x.min() <= c <= x.max()
                matched = float(np.interp(c, x, y)) if inside else np.nan
                table.loc[i, f"smoothness_matched_{other}"] = matched
                table.loc[i, f"matched_diff_{other}"] = table.at[i, "smoothness"] - matched
    return table
