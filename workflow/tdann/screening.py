"""Streaming screening of natural inputs (docs/reference.md §6, bidirectional coding).

:func:`screen` with :class:`StreamingTopK` and :class:`RunningStats`: one pass over a large natural image / clip
store that keeps, per unit, the most- and least-activating inputs (MAIs / LAIs, with signed responses) and summary
statistics, in memory O(units x (k + reservoir)), independent of the number of inputs; the semantic axis between the
poles on the network's own embedding (:func:`add_semantic_axes`); the units to show (:func:`pick_units`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from tdann.bidirectional import axis_separation, pole_bootstrap
from tdann.h5io import write_dataset
from tdann.models import Encoder
from tdann.responses import (
    Batch,
    as_input,
    check_layers,
    counted_batches,
    eval_mode,
    forward_to_layers,
    tap_layers,
    unit_shape,
)
from tdann.streaming import RunningStats, StreamingTopK, dkw_epsilon

# ----------------------------------------------------------------------------------------------
# streaming screening
# ----------------------------------------------------------------------------------------------
_STAT_DOCS = {
    "mean": ("mean response over all inputs (exact)", "activation (a.u.)"),
    "std": ("standard deviation of the responses over all inputs (exact, ddof=0)", "activation (a.u.)"),
    "skew": ("skewness of the responses over all inputs (exact, biased like scipy.stats.skew; NaN if constant)",
             "dimensionless"),
    "min": ("smallest response over all inputs (exact)", "activation (a.u.)"),
    "max": ("largest response over all inputs (exact)", "activation (a.u.)"),
    "frac_positive": ("fraction of inputs with response > 0 (exact)", "fraction"),
    "active": ("unit responds > 0 to at least active_fraction of the inputs", None),
    "q05": ("5th percentile of the responses, from a uniform reservoir sample (rank error <= attrs dkw_eps, "
            "p = 0.99)", "activation (a.u.)"),
    "q50": ("median response to natural inputs, the unit's baseline, from a uniform reservoir sample (rank error "
            "<= attrs dkw_eps, p = 0.99)", "activation (a.u.)"),
    "q95": ("95th percentile of the responses, from a uniform reservoir sample (rank error <= attrs dkw_eps, "
            "p = 0.99)", "activation (a.u.)"),
    "gini": ("Gini coefficient of the responses shifted by min(0, min response), from the reservoir sample "
             "(docs/reference.md §6); NaN if never above the shift", "dimensionless"),
}


_POLE_DOCS = {
    "low_depth": ("depth of the low pole: baseline (q50) - mean response to the unit's k LAIs", "activation (a.u.)"),
    "high_height": ("height of the high pole: mean response to the unit's k MAIs - baseline (q50)",
                    "activation (a.u.)"),
    "low_ci_low": ("bootstrap CI (attrs level) over inputs of the low-pole depth, lower end (> 0: significantly "
                   "below baseline)", "activation (a.u.)"),
    "low_ci_high": ("bootstrap CI of the low-pole depth, upper end", "activation (a.u.)"),
    "high_ci_low": ("bootstrap CI over inputs of the high-pole height, lower end", "activation (a.u.)"),
    "high_ci_high": ("bootstrap CI of the high-pole height, upper end", "activation (a.u.)"),
    "k_sample": ("lowest / highest inputs per pole in each bootstrap resample of the reservoir", None),
}


def screen(
    model: nn.Module,
    store_batches: Iterable[Batch],
    layers: Sequence[str],
    k: int,
    out_h5: str | Path,
    units_per_layer: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    time_average: bool = True,
    reservoir: int = 2048,
    active_fraction: float = 0.01,
    seed: int = 0,
    store_path: str | Path = "",
    n_inputs: int | None = None,
    signals: Sequence[str] = ("output",),
    n_boot: int = 500,
) -> Path:
    """Screen a natural input store: per unit, the k most / least activating inputs and statistics.

    ``store_batches`` yields ``(start, array)`` like :func:`compute_responses` (inputs
    ``start .. start+B-1`` of the store at ``store_path``; ``n_inputs``, if known, only feeds the
    progress bar). ``units_per_layer``: screen a random sample of that many units per layer (seeded,
    sorted), None = all units. Memory is O(units x (k + reservoir + batch)), independent of the
    store's size.

    Output ``screen/<layer>/``: ``units`` (flat channel-major indices), ``top_idx``/``top_val``
    (units x k, descending), ``bottom_idx``/``bottom_val`` (ascending), with signed responses,
    indices into the store; and the :class:`RunningStats` datasets (mean, std, skew, min, max, q05,
    q95, gini, frac_positive, active) with the poles relative to the baseline q50 (:func:`pole_bootstrap`,
    ``n_boot`` resamples: low_depth, high_height and their CIs). File attrs: ``store``, ``n_inputs``, ``k``,
    ``reservoir``, ``signal``.

    ``signals``: what is screened (:data:`tdann.models.SIGNALS`); the first is written to ``screen/``, any
    others, in the same pass and on the same units, to ``screen_<signal>/`` (e.g. the post-ReLU output as the
    control of a pre-activation screen).
    """
    signals = list(signals)
    if not signals or len(set(signals)) != len(signals):
        raise ValueError(f"signals must be distinct and at least one, got {signals}")
    layers = check_layers(model, layers)
    if int(k) < 1:
        raise ValueError(f"screening k must be >= 1, got {k}")
    if units_per_layer is not None and int(units_per_layer) < 1:
        raise ValueError(f"units_per_layer must be >= 1 or None, got {units_per_layer}")
    state: dict[str, dict[str, dict[str, Any]]] = {sig: {} for sig in signals}
    n_seen = 0
    model.to(device)
    with ExitStack() as stack:
        stack.enter_context(eval_mode(model))
        stack.enter_context(torch.no_grad())
        taps = {sig: stack.enter_context(tap_layers(model, layers, time_average, sig)) for sig in signals}
        for start, batch in counted_batches(store_batches, n_inputs, progress, "screen"):
            x = as_input(batch, device, transform)
            forward_to_layers(model, taps[signals[0]], layers, x)
            indices = torch.arange(start, start + len(x), device=x.device)
            if not state[signals[0]]:  # first batch: draw each layer's units once, the same for every signal
                rng = np.random.default_rng(seed)
                for li, name in enumerate(layers):
                    out = taps[signals[0]].outputs[name]
                    units = _draw_units(out[0].numel(), units_per_layer, rng)
                    for sig in signals:
                        state[sig][name] = _screen_state(units, k, reservoir, active_fraction, seed + li, x.device,
                                                         unit_shape(out))
            for sig in signals:
                for name in layers:
                    flat = taps[sig].flat(name).float()
                    st = state[sig][name]
                    if st["units_t"] is not None:
                        flat = flat.index_select(1, st["units_t"])
                    st["topk"].update(flat, indices)
                    st["stats"].update(flat)
            n_seen += len(x)
    if n_seen < k:
        raise ValueError(f"store {store_path!s}: {n_seen} inputs screened, fewer than k = {k}")
    out_h5 = Path(out_h5)
    with h5py.File(out_h5, "w") as f:
        f.attrs.update(store=str(store_path), n_inputs=n_seen, k=int(k), reservoir=int(reservoir),
                       active_fraction=float(active_fraction), time_average=time_average, layers=layers,
                       dkw_eps=dkw_epsilon(reservoir) if reservoir else np.nan, signal=signals[0],
                       signals=signals, n_boot=int(n_boot), level=0.95)
        for sig in signals:
            root = f.create_group("screen" if sig == signals[0] else f"screen_{sig}")
            root.attrs["signal"] = sig
            for name in layers:
                _write_screen_layer(root.create_group(name), name, state[sig][name], n_seen, k, n_boot, seed)
    return out_h5


def _draw_units(n_total: int, units_per_layer: int | None, rng: np.random.Generator) -> np.ndarray:
    """All units, or a seeded sorted sample of ``units_per_layer`` of them."""
    if units_per_layer is None or units_per_layer >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=int(units_per_layer), replace=False))


def _screen_state(units: np.ndarray, k: int, reservoir: int, active_fraction: float, seed: int,
                  device: torch.device, shape: tuple[int, ...]) -> dict[str, Any]:
    n_total = math.prod(shape)
    sampled = units.size < n_total
    return {
        "units": units, "units_t": torch.as_tensor(units, device=device) if sampled else None, "shape": shape,
        "n_total": n_total, "topk": StreamingTopK(units.size, k),
        "stats": RunningStats(units.size, reservoir=reservoir, active_fraction=active_fraction, seed=seed),
    }


def _write_screen_layer(group: h5py.Group, name: str, st: dict[str, Any], n_inputs: int, k: int, n_boot: int,
                        seed: int) -> None:
    group.attrs.update(layer=name, shape=st["shape"], n_units_total=st["n_total"])
    write_dataset(group, "units", st["units"], f"screened units of {name}: indices into the flat channel-major "
                  f"unit order (flatten of {st['shape']})")
    top = st["topk"].result()
    what = {"top": "most activating inputs (MAIs), descending", "bottom": "least activating inputs (LAIs), ascending"}
    for end, text in what.items():
        write_dataset(group, f"{end}_idx", top[f"{end}_idx"], f"store indices of each unit's k {text}")
        write_dataset(group, f"{end}_val", top[f"{end}_val"], f"signed responses to each unit's k {text}",
                      units="activation (a.u.)")
    stats = st["stats"].result()
    for key, value in stats.items():
        text, units = _STAT_DOCS[key]
        write_dataset(group, key, value, text, units=units)
    poles = {"low_depth": stats["q50"] - top["bottom_val"].mean(axis=1),
             "high_height": top["top_val"].mean(axis=1) - stats["q50"]}
    if st["stats"].reservoir >= 2:
        poles |= pole_bootstrap(st["stats"].sample(), n_inputs, k, n_boot=n_boot, seed=seed)
    for key, value in poles.items():
        text, units = _POLE_DOCS[key]
        write_dataset(group, key, value, text, units=units)


def load_screen(path: str | Path, layer: str, signal: str | None = None) -> dict[str, np.ndarray]:
    """All datasets of one layer from :func:`screen` as a dict of arrays: the screened signal (``screen/``) or,
    given ``signal``, that signal's group (the screened one or a control screened beside it)."""
    with h5py.File(path, "r") as f:
        group = "screen"
        if signal is not None and f.attrs.get("signal", "output") != signal:
            group = f"screen_{signal}"
        if group not in f or layer not in f[group]:
            have = sorted(f[group]) if group in f else [g for g in f if g.startswith("screen")]
            raise ValueError(f"{path}: no screening results for layer {layer!r} ({group}); has {have}")
        return {key: ds[()] for key, ds in f[group][layer].items()}


