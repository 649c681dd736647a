"""Gather the decoded shards into one clip store with a train/validation split by source video."""

from pathlib import Path

import pandas as pd

from tdann import video
from tdann.provenance import log, step

with step(snakemake, config_keys=["video"]):
    video.gather_clip_stores(
        [Path(p) for p in snakemake.input.shards],
        Path(snakemake.output.store),
        val_fraction=snakemake.params.val_fraction,
    )
    tables = pd.concat([pd.read_csv(p) for p in snakemake.input.rejects], ignore_index=True)
    tables.to_csv(snakemake.output.rejects, index=False)
    log.info("%d shards gathered; %d videos rejected%s", len(snakemake.input.shards), len(tables),
             "".join(f"\n  {r.video}: {r.reason}" for r in tables.itertuples()))
