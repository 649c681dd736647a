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
              (f"α = {p.main_alpha:g}" + notes[1].replace(" [", "\n["), figures.read_group(inp.main, group))]
    cats = [str(c.decode() if isinstance(c, bytes) else c) for c in models[1][1]["cat_names"]]
    fig, axes = plt.subplots(2, len(cats) + 1, figsize=(2.6 * (len(cats) + 1), 5.4))
    extent = (0, p.sheet_size, 0, p.sheet_size)
    lim = max(np.nanmax(np.abs(g[f"cat_{c}_tmap"])) for _, g in models for c in cats)
    for row, (label, g) in enumerate(models):
        for col, cat in enumerate(cats):
            ax = axes[row, col]
            im = ax.imshow(g[f"cat_{cat}_tmap"], origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
            mask = g[f"cat_{cat}_patch_mask"].astype(float)
            if mask.any():
                xs = np.linspace(0, p.sheet_size, mask.shape[1])
                ax.contour(xs, xs, mask, levels=[0.5], colors="k", linewidths=1.0)
            ax.set_title(f"{label}: {cat}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"{p.sheet_size:g} mm sheet")
        rsm = g.get("cat_rsm")
        ax = axes[row, -1]
        r = ax.imshow(rsm, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(cats)), cats, rotation=90, fontsize=7)
        ax.set_yticks(range(len(cats)), cats, fontsize=7)
        ax.set_title(f"{label}: RSM of t maps", fontsize=8)
    fig.colorbar(im, ax=axes[:, :-1].ravel().tolist(), fraction=0.02, label="Welch t (category vs rest)")
    fig.colorbar(r, ax=axes[:, -1].ravel().tolist(), fraction=0.05, label="Pearson r")
    fig.suptitle(f"ventral stream, VTC-like {p.layer}: category selectivity, patches outlined (t > "
                 f"{snakemake.config['analysis']['patches']['threshold']:g})", fontsize=10)
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], p.figures["dpi"])
