"""The natural magnitude spectrum of the pipeline's own training inputs: the fixed magnitude of Fourier MEIs / LEIs."""

from pathlib import Path

import h5py

from tdann import models, stores, synthesis
from tdann.h5io import write_dataset
from tdann.provenance import step

cfg, n = snakemake.params.stream, snakemake.params.n_images
with step(snakemake, config_keys=["screening.synthesis"], seeds={"seed": 0}):
    store = Path(snakemake.input.store)
    sample = stores.store_sample(store, n, cfg["input_size"], cfg["clip_len"], seed=0)
    magnitude = synthesis.natural_spectrum(sample)
    with h5py.File(snakemake.output[0], "w") as f:
        f.attrs.update(store=str(store), n_inputs=len(sample),
                       input_shape=models.input_shape(cfg["arch"], cfg["input_size"], cfg["clip_len"]))
        write_dataset(f, "magnitude", magnitude, "sqrt of the mean power spectrum (rfftn over H, W [and T]) of "
                      "the inputs, per channel, each input's mean removed; DC = 0", units="a.u.")
