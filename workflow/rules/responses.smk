# Responses of every model to its stream's evaluation stimuli (docs/reference.md §4-§5).
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
