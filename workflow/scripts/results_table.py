"""The results table: does each map emerge (alpha > 0 beats alpha = 0, shuffled and untrained across seeds)? Then
the trade-off, pinwheel and MT-tuning comparisons against alpha = 0, and pooled pinwheel densities."""

from pathlib import Path

import pandas as pd

from tdann import report, tables
from tdann.provenance import step

sweep, cfg = snakemake.params.sweep, dict(snakemake.params.analysis)
alphas, seeds, positions = sweep["alphas"], sweep["seeds"], sweep["positions"]
with step(snakemake, config_keys=["sweep", "analysis"], seeds={"seed": 0}):
    metrics = pd.read_csv(snakemake.input.metrics)
    tradeoff = pd.read_csv(snakemake.input.tradeoff)
    learning = pd.read_csv(snakemake.input.learning)
    excluded = tables.not_learnt(learning)  # no emergence verdict counts a network that did not learn
    table = pd.concat([tables.emergence(metrics, alphas, seeds, positions, cfg, index=index, exclude=excluded)
                       for index in ("smoothness", "far_index")], ignore_index=True)
    table.to_csv(snakemake.output.table, index=False)
    verdicts = tables.verdicts(table, tables.spreads(metrics, seeds, cfg))
    verdicts.to_csv(snakemake.output.verdicts, index=False)
    compared = tables.comparisons(metrics, tradeoff, alphas, seeds, cfg)
    compared.to_csv(snakemake.output.comparisons, index=False)
    wheels = tables.pinwheels(metrics, alphas, seeds, positions, cfg, exclude=excluded)
    wheels.to_csv(snakemake.output.pinwheels, index=False)
    bio = tables.anchors(metrics, alphas, seeds, positions, cfg)
    bio.to_csv(snakemake.output.anchors, index=False)
    shown = ["stream", "model", "task_loss", "task_loss_chance", "task_loss_ratio", "task_top1", "task_top1_chance",
             *[c for c in learning.columns if c.startswith("probe_") and not c.endswith(("_ci_lo", "_ci_hi"))],
             "learnt"]
    sections = [
        report.Section("Did the networks learn?",
                       "Held-out contrastive loss and top-1 beside chance; linear probes (accuracy, chance) on held-out "
                       "stimuli. learnt: loss < 0.95 x chance and every probe's 95% interval above chance. Models that "
                       f"did not learn ({len(excluded)}) are left out of the verdicts below.",
                       learning[[c for c in shown if c in learning.columns]]),
        report.Section("Emergence of maps: alpha > 0 against its controls",
                       "Mean over seeds; paired difference with its bootstrap 95% CI and the paired t-test p.", table),
        report.Section("Verdicts", "A map emerged only where an alpha beats all three controls.", verdicts, level=3),
        report.Section("Trade-off, pinwheels and MT tuning: alpha > 0 against alpha = 0 (paired by seed)",
                       "task_loss / task_top1: held-out task loss and top-1; sl_mean: held-out spatial loss (all "
                       "layers).", compared),
        report.Section("Pinwheel density per lambda^2",
                       "Pooled over the seeds whose networks learnt and whose column spacing was measured (95% "
                       "Poisson interval; pi is the reference).", wheels),
        report.Section("V1-like orientation tuning against macaque V1 (Ringach et al. 2002)", "", bio),
    ]
    title = "Results of the run"
    intro = f"Results folder {snakemake.config['results']}; seeds {list(seeds)}, alphas {list(alphas)}."
    Path(snakemake.output.markdown).write_text(report.markdown(title, sections, intro))
    sources = [snakemake.output[k] for k in ("table", "comparisons", "pinwheels", "anchors")]
    Path(snakemake.output.html).write_text(report.page(title, sections, f"<p>{intro}</p>", downloads=sources))
