# Data: datasets (packaged, synthetic, url, local) -> clip store (decord, sharded) and image store.


rule fetch_dataset:
    output:
        directory(f"{R}/data/{{dataset}}"),
    params:
        entry=lambda w: config["datasets"][w.dataset],
    log:
        log_path("fetch_dataset", "{dataset}"),
    benchmark:
        bench_path("fetch_dataset", "{dataset}")
    script:
        "../scripts/fetch_dataset.py"


rule decode_shard:
    input:
        sources=dataset_dirs(config["video"]["sources"]),
    output:
        store=f"{R}/clips/shard{{shard}}.h5",
        rejects=f"{R}/clips/shard{{shard}}_rejects.csv",
    params:
        video=config["video"],
    log:
        log_path("decode_shard", "{shard}"),
    benchmark:
        bench_path("decode_shard", "{shard}")
    script:
        "../scripts/decode_shard.py"


rule gather_clips:
    input:
        shards=expand(f"{R}/clips/shard{{shard}}.h5", shard=range(config["video"]["shards"])),
        rejects=expand(
            f"{R}/clips/shard{{shard}}_rejects.csv", shard=range(config["video"]["shards"])
        ),
    output:
        store=f"{R}/clips/clips.h5",
        rejects=f"{R}/clips/rejects.csv",
    params:
        val_fraction=config["video"]["val_fraction"],
    log:
        log_path("gather_clips", "clips"),
    benchmark:
        bench_path("gather_clips", "clips")
    script:
        "../scripts/gather_clips.py"


rule image_store:
    input:
        sources=dataset_dirs(config["images"]["sources"]),
    output:
        f"{R}/images/images.h5",
    params:
        images=config["images"],
    log:
        log_path("image_store", "images"),
    benchmark:
        bench_path("image_store", "images")
    script:
        "../scripts/image_store.py"
