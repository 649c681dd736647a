# Data: datasets (packaged, synthetic, deadleaves, url, local) -> clip store (decord, sharded) and image store.


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


rule decode_shard:
    input:
        sources=dataset_dirs(config["video"]["sources"]),
    output:
        store=f"{R}/clips/shard{{shard}}.h5",
        rejects=f"{R}/clips/shard{{shard}}_rejects.csv",
    log:
        log_path("decode_shard", "{shard}"),
    benchmark:
        bench_path("decode_shard", "{shard}")
    conda:
        CONDA_ENV
    params:
        video=config["video"],
    script:
        "../scripts/decode_shard.py"


rule gather_clips:
    input:
        shards=expand(
            f"{R}/clips/shard{{shard}}.h5", shard=range(config["video"]["shards"])
        ),
        rejects=expand(
            f"{R}/clips/shard{{shard}}_rejects.csv",
            shard=range(config["video"]["shards"]),
        ),
    output:
        store=f"{R}/clips/clips.h5",
        rejects=f"{R}/clips/rejects.csv",
    log:
        log_path("gather_clips", "clips"),
    benchmark:
        bench_path("gather_clips", "clips")
    conda:
        CONDA_ENV
    params:
        val_fraction=config["video"]["val_fraction"],
    script:
        "../scripts/gather_clips.py"


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
