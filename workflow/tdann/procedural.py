"""Procedural natural-image statistics: dead-leaves images, a known good self-supervised training source.

Dead leaves (Lee, Mumford & Huang, IJCV 2001) are opaque disks dropped one on top of another, with radii drawn from
``p(r) ~ r^-3`` between ``r_min`` and ``r_max``: the model reproduces the scale invariance, the 1/f^2 power
spectrum and the occlusion edges of natural images. Baradad et al. (NeurIPS 2021, "Learning to see by looking at
noise") found contrastive learning on such images gives features that transfer to natural images far better than
other noise. Here they multiply the distinct training instances that a laptop-scale store holds: the packaged photos
and videos give 15-20 source files, so SimCLR's instance discrimination has too few distinct images to learn from.
"""

from __future__ import annotations

import numpy as np


def _radii(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    """``n`` radii from ``p(r) ~ r^-3`` on [r_min, r_max] by inverting the CDF of ``r^-2``."""
    u = rng.random(n)
    a, b = r_min ** -2.0, r_max ** -2.0
    return (a - u * (a - b)) ** -0.5


def dead_leaves(size: int, rng: np.random.Generator, r_min: float = 1.0, r_max: float | None = None,
                max_disks: int = 5000, supersample: int = 2) -> np.ndarray:
    """One dead-leaves image, (size, size, 3) uint8.

    Disks are laid front to back (each one fills only pixels that no nearer disk covers) until the image is covered
    or ``max_disks`` were drawn; any uncovered pixel keeps a mid-grey background. Positions are uniform over a
    border-padded square (so disks cut by the edge are as likely as inside ones), colours are a random grey level
    mixed with a random hue at a random saturation (natural images are mostly desaturated). Rendered at
    ``supersample`` times the resolution and box-filtered down (anti-aliased edges). ``r_max`` defaults to the side.
    """
    if size < 4 or r_min <= 0 or supersample < 1:
        raise ValueError(f"dead_leaves: need size >= 4, r_min > 0, supersample >= 1; got {size}, {r_min}, "
                         f"{supersample}")
    r_max = float(size) if r_max is None else float(r_max)
    if r_max <= r_min:
        raise ValueError(f"dead_leaves: r_max {r_max} must exceed r_min {r_min}")
    s = int(supersample)
    side = size * s
    img = np.full((side, side, 3), 0.5, dtype=np.float32)
    free = np.ones((side, side), dtype=bool)
    n_free = free.size
    radii = _radii(rng, max_disks, r_min, r_max) * s
    centres = rng.uniform(-0.1 * side, 1.1 * side, size=(max_disks, 2))
    grey = rng.random(max_disks)
    hue = rng.random((max_disks, 3))
    sat = rng.random(max_disks) ** 2 * 0.6
    colours = (1 - sat)[:, None] * grey[:, None] + sat[:, None] * hue
    for i in range(max_disks):
        r = radii[i]
        cx, cy = centres[i]
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, side)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, side)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        inside = ((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r) & free[y0:y1, x0:x1]
        k = int(inside.sum())
        if k == 0:
            continue
        img[y0:y1, x0:x1][inside] = colours[i]
        free[y0:y1, x0:x1][inside] = False
        n_free -= k
        if n_free == 0:
            break
    if s > 1:
        img = img.reshape(size, s, size, s, 3).mean(axis=(1, 3))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def dead_leaves_set(n: int, size: int, seed: int, **kw) -> np.ndarray:
    """``n`` dead-leaves images (n, size, size, 3) uint8; image ``i`` depends only on ``(seed, i)``."""
    return np.stack([dead_leaves(size, np.random.default_rng([int(seed), 0xDEAD, i]), **kw) for i in range(int(n))])
