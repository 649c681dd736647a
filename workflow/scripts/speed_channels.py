"""Fit LIF speed channels to the moving disks, measure their speed tuning and localisation, and compare with the
speed tuning of the dorsal model's MT-like units on the same stimuli."""

from pathlib import Path


from tdann import augment, models, spiking, stimuli
from tdann.provenance import step
from tdann.training import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg = snakemake.params.spiking

with step(snakemake, config_keys=["spiking", "stimuli.disks"]):
    disks = stimuli.load_moving_disks(Path(snakemake.input.disks))
    by_speed = spiking.split_by_speed(disks)
    params = spiking.fit_channels(by_speed, cfg["n_channels"], tau_grid=cfg["tau_grid"],
                                  n_thresholds=cfg["n_thresholds"], kernel_radius=cfg["kernel_radius"],
                                  surround=cfg["surround"], dt=cfg["dt"])
    channels = spiking.channels_from_params(params, inhibition=cfg["inhibition"])
    tuning = spiking.speed_tuning(channels, by_speed)
    spikes = channels(spiking.stimulus_event_frames(disks))
    loc = spiking.localisation_error(spikes, disks["centers"])
    spiking.write_speed_channels_h5(snakemake.output.h5, params, tuning, loc)
    tuning.to_csv(snakemake.output.tuning, index=False)
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
