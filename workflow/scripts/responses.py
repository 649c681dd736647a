"""Responses of every tapped layer of a model to one or more stimulus sets (input.stimuli[i] -> output[i]), in the
positions' unit order."""

from pathlib import Path

from tdann import augment, models, responses, stimuli
from tdann.provenance import step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

cfg = snakemake.params.stream
stimulus_files = [snakemake.input.stimuli] if isinstance(snakemake.input.stimuli, str) else snakemake.input.stimuli
if len(stimulus_files) != len(snakemake.output):
    raise ValueError(f"{len(stimulus_files)} stimulus sets but {len(snakemake.output)} outputs")
with step(snakemake, config_keys=["analysis.batch_size", "analysis.response_dtype"]):
    model = models.load_weights(Path(snakemake.input.weights), cfg["arch"], cfg["width"], cfg["stem"])
    for stim_path, out_path in zip(stimulus_files, snakemake.output):
        n = stimuli.count_stimuli(Path(stim_path))
        batches = stimuli.iter_stimulus_batches(Path(stim_path), snakemake.params.batch_size)
        responses.compute_responses(
            model, batches, list(snakemake.params.layers), Path(out_path), n_stimuli=n,
            device=device, dtype=snakemake.params.dtype, time_average=True,
            transform=augment.normalize,
        )
