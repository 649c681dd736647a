"""Small HDF5 helpers: every dataset carries a ``description`` attribute (and ``units`` where meaningful)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

#: The split codes of image and clip stores (``split`` / ``video_split`` datasets).
SPLITS = {"train": 0, "val": 1}


def write_dataset(
    group: h5py.Group,
    name: str,
    data: Any,
    description: str,
    units: str | None = None,
    **kwargs: Any,
) -> h5py.Dataset:
    """Create ``group[name]`` from ``data`` with a description (and units) attribute.

    Strings are stored as variable-length UTF-8. Extra keyword arguments go to ``create_dataset``
    (chunks, compression, ...), except ``attrs`` which is a dict of further attributes.
    """
    extra_attrs = kwargs.pop("attrs", {}) or {}
    arr = data
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], str):
        arr = np.asarray(data, dtype=object)
    if isinstance(arr, np.ndarray) and arr.dtype.kind in ("U", "O"):
        ds = group.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype(), **kwargs)
    else:
        ds = group.create_dataset(name, data=arr, **kwargs)
    ds.attrs["description"] = description
    if units is not None:
        ds.attrs["units"] = units
    for key, value in extra_attrs.items():
        ds.attrs[key] = value
    return ds


def read_strings(ds: h5py.Dataset) -> list[str]:
    """Read a string dataset as a list of ``str``."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]


def undescribed(path: str) -> list[str]:
    """Names of datasets in the file at ``path`` that lack a ``description`` attribute (for tests)."""
    missing: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and "description" not in obj.attrs:
            missing.append(name)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return missing


def load_responses(path: str | Path, layer: str, units: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """The (S, N) response matrix of ``layer`` from :func:`tdann.responses.compute_responses` (only ``units``
    columns if given). Only the requested layer (and columns) are read from disk; torch is not needed.
    """
    with h5py.File(path, "r") as f:
        group = f.get("responses")
        if group is None or layer not in group:
            have = sorted(group) if group is not None else []
            raise ValueError(f"{path}: no responses for layer {layer!r}; has {have}")
        ds = group[layer]
        if units is None:
            return ds[()]
        units = np.asarray(units, dtype=np.int64)
        if units.size and (units.min() < 0 or units.max() >= ds.shape[1]):
            raise ValueError(f"{path}: unit indices outside 0..{ds.shape[1] - 1} for layer {layer!r}")
        order, inverse = np.unique(units, return_inverse=True)  # h5py wants increasing indices
        return ds[:, order][:, inverse]
