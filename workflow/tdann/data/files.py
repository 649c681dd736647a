"""Media files: the suffixes read as images and videos, finding them under folders, and the error of a bad dataset entry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
DATASET_KINDS = ("url", "local", "packaged", "synthetic", "deadleaves")


def find_files(roots: Sequence[str | Path], suffixes: Sequence[str]) -> list[Path]:
    """Every file under ``roots`` whose suffix (any case: ImageNet's ``.JPEG``, UCF101's ``.avi``) is in
    ``suffixes``, sorted. Symlinked folders are followed: a ``local`` dataset links the top-level entries of the
    user's folder (ImageNet's class folders), which ``Path.rglob`` would silently skip."""
    wanted = {s.lower() for s in suffixes}
    found: list[Path] = []
    for root in map(Path, roots):
        for folder, _, names in os.walk(root, followlinks=True):
            found += [Path(folder) / n for n in names if Path(n).suffix.lower() in wanted]
    return sorted(found)


def find_videos(roots: Sequence[str | Path]) -> list[Path]:
    """Every video (:data:`VIDEO_SUFFIXES`: .mp4, .avi, .mkv, .mov, .webm) under ``roots``."""
    return find_files(roots, VIDEO_SUFFIXES)


class DatasetConfigError(ValueError):
    """A ``datasets:`` config entry is malformed or points at something missing."""
