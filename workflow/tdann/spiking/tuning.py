"""Speed tuning of the channels and of network units: selectivity, localisation, fitting time constants, thresholds and inhibition, and the comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .channels import SpeedChannels, SpikingConfigError
from .events import stimulus_event_frames


def _clips(stimuli: Any) -> list[torch.Tensor]:
    """Event-frame clips from one speed's stimuli: a single stimulus or a list of them."""
    if isinstance(stimuli, (list, tuple)):
        return [stimulus_event_frames(s) for s in stimuli]
    return [stimulus_event_frames(stimuli)]


@torch.no_grad()
def speed_tuning(model: SpeedChannels, stimuli_by_speed: Mapping[float, Any], device: str = "cpu") -> pd.DataFrame:
    """Speed-tuning curves: total spikes of each channel per stimulus (mean over clips), one row per (channel,
    speed). ``stimuli_by_speed`` maps a speed to event frames (T, H, W), a stimulus dict, or a list of those."""
    if not stimuli_by_speed:
        raise SpikingConfigError("stimuli_by_speed is empty")
    model = model.to(device)
    rows = []
    for speed in sorted(stimuli_by_speed):
        counts = torch.stack([model(c.to(device)).sum(dim=(0, 2, 3)) for c in _clips(stimuli_by_speed[speed])])
        for ch, n in enumerate(counts.mean(0).tolist()):
            rows.append({"channel": ch, "speed": float(speed), "spike_count": n})
    return pd.DataFrame(rows)


def selectivity_index(tuning: pd.DataFrame) -> pd.DataFrame:
    """Per channel: preferred speed, threshold speed and selectivity ``(R_pref - R_null) / (R_pref + R_null)``.

    R_pref / R_null are the largest / smallest spike counts over speeds (the classic form of docs/reference.md §4
    applied to speed); a silent channel gets 0. ``threshold_speed`` is the slowest speed at which the channel
    reaches half of its maximum count (NaN if silent).
    """
    missing = {"channel", "speed", "spike_count"} - set(tuning.columns)
    if missing:
        raise SpikingConfigError(f"tuning table lacks columns {sorted(missing)}")
    rows = []
    for ch, g in tuning.sort_values("speed").groupby("channel"):
        r = g["spike_count"].to_numpy(float)
        s = g["speed"].to_numpy(float)
        hi, lo = r.max(), r.min()
        rows.append({
            "channel": int(ch),
            "preferred_speed": float(s[r.argmax()]) if hi > 0 else float("nan"),
            "threshold_speed": float(s[np.argmax(r >= hi / 2)]) if hi > 0 else float("nan"),
            "selectivity": float((hi - lo) / (hi + lo)) if hi > 0 else 0.0,
            "total_spikes": float(r.sum()),
        })
    return pd.DataFrame(rows)


