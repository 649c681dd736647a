"""Random-dot kinematograms: direction x coherence x speed, limited-lifetime dots."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._checks import StimulusError, _check_count, _check_positive_list, _check_size, _unit

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    pass


def _rdk_positions(
    size: int, frames: int, n_dots: int, direction: float, coherence: float, speed: float,
    lifetime: int | None, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dot centres (T, n, 2) as (x = column, y = row) pixels, the signal mask (n,) and a born-this-frame mask (T, n).

    Exactly ``round(coherence * n)`` dots are signal dots (fixed identities) and move ``speed`` pixels per frame in
    ``direction``; the others move at the same speed in their own random direction, redrawn when they respawn
    ("random direction" noise). Positions wrap around the image. With a finite ``lifetime`` each dot lives that many
    frames (initial ages staggered uniformly) and then respawns at a random position.
    """
    n_signal = int(round(coherence * n_dots))
    signal = np.zeros(n_dots, dtype=bool)
    signal[rng.permutation(n_dots)[:n_signal]] = True
    # image y is up, rows go down: a motion of +dy (up) decreases the row
    dx, dy = _unit(direction)
    signal_step = np.array([dx, -dy]) * speed

    def noise_steps(k: int) -> np.ndarray:
        ang = rng.uniform(0, 2 * np.pi, k)
        return np.stack([np.cos(ang), -np.sin(ang)], axis=1) * speed

    pos = rng.uniform(0, size, (n_dots, 2))
    step = np.where(signal[:, None], signal_step[None], noise_steps(n_dots))
    age = rng.integers(0, lifetime, n_dots) if lifetime else np.zeros(n_dots, dtype=int)
    out = np.empty((frames, n_dots, 2))
    born = np.zeros((frames, n_dots), dtype=bool)
    for t in range(frames):
        if t > 0:
            pos = (pos + step) % size
            age += 1
            if lifetime:
                dead = age >= lifetime
                if dead.any():
                    k = int(dead.sum())
                    pos[dead] = rng.uniform(0, size, (k, 2))
                    age[dead] = 0
                    step[dead & ~signal] = noise_steps(int((dead & ~signal).sum()))
                    born[t] = dead
        out[t] = pos
    return out, signal, born


def _render_dots(centres: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Anti-aliased white disks on black at pixel centres, wrapping around the borders. centres: (n, 2) (x, y)."""
    frame = np.zeros((size, size), dtype=np.float32)
    reach = int(np.ceil(radius + 1))
    offs = np.arange(-reach, reach + 1)
    base = np.floor(centres).astype(int)  # (n, 2)
    cols = base[:, 0, None, None] + offs[None, None, :]  # (n, 1, k)
    rows = base[:, 1, None, None] + offs[None, :, None]  # (n, k, 1)
    dist = np.hypot(cols - centres[:, 0, None, None], rows - centres[:, 1, None, None])
    cover = np.clip(radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    rr = np.broadcast_to(rows % size, cover.shape).ravel()
    cc = np.broadcast_to(cols % size, cover.shape).ravel()
    np.maximum.at(frame, (rr, cc), cover.ravel())
    return frame


def random_dots(
    size: int,
    frames: int,
    directions: int = 16,
    coherences: Sequence[float] = (1.0, 0.5),
    speeds: Sequence[float] = (1.0, 2.0, 4.0),
    density: float = 0.02,
    dot_radius: float = 1.0,
    lifetime: int | None = 8,
    seed: int = 0,
    repeats: int = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Random-dot kinematograms, (N, 3, T, H, W), N = directions x coherences x speeds x repeats. ``repeats`` draws
    of new dots per condition (column ``repeat``), so that a linear probe of direction can be trained on some dot
    patterns and tested on others (tuning curves average over them). White anti-aliased dots (radius ``dot_radius``
    px) on black. ``density`` in dots per pixel (n_dots = max(1, round(density * size**2))). A fraction
    ``coherence`` of the dots (fixed identities) moves ``speed`` pixels per frame in ``direction`` (deg, 0 = right,
    90 = up); the rest move at the same speed in random directions. Dots wrap around the borders; each lives
    ``lifetime`` frames (None = forever) and then respawns at a random position. Every clip draws its own dots from
    ``seed`` and its row index.
    Columns: direction (deg), coherence, speed (pixels/frame), n_dots, repeat.
    """
    size = _check_size(size)
    frames = _check_count(frames, "frames")
    n_dir = _check_count(directions, "directions")
    speed_list = _check_positive_list(speeds, "speeds", upper=size / 2)
    coh_list = [float(c) for c in coherences]
    if not coh_list or any(not 0 <= c <= 1 for c in coh_list):
        raise StimulusError(f"coherences must be a non-empty list of values in [0, 1], got {coherences!r}")
    if not density > 0:
        raise StimulusError(f"density must be > 0 dots per pixel, got {density!r}")
    if not 0 < dot_radius < size / 4:
        raise StimulusError(f"dot_radius must be in (0, size / 4) pixels, got {dot_radius!r}")
    if lifetime is not None:
        lifetime = _check_count(lifetime, "lifetime")
    n_dots = max(1, int(round(density * size * size)))
    clips: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    n_rep = _check_count(repeats, "repeats")
    for direction in np.arange(n_dir) * 360.0 / n_dir:
        for coherence, speed, rep in itertools.product(coh_list, speed_list, range(n_rep)):
            rng = np.random.default_rng([seed, len(rows)])
            pos, _, _ = _rdk_positions(size, frames, n_dots, direction, coherence, speed, lifetime, rng)
            clip = np.stack([_render_dots(p, size, dot_radius) for p in pos])
            clips.append(np.broadcast_to(clip[None], (3,) + clip.shape))
            rows.append({"direction": float(direction), "coherence": coherence, "speed": speed, "n_dots": n_dots,
                         "repeat": rep})
    return np.stack(clips).astype(np.float32), pd.DataFrame(rows)
