"""Plotting helpers shared by the figure scripts: angle and strength maps, smoothness curves with their controls,
saving.

Every figure is meant to be readable on its own: titles, units (mm, degrees), a colour bar on every map, an
isoluminant cyclic colour map for angles (tuning strength in its own map). Angles come from the complex maps of ``tdann.metrics`` (orientation: r e^{2i theta}; direction:
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
import matplotlib.pyplot as plt
import numpy as np

from .metrics import spacing_resolved


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


#: the built-in angle colour map's name (``figures.angle_cmap``)
ISOLUMINANT = "isoluminant"


def _lab_to_srgb(lightness: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> sRGB in [0, 1], shape (n, 3)."""
    fy = (lightness + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, np.full_like(a, fy), fy - b / 200.0])
    t = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    xyz = t * np.array([0.95047, 1.0, 1.08883])[:, None]
    lin = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]) @ xyz
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)
    return srgb.T


def isoluminant_cmap(n: int = 256, lightness: float = 70.0, chroma: float = 35.0) -> Any:
    """A cyclic colour map of constant CIELAB lightness: a circle of hue at L* = 70, chroma 35 (inside the sRGB
    gamut at every hue). Every angle is equally bright, so a weakly tuned unit cannot pass for a particular angle,
    as it can on twilight, whose dark end sits at 90 deg. Tuning strength is shown in its own map."""
    from matplotlib.colors import ListedColormap

    hue = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    rgb = _lab_to_srgb(lightness, chroma * np.cos(hue), chroma * np.sin(hue))
    if rgb.min() < 0 or rgb.max() > 1:
        raise ValueError(f"L* {lightness}, chroma {chroma} leaves the sRGB gamut")
    return ListedColormap(rgb, name=ISOLUMINANT)


def angle_cmap(name: str) -> Any:
    """The colour map ``figures.angle_cmap`` names: the built-in isoluminant one or any matplotlib map."""
    if name == ISOLUMINANT:
        return isoluminant_cmap()
    try:
        return matplotlib.colormaps[name]
    except KeyError as err:
        raise ValueError(f"figures.angle_cmap: unknown colour map {name!r}") from err


def read_table(path: str | Path) -> Any:
    """The tidy metrics table stored in a metrics HDF5 file (group ``table``)."""
    import pandas as pd

    with h5py.File(path, "r") as f:
        cols = {k: v[()] for k, v in f["table"].items()}
    return pd.DataFrame({k: [x.decode() if isinstance(x, bytes) else x for x in v] for k, v in cols.items()})


def map_facts(path: str | Path, stimset: str, layer: str, prefix: str, sheet_size: float) -> dict[str, Any]:
    """What a map panel must say about itself: the unit grid (units per side), the column spacing and whether it
    was measured (:func:`tdann.metrics.spacing_resolved`, the pinwheel table's test)."""
    t = read_table(path)
    t = t[(t["stimset"] == stimset) & (t["layer"] == layer)]

    def value(metric: str) -> float:
        v = t.loc[t["metric"] == metric, "value"]
        return float(v.iloc[0]) if len(v) else float("nan")

    spacing, lam = value("grid_spacing_mm"), value(prefix + "lambda_mm")
    return {"grid": round(sheet_size / spacing) if spacing > 0 else float("nan"), "grid_spacing_mm": spacing,
            "lambda_mm": lam, "spacing_measured": spacing_resolved(value(prefix + "lambda_fit_ok"), lam, spacing,
                                                                   value(prefix + "area_lambda2"))}


def angle_map(ax: plt.Axes, zmap: np.ndarray, period: float, sheet_size: float, cmap: Any,
              pinwheels: np.ndarray | None = None, title: str = "") -> Any:
    """Show the preferred angle of a complex map (period 180: orientation, 360: direction) on the sheet, in mm, in
    hue only (strength: :func:`strength_map`); ``pinwheels`` (mm) as black circles, drawn only where the caller has
    a measured column spacing to give them meaning."""
    k = 360.0 / period
    angle = np.mod(np.degrees(np.angle(zmap)) / k, period)
    im = ax.imshow(angle, origin="lower", cmap=cmap, vmin=0, vmax=period, extent=(0, sheet_size, 0, sheet_size),
                   interpolation="nearest")
    if pinwheels is not None and len(pinwheels):
        ax.plot(pinwheels[:, 0], pinwheels[:, 1], "o", mfc="none", mec="black", ms=5, mew=1.0)
    ax.set_xlabel("cortical x (mm)")
    ax.set_ylabel("cortical y (mm)")
    ax.set_title(title, fontsize=9)
    return im


