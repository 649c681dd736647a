"""Gather every model's metrics into one tidy table, the learning table (did each network learn?) and the alpha
trade-off table (task metrics vs maps)."""

import json
from pathlib import Path

import pandas as pd

from tdann import tables
from tdann.provenance import step

with step(snakemake, config_keys=["analysis"]):
    metrics = pd.concat([pd.read_csv(p) for p in snakemake.input.tables], ignore_index=True)
    metrics.to_csv(snakemake.output.metrics, index=False)
    evals = pd.DataFrame([json.loads(Path(p).read_text()) for p in snakemake.input.evals])
    cfg = dict(snakemake.params.analysis)
    learning = tables.learning(metrics, evals, cfg)
    learning.to_csv(snakemake.output.learning, index=False)
    tables.tradeoff(metrics, evals, cfg, learning).to_csv(snakemake.output.tradeoff, index=False)
