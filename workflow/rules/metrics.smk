# The map metrics of every model (docs/reference.md §4-§5, §9).


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
