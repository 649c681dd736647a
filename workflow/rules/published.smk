# The published TDANN networks (docs/reference.md §10): checkpoint and positions -> weights and sheet, then the
# same responses and metrics as every other model (responses.smk, metrics.smk), a table and a figure. No training.


rule import_published:
    input:
        data=lambda w: dataset_dirs([PUBLISHED["dataset"]])[0],
        lib=lib("published"),
    output:
        weights=f"{R}/models/ventral/published-{{name}}/weights.pt",
        sheet=f"{R}/sheets/ventral/published-{{name}}.h5",
    log:
        log_path("import_published", "{name}"),
    benchmark:
        bench_path("import_published", "{name}")
    conda:
        CONDA_ENV
    params:
        entry=lambda w: PUBLISHED["models"][w.name],
        layers=PUBLISHED["layers"],
        rescale=PUBLISHED["rescale"],
        stream=lambda w: net_params(stream_cfg("ventral")),
    script:
        "../scripts/import_published.py"


rule published_table:
    input:
        tables=[
            f"{R}/metrics/ventral/{m}.csv"
            for pm in published_models()
            for m in (pm, published_control(pm))
        ],
        lib=lib("tables"),
    output:
        table=f"{R}/tables/published.csv",
        markdown=f"{R}/tables/published.md",
    log:
        log_path("published_table", "all"),
    benchmark:
        bench_path("published_table", "all")
    conda:
        CONDA_ENV
    params:
        models=published_info(),
        controls={pm: published_control(pm) for pm in published_models()},
        analysis=analysis_params(),
    script:
        "../scripts/published_table.py"


rule fig_published:
    input:
        published=[f"{R}/metrics/ventral/{m}.h5" for m in published_models()],
        controls=[
            f"{R}/metrics/ventral/{published_control(m)}.h5"
            for m in published_models()
        ],
        sheets=[f"{R}/sheets/ventral/{m}.h5" for m in published_models()],
        lib=lib("figures", "positions"),
    output:
        png=report(
            f"{R}/figures/published_maps.png",
            caption="../report/fig_published.rst",
            category="published TDANN networks",
        ),
        pdf=f"{R}/figures/published_maps.pdf",
    log:
        log_path("fig_published", "all"),
    benchmark:
        bench_path("fig_published", "all")
    conda:
        CONDA_ENV
    params:
        models=published_info(),
        v1_layer=config["analysis"]["v1_layer"],
        vtc_layer=config["analysis"]["vtc_layer"],
        figures=config["figures"],
    script:
        "../scripts/fig_published.py"
