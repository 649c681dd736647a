"""Generate one evaluation stimulus set at the stream's input size and save it as HDF5."""

from pathlib import Path

from tdann import stimuli
from tdann.provenance import step

name, spec = snakemake.wildcards.stimset, dict(snakemake.params.spec)
size, clip_len = int(snakemake.params.size), int(snakemake.params.clip_len)
with step(snakemake, config_keys=[f"stimuli.{name}"], seeds={"seed": int(spec.get("seed", 0))}):
    if name == "gratings":
        stim, params = stimuli.gratings(
            size, orientations=spec["orientations"], sfs=spec["sfs"], phases=spec["phases"],
            colours=tuple(spec["colours"]),
        )
        if clip_len > 1:  # a static grating shown as a clip to a video model
            stim = stim[:, :, None].repeat(clip_len, axis=2)
    elif name == "drifting":
        stim, params = stimuli.drifting_gratings(
            size, frames=clip_len, directions=spec["directions"], sfs=spec["sfs"], tfs=spec["tfs"],
            phases=spec.get("phases", 1),
        )
    elif name == "dots":
        stim, params = stimuli.random_dots(
            size, frames=clip_len, directions=spec["directions"], coherences=spec["coherences"],
            speeds=spec["speeds"], density=spec["density"], dot_radius=spec["dot_radius"],
            lifetime=spec["lifetime"], seed=spec["seed"], repeats=spec.get("repeats", 1),
        )
    elif name == "categories":
        if snakemake.input.floc:
            stim, params = stimuli.load_floc(Path(snakemake.input.floc[0]), size)
        else:
            stim, params = stimuli.category_localizer(size, n_per_category=spec["n_per_category"], seed=spec["seed"])
        if clip_len > 1:
            stim = stim[:, :, None].repeat(clip_len, axis=2)
    else:
        raise ValueError(f"unknown stimulus set {name!r}")
    stimuli.save_stimulus_set(Path(snakemake.output[0]), stim, params, kind=name,
                              attrs={"size": size, "clip_len": clip_len, **{k: str(v) for k, v in spec.items()}})
