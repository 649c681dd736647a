# tdann-workflow: topographic deep networks of primate visual cortex, from raw data to figures.
# Table of contents; the rules live in workflow/rules/*.smk in the order of the flow: data -> video decoding ->
# stage 1 (sheet, pretraining) -> SwapOpt -> stage 3 training -> stimuli -> responses -> metrics -> tables ->
# figures -> screening -> report pages; then the published networks, the extras and the settings sweep.
# The science lives in the tdann library (workflow/tdann).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# With --sdm apptainer every job runs in run.container (built from envs/Dockerfile); none by default.
container: config.get("run", {}).get("container")


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/swapopt.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/stimuli.smk"
include: "workflow/rules/responses.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/screening.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/extras.smk"
include: "workflow/rules/sweep.smk"


# Jobs of seconds and well under 1 GB (tables, report pages, figures): on a cluster they run where Snakemake runs,
# not through the queue.
localrules:
    all,
    metrics_table,
    results_table,
    screening_table,
    settings_sweep,
    published_table,
    table_page,
    fig_emergence,
    fig_mt_direction,
    fig_objectives,
    fig_published,
    fig_screening,
    fig_spiking,
    fig_tradeoff,
    fig_training_curves,
    fig_twostream,
    fig_v1_orientation,
    fig_vtc_categories,


rule all:
    default_target: True
    input:
        all_targets(),
