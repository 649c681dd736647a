"""Spiking speed channels: event frames and each channel's spikes per speed, the channels' speed-tuning curves beside
the MT-like units' of the dorsal model on the same disks."""

from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, spiking, stimuli
from tdann.provenance import step

cfg = snakemake.params.spiking
with step(snakemake, config_keys=["spiking", "figures"]):
    disks = stimuli.load_moving_disks(Path(snakemake.input.disks))
    by_speed = spiking.split_by_speed(disks)
    with h5py.File(snakemake.input.h5, "r") as f:
        params = {"tau_mem_inv": f["params/tau_mem_inv"][()], "v_th": f["params/v_th"][()]}
    channels = spiking.channels_from_params(params, inhibition=cfg["inhibition"])
    tuning = pd.read_csv(snakemake.input.tuning)
    comparison = pd.read_csv(snakemake.input.comparison)
    speeds = sorted(by_speed)
    n_ch = len(params["v_th"])
    fig, axes = plt.subplots(n_ch + 1, len(speeds) + 1, figsize=(2.4 * (len(speeds) + 1), 2.2 * (n_ch + 1)))
    for col, speed in enumerate(speeds):
        clip = by_speed[speed][0]
        ev = spiking.stimulus_event_frames(clip)
        spikes = channels(ev).detach().numpy()
        ax = axes[0, col]
        ax.imshow(ev.sum(0).numpy(), cmap="gray_r")
        ax.set_title(f"speed {speed:g} px/step: events", fontsize=8)
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
    ax = axes[0, -1]
    for c, g in tuning.groupby("channel"):
        ax.plot(g["speed"], g["spike_count"], "o-", label=f"channel {c}")
    ax.set_xlabel("disk speed (px/step)")
    ax.set_ylabel("spikes per clip")
    ax.set_title("speed tuning: LIF channels", fontsize=8)
    ax.legend(fontsize=6)
    ax = axes[1, -1]
    cols = [c for c in comparison.columns if c.startswith("frac_prefer_")]
    x = np.arange(len(cols))
    for i, (_, row) in enumerate(comparison.iterrows()):
        ax.bar(x + 0.4 * i, row[cols].to_numpy(float), 0.4, label=f"{row['population']} (n={int(row['n_units'])})")
    ax.set_xticks(x + 0.2, [c.replace("frac_prefer_", "") for c in cols])
    ax.set_xlabel("preferred speed (px/step)")
    ax.set_ylabel("fraction of units")
    ax.set_title("preferred speed: spiking vs MT-like units", fontsize=8)
    ax.legend(fontsize=6)
    for ax in axes[2:, -1]:
        ax.set_axis_off()
    if n_ch > 1:
        rising = all(np.all(np.diff(g.sort_values("speed")["spike_count"].to_numpy()) >= 0)
                     for _, g in tuning.groupby("channel"))
        note = ("Every channel's count rises with speed:\nthreshold detectors without inhibition\n"
                "(spiking.inhibition = {:g}, surround = {:g})\nprefer the fastest disk by construction;\n"
                "a preferred-speed match with MT\nneeds band-pass channels.").format(cfg["inhibition"], cfg["surround"]) \
            if rising else "Channels are band-pass: counts do\nnot all rise with speed."
        axes[2, -1].text(0.0, 0.9, note, transform=axes[2, -1].transAxes, va="top", fontsize=7)
    fig.suptitle("Spiking speed channels (LIF box neurons) on moving disks; time surfaces: brighter = later spike",
                 fontsize=9)
    fig.tight_layout()
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
