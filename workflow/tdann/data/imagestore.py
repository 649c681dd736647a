"""The natural-image store: random crops of photos plus frames of videos in HDF5, split into train / val by source file (docs/reference.md §1)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from tdann.h5io import write_dataset

from .files import IMAGE_SUFFIXES, DatasetConfigError, find_files


def _random_crops(path: Path, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random square crops (side uniform in [0.3, 1] x the short side) resized to size x size RGB."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError as err:
        raise DatasetConfigError(f"build_image_store: cannot read image {path}: {err}") from err
    w, h = img.size
    out = np.empty((n, size, size, 3), np.uint8)
    for k in range(n):
        side = max(1, int(round(rng.uniform(0.3, 1.0) * min(w, h))))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out[k] = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side)))
    return out


def build_image_store(
    image_dirs: Sequence[str | Path],
    video_paths: Sequence[str | Path],
    out: str | Path,
    size: int,
    crops_per_image: int,
    frames_per_video: int,
    val_fraction: float,
    seed: int,
    crops_per_dir: Sequence[int] | None = None,
) -> dict[str, int]:
    """Build an HDF5 store of natural size x size RGB images for SimCLR; return summary counts.

    From each photo in ``image_dirs`` (searched recursively): ``crops_per_image`` random square crops of 0.3-1 times
    the short side, resized (bilinear, antialiased); ``crops_per_dir`` sets the count per folder instead (a folder
    of thousands of procedural images needs one crop each, a dozen photos need many). From each video:
    ``frames_per_video`` random frames (decord), centre-cropped and resized. Datasets: ``images`` (N, size, size, 3)
    uint8 chunked per image, ``source`` (N,) file of origin, ``split`` (N,) 0 train / 1 val, assigned per source
    file (``tdann.video.assign_split``) so no photo or video feeds both. Deterministic given ``seed``; written to a
    temporary file and renamed at the end.
    """
    from tdann.video import assign_split, probe, read_frames

    if int(size) < 1 or int(crops_per_image) < 0 or int(frames_per_video) < 0:
        raise ValueError(
            f"build_image_store: size must be >= 1 and counts >= 0, got size={size}, "
            f"crops_per_image={crops_per_image}, frames_per_video={frames_per_video}"
        )
    photos: list[Path] = []
    crops: list[int] = []
    per_dir = [int(crops_per_image)] * len(image_dirs) if crops_per_dir is None else [int(c) for c in crops_per_dir]
    if len(per_dir) != len(image_dirs) or any(c < 0 for c in per_dir):
        raise ValueError(f"build_image_store: crops_per_dir {crops_per_dir} must give a count >= 0 per image folder")
    for d, n_crops in zip(map(Path, image_dirs), per_dir):
        if not d.is_dir():
            raise DatasetConfigError(f"build_image_store: image folder {d} does not exist")
        found = find_files([d], IMAGE_SUFFIXES)
        photos += found
        crops += [n_crops] * len(found)
    videos = [Path(v) for v in video_paths]
    for v in videos:
        if not v.is_file():
            raise DatasetConfigError(f"build_image_store: video {v} does not exist")
    sources = [str(p) for p in photos] + [str(v) for v in videos]
    if not sources or (sum(crops) == 0 and frames_per_video == 0):
        raise DatasetConfigError("build_image_store: no photos or videos to take images from")
    split_of = dict(zip(sources, assign_split(sources, val_fraction, seed)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    names: list[str] = []
    counts = {"n_from_photos": 0, "n_from_videos": 0}
    try:
        with h5py.File(tmp, "w") as f:
            images = write_dataset(
                f,
                "images",
                None,
                "natural images: random crops of photos and centre crops of video frames, RGB",
                units="grey level (0-255)",
                shape=(0, size, size, 3),
                maxshape=(None, size, size, 3),
                dtype="uint8",
                chunks=(1, size, size, 3),
                compression="lzf",
            )
            for i, src in enumerate(sources):
                rng = np.random.default_rng([int(seed), i])
                if i < len(photos):
                    batch = _random_crops(photos[i], crops[i], int(size), rng)
                    counts["n_from_photos"] += len(batch)
                else:
                    n = probe(src)["n_packets"]  # read_frames re-checks against decord's count
                    k = min(int(frames_per_video), n)
                    batch = read_frames(src, np.sort(rng.choice(n, k, replace=False)), int(size))
                    counts["n_from_videos"] += len(batch)
                images.resize(len(names) + len(batch), axis=0)
                images[len(names) :] = batch
                names += [src] * len(batch)
            split = np.array([split_of[s] for s in names], dtype=np.uint8)
            write_dataset(f, "source", np.asarray(names, dtype=object), "file each image was taken from")
            write_dataset(f, "split", split, "0 train, 1 val; assigned per source file")
            n_val = int(split.sum())
            f.attrs.update(
                {
                    "size": int(size),
                    "seed": int(seed),
                    "n_train": len(names) - n_val,
                    "n_val": n_val,
                    "val_fraction": float(val_fraction),
                    "crops_per_image": int(crops_per_image),
                    "frames_per_video": int(frames_per_video),
                }
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    n_val_sources = sum(int(v) for v in split_of.values())
    return {
        **counts,
        "n_images": len(names),
        "n_train": len(names) - n_val,
        "n_val": n_val,
        "n_sources": len(sources),
        "n_val_sources": n_val_sources,
    }
