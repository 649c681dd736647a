# Stage 2, SwapOpt (docs/reference.md §3): responses of the alpha = 0 network -> per-layer position search ->
# the sheet that stage 3 trains with. One job per (stream, layer), so a cluster runs layers in parallel.


rule swapopt_responses:
    input:
        weights=f"{R}/models/{{stream}}/pretrain/weights.pt",
        stimuli=lambda w: f"{R}/stimuli/{w.stream}/{stream_cfg(w.stream)['swapopt_stimuli']}.h5",
    output:
        f"{R}/swapopt/{{stream}}/responses.h5",
    log:
        log_path("swapopt_responses", "{stream}"),
    benchmark:
        bench_path("swapopt_responses", "{stream}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: net_params(stream_cfg(w.stream)),
        layers=lambda w: stream_layers(w.stream),
        batch_size=config["analysis"]["batch_size"],
        dtype="float32",
        device=config["run"]["device"],
    script:
        "../scripts/responses.py"


rule swapopt:
    input:
        responses=f"{R}/swapopt/{{stream}}/responses.h5",
        sheet=f"{R}/sheets/{{stream}}/retinotopic.h5",
    output:
        f"{R}/swapopt/{{stream}}/{{layer}}.h5",
    log:
        log_path("swapopt", "{stream}_{layer}"),
    benchmark:
        bench_path("swapopt", "{stream}_{layer}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        swapopt=config["swapopt"],
        device=config["run"]["device"],
    script:
        "../scripts/swapopt.py"


rule swapopt_sheet:
    input:
        sheet=f"{R}/sheets/{{stream}}/retinotopic.h5",
        layers=lambda w: expand(
            f"{R}/swapopt/{w.stream}/{{layer}}.h5", layer=stream_layers(w.stream)
        ),
    output:
        f"{R}/sheets/{{stream}}/swapopt.h5",
    log:
        log_path("swapopt_sheet", "{stream}"),
    benchmark:
        bench_path("swapopt_sheet", "{stream}")
    conda:
        CONDA_ENV
    params:
        sheet=config["sheet"],
    script:
        "../scripts/swapopt_sheet.py"
