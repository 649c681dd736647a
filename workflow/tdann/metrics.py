"""Per-layer map measurements of one model: what the metrics rule computes (REFERENCE.md sections 4-5).

For every tapped layer and evaluation stimulus set, the tuning of each unit (``tdann.analysis``) is laid on the
layer's cortical sheet and measured: smoothness against cortical distance (with the shuffled-position null and the
spread of preferences, REFERENCE.md section 9), the smoothed preference map, its column spacing Lambda, pinwheels and
their density per Lambda^2; for category images the Welch t maps, patches and their RSM. Results come back as a tidy
table (one row per layer x stimulus set x metric) and a dict of arrays for the HDF5 file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import analysis

CATEGORIES = ("faces", "bodies", "characters", "places", "objects")


def _bins(sheet_size: float, n_bins: int) -> np.ndarray:
    """Distance bins up to half the sheet side."""
    return np.linspace(0.0, 0.5 * sheet_size, n_bins + 1)


def _map_measures(positions: np.ndarray, z_units: np.ndarray, sheet_size: float, cfg: dict,
                  prefix: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Preference map on a grid, its column spacing and pinwheels."""
    grid = int(cfg["grid_px"])
    sigma = float(cfg["map_sigma_frac"]) * sheet_size
    zmap = analysis.grid_map(positions, z_units, sheet_size, grid, sigma)
    pixel_mm = sheet_size / grid
    rows: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {f"{prefix}map": zmap}
    if not np.any(np.abs(zmap) > 0):
        return rows, arrays
    spacing = analysis.column_spacing(zmap, pixel_mm)
    pw_pos, pw_charge = analysis.pinwheels(zmap)
    area = sheet_size**2
    density, se = analysis.pinwheel_density(len(pw_charge), area, spacing["Lambda_mm"])
    rows.update({
        f"{prefix}lambda_mm": spacing["Lambda_mm"],
        f"{prefix}lambda_fit_ok": float(spacing["fit_ok"]),
        f"{prefix}pinwheels": float(len(pw_charge)),
        f"{prefix}area_lambda2": area / spacing["Lambda_mm"] ** 2,
        f"{prefix}pinwheel_density": density,
        f"{prefix}pinwheel_density_se": se,
    })
    arrays[f"{prefix}pinwheels_mm"] = (pw_pos + 0.5) * pixel_mm if len(pw_pos) else np.zeros((0, 2))
    arrays[f"{prefix}pinwheel_charge"] = pw_charge
    arrays[f"{prefix}spectrum_k"] = spacing["k"]
    arrays[f"{prefix}spectrum_power"] = spacing["power"]
    return rows, arrays


