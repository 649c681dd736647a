"""Video for the dorsal (MT) model: synthetic naturalistic clips, decoding into HDF5 clip stores, readers.

The dorsal model (docs/reference.md §1) trains on short clips (3 x 16 x 112 x 112 in the paper) cut from
naturalistic video. This module turns video files into a *clip store*, an HDF5 file of fixed-size uint8 clips:

* ``make_synthetic_video`` writes a procedural stand-in for naturalistic video (1/f texture under smooth
  self-motion plus independently moving objects) as a real H.264 MP4.
* ``decode_clips`` decodes clips with decord in a separate worker process, so that a decoder hang or crash
  on a bad file (known decord failure modes, see ``_worker_loop``) costs one rejected video, not the job.
* ``gather_clip_stores`` concatenates shard stores and assigns the train/val split by source video.
* ``ClipStore`` reads a store; ``tests/oracles.py::pyav_frames`` is an independent PyAV decode the tests compare with.

Two resize paths give square ``size x size`` frames (both centre-crop the short side):

* ``"decoder"`` (default): decord's ffmpeg scaler resizes (bilinear, short side = ``size``) while converting
  to RGB, then a centre crop. About 2-4x faster than "exact" (no full-resolution RGB frames, no torch in
  the worker); decord bundles an older libswscale than PyAV, so the PyAV oracle (``resize="decoder"``)
  differs by a few grey levels (mean < 1). Needs ``size >= 32`` (a decord bug with narrower frames).
* ``"exact"``: decode at native resolution, centre-crop a square, resize it with torch (bilinear, antialiased).
  the PyAV oracle uses the same resize, so decord and PyAV frames agree bit for bit (docs/reference.md §9).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from tdann.h5io import SPLITS, read_strings, write_dataset

if TYPE_CHECKING:
    import pandas as pd

RESIZE_MODES = ("exact", "decoder")
_WORKER_MAX_CLIPS = 20_000  # restart the decode worker after this many clips (bounded lifetime)


class BadVideoError(RuntimeError):
    """A video file cannot be decoded (missing, corrupt, truncated, too short, decoder hang or crash)."""


class ClipStoreError(ValueError):
    """A clip store (or a shard of one) is missing, malformed or inconsistent with its siblings."""


# ----------------------------------------------------------------------------------------------------------
# Synthetic video
# ----------------------------------------------------------------------------------------------------------


def _pink_noise(rng: np.random.Generator, n: int, exponent: float = 1.0) -> np.ndarray:
    """Periodic n x n noise with a 1/f^exponent amplitude spectrum (natural-image statistics), zero mean, unit std."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = np.inf  # no DC component
    spectrum = f**-exponent * np.exp(2j * np.pi * rng.random(f.shape))
    img = np.fft.irfft2(spectrum, s=(n, n))
    return (img - img.mean()) / img.std()


def _pink_rgb(rng: np.random.Generator, n: int, tint: np.ndarray | None = None) -> np.ndarray:
    """Colour texture in [0, 1]: a 1/f^1.2 luminance field plus weaker, smoother (1/f^2) per-channel colour fields.

    Natural images have amplitude spectra close to 1/f (slopes about 0.8-1.5) and colour that varies more
    slowly than luminance; these exponents are choices in that range, not fitted values.
    """
    lum = _pink_noise(rng, n, 1.2)
    rgb = lum[..., None] + 0.5 * np.stack([_pink_noise(rng, n, 2.0) for _ in range(3)], axis=-1)
    rgb = 0.5 + 0.18 * rgb
    if tint is not None:
        rgb = rgb + tint
    return np.clip(rgb, 0.0, 1.0)


def _ou_step(v: np.ndarray | float, rng: np.random.Generator, sigma: float, tau: float) -> np.ndarray:
    """One step of an Ornstein-Uhlenbeck process with stationary std ``sigma`` and time constant ``tau`` frames."""
    return v * (1.0 - 1.0 / tau) + sigma * np.sqrt(2.0 / tau) * rng.standard_normal(np.shape(v))


