# Figures: one rule and one small script per figure; PNG (in the report) and PDF in results/figures/.
# Figure rules declare the library modules their scripts import, so editing those reruns the figures too.


rule fig_v1_orientation:
    input:
        zero=expand(
            f"{R}/metrics/{{{{stream}}}}/a0_s{{seed}}.h5",
            seed=config["sweep"]["seeds"],
        ),
        main=lambda w: expand(
            f"{R}/metrics/{w.stream}/a{naming.format_alpha(config['sweep']['main_alpha'])}_s{{seed}}.h5",
            seed=config["sweep"]["seeds"],
        ),
        untrained=expand(
            f"{R}/metrics/{{{{stream}}}}/untrained-{config['sweep']['positions']}_s{{seed}}.h5",
            seed=config["sweep"]["seeds"],
        ),
        learning=f"{R}/tables/learning.csv",
        lib=lib("figures", "naming"),
    output:
        png=report(
            f"{R}/figures/{{stream}}_v1_orientation.png",
            caption="../report/fig_v1_orientation.rst",
            category="{stream}",
            subcategory="V1-like layer",
        ),
        pdf=f"{R}/figures/{{stream}}_v1_orientation.pdf",
    log:
        log_path("fig_v1_orientation", "{stream}"),
    benchmark:
        bench_path("fig_v1_orientation", "{stream}")
    conda:
        CONDA_ENV
    params:
        layer=config["analysis"]["v1_layer"],
        stimset=lambda w: naming.map_stimset(w.stream, "V1"),
        seeds=config["sweep"]["seeds"],
        main_alpha=config["sweep"]["main_alpha"],
        sheet_size=lambda w: stream_cfg(w.stream)["layers"][
            config["analysis"]["v1_layer"]
        ]["sheet_size"],
        figures=config["figures"],
    script:
        "../scripts/fig_v1_orientation.py"


rule fig_mt_direction:
    input:
        zero=expand(
            f"{R}/metrics/dorsal/a0_s{{seed}}.h5", seed=config["sweep"]["seeds"]
        ),
        main=expand(
            f"{R}/metrics/dorsal/a{naming.format_alpha(config['sweep']['main_alpha'])}_s{{seed}}.h5",
            seed=config["sweep"]["seeds"],
        ),
        untrained=expand(
            f"{R}/metrics/dorsal/untrained-{config['sweep']['positions']}_s{{seed}}.h5",
            seed=config["sweep"]["seeds"],
        ),
        learning=f"{R}/tables/learning.csv",
        lib=lib("figures", "naming"),
    output:
        png=report(
            f"{R}/figures/dorsal_mt_direction.png",
            caption="../report/fig_mt_direction.rst",
            category="dorsal",
            subcategory="MT-like layer",
        ),
        pdf=f"{R}/figures/dorsal_mt_direction.pdf",
    log:
        log_path("fig_mt_direction", "dorsal"),
    benchmark:
        bench_path("fig_mt_direction", "dorsal")
    conda:
        CONDA_ENV
    params:
        layer=config["analysis"]["mt_layer"],
        seeds=config["sweep"]["seeds"],
        main_alpha=config["sweep"]["main_alpha"],
        sheet_size=lambda w: stream_cfg("dorsal")["layers"][
            config["analysis"]["mt_layer"]
        ]["sheet_size"],
        figures=config["figures"],
    script:
        "../scripts/fig_mt_direction.py"


rule fig_vtc_categories:
    input:
        zero=f"{R}/metrics/ventral/a0_s0.h5",
        main=f"{R}/metrics/ventral/a{naming.format_alpha(config['sweep']['main_alpha'])}_s0.h5",
        learning=f"{R}/tables/learning.csv",
        lib=lib("figures", "naming"),
    output:
        png=report(
            f"{R}/figures/ventral_vtc_categories.png",
            caption="../report/fig_vtc_categories.rst",
            category="ventral",
            subcategory="VTC-like layer",
        ),
        pdf=f"{R}/figures/ventral_vtc_categories.pdf",
    log:
        log_path("fig_vtc_categories", "ventral"),
    benchmark:
        bench_path("fig_vtc_categories", "ventral")
    conda:
        CONDA_ENV
    params:
        layer=config["analysis"]["vtc_layer"],
        main_alpha=config["sweep"]["main_alpha"],
        sheet_size=(
            stream_cfg("ventral")["layers"][config["analysis"]["vtc_layer"]][
                "sheet_size"
            ]
            if "ventral" in STREAMS
            else 0
        ),
        figures=config["figures"],
    script:
        "../scripts/fig_vtc_categories.py"


rule fig_tradeoff:
    input:
        table=f"{R}/tables/tradeoff.csv",
        learning=f"{R}/tables/learning.csv",
        lib=lib("figures"),
    output:
        png=report(
            f"{R}/figures/alpha_tradeoff.png",
            caption="../report/fig_tradeoff.rst",
            category="both streams",
            subcategory="alpha trade-off",
        ),
        pdf=f"{R}/figures/alpha_tradeoff.pdf",
    log:
        log_path("fig_tradeoff", "all"),
    benchmark:
        bench_path("fig_tradeoff", "all")
    conda:
        CONDA_ENV
    params:
        figures=config["figures"],
    script:
        "../scripts/fig_tradeoff.py"


rule fig_training_curves:
    input:
        curves=lambda w: expand(
            f"{R}/models/{w.stream}/{{run}}/train_log.csv",
            run=["pretrain"] + sweep_runs(),
        ),
        lib=lib("chance", "figures", "naming"),
    output:
        png=report(
            f"{R}/figures/{{stream}}_training_curves.png",
            caption="../report/fig_training_curves.rst",
            category="{stream}",
            subcategory="training",
        ),
        pdf=f"{R}/figures/{{stream}}_training_curves.pdf",
    log:
        log_path("fig_training_curves", "{stream}"),
    benchmark:
        bench_path("fig_training_curves", "{stream}")
    conda:
        CONDA_ENV
    params:
        task=lambda w: stream_cfg(w.stream)["task"],
        batch_sizes=lambda w: {
            s: stream_cfg(w.stream)[s]["batch_size"] for s in ("pretrain", "train")
        },
        moco_k=lambda w: stream_cfg(w.stream)["optim"]["moco_k"],
        moco_batch_negatives=lambda w: stream_cfg(w.stream)["optim"].get(
            "moco_batch_negatives", False
        ),
        sl_kind=lambda w: stream_cfg(w.stream)["optim"]["sl_kind"],
        figures=config["figures"],
    script:
        "../scripts/fig_training_curves.py"


rule fig_emergence:
    input:
        verdicts=f"{R}/tables/emergence.csv",
        tests=f"{R}/tables/results.csv",
        metrics=f"{R}/tables/metrics.csv",
        learning=f"{R}/tables/learning.csv",
        lib=lib("figures", "naming", "tables"),
    output:
        png=report(
            f"{R}/figures/emergence.png",
            caption="../report/fig_emergence.rst",
            category="both streams",
            subcategory="emergence",
        ),
        pdf=f"{R}/figures/emergence.pdf",
    log:
        log_path("fig_emergence", "all"),
    benchmark:
        bench_path("fig_emergence", "all")
    conda:
        CONDA_ENV
    params:
        sweep=config["sweep"],
        analysis=analysis_params(),
        figures=config["figures"],
    script:
        "../scripts/fig_emergence.py"
