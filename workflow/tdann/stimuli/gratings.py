"""Static gratings (orientation x spatial frequency x phase x colour) and drifting gratings."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._checks import (
    StimulusError,
    _check_contrast,
    _check_count,
    _check_positive_list,
    _check_size,
    _image_coords,
    _unit,
)

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    pass


# Colour variants of a grating: channel weights of the modulation (R, G, B) around mid-gray.
# "red_green" and "blue_yellow" are colour-opponent variants (not calibrated for isoluminance); the original set
# uses two colours, black / white ("gray") and red / cyan ("red_cyan") (docs/reference.md §3). The config schema lists
# these names (a typo stops the dry run).
GRATING_COLOURS = {
    "gray": (1.0, 1.0, 1.0),
    "red_green": (1.0, -1.0, 0.0),
    "red_cyan": (1.0, -1.0, -1.0),  # the published set's colour gratings (docs/reference.md §3)
    "blue_yellow": (-1.0, -1.0, 1.0),
}


def _colourise(modulation: np.ndarray, colour: str, contrast: float) -> np.ndarray:
    """(..., H, W) modulation in [-1, 1] -> (3, ..., H, W) RGB in [0, 1] around mid-gray."""
    if colour not in GRATING_COLOURS:
        raise StimulusError(f"unknown grating colour {colour!r}; choose from {sorted(GRATING_COLOURS)}")
    w = np.asarray(GRATING_COLOURS[colour], dtype=np.float32).reshape((3,) + (1,) * modulation.ndim)
    return (0.5 + 0.5 * contrast * w * modulation[None]).astype(np.float32)


def gratings(
    size: int,
    orientations: int = 16,
    sfs: Sequence[float] = (2.0, 4.0, 8.0),
    phases: int = 5,
    colours: Sequence[str] = ("gray",),
    contrast: float = 1.0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Static full-field sine gratings, (N, 3, H, W), N = orientations x sfs x phases x colours.

    The original TDANN set (docs/reference.md §3) is 8 orientations x 8 SFs x 5 phases x 2 colours = 640.
    ``orientations`` evenly spaced bar orientations in [0, 180) deg (0 = horizontal bars, counter-clockwise, see the
    module docstring); ``sfs`` in cycles per image (must stay below the Nyquist limit size / 2); ``phases`` evenly
    spaced in [0, 2 pi); ``colours`` from :data:`GRATING_COLOURS` ("gray" plus colour-opponent variants).
    Luminance: ``0.5 + 0.5 * contrast * sin(2 pi sf (x . n) + phase)``, with n the unit normal to the bars
    (n points at orientation + 90 deg) and x in image widths from the image centre.
    Columns: orientation (deg), sf (cycles/image), phase (rad), colour.
    """
    size = _check_size(size)
    n_ori = _check_count(orientations, "orientations")
    n_ph = _check_count(phases, "phases")
    sf_list = _check_positive_list(sfs, "sfs", upper=size / 2)
    contrast = _check_contrast(contrast)
    if isinstance(colours, str) or not colours:
        raise StimulusError(f"colours must be a non-empty list of names, got {colours!r}")
    x, y = _image_coords(size)
    images, rows = [], []
    for colour in colours:
        for ori in np.arange(n_ori) * 180.0 / n_ori:
            nx, ny = _unit(ori + 90.0)
            proj = x * nx + y * ny
            for sf in sf_list:
                for phase in np.arange(n_ph) * 2 * np.pi / n_ph:
                    images.append(_colourise(np.sin(2 * np.pi * sf * proj + phase), colour, contrast))
                    rows.append({"orientation": float(ori), "sf": sf, "phase": float(phase), "colour": colour})
    return np.stack(images), pd.DataFrame(rows)


def drifting_gratings(
    size: int,
    frames: int,
    directions: int = 16,
    sfs: Sequence[float] = (2.0, 4.0),
    tfs: Sequence[float] = (1.0, 2.0, 4.0),
    contrast: float = 1.0,
    phases: int = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Drifting sine gratings as clips, (N, 3, T, H, W), N = directions x sfs x tfs x phases.

    ``phases`` start phases evenly spaced in [0, 2 pi): repeats of every condition that a linear probe of direction
    can be trained on one phase and tested on another (tuning curves average over them).

    ``directions`` evenly spaced in [0, 360) deg: the direction of motion (0 = rightward, 90 = upward),
    perpendicular to the bars. ``sfs`` in cycles per image. ``tfs`` in **cycles per clip** (temporal cycles over the
    ``frames`` frames; an integer tf makes the clip loop seamlessly); the phase step per frame is 2 pi tf / frames and
    must stay below pi (tf < frames / 2) to avoid temporal aliasing.
    Luminance at frame t: ``0.5 + 0.5 * contrast * sin(2 pi (sf (x . d) - tf t / frames) + phase)`` with d the
    unit motion vector, so the bars move along d.
    Columns: phase (rad), direction (deg), orientation (bar orientation, = (direction + 90) mod 180, same convention as
    :func:`gratings`), axis (motion axis, = direction mod 180), sf (cycles/image), tf (cycles/clip),
    tf_per_frame (cycles/frame), speed (= tf_per_frame / sf, image widths per frame), speed_px (pixels per frame).
    """
    size = _check_size(size)
    frames = _check_count(frames, "frames")
    n_dir = _check_count(directions, "directions")
    sf_list = _check_positive_list(sfs, "sfs", upper=size / 2)
    tf_list = _check_positive_list(tfs, "tfs", upper=frames / 2)
    contrast = _check_contrast(contrast)
    n_ph = _check_count(phases, "phases")
    x, y = _image_coords(size)
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    clips: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    for direction in np.arange(n_dir) * 360.0 / n_dir:
        dx, dy = _unit(direction)
        proj = (x * dx + y * dy)[None]
        for sf, tf, phase in itertools.product(sf_list, tf_list, np.arange(n_ph) * 2 * np.pi / n_ph):
            clips.append(_colourise(np.sin(2 * np.pi * (sf * proj - tf * t / frames) + phase), "gray", contrast))
            speed = tf / frames / sf
            rows.append({
                "phase": float(phase),
                "direction": float(direction),
                "orientation": float((direction + 90.0) % 180.0),
                "axis": float(direction % 180.0),
                "sf": sf,
                "tf": tf,
                "tf_per_frame": tf / frames,
                "speed": speed,
                "speed_px": speed * size,
            })
    return np.stack(clips), pd.DataFrame(rows)
