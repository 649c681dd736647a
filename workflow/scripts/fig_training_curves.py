"""Training curves: task loss (with the in-batch chance value ln(2B - 1) of a SimCLR run) and the spatial loss of
every tapped layer, for every run of one stream."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tdann import figures
from tdann.provenance import step

with step(snakemake, config_keys=["figures"]):
    logs = {Path(p).parent.name: pd.read_csv(p) for p in snakemake.input.curves}
    sl_cols = [c for c in next(iter(logs.values())).columns if c.startswith("sl_")]
    fig, axes = plt.subplots(1, 1 + len(sl_cols), figsize=(3.0 * (1 + len(sl_cols)), 3.0), squeeze=False)
    axes = axes[0]
    cmap = plt.get_cmap("viridis")
    for i, (run, df) in enumerate(sorted(logs.items())):
        color = cmap(i / max(1, len(logs) - 1))
        smooth = df.rolling(10, min_periods=1).mean()
        axes[0].plot(df["step"], smooth["task_loss"], color=color, lw=1, label=run)
        for ax, col in zip(axes[1:], sl_cols):
            ax.plot(df["step"], smooth[col], color=color, lw=1)
    batch = snakemake.params.batch_size
    if snakemake.params.task == "simclr":
        axes[0].axhline(math.log(2 * batch - 1), color="0.4", ls="--", lw=1, label=f"chance ln({2 * batch - 1})")
    axes[0].set_title("task loss (running mean of 10)", fontsize=9)
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=5, ncol=2)
    for ax, col in zip(axes[1:], sl_cols):
        ax.set_title(f"spatial loss {col[3:]}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("step")
    fig.suptitle(f"{snakemake.wildcards.stream} stream: training curves", fontsize=10)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
