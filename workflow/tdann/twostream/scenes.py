"""What / where scenes: one object (a procedural shape or a Fashion-MNIST glyph) at a random position, with its category and x, y position as labels."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Procedural object categories of :func:`object_scenes` (index = class label).
SHAPES = ("disk", "square", "triangle", "cross", "ring", "bar")
#: Fashion-MNIST's ten class names, in label order (Xiao et al. 2017).
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle boot")
_IDX_DTYPES: dict[int, np.dtype | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
               0x0E: np.dtype(">f8")}


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of procedural shape ``kind`` in object coordinates (u, v) (radius 1 at the object's scale)."""
    name = SHAPES[kind]
    if name == "disk":
        return u**2 + v**2 <= 1.0
    if name == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if name == "triangle":  # apex up, base at v = 0.7
        return (v <= 0.7) & (v >= -1.0 + 1.7 * np.abs(u))
    if name == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    if name == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1.0) & (r2 >= 0.45)
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.28)  # bar


def object_scenes(n: int, size: int, rng: np.random.Generator, glyphs: np.ndarray | None = None,
                  glyph_labels: np.ndarray | None = None, scale: tuple[float, float] = (0.14, 0.24),
                  background_contrast: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` what / where scenes: one object on a noisy background, at a random position.

    Objects are the procedural :data:`SHAPES` (random radius ``scale`` x size, orientation for the bar and cross,
    luminance and colour) or, given ``glyphs`` (N, h, w) uint8 with ``glyph_labels`` (N,), e.g. Fashion-MNIST,
    a random glyph pasted at 1.6-2.4 x its radius. The object lies wholly inside the image. Returns images
    (n, 3, size, size) float32 in [0, 1], category labels (n,) int64 and positions (n, 2) float32: the object's
    centre (x right, y down), scaled so that the image spans [-1, 1].
    """
    if n < 1 or size < 8:
        raise ValueError(f"object_scenes needs n >= 1 and size >= 8, got {n}, {size}")
    if (glyphs is None) != (glyph_labels is None):
        raise ValueError("glyphs and glyph_labels go together")
    grey = rng.uniform(0.35, 0.65, size=(n, 1, 1, 1))
    images = grey + background_contrast * rng.standard_normal((n, 1, size, size))
    images = np.repeat(images, 3, axis=1)
    labels = np.empty(n, dtype=np.int64)
    centres = np.empty((n, 2), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for i in range(n):
        radius = rng.uniform(*scale) * size
        cx, cy = rng.uniform(radius, size - radius, size=2)
        polarity = rng.choice([-1.0, 1.0])
        colour = np.clip(grey[i, :, 0, 0] + polarity * rng.uniform(0.25, 0.45) * (0.6 + 0.4 * rng.random(3)), 0, 1)
        if glyphs is None:
            labels[i] = rng.integers(len(SHAPES))
            theta = rng.uniform(0, np.pi) if SHAPES[labels[i]] in ("bar", "cross") else 0.0
            du, dv = (xx - cx) / radius, (yy - cy) / radius
            u, v = du * np.cos(theta) + dv * np.sin(theta), -du * np.sin(theta) + dv * np.cos(theta)
            alpha = _shape_mask(int(labels[i]), u, v).astype(float)
        else:
            assert glyph_labels is not None  # SceneSampler checks glyphs and labels come together
            j = rng.integers(len(glyphs))
            labels[i] = int(glyph_labels[j])
            alpha = _paste(glyphs[j].astype(float) / 255.0, size, cx, cy, radius)
        images[i] = images[i] * (1 - alpha) + colour[:, None, None] * alpha
        centres[i] = (cx / size * 2 - 1, cy / size * 2 - 1)
    return np.clip(images, 0, 1).astype(np.float32), labels, centres


def _paste(glyph: np.ndarray, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """A (size, size) alpha map: ``glyph`` (h, w) in [0, 1] resized to 2 x ``radius`` and centred at (cx, cy)."""
    side = max(2, int(round(2 * radius)))
    g = F.interpolate(torch.as_tensor(glyph, dtype=torch.float32)[None, None], size=(side, side), mode="area")[0, 0]
    out = np.zeros((size, size))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x0, y0 = min(max(x0, 0), size - side), min(max(y0, 0), size - side)
    out[y0:y0 + side, x0:x0 + side] = g.numpy()
    return out


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (the MNIST / Fashion-MNIST format; ``.gz`` read as gzip) as a numpy array.

    Errors name the file: a bad magic number, an unknown element type, or a size that does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read an IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] < 1:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX dimensions {dims} need {expected} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_fashion_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (N, 28, 28) uint8 and labels (N,) from ``folder``, as distributed (IDX files, gzipped
    or not, found anywhere under ``folder``): ``train-images-idx3-ubyte`` / ``t10k-images-idx3-ubyte`` and their
    ``-labels-idx1-ubyte`` files. Errors name the missing or inconsistent file."""
    if split not in ("train", "t10k"):
        raise ValueError(f"Fashion-MNIST split must be 'train' or 't10k', got {split!r}")
    found = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{split}-{kind}"
        hits = sorted(p for p in Path(folder).rglob(f"{name}*") if p.name in (name, name + ".gz"))
        if not hits:
            raise FileNotFoundError(f"{folder}: no {name} or {name}.gz (the Fashion-MNIST IDX files)")
        found[kind] = hits[0]
    images, labels = read_idx(found["images-idx3-ubyte"]), read_idx(found["labels-idx1-ubyte"])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{found['images-idx3-ubyte']}: images {images.shape} and labels {labels.shape} of "
                         f"{found['labels-idx1-ubyte']} do not pair up")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
        raise ValueError(f"{found['labels-idx1-ubyte']}: labels outside 0..9")
    return images.astype(np.uint8), labels.astype(np.int64)


class SceneSampler:
    """Endless training batches of fresh what / where scenes (no scene is seen twice, so nothing can be memorised):
    each item is ``(images, (labels, positions))`` as tensors. ``glyphs`` as in :func:`object_scenes`."""

    def __init__(self, batch: int, size: int, seed: int, glyphs: np.ndarray | None = None,
                 glyph_labels: np.ndarray | None = None) -> None:
        self.batch, self.size = int(batch), int(size)
        self.rng = np.random.default_rng(seed)
        self.glyphs, self.glyph_labels = glyphs, glyph_labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
        while True:
            yield scene_batch(self.batch, self.size, self.rng, self.glyphs, self.glyph_labels)


def scene_batch(n: int, size: int, rng: np.random.Generator, glyphs: np.ndarray | None = None,
                glyph_labels: np.ndarray | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One batch of :func:`object_scenes` as tensors ``(images, (labels, positions))``."""
    x, y, pos = object_scenes(n, size, rng, glyphs, glyph_labels)
    return torch.from_numpy(x), (torch.from_numpy(y), torch.from_numpy(pos))
