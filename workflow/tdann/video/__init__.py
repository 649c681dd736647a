"""Video for the dorsal (MT) model: synthetic naturalistic clips, decoding into HDF5 clip stores, readers.

The dorsal model (docs/reference.md §1) trains on short clips (3 x 16 x 112 x 112 in the paper) cut from
naturalistic video. This module turns video files into a *clip store*, an HDF5 file of fixed-size uint8 clips:

* ``make_synthetic_video`` writes a procedural stand-in for naturalistic video (1/f texture under smooth
  self-motion plus independently moving objects) as a real H.264 MP4.
* ``decode_clips`` decodes clips with decord in a separate worker process, so that a decoder hang or crash
  on a bad file (known decord failure modes, see :mod:`tdann.video.worker`) costs one rejected video, not the job.
* ``gather_clip_stores`` concatenates shard stores and assigns the train/val split by source video.
* :class:`tdann.stores.Store` reads a store; ``tests/oracles.py::pyav_frames`` is an independent PyAV decode the tests compare with.

Two resize paths give square ``size x size`` frames (both centre-crop the short side):

* ``"decoder"`` (default): decord's ffmpeg scaler resizes (bilinear, short side = ``size``) while converting
  to RGB, then a centre crop. About 2-4x faster than "exact" (no full-resolution RGB frames, no torch in
  the worker); decord bundles an older libswscale than PyAV, so the PyAV oracle (``resize="decoder"``)
  differs by a few grey levels (mean < 1). Needs ``size >= 32`` (a decord bug with narrower frames).
* ``"exact"``: decode at native resolution, centre-crop a square, resize it with torch (bilinear, antialiased).
  the PyAV oracle uses the same resize, so decord and PyAV frames agree bit for bit (docs/reference.md §9).

Modules: ``synthetic`` (procedural video), ``frames`` (probing, frame geometry, reading frames), ``worker`` (the
decode worker process), ``decode`` (clips into a store), ``clipstore`` (gathering shards, the split, reading).
"""

from .clipstore import ClipStoreError, assign_split, gather_clip_stores
from .decode import decode_clips
from .frames import (
    RESIZE_MODES,
    BadVideoError,
    center_crop,
    clip_indices,
    probe,
    read_frames,
    scaled_shape,
    square_resize,
)
from .synthetic import make_synthetic_video, synthetic_frames

__all__ = [
    "RESIZE_MODES", "BadVideoError", "ClipStoreError", "assign_split", "center_crop", "clip_indices",
    "decode_clips", "gather_clip_stores", "make_synthetic_video", "probe", "read_frames", "scaled_shape",
    "square_resize", "synthetic_frames",
]
