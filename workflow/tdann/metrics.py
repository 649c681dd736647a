"""Per-layer map measurements of one model: what the metrics rule computes (docs/reference.md §4-§5).

For every tapped layer and evaluation stimulus set, the tuning of each unit (``tdann.analysis``) is laid on the
layer's cortical sheet and measured: smoothness against cortical distance (with the shuffled-position null and the
spread of preferences, docs/reference.md §9), the smoothed preference map, its column spacing Lambda, pinwheels and
their density per Lambda^2; for category images the Welch t maps, patches and their RSM. Results come back as a tidy
table (one row per layer x stimulus set x metric) and a dict of arrays for the HDF5 file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import analysis, probe

CATEGORIES = ("faces", "bodies", "characters", "places", "objects")


#: The model hypercolumn of the published analysis on its 36.75 mm V1 sheet (Margalit et al. 2024): where a layer's
#: config gives no ``hypercolumn_mm``, the same fraction of the layer's sheet side is used.
PAPER_HYPERCOLUMN_MM, PAPER_V1_SHEET_MM = 3.5, 36.75


#: A column spacing counts as measured only where the spectrum's fit succeeded (``analysis.column_spacing``'s
#: ``fit_ok``), the retinotopic grid holds at least this many unit spacings per column (a cycle at 2 spacings is the
#: grid's Nyquist limit: any pattern the grid samples can show it) and the map covers at least
#: :data:`MIN_AREA_LAMBDA2` column areas (two columns a side: a density per Lambda^2 of less is noise). Pinwheel
#: tables and map figures both use :func:`spacing_resolved`.
MIN_GRID_PER_COLUMN = 3.0
MIN_AREA_LAMBDA2 = 4.0


def spacing_resolved(fit_ok: float, lambda_mm: float, grid_spacing_mm: float,
                     area_lambda2: float = float("inf")) -> bool:
    """Was the map's column spacing measured (see :data:`MIN_GRID_PER_COLUMN`)?"""
    return bool(fit_ok == 1 and np.isfinite(lambda_mm) and grid_spacing_mm > 0
                and lambda_mm >= MIN_GRID_PER_COLUMN * grid_spacing_mm and area_lambda2 >= MIN_AREA_LAMBDA2)


class Geometry:
    """What the protocol needs of a layer's sheet: side (mm), retinotopic grid (H, W) and the hypercolumn width.

    ``hypercolumn_mm`` is the layer's configured width (None: the paper's 3.5 / 36.75 of the side), raised to at
    least ``min_hypercolumn_grid`` retinotopic grid spacings: on a coarse grid (the default's 8 x 8 V1) a 3.5 mm
    window holds too few distinct locations for a curve. Maps are smoothed with a Gaussian of ``map_sigma_units``
    mean unit spacings (``sqrt(sheet area / units)``): the narrowest window that still averages a few units, so
    narrow against any column spacing the units can carry. Wider smoothing annihilates close pinwheel pairs: a
    sigma tied to the sheet side (4% of it, as before) erased 3.5 mm columns on the 36.75 mm sheet, and even 0.8 mm
    lost 20% of their pinwheels (``tests/unit/test_protocol.py``).
    """

    def __init__(self, sheet_size: float, grid_hw: tuple[int, int], n_units: int, cfg: dict,
                 hypercolumn_mm: float | None = None):
        self.sheet_size = float(sheet_size)
        self.grid_spacing_mm = self.sheet_size / max(int(grid_hw[0]), int(grid_hw[1]))
        self.unit_spacing_mm = self.sheet_size / np.sqrt(max(int(n_units), 1))
        configured = (PAPER_HYPERCOLUMN_MM / PAPER_V1_SHEET_MM * self.sheet_size if hypercolumn_mm is None
                      else float(hypercolumn_mm))
        self.hypercolumn_mm = max(configured, float(cfg.get("min_hypercolumn_grid", 0.0)) * self.grid_spacing_mm)
        self.sigma_mm = float(cfg["map_sigma_units"]) * self.unit_spacing_mm
        self.bins = analysis.protocol_bins(self.hypercolumn_mm, int(cfg["smoothness_bins"]))

    def rows(self) -> dict[str, float]:
        return {"hypercolumn_mm": self.hypercolumn_mm, "map_sigma_mm": self.sigma_mm,
                "grid_spacing_mm": self.grid_spacing_mm, "smoothness_max_mm": float(self.bins[-1])}


