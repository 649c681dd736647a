"""V1-like layer: orientation maps (alpha = 0 beside the main alpha) with pinwheels, smoothness vs distance with the
shuffled and untrained controls, and the CV histogram."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, naming
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
group = f"{p.stimset}/{p.layer}"
cmap, dpi = p.figures["angle_cmap"], p.figures["dpi"]
with step(snakemake, config_keys=["figures", "analysis.v1_layer", "sweep.main_alpha"]):
    zero = [figures.read_group(f, group) for f in inp.zero]
    main = [figures.read_group(f, group) for f in inp.main]
    untrained = [figures.read_group(f, group) for f in inp.untrained]
    fig = plt.figure(figsize=(12, 3.8))
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    seed0, stream = p.seeds[0], snakemake.wildcards.stream
    notes = [figures.learning_note(inp.learning, stream, naming.run_name(a, seed0)) for a in (0.0, p.main_alpha)]
    panels = ((axes[0], zero[0], "α = 0", notes[0]), (axes[1], main[0], f"α = {p.main_alpha:g}", notes[1]))
    for ax, g, label, note in panels:
        im = figures.angle_map(ax, g["ori_map"], 180.0, p.sheet_size, cmap, g.get("ori_pinwheels_mm"),
                               title=f"{label}, seed {seed0}: preferred orientation\n" + (f"{note.strip()}\n" if note
                                     else "") + f"{len(g.get('ori_pinwheel_charge', []))} pinwheels (○)")
    cb = fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, 180), cmap), ax=axes[1], fraction=0.046)
    cb.set_label("orientation (deg)")
    bins = zero[0]["ori_curve_bins_mm"]
    ax = axes[2]
    figures.distance_curves(ax, bins, [g["ori_curve"] for g in zero], "α = 0", "tab:blue")
    figures.distance_curves(ax, bins, [g["ori_curve"] for g in main], f"α = {p.main_alpha:g}", "tab:red")
    figures.distance_curves(ax, bins, [g["ori_curve"] for g in untrained], "untrained", "tab:gray")
    figures.distance_curves(ax, bins, [g["ori_curve_shuffled"] for g in zero], "α = 0, shuffled", "tab:blue", "--")
    figures.distance_curves(ax, bins, [g["ori_curve_shuffled"] for g in main], f"α = {p.main_alpha:g}, shuffled",
                            "tab:red", "--")
    ax.axhline(45, color="0.7", lw=0.8)
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel("|Δ preferred orientation| (deg)")
    ax.set_title("smoothness: top 25% units by\npeak-to-peak response (45° = chance)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[3]
    edges = np.linspace(0, 1, 21)
    ax.hist(np.concatenate([g["ori_cv"] for g in zero]), edges, alpha=0.6, label="α = 0", color="tab:blue")
    ax.hist(np.concatenate([g["ori_cv"] for g in main]), edges, alpha=0.6, label=f"α = {p.main_alpha:g}",
            color="tab:red")
    ax.set_xlabel("circular variance (orientation)")
    ax.set_ylabel("units (all seeds)")
    ax.set_title("orientation selectivity", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"{snakemake.wildcards.stream} stream, V1-like {p.layer} ({p.stimset}); "
                 f"sheet {p.sheet_size:g} mm", fontsize=10)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], dpi)
