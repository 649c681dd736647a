"""Self-supervised augmentations (SimCLR for images, the same per clip for video), batched in pure torch.

All random draws come from one ``torch.Generator`` so a run is reproducible; the work runs on the input's device.
Per view and sample: random resized crop (area 0.2-1, aspect 3/4-4/3) and horizontal flip as one affine
``grid_sample``; colour jitter with probability 0.8 (SimCLR strength s: brightness, contrast, saturation 0.8 s,
hue 0.2 s, applied in this fixed order); grayscale with probability 0.2; then mean/std normalisation. For clips
the frames of one view share all spatial and colour parameters; the two views differ, and each view starts at
its own random frame (temporal jitter). SimCLR's Gaussian blur is left out (small inputs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Normalisation of images (ImageNet statistics, as torchvision's ResNet presets).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
#: Normalisation of clips (Kinetics statistics, as torchvision's video presets).
VIDEO_MEAN = (0.43216, 0.394666, 0.37645)
VIDEO_STD = (0.22803, 0.22145, 0.216989)

_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


class AugmentInputError(ValueError):
    """A batch that is not uint8 with a trailing RGB axis, or too short for the requested clip length."""


def _check(batch: Tensor | np.ndarray, ndim: int, what: str) -> Tensor:
    x = torch.as_tensor(batch)
    if x.dtype != torch.uint8 or x.ndim != ndim or x.shape[-1] != 3:
        raise AugmentInputError(
            f"{what} must be uint8 with shape {'(B, H, W, 3)' if ndim == 4 else '(B, T, H, W, 3)'}, "
            f"got {x.dtype} {tuple(x.shape)}"
        )
    return x


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=dev).to(device)


def _uniform(b: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return lo + (hi - lo) * _rand((b,), generator, device)


def _gray(x: Tensor) -> Tensor:
    """ITU-R 601 luma of (B, 3, ...) -> (B, 1, ...)."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0.0, 1.0)


