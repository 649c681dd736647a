"""Small HDF5 helpers: every dataset carries a ``description`` attribute (and ``units`` where meaningful)."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np


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
