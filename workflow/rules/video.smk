# Video decoding (decord, sharded): videos -> clip-store shards -> one clip store split by source video.


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