# ----------------------------------------------------------------------------------------------
# the semantic axis between the poles (tdann.bidirectional.axis_separation on the network's own embedding)
# ----------------------------------------------------------------------------------------------
def distinct_sources(indices: np.ndarray, sources: np.ndarray, n: int) -> np.ndarray:
    """Ranks (positions in ``indices``) of the first ``n`` inputs that come from different sources: the top inputs
    of a unit are often crops of one photo or clips of one video, which show one thing n times."""
    seen, ranks = set(), []
    for rank, i in enumerate(np.asarray(indices)):
        src = int(sources[int(i)])
        if src not in seen:
            seen.add(src)
            ranks.append(rank)
            if len(ranks) == n:
                break
    return np.asarray(ranks, dtype=np.int64)


@torch.no_grad()
def embed_inputs(model: Encoder, inputs: np.ndarray, device: str | torch.device = "cpu",
                 transform: Callable | None = None, batch: int = 64) -> np.ndarray:
    """The network's own penultimate features (``model.embed``: pooled last block) of ``inputs`` (N, 3, [T,] H, W)
    in [0, 1], as float32 (N, d)."""
    out = []
    with eval_mode(model):
        for i in range(0, len(inputs), batch):
            out.append(model.embed(as_input(inputs[i:i + batch], device, transform)).float().cpu().numpy())
    return np.concatenate(out)


