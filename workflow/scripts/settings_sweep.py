"""The settings-sweep table: per variant and map, did it emerge from the retinotopic sheet, and at what cost."""

import json
from pathlib import Path

import pandas as pd

from tdann import report, tables
from tdann.provenance import step

p = snakemake.params
with step(snakemake, config_keys=["settings_sweep", "analysis"], seeds={"seed": 0}):
    metrics = pd.concat([pd.read_csv(t).assign(variant=v) for t, v in zip(snakemake.input.tables, p.variants)],
                        ignore_index=True)
    evals = pd.DataFrame([{**json.loads(Path(e).read_text()), "variant": v}
                          for e, v in zip(snakemake.input.evals, p.eval_variants)])
    table = tables.settings_sweep(metrics, evals, p.sweep["alphas"], p.sweep["seeds"], dict(p.analysis))
    table.to_csv(snakemake.output.table, index=False)
    title = f"Settings sweep: does a map emerge from the retinotopic sheet? (mean over seeds {list(p.sweep['seeds'])})"
    legend = ("smoothness = the alpha > 0 model; alpha0 / shuffled / untrained = the controls; spread = 1 - resultant "
              "length of the preferences (collapse when < 0.75 x alpha = 0's); grid = side of the layer's retinotopic "
              "grid; train_seconds = per model.")
    Path(snakemake.output.markdown).write_text(report.markdown(title, [report.Section("Variants", legend, table)]))
