"""One published TDANN network (docs/reference.md §10): its VISSL checkpoint -> this pipeline's weights file, its
position files -> a sheets file, checked against the stream's layer shapes."""

import logging
from pathlib import Path

from tdann import models, positions, published
from tdann.provenance import sha256, step

p = snakemake.params
root = Path(snakemake.input.data)
entry, cfg = p.entry, p.stream
with step(snakemake, config_keys=[f"published.models.{snakemake.wildcards.name}", "published.rescale",
                                  "published.layers"]):
    ckpt = published.final_checkpoint(root / entry["checkpoint"])
    model = published.load_trunk(ckpt)
    pos_dir = root / entry["positions"]
    sheets = published.load_positions(pos_dir, p.layers, rescale=p.rescale)
    shapes = models.layer_shapes(model, models.input_shape("resnet18", cfg["input_size"]), list(p.layers))
    published.check_shapes(sheets, shapes, pos_dir)
    version = published.positions_version(pos_dir)
    for layer, s in sheets.items():
        logging.info("%s: %d units %s, sheet %.2f mm, %d neighbourhoods of %d units, width %.3f mm",
                     layer, s.n_units, s.shape, s.sheet_size, *s.neighborhoods.shape, s.neighborhood_width)
    models.save_weights(model, snakemake.output.weights, "resnet18", 1.0, "standard", cfg["input_size"])
    positions.save_sheets(Path(snakemake.output.sheet), sheets, attrs={
        "stream": "ventral", "kind": "published", "arch": "resnet18",
        "source_positions": str(entry["positions"]), "positions_version": version, "rescale": p.rescale,
        "rescaled": bool(p.rescale == "auto" and version == 1),
        "source_checkpoint": str(ckpt.relative_to(root)), "source_checkpoint_sha256": sha256(ckpt),
    })
