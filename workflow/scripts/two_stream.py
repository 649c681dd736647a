"""Train the two-stream network of one species preset (several seeds) on the pipeline's own stimuli."""

from pathlib import Path

import pandas as pd

from tdann import stimuli, twostream
from tdann.provenance import step
from tdann.training import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg, species = snakemake.params.twostream, snakemake.wildcards.species
with step(snakemake, config_keys=[f"twostream.species.{species}", "twostream"], seeds={"seed": cfg["seeds"][0]}):
    images, cat_params, _ = stimuli.load_stimulus_set(Path(snakemake.input.categories))
    if images.ndim == 5:  # categories stored as static clips for a video model: take one frame
        images = images[:, :, 0]
    clips, motion_params, _ = stimuli.load_stimulus_set(Path(snakemake.input.motion))
    data = twostream.pipeline_batches(images, cat_params["category"].tolist(), clips,
                                      motion_params["direction"].to_numpy(), size=cfg["size"],
                                      batch=cfg["batch_size"], seed=0)
    table = twostream.compare_presets(
        {species: dict(snakemake.params.preset)}, data["train_images"], data["train_dorsal"],
        eval_image_batches=data["eval_images"], eval_dorsal_batches=data["eval_dorsal"], width=cfg["width"],
        n_classes=len(data["classes"]), dorsal_task=cfg["dorsal_task"], steps=cfg["steps"], lr=cfg["lr"],
        seeds=cfg["seeds"], sl_alpha=dict(cfg["sl_alpha"]) or None, device=device,
    )
    table.to_csv(snakemake.output[0], index=False)
