"""Evaluation stimuli: gratings, drifting gratings, random-dot kinematograms, a category localizer,
moving disks for the spiking speed channels, and their HDF5 storage.

Every generator is deterministic given its arguments (and ``seed``) and returns ``(stimuli, params)``:
``stimuli`` is float32 in [0, 1], shaped (N, 3, H, W) for images or (N, 3, T, H, W) for clips (the models'
channel-first layout); ``params`` is a pandas DataFrame with one row per stimulus.

Geometry convention (all generators): images are square, ``size`` pixels a side. Angles are in degrees,
counter-clockwise from the rightward image axis with *up* positive (up = decreasing row index), so 0 deg points
right and 90 deg points up. Grating *orientation* is the orientation of the bars (the iso-luminance lines):
0 = horizontal bars, 90 = vertical bars. *Direction* is the direction of motion, perpendicular to the bars.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import string
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pandas as pd

from tdann.data import IMAGE_SUFFIXES
from tdann.h5io import read_strings, write_dataset

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    import torch

CATEGORIES = ("faces", "bodies", "characters", "places", "objects")

# fLoc sub-folder -> localizer category (Stigliani et al. 2015; docs/reference.md §4: 10 categories x 144 images).
FLOC_SUBFOLDERS = {
    "adult": "faces",
    "child": "faces",
    "body": "bodies",
    "limb": "bodies",
    "word": "characters",
    "number": "characters",
    "house": "places",
    "corridor": "places",
    "car": "objects",
    "instrument": "objects",
}



class StimulusError(ValueError):
    """A stimulus argument, file or folder is invalid."""


# --------------------------------------------------------------------------------------------------
# validation and geometry helpers
# --------------------------------------------------------------------------------------------------


def _check_size(size: int, name: str = "size", minimum: int = 8) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < minimum:
        raise StimulusError(f"{name} must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise StimulusError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_positive_list(values: Sequence[float], name: str, upper: float | None = None) -> list[float]:
    vals = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=float))]
    if not vals or any(not np.isfinite(v) or v <= 0 for v in vals):
        raise StimulusError(f"{name} must be a non-empty list of positive numbers, got {values!r}")
    if upper is not None and any(v >= upper for v in vals):
        raise StimulusError(f"{name} must all be < {upper:g} (Nyquist / aliasing limit), got {values!r}")
    return vals


def _check_contrast(contrast: float) -> float:
    if not 0 < float(contrast) <= 1:
        raise StimulusError(f"contrast must be in (0, 1], got {contrast!r}")
    return float(contrast)


def _image_coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in image widths, origin at the image centre: x right, y up. Shapes (H, W)."""
    c = (np.arange(size) - (size - 1) / 2) / size
    x = np.broadcast_to(c[None, :], (size, size))
    y = np.broadcast_to(-c[:, None], (size, size))
    return x, y


def _unit(deg: float) -> tuple[float, float]:
    rad = np.deg2rad(deg)
    return float(np.cos(rad)), float(np.sin(rad))


# --------------------------------------------------------------------------------------------------
# gratings
# --------------------------------------------------------------------------------------------------

# Colour variants of a grating: channel weights of the modulation (R, G, B) around mid-gray.
# "red_green" and "blue_yellow" are colour-opponent variants (not calibrated for isoluminance); the original set
# uses two colours, black / white ("gray") and red / cyan ("red_cyan") (docs/reference.md §3). The config schema lists
# these names (a typo stops the dry run).
GRATING_COLOURS = {
    "gray": (1.0, 1.0, 1.0),
    "red_green": (1.0, -1.0, 0.0),
    "red_cyan": (1.0, -1.0, -1.0),  # the published set's colour gratings (docs/reference.md §3)
    "blue_yellow": (-1.0, -1.0, 1.0),
}


def _colourise(modulation: np.ndarray, colour: str, contrast: float) -> np.ndarray:
    """(..., H, W) modulation in [-1, 1] -> (3, ..., H, W) RGB in [0, 1] around mid-gray."""
    if colour not in GRATING_COLOURS:
        raise StimulusError(f"unknown grating colour {colour!r}; choose from {sorted(GRATING_COLOURS)}")
    w = np.asarray(GRATING_COLOURS[colour], dtype=np.float32).reshape((3,) + (1,) * modulation.ndim)
    return (0.5 + 0.5 * contrast * w * modulation[None]).astype(np.float32)


