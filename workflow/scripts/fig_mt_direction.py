"""MT-like layer: direction map with pinwheels and colour wheel, DSI / CV / axial distributions, orientation-direction
relation and speed-tuning examples."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, naming
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
cmap, dpi = p.figures["angle_cmap"], p.figures["dpi"]
group = f"drifting/{p.layer}"
with step(snakemake, config_keys=["figures", "analysis.mt_layer", "sweep.main_alpha"]):
    zero = [figures.read_group(f, group) for f in inp.zero]
    main = [figures.read_group(f, group) for f in inp.main]
    dots = [figures.read_group(f, f"dots/{p.layer}") for f in inp.main]
    fig = plt.figure(figsize=(13, 6.4))
    gs = fig.add_gridspec(2, 4)
    seed0 = p.seeds[0]
    notes = [figures.learning_note(inp.learning, "dorsal", naming.run_name(a, seed0)) for a in (0.0, p.main_alpha)]
    for col, g, label, note in ((0, zero[0], "α = 0", notes[0]), (1, main[0], f"α = {p.main_alpha:g}", notes[1])):
        ax = fig.add_subplot(gs[0, col])
        figures.angle_map(ax, g["dir_map"], 360.0, p.sheet_size, cmap, g.get("dir_pinwheels_mm"),
                          title=f"{label}, seed {seed0}: preferred direction\n" + (f"{note.strip()}\n" if note
                                else "") + f"{len(g.get('dir_pinwheel_charge', []))} pinwheels (○)")
    figures.colour_wheel(fig.add_subplot(gs[0, 2], projection="polar"), 360.0, cmap, "direction of motion")
    ax = fig.add_subplot(gs[0, 3])
    bins = zero[0]["dir_curve_bins_mm"]
    figures.distance_curves(ax, bins, [g["dir_curve"] for g in zero], "α = 0", "tab:blue")
    figures.distance_curves(ax, bins, [g["dir_curve"] for g in main], f"α = {p.main_alpha:g}", "tab:red")
    figures.distance_curves(ax, bins, [g["dir_curve_shuffled"] for g in zero], "α = 0, shuffled", "tab:blue", "--")
    figures.distance_curves(ax, bins, [g["dir_curve_shuffled"] for g in main], f"α = {p.main_alpha:g}, shuffled",
                            "tab:red", "--")
    ax.axhline(90, color="0.7", lw=0.8)
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel("|Δ preferred direction| (deg)")
    ax.set_title("direction smoothness (90° = chance)", fontsize=9)
    ax.legend(fontsize=7)
    for col, (key, label) in enumerate((("dir_dsi_vector", "vector DSI"), ("dir_cv", "circular variance (direction)"),
                                        ("dir_axial", "axial component"))):
        ax = fig.add_subplot(gs[1, col])
        edges = np.linspace(0, 1, 21)
        ax.hist(np.concatenate([g[key] for g in zero]), edges, alpha=0.6, color="tab:blue", label="α = 0")
        ax.hist(np.concatenate([g[key] for g in main]), edges, alpha=0.6, color="tab:red",
                label=f"α = {p.main_alpha:g}")
        ax.set_xlabel(label)
        ax.set_ylabel("units (all seeds)")
        ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[1, 3])
    d = dots[0]
    if "speed_curves" in d:
        order = np.argsort(-np.ptp(d["speed_curves"], axis=1))[:6]
        for u in order:
            ax.plot(d["speed_values"], d["speed_curves"][u], "o-", ms=3, label=f"unit {u}")
        ax.set_xscale("log")
        ax.set_xticks(d["speed_values"], [f"{v:g}" for v in d["speed_values"]])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel("dot speed (pixels / frame)")
        ax.set_ylabel("response")
        ax.set_title("speed tuning, most modulated units (dots)", fontsize=9)
        ax.legend(fontsize=6)
    else:
        ax.text(0.5, 0.5, "one dot speed configured:\nno speed tuning", ha="center", va="center")
        ax.set_axis_off()
    fig.suptitle(f"dorsal stream, MT-like {p.layer} (drifting gratings); sheet {p.sheet_size:g} mm", fontsize=10)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], dpi)