def add_semantic_axes(path: str | Path, model: Encoder, read_items: Callable[[np.ndarray], np.ndarray],
                      device: str | torch.device = "cpu", transform: Callable | None = None, batch: int = 64,
                      seed: int = 0, groups: np.ndarray | None = None) -> None:
    """Write ``axis_auc``, ``axis_auc_other`` and ``axis_pairs`` (:func:`axis_separation`) into every layer of the
    screened signal of a :func:`screen` file; ``read_items(indices)`` returns the store's inputs (sorted unique
    indices) as model input; ``groups`` (store length): each input's source, so that held-out inputs never share
    a source with the inputs the axis was fit on. Each input is embedded once, whatever the number of units and
    layers that rank it."""
    with h5py.File(path, "r+") as f:
        groups_ = [f["screen"][name] for name in f["screen"]]
        idx = np.unique(np.concatenate([np.concatenate([g["top_idx"][()].ravel(), g["bottom_idx"][()].ravel()])
                                        for g in groups_]))
        emb = np.concatenate([embed_inputs(model, read_items(idx[i:i + 4 * batch]), device, transform, batch)
                              for i in range(0, len(idx), 4 * batch)])
        for g in groups_:
            top_idx, bottom_idx = g["top_idx"][()], g["bottom_idx"][()]
            source = {} if groups is None else {"top_groups": np.asarray(groups)[top_idx],
                                                "bottom_groups": np.asarray(groups)[bottom_idx]}
            res = axis_separation(emb[np.searchsorted(idx, top_idx)], emb[np.searchsorted(idx, bottom_idx)], seed,
                                  **source)
            held = "held-out inputs from sources the axis was not fit on" if groups is not None else "held-out inputs"
            write_dataset(g, "axis_auc", res["auc"], f"{held}: MAIs vs LAIs ordered by the unit's semantic axis "
                          "(penultimate features; fit on even ranks, tested on odd; 0.5 = none; NaN: no pair)",
                          units="AUC")
            write_dataset(g, "axis_auc_other", res["auc_other"], "the same held-out inputs on another unit's axis "
                          "(control)", units="AUC")
            write_dataset(g, "axis_pairs", res["n_pairs"], "held-out (MAI, LAI) pairs the AUC is over")
        f.attrs["embedding"] = "penultimate (model.embed)"
        f.attrs["axis_split"] = "by source" if groups is not None else "by rank"