def gratings(
    size: int,
    orientations: int = 16,
    sfs: Sequence[float] = (2.0, 4.0, 8.0),
    phases: int = 5,
    colours: Sequence[str] = ("gray",),
    contrast: float = 1.0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Static full-field sine gratings, (N, 3, H, W), N = orientations x sfs x phases x colours.

    The original TDANN set (docs/reference.md §3) is 8 orientations x 8 SFs x 5 phases x 2 colours = 640.
    ``orientations`` evenly spaced bar orientations in [0, 180) deg (0 = horizontal bars, counter-clockwise, see the
    module docstring); ``sfs`` in cycles per image (must stay below the Nyquist limit size / 2); ``phases`` evenly
    spaced in [0, 2 pi); ``colours`` from :data:`GRATING_COLOURS` ("gray" plus colour-opponent variants).
    Luminance: ``0.5 + 0.5 * contrast * sin(2 pi sf (x . n) + phase)``, with n the unit normal to the bars
    (n points at orientation + 90 deg) and x in image widths from the image centre.
    Columns: orientation (deg), sf (cycles/image), phase (rad), colour.
    """
    size = _check_size(size)
    n_ori = _check_count(orientations, "orientations")
    n_ph = _check_count(phases, "phases")
    sf_list = _check_positive_list(sfs, "sfs", upper=size / 2)
    contrast = _check_contrast(contrast)
    if isinstance(colours, str) or not colours:
        raise StimulusError(f"colours must be a non-empty list of names, got {colours!r}")
    x, y = _image_coords(size)
    images, rows = [], []
    for colour in colours:
        for ori in np.arange(n_ori) * 180.0 / n_ori:
            nx, ny = _unit(ori + 90.0)
            proj = x * nx + y * ny
            for sf in sf_list:
                for phase in np.arange(n_ph) * 2 * np.pi / n_ph:
                    images.append(_colourise(np.sin(2 * np.pi * sf * proj + phase), colour, contrast))
                    rows.append({"orientation": float(ori), "sf": sf, "phase": float(phase), "colour": colour})
    return np.stack(images), pd.DataFrame(rows)


def drifting_gratings(
    size: int,
    frames: int,
    directions: int = 16,
    sfs: Sequence[float] = (2.0, 4.0),
    tfs: Sequence[float] = (1.0, 2.0, 4.0),
    contrast: float = 1.0,
    phases: int = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Drifting sine gratings as clips, (N, 3, T, H, W), N = directions x sfs x tfs x phases.

    ``phases`` start phases evenly spaced in [0, 2 pi): repeats of every condition that a linear probe of direction
    can be trained on one phase and tested on another (tuning curves average over them).

    ``directions`` evenly spaced in [0, 360) deg: the direction of motion (0 = rightward, 90 = upward),
    perpendicular to the bars. ``sfs`` in cycles per image. ``tfs`` in **cycles per clip** (temporal cycles over the
    ``frames`` frames; an integer tf makes the clip loop seamlessly); the phase step per frame is 2 pi tf / frames and
    must stay below pi (tf < frames / 2) to avoid temporal aliasing.
    Luminance at frame t: ``0.5 + 0.5 * contrast * sin(2 pi (sf (x . d) - tf t / frames) + phase)`` with d the
    unit motion vector, so the bars move along d.
    Columns: phase (rad), direction (deg), orientation (bar orientation, = (direction + 90) mod 180, same convention as
    :func:`gratings`), axis (motion axis, = direction mod 180), sf (cycles/image), tf (cycles/clip),
    tf_per_frame (cycles/frame), speed (= tf_per_frame / sf, image widths per frame), speed_px (pixels per frame).
    """
    size = _check_size(size)
    frames = _check_count(frames, "frames")
    n_dir = _check_count(directions, "directions")
    sf_list = _check_positive_list(sfs, "sfs", upper=size / 2)
    tf_list = _check_positive_list(tfs, "tfs", upper=frames / 2)
    contrast = _check_contrast(contrast)
    n_ph = _check_count(phases, "phases")
    x, y = _image_coords(size)
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    clips: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    for direction in np.arange(n_dir) * 360.0 / n_dir:
        dx, dy = _unit(direction)
        proj = (x * dx + y * dy)[None]
        for sf, tf, phase in itertools.product(sf_list, tf_list, np.arange(n_ph) * 2 * np.pi / n_ph):
            clips.append(_colourise(np.sin(2 * np.pi * (sf * proj - tf * t / frames) + phase), "gray", contrast))
            speed = tf / frames / sf
            rows.append({
                "phase": float(phase),
                "direction": float(direction),
                "orientation": float((direction + 90.0) % 180.0),
                "axis": float(direction % 180.0),
                "sf": sf,
                "tf": tf,
                "tf_per_frame": tf / frames,
                "speed": speed,
                "speed_px": speed * size,
            })
    return np.stack(clips), pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# random-dot kinematograms
# --------------------------------------------------------------------------------------------------


def _rdk_positions(
    size: int, frames: int, n_dots: int, direction: float, coherence: float, speed: float,
    lifetime: int | None, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dot centres (T, n, 2) as (x = column, y = row) pixels, the signal mask (n,) and a born-this-frame mask (T, n).

    Exactly ``round(coherence * n)`` dots are signal dots (fixed identities) and move ``speed`` pixels per frame in
    ``direction``; the others move at the same speed in their own random direction, redrawn when they respawn
    ("random direction" noise). Positions wrap around the image. With a finite ``lifetime`` each dot lives that many
    frames (initial ages staggered uniformly) and then respawns at a random position.
    """
    n_signal = int(round(coherence * n_dots))
    signal = np.zeros(n_dots, dtype=bool)
    signal[rng.permutation(n_dots)[:n_signal]] = True
    # image y is up, rows go down: a motion of +dy (up) decreases the row
    dx, dy = _unit(direction)
    signal_step = np.array([dx, -dy]) * speed

    def noise_steps(k: int) -> np.ndarray:
        ang = rng.uniform(0, 2 * np.pi, k)
        return np.stack([np.cos(ang), -np.sin(ang)], axis=1) * speed

    pos = rng.uniform(0, size, (n_dots, 2))
    step = np.where(signal[:, None], signal_step[None], noise_steps(n_dots))
    age = rng.integers(0, lifetime, n_dots) if lifetime else np.zeros(n_dots, dtype=int)
    out = np.empty((frames, n_dots, 2))
    born = np.zeros((frames, n_dots), dtype=bool)
    for t in range(frames):
        if t > 0:
            pos = (pos + step) % size
            age += 1
            if lifetime:
                dead = age >= lifetime
                if dead.any():
                    k = int(dead.sum())
                    pos[dead] = rng.uniform(0, size, (k, 2))
                    age[dead] = 0
                    step[dead & ~signal] = noise_steps(int((dead & ~signal).sum()))
                    born[t] = dead
        out[t] = pos
    return out, signal, born


def _render_dots(centres: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Anti-aliased white disks on black at pixel centres, wrapping around the borders. centres: (n, 2) (x, y)."""
    frame = np.zeros((size, size), dtype=np.float32)
    reach = int(np.ceil(radius + 1))
    offs = np.arange(-reach, reach + 1)
    base = np.floor(centres).astype(int)  # (n, 2)
    cols = base[:, 0, None, None] + offs[None, None, :]  # (n, 1, k)
    rows = base[:, 1, None, None] + offs[None, :, None]  # (n, k, 1)
    dist = np.hypot(cols - centres[:, 0, None, None], rows - centres[:, 1, None, None])
    cover = np.clip(radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    rr = np.broadcast_to(rows % size, cover.shape).ravel()
    cc = np.broadcast_to(cols % size, cover.shape).ravel()
    np.maximum.at(frame, (rr, cc), cover.ravel())
    return frame


def random_dots(
    size: int,
    frames: int,
    directions: int = 16,
    coherences: Sequence[float] = (1.0, 0.5),
    speeds: Sequence[float] = (1.0, 2.0, 4.0),
    density: float = 0.02,
    dot_radius: float = 1.0,
    lifetime: int | None = 8,
    seed: int = 0,
    repeats: int = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Random-dot kinematograms, (N, 3, T, H, W), N = directions x coherences x speeds x repeats. ``repeats`` draws
    of new dots per condition (column ``repeat``), so that a linear probe of direction can be trained on some dot
    patterns and tested on others (tuning curves average over them). White anti-aliased dots (radius ``dot_radius``
    px) on black. ``density`` in dots per pixel (n_dots = max(1, round(density * size**2))). A fraction
    ``coherence`` of the dots (fixed identities) moves ``speed`` pixels per frame in ``direction`` (deg, 0 = right,
    90 = up); the rest move at the same speed in random directions. Dots wrap around the borders; each lives
    ``lifetime`` frames (None = forever) and then respawns at a random position. Every clip draws its own dots from
    ``seed`` and its row index.
    Columns: direction (deg), coherence, speed (pixels/frame), n_dots, repeat.
    """
    size = _check_size(size)
    frames = _check_count(frames, "frames")
    n_dir = _check_count(directions, "directions")
    speed_list = _check_positive_list(speeds, "speeds", upper=size / 2)
    coh_list = [float(c) for c in coherences]
    if not coh_list or any(not 0 <= c <= 1 for c in coh_list):
        raise StimulusError(f"coherences must be a non-empty list of values in [0, 1], got {coherences!r}")
    if not density > 0:
        raise StimulusError(f"density must be > 0 dots per pixel, got {density!r}")
    if not 0 < dot_radius < size / 4:
        raise StimulusError(f"dot_radius must be in (0, size / 4) pixels, got {dot_radius!r}")
    if lifetime is not None:
        lifetime = _check_count(lifetime, "lifetime")
    n_dots = max(1, int(round(density * size * size)))
    clips: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    n_rep = _check_count(repeats, "repeats")
    for direction in np.arange(n_dir) * 360.0 / n_dir:
        for coherence, speed, rep in itertools.product(coh_list, speed_list, range(n_rep)):
            rng = np.random.default_rng([seed, len(rows)])
            pos, _, _ = _rdk_positions(size, frames, n_dots, direction, coherence, speed, lifetime, rng)
            clip = np.stack([_render_dots(p, size, dot_radius) for p in pos])
            clips.append(np.broadcast_to(clip[None], (3,) + clip.shape))
            rows.append({"direction": float(direction), "coherence": coherence, "speed": speed, "n_dots": n_dots,
                         "repeat": rep})
    return np.stack(clips).astype(np.float32), pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# category localizer
# --------------------------------------------------------------------------------------------------


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    shape = (max(1, int(shape[0])), max(1, int(shape[1])))
    down = shape[0] < img.shape[0] or shape[1] < img.shape[1]
    return resize(img, shape, order=1, anti_aliasing=down, preserve_range=True, mode="edge")


def _gray(img: np.ndarray) -> np.ndarray:
    """uint8 / float, gray / RGB / RGBA -> float64 luminance in [0, 1] (skimage rgb2gray weights)."""
    from skimage.color import rgb2gray

    arr = np.asarray(img)
    arr = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if arr.ndim == 3:
        arr = rgb2gray(arr[..., :3])
    return arr


def _crop(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Crop by fractional (row0, row1, col0, col1)."""
    h, w = img.shape[:2]
    r0, r1, c0, c1 = box
    return img[int(r0 * h): int(np.ceil(r1 * h)), int(c0 * w): int(np.ceil(c1 * w))]


@functools.lru_cache(maxsize=1)
def _object_crops() -> tuple[tuple[str, np.ndarray], ...]:
    """Centred object crops from photos packaged with scikit-image (``skimage.data``), luminance in [0, 1].

    Boxes (fractions of the photo, chosen by eye): coffee cup on saucer (``coffee``), motorcycle
    (``stereo_motorcycle`` left view), space helmet and space-shuttle model (``astronaut``), launch rocket
    (``rocket``), and each coin of ``coins`` (segmented with an Otsu threshold). The cat (``chelsea``) and the horse
    are left out: animals and faces are not objects in fLoc's sense (cars, instruments).
    """
    from scipy import ndimage
    from skimage import data, filters, measure

    crops = [
        ("skimage.data.coffee:cup", _crop(_gray(data.coffee()), (0.0, 0.95, 0.08, 0.82))),
        ("skimage.data.stereo_motorcycle:motorcycle", _crop(_gray(data.stereo_motorcycle()[0]), (0.2, 0.93, 0.12, 0.93))),
        ("skimage.data.astronaut:helmet", _crop(_gray(data.astronaut()), (0.64, 1.0, 0.52, 1.0))),
        ("skimage.data.astronaut:shuttle", _crop(_gray(data.astronaut()), (0.0, 0.56, 0.68, 0.95))),
        ("skimage.data.rocket:rocket", _crop(_gray(data.rocket()), (0.28, 0.97, 0.40, 0.60))),
    ]
    coins = _gray(data.coins())
    mask = ndimage.binary_fill_holes(ndimage.binary_opening(coins > filters.threshold_otsu(coins), iterations=2))
    for i, reg in enumerate(r for r in measure.regionprops(measure.label(mask)) if r.area >= 300):
        r0, c0, r1, c1 = reg.bbox
        pad = 3
        crop = coins[max(0, r0 - pad): r1 + pad, max(0, c0 - pad): c1 + pad]
        crops.append((f"skimage.data.coins:coin{i}", crop))
    return tuple(crops)


@functools.lru_cache(maxsize=1)
def _place_photos() -> tuple[tuple[str, np.ndarray], ...]:
    """Scene-like photos packaged with scikit-image, luminance in [0, 1]: the rocket launch site (``rocket``), the
    garage interior around the motorcycle (``stereo_motorcycle``), the skyline and lawn behind the cameraman
    (``camera``, right part, without the man), a brick building wall (``brick``) and ground surfaces (``grass``,
    ``gravel``). Outdoor/indoor layouts are few offline; use :func:`load_floc` (houses, corridors) at paper scale."""
    from skimage import data

    return (
        ("skimage.data.rocket:launch_site", _gray(data.rocket())),
        ("skimage.data.stereo_motorcycle:garage", _gray(data.stereo_motorcycle()[0])),
        ("skimage.data.camera:skyline", _crop(_gray(data.camera()), (0.0, 1.0, 0.62, 1.0))),
        ("skimage.data.brick:wall", _gray(data.brick())),
        ("skimage.data.grass:ground", _gray(data.grass())),
        ("skimage.data.gravel:ground", _gray(data.gravel())),
    )


def _font_files() -> list[str]:
    import matplotlib

    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
             "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"]
    files = [os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))]
    if not files:
        raise RuntimeError(f"no DejaVu fonts found in matplotlib's font folder {folder}")
    return files


_WORDS = ("house", "water", "light", "paper", "river", "table", "green", "music", "stone", "cloud", "bread",
          "chair", "plant", "night", "sound", "field", "story", "glass", "horse", "money")


def _random_text(rng: np.random.Generator) -> str:
    """A random letter, number, real word or pronounceable-ish pseudoword (fLoc uses pseudowords and numbers)."""
    kind = rng.integers(4)
    if kind == 0:
        return str(rng.choice(list(string.ascii_letters)))
    if kind == 1:
        return "".join(rng.choice(list(string.digits), rng.integers(2, 6)))
    if kind == 2:
        word = str(rng.choice(_WORDS))
    else:
        cons, vow = "bcdfghklmnprstvz", "aeiou"
        word = "".join(rng.choice(list(cons)) + rng.choice(list(vow)) for _ in range(rng.integers(2, 4)))
    case = rng.integers(3)
    return word.upper() if case == 0 else word.capitalize() if case == 1 else word


def _render_characters(rng: np.random.Generator, res: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Dark text on a transparent canvas, drawn with PIL at 4x and downsampled: (luminance, alpha, source)."""
    from PIL import Image, ImageDraw, ImageFont

    big = 4 * res
    font_file = str(rng.choice(_font_files()))
    text = _random_text(rng)
    # size the text so that it spans 55-90 % of the width, but is at most 60 % of the height tall
    probe = ImageFont.truetype(font_file, 100)
    draw = ImageDraw.Draw(Image.new("L", (big, big), 0))
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=probe)
    points = 100 * min(rng.uniform(0.55, 0.9) * big / max(x1 - x0, 1), 0.6 * big / max(y1 - y0, 1))
    font = ImageFont.truetype(font_file, max(4, int(points)))
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    w, h = x1 - x0, y1 - y0
    left = rng.uniform(0.05 * big, max(0.05 * big, 0.95 * big - w))
    top = rng.uniform(0.05 * big, max(0.05 * big, 0.95 * big - h))
    draw.text((left - x0, top - y0), text, font=font, fill=255)
    alpha = _resize(np.asarray(canvas, dtype=np.float64) / 255.0, (res, res))
    return np.zeros((res, res)), alpha, f"font:{os.path.basename(font_file)} text:{text!r}"


def _body_segments(rng: np.random.Generator) -> tuple[list[tuple[np.ndarray, np.ndarray, float]], str]:
    """Capsules (start, end, width) of a headless human figure (fLoc "body") or one limb (fLoc "limb"), in figure
    units (height ~1, y down). Joint angles are random within loose anatomical ranges."""

    def chain(start: np.ndarray, angles: Sequence[float], lengths: Sequence[float], widths: Sequence[float]):
        segs, p, ang = [], start, 0.0
        for a, length, w in zip(angles, lengths, widths):
            ang += a
            q = p + length * np.array([np.sin(ang), np.cos(ang)])  # angle 0 = pointing down
            segs.append((p, q, w))
            p = q
        return segs

    deg = np.deg2rad
    if rng.random() < 0.25:  # isolated limb
        if rng.random() < 0.5:
            segs = chain(np.zeros(2), [0.0, deg(rng.uniform(-120, 10)), deg(rng.uniform(-20, 20))],
                         [0.33, 0.3, 0.12], [0.1, 0.08, 0.09])
            name = "procedural:limb:arm"
        else:
            segs = chain(np.zeros(2), [0.0, deg(rng.uniform(0, 110)), deg(rng.uniform(-100, -70))],
                         [0.4, 0.38, 0.14], [0.14, 0.1, 0.07])
            name = "procedural:limb:leg"
        rot = rng.uniform(0, 2 * np.pi)
        rmat = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        return [(rmat @ p, rmat @ q, w) for p, q, w in segs], name
    lean = deg(rng.uniform(-12, 12))
    up = np.array([np.sin(lean), -np.cos(lean)])  # from hips towards the neck
    side = np.array([-up[1], up[0]])
    hip, neck = np.array([0.0, 0.52]), np.array([0.0, 0.52]) + 0.33 * up
    segs = [(hip, neck, 0.17), (neck, neck + 0.06 * up, 0.06)]  # torso and a neck stub, no head
    for s in (-1, 1):
        shoulder = neck - 0.02 * up + s * 0.11 * side
        segs += chain(shoulder, [s * deg(rng.uniform(5, 160)), s * deg(rng.uniform(-130, 0)), 0.0],
                      [0.17, 0.16, 0.06], [0.06, 0.05, 0.055])
        segs += chain(hip + s * 0.06 * side, [s * deg(rng.uniform(-10, 50)), -s * deg(rng.uniform(0, 90)),
                                              s * deg(rng.uniform(70, 100))],
                      [0.25, 0.24, 0.08], [0.085, 0.065, 0.05])
    return segs, "procedural:body"


def _render_body(rng: np.random.Generator, res: int) -> tuple[np.ndarray, np.ndarray, str]:
    """A limb-capsule human silhouette (random pose, uniform random grey level) at 4x, downsampled."""
    from PIL import Image, ImageDraw

    segs, name = _body_segments(rng)
    pts = np.array([p for s in segs for p in s[:2]])
    lo, hi = pts.min(0), pts.max(0)
    extent = float(max(hi - lo)) + 0.2
    big = 4 * res
    scale = rng.uniform(0.65, 0.9) * big / extent
    centre = (lo + hi) / 2
    offset = big / 2 + rng.uniform(-0.05, 0.05, 2) * big
    flip = -1.0 if rng.random() < 0.5 else 1.0
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    for p, q, w in segs:
        a = (p - centre) * scale * np.array([flip, 1.0]) + offset
        b = (q - centre) * scale * np.array([flip, 1.0]) + offset
        r = w * scale / 2
        draw.line([tuple(a), tuple(b)], fill=255, width=max(1, int(round(2 * r))))
        for c in (a, b):
            draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=255)
    alpha = _resize(np.asarray(canvas, dtype=np.float64) / 255.0, (res, res))
    level = rng.uniform(0.0, 0.25) if rng.random() < 0.5 else rng.uniform(0.75, 1.0)
    return np.full((res, res), level), alpha, name


def _soft_aperture(h: int, w: int, power: float, feather: float = 0.12) -> np.ndarray:
    """Superellipse window inscribed in an h x w box, 1 inside, ramping to 0 over ``feather`` of the half-width."""
    yy = (np.arange(h) - (h - 1) / 2) / (h / 2)
    xx = (np.arange(w) - (w - 1) / 2) / (w / 2)
    rho = (np.abs(xx[None, :]) ** power + np.abs(yy[:, None]) ** power) ** (1 / power)
    return np.clip((1.0 - rho) / feather, 0.0, 1.0)


def _place_patch(rng: np.random.Generator, res: int, patch: np.ndarray, fill: tuple[float, float],
                 power: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale a crop so its longer side is a random fraction ``fill`` of the canvas, mirror it at random, and place it
    near the centre with a soft superellipse aperture. Returns (luminance, alpha) canvases."""
    h, w = patch.shape
    side = rng.uniform(*fill) * res
    sh, sw = max(2, int(round(side * h / max(h, w)))), max(2, int(round(side * w / max(h, w))))
    patch = _resize(patch, (sh, sw))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    top = int(round((res - sh) / 2 + rng.uniform(-0.25, 0.25) * (res - sh)))
    left = int(round((res - sw) / 2 + rng.uniform(-0.25, 0.25) * (res - sw)))
    lum, alpha = np.zeros((res, res)), np.zeros((res, res))
    lum[top: top + sh, left: left + sw] = patch
    alpha[top: top + sh, left: left + sw] = _soft_aperture(sh, sw, power)
    return lum, alpha


def _random_crop(rng: np.random.Generator, img: np.ndarray, res: int) -> np.ndarray:
    """A random square crop (60-100 % of the shorter side), randomly mirrored, resized to res x res."""
    h, w = img.shape
    side = int(rng.uniform(0.6, 1.0) * min(h, w))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = img[top: top + side, left: left + side]
    return _resize(crop[:, ::-1] if rng.random() < 0.5 else crop, (res, res))


def pink_noise(rng: np.random.Generator, res: int, rms: float = 0.1) -> np.ndarray:
    """A 1/f-amplitude (natural-image-like) noise texture, mean 0.5 and RMS ``rms``, shape (res, res)."""
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(res), np.fft.fftfreq(res)))
    spectrum = np.fft.fft2(rng.standard_normal((res, res))) / np.maximum(f, 1.0 / res)
    noise = np.real(np.fft.ifft2(spectrum))
    return 0.5 + rms * (noise - noise.mean()) / noise.std()