def localisation_error(spikes: torch.Tensor, centers: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Error of the disk centre read out from spikes: per time step the centroid of all spikes (any channel) is
    compared with the true centre, ``centers`` (T, 2) as (x, y) = (column, row) in pixels.

    Returns mean and median Euclidean error (pixels) over steps with spikes, and the fraction of such steps.
    """
    s = spikes.detach().float().cpu()
    c = torch.as_tensor(np.asarray(centers), dtype=torch.float32)
    if s.ndim == 3:
        s = s[:, None]
    if s.ndim != 4 or c.shape != (s.shape[0], 2):
        raise SpikingConfigError(
            f"spikes (T, C, H, W) and centers (T, 2) disagree: {tuple(s.shape)} vs {tuple(c.shape)}"
        )
    m = s.sum(1)  # (T, H, W)
    total = m.sum(dim=(1, 2))
    active = total > 0
    if not bool(active.any()):
        return {"mean_error": float("nan"), "median_error": float("nan"), "active_fraction": 0.0}
    H, W = m.shape[1:]
    ys, xs = torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32)
    cx = (m.sum(1) * xs).sum(1)[active] / total[active]
    cy = (m.sum(2) * ys).sum(1)[active] / total[active]
    err = torch.sqrt((cx - c[active, 0]) ** 2 + (cy - c[active, 1]) ** 2)
    return {"mean_error": float(err.mean()), "median_error": float(err.median()),
            "active_fraction": float(active.float().mean())}


def _separation(counts: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """For count curves (G, S) and a target speed index: separation ``(above - below) / (above + below)`` with
    ``above`` the smallest count at speeds >= target and ``below`` the largest at slower speeds, and ``above``."""
    above = counts[:, target:].min(1)
    below = counts[:, :target].max(1) if target > 0 else np.zeros(len(counts))
    with np.errstate(invalid="ignore", divide="ignore"):
        sep = np.where(above + below > 0, (above - below) / (above + below), -1.0)
    return sep, above


def _pick_robust(sep: np.ndarray, above: np.ndarray, n_tau: int, n_th: int) -> int:
    """Index into the (tau x threshold) grid: among the points with the best separation, the tau with the widest
    range of such thresholds (ties: most spikes at the target speeds), and the middle threshold of that range, so
    the chosen threshold keeps a margin on both sides instead of sitting on the edge of the separating range."""
    ok = (sep >= sep.max() - 1e-9).reshape(n_tau, n_th)
    score = ok.sum(1) + np.where(ok, above.reshape(n_tau, n_th), 0).sum(1) / (above.sum() + 1.0)
    tau = int(np.argmax(score))
    cols = np.flatnonzero(ok[tau])
    return tau * n_th + int(cols[len(cols) // 2])


@torch.no_grad()
def fit_channels(
    stimuli_by_speed: Mapping[float, Any],
    n_channels: int,
    tau_grid: Sequence[float] = (50.0, 100.0, 200.0, 400.0, 800.0),
    n_thresholds: int = 24,
    kernel_radius: float = 3.0,
    surround: float = 0.0,
    input_gain: float = 1.0,
    dt: float = 1e-3,
    device: str = "cpu",
) -> dict[str, Any]:
    """Grid search of (tau_mem_inv, v_th) per channel so that channel c fires at speeds >= its target speed and
    little below (no inhibition during the fit). Targets: the sorted speeds, spread evenly when there are more
    speeds than channels. Thresholds are a linear grid up to the largest drive seen. All grid points run at once
    as the channels of one ``SpeedChannels`` (torch backend), one pass per clip.

    Returns a YAML-able dict: tau_mem_inv, v_th, target_speed, separation (per channel, in [-1, 1]; 1 = silent below
    the target, > 0 = more spikes at every speed >= target than at any slower one), spike_counts (C x S), speeds.
    """
    speeds = sorted(float(s) for s in stimuli_by_speed)
    if not 1 <= n_channels <= len(speeds):
        raise SpikingConfigError(f"n_channels={n_channels} must be between 1 and the number of speeds ({len(speeds)})")
    if any(t <= 0 or dt * t > 1 for t in tau_grid):
        raise SpikingConfigError(f"tau_grid values must be in (0, 1/dt]: {list(tau_grid)}")
    clips = {s: _clips(stimuli_by_speed[s]) for s in stimuli_by_speed}
    probe = SpeedChannels(1, [tau_grid[0]], [1.0], kernel_radius, 0.0, surround, input_gain, dt=dt, backend="torch")
    max_drive = max(float(probe.drive(c).max()) for cs in clips.values() for c in cs)
    if max_drive <= 0:
        raise SpikingConfigError("the stimuli produce no positive input (no events?)")
    ths = np.linspace(max_drive / n_thresholds, max_drive, n_thresholds)
    grid = [(float(t), float(th)) for t in tau_grid for th in ths]
    bank = SpeedChannels(len(grid), [g[0] for g in grid], [g[1] for g in grid], kernel_radius, 0.0, surround,
                         input_gain, dt=dt, backend="torch")
    tuning = speed_tuning(bank, {s: clips[s] for s in stimuli_by_speed}, device=device)
    counts = tuning.pivot(index="channel", columns="speed", values="spike_count")[speeds].to_numpy()
    targets = np.unique(np.round(np.linspace(0, len(speeds) - 1, n_channels)).astype(int))
    out: dict[str, Any] = {"tau_mem_inv": [], "v_th": [], "target_speed": [], "separation": [], "spike_counts": [],
                           "speeds": speeds, "kernel_radius": kernel_radius, "surround": surround,
                           "input_gain": input_gain, "dt": dt}
    for target in targets:
        sep, above = _separation(counts, int(target))
        best = _pick_robust(sep, above, len(tau_grid), n_thresholds)
        out["tau_mem_inv"].append(grid[best][0])
        out["v_th"].append(grid[best][1])
        out["target_speed"].append(speeds[int(target)])
        out["separation"].append(float(sep[best]))
        out["spike_counts"].append(counts[best].tolist())
    return out


def channels_from_params(params: Mapping[str, Any], inhibition: float = 0.0, backend: str = "norse") -> SpeedChannels:
    """Build ``SpeedChannels`` from a ``fit_channels`` result (or a config dict with the same keys)."""
    need = {"tau_mem_inv", "v_th"}
    if need - set(params):
        raise SpikingConfigError(f"speed-channel params lack {sorted(need - set(params))}")
    return SpeedChannels(
        len(params["tau_mem_inv"]), params["tau_mem_inv"], params["v_th"],
        kernel_radius=float(params.get("kernel_radius", 3.0)), inhibition=float(params.get("inhibition", inhibition)),
        surround=float(params.get("surround", 0.0)), input_gain=float(params.get("input_gain", 1.0)),
        inhibition_radius=params.get("inhibition_radius"), inhibition_tau=float(params.get("inhibition_tau", 0.0)),
        dt=float(params.get("dt", 1e-3)), backend=backend,
    )


def channel_selectivity(tuning: pd.DataFrame, target_speeds: Sequence[float]) -> pd.DataFrame:
    """How well each channel keeps to its own disk: per channel its target speed (the disk it was fitted to),
    preferred speed, ``own_fraction`` = spikes to its own disk / all its spikes (1: it fires for that disk only; a
    threshold channel that also fires for every faster disk scores low), and the confusion row ``frac_<speed>``:
    the fraction of its spikes per disk."""
    counts = tuning.pivot(index="channel", columns="speed", values="spike_count").sort_index()
    speeds = list(counts.columns)
    if len(target_speeds) != len(counts):
        raise SpikingConfigError(f"{len(target_speeds)} target speeds for {len(counts)} channels")
    rows = []
    for ch, (target, (_, r)) in enumerate(zip(target_speeds, counts.iterrows())):
        total = float(r.sum())
        frac = r / total if total > 0 else r * 0.0
        rows.append({"channel": ch, "target_speed": float(target),
                     "preferred_speed": float(speeds[int(np.argmax(r.to_numpy()))]) if total > 0 else float("nan"),
                     "own_fraction": float(frac[float(target)]) if total > 0 else 0.0, "total_spikes": total,
                     **{f"frac_{s:g}": float(frac[s]) for s in speeds}})
    return pd.DataFrame(rows)


@torch.no_grad()
def fit_inhibition(params: Mapping[str, Any], stimuli_by_speed: Mapping[float, Any], strengths: Sequence[float],
                   radius: float, tau: float) -> tuple[float, pd.DataFrame]:
    """The inhibition strength (from ``strengths``) that best keeps each fitted channel to its own disk: the
    largest mean ``own_fraction`` of :func:`channel_selectivity` (ties: the weakest). Returns it and the table of
    every strength tried (mean and minimum own fraction, how many distinct speeds the channels prefer)."""
    if not strengths or min(strengths) < 0:
        raise SpikingConfigError(f"inhibition strengths must be a non-empty list of values >= 0, got {strengths}")
    rows = []
    for strength in sorted(float(v) for v in strengths):
        ch = channels_from_params({**params, "inhibition": strength, "inhibition_radius": radius,
                                   "inhibition_tau": tau}, backend="torch")
        sel = channel_selectivity(speed_tuning(ch, stimuli_by_speed), params["target_speed"])
        rows.append({"inhibition": strength, "mean_own_fraction": float(sel["own_fraction"].mean()),
                     "min_own_fraction": float(sel["own_fraction"].min()),
                     "distinct_preferences": int(sel["preferred_speed"].nunique())})
    table = pd.DataFrame(rows)
    best = table.loc[table["mean_own_fraction"] >= table["mean_own_fraction"].max() - 1e-9, "inhibition"].min()
    return float(best), table


def unit_speed_tuning(responses_by_speed: Mapping[float, np.ndarray | torch.Tensor]) -> pd.DataFrame:
    """Tuning table of other units (e.g. the dorsal model's MT-like units) in the same long form as
    ``speed_tuning``: ``responses_by_speed`` maps a speed to a (N,) response vector (mean over its clips); rows
    (channel = unit index, speed, spike_count = response) so ``selectivity_index`` applies unchanged. Responses are
    shifted to be non-negative per unit (the selectivity index needs that)."""
    speeds = sorted(responses_by_speed)
    r = np.stack([np.asarray(torch.as_tensor(responses_by_speed[s]).detach().cpu(), dtype=float).ravel()
                  for s in speeds], axis=1)  # (N, S)
    r = r - np.minimum(r.min(1, keepdims=True), 0)
    n, _ = r.shape
    return pd.DataFrame({"channel": np.repeat(np.arange(n), len(speeds)),
                         "speed": np.tile(np.asarray(speeds, float), n), "spike_count": r.ravel()})


def compare_speed_tuning(channels: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Summaries of two tuning tables (spiking channels vs. DNN units) side by side: per population, the number of
    units, mean / median selectivity and the fraction preferring each speed."""
    rows = []
    for name, table in (("spiking", channels), ("dnn", units)):
        si = selectivity_index(table)
        row: dict[str, Any] = {"population": name, "n_units": len(si),
                               "mean_selectivity": float(si["selectivity"].mean()),
                               "median_selectivity": float(si["selectivity"].median())}
        for s in sorted(table["speed"].unique()):
            row[f"frac_prefer_{s:g}"] = float((si["preferred_speed"] == s).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def write_speed_channels_h5(path: str, params: Mapping[str, Any], tuning: pd.DataFrame,
                            localisation: Mapping[str, float] | None = None,
                            inhibition_fit: pd.DataFrame | None = None) -> None:
    """Store fitted parameters (thresholds, time constants, inhibition), the tuning table and selectivity in HDF5
    with descriptions; ``inhibition_fit`` (:func:`fit_inhibition`'s table) when the inhibition was fitted."""
    import h5py

    from tdann.h5io import write_dataset

    si = selectivity_index(tuning)
    with h5py.File(path, "w") as f:
        g = f.create_group("params")
        write_dataset(g, "tau_mem_inv", np.asarray(params["tau_mem_inv"], float),
                      "inverse membrane time constant per channel (docs/reference.md §7)", units="1/s")
        write_dataset(g, "v_th", np.asarray(params["v_th"], float), "spike threshold per channel",
                      units="a.u. (kernel-normalised event drive)")
        if "separation" in params:
            write_dataset(g, "separation", np.asarray(params["separation"], float),
                          "(min count at speeds >= target - max count below) / sum, per channel")
            write_dataset(g, "target_speed", np.asarray(params["target_speed"], float),
                          "speed from which the channel should fire", units="pixels/step")
        for key, text, units in (("inhibition", "strength of the inhibition from faster to slower channels", None),
                                 ("inhibition_radius", "radius of the pool of faster-channel spikes", "pixels"),
                                 ("inhibition_tau", "time constant of the inhibitory trace", "steps")):
            if params.get(key) is not None:
                write_dataset(g, key, float(params[key]), text, units=units)
        if inhibition_fit is not None:
            h = f.create_group("inhibition_fit")
            for col in inhibition_fit.columns:
                write_dataset(h, col, inhibition_fit[col].to_numpy(float),
                              f"inhibition fit, per strength tried: {col.replace('_', ' ')}")
        t = f.create_group("tuning")
        write_dataset(t, "channel", tuning["channel"].to_numpy(int), "channel index (slow to fast)")
        write_dataset(t, "speed", tuning["speed"].to_numpy(float), "disk speed", units="pixels/step")
        write_dataset(t, "spike_count", tuning["spike_count"].to_numpy(float),
                      "spikes per stimulus clip (mean over clips)", units="spikes")
        write_dataset(f, "selectivity", si["selectivity"].to_numpy(float),
                      "(R_pref - R_null) / (R_pref + R_null) over speeds, per channel")
        write_dataset(f, "preferred_speed", si["preferred_speed"].to_numpy(float),
                      "speed with the most spikes, per channel", units="pixels/step")
        for key, value in (localisation or {}).items():
            write_dataset(f, f"localisation_{key}", float(value), f"disk-centre localisation: {key}",
                          units=None if key == "active_fraction" else "pixels")


def dnn_speed_responses(model: nn.Module, layer: str, stimuli_by_speed: Mapping[float, Any], clip_len: int,
                        size: int, transform: Any = None, device: str = "cpu") -> dict[float, np.ndarray]:
    """Mean responses of a video DNN's units (e.g. the dorsal model's MT-like layer) to the same moving-disk clips.

    Each speed's clips (``split_by_speed``) are cut into windows of ``clip_len`` frames, resized to ``size``,
    shown as gray (3, T, H, W) clips and averaged over windows and time: speed -> (N,) responses, channel-major.
    """
    from ..models import FeatureTaps

    out: dict[float, np.ndarray] = {}
    model = model.to(device).eval()
    with torch.no_grad(), FeatureTaps(model, [layer], time_average=True) as taps:
        for speed, clips in stimuli_by_speed.items():
            windows = []
            for clip in clips:
                frames = torch.as_tensor(np.asarray(clip["frames"]), dtype=torch.float32)
                for start in range(0, len(frames) - clip_len + 1, clip_len):
                    windows.append(frames[start:start + clip_len])
            if not windows:
                raise SpikingConfigError(f"speed {speed}: clips shorter than clip_len={clip_len}")
            x = torch.stack(windows)[:, None]  # (B, 1, T, H, W)
            x = F.interpolate(x, size=(clip_len, size, size), mode="trilinear", align_corners=False)
            x = x.repeat(1, 3, 1, 1, 1).clamp(0, 1)
            if transform is not None:
                x = transform(x)
            model(x.to(device))
            out[float(speed)] = taps.flat(layer).mean(0).cpu().numpy()
    return out
