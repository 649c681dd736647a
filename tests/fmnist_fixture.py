"""A small Fashion-MNIST in its distributed format (gzipped IDX files), written by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: magic 0x0000 0x08 ndim, big-endian int32 dimensions, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def glyphs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28 x 28 glyphs whose label (0..9) is readable from their shape: a bar at a label-specific angle."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    yy, xx = np.mgrid[0:28, 0:28] - 13.5
    images = np.empty((n, 28, 28), dtype=np.uint8)
    for i, lab in enumerate(labels):
        theta = np.pi * lab / 10
        dist = np.abs(-xx * np.sin(theta) + yy * np.cos(theta))
        images[i] = np.where((dist < 3) & (xx**2 + yy**2 < 150), 255, 0)
    return images, labels


def write_fashion_mnist(folder: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """The four files of Fashion-MNIST (train / t10k images and labels), gzipped, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = glyphs(n, seed)
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return folder
