"""One prepared check of the GPU path: paper-shape training steps of both streams, with and without the spatial
loss, and a paper-size SwapOpt layer; prints throughput and the projected wall time of the paper run.

Run: ``python -m tdann.gpucheck`` (``make gpu-check``); ``--tiny`` shrinks every shape so that it runs on a CPU in
seconds (the tests do this). Needs only torch, numpy and h5py: the packages a bare GPU machine has.

* ventral: ResNet-18 at 224 px, SimCLR (two views of B images per step, NT-Xent), spatial loss on all 8 blocks;
* dorsal: r3d_18 on 16 x 112 x 112 clips, MoCo v2 (queue 65,536), the same loss;
* spatial loss on the paper's sheets (docs/reference.md §1) with neighbourhoods of up to 500 units, 8 per step;
* SwapOpt on a V1-sized layer (100,352 units, 640 stimuli, 36.75 mm sheet, 500-unit windows, 500 attempts each).

Synthetic tensors stand in for data (no loader, no augmentation): the numbers are the model's cost, an upper bound
on what a data pipeline can feed. ``--amp bf16`` runs forward passes under bf16 autocast (the spatial and
contrastive losses in float32), ``--channels-last`` converts the models and inputs to channels_last(_3d),
``--compile`` wraps the encoders in ``torch.compile``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from .losses import SpatialLoss
from .models import LAYERS, FeatureTaps, build_model, input_shape, memory_format
from .positions import init_sheets
from .ssl import MoCo, ProjectionHead, nt_xent
from .swapopt import swapopt

#: the paper's sheets, (side mm, neighbourhood width mm) per block (docs/reference.md §1)
VENTRAL_SHEETS = {"layer1": (2.4, 0.0475), "layer2": (36.75, 1.626), "layer3.0": (35.0, 3.977),
                  "layer3.1": (22.4, 2.545), "layer4": (70.0, 31.818)}
DORSAL_SHEETS = {"layer1": (2.387, 0.047), "layer2": (34.351, 2.7), "layer3.0": (30.659, 4.2),
                 "layer3.1": (7.071, 2.1), "layer4": (7.483, 2.7)}
RF_OVERLAP = {"layer1": 0.1, "layer2": 0.2, "layer3": 0.4, "layer4": 0.8}
ALPHA = 0.25  # the published main model
#: the paper run (config/paper.yaml): steps x batch per training, trainings (stage 1 + 7 alphas x 5 seeds), SwapOpt
PAPER: dict[str, Any] = {"ventral": {"steps": 500_000, "batch": 512, "trainings": 36},
         "dorsal": {"steps": 200_000, "batch": 256, "trainings": 36},
         "swapopt_attempts_per_layer": 50_000_000, "swapopt_layers": 16}


@dataclass
class Shapes:
    """What one check runs: ``paper()`` or ``tiny()``."""

    width: float
    image: int
    clip: tuple[int, int]  # (frames, side)
    batch_images: int
    batch_clips: int
    moco_k: int
    max_units: int
    swap_units: int
    swap_stimuli: int
    swap_windows: int
    swap_attempts: int

    @classmethod
    def paper(cls, cuda: bool) -> Shapes:
        return cls(1.0, 224, (16, 112), 256 if cuda else 8, 32 if cuda else 2, 65536, 500, 100_352, 640,
                   2048 if cuda else 64, 500)

    @classmethod
    def tiny(cls) -> Shapes:
        return cls(0.125, 64, (4, 32), 4, 2, 64, 60, 4096, 64, 8, 50)


def resolve(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def spatial_losses(model: torch.nn.Module, shape: tuple, sheets: dict, max_units: int,
                   device: torch.device) -> dict[str, SpatialLoss]:
    """Spatial losses of all 8 blocks on the given sheets, windows capped at ``max_units`` units."""
    specs = {}
    for layer in LAYERS:
        side, width = sheets.get(layer) or sheets[layer.split(".")[0]]
        specs[layer] = {"sheet_size": side, "neighborhood_width": width, "rf_overlap": RF_OVERLAP[layer[:6]]}
    made = init_sheets(model, shape, specs, seed=0, n_windows=256, min_units=3, max_units=max_units)
    return {n: SpatialLoss(s.positions, s.neighborhoods).to(device) for n, s in made.items()}


def timed(step: Callable[[bool], None], steps: int, device: torch.device) -> dict[str, float]:
    """Median seconds per step with and without the spatial loss, alternating rounds after two warm-up steps."""
    for with_sl in (False, True):
        step(with_sl)
        step(with_sl)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(steps):
        for with_sl in (False, True):
            sync(device)
            t0 = time.perf_counter()
            step(with_sl)
            sync(device)
            times[with_sl].append(time.perf_counter() - t0)
    return {"s_per_step": statistics.median(times[False]), "s_per_step_sl": statistics.median(times[True])}


_M = TypeVar("_M", bound=torch.nn.Module)


def _prepare(model: _M, x: torch.Tensor, channels_last: bool) -> tuple[_M, torch.Tensor]:
    if channels_last:
        fmt = memory_format("resnet18" if x.ndim == 4 else "r3d_18")
        return model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
    return model, x


def _autocast(device: torch.device, amp: str):
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_step(model: torch.nn.Module, task: Callable[[], torch.Tensor], sl: dict[str, SpatialLoss],
                opt: torch.optim.Optimizer, gen: torch.Generator) -> Callable[[bool], None]:
    """One SGD step of ``task()`` (the contrastive loss), plus alpha x the spatial loss of all 8 blocks (in float32)
    when called with True."""

    def step(with_sl: bool) -> None:
        opt.zero_grad(set_to_none=True)
        with FeatureTaps(model, LAYERS if with_sl else ()) as taps:
            loss = task()
            if with_sl:
                loss = loss + sum(ALPHA * sl[n](taps.flat(n).float(), gen) for n in LAYERS)
        loss.backward()
        opt.step()

    return step


def check_ventral(s: Shapes, device: torch.device, steps: int, amp: str, channels_last: bool,
                  compile_: bool) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_model("resnet18", width=s.width).to(device)
    sl = spatial_losses(model, input_shape("resnet18", s.image), VENTRAL_SHEETS, s.max_units, device)
    head = ProjectionHead(model.embed_dim, 512, 128).to(device)
    x = torch.rand(2 * s.batch_images, 3, s.image, s.image, device=device)
    model, x = _prepare(model, x, channels_last)
    embed = torch.compile(model.embed) if compile_ else model.embed
    opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    gen = torch.Generator(device=device).manual_seed(0)

    def task() -> torch.Tensor:
        with _autocast(device, amp):
            z = head(embed(x))
        return nt_xent(z[: s.batch_images].float(), z[s.batch_images:].float(), 0.1)[0]

    out = timed(_train_step(model, task, sl, opt, gen), steps, device)
    out["images_per_s"] = s.batch_images / out["s_per_step_sl"]
    return out


def check_dorsal(s: Shapes, device: torch.device, steps: int, amp: str, channels_last: bool,
                 compile_: bool) -> dict[str, float]:
    torch.manual_seed(0)
    frames, side = s.clip
    encoder = build_model("r3d_18", width=s.width).to(device)
    sl = spatial_losses(encoder, input_shape("r3d_18", side, frames), DORSAL_SHEETS, s.max_units, device)
    x_q = torch.rand(s.batch_clips, 3, frames, side, side, device=device)
    encoder, x_q = _prepare(encoder, x_q, channels_last)
    x_k = x_q.flip(-1).contiguous(memory_format=memory_format("r3d_18")) if channels_last else x_q.flip(-1)
    moco = MoCo(encoder, dim=128, K=s.moco_k, m=0.999, T=0.2).to(device)
    if compile_:
        moco.encoder_q.embed = torch.compile(moco.encoder_q.embed)
    opt = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.03, momentum=0.9)
    gen = torch.Generator(device=device).manual_seed(0)

    def task() -> torch.Tensor:
        with _autocast(device, amp):
            return moco(x_q, x_k, gen)[0].float()

    out = timed(_train_step(moco.encoder_q, task, sl, opt, gen), steps, device)
    out["clips_per_s"] = s.batch_clips / out["s_per_step_sl"]
    return out


def check_swapopt(s: Shapes, device: torch.device) -> dict[str, float]:
    """SwapOpt on a V1-sized layer with smooth synthetic responses (attempts/s includes the correlations)."""
    rng = np.random.default_rng(0)
    side = VENTRAL_SHEETS["layer2"][0]
    pos = rng.uniform(0, side, size=(s.swap_units, 2)).astype(np.float32)
    hidden = rng.uniform(0, side, size=(s.swap_units, 2)).astype(np.float32)
    freqs = rng.normal(size=(s.swap_stimuli, 2)).astype(np.float32) * np.float32(2 * np.pi / side * 3)
    resp = np.cos(freqs @ hidden.T) + 0.5 * rng.standard_normal((s.swap_stimuli, s.swap_units), dtype=np.float32)
    width = math.sqrt(s.max_units / (s.swap_units / side**2))  # windows of ~max_units units
    _, stats = swapopt(resp.astype(np.float32), pos, width, s.swap_windows, s.swap_attempts, s.max_units,
                       seed=0, device=device)
    return {k: float(stats[k]) for k in ("attempts_per_s", "wall_s", "sl_before", "sl_after", "attempts")}


def projection(ventral: dict, dorsal: dict, swap: dict) -> dict[str, float]:
    """Projected GPU-hours of the paper run on one device like this one (training with the spatial loss)."""
    v, d = PAPER["ventral"], PAPER["dorsal"]
    hours = {
        "ventral_h_per_training": v["steps"] * v["batch"] / ventral["images_per_s"] / 3600,
        "dorsal_h_per_training": d["steps"] * d["batch"] / dorsal["clips_per_s"] / 3600,
        "swapopt_h_per_layer": PAPER["swapopt_attempts_per_layer"] / swap["attempts_per_s"] / 3600,
    }
    hours["total_gpu_h"] = (hours["ventral_h_per_training"] * v["trainings"]
                            + hours["dorsal_h_per_training"] * d["trainings"]
                            + hours["swapopt_h_per_layer"] * PAPER["swapopt_layers"])
    return hours


def run(device: str = "auto", tiny: bool = False, steps: int = 5, amp: str = "auto", channels_last: bool | None = None,
        compile_: bool = False) -> dict[str, Any]:
    dev = resolve(device)
    cuda = dev.type == "cuda"
    amp = ("bf16" if cuda else "none") if amp == "auto" else amp
    channels_last = cuda if channels_last is None else channels_last
    shapes = Shapes.tiny() if tiny else Shapes.paper(cuda)
    if cuda:
        torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    ventral = check_ventral(shapes, dev, steps, amp, channels_last, compile_)
    dorsal = check_dorsal(shapes, dev, steps, amp, channels_last, compile_)
    swap = check_swapopt(shapes, dev)
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(dev) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "cuda": cuda, "tiny": tiny, "amp": amp, "channels_last": channels_last, "compile": compile_,
        "shapes": asdict(shapes), "ventral": ventral, "dorsal": dorsal, "swapopt": swap,
        "sl_ratio_ventral": ventral["s_per_step_sl"] / ventral["s_per_step"],
        "sl_ratio_dorsal": dorsal["s_per_step_sl"] / dorsal["s_per_step"],
        "projection": projection(ventral, dorsal, swap), "check_wall_s": 0.0,
    }
    if cuda:
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
    out["check_wall_s"] = time.perf_counter() - t0
    return out


def summary(r: dict[str, Any]) -> str:
    s, p = r["shapes"], r["projection"]
    lines = [
        f"device {r['device']}, torch {r['torch']}, amp {r['amp']}, channels_last {r['channels_last']}, "
        f"compile {r['compile']}",
        f"ventral resnet18 x{s['width']:g} {s['image']} px, B {s['batch_images']} pairs: "
        f"{r['ventral']['images_per_s']:.1f} images/s with the spatial loss; SL ratio {r['sl_ratio_ventral']:.3f}",
        f"dorsal r3d_18 x{s['width']:g} {s['clip'][0]}x{s['clip'][1]}x{s['clip'][1]}, B {s['batch_clips']}: "
        f"{r['dorsal']['clips_per_s']:.1f} clips/s with the spatial loss; SL ratio {r['sl_ratio_dorsal']:.3f}",
        f"swapopt {s['swap_units']} units x {s['swap_stimuli']} stimuli: {r['swapopt']['attempts_per_s']:.0f} "
        f"attempts/s (SL {r['swapopt']['sl_before']:.4f} -> {r['swapopt']['sl_after']:.4f})",
        f"projected on one such device: ventral {p['ventral_h_per_training']:.1f} h per training, dorsal "
        f"{p['dorsal_h_per_training']:.1f} h, SwapOpt {p['swapopt_h_per_layer']:.2f} h per layer; paper run "
        f"{p['total_gpu_h']:.0f} {'GPU' if r['cuda'] else 'CPU'}-h ({PAPER['ventral']['trainings']} + {PAPER['dorsal']['trainings']} trainings, "
        f"{PAPER['swapopt_layers']} SwapOpt layers)",
    ]
    if r["tiny"]:
        lines[-1] += " [tiny shapes: a test of the check, not a projection]"
    if "peak_memory_gb" in r:
        lines.append(f"peak GPU memory {r['peak_memory_gb']:.1f} GiB; check took {r['check_wall_s']:.0f} s")
    else:
        lines.append(f"check took {r['check_wall_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (runs on a CPU in seconds)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant (after 2 warm-up steps)")
    ap.add_argument("--amp", choices=("auto", "bf16", "none"), default="auto")
    ap.add_argument("--channels-last", dest="channels_last", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--compile", dest="compile_", action="store_true")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    result = run(args.device, args.tiny, args.steps, args.amp, args.channels_last, args.compile_)
    print(summary(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
