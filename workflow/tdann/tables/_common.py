"""What the result tables share: the maps they report, the probes per stream, metric lookup and seed-paired statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis

#: Linear probes per stream (stimulus sets): ventral localizer category, dorsal motion direction. The first of each
#: is the primary probe that decides "learnt"; the others are reported. Dot direction is not required: at 32 px even
#: the untrained network's first block decodes it at only 0.2-0.4 (16 directions), so it tests the stimulus more
#: than the network.
PROBES = {"ventral": ("categories",), "dorsal": ("drifting", "dots")}


# Per-model quantities compared between alpha > 0 and alpha = 0 (the trade-off, pinwheels, MT tuning):
# (stream, area, layer config key, stimset, metric); task quantities come from the trade-off table.
TUNING = (
    ("ventral", "V1", "v1_layer", "gratings", "ori_pinwheel_density"),
    ("dorsal", "V1", "v1_layer", "drifting", "ori_pinwheel_density"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_pinwheel_density"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_dsi"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_cv"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_mean_axial"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_frac_ds"),
)
# held-out task loss / top-1, held-out spatial loss, linear probes (trade-off table)
TASK = ("task_loss", "task_top1", "sl_mean", "probe_categories", "probe_drifting", "probe_dots")


def _value(metrics: pd.DataFrame, stream: str, model: str, layer: str | None, stimset: str, metric: str) -> float:
    sel = metrics[(metrics["stream"] == stream) & (metrics["model"] == model) & (metrics["layer"] == layer)
                  & (metrics["stimset"] == stimset) & (metrics["metric"] == metric)]
    return float(sel["value"].iloc[0]) if len(sel) else np.nan


def _paired(model_vals: np.ndarray, ctrl: np.ndarray, rng: np.random.Generator) -> dict:
    """Seed-paired statistics of model - control: means and SDs, the mean difference with its bootstrap 95% CI,
    the paired t test's p, the number of complete pairs, and ``beats`` (CI low > 0: with 3 seeds, every paired
    difference is positive)."""
    diff = model_vals - ctrl
    ok = np.isfinite(diff)
    lo, hi = analysis.bootstrap_ci(diff[ok], rng=rng)
    test = analysis.paired_test(model_vals[ok], ctrl[ok]) if ok.sum() >= 2 else {}

    def sd(v: np.ndarray) -> float:
        return float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else np.nan
    return dict(model_mean=float(np.mean(model_vals[ok])) if ok.any() else np.nan, model_sd=sd(model_vals),
                control_mean=float(np.mean(ctrl[ok])) if ok.any() else np.nan, control_sd=sd(ctrl),
                diff_mean=float(np.mean(diff[ok])) if ok.any() else np.nan, diff_ci_low=lo, diff_ci_high=hi,
                p_paired_t=test.get("p_t", np.nan), n_seeds=int(ok.sum()), beats=bool(np.isfinite(lo) and lo > 0))
