"""Plotting helpers shared by the figure scripts: angle maps with pinwheels, colour wheels, curves, saving.

Every figure is meant to be readable on its own: titles, units (mm, degrees), colour bars, cyclic colour maps for
angles. Angles come from the complex maps of ``tdann.metrics`` (orientation: r e^{2i theta}; direction:
r e^{i theta}).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_group(path: str | Path, group: str) -> dict[str, np.ndarray]:
    """All datasets of one ``stimset/layer`` group of a metrics HDF5 file."""
    with h5py.File(path, "r") as f:
        if group not in f:
            raise KeyError(f"{path}: no group {group!r} (have {sorted(f.keys())})")
        return {k: v[()] for k, v in f[group].items()}


def learning_note(learning_csv: str | Path, stream: str, model: str) -> str:
    """"" for a network that learnt (or an untrained control), else a warning for its panel title: a map of a
    network that did not learn (``tdann.tables.learning``) must not be read as a result."""
    import pandas as pd

    t = pd.read_csv(learning_csv)
    row = t[(t["stream"] == stream) & (t["model"] == model)]
    if row.empty or row["kind"].iloc[0] not in ("trained", "pretrain") or bool(row["learnt"].iloc[0]):
        return ""
    return f" [did not learn: loss {row['task_loss_ratio'].iloc[0]:.2f} x chance]"


def angle_map(ax: plt.Axes, zmap: np.ndarray, period: float, sheet_size: float, cmap: str = "twilight",
              pinwheels: np.ndarray | None = None, title: str = "", strength: bool = True) -> Any:
    """Show the angle of a complex map (period 180: orientation, 360: direction) on the sheet, in mm.

    With ``strength`` the brightness follows |z| (weakly tuned regions fade to black); pinwheels are white circles.
    """
    k = 360.0 / period
    angle = np.mod(np.degrees(np.angle(zmap)) / k, period)
    im = ax.imshow(angle, origin="lower", cmap=cmap, vmin=0, vmax=period, extent=(0, sheet_size, 0, sheet_size),
                   interpolation="nearest")
    if strength:
        mag = np.abs(zmap)
        mag = mag / mag.max() if mag.max() > 0 else mag
        rgba = im.to_rgba(angle)
        rgba[..., :3] *= np.clip(mag, 0, 1)[..., None] ** 0.5
        im.set_data(rgba)
    if pinwheels is not None and len(pinwheels):
        ax.plot(pinwheels[:, 0], pinwheels[:, 1], "o", mfc="none", mec="white", ms=5, mew=1.2)
    ax.set_xlabel("cortical x (mm)")
    ax.set_ylabel("cortical y (mm)")
    ax.set_title(title, fontsize=9)
    return im


def colour_wheel(ax: plt.Axes, period: float, cmap: str = "twilight", label: str = "") -> None:
    """A polar colour key for angles (0..period degrees)."""
    theta = np.linspace(0, 2 * np.pi, 361)
    r = np.linspace(0.5, 1.0, 2)
    t, _ = np.meshgrid(theta, r)
    ax.pcolormesh(theta, r, np.degrees(t) * period / 360.0, cmap=cmap, vmin=0, vmax=period, shading="auto")
    ax.set_yticks([])
    ticks = np.arange(0, 360, 90)
    ax.set_xticks(np.radians(ticks))
    ax.set_xticklabels([f"{t * period / 360:g}°" for t in ticks], fontsize=7)
    ax.set_title(label, fontsize=8)


def distance_curves(ax: plt.Axes, bins_mm: np.ndarray, curves: Sequence[np.ndarray], label: str, color: str,
                    ls: str = "-") -> None:
    """Mean ± SD over seeds of |difference in preference| against cortical distance."""
    arr = np.array(curves, dtype=float)
    mean = np.nanmean(arr, axis=0)
    ax.plot(bins_mm, mean, ls, color=color, label=f"{label} (n={len(arr)})")
    if len(arr) > 1:
        sd = np.nanstd(arr, axis=0)
        ax.fill_between(bins_mm, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)


def save(fig: plt.Figure, outputs: Sequence[str], dpi: int = 150) -> None:
    """Save to every output path (PNG, PDF, ...) and close."""
    for out in outputs:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def copy_docs(src: Path, dst: Path, width: int = 900) -> list[Path]:
    """Copy the PNG figures to ``dst`` (for the README), downsized to at most ``width`` pixels wide."""
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for png in sorted(src.glob("*.png")):
        img = plt.imread(png)
        target = dst / png.name
        if img.shape[1] > width:
            h = int(img.shape[0] * width / img.shape[1])
            fig = plt.figure(figsize=(width / 100, h / 100), dpi=100)
            fig.figimage(_resize(img, h, width), resize=False)
            fig.savefig(target, dpi=100)
            plt.close(fig)
        else:
            shutil.copyfile(png, target)
        written.append(target)
    return written


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    rows = (np.arange(h) * img.shape[0] / h).astype(int)
    cols = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[rows][:, cols]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Copy result figures into docs/ for the README.")
    parser.add_argument("--docs", nargs=2, metavar=("SRC", "DST"), required=True)
    args = parser.parse_args(argv)
    src, dst = Path(args.docs[0]), Path(args.docs[1])
    if not src.is_dir():
        print(f"no figures in {src}: run `make run` first", file=sys.stderr)
        return 1
    for p in copy_docs(src, dst):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