def match_luminance(img: np.ndarray, mean: float = 0.5, rms: float = 0.15, iterations: int = 50) -> np.ndarray:
    """Set an image's mean luminance and RMS contrast (std), clipping to [0, 1] and repeating until stable
    (the per-image lumMatch of the SHINE toolbox, as used for fLoc-style sets). Flat images stay flat at ``mean``."""
    x = np.asarray(img, dtype=np.float64)
    for _ in range(iterations):
        sd = x.std()
        x = np.full_like(x, mean) if sd < 1e-12 else np.clip((x - x.mean()) * (rms / sd) + mean, 0.0, 1.0)
        if abs(x.mean() - mean) < 1e-4 and abs(x.std() - rms) < 1e-4:
            break
    return x


def _as_face_array(faces: np.ndarray | None) -> tuple[np.ndarray, str]:
    if faces is None:
        from skimage import data

        # lfw_subset: 200 25x25 crops; the first 100 are faces, the other 100 are non-face background patches.
        return data.lfw_subset()[:100].astype(np.float64), "skimage.data.lfw_subset"
    arr = np.asarray(faces)
    if arr.ndim == 4 and arr.shape[-1] in (3, 4):
        arr = np.stack([_gray(a) for a in arr])
    elif arr.ndim == 3:
        arr = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    else:
        raise StimulusError(f"faces must be (N, H, W) or (N, H, W, 3) images, got shape {arr.shape}")
    if len(arr) == 0 or min(arr.shape[1:3]) < 8 or arr.min() < 0 or arr.max() > 1:
        raise StimulusError("faces must hold at least one image of >= 8x8 pixels with values in [0, 1] (or uint8)")
    return arr, "faces"


