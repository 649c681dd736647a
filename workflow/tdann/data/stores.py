"""An image or clip store as model input (screening, synthesis): its length, sources, batches, items and samples."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from .files import DatasetConfigError


def _store_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    for name in ("images", "clips"):
        if name in f:
            return f[name]
    raise DatasetConfigError(f"{path}: neither an image store nor a clip store (datasets {sorted(f)})")


def store_sources(path: str | Path) -> np.ndarray:
    """The source of each input of a store as integer codes (N,): the photo or video file an image came from
    (``source``), the video of a clip (``clip_video``); each input its own source where a store records none."""
    with h5py.File(path, "r") as f:
        n = len(_store_dataset(f, Path(path)))
        if "clip_video" in f:
            return np.asarray(f["clip_video"][()], dtype=np.int64)
        if "source" in f:
            names = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in f["source"][()]])
            return np.unique(names, return_inverse=True)[1].astype(np.int64)
        return np.arange(n, dtype=np.int64)


def store_len(path: str | Path) -> int:
    """Number of images or clips in a store."""
    with h5py.File(path, "r") as f:
        return len(_store_dataset(f, Path(path)))


def _as_model_input(block: np.ndarray, size: int, clip_len: int) -> np.ndarray:
    """uint8 (B, H, W, 3) or (B, T, H, W, 3) -> float32 [0, 1] (B, 3, H, W) or (B, 3, clip_len, H, W) at ``size``:
    the first ``clip_len`` frames, each resized (area) to size x size."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(block)).float().div_(255.0)
    if x.ndim == 5:
        if x.shape[1] < clip_len:
            raise DatasetConfigError(f"clips have {x.shape[1]} frames, the model needs {clip_len}")
        x = x[:, :clip_len].permute(0, 4, 1, 2, 3)  # B, 3, T, H, W
        b, c, t, h, w = x.shape
        if (h, w) != (size, size):
            x = F.interpolate(x.reshape(b, c * t, h, w), size=(size, size), mode="area").reshape(b, c, t, size, size)
    else:
        x = x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="area")
    return x.numpy()


def store_batches(path: str | Path, batch: int, size: int, clip_len: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, inputs)`` over a whole store, inputs float32 in [0, 1] shaped for the model; one batch in memory."""
    if batch < 1:
        raise ValueError(f"store_batches: batch must be >= 1, got {batch}")
    with h5py.File(path, "r") as f:
        ds = _store_dataset(f, Path(path))
        for start in range(0, len(ds), batch):
            yield start, _as_model_input(ds[start:start + batch], size, clip_len)


def store_items(path: str | Path, indices: Sequence[int] | np.ndarray, size: int | None = None, clip_len: int | None = None) -> np.ndarray:
    """Items ``indices`` of a store as float32 [0, 1] channel-first arrays (for figures); native size by default."""
    with h5py.File(path, "r") as f:
        ds = _store_dataset(f, Path(path))
        unique, inverse = np.unique(np.asarray(indices, dtype=int), return_inverse=True)  # h5py wants sorted rows
        block = ds[unique][inverse]
    native = block.shape[-2]
    return _as_model_input(block, size or native, clip_len or (block.shape[1] if block.ndim == 5 else 1))


def store_sample(path: str | Path, n: int, size: int, clip_len: int = 1, seed: int = 0) -> np.ndarray:
    """``n`` random items (seeded) as model input, e.g. for the natural magnitude spectrum of Fourier MEIs."""
    total = store_len(path)
    idx = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    return store_items(path, idx, size, clip_len)
