"""Event frames: from occupancy frames and stimulus dicts, to and from event files, split by speed."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .channels import SpikingConfigError


def events_to_frames(events: torch.Tensor | np.ndarray, steps: int, height: int, width: int) -> torch.Tensor:
    """Rasterise events, rows ``(t, x, y)`` (x = column, y = row), to event counts of shape (steps, height, width)."""
    ev = torch.as_tensor(np.asarray(events), dtype=torch.long)
    if ev.ndim != 2 or ev.shape[1] != 3:
        raise SpikingConfigError(f"events must have shape (E, 3) with rows (t, x, y), got {tuple(ev.shape)}")
    t, x, y = ev.unbind(1)
    bad = (t < 0) | (t >= steps) | (x < 0) | (x >= width) | (y < 0) | (y >= height)
    if bool(bad.any()):
        raise SpikingConfigError(f"{int(bad.sum())} events fall outside (steps={steps}, {height}x{width})")
    frames = torch.zeros(steps * height * width)
    frames.index_add_(0, (t * height + y) * width + x, torch.ones(len(t)))
    return frames.view(steps, height, width)


def occupancy_to_events(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Event frames from occupancy frames (T, H, W): ``|frame_t - frame_{t-1}|``, no events at t = 0."""
    f = torch.as_tensor(np.asarray(frames), dtype=torch.float32)
    if f.ndim != 3:
        raise SpikingConfigError(f"frames must have shape (T, H, W), got {tuple(f.shape)}")
    return torch.cat([torch.zeros_like(f[:1]), (f[1:] - f[:-1]).abs()])


def stimulus_event_frames(stimulus: Mapping[str, Any] | torch.Tensor | np.ndarray) -> torch.Tensor:
    """Event frames (T, H, W) from a moving-disk stimulus: a dict with ``events`` (rasterised to the shape of
    ``frames``) or only ``frames`` (binary occupancy, differenced), or an array that already holds event frames."""
    if not isinstance(stimulus, Mapping):
        f = torch.as_tensor(np.asarray(stimulus), dtype=torch.float32)
        if f.ndim != 3:
            raise SpikingConfigError(f"event frames must have shape (T, H, W), got {tuple(f.shape)}")
        return f
    if "frames" not in stimulus:
        raise SpikingConfigError(f"stimulus dict needs 'frames' (keys: {sorted(stimulus)})")
    shape = tuple(np.asarray(stimulus["frames"]).shape)
    if "events" in stimulus:
        return events_to_frames(stimulus["events"], *shape)
    return occupancy_to_events(stimulus["frames"])


def save_event_tensor(path: str, frames: torch.Tensor | np.ndarray) -> None:
    """Write event frames (T, H, W) in the moving-disks exercise's own format (norse's teaching example,
    ``2404_circle.dat``): a ``torch.sparse_coo`` tensor of shape (T, X, Y), x = column, saved with ``torch.save``."""
    f = stimulus_event_frames(frames)
    torch.save(f.transpose(1, 2).contiguous().to_sparse_coo(), path)


def load_event_tensor(path: str) -> torch.Tensor:
    """Event frames (T, H, W) from a file in the exercise's format (a sparse or dense (T, X, Y) tensor saved with
    ``torch.save``), loaded as tensors only: a file holding anything else is refused, naming it."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch notes that it validates sparse invariants
            x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise SpikingConfigError(f"{path}: not an event tensor file, refused without running it "
                                 f"({str(err).strip().splitlines()[-1][:200]})") from err
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise SpikingConfigError(f"{path}: expected a (T, X, Y) tensor, got "
                                 f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    dense = x.to_dense() if x.layout == torch.sparse_coo else x
    return dense.to(torch.float32).transpose(1, 2).contiguous()


def event_file_summary(name: str, path: Any, frames: torch.Tensor, spikes: torch.Tensor) -> list[dict[str, Any]]:
    """One row per channel of the speed channels' answer to an event file: its shape (T, X, Y as stored), events,
    the channel's spikes in all and per 100 steps, and the step of its first spike (-1: none)."""
    t, h, w = frames.shape
    counts = spikes.flatten(2).sum(-1)  # (T, C)
    rows = []
    for c in range(counts.shape[1]):
        fired = torch.nonzero(counts[:, c]).flatten()
        rows.append(dict(file=name, path=str(path), steps=t, x=w, y=h, events=int(frames.sum()), channel=c,
                         spikes=int(counts[:, c].sum()), spikes_per_100_steps=float(counts[:, c].sum()) * 100 / t,
                         first_spike_step=int(fired[0]) if len(fired) else -1))
    return rows


def split_by_speed(stimulus: Mapping[str, Any], skip_onset: bool = True) -> dict[float, list[dict[str, Any]]]:
    """Cut a multi-segment moving-disk stream (``tdann.stimuli.moving_disks``: ``frames``, ``events`` rows
    (t, x, y), ``centers``, ``speed`` per segment, ``segments`` [start, stop)) into clips grouped by speed.

    Each clip is a dict with ``frames``, ``events`` (times relative to the clip start) and ``centers``. With
    ``skip_onset`` the events of a clip's first step are dropped: there a new disk appears at once and its whole
    area fires, which says nothing about speed.
    """
    need = {"frames", "events", "centers", "speed", "segments"} - set(stimulus)
    if need:
        raise SpikingConfigError(f"moving-disk stimulus lacks {sorted(need)}")
    events = torch.as_tensor(np.asarray(stimulus["events"]), dtype=torch.long)
    out: dict[float, list[dict[str, Any]]] = {}
    for speed, (start, stop) in zip(np.asarray(stimulus["speed"], float).tolist(),
                                    np.asarray(stimulus["segments"], int).tolist()):
        first = start + 1 if skip_onset else start
        ev = events[(events[:, 0] >= first) & (events[:, 0] < stop)].clone()
        ev[:, 0] -= start
        out.setdefault(float(speed), []).append({
            "frames": torch.as_tensor(np.asarray(stimulus["frames"][start:stop])),
            "events": ev,
            "centers": torch.as_tensor(np.asarray(stimulus["centers"][start:stop])),
        })
    return out
