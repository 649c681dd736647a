# Optional branches: spiking speed channels (norse, docs/reference.md §7) and the two-stream species model.


rule speed_channels:
    input:
        disks=f"{R}/stimuli/disks.h5",
        mt_weights=mt_model_weights(),
        disk_events=f"{R}/stimuli/disks_events.dat",
        event_files=list(config["spiking"]["event_files"].values()),
    output:
        h5=f"{R}/spiking/speed_channels.h5",
        tuning=f"{R}/spiking/speed_tuning.csv",
        comparison=f"{R}/spiking/comparison.csv",
        selectivity=f"{R}/spiking/channel_selectivity.csv",
        event_files=f"{R}/spiking/event_files.csv",
    log:
        log_path("speed_channels", "disks"),
    benchmark:
        bench_path("speed_channels", "disks")
    conda:
        CONDA_ENV
    params:
        spiking=config["spiking"],
        dorsal=net_params(stream_cfg("dorsal")) if "dorsal" in STREAMS else None,
        mt_layer=config["analysis"]["mt_layer"],
        device=config["run"]["device"],
    script:
        "../scripts/speed_channels.py"


rule two_stream:
    input:
        unpack(twostream_inputs),
    output:
        f"{R}/twostream/{{species}}.csv",
    log:
        log_path("two_stream", "{species}"),
    benchmark:
        bench_path("two_stream", "{species}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    params:
        preset=lambda w: config["twostream"]["species"][w.species],
        twostream=config["twostream"],
        device=config["run"]["device"],
    script:
        "../scripts/two_stream.py"


rule fig_spiking:
    input:
        h5=f"{R}/spiking/speed_channels.h5",
        tuning=f"{R}/spiking/speed_tuning.csv",
        comparison=f"{R}/spiking/comparison.csv",
        selectivity=f"{R}/spiking/channel_selectivity.csv",
        disks=f"{R}/stimuli/disks.h5",
        lib=lib("figures", "spiking", "stimuli"),
    output:
        png=report(
            f"{R}/figures/spiking_speed_channels.png",
            caption="../report/fig_spiking.rst",
            category="extras",
            subcategory="spiking speed channels",
        ),
        pdf=f"{R}/figures/spiking_speed_channels.pdf",
    log:
        log_path("fig_spiking", "disks"),
    benchmark:
        bench_path("fig_spiking", "disks")
    conda:
        CONDA_ENV
    params:
        spiking=config["spiking"],
        figures=config["figures"],
    script:
        "../scripts/fig_spiking.py"


rule fig_twostream:
    input:
        tables=expand(
            f"{R}/twostream/{{species}}.csv",
            species=list(config["twostream"].get("species", {})),
        ),
        lib=lib("figures", "tables"),
    output:
        png=report(
            f"{R}/figures/twostream_species.png",
            caption="../report/fig_twostream.rst",
            category="extras",
            subcategory="two-stream species model",
        ),
        pdf=f"{R}/figures/twostream_species.pdf",
        table=f"{R}/tables/twostream.csv",
        summary=f"{R}/tables/twostream_summary.csv",
        pairs=f"{R}/tables/twostream_pairs.csv",
    log:
        log_path("fig_twostream", "species"),
    benchmark:
        bench_path("fig_twostream", "species")
    conda:
        CONDA_ENV
    params:
        figures=config["figures"],
    script:
        "../scripts/fig_twostream.py"
