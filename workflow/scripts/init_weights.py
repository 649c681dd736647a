"""Weights of an untrained network (the control for map emergence)."""

import torch

from tdann import models
from tdann.provenance import step

cfg, seed = snakemake.params.stream, int(snakemake.params.seed)
with step(snakemake, config_keys=[f"streams.{snakemake.wildcards.stream}"], seeds={"seed": seed}):
    torch.manual_seed(seed)
    model = models.build_model(cfg["arch"], width=cfg["width"], stem=cfg["stem"])
    models.save_weights(model, snakemake.output[0], cfg["arch"], cfg["width"], cfg["stem"], cfg["input_size"],
                        cfg["clip_len"])
