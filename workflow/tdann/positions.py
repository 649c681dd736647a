"""Cortical sheets: unit positions (mm) and neighbourhoods for each tapped layer (docs/reference.md §2).

Every unit of a layer's (C, H, W) output gets a 2D position on a square sheet of side ``sheet_size`` mm. Units are
ordered channel-major, as ``tensor.flatten(start_dim=1)`` orders them, so ``positions[i]`` belongs to column ``i`` of
``FeatureTaps.flat(layer)``. Neighbourhoods are sets of unit indices that fall inside random square windows; the
spatial loss is evaluated on a few of them per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from .h5io import write_dataset

if TYPE_CHECKING:  # torch is imported where needed: metrics steps read sheets without it
    from torch import nn


class SheetsFileError(ValueError):
    """A sheets HDF5 file that lacks a group, dataset or attribute, or holds inconsistent ones."""


@dataclass
class LayerSheet:
    """Positions and neighbourhoods of one layer's units on its cortical sheet.

    ``positions`` (N, 2) float32 in mm, N = C*H*W in channel-major order; ``neighborhoods`` (K, k) int64 indices into
    ``positions``, one row per window. ``n_windows``, ``min_units``, ``max_units``: how the neighbourhoods were
    drawn (see :func:`make_neighborhoods`), kept so that :func:`redraw_neighborhoods` draws them the same way.
    """

    name: str
    shape: tuple[int, ...]
    positions: np.ndarray
    sheet_size: float
    neighborhood_width: float
    neighborhoods: np.ndarray
    n_windows: int = 20000
    min_units: int = 25
    max_units: int = 500

    @property
    def n_units(self) -> int:
        return int(self.positions.shape[0])

    def distances_inv(self, nb: np.ndarray) -> np.ndarray:
        """``D = 1 / (d + 1)`` (docs/reference.md §2) between the units of ``nb``: (k,) -> (k, k), (n, k) -> (n, k, k)."""
        p = self.positions[np.asarray(nb)].astype(np.float64)
        d = np.sqrt(((p[..., :, None, :] - p[..., None, :, :]) ** 2).sum(-1))
        return (1.0 / (d + 1.0)).astype(np.float32)


def retinotopic_positions(
    shape: tuple[int, ...],
    sheet_size: float,
    rf_overlap: float,
    jitter_sigma: float,
    rng: np.random.Generator,
    layout: str = "uniform",
) -> np.ndarray:
    """Retinotopic initial positions (docs/reference.md §2) of the C*H*W units of a (C, H, W) layer, (N, 2) float32 mm.

    ``layout="channel_grid"`` places the C channels of each location instead on the cells of TopoNets' channel
    sheet (:func:`tdann.losses.channel_grid`, rows x columns) within the location's patch, without jitter: the
    sheet on which TopoLoss makes neighbouring channels alike, tiled over the retinotopic locations.

    As in the original TDANN code (``place_conv`` / ``jitter_positions``): along each axis the n feature-map
    locations get square receptive-field patches of width ``sheet_size / (n - n * rf_overlap + rf_overlap)``, so
    that n patches overlapping by the fraction ``rf_overlap`` just fill the sheet (0: they tile it; docs/reference.md §2
    scales the overlap with the layer's downsampling, 0.1 / 0.2 / 0.4 / 0.8); location (h, w) is anchored at the
    centre of its patch (x from w, y from h) and each of its C channels is placed uniformly within +/- half a patch
    width of the anchor. Then every unit gets Gaussian jitter of sd ``jitter_sigma`` mm, and each axis is rescaled
    back onto the range the units covered before jittering (inside [0, sheet_size]). Note that 0.3 mm of jitter is
    several columns on the 2.4 mm retina sheet and a small fraction of one on the 70 mm VTC sheet, as in the original.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"layer shape must be (C, H, W) with positive sizes, got {tuple(shape)}")
    if not sheet_size > 0:
        raise ValueError(f"sheet_size must be > 0 mm, got {sheet_size!r}")
    if not 0 <= rf_overlap <= 1 or jitter_sigma < 0:
        raise ValueError(f"need 0 <= rf_overlap <= 1 and jitter_sigma >= 0, got {rf_overlap!r}, {jitter_sigma!r}")
    c, h, w = (int(s) for s in shape)

    def centres(n: int) -> tuple[np.ndarray, float]:
        radius = sheet_size / (n - n * rf_overlap + rf_overlap) / 2.0
        return np.linspace(radius, sheet_size - radius, n), radius

    (xc, rx), (yc, ry) = centres(w), centres(h)
    ys, xs = np.meshgrid(yc, xc, indexing="ij")
    anchors = np.stack([xs.ravel(), ys.ravel()], axis=1)  # (H*W, 2), row-major over (h, w)
    anchors = np.broadcast_to(anchors, (c, h * w, 2)).reshape(-1, 2)  # channel-major, like flatten(start_dim=1)
    radius = np.array([rx, ry])  # per axis (the original has square maps only)
    if layout == "channel_grid":
        from .losses import channel_grid

        rows, cols = channel_grid(c)
        cell = np.stack([(np.arange(c) % cols + 0.5) / cols, (np.arange(c) // cols + 0.5) / rows], axis=1)
        offset = (2 * cell - 1) * radius  # (C, 2): the channel's cell centre within +/- radius of the anchor
        pos = anchors + np.repeat(offset, h * w, axis=0)
        return np.clip(pos, 0.0, sheet_size).astype(np.float32)
    if layout != "uniform":
        raise ValueError(f"layout must be 'uniform' or 'channel_grid', got {layout!r}")
    placed = anchors + rng.uniform(-radius, radius, size=anchors.shape)
    jittered = placed + rng.normal(0.0, jitter_sigma, size=placed.shape)
    lo, span = placed.min(axis=0), np.ptp(placed, axis=0)
    j_lo, j_span = jittered.min(axis=0), np.ptp(jittered, axis=0)
    pos = np.where(j_span > 0, (jittered - j_lo) / np.where(j_span > 0, j_span, 1.0) * span + lo, placed)
    return np.clip(pos, 0.0, sheet_size).astype(np.float32)


def make_neighborhoods(
    positions: np.ndarray,
    width: float,
    n_windows: int = 20000,
    rng: np.random.Generator | None = None,
    min_units: int = 25,
    max_units: int = 500,
    name: str = "layer",
) -> np.ndarray:
    """Neighbourhoods (K, k) int64 from ``n_windows`` random square windows of side ``width`` mm (docs/reference.md §2).

    The working size k is the 5th percentile of the window counts, clipped to [min_units, max_units]; windows with
    fewer units are dropped, larger ones subsampled (without replacement) to k. If no window reaches k the
    neighbourhood width is too small for this layer and sheet: a ``ValueError`` names the layer and suggests a width
    (we raise rather than enlarge silently, since the config is wrong then).
    """
    rng = np.random.default_rng() if rng is None else rng
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
        raise ValueError(f"{name}: positions must be (N, 2), got {pos.shape}")
    if not width > 0 or n_windows < 1 or not 1 <= min_units <= max_units:
        raise ValueError(
            f"{name}: need width > 0, n_windows >= 1, 1 <= min_units <= max_units; "
            f"got {width!r}, {n_windows!r}, {min_units!r}, {max_units!r}"
        )
    order = np.argsort(pos[:, 0], kind="stable")
    xs, ys = pos[order, 0], pos[order, 1]
    lo = pos.min(axis=0)
    hi = np.maximum(pos.max(axis=0) - width, lo)
    corners = rng.uniform(lo, hi, size=(n_windows, 2))
    starts = np.searchsorted(xs, corners[:, 0], side="left")
    stops = np.searchsorted(xs, corners[:, 0] + width, side="right")
    members = []
    for (_, y0), a, b in zip(corners, starts, stops):
        inside = (ys[a:b] >= y0) & (ys[a:b] <= y0 + width)
        members.append(order[a:b][inside])
    counts = np.array([len(m) for m in members])
    size = int(np.clip(np.percentile(counts, 5), min_units, max_units))
    kept = [m for m in members if len(m) >= size]
    if not kept:
        density = len(pos) / max(float(np.prod(pos.max(axis=0) - pos.min(axis=0))), 1e-12)
        suggest = float(np.sqrt(min_units / density)) * 1.5
        raise ValueError(
            f"{name}: neighbourhood width {width:g} mm is too small: the largest of {n_windows} windows holds "
            f"{counts.max()} units, fewer than min_units={min_units}; use a width of about {suggest:.3g} mm or more"
        )
    rows = [np.sort(rng.choice(m, size, replace=False)) if len(m) > size else np.sort(m) for m in kept]
    return np.stack(rows).astype(np.int64)


def redraw_neighborhoods(sheet: LayerSheet, rng: np.random.Generator) -> LayerSheet:
    """A copy of ``sheet`` whose neighbourhoods are drawn anew on its *current* positions.

    Neighbourhoods are index sets of windows on the positions they were drawn on; after positions change (SwapOpt)
    they must be redrawn so that each still holds spatially close units. Uses the sheet's own window count and
    unit limits.
    """
    positions = np.asarray(sheet.positions, dtype=np.float32)
    if positions.shape != (sheet.n_units, 2) or sheet.n_units != int(np.prod(sheet.shape)):
        raise ValueError(f"{sheet.name}: positions {positions.shape} do not fit layer shape {sheet.shape}")
    nbs = make_neighborhoods(
        positions, sheet.neighborhood_width, sheet.n_windows, rng, sheet.min_units, sheet.max_units, name=sheet.name
    )
    return dataclasses.replace(sheet, positions=positions, neighborhoods=nbs)


def init_sheets(
    model: nn.Module,
    input_shape: tuple,
    specs: Mapping[str, Mapping[str, float]],
    seed: int,
    n_windows: int = 20000,
    jitter_sigma: float = 0.3,
    min_units: int = 25,
    max_units: int = 500,
    layout: str = "uniform",
) -> dict[str, LayerSheet]:
    """Retinotopic sheets for the layers named in ``specs`` (docs/reference.md §1-2 give per-layer values).

    ``specs[layer]`` holds ``sheet_size`` (mm), ``neighborhood_width`` (mm), ``rf_overlap`` and optionally its own
    ``min_units`` / ``max_units``. ``input_shape`` is per sample ((3, H, W) or (3, T, H, W)). Each layer draws from
    its own stream of ``seed`` so that adding a layer does not change the others. ``layout`` (or a spec's own
    ``layout``): see :func:`retinotopic_positions`.
    """
    from .models import layer_shapes

    required = ("sheet_size", "neighborhood_width", "rf_overlap")
    for layer, spec in specs.items():
        missing = [k for k in required if k not in spec]
        if missing:
            raise ValueError(f"sheet spec for layer {layer!r} lacks {missing}")
    shapes = layer_shapes(model, input_shape, list(specs))
    sheets = {}
    for i, (layer, spec) in enumerate(specs.items()):
        rng = np.random.default_rng([int(seed), i])
        shape = tuple(int(s) for s in shapes[layer])
        pos = retinotopic_positions(shape, float(spec["sheet_size"]), float(spec["rf_overlap"]), jitter_sigma, rng,
                                    str(spec.get("layout", layout)))
        lo, hi = int(spec.get("min_units", min_units)), int(spec.get("max_units", max_units))
        nbs = make_neighborhoods(pos, float(spec["neighborhood_width"]), n_windows, rng, lo, hi, name=layer)
        sheets[layer] = LayerSheet(
            layer, shape, pos, float(spec["sheet_size"]), float(spec["neighborhood_width"]), nbs, n_windows, lo, hi
        )
    return sheets


def save_sheets(path: str | Path, sheets: Mapping[str, LayerSheet], attrs: Mapping[str, Any] | None = None) -> None:
    """Write one HDF5 group per layer (datasets ``positions``, ``neighborhoods``); ``attrs`` go on the file root."""
    with h5py.File(path, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        f.attrs["layers"] = list(sheets)
        for name, sheet in sheets.items():
            g = f.create_group(name)
            write_dataset(
                g,
                "positions",
                np.asarray(sheet.positions, dtype=np.float32),
                "unit positions (x, y) on the cortical sheet, units in channel-major flatten(start_dim=1) order",
                units="mm",
            )
            write_dataset(
                g,
                "neighborhoods",
                np.asarray(sheet.neighborhoods, dtype=np.int64),
                "spatial-loss neighbourhoods: indices of the units inside random square windows, one row per window",
                units="unit index",
            )
            g.attrs["sheet_size"] = float(sheet.sheet_size)
            g.attrs["sheet_size_units"] = "mm"
            g.attrs["neighborhood_width"] = float(sheet.neighborhood_width)
            g.attrs["neighborhood_width_units"] = "mm"
            g.attrs["shape"] = np.asarray(sheet.shape, dtype=np.int64)
            g.attrs["n_units"] = sheet.n_units
            g.attrs["n_windows"] = int(sheet.n_windows)
            g.attrs["min_units"] = int(sheet.min_units)
            g.attrs["max_units"] = int(sheet.max_units)


def load_sheets(path: str | Path) -> dict[str, LayerSheet]:
    """Read sheets written by :func:`save_sheets`; a missing or inconsistent entry raises ``SheetsFileError``."""
    sheets = {}
    with h5py.File(path, "r") as f:
        names = [str(n) for n in f.attrs.get("layers", list(f.keys()))]
        for name in names:
            if name not in f:
                raise SheetsFileError(f"{path}: no group for layer {name!r}")
            g = f[name]
            try:
                pos = g["positions"][()].astype(np.float32)
                nbs = g["neighborhoods"][()].astype(np.int64)
                shape = tuple(int(s) for s in g.attrs["shape"])
                sheet = LayerSheet(
                    name,
                    shape,
                    pos,
                    float(g.attrs["sheet_size"]),
                    float(g.attrs["neighborhood_width"]),
                    nbs,
                    int(g.attrs.get("n_windows", 20000)),
                    int(g.attrs.get("min_units", 25)),
                    int(g.attrs.get("max_units", 500)),
                )
            except KeyError as err:
                raise SheetsFileError(f"{path}: layer {name!r} lacks {err}") from err
            if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) != int(np.prod(shape)):
                raise SheetsFileError(f"{path}: layer {name!r}: positions {pos.shape} do not fit shape {shape}")
            if nbs.ndim != 2 or (nbs.size and (nbs.min() < 0 or nbs.max() >= len(pos))):
                raise SheetsFileError(f"{path}: layer {name!r}: neighbourhood indices out of range")
            sheets[name] = sheet
    return sheets
