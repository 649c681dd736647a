"""Stimulus sets on disk: HDF5 with the stimuli, a parameter table and attributes; moving-disk event files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pandas as pd

from tdann.h5io import read_strings, write_dataset

from ._checks import StimulusError, _check_count

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    import torch


_FORMAT = "tdann-stimulus-set-1"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"attribute value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def save_stimulus_set(
    path: str | os.PathLike,
    stimuli: np.ndarray,
    params: pd.DataFrame,
    kind: str,
    attrs: dict[str, Any] | None = None,
    dtype: str = "uint8",
) -> None:
    """Write a stimulus set to HDF5.

    Layout: ``stimuli`` (N, 3, [T,] H, W), stored as uint8 (round(255 x), default) or float16, one stimulus per
    chunk, gzip-compressed; ``params/<column>`` one dataset per column (strings as UTF-8), the column order in the
    ``params`` group's ``columns`` attribute; file attributes ``kind`` (e.g. "gratings"), ``format`` and one attribute
    per generator argument in ``attrs`` (JSON text, so lists and None survive).
    """
    arr = np.asarray(stimuli)
    if arr.ndim not in (4, 5) or arr.shape[1] != 3:
        raise StimulusError(f"stimuli must be (N, 3, H, W) or (N, 3, T, H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise StimulusError("stimuli must be finite floats in [0, 1]")
    if not isinstance(params, pd.DataFrame) or len(params) != len(arr):
        raise StimulusError(f"params must be a DataFrame with one row per stimulus ({len(arr)}), "
                            f"got {type(params).__name__} of length {len(params)}")
    if not isinstance(kind, str) or not kind:
        raise StimulusError(f"kind must be a non-empty string, got {kind!r}")
    if dtype not in ("uint8", "float16"):
        raise StimulusError(f"dtype must be 'uint8' or 'float16', got {dtype!r}")
    attrs = dict(attrs or {})
    reserved = {"kind", "format", "arg_names"} & set(attrs)
    if reserved:
        raise StimulusError(f"attrs may not use the reserved names {sorted(reserved)}")
    encoded = {k: json.dumps(v, default=_json_default) for k, v in attrs.items()}
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = kind
        f.attrs["format"] = _FORMAT
        f.attrs["arg_names"] = json.dumps(list(encoded))
        for key, value in encoded.items():
            f.attrs[key] = value
        ds = f.create_dataset("stimuli", shape=arr.shape, dtype=dtype, chunks=(1,) + arr.shape[1:],
                              compression="gzip", compression_opts=4)
        for i in range(len(arr)):
            ds[i] = np.round(arr[i] * 255).astype(np.uint8) if dtype == "uint8" else arr[i].astype(np.float16)
        ds.attrs["description"] = (
            f"{kind} stimuli, channel-first (N, 3, H, W) or (N, 3, T, H, W); "
            + ("uint8, divide by 255 for [0, 1]" if dtype == "uint8" else "float16 in [0, 1]"))
        ds.attrs["units"] = "intensity / 255" if dtype == "uint8" else "intensity [0, 1]"
        group = f.create_group("params")
        group.attrs["columns"] = json.dumps([str(c) for c in params.columns])
        for col in params.columns:
            values = params[col].to_numpy()
            if values.dtype.kind in "biuf":
                write_dataset(group, str(col), values, description=f"stimulus parameter {col!r}, one per stimulus")
            else:
                write_dataset(group, str(col), [str(v) for v in values],
                              description=f"stimulus parameter {col!r}, one per stimulus")


def _open_set(path: str | os.PathLike) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise StimulusError(f"cannot open stimulus set {os.fspath(path)!r}: {exc}") from exc
    if f.attrs.get("format") != _FORMAT or "stimuli" not in f:
        f.close()
        raise StimulusError(f"{os.fspath(path)!r} is not a stimulus set written by save_stimulus_set")
    return f


def _to_float(block: np.ndarray) -> np.ndarray:
    return (block.astype(np.float32) / 255.0) if block.dtype == np.uint8 else block.astype(np.float32)


def _read_params(f: h5py.File) -> pd.DataFrame:
    group = f["params"]
    columns = json.loads(group.attrs["columns"])
    data = {}
    for col in columns:
        ds = group[col]
        data[col] = read_strings(ds) if ds.dtype.kind == "O" else ds[()]
    return pd.DataFrame(data, columns=columns)


def load_stimulus_set(path: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Read a set written by :func:`save_stimulus_set`: (stimuli float32 in [0, 1], params, attrs incl. ``kind``)."""
    with _open_set(path) as f:
        stimuli = _to_float(f["stimuli"][()])
        params = _read_params(f)
        attrs: dict[str, Any] = {"kind": str(f.attrs["kind"])}
        for key in json.loads(f.attrs["arg_names"]):
            attrs[key] = json.loads(f.attrs[key])
    return stimuli, params, attrs


def load_params(path: str | os.PathLike) -> pd.DataFrame:
    """Only the parameter table of a stimulus set (one row per stimulus), without reading the stimuli."""
    with _open_set(path) as f:
        return _read_params(f)


def count_stimuli(path: str | os.PathLike) -> int:
    """Number of stimuli in a set."""
    with _open_set(path) as f:
        return len(f["stimuli"])


def save_moving_disks(path: str | os.PathLike, disks: dict[str, Any]) -> None:
    """Write the :func:`moving_disks` dict (frames, events, centers, speed labels) to HDF5, every dataset described."""
    desc = {
        "frames": ("the disk at each step, 0/1 (row = y, column = x)", None),
        "events": ("on-events, rows (t, x, y): pixels on at step t and off at t - 1", "steps, pixels"),
        "centers": ("disk centre (x, y) at each step", "pixels"),
        "speed": ("speed label of each segment", "pixels/step"),
        "segments": ("[start, stop) step of each segment", "steps"),
        "speed_per_step": ("speed label of every step", "pixels/step"),
    }
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "moving_disks"
        for key, value in disks.items():
            text, units = desc[key]
            write_dataset(f, key, np.asarray(value), text, units=units, compression="gzip")


def load_moving_disks(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read what :func:`save_moving_disks` wrote, as the tensors :func:`moving_disks` returns."""
    import torch

    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != "moving_disks":
            raise StimulusError(f"{os.fspath(path)!r} is not a moving-disks file")
        return {key: torch.as_tensor(f[key][()]) for key in f}


def iter_stimulus_batches(path: str | os.PathLike, batch: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, stimuli[start:start + batch])`` as float32 in [0, 1]; only one batch is in memory at a time."""
    batch = _check_count(batch, "batch")
    with _open_set(path) as f:
        ds = f["stimuli"]
        for start in range(0, len(ds), batch):
            yield start, _to_float(ds[start: start + batch])
