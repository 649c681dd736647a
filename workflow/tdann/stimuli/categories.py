"""The category localizer: procedural faces, bodies, characters, places and objects from packaged photos, and fLoc folders read from disk."""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tdann.data import IMAGE_SUFFIXES

from ._checks import StimulusError, _check_count, _check_size

if TYPE_CHECKING:  # torch is imported where needed: table and metrics steps read stimuli without it
    pass


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
