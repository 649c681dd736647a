"""Build the natural-image store for the ventral stream from photos and video frames."""

from pathlib import Path

from tdann import data
from tdann.provenance import log, step

cfg = snakemake.params.images
with step(snakemake, config_keys=["images"], seeds={"seed": cfg["seed"]}):
    sources = [Path(p) for p in snakemake.input.sources]
    # packaged/synthetic datasets keep photos in images/; a local ImageNet-style folder is used as it is
    image_dirs = [src / "images" if (src / "images").is_dir() else src for src in sources]
    videos = data.find_videos(sources)
    counts = data.build_image_store(
        image_dirs=image_dirs,
        video_paths=videos,
        out=Path(snakemake.output[0]),
        size=cfg["size"],
        crops_per_image=cfg["crops_per_image"],
        frames_per_video=cfg["frames_per_video"],
        val_fraction=cfg["val_fraction"],
        seed=cfg["seed"],
        crops_per_dir=[int(c) for c in snakemake.params.crops_per_dir],
    )
    log.info("image store: %(n_images)d images (%(n_from_photos)d photo crops, %(n_from_videos)d video frames) from "
             "%(n_sources)d source files; train %(n_train)d, val %(n_val)d (%(n_val_sources)d val sources)", counts)
