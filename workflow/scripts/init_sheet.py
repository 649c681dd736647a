"""Retinotopic positions and neighbourhoods of every tapped layer of a stream (docs/reference.md §2)."""

from pathlib import Path

from tdann import models, positions
from tdann.provenance import step

cfg, sheet = snakemake.params.stream, snakemake.params.sheet
stream = snakemake.wildcards.stream
with step(snakemake, config_keys=[f"streams.{stream}", "sheet"], seeds={"seed": sheet["seed"]}):
    model = models.build_model(cfg["arch"], width=cfg["width"], stem=cfg["stem"])
    shape = models.input_shape(cfg["arch"], cfg["input_size"], cfg["clip_len"])
    specs = {layer: dict(spec) for layer, spec in cfg["layers"].items()}
    sheets = positions.init_sheets(
        model, shape, specs, seed=sheet["seed"], n_windows=sheet["n_windows"],
        jitter_sigma=sheet["jitter_sigma"], min_units=sheet["min_units"], max_units=sheet["max_units"],
    )
    positions.save_sheets(Path(snakemake.output[0]), sheets,
                          attrs={"stream": stream, "kind": "retinotopic", "arch": cfg["arch"]})
