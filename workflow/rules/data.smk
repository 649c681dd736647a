# Data: datasets (packaged, synthetic, deadleaves, url, local) and the natural-image store.


rule fetch_dataset:
    output:
        directory(f"{R}/data/{{dataset}}"),
    log:
        log_path("fetch_dataset", "{dataset}"),
    benchmark:
        bench_path("fetch_dataset", "{dataset}")
    conda:
        CONDA_ENV
    params:
        entry=lambda w: config["datasets"][w.dataset],
    script:
        "../scripts/fetch_dataset.py"


rule image_store:
    input:
        sources=dataset_dirs(config["images"]["sources"]),
    output:
        f"{R}/images/images.h5",
    log:
        log_path("image_store", "images"),
    benchmark:
        bench_path("image_store", "images")
    conda:
        CONDA_ENV
    params:
        images=config["images"],
        crops_per_dir=[
            config["datasets"][n].get(
                "crops_per_image", config["images"]["crops_per_image"]
            )
            for n in config["images"]["sources"]
        ],
    script:
        "../scripts/image_store.py"
