"""Benchmark: cost of the spatial loss on all 8 blocks, as a ratio to the same train step without it.

Run: ``OMP_NUM_THREADS=1 python tests/benchmarks/bench_spatial_loss.py [--rounds 5] [--steps 3]``

* ventral: resnet18 width 0.5, 64x64 input, batch 64 SimCLR (two views in one forward of 128 images);
* dorsal: r3d_18 width 0.25, clips 3x8x32x32, batch 8 MoCo v2 (query + momentum key encoder).

A step is forward + backward + SGD on pre-made views (augmentation is timed separately). Sheets use the sheet
sizes of docs/reference.md §1; three neighbourhood settings are timed: ``reference`` (docs/reference.md widths, enlarged only
where a window would hold fewer than ~40 units at this small scale), ``config`` (the sheets of config/config.yaml,
when its stream has the same model and input) and ``k500`` (windows as large as the cap of 500 units allows: the
worst case). Timing rounds alternate between the two variants; medians are reported.
Goal (ventral, reference): ratio <= 1.15 on CPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from tdann.augment import clip_views, image_views
from tdann.losses import SpatialLoss
from tdann.models import LAYERS, FeatureTaps, build_model, layer_shapes
from tdann.positions import init_sheets
from tdann.ssl import MoCo, ProjectionHead, nt_xent

ALPHA = 0.25  # docs/reference.md §1
RF_OVERLAP = {"layer1": 0.1, "layer2": 0.2, "layer3": 0.4, "layer4": 0.8}  # docs/reference.md §2
# (sheet side mm, neighbourhood width mm), docs/reference.md §1
VENTRAL = {
    "layer1": (2.4, 0.0475),
    "layer2": (36.75, 1.626),
    "layer3.0": (35.0, 3.977),
    "layer3.1": (22.4, 2.545),
    "layer4": (70.0, 31.818),
}
DORSAL = {
    "layer1": (math.sqrt(5.7), 0.047),
    "layer2": (math.sqrt(1180), 2.7),
    "layer3.0": (math.sqrt(940), 4.2),
    "layer3.1": (math.sqrt(50), 2.1),
    "layer4": (math.sqrt(56), 2.7),
}


def specs(model: torch.nn.Module, input_shape: tuple, table: dict, setting: str) -> dict:
    """Sheet specs for all 8 blocks; neighbourhood widths per ``setting`` (see module docstring)."""
    shapes = layer_shapes(model, input_shape)
    out = {}
    for layer in LAYERS:
        side, width = table.get(layer) or table[layer.split(".")[0]]
        n = int(np.prod(shapes[layer]))
        density = n / side**2
        if setting == "reference":
            width = max(width, math.sqrt(40 / density))
        else:
            width = min(side, math.sqrt(min(n, 2000) / density))
        out[layer] = {"sheet_size": side, "neighborhood_width": width, "rf_overlap": RF_OVERLAP[layer.split(".")[0]]}
    return out


def config_specs(stream: str, arch: str, width: float, input_size: int) -> dict | None:
    """The stream's sheet specs from config/config.yaml if it uses the benchmarked model and input size."""
    path = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    if not path.exists():
        return None
    cfg = yaml.safe_load(path.read_text()).get("streams", {}).get(stream, {})
    same = (cfg.get("arch"), cfg.get("width"), cfg.get("stem"), cfg.get("input_size")) == (
        arch,
        width,
        "standard",
        input_size,
    )
    return cfg.get("layers") if same else None


def all_losses(model: torch.nn.Module, input_shape: tuple, table: dict, config: dict | None) -> dict[str, dict]:
    """Spatial losses of every setting (``config`` only when the config matches)."""
    settings = {s: specs(model, input_shape, table, s) for s in ("reference", "k500")}
    if config:
        settings["config"] = config
    out = {}
    for setting, spec in settings.items():
        sheets = init_sheets(model, input_shape, spec, seed=0, n_windows=2000)
        out[setting] = {name: SpatialLoss(s.positions, s.neighborhoods) for name, s in sheets.items()}
        sizes = " ".join(f"{n}:{loss.neighborhoods.shape[1]}" for n, loss in out[setting].items())
        print(f"  {setting:9s} neighbourhood sizes: {sizes}")
    return out


def timed(step, rounds: int, steps: int, variants: dict) -> dict[str, float]:
    """Median ms per step of each variant; rounds alternate between variants to share machine noise."""
    for fn in variants.values():  # warm-up
        step(fn)
        step(fn)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step(fn)
            times[name].append((time.perf_counter() - t0) / steps * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_ventral(rounds: int, steps: int) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", width=0.5)
    head = ProjectionHead(model.embed_dim, 512, 128)
    opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9, weight_decay=1e-6)
    imgs = torch.randint(0, 256, (64, 72, 72, 3), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    v1, v2 = image_views(imgs, 64, gen)
    print(f"ventral augmentation (2 views of 64 images, 72->64 px): {(time.perf_counter() - t0) * 1000:.1f} ms")
    x = torch.cat([v1, v2])
    losses = all_losses(model, (3, 64, 64), VENTRAL, config_specs("ventral", "resnet18", 0.5, 64))

    def step(sl: dict[str, SpatialLoss] | None) -> None:
        opt.zero_grad(set_to_none=True)
        with FeatureTaps(model, LAYERS if sl else ()) as taps:
            z = head(model.embed(x))
            loss, _ = nt_xent(z[:64], z[64:], 0.1)
            if sl:
                loss = loss + sum(ALPHA * sl[n](taps.flat(n), gen) for n in LAYERS)
        loss.backward()
        opt.step()

    ms = timed(step, rounds, steps, {"no SL": None, **{f"SL {k}": v for k, v in losses.items()}})
    report("ventral resnet18 w0.5 64px B64 SimCLR", ms)


def bench_dorsal(rounds: int, steps: int) -> None:
    torch.manual_seed(0)
    encoder = build_model("r3d_18", width=0.25)
    moco = MoCo(encoder, dim=128, K=4096, m=0.999, T=0.2)
    opt = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.03, momentum=0.9, weight_decay=1e-4)
    clips = torch.randint(0, 256, (8, 12, 36, 36, 3), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    x_q, x_k = clip_views(clips, 8, 32, gen)
    print(f"dorsal augmentation (2 views of 8 clips, 12x36x36 -> 8x32x32): {(time.perf_counter() - t0) * 1000:.1f} ms")
    losses = all_losses(encoder, (3, 8, 32, 32), DORSAL, config_specs("dorsal", "r3d_18", 0.25, 32))

    def step(sl: dict[str, SpatialLoss] | None) -> None:
        opt.zero_grad(set_to_none=True)
        with FeatureTaps(encoder, LAYERS if sl else ()) as taps:
            loss, _ = moco(x_q, x_k, gen)
            if sl:
                loss = loss + sum(ALPHA * sl[n](taps.flat(n), gen) for n in LAYERS)
        loss.backward()
        opt.step()

    ms = timed(step, rounds, steps, {"no SL": None, **{f"SL {k}": v for k, v in losses.items()}})
    report("dorsal r3d_18 w0.25 8x32x32 B8 MoCo", ms)


def report(title: str, ms: dict[str, float]) -> None:
    base = ms["no SL"]
    print(f"{title}: no SL {base:.1f} ms/step")
    for name, value in ms.items():
        if name != "no SL":
            print(f"  {name:13s} {value:.1f} ms/step  ratio {value / base:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_ventral(args.rounds, args.steps)
    bench_dorsal(args.rounds, args.steps)


if __name__ == "__main__":
    main()
