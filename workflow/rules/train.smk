# Stage 3: a fresh network trained with task + alpha * spatial loss on the SwapOpt'd sheet (alpha and seed are
# wildcards), and the untrained networks (the controls) of each seed.


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
