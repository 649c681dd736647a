"""Moving disks at several speeds as (t, x, y) events and frames, for the spiking speed channels; the events also
in the exercise's own format (a sparse (T, X, Y) tensor, torch.save)."""

from pathlib import Path

from tdann import spiking, stimuli
from tdann.provenance import step

spec = dict(snakemake.params.spec)
with step(snakemake, config_keys=["stimuli.disks"], seeds={"seed": int(spec["seed"])}):
    disks = stimuli.moving_disks(size=spec["size"], steps=spec["steps"], speeds=tuple(spec["speeds"]),
                                 radius=spec["radius"], seed=spec["seed"])
    stimuli.save_moving_disks(Path(snakemake.output.h5), disks)
    spiking.save_event_tensor(snakemake.output.events, spiking.stimulus_event_frames(disks))
