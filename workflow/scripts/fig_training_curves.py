"""Training curves of every run of one stream, as a grid of panels: the task loss beside its chance value (per stage:
the batch sizes may differ; MoCo's queue warm-up marked) and the spatial loss of every tapped layer. Colour is alpha
(stage 1 in black), line style the seed."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from tdann import chance, figures, naming
from tdann.provenance import step

p = snakemake.params
with step(snakemake, config_keys=["figures"]):
    logs = {Path(f).parent.name: pd.read_csv(f) for f in snakemake.input.curves}
    sl_cols = [c for c in next(iter(logs.values())).columns if c.startswith("sl_")]
    n_panels = 1 + len(sl_cols)
    cols = min(5, n_panels) if n_panels <= 10 else 4
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    flat = axes.ravel()
    alphas = sorted({naming.parse_model(r)["alpha"] for r in logs if r != "pretrain"})
    palette = plt.get_cmap("plasma")
    colour = {a: palette(0.1 + 0.75 * i / max(1, len(alphas) - 1)) for i, a in enumerate(alphas)}
    styles = ["-", "--", ":", "-."]
    seeds = sorted({naming.parse_model(r)["seed"] for r in logs if r != "pretrain"})
    for run, df in sorted(logs.items()):
        info = naming.parse_model(run)
        c = "black" if run == "pretrain" else colour[info["alpha"]]
        ls = "-" if run == "pretrain" else styles[seeds.index(info["seed"]) % len(styles)]
        smooth = df.rolling(10, min_periods=1).mean()
        flat[0].plot(df["step"], smooth["task_loss"], color=c, ls=ls, lw=1)
        for ax, col in zip(flat[1:], sl_cols):
            ax.plot(df["step"], smooth[col], color=c, ls=ls, lw=1)
    ax = flat[0]
    stages: dict[int, list[str]] = {}
    for stage in ("pretrain", "train"):
        stages.setdefault(int(p.batch_sizes[stage]), []).append("stage 1" if stage == "pretrain" else "stage 3")
    for batch, names in stages.items():
        level = chance.training_loss_chance(p.task, batch, p.moco_k, p.moco_batch_negatives)
        ax.axhline(level, color="0.4", ls=(0, (4, 2)), lw=0.9)
        ax.text(0.99, level, f"chance {level:.2f} ({', '.join(names)}: B = {batch})",
                transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=6.5, color="0.3")
        if p.task == "moco":
            warm = chance.queue_warmup_steps(p.moco_k, batch)
            ax.axvline(warm, color="0.6", lw=0.8, ls=":")
    if p.task == "moco":
        ax.text(0.02, 0.02, "dotted: queue refilled (warm-up ends)", transform=ax.transAxes, fontsize=6.5)
    ax.set_title(f"task loss ({p.task}; running mean of 10 steps)", fontsize=9)
    ax.set_ylabel("training loss")
    for ax, col in zip(flat[1:], sl_cols):
        ax.set_title(f"spatial loss, {col[3:]}", fontsize=9)
        if p.sl_kind == "rel":  # (1 - pearson(response similarity, closeness)) / 2: 0.5 = no relation
            ax.axhline(0.5, color="0.4", ls=(0, (4, 2)), lw=0.9)
            ax.set_ylabel("SL_Rel (0.5 = no relation)", fontsize=8)
        else:
            ax.set_ylabel(f"SL_{p.sl_kind.capitalize()}", fontsize=8)
    for ax in flat[:n_panels]:
        ax.set_xlabel("step")
    for ax in flat[n_panels:]:
        ax.set_axis_off()
    handles = [Line2D([], [], color="black", label="stage 1 (pretrain, α = 0)")]
    handles += [Line2D([], [], color=colour[a], label=f"stage 3, α = {naming.format_alpha(a)}") for a in alphas]
    handles += [Line2D([], [], color="0.3", ls=styles[i % len(styles)], label=f"seed {s}") for i, s in enumerate(seeds)]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.965))
    fig.suptitle(f"{snakemake.wildcards.stream} stream: training curves", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
