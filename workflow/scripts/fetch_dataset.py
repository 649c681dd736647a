"""Fetch one configured dataset (packaged, synthetic, url or local) into its folder."""

from pathlib import Path

from tdann import data
from tdann.provenance import step

with step(snakemake, config_keys=[f"datasets.{snakemake.wildcards.dataset}"]):
    data.fetch_dataset(dict(snakemake.params.entry), Path(snakemake.output[0]))
