"""Responses of every tapped layer of a model to a stimulus set, in the positions' unit order."""

from pathlib import Path

from tdann import augment, models, screening, stimuli
from tdann.provenance import step
from tdann.training import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg = snakemake.params.stream
with step(snakemake, config_keys=["analysis.batch_size", "analysis.response_dtype"]):
    model = models.load_weights(Path(snakemake.input.weights), cfg["arch"], cfg["width"], cfg["stem"])
    n = stimuli.count_stimuli(Path(snakemake.input.stimuli))
    batches = stimuli.iter_stimulus_batches(Path(snakemake.input.stimuli), snakemake.params.batch_size)
    screening.compute_responses(
        model, batches, list(snakemake.params.layers), Path(snakemake.output[0]), n_stimuli=n,
        device=device, dtype=snakemake.params.dtype, time_average=True,
        progress=False, transform=augment.normalize,
    )
