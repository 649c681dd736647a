"""Image and clip stores, read: one reader for both kinds, and a store's items as model input.

An *image store* (:func:`tdann.data.build_image_store`) holds ``images`` (N, H, W, 3) uint8 with a ``split`` (N,)
and the ``source`` file of each image; a *clip store* (:func:`tdann.video.gather_clip_stores`) holds ``clips``
(N, T, H, W, 3) uint8, the video of each clip (``clip_video``), the ``videos`` and their ``video_split``. Split 0
is train, 1 is val (:data:`tdann.h5io.SPLITS`); clips are split by source video.

:class:`Store` reads either kind (``len``, ``store[i]``, ``read(indices)``, the split and source of every item);
``store_batches`` / ``store_items`` / ``store_sample`` give items as float32 [0, 1] channel-first model input at a
size (area resampling) for screening and synthesis. Training reads its batches with
:class:`tdann.training.TrainingStore`, which keeps a split in memory when it fits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .h5io import SPLITS, read_strings

KINDS = ("images", "clips")


class StoreError(ValueError):
    """A file that is not the image or clip store it should be (the message names the file)."""


class Store:
    """Read-only access to an image or clip store: ``len``, ``store[i]`` -> uint8 (H, W, 3) or (T, H, W, 3),
    ``read(indices)``, ``split`` (None where the file records none) and ``sources`` of every item,
    ``indices(split)``.

    ``kind`` ("images" / "clips") insists on one kind; None takes whichever the file holds. The HDF5 file is opened
    lazily (and dropped when pickled), so a store can be handed to DataLoader workers. Where the file has them,
    ``clip_video``, ``videos`` and ``video_split`` are read too.
    """

    def __init__(self, path: str | Path, kind: str | None = None) -> None:
        self.path = Path(path)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"Store: kind must be one of {KINDS} or None, got {kind!r}")
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store")
        try:
            with h5py.File(self.path, "r") as f:
                found = [k for k in KINDS if k in f]
                if not found or (kind is not None and kind not in found):
                    raise StoreError(f"{self.path}: not {'an image or clip' if kind is None else kind_name(kind)} "
                                     f"store (datasets {sorted(f)})")
                self.kind = kind or found[0]
                self.attrs = dict(f.attrs)
                self.shape = f[self.kind].shape
                if "clip_video" in f:  # a clip store: the video of each clip, the videos, their split
                    self.clip_video = np.asarray(f["clip_video"][()], dtype=np.int64)
                    self.video_split = f["video_split"][()] if "video_split" in f else None
                    self.videos = read_strings(f["videos"]) if "videos" in f else []
                if "split" in f:
                    self.split = f["split"][()]
                elif "clip_video" in f and "video_split" in f:
                    self.split = f["video_split"][()][self.clip_video]
                else:  # a store of inputs only (screening needs no split)
                    self.split = None
                if "clip_video" in f:
                    self.sources = self.clip_video
                elif "source" in f:
                    self.sources = _codes(f["source"][()])
                else:  # each item its own source
                    self.sources = np.arange(self.shape[0], dtype=np.int64)
        except (OSError, KeyError) as err:
            raise StoreError(f"{self.path}: not a readable {kind_name(kind or 'images')} store ({err})") from err
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def _data(self) -> h5py.Dataset:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file[self.kind]

    def __getitem__(self, i: int) -> np.ndarray:
        return self._data()[i]

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Items ``indices`` (any order, repeats allowed) as one uint8 array; h5py reads sorted unique rows."""
        unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        return self._data()[unique][inverse]

    def indices(self, split: str) -> np.ndarray:
        """Item indices of ``split`` ("train" or "val")."""
        if split not in SPLITS:
            raise ValueError(f"Store.indices: split must be one of {list(SPLITS)}, got {split!r}")
        if self.split is None:
            raise StoreError(f"{self.path}: records no split ('split', or 'video_split' with 'clip_video')")
        return np.flatnonzero(self.split == SPLITS[split])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}


def kind_name(kind: str) -> str:
    return {"images": "an image", "clips": "a clip"}[kind]


def _codes(names: np.ndarray) -> np.ndarray:
    """Integer codes of source names (bytes or str), equal names equal codes."""
    text = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in names])
    return np.unique(text, return_inverse=True)[1].astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# a store's items as model input (screening, synthesis)
# ----------------------------------------------------------------------------------------------------------
def as_model_input(block: np.ndarray, size: int, clip_len: int) -> np.ndarray:
    """uint8 (B, H, W, 3) or (B, T, H, W, 3) -> float32 [0, 1] (B, 3, H, W) or (B, 3, clip_len, H, W) at ``size``:
    the first ``clip_len`` frames, each resized (area) to size x size."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(block)).float().div_(255.0)
    if x.ndim == 5:
        if x.shape[1] < clip_len:
            raise StoreError(f"clips have {x.shape[1]} frames, the model needs {clip_len}")
        x = x[:, :clip_len].permute(0, 4, 1, 2, 3)  # B, 3, T, H, W
        b, c, t, h, w = x.shape
        if (h, w) != (size, size):
            x = F.interpolate(x.reshape(b, c * t, h, w), size=(size, size), mode="area").reshape(b, c, t, size, size)
    else:
        x = x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="area")
    return x.numpy()


def store_sources(path: str | Path) -> np.ndarray:
    """The source of each item as integer codes (N,): the photo or video file an image came from, the video of a
    clip; each item its own source where an image store records none."""
    return Store(path).sources


def store_len(path: str | Path) -> int:
    """Number of images or clips in a store."""
    return len(Store(path))


def store_batches(path: str | Path, batch: int, size: int, clip_len: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, inputs)`` over a whole store, inputs float32 in [0, 1] shaped for the model; one batch in memory."""
    if batch < 1:
        raise ValueError(f"store_batches: batch must be >= 1, got {batch}")
    store = Store(path)
    try:
        data = store._data()
        for start in range(0, len(store), batch):
            yield start, as_model_input(data[start:start + batch], size, clip_len)
    finally:
        store.close()


def store_items(path: str | Path, indices: Sequence[int] | np.ndarray, size: int | None = None,
                clip_len: int | None = None) -> np.ndarray:
    """Items ``indices`` of a store as float32 [0, 1] channel-first arrays (for figures); native size by default."""
    store = Store(path)
    try:
        block = store.read(indices)
    finally:
        store.close()
    native = block.shape[-2]
    return as_model_input(block, size or native, clip_len or (block.shape[1] if block.ndim == 5 else 1))


def store_sample(path: str | Path, n: int, size: int, clip_len: int = 1, seed: int = 0) -> np.ndarray:
    """``n`` random items (seeded) as model input, e.g. for the natural magnitude spectrum of Fourier MEIs."""
    total = store_len(path)
    idx = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    return store_items(path, idx, size, clip_len)
