# Screening on evaluation stimuli and the map metrics (docs/reference.md §4-§5).


# One responses job per model (all its evaluation sets in one process: a job's start-up, mostly importing torch,
# costs ~4 s, ten times the forward passes of these sets); one rule per stream, since its sets name the outputs.
for _stream in STREAMS:

    rule:
        name:
            f"responses_{_stream}"
        input:
            weights=f"{R}/models/{_stream}/{{weights}}/weights.pt",
            stimuli=[f"{R}/stimuli/{_stream}/{s}.h5" for s in eval_stimsets(_stream)],
        output:
            [
                f"{R}/responses/{_stream}/{{weights}}/{s}.h5"
                for s in eval_stimsets(_stream)
            ],
        log:
            log_path("responses", f"{_stream}_{{weights}}"),
        benchmark:
            bench_path("responses", f"{_stream}_{{weights}}")
        conda:
            CONDA_ENV
        threads: config["run"]["threads"]
        resources:
            gpu=1,
        params:
            stream=net_params(stream_cfg(_stream)),
            layers=lambda w, s=_stream: model_layers(s, w.weights),
            batch_size=config["analysis"]["batch_size"],
            dtype=config["analysis"]["response_dtype"],
            device=config["run"]["device"],
        script:
            "../scripts/responses.py"


rule metrics:
    input:
        sheet=lambda w: metrics_inputs(w)["sheet"],
        responses=lambda w: metrics_inputs(w)["responses"],
        stimuli=lambda w: metrics_inputs(w)["stimuli"],
        macaque=ringach_input(),
        lib=lib("metrics", "positions", "stimuli", "h5io"),
    output:
        maps=f"{R}/metrics/{{stream}}/{{model}}.h5",
        table=f"{R}/metrics/{{stream}}/{{model}}.csv",
    log:
        log_path("metrics", "{stream}_{model}"),
    benchmark:
        bench_path("metrics", "{stream}_{model}")
    conda:
        CONDA_ENV
    params:
        analysis=analysis_params(),
        sheet_name=lambda w: sheet_of(w.model),
        stimsets=lambda w: eval_stimsets(w.stream),
        layers=lambda w: model_layers(w.stream, w.model),
        hypercolumns=lambda w: layer_hypercolumns(w.stream),
    script:
        "../scripts/metrics.py"


rule metrics_table:
    input:
        tables=expand(
            f"{R}/metrics/{{stream}}/{{model}}.csv",
            stream=STREAMS,
            model=analysis_models(),
        ),
        lib=lib("tables"),
        evals=expand(
            f"{R}/models/{{stream}}/{{run}}/eval.json",
            stream=STREAMS,
            run=sweep_runs() + ["pretrain"],
        ),
    output:
        metrics=f"{R}/tables/metrics.csv",
        learning=f"{R}/tables/learning.csv",
        tradeoff=f"{R}/tables/tradeoff.csv",
    log:
        log_path("metrics_table", "all"),
    benchmark:
        bench_path("metrics_table", "all")
    conda:
        CONDA_ENV
    params:
        analysis=analysis_params(),
    script:
        "../scripts/metrics_table.py"


rule results_table:
    input:
        metrics=f"{R}/tables/metrics.csv",
        learning=f"{R}/tables/learning.csv",
        tradeoff=f"{R}/tables/tradeoff.csv",
        lib=lib("tables", "report"),
    output:
        table=f"{R}/tables/results.csv",
        verdicts=f"{R}/tables/emergence.csv",
        comparisons=f"{R}/tables/comparisons.csv",
        pinwheels=f"{R}/tables/pinwheels.csv",
        anchors=f"{R}/tables/anchors.csv",
        markdown=f"{R}/tables/results.md",
        html=report(
            f"{R}/tables/summary.html",
            caption="../report/table_summary.rst",
            category="both streams",
            subcategory="results table",
        ),
    log:
        log_path("results_table", "all"),
    benchmark:
        bench_path("results_table", "all")
    conda:
        CONDA_ENV
    params:
        sweep=config["sweep"],
        analysis=analysis_params(),
    script:
        "../scripts/results_table.py"
