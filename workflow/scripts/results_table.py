"""The results table: does each map emerge (alpha > 0 beats alpha = 0, shuffled and untrained across seeds)?"""

from pathlib import Path

import pandas as pd

from tdann import tables
from tdann.provenance import step

sweep, cfg = snakemake.params.sweep, dict(snakemake.params.analysis)
with step(snakemake, config_keys=["sweep", "analysis"], seeds={"seed": 0}):
    metrics = pd.read_csv(snakemake.input[0])
    parts = [tables.emergence(metrics, sweep["alphas"], sweep["seeds"], sweep["positions"], cfg, index=index)
             for index in ("smoothness", "far_index")]
    table = pd.concat(parts, ignore_index=True)
    table.to_csv(snakemake.output.table, index=False)
    verdicts = tables.verdicts(table, tables.spreads(metrics, sweep["seeds"], cfg))
    verdicts.to_csv(snakemake.output.verdicts, index=False)
    text = ["# Emergence of maps: alpha > 0 against its controls (mean over seeds, bootstrap 95% CI of the paired "
            "difference)", "", tables.to_markdown(table), "", "## Verdicts", "", tables.to_markdown(verdicts)]
    Path(snakemake.output.markdown).write_text("\n".join(text))