def category_localizer(
    size: int,
    n_per_category: int,
    seed: int = 0,
    faces: np.ndarray | None = None,
    render_size: int | None = None,
    rms: float = 0.15,
    background: str = "gray",
) -> tuple[np.ndarray, pd.DataFrame]:
    """A small offline fLoc-like localizer (docs/reference.md §4): ``n_per_category`` images of each of faces,
    bodies, characters, places and objects, (5 n, 3, H, W), grayscale (3 equal channels), in category order.

    Sources (all offline):
    - faces: the 100 face crops of ``skimage.data.lfw_subset()`` (25x25 px, Labeled Faces in the Wild; the other 100
      images of that set are non-faces and are not used), or the ``faces`` array passed in; soft oval aperture.
    - bodies: real body photos are scarce offline, so bodies are *procedural*: headless limb-capsule silhouettes in a
      random pose (75 %) or a single arm / leg (25 %; fLoc's "body" / "limb"), uniform dark or light, on a 1/f noise
      texture (:func:`pink_noise`) so that the silhouette is not the only structure in the image.
    - characters: random letters, numbers, real words and pseudowords drawn with the DejaVu fonts shipped with
      matplotlib (random font, size and position).
    - places: random crops of scene-like photos of ``skimage.data`` (see :func:`_place_photos`), full frame.
    - objects: centred object crops of ``skimage.data`` photos in a soft rounded-rectangle aperture
      (see :func:`_object_crops`).
    Every image is rendered at ``render_size`` (default min(size, 48)) and resized to ``size``: LFW faces are only
    25 px, and one shared resolution keeps the categories from differing merely in sharpness. Figures sit on mid-gray
    (``background="gray"``; bodies always on texture) or all on a 1/f texture (``background="noise"``, which removes the
    bodies-only texture confound). Finally each image's luminance is matched: mean 0.5, RMS contrast ``rms``
    (:func:`match_luminance`). Columns: category, source (the photo / face index / font and text / procedure).
    """
    size = _check_size(size)
    n = _check_count(n_per_category, "n_per_category")
    res = _check_size(render_size if render_size is not None else min(size, 48), "render_size")
    if background not in ("gray", "noise"):
        raise StimulusError(f"background must be 'gray' or 'noise', got {background!r}")
    if not 0 < rms < 0.5:
        raise StimulusError(f"rms must be in (0, 0.5), got {rms!r}")
    face_arr, face_src = _as_face_array(faces)
    places = _place_photos()
    coins = [o for o in _object_crops() if ":coin" in o[0]]
    objects = [o for o in _object_crops() if ":coin" not in o[0]] + [None]  # None: one of the coins
    images, rows = [], []
    for ci, category in enumerate(CATEGORIES):
        rng = np.random.default_rng([seed, ci])
        for _ in range(n):
            alpha = None
            if category == "faces":
                k = int(rng.integers(len(face_arr)))
                lum, alpha = _place_patch(rng, res, face_arr[k], (0.55, 0.85), power=2.0)
                source = f"{face_src}[{k}]"
            elif category == "bodies":
                lum, alpha, source = _render_body(rng, res)
            elif category == "characters":
                lum, alpha, source = _render_characters(rng, res)
            elif category == "places":
                name, photo = places[int(rng.integers(len(places)))]
                lum, source = _random_crop(rng, photo, res), name
            else:
                pick = objects[int(rng.integers(len(objects)))]
                name, crop = pick if pick is not None else coins[int(rng.integers(len(coins)))]
                lum, alpha = _place_patch(rng, res, crop, (0.6, 0.9), power=4.0)
                source = name
            if alpha is not None:
                textured = background == "noise" or category == "bodies"
                bg = pink_noise(rng, res) if textured else np.full((res, res), 0.5)
                lum = alpha * lum + (1 - alpha) * bg
            img = match_luminance(_resize(lum, (size, size)) if res != size else lum, rms=rms)
            images.append(np.broadcast_to(img.astype(np.float32), (3, size, size)))
            rows.append({"category": category, "source": source})
    return np.stack(images), pd.DataFrame(rows)


