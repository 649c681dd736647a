"""Train the two-stream network of one species preset (several seeds) on what / where scenes; score held-out scenes."""

from pathlib import Path

import numpy as np

from tdann import twostream
from tdann.provenance import log, step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg, species = snakemake.params.twostream, snakemake.wildcards.species
with step(snakemake, config_keys=[f"twostream.species.{species}", "twostream"], seeds={"seed": cfg["seeds"][0]}):
    train_glyphs = test_glyphs = (None, None)
    classes = twostream.SHAPES
    if cfg["objects"] == "fashion_mnist":  # the real Fashion-MNIST: train glyphs for training, t10k held out
        folder = Path(snakemake.input.dataset)
        train_glyphs = twostream.load_fashion_mnist(folder, "train")
        test_glyphs = twostream.load_fashion_mnist(folder, "t10k")
        classes = twostream.FASHION_MNIST_CLASSES
    # held-out scenes: their own random stream (and, for Fashion-MNIST, the test glyphs), the same for every preset
    held_out = [twostream.scene_batch(cfg["n_eval"], cfg["size"], np.random.default_rng(cfg["eval_seed"]),
                                      *test_glyphs)]
    table = twostream.compare_presets(
        {species: dict(snakemake.params.preset)},
        lambda seed: twostream.SceneSampler(cfg["batch_size"], cfg["size"], seed, *train_glyphs), None,
        eval_image_batches=held_out, width=cfg["width"], in_channels=3, n_classes=len(classes),
        dorsal_task="position", steps=cfg["steps"], lr=cfg["lr"], seeds=cfg["seeds"],
        sl_alpha=dict(cfg["sl_alpha"]) or None, device=device,
    )
    for key, value in twostream.task_chance(held_out, len(classes)).items():
        table[key] = value
    table["objects"] = cfg["objects"]
    table.to_csv(snakemake.output[0], index=False)
    log.info("held-out scores per seed:\n%s", table.to_string(index=False))
