"""Data sources and the natural-image store for SimCLR training of the ventral model.

* ``download``: HTTP(S) downloads with resume (Range requests onto a ``.part`` file), retries with backoff
  and sha256 verification (stdlib urllib only).
* ``safe_extract``: tar / zip extraction that refuses members escaping the destination and extracts all or
  nothing.
* ``fetch_dataset``: one ``datasets:`` config entry (kinds url, local, packaged, synthetic) -> a folder with
  a ``manifest.csv`` (file, kind, source, sha256).
* ``build_image_store`` / ``ImageStore``: random crops of photos plus frames of videos as an HDF5 image store
  split into train / val by source file (docs/reference.md §1: the ventral model trains on natural images).
* ``store_batches`` / ``store_items`` / ``store_sample``: an image or clip store as model input (screening,
  synthesis).

Modules: ``files`` (suffixes, finding files, the config error), ``download``, ``archives``, ``datasets`` (dataset
entries and packaged media), ``imagestore``, ``stores`` (a store as model input).
"""

from .archives import ArchiveError, UnsafeArchiveError, safe_extract
from .datasets import SKIMAGE_PHOTOS, fetch_dataset, write_manifest
from .download import ChecksumError, DownloadError, download
from .files import DATASET_KINDS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, DatasetConfigError, find_files, find_videos
from .imagestore import ImageStore, build_image_store
from .stores import store_batches, store_items, store_len, store_sample, store_sources

__all__ = [
    "DATASET_KINDS", "IMAGE_SUFFIXES", "SKIMAGE_PHOTOS", "VIDEO_SUFFIXES", "ArchiveError", "ChecksumError",
    "DatasetConfigError", "DownloadError", "ImageStore", "UnsafeArchiveError", "build_image_store", "download",
    "fetch_dataset", "find_files", "find_videos", "safe_extract", "store_batches", "store_items", "store_len",
    "store_sample", "store_sources", "write_manifest",
]