def load_floc(folder: str | os.PathLike, size: int, match: bool = False, rms: float = 0.15) -> tuple[np.ndarray, pd.DataFrame]:
    """Load the fLoc stimulus set (Stigliani et al. 2015; 10 sub-categories x 144 images, docs/reference.md §4)
    from ``folder``, which must hold the sub-folders adult, child (faces), body, limb (bodies), word, number
    (characters), house, corridor (places), car, instrument (objects), as in fLoc's ``stimuli/`` directory.

    Images are converted to grayscale luminance, resized to ``size`` x ``size`` and repeated over 3 channels;
    ``match=True`` also sets mean 0.5 / RMS ``rms`` per image (fLoc images are already matched).
    Columns: category, subcategory, source (path relative to ``folder``). Sorted by category order, then file name.
    """
    from PIL import Image

    size = _check_size(size)
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise StimulusError(f"fLoc folder {root!r} does not exist")
    found = {sub: os.path.join(root, sub) for sub in FLOC_SUBFOLDERS if os.path.isdir(os.path.join(root, sub))}
    missing = sorted({cat for sub, cat in FLOC_SUBFOLDERS.items() if sub not in found} -
                     {cat for sub, cat in FLOC_SUBFOLDERS.items() if sub in found})
    if missing:
        raise StimulusError(f"fLoc folder {root!r} lacks categories {missing}: expected sub-folders "
                            f"{sorted(FLOC_SUBFOLDERS)}, found {sorted(os.listdir(root))}")
    images, rows = [], []
    for category in CATEGORIES:
        for sub in sorted(s for s, c in FLOC_SUBFOLDERS.items() if c == category and s in found):
            files = sorted(f for f in os.listdir(found[sub]) if f.lower().endswith(IMAGE_SUFFIXES))
            if not files:
                raise StimulusError(f"fLoc sub-folder {found[sub]!r} holds no images")
            for fname in files:
                path = os.path.join(found[sub], fname)
                try:
                    with Image.open(path) as im:
                        lum = _gray(np.asarray(im.convert("L")))
                except OSError as exc:
                    raise StimulusError(f"cannot read fLoc image {path!r}: {exc}") from exc
                img = _resize(lum, (size, size))
                img = match_luminance(img, rms=rms) if match else np.clip(img, 0, 1)
                images.append(np.broadcast_to(img.astype(np.float32), (3, size, size)))
                rows.append({"category": category, "subcategory": sub, "source": os.path.join(sub, fname)})
    return np.stack(images), pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# moving disks for the spiking speed channels
