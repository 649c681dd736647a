# Cortical sheets and training: stage 1 (pretrain, alpha = 0) and stage 3 (task + alpha * spatial loss).
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


rule train:
    input:
        data=lambda w: train_store(w.stream),
        sheet=f"{R}/sheets/{{stream}}/{config['sweep']['positions']}.h5",
    output:
        weights=f"{R}/models/{{stream}}/a{{alpha}}_s{{seed}}/weights.pt",
        evaluation=f"{R}/models/{{stream}}/a{{alpha}}_s{{seed}}/eval.json",
        curve=f"{R}/models/{{stream}}/a{{alpha}}_s{{seed}}/train_log.csv",
    log:
        log_path("train", "{stream}_a{alpha}_s{seed}"),
    benchmark:
        bench_path("train", "{stream}_a{alpha}_s{seed}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: train_params(stream_cfg(w.stream), "train"),
        stage="train",
        alpha=lambda w: float(w.alpha),
        seed=lambda w: int(w.seed),
        run_dir=lambda w: f"{R}/runs/{w.stream}/a{w.alpha}_s{w.seed}",
        device=config["run"]["device"],
        keep_checkpoints=config["run"]["keep_checkpoints"],
    script:
        "../scripts/train.py"


rule init_weights:
    output:
        f"{R}/models/{{stream}}/init_s{{seed}}/weights.pt",
    log:
        log_path("init_weights", "{stream}_s{seed}"),
    benchmark:
        bench_path("init_weights", "{stream}_s{seed}")
    conda:
        CONDA_ENV
    params:
        stream=lambda w: net_params(stream_cfg(w.stream)),
        seed=lambda w: int(w.seed),
    script:
        "../scripts/init_weights.py"
