"""Bidirectional screening: for sample units of each screened layer, where they sit on the sheet, their most / least
activating natural inputs (MAI / LAI) and synthesised most / least exciting inputs (MEI / LEI); activation curves
and population statistics; for clip models an animation strip of one MEI."""

from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np

from tdann import data, figures, screening
from tdann.provenance import step


def show(ax, x, title="", warn=False):
    """x: (3, H, W) or (3, T, H, W) in [0, 1]; clips show their middle frame. ``warn``: a title in red, framed."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x[:, x.shape[1] // 2]
    ax.imshow(np.clip(np.moveaxis(x, 0, -1), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=6, color="firebrick" if warn else "black")
    if warn:
        for spine in ax.spines.values():
            spine.set_edgecolor("firebrick")
            spine.set_linewidth(1.5)


def mei_title(pole, param, value, best_natural, worst_natural):
    """A synthesised input is a result only if it beats the natural inputs: an MEI below the best natural input
    (or at 0) and an LEI above the worst one failed its optimisation, and say so."""
    if pole == "mei" and (value <= 0 or value < best_natural):
        return f"MEI {param}: {value:.2f}\n< best natural {best_natural:.2f}: failed", True
    if pole == "lei" and value > worst_natural:
        return f"LEI {param}: {value:.2f}\n> worst natural {worst_natural:.2f}: failed", True
    if pole == "lei" and value <= 0:
        return f"LEI {param}: {value:.2f} (silent: ties)", False
    return f"{pole.upper()} {param}: {value:.2f}", False


def lai_title(c, values):
    """Post-ReLU units answer 0 to many inputs: a least activating input among ties is one of many."""
    tied = int(np.sum(np.asarray(values) <= 0))
    return f"LAI {c + 1}: {values[c]:.2f}" + (f" (1 of >= {tied} at 0)" if values[c] <= 0 and tied > 1 else "")


with step(snakemake, config_keys=["figures", "screening"]):
    store = Path(snakemake.input.store)
    layers = [h5py.File(p, "r") for p in snakemake.input.synthesis]
    n_units = max(len(f["units"]) for f in layers)
    params = [p for p in ("pixel", "fourier") if p in layers[0]]
    cols = 1 + 2 + 2 + 2 * len(params)
    is_clip = layers[0]["pixel/mei/input"].ndim == 6 if "pixel" in params else False
    extra = 2 if is_clip else 1
    fig = plt.figure(figsize=(1.3 * cols, 1.35 * (len(layers) * n_units + extra * len(layers))))
    gs = fig.add_gridspec(len(layers) * (n_units + extra), cols)
    row = 0
    for f in layers:
        layer = f.attrs["layer"]
        scr = screening.load_screen(Path(snakemake.input.screen), layer)
        unit_row = {int(u): i for i, u in enumerate(scr["units"])}
        pos = f["unit_positions"][()]
        for j, unit in enumerate(f["units"][()]):
            r = unit_row[int(unit)]
            ax = fig.add_subplot(gs[row, 0])
            ax.scatter(pos[:, 0], pos[:, 1], s=6, c="0.7")
            ax.scatter(pos[j, 0], pos[j, 1], s=18, c="r")
            ax.set_title(f"{layer} unit {unit}", fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            mai = data.store_items(store, scr["top_idx"][r][:2])
            lai = data.store_items(store, scr["bottom_idx"][r][:2])
            for c in range(2):
                show(fig.add_subplot(gs[row, 1 + c]), mai[c], f"MAI {c + 1}: {scr['top_val'][r][c]:.2f}")
                show(fig.add_subplot(gs[row, 3 + c]), lai[c], lai_title(c, scr["bottom_val"][r]))
            best, worst = float(np.max(scr["top_val"][r])), float(np.min(scr["bottom_val"][r]))
            for k, param in enumerate(params):
                for m, pole in enumerate(("mei", "lei")):
                    g = f[f"{param}/{pole}"]
                    title, warn = mei_title(pole, param, float(g["activation"][j, 0]), best, worst)
                    show(fig.add_subplot(gs[row, 5 + 2 * k + m]), g["input"][j, 0], title, warn)
            row += 1
        ax = fig.add_subplot(gs[row, : cols // 2])
        for j, unit in enumerate(f["units"][()]):
            r = unit_row[int(unit)]
            curve = np.concatenate([scr["top_val"][r], scr["bottom_val"][r][::-1]])
            ax.plot(curve, "o-", ms=2, lw=0.8)
            ax.axhline(scr["mean"][r], lw=0.5, ls=":", color=ax.lines[-1].get_color())
        ax.set_xlabel("rank: top-k then bottom-k", fontsize=6)
        ax.set_ylabel("response", fontsize=6)
        ax.set_title(f"{layer}: activation curves (dotted: mean over the store)", fontsize=7)
        half = cols // 2 + (cols - cols // 2) // 2
        for sl, key, label in ((slice(cols // 2, half), "gini", "Gini of responses (1 = one input only)"),
                               (slice(half, cols), "skew", "skewness of responses")):
            ax = fig.add_subplot(gs[row, sl])
            ax.hist(scr[key], 20, color="0.4")
            ax.set_xlabel(label, fontsize=6)
            ax.set_ylabel("units", fontsize=6)
            ax.set_title(f"{layer}: {len(scr['units'])} screened units", fontsize=7)
        row += 1
        if is_clip:
            mei = f["pixel/mei/input"][0, 0]
            t = mei.shape[1]
            for c in range(min(cols, t)):
                show(fig.add_subplot(gs[row, c]), mei[:, c], f"MEI frame {c}")
            row += 1
    stream, model = snakemake.wildcards.stream, snakemake.params.model
    note = figures.learning_note(snakemake.input.learning, stream, model)
    fig.suptitle(f"{stream} stream, model {model}{note}: bidirectional screening (red: synthesis failed to beat "
                 "the natural inputs)", fontsize=10, color="firebrick" if note else "black")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