# --------------------------------------------------------------------------------------------------


def moving_disks(
    size: int = 50,
    steps: int = 500,
    speeds: Sequence[float] = (0.5, 1.0, 2.0),
    radius: float = 4.0,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, torch.Tensor]:
    """Event stream of a disk moving at different speeds (docs/reference.md §7: 50x50 px, 500 steps, 3 speeds).

    The ``steps`` time steps are split into ``len(speeds) * repeats`` equal segments (the last takes the remainder),
    one speed each in a seed-shuffled order. In each segment one binary disk of ``radius`` px starts at a random
    position and moves ``speed`` pixels per step in a random direction, reflecting off the borders (so its centre
    moves exactly ``speed`` px per step except at a bounce).
    Returns a dict of tensors:
    - ``frames``: (steps, H, W) float 0/1, the disk at each step (row = y, column = x);
    - ``events``: (n_events, 3) float rows (t, x, y) of on-events, i.e. pixels that are on at step t and were off at
      t - 1 (all on pixels at t = 0), sorted by t; x = column, y = row;
    - ``centers``: (steps, 2) float disk centre (x, y) in pixels;
    - ``speed``: (n_segments,) float speed label of each segment (pixels/step);
    - ``segments``: (n_segments, 2) long [start, stop) step of each segment;
    - ``speed_per_step``: (steps,) float speed label of every step.
    """
    import torch

    size = _check_size(size)
    steps = _check_count(steps, "steps")
    repeats = _check_count(repeats, "repeats")
    if not 0 < radius < size / 4:
        raise StimulusError(f"radius must be in (0, size / 4) pixels, got {radius!r}")
    lo, hi = radius, size - 1 - radius
    speed_list = _check_positive_list(speeds, "speeds", upper=hi - lo)
    n_seg = len(speed_list) * repeats
    if steps < 2 * n_seg:
        raise StimulusError(f"steps ({steps}) must be at least 2 per segment ({n_seg} segments)")
    rng = np.random.default_rng(seed)
    seg_speeds = rng.permutation(np.repeat(speed_list, repeats))
    bounds = np.linspace(0, steps, n_seg + 1).astype(int)
    centres = np.empty((steps, 2))
    for k in range(n_seg):
        pos = rng.uniform(lo, hi, 2)
        vel = seg_speeds[k] * np.array(_unit(rng.uniform(0, 360)))
        for t in range(bounds[k], bounds[k + 1]):
            centres[t] = pos
            pos = pos + vel
            for d in range(2):  # reflect off the walls
                if pos[d] > hi:
                    pos[d], vel[d] = 2 * hi - pos[d], -vel[d]
                elif pos[d] < lo:
                    pos[d], vel[d] = 2 * lo - pos[d], -vel[d]
    yy, xx = np.mgrid[0:size, 0:size]
    frames = (xx[None] - centres[:, 0, None, None]) ** 2 + (yy[None] - centres[:, 1, None, None]) ** 2 <= radius**2
    on = frames.copy()
    on[1:] &= ~frames[:-1]
    t_idx, rows_idx, cols_idx = np.nonzero(on)
    events = np.stack([t_idx, cols_idx, rows_idx], axis=1)
    per_step = np.repeat(seg_speeds, np.diff(bounds))
    return {
        "frames": torch.from_numpy(frames.astype(np.float32)),
        "events": torch.from_numpy(events.astype(np.float32)),
        "centers": torch.from_numpy(centres.astype(np.float32)),
        "speed": torch.from_numpy(seg_speeds.astype(np.float32)),
        "segments": torch.from_numpy(np.stack([bounds[:-1], bounds[1:]], axis=1).astype(np.int64)),
        "speed_per_step": torch.from_numpy(per_step.astype(np.float32)),
    }


