# The result tables: metrics of every model, learning, trade-off; emergence, comparisons, pinwheels, anchors.


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