def _smoothness(positions: np.ndarray, values: np.ndarray, period: float | None, weights: np.ndarray,
                sheet_size: float, cfg: dict, rng: np.random.Generator,
                prefix: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    bins = _bins(sheet_size, int(cfg["smoothness_bins"]))
    kw = dict(weights=weights, top_frac=float(cfg["top_frac"]), bins=bins, max_pairs=int(cfg.get("max_pairs", 50_000)))
    real = analysis.smoothness(positions, values, period, rng=rng, **kw)
    null = analysis.shuffled_smoothness(positions, values, period, rng=rng, n_shuffles=int(cfg["n_shuffles"]), **kw)
    rows = {
        f"{prefix}smoothness": real["index"],
        f"{prefix}far_index": real["far_index"],
        f"{prefix}shuffled_smoothness": null["index"],
        f"{prefix}shuffled_far_index": null["far_index"],
        f"{prefix}spread": real["spread"],
        f"{prefix}near_difference": float(real["curve"][0]),
    }
    arrays = {
        f"{prefix}curve": real["curve"],
        f"{prefix}curve_shuffled": null["curve"],
        f"{prefix}curve_bins_mm": real["bin_centres"],
    }
    return rows, arrays


def orientation_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, sheet_size: float,
                      cfg: dict, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Orientation tuning and map of one layer (static or drifting gratings)."""
    angles, curves, _ = analysis.tuning_curves(responses, params, "orientation", average=("phase",),
                                               best_of=("sf", "tf", "colour"))
    om = analysis.orientation_metrics(angles, curves, fit=False)
    pref, cv = om["pref_ori"].to_numpy(), om["cv_ori"].to_numpy()
    strength = np.nan_to_num(1.0 - cv, nan=0.0)
    rows, arrays = _smoothness(positions, pref, 180.0, strength, sheet_size, cfg, rng, "ori_")
    rows["ori_mean_cv"] = float(np.nanmean(cv))
    rows["ori_responsive"] = float(np.mean(om["peak_to_peak"].to_numpy() > 0))
    z = strength * np.exp(2j * np.radians(pref))
    map_rows, map_arrays = _map_measures(positions, z, sheet_size, cfg, "ori_")
    rows.update(map_rows)
    arrays.update(map_arrays)
    arrays.update(ori_pref=pref, ori_cv=cv, ori_peak_to_peak=om["peak_to_peak"].to_numpy())
    return rows, arrays


def direction_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, sheet_size: float,
                    cfg: dict, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Direction tuning and map of one layer (drifting gratings or random dots), MT measures included."""
    angles, curves, _ = analysis.tuning_curves(responses, params, "direction", average=(),
                                               best_of=("sf", "tf", "coherence", "speed"))
    dm = analysis.direction_metrics(angles, curves)
    pref, dsi = dm["pref_dir"].to_numpy(), dm["dsi_vector"].to_numpy()
    strength = np.nan_to_num(dsi, nan=0.0)
    rows, arrays = _smoothness(positions, pref, 360.0, strength, sheet_size, cfg, rng, "dir_")
    rows.update({
        "dir_mean_dsi": float(np.nanmean(dsi)),
        "dir_median_dsi_classic": float(np.nanmedian(dm["dsi_classic"])),
        "dir_mean_cv": float(np.nanmean(dm["cv_dir"])),
        "dir_mean_axial": float(np.nanmean(dm["axial"])),
        "dir_frac_ds": float(np.nanmean(dm["dsi_classic"].to_numpy() > 0.5)),
    })
    z = strength * np.exp(1j * np.radians(pref))
    map_rows, map_arrays = _map_measures(positions, z, sheet_size, cfg, "dir_")
    rows.update(map_rows)
    arrays.update(map_arrays)
    arrays.update(dir_pref=pref, dir_dsi_vector=dsi, dir_dsi_classic=dm["dsi_classic"].to_numpy(),
                  dir_cv=dm["cv_dir"].to_numpy(), dir_axial=dm["axial"].to_numpy(),
                  dir_pref_axis=dm["pref_axis"].to_numpy(), dir_curves=curves, dir_angles=angles)
    rel = analysis.orientation_direction_relation(dm["pref_axis"].to_numpy(), pref, positions,
                                                  radius_mm=sheet_size / 8, rng=rng)
    rows["dir_opposite_same_domain"] = rel["frac_same_domain_opposite"]
    rows["dir_all_same_domain"] = rel["frac_same_domain_all"]
    if "coherence" in params.columns and params["speed"].nunique() >= 3:  # random dots at >= 3 speeds
        speed_rows, speed_arrays = speed_layer(responses, params, dm["pref_dir"].to_numpy())
        rows.update(speed_rows)
        arrays.update(speed_arrays)
    return rows, arrays


def speed_layer(responses: np.ndarray, params: pd.DataFrame,
                pref_dir: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Speed tuning at each unit's preferred direction (log-Gaussian fit, REFERENCE.md section 5)."""
    directions = np.unique(params["direction"].to_numpy(dtype=float))
    nearest = directions[np.argmin(np.abs(np.angle(np.exp(1j * np.radians(pref_dir[:, None] - directions[None])))),
                                   axis=1)]
    speeds = np.unique(params["speed"].to_numpy(dtype=float))
    curves = np.zeros((responses.shape[1], speeds.size))
    for d in directions:
        units = nearest == d
        if not units.any():
            continue
        for j, v in enumerate(speeds):
            rows = (params["direction"].to_numpy(dtype=float) == d) & (params["speed"].to_numpy(dtype=float) == v)
            curves[units, j] = responses[rows][:, units].mean(axis=0)
    fit = analysis.speed_tuning(speeds, curves)
    return ({"speed_median_pref": float(np.nanmedian(fit["pref_speed"])),
             "speed_median_r2": float(np.nanmedian(fit["r2"]))},
            {"speed_values": speeds, "speed_curves": curves, "speed_pref": fit["pref_speed"].to_numpy()})


def category_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, sheet_size: float,
                   cfg: dict, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Category t maps, patches and their RSM (REFERENCE.md section 4, VTC)."""
    labels = params["category"].astype(str).to_numpy()
    cats = [c for c in CATEGORIES if c in set(labels)]
    t = analysis.category_selectivity(responses, labels, cats)
    pc = cfg["patches"]
    rows: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    tmaps = {}
    for cat in cats:
        tv = t[cat].to_numpy()
        patches, tmap = analysis.category_patches(
            positions, np.nan_to_num(tv), sheet_size, int(cfg["grid_px"]), sigma_mm=pc["sigma_mm"],
            threshold=pc["threshold"], min_area=pc["min_area"], max_area=pc["max_area"], min_units=pc["min_units"])
        tmaps[cat] = tmap
        rows[f"cat_{cat}_patches"] = float(len(patches))
        rows[f"cat_{cat}_patch_area_mm2"] = float(sum(p["area_mm2"] for p in patches))
        rows[f"cat_{cat}_frac_selective"] = float(np.nanmean(tv > pc["threshold"]))
        sm_rows, sm_arrays = _smoothness(positions, np.nan_to_num(tv), None, None, sheet_size,
                                         dict(cfg, top_frac=1.0), rng, f"cat_{cat}_t_")
        rows.update({k: v for k, v in sm_rows.items() if k.endswith(("smoothness", "far_index"))})
        arrays.update(sm_arrays)
        arrays[f"cat_{cat}_t"] = tv
        arrays[f"cat_{cat}_tmap"] = tmap
        mask = np.zeros_like(tmap, dtype=bool)
        for p in patches:
            mask |= p["mask"]
        arrays[f"cat_{cat}_patch_mask"] = mask
    if len(tmaps) >= 2:
        arrays["cat_rsm"] = analysis.selectivity_rsm(tmaps)
        arrays["cat_names"] = np.array(list(tmaps), dtype=object)
    return rows, arrays


def measure_model(sheets: dict, responses: dict[str, dict[str, np.ndarray]], params: dict[str, pd.DataFrame],
                  cfg: dict, seed: int = 0) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Measure every layer of a model on every stimulus set.

    ``sheets``: layer -> LayerSheet; ``responses``: stimset -> layer -> (S, N); ``params``: stimset -> DataFrame.
    Returns the tidy table (layer, stimset, metric, value) and arrays keyed "stimset/layer".
    """
    rng = np.random.default_rng(seed)
    table: list[dict[str, Any]] = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for stimset, by_layer in responses.items():
        p = params[stimset]
        for layer, resp in by_layer.items():
            sheet = sheets[layer]
            if resp.shape[1] != len(sheet.positions):
                raise ValueError(f"{stimset}/{layer}: {resp.shape[1]} units in the responses but "
                                 f"{len(sheet.positions)} positions on the sheet")
            resp = np.asarray(resp, dtype=np.float64)
            pos = np.asarray(sheet.positions, dtype=np.float64)
            size = float(sheet.sheet_size)
            if stimset in ("gratings", "drifting"):
                rows, arr = orientation_layer(resp, p, pos, size, cfg, rng)
            else:
                rows, arr = {}, {}
            if stimset in ("drifting", "dots"):
                r2, a2 = direction_layer(resp, p, pos, size, cfg, rng)
                rows.update(r2)
                arr.update(a2)
            if stimset == "categories":
                rows, arr = category_layer(resp, p, pos, size, cfg, rng)
            rows["grid_h"], rows["grid_w"] = float(sheet.shape[-2]), float(sheet.shape[-1])  # retinotopic grid
            rows["mean_response"] = float(resp.mean())
            rows["frac_active"] = float(np.mean(resp.max(axis=0) > 0))
            table += [dict(layer=layer, stimset=stimset, metric=k, value=float(v)) for k, v in rows.items()]
            arrays[f"{stimset}/{layer}"] = arr
    return pd.DataFrame(table), arrays


_DESCRIPTIONS = {
    "pref": ("preferred angle of each unit (channel-major unit order)", "deg"),
    "cv": ("circular variance of each unit's tuning curve", None),
    "peak_to_peak": ("max - min of each unit's tuning curve", "response"),
    "curve": ("mean |difference in preference| of unit pairs per cortical distance bin (top units)", "deg"),
    "curve_shuffled": ("the same curve with unit positions shuffled (null control)", "deg"),
    "curve_bins_mm": ("centres of the cortical distance bins", "mm"),
    "map": ("smoothed complex preference map on a grid over the sheet (r e^{ik theta})", None),
    "pinwheels_mm": ("pinwheel centres (x, y)", "mm"),
    "pinwheel_charge": ("pinwheel charge (+1 / -1 phase winding)", None),
    "spectrum_k": ("radial wavenumber of the map's power spectrum", "cycles per map side"),
    "spectrum_power": ("radially averaged power spectrum of the map, max 1", None),
    "dsi_vector": ("vector direction selectivity |sum r e^{i theta}| / sum r", None),
    "dsi_classic": ("classic DSI (R_pref - R_null) / (R_pref + R_null)", None),
    "axial": ("axial (second-harmonic) component |sum r e^{2i theta}| / sum r", None),
    "pref_axis": ("preferred axis of motion", "deg"),
    "curves": ("tuning curve of each unit over directions at its best condition", "response"),
    "angles": ("directions of the tuning curves", "deg"),
    "values": ("stimulus speeds", "pixels per frame"),
    "speed_curves": ("speed tuning curve of each unit at its preferred direction", "response"),
    "speed_pref": ("preferred speed of the log-Gaussian fit", "pixels per frame"),
    "t": ("Welch t of each unit, category vs the rest", None),
    "tmap": ("smoothed t map on a grid over the sheet", None),
    "patch_mask": ("grid pixels inside a category patch", None),
    "rsm": ("correlation between the smoothed category t maps", None),
    "names": ("category names, in the order of the RSM", None),
}


def describe(name: str) -> tuple[str, str | None]:
    """Description and units of an array produced by :func:`measure_model`, from its name's longest known suffix."""
    for suffix in sorted(_DESCRIPTIONS, key=len, reverse=True):
        if name == suffix or name.endswith("_" + suffix):
            return _DESCRIPTIONS[suffix]
    raise KeyError(f"no description for metrics array {name!r}")


def save(path, arrays: dict[str, dict[str, np.ndarray]], table: pd.DataFrame, attrs: dict) -> None:
    """Write the arrays of :func:`measure_model` to HDF5 (one group per stimset/layer, every dataset described)."""
    import h5py

    from .h5io import write_dataset

    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for group_name, group_arrays in arrays.items():
            g = f.require_group(group_name)
            for name, arr in group_arrays.items():
                desc, units = describe(name)
                write_dataset(g, name, np.asarray(arr), desc, units=units)
        g = f.require_group("table")
        for col in table.columns:
            values = table[col].to_numpy()
            write_dataset(g, col, values.astype(object) if values.dtype == object else values,
                          f"tidy metrics table column {col!r} (one row per layer x stimset x metric)")