# --------------------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------------------

_FORMAT = "tdann-stimulus-set-1"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"attribute value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def save_stimulus_set(
    path: str | os.PathLike,
    stimuli: np.ndarray,
    params: pd.DataFrame,
    kind: str,
    attrs: dict[str, Any] | None = None,
    dtype: str = "uint8",
) -> None:
    """Write a stimulus set to HDF5.

    Layout: ``stimuli`` (N, 3, [T,] H, W), stored as uint8 (round(255 x), default) or float16, one stimulus per
    chunk, gzip-compressed; ``params/<column>`` one dataset per column (strings as UTF-8), the column order in the
    ``params`` group's ``columns`` attribute; file attributes ``kind`` (e.g. "gratings"), ``format`` and one attribute
    per generator argument in ``attrs`` (JSON text, so lists and None survive).
    """
    arr = np.asarray(stimuli)
    if arr.ndim not in (4, 5) or arr.shape[1] != 3:
        raise StimulusError(f"stimuli must be (N, 3, H, W) or (N, 3, T, H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise StimulusError("stimuli must be finite floats in [0, 1]")
    if not isinstance(params, pd.DataFrame) or len(params) != len(arr):
        raise StimulusError(f"params must be a DataFrame with one row per stimulus ({len(arr)}), "
                            f"got {type(params).__name__} of length {len(params)}")
    if not isinstance(kind, str) or not kind:
        raise StimulusError(f"kind must be a non-empty string, got {kind!r}")
    if dtype not in ("uint8", "float16"):
        raise StimulusError(f"dtype must be 'uint8' or 'float16', got {dtype!r}")
    attrs = dict(attrs or {})
    reserved = {"kind", "format", "arg_names"} & set(attrs)
    if reserved:
        raise StimulusError(f"attrs may not use the reserved names {sorted(reserved)}")
    encoded = {k: json.dumps(v, default=_json_default) for k, v in attrs.items()}
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = kind
        f.attrs["format"] = _FORMAT
        f.attrs["arg_names"] = json.dumps(list(encoded))
        for key, value in encoded.items():
            f.attrs[key] = value
        ds = f.create_dataset("stimuli", shape=arr.shape, dtype=dtype, chunks=(1,) + arr.shape[1:],
                              compression="gzip", compression_opts=4)
        for i in range(len(arr)):
            ds[i] = np.round(arr[i] * 255).astype(np.uint8) if dtype == "uint8" else arr[i].astype(np.float16)
        ds.attrs["description"] = (
            f"{kind} stimuli, channel-first (N, 3, H, W) or (N, 3, T, H, W); "
            + ("uint8, divide by 255 for [0, 1]" if dtype == "uint8" else "float16 in [0, 1]"))
        ds.attrs["units"] = "intensity / 255" if dtype == "uint8" else "intensity [0, 1]"
        group = f.create_group("params")
        group.attrs["columns"] = json.dumps([str(c) for c in params.columns])
        for col in params.columns:
            values = params[col].to_numpy()
            if values.dtype.kind in "biuf":
                write_dataset(group, str(col), values, description=f"stimulus parameter {col!r}, one per stimulus")
            else:
                write_dataset(group, str(col), [str(v) for v in values],
                              description=f"stimulus parameter {col!r}, one per stimulus")


def _open_set(path: str | os.PathLike) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise StimulusError(f"cannot open stimulus set {os.fspath(path)!r}: {exc}") from exc
    if f.attrs.get("format") != _FORMAT or "stimuli" not in f:
        f.close()
        raise StimulusError(f"{os.fspath(path)!r} is not a stimulus set written by save_stimulus_set")
    return f


def _to_float(block: np.ndarray) -> np.ndarray:
    return (block.astype(np.float32) / 255.0) if block.dtype == np.uint8 else block.astype(np.float32)


def _read_params(f: h5py.File) -> pd.DataFrame:
    group = f["params"]
    columns = json.loads(group.attrs["columns"])
    data = {}
    for col in columns:
        ds = group[col]
        data[col] = read_strings(ds) if ds.dtype.kind == "O" else ds[()]
    return pd.DataFrame(data, columns=columns)


def load_stimulus_set(path: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Read a set written by :func:`save_stimulus_set`: (stimuli float32 in [0, 1], params, attrs incl. ``kind``)."""
    with _open_set(path) as f:
        stimuli = _to_float(f["stimuli"][()])
        params = _read_params(f)
        attrs: dict[str, Any] = {"kind": str(f.attrs["kind"])}
        for key in json.loads(f.attrs["arg_names"]):
            attrs[key] = json.loads(f.attrs[key])
    return stimuli, params, attrs


def load_params(path: str | os.PathLike) -> pd.DataFrame:
    """Only the parameter table of a stimulus set (one row per stimulus), without reading the stimuli."""
    with _open_set(path) as f:
        return _read_params(f)


def count_stimuli(path: str | os.PathLike) -> int:
    """Number of stimuli in a set."""
    with _open_set(path) as f:
        return len(f["stimuli"])


def save_moving_disks(path: str | os.PathLike, disks: dict[str, Any]) -> None:
    """Write the :func:`moving_disks` dict (frames, events, centers, speed labels) to HDF5, every dataset described."""
    desc = {
        "frames": ("the disk at each step, 0/1 (row = y, column = x)", None),
        "events": ("on-events, rows (t, x, y): pixels on at step t and off at t - 1", "steps, pixels"),
        "centers": ("disk centre (x, y) at each step", "pixels"),
        "speed": ("speed label of each segment", "pixels/step"),
        "segments": ("[start, stop) step of each segment", "steps"),
        "speed_per_step": ("speed label of every step", "pixels/step"),
    }
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "moving_disks"
        for key, value in disks.items():
            text, units = desc[key]
            write_dataset(f, key, np.asarray(value), text, units=units, compression="gzip")


def load_moving_disks(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read what :func:`save_moving_disks` wrote, as the tensors :func:`moving_disks` returns."""
    import torch

    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != "moving_disks":
            raise StimulusError(f"{os.fspath(path)!r} is not a moving-disks file")
        return {key: torch.as_tensor(f[key][()]) for key in f}


def iter_stimulus_batches(path: str | os.PathLike, batch: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, stimuli[start:start + batch])`` as float32 in [0, 1]; only one batch is in memory at a time."""
    batch = _check_count(batch, "batch")
    with _open_set(path) as f:
        ds = f["stimuli"]
        for start in range(0, len(ds), batch):
            yield start, _to_float(ds[start: start + batch])
