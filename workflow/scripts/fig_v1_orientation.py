"""V1-like layer: preferred orientation (isoluminant hue) and tuning strength maps of alpha = 0 and the main alpha,
smoothness against distance for each condition beside its own shuffled null and the untrained network, and the
circular-variance histograms."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, naming
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
group = f"{p.stimset}/{p.layer}"
cmap, dpi = figures.angle_cmap(p.figures["angle_cmap"]), p.figures["dpi"]
with step(snakemake, config_keys=["figures", "analysis.v1_layer", "sweep.main_alpha"]):
    zero = [figures.read_group(f, group) for f in inp.zero]
    main = [figures.read_group(f, group) for f in inp.main]
    untrained = [figures.read_group(f, group) for f in inp.untrained]
    seed0, stream, main_label = p.seeds[0], snakemake.wildcards.stream, f"α = {naming.format_alpha(p.main_alpha)}"
    models = []
    for a, label, path, g in ((0.0, "α = 0", inp.zero[0], zero[0]), (p.main_alpha, main_label, inp.main[0], main[0])):
        facts = figures.map_facts(path, p.stimset, p.layer, "ori_", p.sheet_size)
        models.append((f"{label}, seed {seed0}", g, facts,
                       figures.learning_note(inp.learning, stream, naming.run_name(a, seed0))))
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.2))
    figures.map_panels(fig, axes[0, :2], axes[1, :2], models, "orientation", 180.0, p.sheet_size, cmap)
    ax = axes[0, 2]
    figures.smoothness_panel(ax, zero[0]["ori_curve_bins_mm"], [
        ("α = 0", "tab:blue", [g["ori_curve"] for g in zero], [g["ori_curve_shuffled"] for g in zero]),
        (main_label, "tab:red", [g["ori_curve"] for g in main], [g["ori_curve_shuffled"] for g in main]),
        ("untrained", "0.35", [g["ori_curve"] for g in untrained], [g["ori_curve_shuffled"] for g in untrained]),
    ], 45.0, "orientation")
    ax.set_title("smoothness (top 25% units by peak-to-peak response;\nmean ± SD over seeds)", fontsize=9)
    ax = axes[1, 2]
    edges = np.linspace(0, 1, 21)
    for label, groups, color in (("α = 0", zero, "tab:blue"), (main_label, main, "tab:red"),
                                 ("untrained", untrained, "0.35")):
        ax.hist(np.concatenate([g["ori_cv"] for g in groups]), edges, histtype="step", lw=1.5, color=color,
                label=f"{label} ({len(groups)} seeds)")
    ax.set_xlabel("circular variance (orientation; 0 = sharply tuned)")
    ax.set_ylabel("units (all seeds)")
    ax.set_title("orientation selectivity", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"{stream} stream, V1-like {p.layer} ({p.stimset}); sheet {p.sheet_size:g} mm", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], dpi)
