"""Decode one shard of the configured videos (every n-th file) into an HDF5 clip store with decord."""

from pathlib import Path

from tdann import data, video
from tdann.provenance import log, step

cfg = snakemake.params.video
shard, n_shards = int(snakemake.wildcards.shard), int(cfg["shards"])
with step(snakemake, config_keys=["video"]):
    videos = data.find_videos(snakemake.input.sources)
    mine = videos[shard::n_shards]
    rejects = video.decode_clips(
        mine,
        Path(snakemake.output.store),
        clip_len=cfg["clip_len"],
        size=cfg["size"],
        frame_step=cfg["frame_step"],
        stride=cfg["stride"],
        max_clips_per_video=cfg["max_clips_per_video"],
        on_bad_video=cfg["on_bad_video"],
    )
    rejects.to_csv(snakemake.output.rejects, index=False)
    log.info("shard %d of %d: %d of %d videos, %d rejected", shard, n_shards, len(mine), len(videos), len(rejects))
