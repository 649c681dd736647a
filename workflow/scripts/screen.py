"""Stream the natural image / clip store through a model; keep each sampled unit's top-k and bottom-k inputs, its
baseline and poles (in the screened signal and its control), and the semantic axis between its poles."""

from pathlib import Path

from tdann import augment, models, screening, stores
from tdann.provenance import step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg, sc = snakemake.params.stream, snakemake.params.screening
signals = [sc["signal"]] + [s for s in [sc.get("control_signal")] if s and s != sc["signal"]]
with step(snakemake, config_keys=["screening"], seeds={"seed": 0}):
    model = models.load_weights(Path(snakemake.input.weights), cfg["arch"], cfg["width"], cfg["stem"])
    store = Path(snakemake.input.store)
    batches = stores.store_batches(store, sc["batch_size"], size=cfg["input_size"], clip_len=cfg["clip_len"])
    out = screening.screen(
        model, batches, list(snakemake.params.layers), k=sc["k"], out_h5=Path(snakemake.output[0]),
        units_per_layer=sc["units_per_layer"], device=device,
        transform=augment.normalize, store_path=store, n_inputs=stores.store_len(store), seed=0,
        signals=signals, n_boot=sc["bootstrap"],
    )
    screening.add_semantic_axes(
        out, model, lambda idx: stores.store_items(store, idx, cfg["input_size"], cfg["clip_len"]), device=device,
        transform=augment.normalize, batch=sc["batch_size"], seed=0, groups=stores.store_sources(store),
    )
