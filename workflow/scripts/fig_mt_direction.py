"""MT-like layer: preferred direction (isoluminant hue) and tuning strength maps of alpha = 0 and the main alpha,
direction smoothness for each condition beside its own shuffled null and the untrained network, DSI / CV / axial
distributions and speed-tuning examples."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, naming
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
cmap, dpi = figures.angle_cmap(p.figures["angle_cmap"]), p.figures["dpi"]
group = f"drifting/{p.layer}"
with step(snakemake, config_keys=["figures", "analysis.mt_layer", "sweep.main_alpha"]):
    zero = [figures.read_group(f, group) for f in inp.zero]
    main = [figures.read_group(f, group) for f in inp.main]
    untrained = [figures.read_group(f, group) for f in inp.untrained]
    dots = figures.read_group(inp.main[0], f"dots/{p.layer}")
    seed0, main_label = p.seeds[0], f"α = {naming.format_alpha(p.main_alpha)}"
    models = []
    for a, label, path, g in ((0.0, "α = 0", inp.zero[0], zero[0]), (p.main_alpha, main_label, inp.main[0], main[0])):
        facts = figures.map_facts(path, "drifting", p.layer, "dir_", p.sheet_size)
        models.append((f"{label}, seed {seed0}", g, facts,
                       figures.learning_note(inp.learning, "dorsal", naming.run_name(a, seed0))))
    conditions = (("α = 0", zero, "tab:blue"), (main_label, main, "tab:red"), ("untrained", untrained, "0.35"))
    fig, axes = plt.subplots(3, 3, figsize=(13, 11.5))
    figures.map_panels(fig, axes[0, :2], axes[1, :2], models, "direction", 360.0, p.sheet_size, cmap)
    ax = axes[0, 2]
    figures.smoothness_panel(ax, zero[0]["dir_curve_bins_mm"], [
        (label, color, [g["dir_curve"] for g in gs], [g["dir_curve_shuffled"] for g in gs])
        for label, gs, color in conditions], 90.0, "direction")
    ax.set_title("direction smoothness (top 25% units;\nmean ± SD over seeds)", fontsize=9)
    ax = axes[1, 2]
    if "speed_curves" in dots:
        order = np.argsort(-np.ptp(dots["speed_curves"], axis=1))[:6]
        for u in order:
            ax.plot(dots["speed_values"], dots["speed_curves"][u], "o-", ms=3, label=f"unit {u}")
        ax.set_xscale("log")
        ax.set_xticks(dots["speed_values"], [f"{v:g}" for v in dots["speed_values"]])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel("dot speed (pixels / frame)")
        ax.set_ylabel("response (a.u.)")
        ax.set_title(f"speed tuning: 6 most modulated units ({main_label}, seed {seed0}, dots)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
    else:
        ax.text(0.5, 0.5, "one dot speed configured:\nno speed tuning", ha="center", va="center")
        ax.set_axis_off()
    edges = np.linspace(0, 1, 21)
    for ax, (key, label) in zip(axes[2], (("dir_dsi_vector", "vector DSI (1 = one direction only)"),
                                          ("dir_cv", "circular variance (direction; 0 = sharply tuned)"),
                                          ("dir_axial", "axial component (both directions of one axis)"))):
        for name, gs, color in conditions:
            ax.hist(np.concatenate([g[key] for g in gs]), edges, histtype="step", lw=1.5, color=color,
                    label=f"{name} ({len(gs)} seeds)")
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylabel("units (all seeds)")
        ax.legend(fontsize=7)
    fig.suptitle(f"dorsal stream, MT-like {p.layer} (drifting gratings); sheet {p.sheet_size:g} mm", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], dpi)
