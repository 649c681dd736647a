"""Synthesised most- (sign +1, MEI) and least- (sign -1, LEI) exciting inputs (docs/reference.md §6).

Gradient ascent / descent on one unit's (or channel's) mean response, in pixel or Fourier parameterisation (the
latter with the natural images' amplitude spectrum, :func:`natural_spectrum`), with jitter, noise, a norm bound and
total-variation regularisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdann.models import FeatureTaps
from tdann.responses import check_layers, eval_mode, forward_to_layers, tap_layers


# ----------------------------------------------------------------------------------------------
# synthesis of most / least exciting inputs
# ----------------------------------------------------------------------------------------------
def natural_spectrum(images: np.ndarray | torch.Tensor | Iterable[Any]) -> np.ndarray:
    """Mean magnitude spectrum of natural images (N, C, H, W) or clips (N, C, T, H, W).

    ``images`` is one array or an iterable of batches (arrays, or ``(start, array)`` pairs as yielded
    by a store). Each input's per-channel mean is removed; the result is ``sqrt(mean |rfftn|^2)``
    over inputs, per channel, over (H, W) or (T, H, W): shape (C, H, W//2+1) or (C, T, H, W//2+1),
    DC = 0. It is the fixed magnitude of the Fourier parameterisation (docs/reference.md §6).
    """
    batches = [images] if isinstance(images, (np.ndarray, torch.Tensor)) else images
    power, count, shape = None, 0, None
    for batch in batches:
        if isinstance(batch, tuple):
            batch = batch[1]
        x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch).double()
        if x.dim() not in (4, 5):
            raise ValueError(f"natural_spectrum needs (N, C, H, W) or (N, C, T, H, W), got {tuple(x.shape)}")
        if shape is not None and tuple(x.shape[1:]) != shape:
            raise ValueError(f"natural_spectrum: batch shape {tuple(x.shape[1:])} differs from {shape}")
        shape = tuple(x.shape[1:])
        dims = tuple(range(2, x.dim()))
        x = x - x.mean(dim=dims, keepdim=True)
        p = torch.fft.rfftn(x, dim=dims).abs().square().sum(dim=0)
        power = p if power is None else power + p
        count += x.shape[0]
    if power is None:
        raise ValueError("natural_spectrum got no images")
    mag = (power / count).sqrt()
    mag[(slice(None),) + (0,) * (mag.dim() - 1)] = 0.0
    return mag.float().numpy()


def _pink_spectrum(shape: tuple[int, ...]) -> torch.Tensor:
    """1/|f| magnitude (C, [T,] H, W//2+1) with DC = 0: the average natural-image spectrum."""
    spatial = shape[1:]
    grids = [torch.fft.fftfreq(n) for n in spatial[:-1]] + [torch.fft.rfftfreq(spatial[-1])]
    f = torch.sqrt(cast(torch.Tensor, sum(g.square() for g in torch.meshgrid(*grids, indexing="ij"))))
    mag = 1.0 / f.clamp(min=1.0 / max(spatial))
    mag[(0,) * mag.dim()] = 0.0
    return mag.expand(shape[0], *mag.shape).clone()


def _unit_rms(mag: torch.Tensor, last: int) -> torch.Tensor:
    """Scale a real-FFT magnitude so that its signal has RMS 1 over all channels (Parseval; channel ratios kept)."""
    weight = torch.full((mag.shape[-1],), 2.0, dtype=mag.dtype)
    weight[0] = 1.0
    if last % 2 == 0:
        weight[-1] = 1.0
    n = math.prod(mag.shape[1:-1]) * last
    rms = ((mag.square() * weight).sum() / (n**2 * mag.shape[0])).sqrt()
    if not rms > 0:
        raise ValueError("magnitude_spectrum is all zero")
    return mag / rms


def _gaussian_blur(g: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, [T,] H, W) over H and W (replicate padding)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=g.dtype, device=g.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    shape = g.shape
    x = F.pad(g.reshape(-1, 1, shape[-2], shape[-1]), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.reshape(1, 1, -1, 1))
    x = F.conv2d(x, kernel.reshape(1, 1, 1, -1))
    return x.reshape(shape)


def _project(x: torch.Tensor, norm: float | None) -> torch.Tensor:
    """Project each element of ``x`` (n, ...) onto the ball ``||x - mean(x)|| <= norm`` by shrinking its contrast
    about its mean.

    Differentiable; a convex combination of x and its mean, so values stay within [lo, hi].
    """
    if norm is None:
        return x
    dims = list(range(1, x.dim()))  # x: (n, C, [T,] H, W), one ball per element
    centre = x.mean(dim=dims, keepdim=True)
    d = x - centre
    length = d.square().sum(dim=dims, keepdim=True).sqrt()
    return centre + d * torch.clamp(norm / (length + 1e-12), max=1.0)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbours along H, W (and T for clips) of (C, [T,] H, W)."""
    return cast(torch.Tensor, sum(x.diff(dim=d).abs().mean() for d in range(1, x.dim())))


def _augment(x: torch.Tensor, batch: int, jitter: int, noise_std: float, gen: torch.Generator) -> torch.Tensor:
    """``batch`` copies of x, each a random crop of the reflect-padded input (shift <= jitter) plus noise."""
    copies = []
    h, w = x.shape[-2:]
    for _ in range(batch):
        y = x
        if jitter > 0:
            j = min(jitter, h - 1, w - 1)
            pad = F.pad(x.unsqueeze(0), (j, j, j, j) + ((0, 0) if x.dim() == 4 else ()), mode="reflect")[0]
            dy, dx = (int(v) for v in torch.randint(0, 2 * j + 1, (2,), generator=gen))
            y = pad[..., dy: dy + h, dx: dx + w]
        if noise_std > 0:
            y = y + noise_std * torch.randn(y.shape, generator=gen).to(y.device)
        copies.append(y)
    return torch.stack(copies)


def synthesize(
    model: nn.Module,
    layer: str,
    unit: int | None = None,
    channel: int | None = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Most (``sign=+1``, MEI) or least (``sign=-1``, LEI) exciting input of one ``unit`` (index in the flat
    channel-major unit order of ``layer``) or ``channel`` (its spatial map averaged), from ``seed``: exactly one of
    ``unit``/``channel``. ``options`` and the result are those of :func:`synthesize_many` (docs/reference.md §6).
    """
    if (unit is None) == (channel is None):
        raise ValueError("synthesize needs exactly one of unit (flat index) or channel")
    by, target = ("unit", unit) if unit is not None else ("channel", int(channel))  # type: ignore[arg-type]
    return synthesize_many(model, layer, [target], [seed], by=by, **options)[0]


def synthesize_many(
    model: nn.Module,
    layer: str,
    targets: Sequence[int],
    seeds: Sequence[int],
    by: str = "unit",
    sign: int = 1,
    input_shape: Sequence[int] = (3, 64, 64),
    param: str = "pixel",
    steps: int = 128,
    lr: float | None = None,
    device: str | torch.device = "cpu",
    magnitude_spectrum: np.ndarray | torch.Tensor | None = None,
    norm: float | None = None,
    tv_weight: float = 0.0,
    jitter: int = 2,
    noise_std: float = 0.01,
    blur_sigma: float = 1.0,
    batch: int = 1,
    lo: float = 0.0,
    hi: float = 1.0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    time_average: bool = True,
    signal: str = "output",
) -> list[dict[str, Any]]:
    """Most (``sign=+1``, MEI) or least (``sign=-1``, LEI) exciting inputs of several (target, seed) pairs at
    once (docs/reference.md §6): ``targets[i]`` is a unit (``by="unit"``: index in the flat channel-major unit order of
    ``layer``) or a channel (``by="channel"``: its spatial map averaged), optimised from ``seeds[i]``.

    Objective per pair: maximise ``sign x`` the mean response over ``batch`` augmented copies of its input,
    minus ``tv_weight x`` total variation.
    ``input_shape`` (3, H, W) gives an image, (3, T, H, W) a short movie.

    * ``param="pixel"``: ``x = sigmoid(p) (hi - lo) + lo``; SGD (``lr`` default 0.05, momentum 0.9)
      with cosine decay; the gradient of p is Gaussian-blurred over H, W (``blur_sigma``, 0 = off)
      and divided by its mean absolute value, so ``lr`` is the mean step per pixel whatever the
      model's gradient scale.
    * ``param="fourier"``: ``x = sigmoid(irfftn(M e^{i phase})) (hi - lo) + lo`` with M the fixed
      ``magnitude_spectrum`` (from :func:`natural_spectrum`, shape (3, [T,] H, W//2+1); default 1/|f|),
      scaled to unit RMS (over all channels), and a learnt phase; Adam (``lr`` default 1.0). For
      clips the spectrum is 3D (T, H, W).

    Each step: the input is projected onto ``||x - mean(x)||_2 <= norm`` (each pair's whole input; None = only
    the [lo, hi] box), randomly shifted by up to ``jitter`` pixels (a crop of the reflect-padded
    input) and given Gaussian noise ``noise_std``. ``transform`` maps [lo, hi] input to model input.
    ``signal``: the response optimised, the block output or its pre-activation (as screened, so that an MEI / LEI
    can be compared with the natural inputs' responses).

    One dict per pair: ``input`` (float32 array ``input_shape``, the projected input), ``trajectory`` (float64
    (steps,), signed mean response per step on the augmented batch) and ``activation`` (signed
    response to the clean final input).

    The pairs run as one batch through the model (in eval mode, so elements do not interact): each element keeps
    its own random stream (initialisation, jitter, noise), gradient normalisation, projection and total
    variation, and SGD / Adam act element-wise, so an element's result equals a run on its own (up to
    floating-point order). Tiny models and inputs are dominated by per-call overhead: 8 pairs cost about as much
    as one.
    """
    targets, seeds = [int(t) for t in targets], [int(s) for s in seeds]
    if by not in ("unit", "channel"):
        raise ValueError(f"by must be 'unit' or 'channel', got {by!r}")
    if not targets or len(targets) != len(seeds):
        raise ValueError(f"synthesize_many needs as many seeds as targets (>= 1), got {len(targets)} and {len(seeds)}")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 (MEI) or -1 (LEI), got {sign}")
    if param not in ("pixel", "fourier"):
        raise ValueError(f"param must be 'pixel' or 'fourier', got {param!r}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (C, T, H, W), got {input_shape}")
    if int(steps) < 1 or batch < 1 or jitter < 0 or noise_std < 0 or blur_sigma < 0 or tv_weight < 0:
        raise ValueError("synthesize needs steps >= 1, batch >= 1 and non-negative jitter/noise/blur/tv_weight")
    if norm is not None and norm <= 0:
        raise ValueError(f"norm must be positive or None, got {norm}")
    if not hi > lo:
        raise ValueError(f"pixel range needs hi > lo, got [{lo}, {hi}]")
    layer = check_layers(model, [layer])[0]
    n = len(targets)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    dims = tuple(range(1, len(shape)))
    if param == "pixel":
        p = torch.stack([0.01 * torch.randn(shape, generator=g) for g in gens]).to(device).requires_grad_(True)
        opt: torch.optim.Optimizer = torch.optim.SGD([p], lr=0.05 if lr is None else lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(steps))

        def render() -> torch.Tensor:
            return _project(lo + (hi - lo) * torch.sigmoid(p), norm)
    else:
        spec_shape = shape[:-1] + (shape[-1] // 2 + 1,)
        mag = _pink_spectrum(shape) if magnitude_spectrum is None else torch.as_tensor(magnitude_spectrum).float()
        if tuple(mag.shape) != spec_shape:
            raise ValueError(f"magnitude_spectrum shape {tuple(mag.shape)} does not fit input {shape}: "
                             f"expected {spec_shape}")
        mag = _unit_rms(mag.double(), shape[-1]).float().to(device)
        p = torch.stack([(torch.rand(spec_shape, generator=g) * 2 - 1) * math.pi for g in gens])
        p = p.to(device).requires_grad_(True)
        opt = torch.optim.Adam([p], lr=1.0 if lr is None else lr)
        sched = None

        def render() -> torch.Tensor:
            signal = torch.fft.irfftn(torch.polar(mag.expand_as(p), p), s=shape[1:], dim=[d + 1 for d in dims])
            return _project(lo + (hi - lo) * torch.sigmoid(signal), norm)

    def responses(x: torch.Tensor, copies: int, taps: FeatureTaps) -> torch.Tensor:
        """(n,) mean response of each element's target over its ``copies`` rows of x (n * copies, ...)."""
        forward_to_layers(model, taps, [layer], transform(x) if transform is not None else x)
        out = taps.flat(layer) if by == "unit" else taps.outputs[layer]
        bad = [t for t in targets if not 0 <= t < out.shape[1]]
        if bad:
            raise ValueError(f"{by} {bad[0]} outside 0..{out.shape[1] - 1} of layer {layer}")
        rows = torch.arange(len(x), device=out.device)
        picked = out[rows, torch.tensor(targets, device=out.device).repeat_interleave(copies)]
        return picked.reshape(n, -1).mean(1)

    trajectory = []
    model.to(device)
    with eval_mode(model), tap_layers(model, [layer], time_average, signal) as taps:
        for _ in range(int(steps)):
            x = render()
            acts = responses(torch.cat([_augment(x[i], batch, jitter, noise_std, gens[i]) for i in range(n)]), batch,
                             taps)
            loss = -sign * acts.sum()
            if tv_weight > 0:
                loss = loss + tv_weight * sum(_total_variation(x[i]) for i in range(n))
            (grad,) = torch.autograd.grad(loss, p)
            if param == "pixel":
                if blur_sigma > 0:
                    grad = _gaussian_blur(grad, blur_sigma)
                grad = grad / (grad.abs().mean(dim=[d + 1 for d in dims], keepdim=True) + 1e-12)  # mean step = lr
            p.grad = grad
            opt.step()
            if sched is not None:
                sched.step()
            trajectory.append(acts.detach().cpu().double())
        with torch.no_grad():
            x = render()
            finals = responses(x, 1, taps).cpu().tolist()
    traj = torch.stack(trajectory, dim=1).numpy()
    return [{"input": x[i].detach().cpu().numpy().astype(np.float32), "trajectory": traj[i], "activation": finals[i]}
            for i in range(n)]