def _per_sample(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a (B,) vector to broadcast over the other dims of ``x``."""
    return v.view(-1, *([1] * (x.ndim - 1)))


def _crop_flip(x: Tensor, size: int, generator: torch.Generator | None, scale: tuple[float, float]) -> Tensor:
    """Random resized crop + horizontal flip of (B, C, H, W) to (B, C, size, size) via one affine grid_sample.

    The crop covers a fraction ``U(scale)`` of the area with aspect ratio log-uniform in [3/4, 4/3] (torchvision's
    RandomResizedCrop); sides that would exceed the image are clamped to it instead of re-drawn.
    """
    b, _, h, w = x.shape
    dev = x.device
    if min(h, w) > 2 * size:  # antialiased pre-shrink so that bilinear sampling does not alias
        f = 2 * size / min(h, w)
        x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="bilinear", antialias=True)
    area = _uniform(b, scale[0], scale[1], generator, dev)
    ratio = torch.exp(_uniform(b, math.log(3 / 4), math.log(4 / 3), generator, dev))
    fw = torch.sqrt(area * ratio * h / w).clamp(max=1.0)  # crop width as a fraction of the image width
    fh = torch.sqrt(area / ratio * w / h).clamp(max=1.0)
    cx = (2 * _rand((b,), generator, dev) - 1) * (1 - fw)  # crop centre in [-1, 1] coordinates
    cy = (2 * _rand((b,), generator, dev) - 1) * (1 - fh)
    flip = torch.where(_rand((b,), generator, dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = fw * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = fh, cy
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _colour(x: Tensor, generator: torch.Generator | None, strength: float) -> Tensor:
    """SimCLR colour distortion of (B, 3, ...) in [0, 1]: jitter with p 0.8, then grayscale with p 0.2.

    Hue is shifted by rotating the chroma plane of YIQ space by ``2 pi h`` (a close, cheap stand-in for the HSV
    hue shift of torchvision).
    """
    b, dev = x.shape[0], x.device
    on = _rand((b,), generator, dev) < 0.8
    s = 0.8 * strength

    def factor(lo: float, hi: float) -> Tensor:
        return torch.where(on, _uniform(b, lo, hi, generator, dev), torch.ones(b, device=dev))

    lo = max(0.0, 1.0 - s)
    bright, contrast, sat = factor(lo, 1 + s), factor(lo, 1 + s), factor(lo, 1 + s)
    hue = torch.where(on, _uniform(b, -0.2 * strength, 0.2 * strength, generator, dev), torch.zeros(b, device=dev))
    x = (x * _per_sample(bright, x)).clamp(0.0, 1.0)
    mean = _gray(x).mean(dim=(-2, -1), keepdim=True)
    x = ((x - mean) * _per_sample(contrast, x) + mean).clamp(0.0, 1.0)
    g = _gray(x)
    x = ((x - g) * _per_sample(sat, x) + g).clamp(0.0, 1.0)
    angle = 2 * math.pi * hue
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(b, 3, 3, device=dev)
    rot[:, 0, 0], rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = 1.0, cos, -sin, sin, cos
    yiq = _RGB2YIQ.to(dev)
    mat = torch.linalg.inv(yiq) @ rot @ yiq  # (B, 3, 3)
    x = torch.einsum("bij,bj...->bi...", mat, x).clamp(0.0, 1.0)
    gray = _rand((b,), generator, dev) < 0.2
    return torch.where(_per_sample(gray, x), _gray(x).expand_as(x), x)


def normalize(x: Tensor) -> Tensor:
    """Normalise float model input in [0, 1], channel-first: images (B, 3, H, W) with the image statistics, clips
    (B, 3, T, H, W) with the video statistics, exactly as the training views (a store's items: ``normalize(tdann.stores.as_model_input(...))``). Differentiable
    (stimulus synthesis optimises through it)."""
    if x.ndim == 4 and x.shape[1] == 3:
        return _normalise(x, IMAGE_MEAN, IMAGE_STD)
    if x.ndim == 5 and x.shape[1] == 3:
        return _normalise(x, VIDEO_MEAN, VIDEO_STD)
    raise AugmentInputError(f"normalize expects (B, 3, H, W) or (B, 3, T, H, W), got {tuple(x.shape)}")


def _normalise(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    shape = (1, 3) + (1,) * (x.ndim - 2)
    m = torch.tensor(mean, device=x.device).view(shape)
    sd = torch.tensor(std, device=x.device).view(shape)
    return (x - m) / sd


def _view(
    frames: Tensor, size: int, generator: torch.Generator | None, strength: float, scale: tuple[float, float]
) -> Tensor:
    """One augmented view of uint8 (B, L, H, W, 3) -> float (B, 3, L, size, size); all frames share parameters."""
    b, n, h, w, _ = frames.shape
    x = frames.permute(0, 4, 1, 2, 3).float().div_(255.0)  # (B, 3, L, H, W)
    x = _crop_flip(x.reshape(b, 3 * n, h, w), size, generator, scale).reshape(b, 3, n, size, size)
    return _colour(x, generator, strength)


def image_views(
    batch: Tensor | np.ndarray,
    size: int,
    generator: torch.Generator | None = None,
    strength: float = 1.0,
    scale: tuple[float, float] = (0.2, 1.0),
) -> tuple[Tensor, Tensor]:
    """Two SimCLR views of uint8 images (B, H, W, 3): float (B, 3, size, size) each, ImageNet-normalised."""
    x = _check(batch, 4, "images").unsqueeze(1)
    views = [_view(x, size, generator, strength, scale).squeeze(2) for _ in range(2)]
    return _normalise(views[0], IMAGE_MEAN, IMAGE_STD), _normalise(views[1], IMAGE_MEAN, IMAGE_STD)


def clip_views(
    clips: Tensor | np.ndarray,
    clip_len: int,
    size: int,
    generator: torch.Generator | None = None,
    strength: float = 1.0,
    scale: tuple[float, float] = (0.2, 1.0),
) -> tuple[Tensor, Tensor]:
    """Two views of uint8 clips (B, T, H, W, 3): float (B, 3, clip_len, size, size) each, Kinetics-normalised.

    Each view takes ``clip_len`` consecutive frames from its own random start (temporal jitter between views);
    crop, flip, colour and grayscale are the same for all frames of a view and drawn anew for the other view.
    """
    x = _check(clips, 5, "clips")
    b, t = x.shape[:2]
    if not 1 <= clip_len <= t:
        raise AugmentInputError(f"clip_len {clip_len} does not fit clips of {t} frames")
    views = []
    for _ in range(2):
        start = (_rand((b,), generator, x.device) * (t - clip_len + 1)).long().clamp(max=t - clip_len)
        idx = start[:, None] + torch.arange(clip_len, device=x.device)
        frames = x[torch.arange(b, device=x.device)[:, None], idx]  # (B, clip_len, H, W, 3)
        views.append(_normalise(_view(frames, size, generator, strength, scale), VIDEO_MEAN, VIDEO_STD))
    return views[0], views[1]
