"""Most and least exciting inputs (MEI / LEI) of sample units of one layer, pixel and Fourier parameterisations."""

from pathlib import Path

import h5py
import numpy as np

from tdann import augment, models, positions, screening, synthesis
from tdann.h5io import write_dataset
from tdann.provenance import step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg, syn, signal = snakemake.params.stream, snakemake.params.synthesis, snakemake.params.signal
layer = snakemake.wildcards.layer
with step(snakemake, config_keys=["screening.synthesis"], seeds={"seed": int(syn["seeds"][0])}):
    model = models.load_weights(Path(snakemake.input.weights), cfg["arch"], cfg["width"], cfg["stem"])
    scr = screening.load_screen(Path(snakemake.input.screen), layer)
    sheet = positions.load_sheets(Path(snakemake.input.sheet))[layer]
    units = screening.pick_units(scr, sheet.positions, syn["units"])
    shape = models.input_shape(cfg["arch"], cfg["input_size"], cfg["clip_len"])
    with h5py.File(snakemake.input.spectrum, "r") as f:
        spectrum = f["magnitude"][()]
    with h5py.File(snakemake.output[0], "w") as f:
        f.attrs.update(layer=layer, input_shape=shape, signal=signal)
        write_dataset(f, "units", units, "flat channel-major unit indices synthesised for")
        write_dataset(f, "unit_positions", sheet.positions[units], "cortical positions of those units", units="mm")
        for param in syn["params"]:
            for sign, pole in ((1, "mei"), (-1, "lei")):
                pairs = [(int(unit), int(seed)) for unit in units for seed in syn["seeds"]]  # unit-major
                outs = synthesis.synthesize_many(
                    model, layer, [u for u, _ in pairs], [s for _, s in pairs], sign=sign, input_shape=shape,
                    param=param, steps=syn["steps"], device=device,
                    magnitude_spectrum=spectrum if param == "fourier" else None,
                    tv_weight=syn["tv_weight"], jitter=syn["jitter"], transform=augment.normalize,
                    signal=signal,
                )
                inputs = [o["input"] for o in outs]
                trajectories = [o["trajectory"] for o in outs]
                finals = [o["activation"] for o in outs]
                n = (len(units), len(syn["seeds"]))
                g = f.require_group(f"{param}/{pole}")
                write_dataset(g, "input", np.reshape(inputs, n + shape), f"{pole.upper()} per unit and seed in [0, 1]")
                write_dataset(g, "trajectory", np.reshape(trajectories, n + (-1,)),
                              "signed unit response per optimisation step (mean over augmented copies)")
                write_dataset(g, "activation", np.reshape(finals, n), "signed unit response to the final input")
