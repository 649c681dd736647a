"""Procedural stand-in for naturalistic video: a 1/f texture under smooth self-motion plus moving textured objects, written as H.264 MP4."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass


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
