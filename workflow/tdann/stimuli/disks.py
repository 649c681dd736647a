"""Moving disks at several speeds: the events the spiking speed channels answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._checks import StimulusError, _check_count, _check_positive_list, _check_size, _unit

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    import torch


def moving_disks(
    size: int = 50,
    steps: int = 500,
    speeds: Sequence[float] = (0.5, 1.0, 2.0),
    radius: float = 4.0,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, torch.Tensor]:
    """Event stream of a disk moving at different speeds (docs/reference.md §7: 50x50 px, 500 steps, 3 speeds).

    The ``steps`` time steps are split into ``len(speeds) * repeats`` equal segments (the last takes the remainder),
    one speed each in a seed-shuffled order. In each segment one binary disk of ``radius`` px starts at a random
    position and moves ``speed`` pixels per step in a random direction, reflecting off the borders (so its centre
    moves exactly ``speed`` px per step except at a bounce).
    Returns a dict of tensors:
    - ``frames``: (steps, H, W) float 0/1, the disk at each step (row = y, column = x);
    - ``events``: (n_events, 3) float rows (t, x, y) of on-events, i.e. pixels that are on at step t and were off at
      t - 1 (all on pixels at t = 0), sorted by t; x = column, y = row;
    - ``centers``: (steps, 2) float disk centre (x, y) in pixels;
    - ``speed``: (n_segments,) float speed label of each segment (pixels/step);
    - ``segments``: (n_segments, 2) long [start, stop) step of each segment;
    - ``speed_per_step``: (steps,) float speed label of every step.
    """
    import torch

    size = _check_size(size)
    steps = _check_count(steps, "steps")
    repeats = _check_count(repeats, "repeats")
    if not 0 < radius < size / 4:
        raise StimulusError(f"radius must be in (0, size / 4) pixels, got {radius!r}")
    lo, hi = radius, size - 1 - radius
    speed_list = _check_positive_list(speeds, "speeds", upper=hi - lo)
    n_seg = len(speed_list) * repeats
    if steps < 2 * n_seg:
        raise StimulusError(f"steps ({steps}) must be at least 2 per segment ({n_seg} segments)")
    rng = np.random.default_rng(seed)
    seg_speeds = rng.permutation(np.repeat(speed_list, repeats))
    bounds = np.linspace(0, steps, n_seg + 1).astype(int)
    centres = np.empty((steps, 2))
    for k in range(n_seg):
        pos = rng.uniform(lo, hi, 2)
        vel = seg_speeds[k] * np.array(_unit(rng.uniform(0, 360)))
        for t in range(bounds[k], bounds[k + 1]):
            centres[t] = pos
            pos = pos + vel
            for d in range(2):  # reflect off the walls
                if pos[d] > hi:
                    pos[d], vel[d] = 2 * hi - pos[d], -vel[d]
                elif pos[d] < lo:
                    pos[d], vel[d] = 2 * lo - pos[d], -vel[d]
    yy, xx = np.mgrid[0:size, 0:size]
    frames = (xx[None] - centres[:, 0, None, None]) ** 2 + (yy[None] - centres[:, 1, None, None]) ** 2 <= radius**2
    on = frames.copy()
    on[1:] &= ~frames[:-1]
    t_idx, rows_idx, cols_idx = np.nonzero(on)
    events = np.stack([t_idx, cols_idx, rows_idx], axis=1)
    per_step = np.repeat(seg_speeds, np.diff(bounds))
    return {
        "frames": torch.from_numpy(frames.astype(np.float32)),
        "events": torch.from_numpy(events.astype(np.float32)),
        "centers": torch.from_numpy(centres.astype(np.float32)),
        "speed": torch.from_numpy(seg_speeds.astype(np.float32)),
        "segments": torch.from_numpy(np.stack([bounds[:-1], bounds[1:]], axis=1).astype(np.int64)),
        "speed_per_step": torch.from_numpy(per_step.astype(np.float32)),
    }
