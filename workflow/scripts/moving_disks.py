"""Moving disks at several speeds as (t, x, y) events and frames, for the spiking speed channels."""

from pathlib import Path

from tdann import stimuli
from tdann.provenance import step

spec = dict(snakemake.params.spec)
with step(snakemake, config_keys=["stimuli.disks"], seeds={"seed": int(spec["seed"])}):
    disks = stimuli.moving_disks(size=spec["size"], steps=spec["steps"], speeds=tuple(spec["speeds"]),
                                 radius=spec["radius"], seed=spec["seed"])
    stimuli.save_moving_disks(Path(snakemake.output[0]), disks)
