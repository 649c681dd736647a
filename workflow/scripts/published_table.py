"""The published TDANN networks' V1-like and VTC-like map metrics beside their untrained controls."""

import pandas as pd

from tdann import tables
from tdann.provenance import step

p = snakemake.params
with step(snakemake, config_keys=["published", "analysis.v1_layer", "analysis.vtc_layer"]):
    metrics = pd.concat([pd.read_csv(f) for f in snakemake.input.tables], ignore_index=True)
    table = tables.published(metrics, dict(p.models), dict(p.controls), dict(p.analysis))
    table.to_csv(snakemake.output.table, index=False)
    with open(snakemake.output.markdown, "w") as f:
        f.write(tables.published_markdown(table) + "\n")
