"""Assemble the per-layer SwapOpt positions into the sheet used by stage 3, with neighbourhoods redrawn."""

from pathlib import Path

import h5py
import numpy as np

from tdann import positions
from tdann.provenance import step

cfg = snakemake.params.sheet
with step(snakemake, config_keys=["sheet"], seeds={"seed": cfg["seed"]}):
    sheets = positions.load_sheets(Path(snakemake.input.sheet))
    rng = np.random.default_rng(cfg["seed"])
    for path in snakemake.input.layers:
        with h5py.File(path, "r") as f:
            layer = f.attrs["layer"]
            sheets[layer].positions = f["positions"][()]
        sheets[layer] = positions.redraw_neighborhoods(sheets[layer], rng)
    positions.save_sheets(Path(snakemake.output[0]), sheets,
                          attrs={"stream": snakemake.wildcards.stream, "kind": "swapopt"})