def strength_map(ax: plt.Axes, zmap: np.ndarray, sheet_size: float, title: str = "") -> Any:
    """Tuning strength |z| of the smoothed map, scaled to its maximum (0: untuned or cancelling neighbours)."""
    mag = np.abs(zmap)
    mag = mag / mag.max() if mag.max() > 0 else mag
    im = ax.imshow(mag, origin="lower", cmap="Greys_r", vmin=0, vmax=1, extent=(0, sheet_size, 0, sheet_size),
                   interpolation="nearest")
    ax.set_xlabel("cortical x (mm)")
    ax.set_ylabel("cortical y (mm)")
    ax.set_title(title, fontsize=9)
    return im


def map_panels(fig: plt.Figure, pref_axes: Sequence[plt.Axes], strength_axes: Sequence[plt.Axes],
               models: Sequence[tuple[str, dict, dict, str]], kind: str, period: float, sheet_size: float,
               cmap: Any) -> None:
    """Preference and strength maps of several models, each with its colour bar (all maps the same size).

    ``models``: (label, metrics group arrays, :func:`map_facts`, learning note). ``kind`` is "orientation" or
    "direction" (the arrays' prefix ``ori_`` / ``dir_``). Pinwheels are marked and counted only on maps whose
    column spacing was measured; otherwise the title says so."""
    prefix = kind[:3] + "_"
    for ax, sax, (label, g, facts, note) in zip(pref_axes, strength_axes, models):
        grid = facts.get("grid", float("nan"))
        grid_txt = f"{int(grid)} x {int(grid)} units" if np.isfinite(grid) else "unit grid unknown"
        if facts.get("spacing_measured"):
            pins = g.get(prefix + "pinwheels_mm")
            extra = (f"{len(g.get(prefix + 'pinwheel_charge', []))} pinwheels (o), "
                     f"column spacing {facts['lambda_mm']:.2g} mm")
        else:
            pins, extra = None, "no column spacing measurable: pinwheels not marked"
        head = f"{label}: preferred {kind}" + (f"\n{note.strip()}" if note else "")
        im = angle_map(ax, g[prefix + "map"], period, sheet_size, cmap, pins, title=f"{head}\n{grid_txt}; {extra}")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(f"{kind} (deg)")
        cb.set_ticks(np.linspace(0, period, 5).tolist())
        sim = strength_map(sax, g[prefix + "map"], sheet_size, title=f"{label}: tuning strength |z|")
        fig.colorbar(sim, ax=sax, fraction=0.046, pad=0.03).set_label("|z| / max")


def distance_curves(ax: plt.Axes, bins_mm: np.ndarray, curves: Sequence[np.ndarray], label: str, color: str,
                    ls: str = "-") -> None:
    """Mean ± SD over seeds of |difference in preference| against cortical distance."""
    arr = np.array(curves, dtype=float)
    mean = np.nanmean(arr, axis=0)
    ax.plot(bins_mm, mean, ls, color=color, label=f"{label} (n={len(arr)})")
    if len(arr) > 1:
        sd = np.nanstd(arr, axis=0)
        ax.fill_between(bins_mm, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)


def smoothness_panel(ax: plt.Axes, bins_mm: np.ndarray,
                     conditions: Sequence[tuple[str, str, Sequence[np.ndarray], Sequence[np.ndarray] | None]],
                     chance: float, quantity: str) -> None:
    """Smoothness curves, each condition beside its own shuffled-position null (same colour, dashed): a curve is
    smooth only as far as it lies below *its* null. The axis starts at 0 and ends above chance (no truncation that
    inflates a few degrees); the legend sits below the axes, off the data."""
    for label, color, curves, shuffled in conditions:
        distance_curves(ax, bins_mm, curves, label, color)
        if shuffled is not None:
            distance_curves(ax, bins_mm, shuffled, f"{label}, shuffled", color, "--")
    ax.axhline(chance, color="0.5", lw=0.8, ls=":")
    ax.text(bins_mm[-1], chance, f"chance {chance:g}°", ha="right", va="bottom", fontsize=7, color="0.4")
    ax.set_ylim(0, chance * 1.15)
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel(f"|Δ preferred {quantity}| (deg)")
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)


