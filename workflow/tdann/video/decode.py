"""Decoding videos into an HDF5 clip store (fixed-size uint8 clips, one chunk per clip), with rejects recorded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from tdann.h5io import write_dataset

from .frames import RESIZE_MODES, BadVideoError
from .worker import _WORKER_MAX_CLIPS, _DecodeWorker, _forgivable

if TYPE_CHECKING:
    import pandas as pd


_COMPRESSION: dict[str | None, dict[str, Any]] = {"lzf": {"compression": "lzf"}, "gzip": {"compression": "gzip", "compression_opts": 1}, None: {}}


def _create_clips(f: h5py.File, n: int, clip_shape: tuple[int, ...], **opts: Any) -> h5py.Dataset:
    """The ``clips`` dataset: (n, T, H, W, 3) uint8, one chunk per clip, growable."""
    return write_dataset(
        f,
        "clips",
        None,
        "video clips, frames centre-cropped and resized to size x size, RGB",
        units="grey level (0-255)",
        shape=(n, *clip_shape),
        maxshape=(None, *clip_shape),
        dtype="uint8",
        chunks=(1, *clip_shape),
        **opts,
    )


def _write_clip_index(f: h5py.File, clip_video: np.ndarray, clip_frames: np.ndarray) -> None:
    write_dataset(f, "clip_video", clip_video.astype(np.int32), "index into `videos` of each clip's source video")
    write_dataset(
        f,
        "clip_frames",
        clip_frames.astype(np.int32),
        "frame indices (presentation order) of each clip in its source video",
        units="frame",
    )


class _ClipWriter:
    """Appends clips to the ``clips`` dataset (growing it in blocks) and can roll back to an earlier count;
    the per-clip index (video, frame indices) is kept in memory and written by ``finish``."""

    def __init__(self, f: h5py.File, clip_len: int, size: int, compression: str | None) -> None:
        self.f = f
        self.clips = _create_clips(f, 0, (clip_len, size, size, 3), **_COMPRESSION[compression])
        self.video: list[int] = []
        self.frames: list[np.ndarray] = []

    @property
    def n(self) -> int:
        return len(self.video)

    def append(self, video: int, indices: np.ndarray, frames: np.ndarray) -> None:
        if self.n == self.clips.shape[0]:
            self.clips.resize(self.n + max(64, self.n), axis=0)
        self.clips[self.n] = frames
        self.video.append(video)
        self.frames.append(indices)

    def rollback(self, n: int) -> None:
        del self.video[n:], self.frames[n:]

    def finish(self) -> None:
        self.clips.resize(self.n, axis=0)
        frames = np.stack(self.frames) if self.frames else np.zeros((0, self.clips.shape[1]), np.int32)
        _write_clip_index(self.f, np.asarray(self.video, np.int32), frames)


def _write_video_table(f: h5py.File, videos: list[str], fps: list[float], n_frames: list[int]) -> None:
    write_dataset(f, "videos", np.asarray(videos, dtype=object), "source video paths (only videos with clips)")
    write_dataset(f, "video_fps", np.asarray(fps, dtype=np.float64), "average frame rate of each video", units="Hz")
    write_dataset(
        f,
        "video_frames",
        np.asarray(n_frames, dtype=np.int64),
        "decodable frames of each video (container count clamped to packets present)",
        units="frame",
    )


def decode_clips(
    videos: Sequence[str | Path],
    out: str | Path,
    clip_len: int,
    size: int,
    frame_step: int = 1,
    stride: int | None = None,
    max_clips_per_video: int | None = None,
    on_bad_video: str = "reject",
    resize: str = "decoder",
    compression: str | None = "lzf",
    timeout_s: float = 120.0,
    reopen_every: int = 256,
    threads: int = 0,
) -> pd.DataFrame:
    """Cut fixed-length clips from videos with decord into an HDF5 clip store; return the rejects table.

    Clip k of a video holds frames ``start_k + frame_step * [0 .. clip_len)`` (indices, not timestamps, so
    variable frame rates are harmless; the average fps is recorded), starts ``stride`` apart (default
    ``clip_len * frame_step``: non-overlapping); ``max_clips_per_video`` thins the starts evenly. Frames are
    made square by ``resize`` ("exact" or "decoder", see the module docstring). Store layout: ``clips``
    (N, T, size, size, 3) uint8 chunked per clip (``compression`` "lzf", "gzip" (level 1) or None),
    ``clip_video`` (N,), ``clip_frames`` (N, T), per video ``videos``, ``video_fps``, ``video_frames``,
    ``video_split``; attrs clip_len, size, frame_step, stride, resize.

    decord runs in a worker process (``threads`` decoder threads; reader reopened every ``reopen_every``
    clips). A worker silent for ``timeout_s`` is killed (a hang) and replaced. A video that cannot be
    decoded is dropped whole, its clips so far rolled back; only a failure in the tail of a video (last
    10% of frames) keeps the clips before it. With ``on_bad_video="reject"`` dropped videos are listed in
    the returned DataFrame (columns video, reason); with "fail" ``BadVideoError`` naming the file is raised
    and no store is written. The store is written to a temporary file and renamed at the end, so a crash
    leaves no half store.
    """
    import pandas as pd

    stride = clip_len * frame_step if stride is None else stride
    for name, value in {
        "clip_len": clip_len,
        "size": size,
        "frame_step": frame_step,
        "stride": stride,
        "reopen_every": reopen_every,
    }.items():
        if int(value) < 1:
            raise ValueError(f"decode_clips: {name} must be >= 1, got {value!r}")
    if max_clips_per_video is not None and int(max_clips_per_video) < 1:
        raise ValueError(f"decode_clips: max_clips_per_video must be >= 1 or None, got {max_clips_per_video!r}")
    if on_bad_video not in ("reject", "fail"):
        raise ValueError(f"decode_clips: on_bad_video must be 'reject' or 'fail', got {on_bad_video!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"decode_clips: resize must be one of {RESIZE_MODES}, got {resize!r}")
    if compression not in _COMPRESSION:
        raise ValueError(f"decode_clips: compression must be 'lzf', 'gzip' or None, got {compression!r}")
    if resize == "decoder" and int(size) < 32:
        # decord 0.6 mistakes padded rows of frames 8-24 px wide for compact ones and fails on every frame
        raise ValueError(f"decode_clips: resize='decoder' needs size >= 32 (decord bug), got {size}; use 'exact'")
    params: dict[str, Any] = {
        "clip_len": int(clip_len),
        "size": int(size),
        "frame_step": int(frame_step),
        "stride": int(stride),
        "max_clips": None if max_clips_per_video is None else int(max_clips_per_video),
        "resize": resize,
        "threads": int(threads),
        "reopen_every": int(reopen_every),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    rejects: list[dict[str, str]] = []
    kept: list[str] = []
    fps: list[float] = []
    n_frames: list[int] = []
    preload = ["numpy", "decord", "av"] + (["torch"] if resize == "exact" else [])
    worker: _DecodeWorker | None = None
    try:
        with h5py.File(tmp, "w") as f:
            writer = _ClipWriter(f, params["clip_len"], params["size"], compression)
            for video in map(str, videos):
                if worker is not None and (not worker.alive or worker.clips_done >= _WORKER_MAX_CLIPS):
                    worker.close()  # bounded worker lifetime: whatever decord leaks goes with the process
                    worker = None
                if worker is None:
                    worker = _DecodeWorker(timeout_s, preload)
                start, reason = writer.n, None
                info: dict[str, Any] | None = None
                if not Path(video).is_file():
                    reason = f"{video}: no such file"
                else:
                    for kind, a, b in worker.decode(video, params):
                        if kind == "meta":
                            info = a
                        elif kind == "clip":
                            writer.append(len(kept), a, b)
                        elif kind == "bad" or (kind == "lost" and not _forgivable(info, writer.n - start)):
                            reason = a
                if reason is not None:
                    writer.rollback(start)
                    if on_bad_video == "fail":
                        raise BadVideoError(reason)
                    rejects.append({"video": video, "reason": reason})
                    continue
                assert info is not None, f"{video}: the decoder sent clips without the video's metadata"
                kept.append(video)
                fps.append(info["fps"])
                n_frames.append(info["n_frames"])
            writer.finish()
            _write_video_table(f, kept, fps, n_frames)
            write_dataset(
                f,
                "video_split",
                np.zeros(len(kept), np.uint8),
                "split of each video: 0 train, 1 val (assigned by gather_clip_stores)",
            )
            f.attrs.update(
                {
                    "clip_len": params["clip_len"],
                    "size": params["size"],
                    "frame_step": params["frame_step"],
                    "stride": params["stride"],
                    "resize": resize,
                    "val_fraction": 0.0,
                    "split_seed": -1,
                    "max_clips_per_video": -1 if params["max_clips"] is None else params["max_clips"],
                    "n_clips": writer.n,
                    "n_videos": len(kept),
                    "n_rejected": len(rejects),
                }
            )
        os.replace(tmp, out)
    finally:
        if worker is not None:
            worker.close()
        tmp.unlink(missing_ok=True)
    return pd.DataFrame(rejects, columns=["video", "reason"])
