"""Two-stream species model: held-out category accuracy and position error per connectivity preset, every seed
drawn and paired, with bootstrap CIs over seeds, chance lines and the Holm-adjusted paired comparisons."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, tables
from tdann.provenance import step

PANELS = {"ventral_acc": "ventral (IT): category accuracy", "dorsal_error": "dorsal (LIP): position error"}
UNITS = {"ventral_acc": "fraction correct (held out)", "dorsal_error": "distance (half image widths)"}

with step(snakemake, config_keys=["twostream", "figures"]):
    table = pd.concat([pd.read_csv(p) for p in snakemake.input.tables], ignore_index=True)
    summary, pairs = tables.twostream(table)
    table.to_csv(snakemake.output.table, index=False)
    summary.to_csv(snakemake.output.summary, index=False)
    pairs.to_csv(snakemake.output.pairs, index=False)
    species = list(dict.fromkeys(table["species"]))
    seeds = sorted(set(table["seed"]))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
    for ax, (metric, title) in zip(axes, PANELS.items()):
        wide = table.pivot(index="seed", columns="species", values=metric)[species]
        x = np.arange(len(species))
        for _, row in wide.iterrows():  # one grey line per seed: presets pair by seed
            ax.plot(x, row.to_numpy(float), "-", color="0.8", lw=0.8, zorder=1)
        ax.plot(np.tile(x, len(wide)), wide.to_numpy(float).ravel(), "o", color="0.35", ms=3.5, zorder=2,
                label=f"one seed ({len(seeds)} seeds)")
        rows = summary[summary["metric"] == metric].set_index("species").loc[species]
        err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
        ax.errorbar(x + 0.12, rows["mean"], yerr=np.where(np.isfinite(err), err, 0), fmt="s", color="C0",
                    capsize=3, zorder=3, label="mean, bootstrap 95% CI")
        chance = float(rows["chance"].iloc[0])
        ax.axhline(chance, color="C3", ls="--", lw=1,
                   label="chance: most frequent class" if metric == "ventral_acc" else "chance: best constant guess")
        ax.set_xticks(x, species)
        ax.set_xlabel("species connectivity preset")
        ax.set_ylabel(UNITS[metric])
        top = max(chance, float(np.nanmax(wide.to_numpy(float)))) * 1.25
        ax.set_ylim(0, min(1.0, top) if metric == "ventral_acc" else top)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        lines = []
        for _, r in pairs[pairs["metric"] == metric].iterrows() if len(pairs) else []:
            verdict = "significant" if r["significant"] else "n.s."
            lines.append(f"{r['a']} - {r['b']}: {r['diff_mean']:+.3f} [{r['diff_ci_low']:+.3f}, "
                         f"{r['diff_ci_high']:+.3f}], p_Holm = {r['p_holm']:.2g} ({verdict})")
        ax.text(0.5, -0.42, "\n".join(lines) or "one preset: no comparison", transform=ax.transAxes, ha="center",
                va="top", fontsize=6.5, family="monospace")
    n_eval = int(table["n_eval"].iloc[0])
    objects = str(table["objects"].iloc[0])
    fig.suptitle(f"Two-stream network per species preset: what / where on {n_eval} held-out scenes ({objects}); "
                 "paired by seed", fontsize=9.5)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.42, wspace=0.3)
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
