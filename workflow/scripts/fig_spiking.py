"""Spiking speed channels: event frames and each channel's spikes per speed (with the fitted inhibition), the speed
tuning and channel x disk confusion with and without that inhibition, and the channels' preferred speeds beside the
MT-like units' of the dorsal model on the same disks."""

from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, spiking, stimuli
from tdann.provenance import step

with step(snakemake, config_keys=["spiking", "figures"]):
    disks = stimuli.load_moving_disks(Path(snakemake.input.disks))
    by_speed = spiking.split_by_speed(disks)
    with h5py.File(snakemake.input.h5, "r") as f:
        params = {k: f[f"params/{k}"][()] for k in ("tau_mem_inv", "v_th", "inhibition", "inhibition_radius",
                                                     "inhibition_tau", "target_speed") if f"params/{k}" in f}
        fitted = "inhibition_fit" in f
    channels = spiking.channels_from_params(params)
    tuning = pd.read_csv(snakemake.input.tuning)
    selectivity = pd.read_csv(snakemake.input.selectivity)
    comparison = pd.read_csv(snakemake.input.comparison)
    speeds = sorted(by_speed)
    n_ch = len(params["v_th"])
    rows = max(n_ch + 1, 4)
    fig, axes = plt.subplots(rows, len(speeds) + 1, figsize=(2.5 * (len(speeds) + 1), 2.3 * rows))
    for col, speed in enumerate(speeds):
        ev = spiking.stimulus_event_frames(by_speed[speed][0])
        spikes = channels(ev).detach().numpy()
        ax = axes[0, col]
        ax.imshow(ev.sum(0).numpy(), cmap="gray_r")
        ax.set_title(f"disk at {speed:g} px/step: events", fontsize=8)
        for c in range(n_ch):
            ax = axes[c + 1, col]
            surface = np.where(spikes[:, c].any(0), np.argmax(spikes[:, c][::-1], axis=0), np.nan)
            im = ax.imshow(len(spikes) - surface, cmap="magma", vmin=0, vmax=len(spikes))
            ax.set_title(f"channel {c}: {int(spikes[:, c].sum())} spikes", fontsize=7)
            if not spikes[:, c].any():
                ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                        color="0.4")
            if col == len(speeds) - 1:
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label("last spike (step)", fontsize=7)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes[n_ch + 1:, :-1].ravel():
        ax.set_axis_off()
    inh = float(params.get("inhibition", 0.0))
    ax = axes[0, -1]
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, n_ch))
    for cond, ls in (("threshold only", "--"), ("with inhibition", "-")):
        sel = selectivity[selectivity["condition"] == cond]
        for _, row in sel.iterrows():
            fr = [row[f"frac_{s:g}"] * row["total_spikes"] for s in speeds]
            ax.plot(speeds, fr, "o" + ls, color=colours[int(row["channel"])], ms=3,
                    label=f"ch {int(row['channel'])}" if cond == "with inhibition" else None)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("disk speed (px/step)")
    ax.set_ylabel("spikes per clip (log above 10)")
    ax.set_title("speed tuning: with inhibition (solid),\nthreshold only (dashed)", fontsize=8)
    ax.legend(fontsize=6)
    for ax, cond in ((axes[1, -1], "with inhibition"), (axes[2, -1], "threshold only")):
        sel = selectivity[selectivity["condition"] == cond].sort_values("channel")
        mat = sel[[f"frac_{s:g}" for s in speeds]].to_numpy(float)
        im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v > 0.6 else "k")
        ax.set_xticks(range(len(speeds)), [f"{s:g}" for s in speeds], fontsize=7)
        ax.set_yticks(range(n_ch), [f"ch {c}" for c in range(n_ch)], fontsize=7)
        ax.set_xlabel("disk speed (px/step)", fontsize=7)
        own = ", ".join(f"{v:.2f}" for v in sel["own_fraction"])
        strength = f"inhibition {inh:g}{' (fitted)' if fitted else ''}" if cond == "with inhibition" else "no inhibition"
        ax.set_title(f"{cond} ({strength}):\nfraction of each channel's spikes per disk;\nown disk {own}", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    ax = axes[3, -1]
    cols = [c for c in comparison.columns if c.startswith("frac_prefer_")]
    x = np.arange(len(cols))
    for i, (_, row) in enumerate(comparison.iterrows()):
        ax.bar(x + 0.4 * i, row[cols].to_numpy(float), 0.4, label=f"{row['population']} (n={int(row['n_units'])})")
    ax.set_xticks(x + 0.2, [c.replace("frac_prefer_", "") for c in cols])
    ax.set_xlabel("preferred speed (px/step)")
    ax.set_ylabel("fraction of units")
    ax.set_title("preferred speed: spiking channels (with\ninhibition) vs MT-like units", fontsize=8)
    ax.legend(fontsize=6)
    for ax in axes[4:, -1]:
        ax.set_axis_off()
    fig.suptitle(f"Spiking speed channels (LIF box neurons) on moving disks; inhibition {inh:g} from faster to slower "
                 f"channels (pool radius {float(params.get('inhibition_radius', 0)):g} px, trace "
                 f"{float(params.get('inhibition_tau', 0)):g} steps); time surfaces: brighter = later spike",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
