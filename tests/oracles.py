"""Test oracles: independent, plain implementations the library's fast paths are checked against (they used to
live in the library; nothing in the workflow runs them).

* :func:`swapopt_reference`: SwapOpt one window and one attempt at a time in float64 numpy, the same random stream
  as :func:`tdann.swapopt.swapopt` (docs/reference.md §3).
* :func:`pyav_frames`: frames decoded by PyAV, against which decord's clips are checked (docs/reference.md §9).
* :func:`gaussian_random_field`: a model orientation map with a known column spacing (docs/reference.md §4).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdann.analysis._common import RngLike, _rng
from tdann.swapopt import MIN_UNITS, _check_inputs, draw_pairs, window_sl
from tdann.video import RESIZE_MODES, BadVideoError, center_crop, scaled_shape, square_resize


def _reference_corr(responses: np.ndarray) -> np.ndarray:
    """Unit-by-unit Pearson correlation of (S, k) responses; constant units correlate 0 with all (self included)."""
    x = np.asarray(responses, dtype=np.float64)
    xc = x - x.mean(0)
    live = x.max(0) > x.min(0)
    z = np.zeros_like(xc)
    z[:, live] = xc[:, live] / np.sqrt((xc[:, live] ** 2).mean(0))
    return z.T @ z / len(x)


def _two_row_sl(corr: np.ndarray, pos: np.ndarray, a: int, b: int) -> float:
    """SL of the original's acceptance test: Pearson of rows a, b of corr vs 1/(d+1) of rows a, b (all units)."""
    dist = np.sqrt(((pos[[a, b], None, :] - pos[None, :, :]) ** 2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(corr[[a, b]].ravel(), (1.0 / (dist + 1.0)).ravel())[0, 1]
    return (1.0 - r) / 2.0


def swap_window_reference(corr: np.ndarray, coords: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, int]:
    """One window, one attempt at a time: swap, recompute the two-row SL, undo unless it strictly decreased.

    Returns (new coords (k, 2), accepted swaps).
    """
    pos = np.array(coords, dtype=np.float64)
    accepted = 0
    for a, b in pairs:
        before = _two_row_sl(corr, pos, a, b)
        pos[[a, b]] = pos[[b, a]]
        after = _two_row_sl(corr, pos, a, b)
        if after < before:
            accepted += 1
        else:
            pos[[a, b]] = pos[[b, a]]
    return pos, accepted


def swapopt_reference(
    responses: Any,
    positions: Any,
    width: float,
    n_windows: int,
    attempts_per_window: int = 500,
    max_units: int = 500,
    seed: int = 0,
    device: str | torch.device = "cpu",
    windows_per_batch: int | None = None,
    *,
    min_units: int = MIN_UNITS,
    per_window: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SwapOpt one layer the plain way (numpy, one window and one attempt at a time, float64).

    Same signature, random stream (module docstring) and outputs as :func:`swapopt`; ``device`` and
    ``windows_per_batch`` are ignored. Meant for tests and benchmarks.
    """
    t0 = time.perf_counter()
    responses, pos = _check_inputs(responses, positions, width, n_windows, attempts_per_window, max_units,
                                   min_units)
    responses = np.asarray(responses.cpu() if isinstance(responses, torch.Tensor) else responses)
    pos = pos.copy()
    rng = np.random.default_rng(seed)
    (xmin, ymin), (xmax, ymax) = pos.min(0), pos.max(0)
    per: dict[str, list] = {k: [] for k in ("index", "units", "accepted", "sl_before", "sl_after")}
    for index in range(int(n_windows)):
        x0 = rng.uniform(xmin, xmax - width)
        y0 = rng.uniform(ymin, ymax - width)
        members = np.where((pos[:, 0] >= x0) & (pos[:, 0] <= x0 + width)
                           & (pos[:, 1] >= y0) & (pos[:, 1] <= y0 + width))[0]
        if len(members) < min_units:
            continue
        if len(members) > max_units:
            members = members[rng.choice(len(members), size=max_units, replace=False)]
        pairs = draw_pairs(rng, len(members), int(attempts_per_window))
        corr = _reference_corr(responses[:, members])
        before = window_sl(corr, pos[members])
        pos[members], accepted = swap_window_reference(corr, pos[members], pairs)
        for key, value in zip(per, (index, len(members), accepted, before, window_sl(corr, pos[members]))):
            per[key].append(value)
    wall = time.perf_counter() - t0
    arrays = {k: np.asarray(v) for k, v in per.items()}
    attempts = int(len(arrays["index"]) * attempts_per_window)
    stats: dict[str, Any] = {
        "attempts": attempts,
        "accepted": int(arrays["accepted"].sum()),
        "sl_before": float(np.nanmean(arrays["sl_before"])) if len(arrays["index"]) else float("nan"),
        "sl_after": float(np.nanmean(arrays["sl_after"])) if len(arrays["index"]) else float("nan"),
        "wall_s": wall,
        "attempts_per_s": attempts / wall,
        "windows": int(len(arrays["index"])),
        "windows_skipped": int(n_windows) - int(len(arrays["index"])),
        "batches": int(len(arrays["index"])),
    }
    if per_window:
        stats.update({f"window_{k}": v for k, v in arrays.items()})
    return pos.astype(np.float32), stats


def pyav_frames(path: str | Path, indices: Sequence[int], size: int, resize: str = "decoder") -> np.ndarray:
    """Reference decode with PyAV: frames ``indices`` (presentation order) as (len(indices), size, size, 3) uint8.

    Uses the same geometry as ``decode_clips`` for ``resize`` ("exact": identical torch resize; "decoder":
    PyAV's own bilinear swscale, close to but not bit-equal with decord's older one). For tests.
    """
    import av

    if resize not in RESIZE_MODES:
        raise ValueError(f"pyav_frames: resize must be one of {RESIZE_MODES}, got {resize!r}")
    wanted = sorted(set(int(i) for i in indices))
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > wanted[-1]:
                break
            if i in wanted:
                if resize == "exact":
                    got[i] = square_resize(frame.to_ndarray(format="rgb24")[None], size)[0]
                else:
                    h, w = scaled_shape(frame.height, frame.width, size)
                    img = frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
                    got[i] = center_crop(img[None], size)[0]
    missing = [i for i in wanted if i not in got]
    if missing:
        raise BadVideoError(f"{path}: PyAV decoded only frames < {len(got)}; missing {missing[:5]}")
    return np.stack([got[int(i)] for i in indices])


def gaussian_random_field(size_px: int, k0: float, width: float, rng: RngLike = None) -> np.ndarray:
    """Complex Gaussian random field with a narrow isotropic ring spectrum (a model orientation map).

    Amplitude ``exp(-(|k| - k0)^2 / (2 width^2))`` on complex white noise, k in cycles per map, so
    the column spacing is ``size_px / k0`` pixels. Periodic; used to test Lambda and the pinwheel
    density (pi per Lambda^2, docs/reference.md §4).
    """
    if size_px < 8 or not 0 < k0 < size_px / 2 or width <= 0:
        raise ValueError(f"need size_px >= 8, 0 < k0 < size_px/2, width > 0; got {size_px}, {k0}, {width}")
    gen = _rng(rng)
    f = np.fft.fftfreq(size_px) * size_px
    kr = np.hypot(f[:, None], f[None, :])
    noise = gen.standard_normal((size_px, size_px)) + 1j * gen.standard_normal((size_px, size_px))
    return np.fft.ifft2(noise * np.exp(-((kr - k0) ** 2) / (2 * width**2)))
