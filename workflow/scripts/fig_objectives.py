"""Topographic objectives side by side: task cost against map smoothness per objective (settings-sweep variants
trained from the same retinotopic start, measured by the same metrics and controls), and the table at matched
task cost."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, tables
from tdann.naming import format_alpha
from tdann.provenance import step

p = snakemake.params
with step(snakemake, config_keys=["settings_sweep", "analysis", "figures"], seeds={"seed": 0}):
    metrics = pd.concat([pd.read_csv(t).assign(variant=v) for t, v in zip(snakemake.input.tables, p.variants)],
                        ignore_index=True)
    evals = pd.DataFrame([{**json.loads(Path(e).read_text()), "variant": v}
                          for e, v in zip(snakemake.input.evals, p.eval_variants)])
    labels = {tuple(k.split("/")): v for k, v in p.labels.items()}
    table = tables.objectives(metrics, evals, p.sweep["alphas"], p.sweep["seeds"], dict(p.analysis), labels)
    table.to_csv(snakemake.output.table, index=False)
    panels = list(table.groupby(["stream", "area"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 6.2), squeeze=False)
    for ax, ((stream, area), g) in zip(axes[0], panels):
        lines = []
        for k, (objective, og) in enumerate(g.groupby("objective", sort=False)):
            og = og.sort_values("alpha")  # the curve runs along alpha
            colour = f"C{k}"
            xerr = np.vstack([og["task_cost"] - og["task_cost_ci_low"], og["task_cost_ci_high"] - og["task_cost"]])
            ax.errorbar(og["task_cost"], og["smoothness"], xerr=np.clip(xerr, 0, None), yerr=og["smoothness_sd"],
                        fmt="o-", color=colour, capsize=2, label=f"{objective} (mean; x: 95% CI, y: SD)")
            unlearnt = og[og["n_learnt"] < og["n_seeds"]]
            if len(unlearnt):
                ax.scatter(unlearnt["task_cost"], unlearnt["smoothness"], s=30, facecolors="white", edgecolors=colour,
                           zorder=3, label=f"{objective}: not every seed learnt (held-out loss >= 0.95 x chance)")
            for _, r in og.iterrows():
                ax.annotate(f"α={format_alpha(r['alpha'])}", (r["task_cost"], r["smoothness"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points", color=colour)
            for control, ls in (("shuffled_mean", ":"), ("untrained_mean", "--")):
                if control in og and np.isfinite(og[control]).any():
                    ax.axhline(float(np.nanmean(og[control])), color=colour, ls=ls, lw=0.8,
                               label=f"{objective}: {control.split('_')[0]} control")
            for _, r in og[og["alpha"] > 0].iterrows():
                beats = all(r.get(f"vs_{c}_ci_low", np.nan) > 0 for c in ("shuffled", "untrained"))
                text = (f"{objective:8s} α={format_alpha(r['alpha']):4s} {r['smoothness']:.3f}  vs shuffled "
                        f"{r.get('vs_shuffled_diff', np.nan):+.3f} [{r.get('vs_shuffled_ci_low', np.nan):+.3f}, "
                        f"{r.get('vs_shuffled_ci_high', np.nan):+.3f}]  vs untrained "
                        f"{r.get('vs_untrained_diff', np.nan):+.3f} [{r.get('vs_untrained_ci_low', np.nan):+.3f}, "
                        f"{r.get('vs_untrained_ci_high', np.nan):+.3f}]  {'beats both' if beats else 'not both'}"
                        f"; learnt {int(r['n_learnt'])}/{int(r['n_seeds'])}")
                matched = [c for c in og.columns if c.startswith("matched_diff_") and np.isfinite(r.get(c, np.nan))]
                for c in matched:
                    text += f"; at the same task cost {r[c]:+.3f} vs {c.removeprefix('matched_diff_')}"
                lines.append(text)
        ax.axvline(0, color="0.7", lw=0.6)
        ax.set_xlabel("task cost: held-out task loss - that of α = 0 (same seed)")
        ax.set_ylabel("smoothness index")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{stream} {area}-like layer ({g['layer'].iloc[0]}), {int(g['n_seeds'].max())} seeds",
                     fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
        ax.text(0.5, -0.36, "\n".join(lines) + "\n(bootstrap 95% CIs of seed-paired differences)",
                transform=ax.transAxes, ha="center", va="top", fontsize=5.5, family="monospace")
    fig.suptitle("Topographic objectives from the same retinotopic start: smoothness against task cost", fontsize=10)
    fig.subplots_adjust(bottom=0.4, top=0.9, left=0.12, right=0.97, wspace=0.3)
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
