"""The published TDANN networks through this pipeline's analysis: per network, its V1-like orientation map (hue)
and tuning strength, smoothness against distance beside its shuffled null and the untrained network on the same
positions, and the VTC-like category patches; a second row shows the untrained control's maps."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, positions
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
cmap, dpi = figures.angle_cmap(p.figures["angle_cmap"]), p.figures["dpi"]
v1, vtc = f"gratings/{p.v1_layer}", f"categories/{p.vtc_layer}"
with step(snakemake, config_keys=["figures", "published", "analysis.v1_layer", "analysis.vtc_layer"]):
    n = len(p.models)
    fig, axes = plt.subplots(2 * n, 4, figsize=(17, 8.6 * n), squeeze=False)
    for i, (model, info) in enumerate(p.models.items()):
        sheets = positions.load_sheets(inp.sheets[i])
        side_v1, side_vtc = sheets[p.v1_layer].sheet_size, sheets[p.vtc_layer].sheet_size
        label = info.get("label", model)
        rows = []
        for who, path in ((label, inp.published[i]), (f"untrained on {label}'s positions", inp.controls[i])):
            facts = figures.map_facts(path, "gratings", p.v1_layer, "ori_", side_v1)
            rows.append((who, figures.read_group(path, v1), facts, "", figures.read_group(path, vtc)))
        top, bottom = axes[2 * i], axes[2 * i + 1]
        figures.map_panels(fig, [top[0], bottom[0]], [top[1], bottom[1]], [r[:4] for r in rows], "orientation",
                           180.0, side_v1, cmap)
        (pub_label, pub, _, _, pub_cat), (ctl_label, ctl, _, _, ctl_cat) = rows
        figures.smoothness_panel(top[2], pub["ori_curve_bins_mm"], [
            (label, "tab:red", [pub["ori_curve"]], [pub["ori_curve_shuffled"]]),
            ("untrained", "0.35", [ctl["ori_curve"]], [ctl["ori_curve_shuffled"]]),
        ], 45.0, "orientation")
        top[2].set_title(f"{label}: smoothness, {p.v1_layer}\n(top 25% units by peak-to-peak response)", fontsize=9)
        edges = np.linspace(0, 1, 21)
        for name, g, colour in ((label, pub, "tab:red"), ("untrained", ctl, "0.35")):
            bottom[2].hist(g["ori_cv"], edges, histtype="step", lw=1.5, color=colour, label=name)
        bottom[2].set_xlabel("circular variance (orientation; 0 = sharply tuned)")
        bottom[2].set_ylabel("units")
        bottom[2].set_title("orientation selectivity", fontsize=9)
        bottom[2].legend(fontsize=7)
        for ax, who, g in ((top[3], pub_label, pub_cat), (bottom[3], ctl_label, ctl_cat)):
            figures.patch_overlay(ax, g, side_vtc, title=f"{who}\ncategory patches, {p.vtc_layer} "
                                                         f"({side_vtc:.0f} mm sheet)")
    fig.suptitle("published TDANN networks (checkpoints and positions as released), analysed by this pipeline",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], dpi)