def _map_measures(positions: np.ndarray, z_units: np.ndarray, geo: Geometry, cfg: dict,
                  prefix: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Preference map on a grid, its column spacing and pinwheels (density over the area the counter covers)."""
    grid = int(cfg["grid_px"])
    sheet_size = geo.sheet_size
    zmap = analysis.grid_map(positions, z_units, sheet_size, grid, geo.sigma_mm)
    pixel_mm = sheet_size / grid
    rows: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {f"{prefix}map": zmap}
    if not np.any(np.abs(zmap) > 0):
        return rows, arrays
    spacing = analysis.column_spacing(zmap, pixel_mm)
    pw_pos, pw_charge = analysis.pinwheels(zmap)
    area = analysis.pinwheel_area(grid, pixel_mm)
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


def _smoothness(positions: np.ndarray, values: np.ndarray, period: float | None, weights: np.ndarray | None,
                geo: Geometry, cfg: dict, rng: np.random.Generator,
                prefix: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The published smoothness protocol (Margalit et al. 2024, spacetorch): top ``top_frac`` units by ``weights``
    (peak-to-peak response), ``smoothness_samples`` samples of ``smoothness_sample_size`` units, distances up to
    half the diagonal of a window 4/3 of a hypercolumn wide in ``smoothness_bins`` bins; the same on shuffled
    positions, with as many unit samples in all, spread over the ``n_shuffles`` permutations."""
    if not cfg.get("smooth_here", True):  # a layer no table or figure reads: the spread only (cheap)
        sel = analysis.select_top(values, weights, float(cfg["top_frac"]))
        return {f"{prefix}spread": analysis.spread(values[sel], period)}, {}
    kw: dict[str, Any] = dict(weights=weights, top_frac=float(cfg["top_frac"]), bins=geo.bins,
              n_samples=int(cfg["smoothness_samples"]), sample_size=int(cfg["smoothness_sample_size"]))
    real = analysis.smoothness(positions, values, period, rng=rng, **kw)
    n_shuffles = int(cfg["n_shuffles"])
    # the null draws as many unit samples in all as the real curve: its mean over shuffles is what is compared
    kw["n_samples"] = max(1, -(-kw["n_samples"] // n_shuffles))
    null = analysis.shuffled_smoothness(positions, values, period, rng=rng, n_shuffles=n_shuffles, **kw)
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


def _peak_to_peak(responses: np.ndarray, params: pd.DataFrame, angle_col: str) -> np.ndarray:
    """Each unit's max - min over angles of its mean response per angle (all other conditions averaged): the
    published unit selection (spacetorch ``set_unit_mask_by_ptp_percentile``)."""
    angles, idx = np.unique(params[angle_col].to_numpy(dtype=float), return_inverse=True)
    means = np.stack([responses[idx == a].mean(axis=0) for a in range(len(angles))])
    return np.ptp(means, axis=0)


def orientation_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, geo: Geometry,
                      cfg: dict, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Orientation tuning and map of one layer (static or drifting gratings)."""
    angles, curves, _ = analysis.tuning_curves(responses, params, "orientation", average=("phase",),
                                               best_of=("sf", "tf", "colour"))
    om = analysis.orientation_metrics(angles, curves, fit=False)
    pref, cv = om["pref_ori"].to_numpy(), om["cv_ori"].to_numpy()
    strength = np.nan_to_num(1.0 - cv, nan=0.0)
    ptp = _peak_to_peak(responses, params, "orientation")
    rows, arrays = _smoothness(positions, pref, 180.0, ptp, geo, cfg, rng, "ori_")
    rows["ori_mean_cv"] = float(np.nanmean(cv))
    rows["ori_responsive"] = float(np.mean(om["peak_to_peak"].to_numpy() > 0))
    rows.update(biology_anchors(cv, responses.mean(axis=0), float(cfg.get("anchor_min_response", 1.0)),
                                cfg.get("macaque_cv")))
    z = strength * np.exp(2j * np.radians(pref))
    map_rows, map_arrays = _map_measures(positions, z, geo, cfg, "ori_")
    rows.update(map_rows)
    arrays.update(map_arrays)
    arrays.update(ori_pref=pref, ori_cv=cv, ori_peak_to_peak=om["peak_to_peak"].to_numpy())
    return rows, arrays


def direction_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, geo: Geometry,
                    cfg: dict, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Direction tuning and map of one layer (drifting gratings or random dots), MT measures included."""
    angles, curves, _ = analysis.tuning_curves(responses, params, "direction", average=(),
                                               best_of=("sf", "tf", "coherence", "speed"))
    dm = analysis.direction_metrics(angles, curves)
    pref, dsi = dm["pref_dir"].to_numpy(), dm["dsi_vector"].to_numpy()
    strength = np.nan_to_num(dsi, nan=0.0)
    ptp = _peak_to_peak(responses, params, "direction")
    rows, arrays = _smoothness(positions, pref, 360.0, ptp, geo, cfg, rng, "dir_")
    rows.update({
        "dir_mean_dsi": float(np.nanmean(dsi)),
        "dir_median_dsi_classic": float(np.nanmedian(dm["dsi_classic"])),
        "dir_mean_cv": float(np.nanmean(dm["cv_dir"])),
        "dir_mean_axial": float(np.nanmean(dm["axial"])),
        "dir_frac_ds": float(np.nanmean(dm["dsi_classic"].to_numpy() > 0.5)),
    })
    z = strength * np.exp(1j * np.radians(pref))
    map_rows, map_arrays = _map_measures(positions, z, geo, cfg, "dir_")
    rows.update(map_rows)
    arrays.update(map_arrays)
    arrays.update(dir_pref=pref, dir_dsi_vector=dsi, dir_dsi_classic=dm["dsi_classic"].to_numpy(),
                  dir_cv=dm["cv_dir"].to_numpy(), dir_axial=dm["axial"].to_numpy(),
                  dir_pref_axis=dm["pref_axis"].to_numpy(), dir_curves=curves, dir_angles=angles)
    rel = analysis.orientation_direction_relation(dm["pref_axis"].to_numpy(), pref, positions,
                                                  radius_mm=geo.sheet_size / 8, rng=rng)
    rows["dir_opposite_same_domain"] = rel["frac_same_domain_opposite"]
    rows["dir_all_same_domain"] = rel["frac_same_domain_all"]
    if "coherence" in params.columns and params["speed"].nunique() >= 3:  # random dots at >= 3 speeds
        speed_rows, speed_arrays = speed_layer(responses, params, dm["pref_dir"].to_numpy())
        rows.update(speed_rows)
        arrays.update(speed_arrays)
    return rows, arrays


def speed_layer(responses: np.ndarray, params: pd.DataFrame,
                pref_dir: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Speed tuning at each unit's preferred direction (log-Gaussian fit, docs/reference.md §5)."""
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


def category_layer(responses: np.ndarray, params: pd.DataFrame, positions: np.ndarray, geo: Geometry,
                   cfg: dict, rng: np.random.Generator,
                   smooth: bool = True) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Category t maps, patches and their RSM (VTC), and with ``smooth`` the smoothness of each t map (all units,
    scalar differences): the costliest measure of a model, so the metrics step runs it at the VTC-like layer only."""
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
            positions, np.nan_to_num(tv), geo.sheet_size, int(cfg["grid_px"]), sigma_mm=pc["sigma_mm"],
            threshold=pc["threshold"], min_area=pc["min_area"], max_area=pc["max_area"], min_units=pc["min_units"])
        tmaps[cat] = tmap
        rows[f"cat_{cat}_patches"] = float(len(patches))
        rows[f"cat_{cat}_patch_area_mm2"] = float(sum(p["area_mm2"] for p in patches))
        rows[f"cat_{cat}_frac_selective"] = float(np.nanmean(tv > pc["threshold"]))
        if smooth:
            sm_rows, sm_arrays = _smoothness(positions, np.nan_to_num(tv), None, None, geo,
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


#: Macaque V1 orientation tuning (Ringach, Shapley & Hawken, J Neurosci 2002, 308 neurons): circular
#: variance median and quartiles, and the fraction of cells with CV < 0.6.
RINGACH_2002 = {"cv_median": 0.605, "cv_q25": 0.335, "cv_q75": 0.785, "frac_selective": 0.497}


RINGACH_FILE = "ringach_2002_db.mat"


def load_ringach(folder: str | Path) -> np.ndarray:
    """Circular variances of the 308 macaque V1 cells of Ringach et al. (2002), field ``orivar`` of
    ``ringach_2002_db.mat`` found under ``folder`` (a ``kind: url`` dataset of the file the official TDANN
    repository ships, verified by its sha256)."""
    from scipy import io

    found = sorted(Path(folder).rglob(RINGACH_FILE))
    if not found:
        raise FileNotFoundError(f"{folder}: no {RINGACH_FILE} (add it as a kind: url dataset)")
    try:
        mat = io.loadmat(found[0])
    except (ValueError, OSError, NotImplementedError) as err:
        raise ValueError(f"{found[0]}: not a readable MATLAB file ({err})") from err
    db = mat.get("db", mat)
    if isinstance(db, np.ndarray) and db.dtype.names and "orivar" in db.dtype.names:
        values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in np.ravel(db["orivar"])])
    elif "orivar" in mat:
        values = np.ravel(np.asarray(mat["orivar"], dtype=float))
    else:
        raise ValueError(f"{found[0]}: no field 'orivar' (has {sorted(k for k in mat if not k.startswith('__'))})")
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() < 0 or values.max() > 1:
        raise ValueError(f"{found[0]}: 'orivar' must hold circular variances in [0, 1]")
    return values


def biology_anchors(cv: np.ndarray, mean_response: np.ndarray, min_response: float = 1.0,
                    macaque_cv: np.ndarray | None = None) -> dict[str, float]:
    """Orientation circular variance of the units whose mean response to the gratings exceeds ``min_response``
    (the published analysis counts units with mean response > 1), as median, quartiles and fraction with
    CV < 0.6, to compare with :data:`RINGACH_2002`. With ``macaque_cv`` (:func:`load_ringach`) also the two-sample
    Kolmogorov-Smirnov distance between the distributions and its p. NaN where fewer than 10 units qualify."""
    from scipy import stats

    cv = np.asarray(cv, dtype=float)
    keep = (np.asarray(mean_response) > min_response) & np.isfinite(cv)
    out = {"ori_anchor_units": float(keep.sum())}
    if keep.sum() < 10:
        out.update({"ori_cv_median": np.nan, "ori_cv_q25": np.nan, "ori_cv_q75": np.nan,
                    "ori_frac_selective": np.nan})
        if macaque_cv is not None:
            out.update({"ori_cv_ks_d": np.nan, "ori_cv_ks_p": np.nan})
        return out
    q25, q50, q75 = np.percentile(cv[keep], [25, 50, 75])
    out.update({"ori_cv_median": float(q50), "ori_cv_q25": float(q25), "ori_cv_q75": float(q75),
                "ori_frac_selective": float(np.mean(cv[keep] < 0.6))})
    if macaque_cv is not None:
        ks = stats.ks_2samp(cv[keep], np.asarray(macaque_cv, dtype=float))
        out.update({"ori_cv_ks_d": float(ks.statistic), "ori_cv_ks_p": float(ks.pvalue)})
    return out


def probe_layer_of(cfg: dict, stream: str) -> str | None:
    """The layer probed in ``stream``: ``analysis.probe_layer`` is one layer name or a mapping stream -> layer."""
    value = cfg.get("probe_layer")
    return value.get(stream) if isinstance(value, dict) else value


def probe_layer(responses: np.ndarray, params: pd.DataFrame, stimset: str, shape: tuple[int, ...],
                seed: int = 0) -> dict[str, float]:
    """Linear probe of the stimulus set's label on the pooled features of one layer (``tdann.probe``)."""
    split = probe.probe_split(params, stimset)
    if split is None:
        return {}
    column, test = split
    res = probe.linear_probe(probe.pooled_features(responses, shape), params[column].astype(str).to_numpy(), test,
                             seed=seed)
    return {"probe_accuracy": res["accuracy"], "probe_ci_lo": res["ci_lo"], "probe_ci_hi": res["ci_hi"],
            "probe_chance": res["chance"], "probe_n_test": float(res["n_test"]),
            "probe_n_classes": float(res["n_classes"]), "probe_above_chance": float(res["above_chance"])}


def measure_model(sheets: dict, responses: dict[str, dict[str, np.ndarray]], params: dict[str, pd.DataFrame],
                  cfg: dict, seed: int = 0,
                  hypercolumns: dict[str, float | None] | None = None) -> tuple[pd.DataFrame,
                                                                             dict[str, dict[str, np.ndarray]]]:
    """Measure every layer of a model on every stimulus set.

    ``sheets``: layer -> LayerSheet; ``responses``: stimset -> layer -> (S, N); ``params``: stimset -> DataFrame;
    ``hypercolumns``: layer -> configured hypercolumn width in mm (None or missing: see :class:`Geometry`).
    Smoothness curves (the costliest measure) are computed at the V1-, VTC- and MT-like layers, or at every layer
    with ``smoothness_all_layers``. The linear probe runs on ``cfg["probe_layer_now"]`` (the stream's :func:`probe_layer_of`; pooled over space). Returns the tidy table (layer, stimset,
    metric, value) and arrays keyed "stimset/layer".
    """
    rng = np.random.default_rng(seed)
    hypercolumns = hypercolumns or {}
    area_layers = {cfg.get(k) for k in ("v1_layer", "vtc_layer", "mt_layer")}
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
            geo = Geometry(float(sheet.sheet_size), tuple(sheet.shape[-2:]), len(pos), cfg, hypercolumns.get(layer))
            here = bool(cfg.get("smoothness_all_layers")) or layer in area_layers
            lcfg = dict(cfg, smooth_here=here)
            if stimset in ("gratings", "drifting"):
                rows, arr = orientation_layer(resp, p, pos, geo, lcfg, rng)
            else:
                rows, arr = {}, {}
            if stimset in ("drifting", "dots"):
                r2, a2 = direction_layer(resp, p, pos, geo, lcfg, rng)
                rows.update(r2)
                arr.update(a2)
            if stimset == "categories":
                rows, arr = category_layer(resp, p, pos, geo, lcfg, rng, smooth=here and (
                    layer == cfg.get("vtc_layer") or bool(cfg.get("smoothness_all_layers"))))
            if layer == cfg.get("probe_layer_now"):
                rows.update(probe_layer(resp, p, stimset, tuple(sheet.shape), seed=seed))
            rows.update(geo.rows())
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
