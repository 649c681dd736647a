"""Fit LIF speed channels to the moving disks (thresholds and time constants, then the inhibition from faster to
slower channels that keeps each to its own disk), measure their speed tuning with and without that inhibition and
their localisation, and compare with the speed tuning of the dorsal model's MT-like units on the same stimuli."""

import logging
from pathlib import Path

import pandas as pd
import torch

from tdann import augment, models, spiking, stimuli
from tdann.provenance import step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg = snakemake.params.spiking

with step(snakemake, config_keys=["spiking", "stimuli.disks"]):
    disks = stimuli.load_moving_disks(Path(snakemake.input.disks))
    by_speed = spiking.split_by_speed(disks)
    params = spiking.fit_channels(by_speed, cfg["n_channels"], tau_grid=cfg["tau_grid"],
                                  n_thresholds=cfg["n_thresholds"], kernel_radius=cfg["kernel_radius"],
                                  surround=cfg["surround"], dt=cfg["dt"])
    params.update(inhibition_radius=cfg["inhibition_radius"], inhibition_tau=cfg["inhibition_tau"])
    tried = None
    if cfg["inhibition"] == "fit":
        params["inhibition"], tried = spiking.fit_inhibition(params, by_speed, cfg["inhibition_grid"],
                                                             cfg["inhibition_radius"], cfg["inhibition_tau"])
    else:
        params["inhibition"] = float(cfg["inhibition"])
    channels = spiking.channels_from_params(params)
    tuning = spiking.speed_tuning(channels, by_speed)
    threshold_only = spiking.speed_tuning(spiking.channels_from_params({**params, "inhibition": 0.0}), by_speed)
    selectivity = pd.concat([
        spiking.channel_selectivity(threshold_only, params["target_speed"]).assign(condition="threshold only",
                                                                                  inhibition=0.0),
        spiking.channel_selectivity(tuning, params["target_speed"]).assign(condition="with inhibition",
                                                                          inhibition=params["inhibition"]),
    ], ignore_index=True)
    frames = spiking.stimulus_event_frames(disks)
    spikes = channels(frames)
    loc = spiking.localisation_error(spikes, disks["centers"])
    # event files in the exercise's format (torch.sparse_coo (T, X, Y)): the disks as written, then the user's files
    files = {"disks (as written)": Path(snakemake.input.disk_events)} | {
        name: Path(path) for name, path in cfg["event_files"].items()}
    rows = []
    for name, path in files.items():
        ev = spiking.load_event_tensor(str(path))
        out = channels(ev)
        if name == "disks (as written)" and not torch.equal(out, spikes):
            raise RuntimeError(f"{path}: the channels answer the written events differently from the disks: the "
                               "event format did not round-trip")
        rows += spiking.event_file_summary(name, path, ev, out)
    pd.DataFrame(rows).to_csv(snakemake.output.event_files, index=False)
    spiking.write_speed_channels_h5(snakemake.output.h5, params, tuning, loc, inhibition_fit=tried)
    tuning.assign(condition="with inhibition").to_csv(snakemake.output.tuning, index=False)
    selectivity.to_csv(snakemake.output.selectivity, index=False)
    logging.info("inhibition %g (%s): own-disk fraction %s; threshold only %s", params["inhibition"],
                      "fitted" if tried is not None else "configured",
                      selectivity.loc[selectivity["condition"] == "with inhibition", "own_fraction"].round(3).tolist(),
                      selectivity.loc[selectivity["condition"] == "threshold only", "own_fraction"].round(3).tolist())
    if snakemake.input.mt_weights:
        d = snakemake.params.dorsal
        model = models.load_weights(Path(snakemake.input.mt_weights), d["arch"], d["width"], d["stem"])
        units = spiking.unit_speed_tuning(spiking.dnn_speed_responses(
            model, snakemake.params.mt_layer, by_speed, d["clip_len"], d["input_size"], augment.normalize,
            device=device))
        comparison = spiking.compare_speed_tuning(tuning, units)
    else:
        comparison = spiking.compare_speed_tuning(tuning, tuning).iloc[:1]
    comparison.to_csv(snakemake.output.comparison, index=False)
