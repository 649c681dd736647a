"""Two-stream species model: ventral accuracy and dorsal error per connectivity preset (every seed shown)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures
from tdann.provenance import step

with step(snakemake, config_keys=["twostream", "figures"]):
    table = pd.concat([pd.read_csv(p) for p in snakemake.input.tables], ignore_index=True)
    table.to_csv(snakemake.output.table, index=False)
    species = list(dict.fromkeys(table["species"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, label in ((axes[0], "ventral_acc", "ventral: category accuracy (held out)"),
                           (axes[1], "dorsal_error", "dorsal: direction error (deg, held out)")):
        for i, s in enumerate(species):
            v = table.loc[table["species"] == s, key].to_numpy(float)
            ax.plot(np.full(len(v), i) + np.linspace(-0.1, 0.1, len(v)), v, "o")
            ax.plot([i - 0.25, i + 0.25], [v.mean()] * 2, "k-")
        ax.set_xticks(range(len(species)), species)
        ax.set_title(label, fontsize=9)
    fig.suptitle("Two-stream network wired by species connectivity presets", fontsize=10)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
