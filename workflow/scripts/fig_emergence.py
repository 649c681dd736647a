"""Emergence, not retention: each map's smoothness index for every alpha beside its controls (alpha = 0, shuffled
positions, the untrained network on the same positions), one colour per seed with the seeds' values joined across
conditions (the pairing the tests use); under each panel the paired test of every alpha > 0 against each control
(mean difference, bootstrap 95% CI, paired t p, seeds) and the verdict with its guards (a layer that beats its
controls but collapsed to one preference, or sits on a grid under 4 x 4, has not emerged). Trained models that did
not learn (``tables.learning``) are drawn hollow: the tests leave them out."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from tdann import figures, naming, tables
from tdann.provenance import step

p = snakemake.params


def _value(sel: pd.DataFrame, model: str, metric: str) -> float:
    v = sel[(sel["model"] == model) & (sel["metric"] == metric)]["value"]
    return float(v.iloc[0]) if len(v) else np.nan

with step(snakemake, config_keys=["figures", "sweep", "analysis"]):
    verdicts = pd.read_csv(snakemake.input.verdicts)
    verdicts = verdicts[verdicts["index"] == "smoothness"]
    tests = pd.read_csv(snakemake.input.tests)
    tests = tests[tests["index"] == "smoothness"]
    metrics = pd.read_csv(snakemake.input.metrics)
    excluded = tables.not_learnt(pd.read_csv(snakemake.input.learning))
    maps = [m for m in naming.MAPS if m[0] in set(metrics["stream"])]
    alphas, seeds, positions = p.sweep["alphas"], p.sweep["seeds"], p.sweep["positions"]
    fig, axes = plt.subplots(1, len(maps), figsize=(4.4 * len(maps), 6.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (stream, area, key, stimset, prefix) in zip(axes[0], maps):
        layer = p.analysis[key]
        sel = metrics[(metrics["stream"] == stream) & (metrics["layer"] == layer) & (metrics["stimset"] == stimset)]

        # (label, model of each seed, metric): the untrained controls, every alpha, the shuffled null of the top alpha
        sheets = ["retinotopic"] + ([positions] if positions != "retinotopic" else [])
        groups = [(f"untrained\n{sheet}", [naming.untrained_name(sheet, s) for s in seeds], prefix + "smoothness")
                  for sheet in sheets]
        groups += [(f"α = {naming.format_alpha(a)}", [naming.run_name(a, s) for s in seeds], prefix + "smoothness")
                   for a in alphas]
        groups.append((f"shuffled\n(α = {naming.format_alpha(max(alphas))})",
                       [naming.run_name(max(alphas), s) for s in seeds], prefix + "shuffled_smoothness"))
        values = np.array([[_value(sel, m, metric) for m in models] for _, models, metric in groups])  # groups x seeds
        learnt = np.array([[(stream, m) not in excluded for m in models] for _, models, _ in groups])
        xs = np.arange(len(groups))
        for j in range(len(seeds)):
            c = colours(j % 10)
            ax.plot(xs, values[:, j], "-", color=c, lw=0.6, alpha=0.5)
            ax.plot(xs[learnt[:, j]], values[learnt[:, j], j], "o", ms=5, color=c)
            ax.plot(xs[~learnt[:, j]], values[~learnt[:, j], j], "o", ms=6, mfc="none", color=c)
        ax.plot(np.stack([xs - 0.25, xs + 0.25]), np.vstack([np.nanmean(values, axis=1)] * 2), "k-", lw=1.5)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xticks(xs, [g[0] for g in groups], fontsize=7, rotation=45)
        ax.set_ylabel("smoothness index (max − nearest) / max; 0 = flat")
        r = verdicts[(verdicts["stream"] == stream) & (verdicts["area"] == area)]
        emerged = [naming.format_alpha(a) for a in r.loc[r["emerged"], "alpha"]]
        ax.set_title(f"{stream} {area} ({layer})\nemerged at α: {', '.join(emerged) or 'none'}", fontsize=9)
        lines = []
        t = tests[(tests["stream"] == stream) & (tests["area"] == area)]
        for a in [a for a in alphas if a > 0]:
            for _, row in t[np.isclose(t["alpha"], a)].iterrows():
                stat = (f"Δ {row['diff_mean']:+.3f} [{row['diff_ci_low']:+.3f}, {row['diff_ci_high']:+.3f}], "
                        f"p {row['p_paired_t']:.2g}" if row["n_seeds"] >= 2 else "too few seeds")
                lines.append(f"α {naming.format_alpha(a)} vs {row['control']}: {stat} (n = {int(row['n_seeds'])})")
            v = r[np.isclose(r["alpha"], a)]
            if len(v) and bool(v["beats_all"].iloc[0]) and not bool(v["emerged"].iloc[0]):
                why = "collapsed to one preference" if bool(v["collapsed"].iloc[0]) else (
                    "grid under 4 x 4" if bool(v["coarse"].iloc[0]) else "fewer than 3 seeds")
                lines.append(f"α {naming.format_alpha(a)} beats every control but is not counted: {why}")
        n_off = int((~learnt).sum())
        if n_off:
            lines.append(f"hollow: {n_off} model(s) did not learn, left out of the tests")
        ax.text(0.0, -0.36, "\n".join(lines), transform=ax.transAxes, fontsize=6.5, va="top", ha="left")
    handles = [Line2D([], [], marker="o", ls="-", lw=0.6, color=colours(j % 10), label=f"seed {s}")
               for j, s in enumerate(seeds)]
    handles += [Line2D([], [], marker="o", ls="", mfc="none", color="0.3", label="did not learn"),
                Line2D([], [], ls="-", color="k", lw=1.5, label="mean over seeds")]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
