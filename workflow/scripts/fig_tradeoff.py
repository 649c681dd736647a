"""The alpha trade-off: held-out task metrics, held-out spatial loss and map smoothness against alpha, every seed shown
(lines: means over seeds), both streams."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures
from tdann.provenance import step

with step(snakemake, config_keys=["figures"]):
    t = pd.read_csv(snakemake.input.table)
    streams = list(dict.fromkeys(t["stream"]))
    map_cols = [c for c in t.columns if c.endswith("_smoothness")]
    task_cols = [c for c in ("task_top1", "task_loss", "sl_mean") if c in t.columns]
    ncols = len(task_cols) + 1
    fig, axes = plt.subplots(len(streams), ncols, figsize=(4 * ncols, 3.2 * len(streams)), squeeze=False)
    for row, stream in enumerate(streams):
        s = t[t["stream"] == stream]
        alphas = np.sort(s["alpha"].unique())
        x = {a: i for i, a in enumerate(alphas)}
        for col, key in enumerate(task_cols + ["maps"]):
            ax = axes[row, col]
            keys = [key] if key != "maps" else [c for c in map_cols if s[c].notna().any()]
            for k in keys:
                xs = s["alpha"].map(x).to_numpy() + np.random.default_rng(0).uniform(-0.08, 0.08, len(s))
                (dots,) = ax.plot(xs, s[k], "o", ms=4, alpha=0.7, label=k if key == "maps" else "seeds")
                means = s.groupby("alpha")[k].mean()
                ax.plot([x[a] for a in means.index], means.to_numpy(), "-", lw=1.5, color=dots.get_color())
            ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            ax.set_xlabel("α (spatial loss weight)")
            ylabel = {"task_top1": "held-out contrastive top-1", "task_loss": "held-out task loss (nats)",
                      "sl_mean": "held-out spatial loss (mean of layers)"}.get(key, "smoothness index")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{stream}: {ylabel}", fontsize=9)
            if key == "maps":
                ax.legend(fontsize=6)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
