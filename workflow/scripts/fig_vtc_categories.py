"""VTC-like layer: smoothed category t maps with patch outlines (alpha = 0 and the main alpha), and the RSM."""

import matplotlib.pyplot as plt
import numpy as np

from tdann import figures, naming
from tdann.provenance import step

p, inp = snakemake.params, snakemake.input
group = f"categories/{p.layer}"
with step(snakemake, config_keys=["figures", "analysis.vtc_layer", "analysis.patches", "sweep.main_alpha"]):
    seed0 = 0  # the rule reads the seed-0 models
    notes = [figures.learning_note(inp.learning, "ventral", naming.run_name(a, seed0)) for a in (0.0, p.main_alpha)]
    models = [("α = 0" + notes[0].replace(" [", "\n["), figures.read_group(inp.zero, group)),
              (f"α = {naming.format_alpha(p.main_alpha)}" + notes[1].replace(" [", "\n["), figures.read_group(inp.main, group))]
    cats = [str(c.decode() if isinstance(c, bytes) else c) for c in models[1][1]["cat_names"]]
    procedural = not snakemake.config["stimuli"].get("categories", {}).get("floc_dataset")
    shown = {c: (f"{c} (procedural)" if procedural and c == "bodies" else c) for c in cats}
    n = len(cats)
    fig = plt.figure(figsize=(2.5 * n + 4.2, 5.8))
    gs = fig.add_gridspec(2, n + 4, width_ratios=[1] * n + [0.06, 0.75, 1.1, 0.06], wspace=0.08, hspace=0.5)
    short = {c: (c + "*" if shown[c] != c else c) for c in cats}
    extent = (0, p.sheet_size, 0, p.sheet_size)
    lim = max(np.nanmax(np.abs(g[f"cat_{c}_tmap"])) for _, g in models for c in cats)
    for row, (label, g) in enumerate(models):
        for col, cat in enumerate(cats):
            ax = fig.add_subplot(gs[row, col])
            im = ax.imshow(g[f"cat_{cat}_tmap"], origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
            mask = g[f"cat_{cat}_patch_mask"].astype(float)
            if mask.any():
                xs = np.linspace(0, p.sheet_size, mask.shape[1])
                ax.contour(xs, xs, mask, levels=[0.5], colors="k", linewidths=1.0)
            figures.scale_bar(ax, p.sheet_size)
            ax.set_title(f"{label}: {shown[cat]}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"{p.sheet_size:g} mm sheet")
        rsm = g.get("cat_rsm")
        ax = fig.add_subplot(gs[row, n + 2])
        r = ax.imshow(rsm, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(n), [short[c] for c in cats], rotation=90, fontsize=7)
        ax.set_yticks(range(n), [short[c] for c in cats], fontsize=7)
        ax.set_title(f"{label.splitlines()[0]}: RSM of t maps", fontsize=8)
        fig.colorbar(im, cax=fig.add_subplot(gs[row, n]), label="Welch t (category vs rest)")
        fig.colorbar(r, cax=fig.add_subplot(gs[row, n + 3]), label="Pearson r")
    if procedural:
        fig.text(0.99, 0.01, "* procedural bodies (no fLoc set configured)", ha="right", fontsize=7)
    fig.suptitle(f"ventral stream, VTC-like {p.layer}: category selectivity, patches outlined (t > "
                 f"{snakemake.config['analysis']['patches']['threshold']:g})", fontsize=10)
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
