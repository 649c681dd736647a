"""Small datasets in the exact on-disk formats of the real ones, for rehearsing the paper config offline
(``make rehearsal``): the ``local`` dataset kind reads them as it reads ImageNet, UCF101, Kinetics and fLoc.

* ImageNet (ILSVRC-2012): ``train/<wnid>/<wnid>_<n>.JPEG`` (upper-case suffix, one folder per class) and
  ``val/ILSVRC2012_val_<8 digits>.JPEG``; photos of varying size (here dead-leaves images, 300-500 px).
* UCF101: ``UCF-101/<Class>/v_<Class>_g<gg>_c<cc>.avi`` (MPEG-4 Part 2 in AVI, 320 x 240, 25 fps) and the split
  lists ``ucfTrainTestlist/classInd.txt``, ``trainlist01.txt`` (with 1-based class index) and ``testlist01.txt``.
* Kinetics: ``train/<class name>/<youtube id>_<start:06d>_<end:06d>.mp4`` (H.264).
* fLoc: ``adult/``, ``child/``, ``body/``, ``limb/``, ``word/``, ``number/``, ``house/``, ``corridor/``, ``car/``,
  ``instrument/`` each holding ``<sub>-<n>.jpg`` (here the pipeline's procedural category images).

The videos come from :func:`tdann.video.synthetic_frames` (textured self-motion with moving objects); everything is
deterministic given ``seed``.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .procedural import dead_leaves
from .stimuli import CATEGORIES, FLOC_SUBFOLDERS, category_localizer
from .video import synthetic_frames

WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331")
UCF_CLASSES = ("ApplyEyeMakeup", "Biking", "PlayingGuitar", "WalkingWithDog")
KINETICS_CLASSES = ("riding a bike", "playing guitar")


def _save_jpeg(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def imagenet(dest: str | Path, classes: int = 4, per_class: int = 16, val: int = 8, seed: int = 0) -> Path:
    """An ILSVRC-2012 style tree: ``classes`` x ``per_class`` training photos and ``val`` validation photos."""
    dest, rng = Path(dest), np.random.default_rng(seed)

    def photo() -> np.ndarray:
        h, w = int(rng.integers(300, 501)), int(rng.integers(300, 501))
        return np.ascontiguousarray(dead_leaves(max(h, w), rng, r_min=2.0)[:h, :w])  # uint8

    for wnid in WNIDS[:classes]:
        for i in range(per_class):
            _save_jpeg(photo(), dest / "train" / wnid / f"{wnid}_{1000 + i}.JPEG")
    for i in range(val):
        _save_jpeg(photo(), dest / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG")
    return dest


def _write_video(path: Path, frames, fmt: str, codec: str, width: int, height: int, fps: int = 25) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=fmt) as container:
        stream: Any = container.add_stream(codec, rate=Fraction(fps))  # a VideoStream
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.codec_context.options = {"threads": "1"}
        for frame in frames:
            rgb = np.ascontiguousarray(frame[:height, :width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def ucf101(dest: str | Path, classes: int = 2, groups: int = 3, n_frames: int = 96, seed: int = 0) -> Path:
    """A UCF101 style tree of .avi files (320 x 240) with the official split-list files (group 1 is the test
    split, as the first of the official splits holds out groups 1-7)."""
    dest = Path(dest)
    lists = dest / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    names = UCF_CLASSES[:classes]
    train, test = [], []
    for ci, cls in enumerate(names):
        for g in range(1, groups + 1):
            rel = f"{cls}/v_{cls}_g{g:02d}_c01.avi"
            frames = synthetic_frames(n_frames, 320, seed + 100 * ci + g)
            _write_video(dest / "UCF-101" / rel, frames, "avi", "mpeg4", 320, 240)
            if g == 1:
                test.append(rel)
            else:
                train.append(f"{rel} {ci + 1}")
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(names)))
    (lists / "trainlist01.txt").write_text("".join(f"{r}\n" for r in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))
    return dest


def kinetics(dest: str | Path, classes: int = 2, per_class: int = 2, n_frames: int = 48, seed: int = 0) -> Path:
    """A Kinetics style tree: ``train/<class name>/<id>_<start>_<end>.mp4`` (H.264, 340 x 256)."""
    dest = Path(dest)
    for ci, cls in enumerate(KINETICS_CLASSES[:classes]):
        for i in range(per_class):
            vid = f"{'abcdefghijk'[ci]}{i:010d}"[:11]
            frames = synthetic_frames(n_frames, 340, seed + 100 * ci + i)
            _write_video(dest / "train" / cls / f"{vid}_{10 * i:06d}_{10 * i + 10:06d}.mp4", frames, "mp4",
                         "libx264", 340, 256)
    return dest


def floc(dest: str | Path, per_subfolder: int = 4, size: int = 128, seed: int = 0) -> Path:
    """An fLoc style folder: each of the 10 sub-folders holds ``per_subfolder`` images ``<sub>-<n>.jpg``."""
    dest = Path(dest)
    images, params = category_localizer(size, 2 * per_subfolder, seed=seed)
    for category in CATEGORIES:
        subs = [s for s, c in FLOC_SUBFOLDERS.items() if c == category]
        rows = np.flatnonzero(params["category"].to_numpy() == category)
        for k, row in enumerate(rows):
            sub = subs[k % len(subs)]
            gray = (np.clip(images[row, 0], 0, 1) * 255).astype(np.uint8)
            _save_jpeg(np.repeat(gray[..., None], 3, axis=2), dest / sub / f"{sub}-{k // len(subs) + 1}.jpg")
    return dest


def write_all(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Every fixture under ``root``: imagenet/, ucf101/, kinetics/, floc/."""
    root = Path(root)
    return {"imagenet": imagenet(root / "imagenet", seed=seed), "ucf101": ucf101(root / "ucf101", seed=seed),
            "kinetics": kinetics(root / "kinetics", seed=seed), "floc": floc(root / "floc", seed=seed)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write real-format dataset fixtures (ImageNet, UCF101, Kinetics, fLoc).")
    ap.add_argument("root")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name, path in write_all(args.root, args.seed).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
