"""Argument checks and image geometry shared by the stimulus generators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    pass


class StimulusError(ValueError):
    """A stimulus argument, file or folder is invalid."""


def _check_size(size: int, name: str = "size", minimum: int = 8) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < minimum:
        raise StimulusError(f"{name} must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise StimulusError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_positive_list(values: Sequence[float], name: str, upper: float | None = None) -> list[float]:
    vals = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=float))]
    if not vals or any(not np.isfinite(v) or v <= 0 for v in vals):
        raise StimulusError(f"{name} must be a non-empty list of positive numbers, got {values!r}")
    if upper is not None and any(v >= upper for v in vals):
        raise StimulusError(f"{name} must all be < {upper:g} (Nyquist / aliasing limit), got {values!r}")
    return vals


def _check_contrast(contrast: float) -> float:
    if not 0 < float(contrast) <= 1:
        raise StimulusError(f"contrast must be in (0, 1], got {contrast!r}")
    return float(contrast)


def _image_coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in image widths, origin at the image centre: x right, y up. Shapes (H, W)."""
    c = (np.arange(size) - (size - 1) / 2) / size
    x = np.broadcast_to(c[None, :], (size, size))
    y = np.broadcast_to(-c[:, None], (size, size))
    return x, y


def _unit(deg: float) -> tuple[float, float]:
    rad = np.deg2rad(deg)
    return float(np.cos(rad)), float(np.sin(rad))
