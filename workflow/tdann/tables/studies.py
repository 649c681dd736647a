"""Tables of the studies beside the main sweep: the published networks, the settings sweep, the two-stream presets, the topographic objectives."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .. import analysis, report
from ..metrics import spacing_resolved
from ..naming import MAPS, format_alpha, run_name
from ._common import _paired, _value
from .emergence import emergence, spreads, verdicts


def published(metrics: pd.DataFrame, models: dict[str, dict], controls: dict[str, str],
              analysis_cfg: dict) -> pd.DataFrame:
    """The published TDANN networks' maps beside their controls, one row per (model, quantity).

    ``models``: id -> {"label", "alpha"}; ``controls``: id -> the untrained network's id on the same positions.
    V1-like layer (gratings): smoothness and far index with the shuffled-position null, circular variance, the
    fraction orientation-selective, and column spacing and pinwheel density only where the spacing was measured
    (:func:`tdann.metrics.spacing_resolved`; NaN otherwise). VTC-like layer (categories): per category the t-map
    smoothness with its null, patch count and area, the fraction selective; the category probe with its chance."""
    cfg = dict(analysis_cfg)
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
            layer = str(analysis_cfg[key])
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
