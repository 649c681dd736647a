"""Emergence, not retention: each map's smoothness for every alpha beside its controls (alpha = 0, shuffled
positions, untrained network on the same positions), every seed shown; the verdict in the title, with the guards
(a layer that beats its controls but collapsed to one preference, or sits on a grid under 4 x 4, has not emerged).
Trained models that did not learn (``tables.learning``) are drawn hollow: the verdicts leave them out."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, naming, tables
from tdann.provenance import step

p = snakemake.params
with step(snakemake, config_keys=["figures", "sweep", "analysis"]):
    verdicts = pd.read_csv(snakemake.input.verdicts)
    metrics = pd.read_csv(snakemake.input.metrics)
    verdicts = verdicts[verdicts["index"] == "smoothness"]
    excluded = tables.not_learnt(pd.read_csv(snakemake.input.learning))
    maps = [m for m in tables.MAPS if m[0] in set(metrics["stream"])]
    fig, axes = plt.subplots(1, len(maps), figsize=(3.6 * len(maps), 3.4), squeeze=False)
    seeds = p.sweep["seeds"]
    for ax, (stream, area, key, stimset, prefix) in zip(axes[0], maps):
        layer = p.analysis[key]
        sel = metrics[(metrics["stream"] == stream) & (metrics["layer"] == layer) & (metrics["stimset"] == stimset)]

        def vals(model_of_seed, metric):
            out = []
            for s in seeds:
                v = sel[(sel["model"] == model_of_seed(s)) & (sel["metric"] == metric)]["value"]
                out.append(float(v.iloc[0]) if len(v) else np.nan)
            return out

        groups = [(f"untrained\n{sheet}", vals(lambda s, sheet=sheet: naming.untrained_name(sheet, s),
                                                 prefix + "smoothness")) for sheet in ("retinotopic", "swapopt")]
        for a in p.sweep["alphas"]:
            groups.append((f"α={a:g}", vals(lambda s, a=a: naming.run_name(a, s), prefix + "smoothness")))
        groups.append(("shuffled\n(α max)", vals(lambda s: naming.run_name(max(p.sweep["alphas"]), s),
                                                  prefix + "shuffled_smoothness")))
        hollow = {f"α={a:g}": [(stream, naming.run_name(a, s)) in excluded for s in seeds] for a in p.sweep["alphas"]}
        for i, (label, v) in enumerate(groups):
            xs = np.full(len(v), i) + np.linspace(-0.1, 0.1, len(v))
            off = np.array(hollow.get(label, [False] * len(v)))
            (dots,) = ax.plot(xs[~off], np.asarray(v)[~off], "o", ms=4)
            ax.plot(xs[off], np.asarray(v)[off], "o", ms=5, mfc="none", color=dots.get_color())
            ax.plot([i - 0.25, i + 0.25], [np.nanmean(v)] * 2, "k-", lw=1.5)
        ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=6, rotation=45)
        ax.set_ylabel("smoothness index")
        r = verdicts[(verdicts["stream"] == stream) & (verdicts["area"] == area)]
        emerged = [f"{a:g}" for a in r.loc[r["emerged"], "alpha"]]
        guarded = [f"{a:g} ({'collapsed' if c else 'coarse grid'})"
                   for a, c in zip(r.loc[r["beats_all"] & ~r["emerged"], "alpha"],
                                   r.loc[r["beats_all"] & ~r["emerged"], "collapsed"])]
        title = f"{stream} {area} ({layer})\nemerged at α: {', '.join(emerged) or 'none'}"
        if guarded:
            title += f"\nbeats controls, not counted: {', '.join(guarded)}"
        n_off = sum(sum(v) for v in hollow.values())
        if n_off:
            title += f"\nhollow: {n_off} model(s) did not learn, left out"
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
