"""Clip stores: gathering decoded shards, the train / val split by source video, reading clips."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from tdann.h5io import read_strings, write_dataset

from .decode import _create_clips, _write_clip_index, _write_video_table

if TYPE_CHECKING:
    pass


class ClipStoreError(ValueError):
    """A clip store (or a shard of one) is missing, malformed or inconsistent with its siblings."""


def assign_split(sources: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Train (0) / val (1) label per entry of ``sources``, assigned per *distinct* source, deterministically.

    The distinct sources are sorted, shuffled with ``seed`` and the first ``round(val_fraction * n)`` go to
    val (at least one, and never all, when ``val_fraction > 0`` and there are two or more sources). Equal
    names get equal labels, so no source leaks across the split, and the result does not depend on order.
    """
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    names = sorted(set(sources))
    n_val = int(round(val_fraction * len(names)))
    if val_fraction > 0 and len(names) >= 2:
        n_val = min(max(n_val, 1), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    val = {names[i] for i in order[:n_val]}
    return np.array([1 if s in val else 0 for s in sources], dtype=np.uint8)


_SCHEMA_ATTRS = ("clip_len", "size", "frame_step", "stride", "resize")


def gather_clip_stores(
    shards: Sequence[str | Path], out: str | Path, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, int]:
    """Concatenate clip-store shards into one store and assign the train/val split by source video.

    Clips are copied one compressed chunk at a time (``read_direct_chunk``), so memory does not grow with
    the number of clips; video indices are offset per shard. Shards must agree on clip_len, size,
    frame_step, stride, resize and compression. Returns counts (n_clips, n_videos, n_val_videos).
    """
    paths = [Path(s) for s in shards]
    if not paths:
        raise ClipStoreError("gather_clip_stores: no shards given")
    for s in paths:
        if not s.is_file():
            raise ClipStoreError(f"gather_clip_stores: shard {s} does not exist")
    with h5py.File(paths[0], "r") as f0:
        schema = {k: f0.attrs[k] for k in _SCHEMA_ATTRS}
        filters = (f0["clips"].compression, f0["clips"].compression_opts, f0["clips"].chunks)
        clip_shape = f0["clips"].shape[1:]
    videos, fps, n_frames, total = [], [], [], 0
    for s in paths:
        with h5py.File(s, "r") as f:
            for key, value in schema.items():
                if f.attrs.get(key) != value:
                    raise ClipStoreError(
                        f"gather_clip_stores: shard {s} has {key}={f.attrs.get(key)!r}, "
                        f"first shard {paths[0]} has {value!r}"
                    )
            got = (f["clips"].compression, f["clips"].compression_opts, f["clips"].chunks)
            if got != filters:
                raise ClipStoreError(f"gather_clip_stores: shard {s} stores clips as {got}, first shard as {filters}")
            videos += read_strings(f["videos"])
            fps += list(f["video_fps"][()])
            n_frames += list(f["video_frames"][()])
            total += f["clips"].shape[0]
    split = assign_split(videos, val_fraction, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with h5py.File(tmp, "w") as g:
            opts = {"compression": filters[0], "compression_opts": filters[1]} if filters[0] else {}
            clips = _create_clips(g, total, clip_shape, **opts)
            clip_video = np.empty(total, np.int32)
            clip_frames = np.empty((total, clip_shape[0]), np.int32)
            pos, video_offset = 0, 0
            for s in paths:
                with h5py.File(s, "r") as f:
                    src, n = f["clips"], f["clips"].shape[0]
                    for i in range(n):  # copy the compressed chunk as is: no decompression, bounded memory
                        mask, chunk = src.id.read_direct_chunk((i, 0, 0, 0, 0))
                        clips.id.write_direct_chunk((pos + i, 0, 0, 0, 0), chunk, mask)
                    clip_video[pos : pos + n] = f["clip_video"][()] + video_offset
                    clip_frames[pos : pos + n] = f["clip_frames"][()]
                    pos, video_offset = pos + n, video_offset + f["videos"].shape[0]
            _write_clip_index(g, clip_video, clip_frames)
            _write_video_table(g, videos, fps, n_frames)
            write_dataset(g, "video_split", split, "split of each video: 0 train, 1 val (by source video)")
            g.attrs.update(
                {
                    **schema,
                    "val_fraction": float(val_fraction),
                    "split_seed": int(seed),
                    "n_clips": total,
                    "n_videos": len(videos),
                    "n_shards": len(paths),
                }
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"n_clips": total, "n_videos": len(videos), "n_val_videos": int(split.sum())}
