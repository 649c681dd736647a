# Bidirectional screening (docs/reference.md §6): most / least activating natural inputs of every sampled unit
# (streaming top-k over the whole image or clip store) and synthesised most / least exciting inputs.


rule screen:
    input:
        weights=f"{R}/models/{{stream}}/{{weights}}/weights.pt",
        store=lambda w: train_store(w.stream),
    output:
        f"{R}/screening/{{stream}}/{{weights}}.h5",
    log:
        log_path("screen", "{stream}_{weights}"),
    benchmark:
        bench_path("screen", "{stream}_{weights}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: net_params(stream_cfg(w.stream)),
        layers=lambda w: config["screening"]["layers"][w.stream],
        screening=config["screening"],
        device=config["run"]["device"],
    script:
        "../scripts/screen.py"


rule natural_spectrum:
    input:
        store=lambda w: train_store(w.stream),
    output:
        f"{R}/screening/{{stream}}/natural_spectrum.h5",
    log:
        log_path("natural_spectrum", "{stream}"),
    benchmark:
        bench_path("natural_spectrum", "{stream}")
    conda:
        CONDA_ENV
    params:
        stream=lambda w: net_params(stream_cfg(w.stream)),
        n_images=config["screening"]["synthesis"]["spectrum_inputs"],
    script:
        "../scripts/natural_spectrum.py"


rule synthesize:
    input:
        weights=f"{R}/models/{{stream}}/{{weights}}/weights.pt",
        screen=f"{R}/screening/{{stream}}/{{weights}}.h5",
        spectrum=f"{R}/screening/{{stream}}/natural_spectrum.h5",
        sheet=lambda w: f"{R}/sheets/{w.stream}/{config['sweep']['positions']}.h5",
    output:
        f"{R}/synthesis/{{stream}}/{{weights}}/{{layer}}.h5",
    log:
        log_path("synthesize", "{stream}_{weights}_{layer}"),
    benchmark:
        bench_path("synthesize", "{stream}_{weights}_{layer}")
    conda:
        CONDA_ENV
    threads: config["run"]["threads"]
    resources:
        gpu=1,
    params:
        stream=lambda w: net_params(stream_cfg(w.stream)),
        synthesis=config["screening"]["synthesis"],
        signal=config["screening"]["signal"],
        device=config["run"]["device"],
    script:
        "../scripts/synthesize.py"


rule screening_table:
    input:
        screen=lambda w: f"{R}/screening/{w.stream}/{screened_weights()}.h5",
        untrained=lambda w: f"{R}/screening/{w.stream}/{screened_untrained()}.h5",
        synthesis=lambda w: expand(
            f"{R}/synthesis/{w.stream}/{screened_weights()}/{{layer}}.h5",
            layer=config["screening"]["layers"][w.stream],
        ),
        lib=lib("bidirectional", "screening"),
    output:
        units=f"{R}/tables/{{stream}}_screening_units.csv",
        poles=f"{R}/tables/{{stream}}_screening_poles.csv",
        synthesis=f"{R}/tables/{{stream}}_synthesis_checks.csv",
        untrained=f"{R}/tables/{{stream}}_screening_vs_untrained.csv",
    log:
        log_path("screening_table", "{stream}"),
    benchmark:
        bench_path("screening_table", "{stream}")
    conda:
        CONDA_ENV
    params:
        model=screened_weights(),
        untrained=screened_untrained(),
    script:
        "../scripts/screening_table.py"


rule fig_screening:
    input:
        screen=lambda w: f"{R}/screening/{w.stream}/{screened_weights()}.h5",
        synthesis=lambda w: expand(
            f"{R}/synthesis/{w.stream}/{screened_weights()}/{{layer}}.h5",
            layer=config["screening"]["layers"][w.stream],
        ),
        store=lambda w: train_store(w.stream),
        learning=f"{R}/tables/learning.csv",
        poles=f"{R}/tables/{{stream}}_screening_poles.csv",
        checks=f"{R}/tables/{{stream}}_synthesis_checks.csv",
        untrained=f"{R}/tables/{{stream}}_screening_vs_untrained.csv",
        sheet=lambda w: f"{R}/sheets/{w.stream}/{config['sweep']['positions']}.h5",
        lib=lib("figures", "positions", "screening", "stores"),
    output:
        png=report(
            f"{R}/figures/{{stream}}_screening.png",
            caption="../report/fig_screening.rst",
            category="{stream}",
            subcategory="bidirectional screening",
        ),
        pdf=f"{R}/figures/{{stream}}_screening.pdf",
    log:
        log_path("fig_screening", "{stream}"),
    benchmark:
        bench_path("fig_screening", "{stream}")
    conda:
        CONDA_ENV
    params:
        figures=config["figures"],
        model=screened_weights(),
    script:
        "../scripts/fig_screening.py"