def _sample(tex: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear lookup of an (h, w, 3) texture at float coordinates."""
    from scipy.ndimage import map_coordinates

    return np.stack(
        [map_coordinates(tex[..., c], [rows, cols], order=1, mode=mode) for c in range(tex.shape[-1])], axis=-1
    )


def synthetic_frames(n_frames: int, size: int, seed: int, n_objects: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``n_frames`` procedural RGB uint8 frames (size x size), deterministic given ``seed``.

    Background: a periodic colour 1/f texture (twice the frame side) seen by a camera under smooth random
    self-motion (translation, rotation and expansion; each rate an Ornstein-Uhlenbeck process, tau 30
    frames). Foreground: 1-3 textured blobs (disks with wobbly outlines) drifting and spinning on their own
    OU velocities, bouncing off the frame edges.
    """
    rng = np.random.default_rng(seed)
    side = 2 * size
    background = _pink_rgb(rng, side)
    n_obj = int(rng.integers(1, 4)) if n_objects is None else int(n_objects)
    objects: list[dict[str, Any]] = []
    for _ in range(n_obj):
        radius = rng.uniform(0.08, 0.2) * size
        tex_side = int(np.ceil(2.6 * radius)) + 4
        objects.append(
            {
                "radius": radius,
                "pos": rng.uniform(radius, size - radius, 2),
                "vel": rng.normal(0.0, 0.02 * size, 2),
                "angle": 0.0,
                "spin": rng.normal(0.0, 0.03),
                "wobble": rng.uniform(0.0, 0.15, 2),
                "phase": rng.uniform(0.0, 2 * np.pi, 2),
                "tex": _pink_rgb(rng, tex_side, tint=rng.normal(0.0, 0.15, 3)),
            }
        )
    # Output pixel centres relative to the frame centre.
    py, px = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2.0
    cam = np.array([side / 2.0, side / 2.0])  # camera centre in texture (row, col)
    vel = np.zeros(2)
    angle, omega, log_scale, d_log_scale = 0.0, 0.0, 0.0, 0.0
    for _ in range(n_frames):
        c, s, k = np.cos(angle), np.sin(angle), np.exp(log_scale)
        rows = cam[0] + k * (s * px + c * py)
        cols = cam[1] + k * (c * px - s * py)
        frame = _sample(background, rows, cols, mode="grid-wrap")
        for ob in objects:
            dy, dx = py - (ob["pos"][0] - (size - 1) / 2.0), px - (ob["pos"][1] - (size - 1) / 2.0)
            dist, phi = np.hypot(dx, dy), np.arctan2(dy, dx) - ob["angle"]
            edge = ob["radius"] * (
                1 + ob["wobble"][0] * np.cos(phi - ob["phase"][0]) + ob["wobble"][1] * np.cos(2 * phi - ob["phase"][1])
            )
            alpha = np.clip(edge - dist + 0.5, 0.0, 1.0)[..., None]  # one-pixel soft edge
            oc, os_ = np.cos(ob["angle"]), np.sin(ob["angle"])
            centre = (ob["tex"].shape[0] - 1) / 2.0
            tex = _sample(ob["tex"], centre + os_ * dx + oc * dy, centre + oc * dx - os_ * dy, mode="nearest")
            frame = alpha * tex + (1 - alpha) * frame
        yield np.round(frame * 255).astype(np.uint8)
        # Advance the camera (self-motion) and the objects.
        vel = _ou_step(vel, rng, 0.01 * size, 30.0)
        omega = float(_ou_step(omega, rng, 0.004, 30.0))
        d_log_scale = float(_ou_step(d_log_scale, rng, 0.003, 30.0))
        cam, angle = cam + vel, angle + omega
        log_scale = float(np.clip(log_scale + d_log_scale - 0.02 * log_scale, -0.5, 0.5))
        for ob in objects:
            ob["vel"] = _ou_step(ob["vel"], rng, 0.02 * size, 30.0)
            ob["pos"] = ob["pos"] + ob["vel"]
            ob["angle"] += ob["spin"]
            for d in range(2):  # bounce off the frame edges
                lo, hi = ob["radius"], size - ob["radius"]
                if not lo <= ob["pos"][d] <= hi:
                    ob["pos"][d] = np.clip(ob["pos"][d], lo, hi)
                    ob["vel"][d] = -ob["vel"][d]


def make_synthetic_video(
    path: str | Path, n_frames: int, size: int, fps: float, seed: int, n_objects: int | None = None
) -> Path:
    """Write a procedural naturalistic video (see ``synthetic_frames``) as an H.264 (yuv420p) MP4.

    The encoder runs single-threaded so the file is byte-identical for a given seed on any machine.
    The file is written beside ``path`` and renamed into place, so a crash leaves no partial video.
    """
    import av

    path = Path(path)
    if int(n_frames) < 1:
        raise ValueError(f"make_synthetic_video: n_frames must be >= 1, got {n_frames!r}")
    if int(size) < 16 or int(size) % 2:
        raise ValueError(f"make_synthetic_video: size must be an even number >= 16 (yuv420p), got {size!r}")
    if not float(fps) > 0:
        raise ValueError(f"make_synthetic_video: fps must be > 0, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            rate = Fraction(float(fps)).limit_denominator(1001)
            stream = container.add_stream("libx264", rate=rate)
            stream.codec_context.time_base = 1 / rate
            stream.width = stream.height = int(size)
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            # mbtree off: x264's macroblock-tree rate control gave run-to-run different bytes on identical input
            stream.options = {"crf": "18", "preset": "fast", "x264-params": "mbtree=0"}
            for i, rgb in enumerate(synthetic_frames(int(n_frames), int(size), seed, n_objects)):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i  # explicit timestamps: x264's rate control reads them (unset ones vary run to run)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------------------------------------
# Geometry shared by the decord path and the PyAV reference
# ----------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------
# Clip decoding in a worker process
# ----------------------------------------------------------------------------------------------------------


def _in_tail(k: int, idx: np.ndarray, tail_start: int) -> bool:
    """Whether a failure on clip ``k`` (frames ``idx``) counts as an unreadable tail rather than a bad video."""
    return k > 0 and int(idx[-1]) >= tail_start


def _forgivable(info: dict[str, Any] | None, k: int) -> bool:
    """Whether losing the worker while it decodes clip ``k`` may end the video early (clips 0..k-1 kept):
    all clips were already delivered, or clip k lies in the tail (the same rule as for decode errors)."""
    if info is None:
        return False
    return k >= len(info["clips"]) or _in_tail(k, info["clips"][k], info["tail_start"])


def _video_clips(path: str, p: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """Decode one video's clips with decord: yields ("meta", info, None), then ("clip", indices, frames)...

    decord pitfalls handled here: the frame count is clamped to the demuxed packet count (decord's count
    can exceed the frames present); clips are requested as increasing index runs, never sparse jumps
    (dmlc/decord#375); a decode error in the tail (``info["tail_start"]`` on: last 10% of frames or the last
    clip span) ends the video early, keeping the clips before it, while an earlier error rejects the video;
    the reader is reopened every ``reopen_every`` clips and deleted, bounding what a long file can pin.
    A hang (dmlc/decord#373: packets that never decode) is left to the parent's timeout.
    """
    info = probe(path)
    reader = _open_reader(path, p["size"], p["resize"], p["threads"], info)
    info["n_decord"] = len(reader)
    info["fps"] = float(reader.get_avg_fps()) or info["fps"]
    n = min(info["n_decord"], info["n_packets"])
    clips = clip_indices(n, p["clip_len"], p["frame_step"], p["stride"], p["max_clips"])
    if not len(clips):
        span = (p["clip_len"] - 1) * p["frame_step"] + 1
        raise BadVideoError(f"{path}: too short: {n} decodable frames, a clip spans {span}")
    info.update(n_frames=n, clips=clips, tail_start=n - max(n // 10, (p["clip_len"] - 1) * p["frame_step"] + 1))
    yield "meta", info, None
    for k, idx in enumerate(clips):
        if k and k % p["reopen_every"] == 0:
            del reader
            reader = _open_reader(path, p["size"], p["resize"], p["threads"], info)
        try:
            frames = reader.get_batch(idx.tolist()).asnumpy()
            if frames.shape[0] != len(idx):
                raise RuntimeError(f"decord returned {frames.shape[0]} frames for {len(idx)} indices")
        except Exception as err:
            if _in_tail(k, idx, info["tail_start"]):
                return  # unreadable tail: keep the complete clips before it
            raise BadVideoError(f"{path}: decode error in frames {idx[0]}-{idx[-1]}: {_first_line(err)}") from err
        if p["resize"] == "exact":
            frames = square_resize(frames, p["size"])
        else:
            frames = np.ascontiguousarray(center_crop(frames, p["size"]))
        yield "clip", idx, frames
    del reader


def _worker_main(fd: int, preload: str, parent_pid: int) -> None:
    """Worker process body: decode each requested video and stream its clips back over socket ``fd``.

    Runs in a separate process because decord can hang forever in native code (dmlc/decord#269, #373, #375)
    or crash on malformed input; the parent kills a silent worker and carries on with a fresh one.
    """
    import importlib

    _die_with_parent(parent_pid)
    for module in filter(None, preload.split(",")):
        importlib.import_module(module)  # before "ready", so imports do not count against the decode timeout
    conn = Connection(fd)
    conn.send(("ready", os.getpid(), None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if request is None:
            return
        path, params = request
        try:
            for message in _video_clips(path, params):
                conn.send(message)
            conn.send(("end", None, None))
        except BadVideoError as err:
            conn.send(("bad", str(err), None))
        except Exception as err:  # anything else is still this video's problem, not the worker's
            conn.send(("bad", f"{path}: {type(err).__name__}: {_first_line(err)}", None))


def _die_with_parent(parent_pid: int) -> None:
    """In the worker (Linux): get SIGKILL when the parent dies, so a hung decoder is never orphaned."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class _DecodeWorker:
    """A decoding subprocess, started with ``python -c`` rather than multiprocessing (whose spawn method
    re-imports ``__main__``, i.e. would re-run a Snakemake script), with a timeout on every message."""

    def __init__(self, timeout_s: float, preload: Sequence[str], start_timeout_s: float = 300.0) -> None:
        import socket

        self.timeout_s = timeout_s
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
        args = f"{child_sock.fileno()}, {','.join(preload)!r}, {os.getpid()}"
        code = f"from tdann.video import _worker_main; _worker_main({args})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(child_sock.fileno(),), env=env)
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.clips_done = 0
        if not self.conn.poll(start_timeout_s) or self.conn.recv()[0] != "ready":
            self.kill()
            raise RuntimeError(f"decode worker did not start within {start_timeout_s:g} s")

    def decode(self, path: str, params: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
        """Send one video; yield the worker's messages. A hang or a death yields ("lost", reason)."""
        self.conn.send((path, params))
        while True:
            if not self.conn.poll(self.timeout_s):
                self.kill()
                yield "lost", f"{path}: decoder silent for {self.timeout_s:g} s (hang); worker killed", None
                return
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                yield "lost", f"{path}: decoder process died (exit status {self.proc.wait()})", None
                return
            self.clips_done += message[0] == "clip"
            yield message
            if message[0] in ("end", "bad"):
                return

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within 10 s."""
        if self.alive:
            try:
                self.conn.send(None)
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.conn.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


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


# ----------------------------------------------------------------------------------------------------------
# Gathering shards, splitting by source, reading
# ----------------------------------------------------------------------------------------------------------


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


class ClipStore:
    """Read-only access to a clip store: ``len``, ``store[i]`` -> uint8 (T, H, W, 3), ``indices(split)``.

    The HDF5 file is opened lazily (and dropped when pickled), so a store can be handed to DataLoader workers.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ClipStoreError(f"ClipStore: {self.path} does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = dict(f.attrs)
                self.clip_video = f["clip_video"][()]
                self.video_split = f["video_split"][()]
                self.videos = read_strings(f["videos"])
                self.shape = f["clips"].shape
        except (OSError, KeyError) as err:
            raise ClipStoreError(f"ClipStore: {self.path} is not a clip store: {err}") from err
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file["clips"][i]

    def indices(self, split: str) -> np.ndarray:
        """Clip indices of ``split`` ("train" or "val"), split by source video."""
        if split not in SPLITS:
            raise ValueError(f"ClipStore.indices: split must be one of {list(SPLITS)}, got {split!r}")
        return np.flatnonzero(self.video_split[self.clip_video] == SPLITS[split])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}
