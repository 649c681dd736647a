"""Clip decoding in a worker process: a decoder hang or crash on a bad file costs one rejected video, not the job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .frames import BadVideoError, _first_line, _open_reader, center_crop, clip_indices, probe, square_resize

if TYPE_CHECKING:
    pass


_WORKER_MAX_CLIPS = 20_000  # restart the decode worker after this many clips (bounded lifetime)


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
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
        args = f"{child_sock.fileno()}, {','.join(preload)!r}, {os.getpid()}"
        code = f"from tdann.video.worker import _worker_main; _worker_main({args})"
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
