"""SwapOpt on one layer: move units so that nearby units respond alike (docs/reference.md §3)."""

from pathlib import Path

import h5py

from tdann import positions, swapopt
from tdann.h5io import load_responses, write_dataset
from tdann.provenance import log, step
from tdann.runtime import resolve_device

device = str(resolve_device(snakemake.params.device))

layer, cfg = snakemake.wildcards.layer, snakemake.params.swapopt
with step(snakemake, config_keys=["swapopt"], seeds={"seed": cfg["seed"]}):
    responses = load_responses(Path(snakemake.input.responses), layer)
    sheet = positions.load_sheets(Path(snakemake.input.sheet))[layer]
    new_positions, stats = swapopt.swapopt(
        responses, sheet.positions, sheet.neighborhood_width, n_windows=cfg["n_windows"],
        attempts_per_window=cfg["attempts_per_window"], max_units=cfg["max_units"], seed=cfg["seed"],
        device=device, windows_per_batch=cfg["windows_per_batch"],
    )
    log.info("SwapOpt %s: spatial loss %.4f -> %.4f over %d windows (%d skipped), %d of %d swaps accepted, %.1f s",
             layer, stats["sl_before"], stats["sl_after"], stats["windows"], stats["windows_skipped"],
             stats["accepted"], stats["attempts"], stats["wall_s"])
    with h5py.File(snakemake.output[0], "w") as f:
        write_dataset(f, "positions", new_positions, "unit positions after SwapOpt, channel-major unit order",
                      units="mm")
        f.attrs["layer"] = layer
        for key, value in stats.items():
            f.attrs[key] = value
