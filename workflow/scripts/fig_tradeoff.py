"""The alpha trade-off: held-out task metrics (with their chance values), linear probes, held-out spatial loss and
map smoothness against alpha, every seed shown (lines: means over seeds), both streams. Models that did not learn
(``tables.learning``) are drawn hollow and named in the panel, so no reader takes them for a result."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures
from tdann.provenance import step

LABELS = {"task_top1": "held-out contrastive top-1", "task_loss": "held-out contrastive loss (nats)",
          "sl_mean": "held-out spatial loss (mean of layers)", "probe_categories": "probe: localizer category",
          "probe_drifting": "probe: direction (gratings)", "probe_dots": "probe: direction (dots)",
          "maps": "smoothness index"}
CHANCE = {"task_top1": "task_top1_chance", "task_loss": "task_loss_chance", "probe_categories":
          "probe_categories_chance", "probe_drifting": "probe_drifting_chance", "probe_dots": "probe_dots_chance"}

with step(snakemake, config_keys=["figures"]):
    t = pd.read_csv(snakemake.input.table)
    learning = pd.read_csv(snakemake.input.learning)
    untrained = learning[learning["kind"].str.startswith("untrained")]
    streams = list(dict.fromkeys(t["stream"]))
    map_cols = [c for c in t.columns if c.endswith("_smoothness")]
    keys = [k for k in ("task_loss", "task_top1", "probe_categories", "probe_drifting", "probe_dots", "sl_mean")
            if k in t.columns and t[k].notna().any()] + ["maps"]
    per_stream = {s: [k for k in keys if k == "maps" or t.loc[t["stream"] == s, k].notna().any()] for s in streams}
    ncols = max(len(v) for v in per_stream.values())
    fig, axes = plt.subplots(len(streams), ncols, figsize=(3.4 * ncols, 3.1 * len(streams)), squeeze=False)
    jitter = np.random.default_rng(0)
    for row, stream in enumerate(streams):
        s = t[t["stream"] == stream]
        alphas = np.sort(s["alpha"].unique())
        x = {a: i for i, a in enumerate(alphas)}
        learnt = s["learnt"].astype(bool).to_numpy() if "learnt" in s else np.ones(len(s), bool)
        for col in range(ncols):
            ax = axes[row, col]
            if col >= len(per_stream[stream]):
                ax.axis("off")
                continue
            key = per_stream[stream][col]
            cols = [key] if key != "maps" else [c for c in map_cols if s[c].notna().any()]
            xs = s["alpha"].map(x).to_numpy() + jitter.uniform(-0.08, 0.08, len(s))
            for k in cols:
                label = "mean over seeds" if key != "maps" else k.replace("_ori_smoothness", " orientation").replace(
                    "_dir_smoothness", " direction").replace("_cat_faces_t_smoothness", " faces")
                (line,) = ax.plot([x[a] for a in np.sort(s["alpha"].unique())], s.groupby("alpha")[k].mean(), "-",
                                  lw=1.5, label=label)
                ax.plot(xs[learnt], s[k].to_numpy()[learnt], "o", ms=4, color=line.get_color())
                ax.plot(xs[~learnt], s[k].to_numpy()[~learnt], "o", ms=5, mfc="none", color=line.get_color())
            if key in CHANCE and CHANCE[key] in s:
                ax.axhline(float(s[CHANCE[key]].mean()), color="0.4", ls="--", lw=1, label="chance")
            u = untrained[untrained["stream"] == stream]
            if key.startswith("probe_") and key in u and u[key].notna().any():
                ax.axhline(float(u[key].mean()), color="0.4", ls=":", lw=1.2, label="untrained network")
                if key.startswith("probe_"):
                    ax.set_ylim(0, 1)
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(0.0, lo), hi)  # from zero: a truncated axis inflates differences of a few per cent
            ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            ax.set_xlabel("α (categorical axis)")
            ax.set_ylabel(LABELS[key], fontsize=8)
            n = int(s["n_val"].iloc[0]) if "n_val" in s and key.startswith("task") else None
            ax.set_title(f"{stream}: {LABELS[key]}" + (f"\n(held-out n = {n})" if n else ""), fontsize=8)
            if key == "maps" or key in CHANCE:
                ax.legend(fontsize=6, loc="best")
        if (~learnt).any():
            axes[row, 0].set_title(axes[row, 0].get_title() + f"\nhollow: did not learn ({int((~learnt).sum())} of "
                                   f"{len(s)})", fontsize=8, color="firebrick")
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