def pick_units(screen_result: dict[str, np.ndarray], positions: np.ndarray, n: int) -> np.ndarray:
    """Units to synthesise for: among the screened units, ``n`` strongly driven ones spread over the sheet.

    The pool is the upper half of screened units by the height of their high pole above baseline (``high_height``;
    the mean response for files without it). The pool's extent is cut into a g x g grid (g = ceil(sqrt(n))), and
    from the n most populated cells the unit nearest each cell's centre is taken, so the sample covers the map
    without going to its corners (greedy farthest-point sampling picks corners). Returns flat channel-major
    unit indices, sorted.
    """
    units = np.asarray(screen_result["units"])
    if n < 1 or len(units) == 0:
        raise ValueError(f"pick_units needs n >= 1 and screened units, got n={n}, {len(units)} units")
    drive = screen_result.get("high_height", screen_result["mean"])
    order = np.argsort(-np.nan_to_num(np.asarray(drive, dtype=float), nan=-np.inf))
    pool = units[order[: max(n, len(units) // 2)]]
    pos = np.asarray(positions, dtype=float)[pool]
    g = int(math.ceil(math.sqrt(n)))
    lo, hi = pos.min(0), pos.max(0)
    cell = np.minimum(((pos - lo) / np.maximum(hi - lo, 1e-12) * g).astype(int), g - 1)
    cell_id = cell[:, 0] * g + cell[:, 1]
    counts = np.bincount(cell_id, minlength=g * g)
    chosen: list[int] = []
    for c in np.argsort(-counts, kind="stable")[: min(n, int((counts > 0).sum()))]:
        centre = lo + (np.array([c // g, c % g]) + 0.5) * (hi - lo) / g
        members = np.flatnonzero(cell_id == c)
        chosen.append(int(members[np.argmin(np.linalg.norm(pos[members] - centre, axis=1))]))
    rest = [i for i in range(len(pool)) if i not in set(chosen)]
    chosen += rest[: max(0, min(n, len(pool)) - len(chosen))]  # fewer occupied cells than n: the next strongest
    return np.sort(pool[chosen])