#: category colours of patch outlines (VTC-like maps)
CATEGORY_COLOURS = {"faces": "tab:red", "bodies": "tab:orange", "characters": "tab:purple", "places": "tab:green",
                    "objects": "tab:blue"}


def scale_bar(ax: plt.Axes, sheet_size: float) -> None:
    """A 10 mm (sheets >= 30 mm) or 1 mm bar in the lower left corner of a sheet panel."""
    bar = 10.0 if sheet_size >= 30 else 1.0
    x0, y0 = 0.05 * sheet_size, 0.06 * sheet_size
    ax.plot([x0, x0 + bar], [y0, y0], color="k", lw=2.5, solid_capstyle="butt")
    ax.text(x0 + bar / 2, y0 + 0.03 * sheet_size, f"{bar:g} mm", ha="center", va="bottom", fontsize=6)


def patch_overlay(ax: plt.Axes, g: dict[str, np.ndarray], sheet_size: float, title: str = "") -> list[str]:
    """Every category's patches (``cat_<c>_patch_mask``) outlined in its colour on one sheet, as the published
    VTC maps show them; returns the categories that have at least one patch (the legend names the others too)."""
    cats = [str(c.decode() if isinstance(c, bytes) else c) for c in g["cat_names"]]
    found = []
    for cat in cats:
        mask = g[f"cat_{cat}_patch_mask"].astype(float)
        colour = CATEGORY_COLOURS.get(cat, "k")
        if mask.any():
            xs = np.linspace(0, sheet_size, mask.shape[1])
            ax.contourf(xs, xs, mask, levels=[0.5, 1.5], colors=[colour], alpha=0.35)
            ax.contour(xs, xs, mask, levels=[0.5], colors=[colour], linewidths=1.2)
            found.append(cat)
        ax.plot([], [], color=colour, lw=3, label=f"{cat} ({'patches' if mask.any() else 'none'})")
    ax.set_xlim(0, sheet_size)
    ax.set_ylim(0, sheet_size)
    ax.set_aspect("equal")
    scale_bar(ax, sheet_size)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    return found


def clip_image(x: np.ndarray, gap: int = 1) -> np.ndarray:
    """What a panel shows of an input: an image (3, H, W) as it is; a clip (3, T, H, W) as its middle frame above
    its space-time slice (the centre row of every frame, time running down, each frame's row repeated so the slice
    is about half a frame high), so that motion shows as oriented stripes. Returns (rows, W, 3)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 3:
        return np.moveaxis(x, 0, -1)
    if x.ndim != 4:
        raise ValueError(f"clip_image: expected (3, H, W) or (3, T, H, W), got shape {x.shape}")
    _, t, h, w = x.shape
    frame = np.moveaxis(x[:, t // 2], 0, -1)
    xt = np.moveaxis(x[:, :, h // 2, :], 0, -1)  # (T, W, 3)
    xt = np.repeat(xt, max(1, round(h / (2 * t))), axis=0)
    return np.concatenate([frame, np.ones((gap, w, 3)), xt])


def save(fig: plt.Figure, outputs: Sequence[str], dpi: int = 150) -> None:
    """Save to every output path (PNG, PDF, ...) and close."""
    for out in outputs:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def copy_docs(src: Path, dst: Path, width: int = 1400) -> list[Path]:
    """Copy the PNG figures to ``dst`` (for the README), resampled to at most ``width`` pixels wide with a Lanczos
    filter (a nearest-neighbour shrink made small text illegible)."""
    from PIL import Image

    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for png in sorted(src.glob("*.png")):
        target = dst / png.name
        with Image.open(png) as img:
            if img.width > width:
                small = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
                small.save(target, optimize=True)
            else:
                shutil.copyfile(png, target)
        written.append(target)
    return written


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
