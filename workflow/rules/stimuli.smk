# Evaluation stimuli: one HDF5 per (stream, set) at the stream's input size.


rule stimulus_set:
    input:
        floc=floc_input,
    output:
        f"{R}/stimuli/{{stream}}/{{stimset}}.h5",
    log:
        log_path("stimulus_set", "{stream}_{stimset}"),
    benchmark:
        bench_path("stimulus_set", "{stream}_{stimset}")
    conda:
        CONDA_ENV
    params:
        spec=lambda w: config["stimuli"].get(w.stimset, {}),
        size=lambda w: stream_cfg(w.stream)["input_size"],
        clip_len=lambda w: stream_cfg(w.stream)["clip_len"],
    script:
        "../scripts/stimulus_set.py"


rule moving_disks:
    output:
        h5=f"{R}/stimuli/disks.h5",
        events=f"{R}/stimuli/disks_events.dat",
    log:
        log_path("moving_disks", "disks"),
    benchmark:
        bench_path("moving_disks", "disks")
    conda:
        CONDA_ENV
    params:
        spec=config["stimuli"].get("disks", {}),
    script:
        "../scripts/moving_disks.py"
