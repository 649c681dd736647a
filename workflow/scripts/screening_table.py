"""Tables of bidirectional screening: per unit, per layer and signal, and the MEI / LEI checks."""

from pathlib import Path

import h5py
import pandas as pd

from tdann import bidirectional, screening
from tdann.provenance import step


def screened_units(path: Path, model: str):
    """The per-unit table of one screening file, every signal screened in it."""
    with h5py.File(path, "r") as f:
        signals, layers = list(f.attrs["signals"]), list(f.attrs["layers"])
    by_signal = {s: {layer: screening.load_screen(path, layer, s) for layer in layers} for s in signals}
    units = bidirectional.screening_units(by_signal)
    units.insert(0, "model", model)
    units.insert(0, "stream", snakemake.wildcards.stream)
    return units, signals


with step(snakemake, config_keys=["screening"]):
    path = Path(snakemake.input.screen)
    units, signals = screened_units(path, snakemake.params.model)
    untrained = f"untrained ({snakemake.params.untrained})"
    control, _ = screened_units(Path(snakemake.input.untrained), untrained)
    synthesis = {}
    for p in snakemake.input.synthesis:
        with h5py.File(p, "r") as f:
            if f.attrs.get("signal", "output") != signals[0]:
                raise ValueError(f"{p} synthesised on signal {f.attrs.get('signal', 'output')!r}, but {path} "
                                 f"screened {signals[0]!r}: rerun synthesize")
            synthesis[f.attrs["layer"]] = {"units": f["units"][()]} | {
                f"{param}/{pole}": f[f"{param}/{pole}/activation"][()] for param in f if param in ("pixel", "fourier")
                for pole in f[param]}
    checks = bidirectional.synthesis_checks(synthesis, units[units["signal"] == signals[0]])
    units = pd.concat([units, control], ignore_index=True)
    units.to_csv(snakemake.output.units, index=False)
    bidirectional.screening_poles(units).to_csv(snakemake.output.poles, index=False)
    checks.to_csv(snakemake.output.synthesis, index=False)
    bidirectional.screening_vs_untrained(units, snakemake.params.model, untrained, signals[0]).to_csv(
        snakemake.output.untrained, index=False)
