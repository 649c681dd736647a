# The settings sweep (issue 11): which cheap settings make V1-like / MT-like maps emerge from scratch?
# Each variant of a stream trains alpha x seed models from the retinotopic sheet and is measured at the V1-like
# (and MT-like) layer against alpha = 0, the shuffled null and the untrained network. `make sweep` builds it.
SW = f"{R}/sweep/{{stream}}/{{variant}}"


wildcard_constraints:
    variant=r"[A-Za-z0-9]+(_[A-Za-z0-9]+)*",


# The sweep reuses the main rules (`use rule ... with:`): the same scripts, threads and GPU resources; only the
# paths (results/sweep/<stream>/<variant>/) and the stream config with the variant's overrides differ. Snakemake
# merges the params given here into the main rule's and replaces its input and output, so inputs are listed in full.


use rule init_sheet as sweep_sheet with:
    output:
        f"{SW}/retinotopic.h5",
    log:
        log_path("sweep_sheet", "{stream}_{variant}"),
    benchmark:
        bench_path("sweep_sheet", "{stream}_{variant}")
    params:
        stream=lambda w: sheet_params(variant_cfg(w.stream, w.variant)),


use rule init_weights as sweep_init with:
    output:
        f"{SW}/init_s{{seed}}/weights.pt",
    log:
        log_path("sweep_init", "{stream}_{variant}_s{seed}"),
    benchmark:
        bench_path("sweep_init", "{stream}_{variant}_s{seed}")
    params:
        stream=lambda w: net_params(variant_cfg(w.stream, w.variant)),


use rule train as sweep_train with:
    input:
        data=lambda w: train_store(w.stream),
        sheet=f"{SW}/retinotopic.h5",
    output:
        weights=f"{SW}/a{{alpha}}_s{{seed}}/weights.pt",
        evaluation=f"{SW}/a{{alpha}}_s{{seed}}/eval.json",
        curve=f"{SW}/a{{alpha}}_s{{seed}}/train_log.csv",
    log:
        log_path("sweep_train", "{stream}_{variant}_a{alpha}_s{seed}"),
    benchmark:
        bench_path("sweep_train", "{stream}_{variant}_a{alpha}_s{seed}")
    params:
        stream=lambda w: train_params(variant_cfg(w.stream, w.variant), "train"),
        run_dir=lambda w: f"{R}/runs/sweep/{w.stream}/{w.variant}/a{w.alpha}_s{w.seed}",


use rule stimulus_set as sweep_stimuli with:
    input:
        floc=[],
    output:
        f"{SW}/stimuli/{{stimset}}.h5",
    log:
        log_path("sweep_stimuli", "{stream}_{variant}_{stimset}"),
    benchmark:
        bench_path("sweep_stimuli", "{stream}_{variant}_{stimset}")
    params:
        size=lambda w: variant_cfg(w.stream, w.variant)["input_size"],
        clip_len=lambda w: variant_cfg(w.stream, w.variant)["clip_len"],


# The main responses rules are one per stream (a rule's outputs cannot vary in number with a wildcard, and each
# stream has its own sets); the sweep measures one set per job for any stream, so it has a rule of its own.
rule sweep_responses:
    input:
        weights=f"{SW}/{{weights}}/weights.pt",
        stimuli=f"{SW}/stimuli/{{stimset}}.h5",
    output:
        f"{SW}/responses/{{weights}}/{{stimset}}.h5",
    log:
        log_path("sweep_responses", "{stream}_{variant}_{weights}_{stimset}"),
    benchmark:
        bench_path("sweep_responses", "{stream}_{variant}_{weights}_{stimset}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: net_params(variant_cfg(w.stream, w.variant)),
        layers=lambda w: sweep_layers(w.stream),
        batch_size=config["analysis"]["batch_size"],
        dtype=config["analysis"]["response_dtype"],
        device=config["run"]["device"],
    script:
        "../scripts/responses.py"


use rule metrics as sweep_metrics with:
    input:
        sheet=f"{SW}/retinotopic.h5",
        responses=lambda w: [
            f"{R}/sweep/{w.stream}/{w.variant}/responses/{naming.weights_of(w.model)}/{sweep_stimset(w.stream)}.h5"
        ],
        stimuli=lambda w: [
            f"{R}/sweep/{w.stream}/{w.variant}/stimuli/{sweep_stimset(w.stream)}.h5"
        ],
        macaque=ringach_input(),
    output:
        maps=f"{SW}/metrics/{{model}}.h5",
        table=f"{SW}/metrics/{{model}}.csv",
    log:
        log_path("sweep_metrics", "{stream}_{variant}_{model}"),
    benchmark:
        bench_path("sweep_metrics", "{stream}_{variant}_{model}")
    params:
        sheet_name="retinotopic",
        stimsets=lambda w: [sweep_stimset(w.stream)],
        layers=lambda w: sweep_layers(w.stream),


rule settings_sweep:
    input:
        tables=[path for _, path in sweep_files("tables")],
        evals=[path for _, path in sweep_files("evals")],
    output:
        table=f"{R}/tables/settings_sweep.csv",
        markdown=f"{R}/tables/settings_sweep.md",
    log:
        log_path("settings_sweep", "all"),
    benchmark:
        bench_path("settings_sweep", "all")
    conda:
        CONDA_ENV
    params:
        sweep=SWEEP,
        analysis=analysis_params(),
        variants=[v for v, _ in sweep_files("tables")],
        eval_variants=[v for v, _ in sweep_files("evals")],
    script:
        "../scripts/settings_sweep.py"


rule fig_objectives:
    input:
        tables=[path for _, path in sweep_files("tables", objective_variants())],
        evals=[path for _, path in sweep_files("evals", objective_variants())],
        lib=lib("figures", "tables"),
    output:
        table=f"{R}/tables/objectives.csv",
        png=report(
            f"{R}/figures/objectives.png",
            caption="../report/fig_objectives.rst",
            category="both streams",
            subcategory="topographic objectives",
        ),
        pdf=f"{R}/figures/objectives.pdf",
    log:
        log_path("fig_objectives", "all"),
    benchmark:
        bench_path("fig_objectives", "all")
    conda:
        CONDA_ENV
    params:
        sweep=SWEEP,
        analysis=analysis_params(),
        labels=objective_labels(),
        variants=[v for v, _ in sweep_files("tables", objective_variants())],
        eval_variants=[v for v, _ in sweep_files("evals", objective_variants())],
        figures=config["figures"],
    script:
        "../scripts/fig_objectives.py"
