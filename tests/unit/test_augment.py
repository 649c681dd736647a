"""Tests of tdann.augment: shapes, normalisation, crop/flip geometry, colour statistics, clip consistency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tdann.augment import (
    IMAGE_MEAN,
    IMAGE_STD,
    VIDEO_MEAN,
    VIDEO_STD,
    AugmentInputError,
    clip_views,
    image_views,
    normalize,
)
from tdann.stores import as_model_input


def to_input(batch, size=None):
    """Store items as the screening feeds them to a network: model input at ``size`` (area), normalised."""
    x = np.asarray(batch)
    native = x.shape[-2]
    return normalize(torch.from_numpy(as_model_input(x, size or native, x.shape[1] if x.ndim == 5 else 1)))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unnorm(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    shape = (1, 3) + (1,) * (x.ndim - 2)
    return x * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)


def test_to_input_layout_and_normalisation() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(2, 6, 6, 3), dtype=np.uint8)
    x = to_input(imgs)
    assert x.shape == (2, 3, 6, 6) and x.dtype == torch.float32
    expected = (imgs[1, 4, 2, 0] / 255 - IMAGE_MEAN[0]) / IMAGE_STD[0]
    assert float(x[1, 0, 4, 2]) == pytest.approx(expected, rel=1e-5)
    clips = rng.integers(0, 256, size=(2, 4, 6, 6, 3), dtype=np.uint8)
    c = to_input(clips)
    assert c.shape == (2, 3, 4, 6, 6)
    expected = (clips[0, 3, 1, 5, 2] / 255 - VIDEO_MEAN[2]) / VIDEO_STD[2]
    assert float(c[0, 2, 3, 1, 5]) == pytest.approx(expected, rel=1e-5)
    assert to_input(clips, size=8).shape == (2, 3, 4, 8, 8)


def test_bad_inputs_raise() -> None:
    with pytest.raises(AugmentInputError, match="uint8"):
        image_views(np.zeros((2, 8, 8, 3), dtype=np.float32), 4, _gen())
    with pytest.raises(AugmentInputError, match="uint8"):
        image_views(np.zeros((2, 3, 8, 8), dtype=np.uint8), 4, _gen())
    with pytest.raises(AugmentInputError, match="clip_len 9"):
        clip_views(np.zeros((2, 8, 8, 8, 3), dtype=np.uint8), 9, 4, _gen())
    with pytest.raises(ValueError):
        normalize(torch.zeros(8, 8, 3))


def test_image_views_shapes_and_seeding() -> None:
    imgs = torch.randint(0, 256, (4, 40, 50, 3), dtype=torch.uint8, generator=_gen(1))
    v1, v2 = image_views(imgs, 24, _gen(7))
    assert v1.shape == v2.shape == (4, 3, 24, 24) and v1.dtype == torch.float32
    w1, _ = image_views(imgs, 24, _gen(7))
    u1, _ = image_views(imgs, 24, _gen(8))
    assert torch.equal(v1, w1) and not torch.equal(v1, u1) and not torch.equal(v1, v2)
    raw = _unnorm(v1, IMAGE_MEAN, IMAGE_STD)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_crops_are_flipped_in_about_half_the_samples_never_vertically() -> None:
    """On a ramp image (red = x, green = y) every view is monotone in y; in x it falls in ~half (flips)."""
    h = w = 32
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    img = np.stack([xs * 8, ys * 8, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    batch = np.repeat(img[None], 200, axis=0)
    v, _ = image_views(batch, 16, _gen(2), strength=0.0)
    raw = _unnorm(v, IMAGE_MEAN, IMAGE_STD)
    lum = raw.mean(dim=1)  # robust to grayscale (a positive mix of the two ramps)
    dy = (lum[:, -1, :] - lum[:, 0, :]).mean(dim=1)
    dx = (lum[:, :, -1] - lum[:, :, 0]).mean(dim=1)
    assert (dy > 0).all()
    flipped = int((dx < 0).sum())
    assert 70 <= flipped <= 130
    full = raw[:, 0].amax(dim=(1, 2)) - raw[:, 0].amin(dim=(1, 2))  # crop width in ramp units
    assert full.min() < 0.6 and full.max() > 0.8  # crops of different sizes (area 0.2-1)


def test_colour_jitter_and_grayscale_rates() -> None:
    colour = np.array([200, 60, 40], dtype=np.uint8)
    batch = np.broadcast_to(colour, (400, 8, 8, 3)).copy()
    v, _ = image_views(batch, 8, _gen(3))
    raw = _unnorm(v, IMAGE_MEAN, IMAGE_STD)[:, :, 4, 4]  # (B, 3)
    gray = (raw.amax(dim=1) - raw.amin(dim=1)) < 1e-5
    untouched = (raw - torch.tensor(colour / 255.0, dtype=torch.float32)).abs().amax(dim=1) < 1e-5
    assert 0.12 <= float(gray.float().mean()) <= 0.28  # p = 0.2
    assert 0.10 <= float(untouched.float().mean()) <= 0.23  # no jitter (0.2) and no grayscale (0.8): 0.16
    mean_level = raw.mean(dim=1)
    assert float(mean_level.std()) > 0.05  # brightness / contrast vary between samples


def test_clip_views_share_parameters_across_frames() -> None:
    frame = torch.randint(0, 256, (3, 24, 24, 3), dtype=torch.uint8, generator=_gen(4))
    clips = frame[:, None].expand(3, 10, 24, 24, 3).contiguous()  # static clips
    v1, v2 = clip_views(clips, 6, 16, _gen(5))
    assert v1.shape == v2.shape == (3, 3, 6, 16, 16)
    assert torch.equal(v1, v1[:, :, :1].expand_as(v1))  # every frame of a view augmented identically
    assert torch.equal(v2, v2[:, :, :1].expand_as(v2))
    assert not torch.allclose(v1[:, :, 0], v2[:, :, 0])  # the two views differ


def test_clip_views_temporal_offsets() -> None:
    b, t, n = 64, 12, 5
    clips = (torch.arange(t, dtype=torch.uint8) * 20).view(1, t, 1, 1, 1).expand(b, t, 8, 8, 3).contiguous()
    v1, v2 = clip_views(clips, n, 8, _gen(6), strength=0.0)  # no colour jitter: frame value encodes its index

    def starts(v: torch.Tensor) -> torch.Tensor:
        idx = torch.round(_unnorm(v, VIDEO_MEAN, VIDEO_STD)[:, 0, :, 4, 4] * 255 / 20).long()  # (B, n)
        assert torch.equal(idx - idx[:, :1], torch.arange(n).expand(b, n))  # consecutive frames
        return idx[:, 0]

    s1, s2 = starts(v1), starts(v2)
    assert s1.min() >= 0 and s1.max() <= t - n and s2.max() <= t - n
    assert (s1 != s2).float().mean() > 0.5  # temporal jitter between views
    assert len(set(s1.tolist())) == t - n + 1  # every offset is used


def test_normalize_matches_to_input_and_is_differentiable() -> None:
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(2, 6, 6, 3), dtype=np.uint8)
    x = torch.tensor(imgs).permute(0, 3, 1, 2).float().div(255).requires_grad_(True)
    torch.testing.assert_close(normalize(x), to_input(imgs))
    normalize(x).sum().backward()
    assert torch.allclose(x.grad[:, 0], torch.full_like(x.grad[:, 0], 1 / IMAGE_STD[0]))
    clips = rng.integers(0, 256, size=(2, 4, 6, 6, 3), dtype=np.uint8)
    c = torch.tensor(clips).permute(0, 4, 1, 2, 3).float().div(255)
    torch.testing.assert_close(normalize(c), to_input(clips))
    with pytest.raises(ValueError, match="normalize"):
        normalize(torch.zeros(2, 1, 5, 5))
