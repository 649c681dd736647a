# Stage 1: the retinotopic sheet and the network pretrained on it with alpha = 0 (its responses feed SwapOpt).
# Resumable checkpoints live in results/runs/, which is not a declared output: Snakemake deletes the outputs of a
# failed job, and a retry must find the checkpoint (docs/reference.md §8).


rule init_sheet:
    output:
        f"{R}/sheets/{{stream}}/retinotopic.h5",
    log:
        log_path("init_sheet", "{stream}"),
    benchmark:
        bench_path("init_sheet", "{stream}")
    conda:
        CONDA_ENV
    params:
        stream=lambda w: sheet_params(stream_cfg(w.stream)),
        sheet=config["sheet"],
    script:
        "../scripts/init_sheet.py"


rule pretrain:
    input:
        data=lambda w: train_store(w.stream),
        sheet=f"{R}/sheets/{{stream}}/retinotopic.h5",
    output:
        weights=f"{R}/models/{{stream}}/pretrain/weights.pt",
        evaluation=f"{R}/models/{{stream}}/pretrain/eval.json",
        curve=f"{R}/models/{{stream}}/pretrain/train_log.csv",
    log:
        log_path("pretrain", "{stream}"),
    benchmark:
        bench_path("pretrain", "{stream}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: train_params(stream_cfg(w.stream), "pretrain"),
        stage="pretrain",
        alpha=0.0,
        seed=config["sweep"]["pretrain_seed"],
        run_dir=lambda w: f"{R}/runs/{w.stream}/pretrain",
        device=config["run"]["device"],
        keep_checkpoints=config["run"]["keep_checkpoints"],
    script:
        "../scripts/train.py"
