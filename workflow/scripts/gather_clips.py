"""Gather the decoded shards into one clip store with a train/validation split by source video."""

from pathlib import Path

import pandas as pd

from tdann import video
from tdann.provenance import step

with step(snakemake, config_keys=["video"]):
    video.gather_clip_stores(
        [Path(p) for p in snakemake.input.shards],
        Path(snakemake.output.store),
        val_fraction=snakemake.params.val_fraction,
    )
    tables = [pd.read_csv(p) for p in snakemake.input.rejects]
    pd.concat(tables, ignore_index=True).to_csv(snakemake.output.rejects, index=False)
