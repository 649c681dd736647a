"""Data sources and the natural-image store for SimCLR training of the ventral model.

* ``download``: HTTP(S) downloads with resume (Range requests onto a ``.part`` file), retries with backoff
  and sha256 verification (stdlib urllib only).
* ``safe_extract``: tar / zip extraction that refuses members escaping the destination and extracts all or
  nothing.
* ``fetch_dataset``: one ``datasets:`` config entry (kinds url, local, packaged, synthetic) -> a folder with
  a ``manifest.csv`` (file, kind, source, sha256).
* ``build_image_store``: random crops of photos plus frames of videos as an HDF5 image store
  split into train / val by source file (docs/reference.md §1: the ventral model trains on natural images).

Modules: ``files`` (suffixes, finding files, the config error), ``download``, ``archives``, ``datasets`` (dataset
entries and packaged media), ``imagestore`` (reading a store: :mod:`tdann.stores`).
"""

from .archives import ArchiveError, UnsafeArchiveError, safe_extract
from .datasets import SKIMAGE_PHOTOS, fetch_dataset, write_manifest
from .download import ChecksumError, DownloadError, download
from .files import DATASET_KINDS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, DatasetConfigError, find_files, find_videos
from .imagestore import build_image_store

__all__ = [
    "DATASET_KINDS", "IMAGE_SUFFIXES", "SKIMAGE_PHOTOS", "VIDEO_SUFFIXES", "ArchiveError", "ChecksumError",
    "DatasetConfigError", "DownloadError", "UnsafeArchiveError", "build_image_store", "download",
    "fetch_dataset", "find_files", "find_videos", "safe_extract", "write_manifest",
]
