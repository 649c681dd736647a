"""Video files: probing, the clip geometry shared by the decord path and the PyAV reference, reading frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass


RESIZE_MODES = ("exact", "decoder")


class BadVideoError(RuntimeError):
    """A video file cannot be decoded (missing, corrupt, truncated, too short, decoder hang or crash)."""


def scaled_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the short side scaled to ``size`` (aspect kept), as used by the "decoder" path."""
    if height <= width:
        return size, max(size, round(width * size / height))
    return max(size, round(height * size / width)), size


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre ``size x size`` crop of (T, H, W, C) frames."""
    h, w = frames.shape[1:3]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return frames[:, y0 : y0 + size, x0 : x0 + size]


def square_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop (T, H, W, 3) uint8 frames to a square and resize to ``size x size`` (bilinear, antialiased).

    The "exact" resize path: the same function serves decord (``decode_clips``) and the PyAV oracle of the tests.
    """
    import torch
    import torch.nn.functional as F

    side = min(frames.shape[1:3])
    x = torch.from_numpy(np.ascontiguousarray(center_crop(frames, side))).permute(0, 3, 1, 2)  # channels-last
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def clip_indices(n_frames: int, clip_len: int, frame_step: int, stride: int, max_clips: int | None) -> np.ndarray:
    """Frame indices (n_clips, clip_len) of the clips cut from a video of ``n_frames`` decodable frames.

    Clip starts advance by ``stride``; frames within a clip are ``frame_step`` apart. With ``max_clips`` the
    starts are thinned evenly over the whole video (not just the first ones), deterministically.
    """
    span = (clip_len - 1) * frame_step + 1
    starts = np.arange(0, n_frames - span + 1, stride)
    if max_clips is not None and len(starts) > max_clips:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, max_clips)).astype(int)]
    return starts[:, None] + frame_step * np.arange(clip_len)[None, :]


def probe(path: str | Path) -> dict[str, Any]:
    """Container facts read with PyAV without decoding: width, height, fps, nominal and packet frame counts.

    ``n_packets`` (video packets actually present) is an upper bound on the decodable frames, independent
    of decord's own count (which falls back to duration x fps when its packet index fails); requesting
    frames past the real end is what makes decord hang (dmlc/decord#373).
    Raises ``BadVideoError`` naming the file if it cannot be opened or has no video stream.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            n_packets = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
            rate = stream.average_rate or stream.guessed_rate
            return {
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "fps": float(rate) if rate else float("nan"),
                "n_nominal": int(stream.frames),
                "n_packets": n_packets,
            }
    except BadVideoError:
        raise
    except Exception as err:  # PyAV raises many error types (InvalidDataError, OSError, ...)
        raise BadVideoError(f"{path}: cannot open with PyAV: {err}") from err


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, size: int, resize: str = "exact") -> np.ndarray:
    """Decode a few frames of one video with decord, in this process, as (n, size, size, 3) uint8.

    For sampling single frames (image stores). Frames are fetched one by one: a batch of sparse indices
    is the request pattern that can hang decord (dmlc/decord#375). Indices must be below the frame count.
    """
    info = probe(path)
    reader = _open_reader(path, size, resize, 0, info)
    try:
        n = min(len(reader), info["n_packets"])
        bad = [int(i) for i in indices if not 0 <= int(i) < n]
        if bad:
            raise BadVideoError(f"{path}: frame indices {bad[:5]} outside the {n} decodable frames")
        frames = np.stack([reader[int(i)].asnumpy() for i in indices])
    except BadVideoError:
        raise
    except Exception as err:
        raise BadVideoError(f"{path}: decord failed on frames {list(indices)[:5]}: {_first_line(err)}") from err
    finally:
        del reader
    return square_resize(frames, size) if resize == "exact" else np.ascontiguousarray(center_crop(frames, size))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _open_reader(path: str | Path, size: int, resize: str, threads: int, info: dict[str, Any]) -> Any:
    """A decord VideoReader at native size ("exact") or scaled so the short side is ``size`` ("decoder").

    ``info`` is ``probe(path)``. Known limit: for a video with rotation metadata decord rotates before
    scaling, so the "decoder" path would get the aspect ratio wrong; the "exact" path is unaffected.
    """
    import decord

    try:
        if resize == "exact":
            return decord.VideoReader(str(path), num_threads=threads)
        h, w = scaled_shape(info["height"], info["width"], size)
        return decord.VideoReader(str(path), width=w, height=h, num_threads=threads)
    except BadVideoError:
        raise
    except Exception as err:
        raise BadVideoError(f"{path}: decord cannot open it: {_first_line(err)}") from err
