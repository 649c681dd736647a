"""Batches for training and evaluation: the image / clip store, read-ahead, the seeded data order, the views."""

from __future__ import annotations

import queue
import threading
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from .. import augment
from ..stores import Store
from .config import DataStoreError, TrainConfig

# --------------------------------------------------------------------------------------------- data


class TrainingStore:
    """One split of an image or clip store: ``images`` (N,H,W,3) or ``clips`` (N,T,H,W,3) uint8, ``split`` (N,).

    ``split`` 0 is train, 1 is val. A file under ``max_bytes`` is read into memory once; a larger one stays open
    and each batch is read from disk.
    """

    def __init__(self, path: str | Path, kind: str, split: int, max_bytes: int = 1 << 30) -> None:
        self.path = Path(path)
        try:
            self._file: h5py.File | None = h5py.File(self.path, "r")
        except OSError as err:
            raise DataStoreError(f"{self.path}: cannot open data store ({err})") from err
        try:
            self._ds = self._check(self._file, kind)
            flags = Store(self.path, kind).split  # clips: the split of each clip's video
            if flags.shape != (self._ds.shape[0],):
                raise DataStoreError(f"{self.path}: 'split' has shape {flags.shape}, expected ({self._ds.shape[0]},)")
            self.rows = np.flatnonzero(flags == split)
            if len(self.rows) == 0:
                raise DataStoreError(f"{self.path}: the {'train' if split == 0 else 'val'} split is empty")
            self._mem: Tensor | None = None
            if self._ds.size < max_bytes:  # uint8: elements == bytes
                self._mem = torch.from_numpy(self._ds[()][self.rows])
                self.close()
        except BaseException:
            self.close()
            raise

    def _check(self, f: h5py.File, kind: str) -> h5py.Dataset:
        if kind not in f or ("split" not in f and "video_split" not in f):
            other = "clips" if kind == "images" else "images"
            hint = f" (it holds {other!r}: wrong stream for this store?)" if other in f else ""
            raise DataStoreError(f"{self.path}: needs datasets {kind!r} and 'split'{hint}; found {sorted(f)}")
        ds = f[kind]
        ndim = 4 if kind == "images" else 5
        if ds.dtype != np.uint8 or ds.ndim != ndim or ds.shape[-1] != 3:
            raise DataStoreError(
                f"{self.path}: {kind!r} must be uint8 with {ndim} dims ending in 3 channels, got {ds.dtype} {ds.shape}"
            )
        return ds

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, idx: np.ndarray) -> Tensor:
        """Samples ``idx`` (indices into this split, repeats allowed) as a uint8 tensor."""
        if self._mem is not None:
            return self._mem[torch.from_numpy(np.asarray(idx, dtype=np.int64))]
        unique, inverse = np.unique(self.rows[idx], return_inverse=True)  # h5py wants increasing, unique rows
        return torch.from_numpy(self._ds[unique][inverse])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Prefetch:
    """The training batches of steps ``start`` ... ``stop - 1``, read ahead by a background thread (h5py releases
    the GIL while it reads a disk-backed store) and pinned for an asynchronous copy when the device is a GPU.
    The batch of a step is the one :func:`batch_indices` names, so reading ahead changes no number."""

    def __init__(self, store: TrainingStore, batch_size: int, seed: int, start: int, stop: int, pin: bool,
                 depth: int = 2) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._halt = threading.Event()
        self._args = (store, batch_size, seed, start, stop, pin)
        self._thread = threading.Thread(target=self._run, name="tdann-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        store, batch_size, seed, start, stop, pin = self._args
        try:
            for step in range(start, stop):
                x = store.get(batch_indices(len(store), batch_size, step, seed))
                item = (step, x.pin_memory() if pin else x)
                while not self._halt.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._halt.is_set():
                    return
        except BaseException as err:  # handed to the training loop, which raises it
            self._q.put((None, err))

    def get(self, step: int) -> Tensor:
        got, x = self._q.get()
        if got is None:
            raise x
        if got != step:
            raise RuntimeError(f"prefetch out of order: got the batch of step {got}, expected {step}")
        return x

    def close(self) -> None:
        self._halt.set()
        self._thread.join(timeout=10)


def seed_of(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (seed, purpose, step, ...)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] >> np.uint64(1))


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, 0xDA7A, epoch]).permutation(n)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices (into the train split) of the global batch of update ``step`` (0-based).

    Epochs visit the data in a permutation seeded by ``(seed, epoch)``, so the data order is a pure function of
    ``(seed, step)``: a resumed run sees exactly the batches an uninterrupted one would have seen.
    """
    pos = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = pos // n
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        sel = epochs == epoch
        out[sel] = _epoch_permutation(n, seed, int(epoch))[pos[sel] % n]
    return out


def views(cfg: TrainConfig, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if cfg.data_kind == "clips":
        return augment.clip_views(batch, cfg.clip_len, cfg.input_size, generator)
    return augment.image_views(batch, cfg.input_size, generator)
