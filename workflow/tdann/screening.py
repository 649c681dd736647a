"""Responses to stimulus sets, streaming screening of natural inputs, and MEI / LEI synthesis.

Everything here needs only "a model + layer names": activations are read with forward hooks on named
submodules (``tdann.models.FeatureTaps``), units are numbered channel-major as
``tensor.flatten(start_dim=1)`` (docs/reference.md §2), and 3D (video) activations (B, C, T, H, W) are
averaged over time by default, like the spatial loss of the dorsal model (docs/reference.md §1).

Three parts (docs/reference.md §6, bidirectional coding):

* :func:`compute_responses` / :func:`load_responses`: the full (stimuli x units) response matrix of a
  (small) stimulus set, e.g. gratings or fLoc images, written batch by batch to HDF5.
* :func:`screen` with :class:`StreamingTopK` and :class:`RunningStats`: one pass over a large natural
  image / clip store that keeps, per unit, the most- and least-activating inputs (MAIs / LAIs, with
  signed responses) and summary statistics, in memory O(units x (k + reservoir)), independent of the
  number of inputs.
* :func:`synthesize` / :func:`natural_spectrum`: most- (sign +1) and least- (sign -1) exciting inputs
  by gradient ascent / descent on one unit's mean response, in pixel or Fourier parameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdann.bidirectional import axis_separation, pole_bootstrap
from tdann.h5io import load_responses, write_dataset  # noqa: F401 (load_responses: part of this API)
from tdann.models import Encoder, FeatureTaps
from tdann.progress import Progress

Batch = tuple[int, Any]  # (index of the first input in the store, float array (B, 3, [T,] H, W) in [0, 1])
_RESPONSE_DTYPES = {"float32": np.float32, "float16": np.float16}
_CHUNK_BYTES = 4 << 20  # target HDF5 chunk size


# ----------------------------------------------------------------------------------------------
# hooks and forward passes
# ----------------------------------------------------------------------------------------------
def _taps(model: nn.Module, layers: Sequence[str], time_average: bool, signal: str = "output") -> FeatureTaps:
    """Forward hooks on ``layers`` (outputs keep their autograd graph; 5D averaged over time if asked); ``signal``:
    the block output or its pre-activation (:class:`tdann.models.FeatureTaps`)."""
    return FeatureTaps(model, list(layers), time_average=time_average, signal=signal)


class _StopForward(Exception):
    """Raised by a hook once every tapped layer has fired: later layers are not computed."""


def _check_layers(model: nn.Module, layers: Sequence[str] | str) -> list[str]:
    """Layer names as a list; ``ValueError`` naming the first one the model does not have."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("no layers given")
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules or name == "":
            shown = [n for n in modules if n][:20]
            raise ValueError(f"layer {name!r} not found in model {type(model).__name__}; has e.g. {shown}")
    return names


def _forward(model: nn.Module, taps: FeatureTaps, layers: Sequence[str], x: torch.Tensor) -> None:
    """Run ``model`` on ``x`` (``model.embed`` if it has one) until every layer in ``layers`` fired."""
    modules = dict(model.named_modules())
    pending = set(layers)

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            pending.discard(name)
            if not pending:
                raise _StopForward

        return hook

    handles = [modules[name].register_forward_hook(make_hook(name)) for name in layers]
    try:
        fn = getattr(model, "embed", None)
        fn(x) if callable(fn) else model(x)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in taps.outputs]
    if pending or missing:
        raise RuntimeError(f"layers {sorted(pending) or missing} were not reached by the forward pass")


def _to_input(batch: Any, device: str | torch.device, transform: Callable | None) -> torch.Tensor:
    """A batch (B, 3, [T,] H, W) as float32 on ``device`` (uint8 is scaled by 1/255), then ``transform``."""
    x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch)
    if x.dim() not in (4, 5):
        raise ValueError(f"input batch must be (B, C, H, W) or (B, C, T, H, W), got shape {tuple(x.shape)}")
    x = x.to(device)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return transform(x) if transform is not None else x


def _unit_shape(output: torch.Tensor) -> tuple[int, ...]:
    """Shape of one input's units as tapped: (C, H, W), or (C, T, H, W) without time averaging."""
    return tuple(int(s) for s in output.shape[1:])


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _batches_with_bar(batches: Iterable[Batch], total: int | None, progress: bool | None, desc: str) -> Iterator[Batch]:
    """Pass the (start, batch) pairs through, counting inputs into the step's log (:mod:`tdann.progress`)."""
    with Progress(total, desc, "input", enabled=progress) as bar:
        for start, batch in batches:
            yield int(start), batch
            bar.update(len(batch))


# ----------------------------------------------------------------------------------------------
# responses to a stimulus set
# ----------------------------------------------------------------------------------------------
def compute_responses(
    model: nn.Module,
    batches: Iterable[Batch],
    layers: Sequence[str],
    out_h5: str | Path,
    n_stimuli: int,
    device: str | torch.device = "cpu",
    dtype: str = "float32",
    time_average: bool = True,
    progress: bool | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Path:
    """Write the responses of ``layers`` to ``n_stimuli`` stimuli as ``responses/<layer>`` (S, N).

    ``batches`` yields ``(start, array)`` with ``array`` (B, 3, [T,] H, W) in [0, 1] holding stimuli
    ``start .. start+B-1``; ``transform`` maps such a batch to model input (normalisation). Row s of
    a dataset is stimulus s, column n is unit n of ``output.flatten(1)`` (channel-major, the order of
    the positions, docs/reference.md §2). Memory is bounded by one batch: rows go to disk as they come,
    in chunks of whole rows (a layer can be read alone). Every row must be written exactly once
    (a ``RuntimeError`` names missing rows). The model runs in eval mode without gradients and is
    moved to ``device``.
    """
    if dtype not in _RESPONSE_DTYPES:
        raise ValueError(f"response dtype {dtype!r} not supported; use one of {sorted(_RESPONSE_DTYPES)}")
    if int(n_stimuli) < 1:
        raise ValueError(f"n_stimuli must be >= 1, got {n_stimuli}")
    np_dtype, n_stimuli = _RESPONSE_DTYPES[dtype], int(n_stimuli)
    layers = _check_layers(model, layers)
    written = np.zeros(n_stimuli, dtype=bool)
    out_h5 = Path(out_h5)
    model.to(device)
    with (
        _eval_mode(model),
        torch.no_grad(),
        h5py.File(out_h5, "w", rdcc_nbytes=4 * _CHUNK_BYTES) as f,
        _taps(model, layers, time_average) as taps,
    ):
        f.attrs.update(n_stimuli=n_stimuli, dtype=dtype, time_average=time_average, layers=layers)
        group = f.create_group("responses")
        group.attrs["description"] = "unit responses per layer, rows = stimuli, columns = units (channel-major)"
        for start, batch in _batches_with_bar(batches, n_stimuli, progress, "responses"):
            x = _to_input(batch, device, transform)
            stop = start + len(x)
            if start < 0 or stop > n_stimuli:
                raise ValueError(f"batch rows {start}..{stop - 1} outside 0..{n_stimuli - 1} (n_stimuli)")
            if written[start:stop].any():
                raise ValueError(f"batch starting at {start} overlaps rows already written")
            _forward(model, taps, layers, x)
            for name in layers:
                flat = taps.flat(name).float().cpu().numpy().astype(np_dtype)
                if name not in group:
                    _create_response_dataset(group, name, n_stimuli, flat.shape[1], np_dtype, len(x),
                                             _unit_shape(taps.outputs[name]))
                group[name][start:stop] = flat
            written[start:stop] = True
        if not written.all():
            missing = np.flatnonzero(~written)
            raise RuntimeError(f"{out_h5}: {missing.size} of {n_stimuli} stimuli never came, first {missing[:5]}")
    return out_h5


def _create_response_dataset(group: h5py.Group, name: str, n_rows: int, n_units: int, np_dtype: Any,
                             batch_rows: int, shape: tuple[int, ...]) -> None:
    """An empty (S, N) dataset chunked as whole rows (at most one batch, about 4 MiB per chunk)."""
    if math.prod(shape) != n_units:
        raise RuntimeError(f"layer {name}: unit shape {shape} does not match {n_units} flat units")
    itemsize = np.dtype(np_dtype).itemsize
    cols = min(n_units, max(1, _CHUNK_BYTES // itemsize))
    rows = max(1, min(n_rows, batch_rows, _CHUNK_BYTES // (cols * itemsize)))
    write_dataset(
        group, name, None, description=f"responses of layer {name}: stimuli x units, unit order channel-major "
        f"(flatten of {shape})", units="activation (a.u.)", shape=(n_rows, n_units), dtype=np_dtype,
        chunks=(rows, cols), attrs={"shape": shape, "layer": name},
    )


# ----------------------------------------------------------------------------------------------
# streaming screening
# ----------------------------------------------------------------------------------------------
class StreamingTopK:
    """Per unit, the k largest and k smallest responses seen so far and the indices of their inputs.

    Each :meth:`update` concatenates the kept (units, k) values with the batch's (units, B) values
    and keeps ``torch.topk`` of both ends (only for units the batch can change), so memory is
    O(units x (k + B)) whatever the number of inputs. A response equal to the k-th kept one does not
    displace it. Values keep their sign (the least-activating inputs are the most negative responses).
    Runs on the device of the values given.
    """

    def __init__(self, n_units: int, k: int) -> None:
        if int(n_units) < 1 or int(k) < 1:
            raise ValueError(f"StreamingTopK needs n_units >= 1 and k >= 1, got {n_units}, {k}")
        self.n_units, self.k = int(n_units), int(k)
        self.n_seen = 0
        self._top: tuple[torch.Tensor, torch.Tensor] | None = None
        self._bottom: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, values: torch.Tensor | np.ndarray, indices: torch.Tensor | np.ndarray | Sequence[int]) -> None:
        """Add a batch: ``values`` (B, n_units), ``indices`` (B,) the inputs' indices in the store."""
        values = torch.as_tensor(values)
        if values.dim() != 2 or values.shape[1] != self.n_units:
            raise ValueError(f"values must be (B, {self.n_units}), got {tuple(values.shape)}")
        idx = torch.as_tensor(indices, dtype=torch.long, device=values.device).reshape(-1)
        if idx.numel() != values.shape[0]:
            raise ValueError(f"{idx.numel()} indices for {values.shape[0]} rows of values")
        self._top = self._merge(self._top, values, idx, largest=True)
        self._bottom = self._merge(self._bottom, values, idx, largest=False)
        self.n_seen += values.shape[0]

    def _merge(self, kept: tuple[torch.Tensor, torch.Tensor] | None, values: torch.Tensor, idx: torch.Tensor,
               largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """New (values, indices) of one end: topk over the kept k and the batch, per unit.

        Once k values are kept, only units whose batch extreme beats their k-th kept value are
        merged; late in a long stream that is a small fraction of the units.
        """
        units = None
        if kept is not None and kept[0].shape[1] == self.k:
            extreme = values.amax(dim=0) if largest else values.amin(dim=0)
            beats = extreme > kept[0][:, -1] if largest else extreme < kept[0][:, -1]
            units = beats.nonzero().squeeze(1)
            if units.numel() == 0:
                return kept
            values = values.index_select(1, units)
        vals, ids = values.T, idx.expand(values.shape[1], -1)
        if kept is not None:
            old_vals, old_ids = (kept[0], kept[1]) if units is None else (kept[0][units], kept[1][units])
            vals, ids = torch.cat([old_vals, vals], dim=1), torch.cat([old_ids, ids], dim=1)
        best, pos = vals.topk(min(self.k, vals.shape[1]), dim=1, largest=largest, sorted=True)
        best_ids = ids.gather(1, pos)
        if kept is None or units is None:
            return best, best_ids
        kept[0][units], kept[1][units] = best, best_ids
        return kept

    def result(self) -> dict[str, np.ndarray]:
        """``top_val``/``top_idx`` (units, k) descending, ``bottom_val``/``bottom_idx`` ascending."""
        if self._top is None or self._bottom is None or self.n_seen < self.k:
            raise RuntimeError(f"StreamingTopK saw {self.n_seen} inputs, fewer than k = {self.k}")
        return {
            "top_val": self._top[0].cpu().numpy(), "top_idx": self._top[1].cpu().numpy(),
            "bottom_val": self._bottom[0].cpu().numpy(), "bottom_idx": self._bottom[1].cpu().numpy(),
        }


def dkw_epsilon(n_samples: int, delta: float = 0.01) -> float:
    """Rank error of quantiles from ``n_samples`` uniform draws, with probability >= 1 - ``delta``.

    Dvoretzky-Kiefer-Wolfowitz (Massart's constant): ``sup |F_sample - F| <= eps`` with
    ``eps = sqrt(ln(2 / delta) / (2 n))``; so a sample quantile q_p lies between the true quantiles
    q_(p-eps) and q_(p+eps). (Draws without replacement, as in a reservoir, concentrate at least as
    well: Serfling 1974.) 2048 draws: eps = 0.036 at delta = 0.01.
    """
    return math.sqrt(math.log(2.0 / delta) / (2.0 * n_samples))


def gini(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Gini coefficient of non-negative values along ``axis`` (docs/reference.md §6).

    ``G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n`` with x sorted ascending, i = 1..n;
    0 for equal values, -> 1 when one input carries all the response; NaN where ``sum x == 0``.
    """
    x = np.sort(np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0), axis=0)
    if x.size and x.min() < 0:
        raise ValueError("gini needs non-negative values (shift the responses first)")
    return _gini_sorted(x)


def _gini_sorted(x: np.ndarray) -> np.ndarray:
    """:func:`gini` of values already sorted ascending along axis 0."""
    n = x.shape[0]
    i = np.arange(1, n + 1, dtype=np.float64).reshape((n,) + (1,) * (x.ndim - 1))
    total = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 2.0 * (i * x).sum(axis=0) / (n * total) - (n + 1.0) / n
    return np.where(total > 0, g, np.nan)


class RunningStats:
    """Per-unit summary statistics of a response stream, in memory O(units x reservoir).

    Exact (float64, batch-wise merge of central moments, Chan et al. 1979 / Terriberry 2008):
    ``n``, ``mean``, ``std`` (population, ddof = 0), ``skew`` (population / biased, as
    ``scipy.stats.skew``; NaN for a constant unit), ``min``, ``max``, ``frac_positive`` (fraction of
    inputs with response > 0) and ``active`` (``frac_positive >= active_fraction``).

    Approximate, from a uniform reservoir sample (Algorithm R, the same sampled inputs for all units)
    of ``reservoir`` inputs, exact while ``n <= reservoir``:

    * ``q05``, ``q50`` (the median: the unit's baseline), ``q95`` (numpy's linear interpolation on the sample). Error bound: with probability
      >= 1 - delta the estimate lies between the true quantiles at rank p -/+ ``dkw_epsilon(reservoir,
      delta)`` (0.036 for 2048 at delta = 0.01);
    * ``gini`` of the responses shifted to be non-negative: ``x - min(0, min_all(x))`` with the exact
      stream minimum, so non-negative (ReLU) units are used as they are (docs/reference.md §6). The
      sample Gini is a ratio of U-statistics: its error is a sampling error of standard deviation
      about ``c / sqrt(reservoir)`` with c < 1 for typical response distributions (measured in
      tests/unit/test_screening.py: |error| < 0.02 at 2048 for exponential and ReLU-Gaussian data).
      NaN for a unit that never responds above its shift.

    ``reservoir = 0`` skips the sample (quantiles and Gini are NaN).
    """

    def __init__(self, n_units: int, reservoir: int = 2048, active_fraction: float = 0.01, seed: int = 0) -> None:
        if int(n_units) < 1 or int(reservoir) < 0:
            raise ValueError(f"RunningStats needs n_units >= 1 and reservoir >= 0, got {n_units}, {reservoir}")
        if not 0.0 <= active_fraction <= 1.0:
            raise ValueError(f"active_fraction must be in [0, 1], got {active_fraction}")
        self.n_units, self.reservoir, self.active_fraction = int(n_units), int(reservoir), float(active_fraction)
        self.n = 0
        self._rng = np.random.default_rng(seed)
        self._mean = self._m2 = self._m3 = self._min = self._max = self._pos = None  # type: Any
        self._sample: torch.Tensor | None = None

    def update(self, values: torch.Tensor | np.ndarray) -> None:
        """Add a batch of responses (B, n_units)."""
        values = torch.as_tensor(values)
        if values.dim() != 2 or values.shape[1] != self.n_units:
            raise ValueError(f"values must be (B, {self.n_units}), got {tuple(values.shape)}")
        if values.shape[0] == 0:
            return
        if self._mean is None:
            zeros = torch.zeros(self.n_units, dtype=torch.float64, device=values.device)
            self._mean, self._m2, self._m3, self._pos = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
            self._min, self._max = zeros + math.inf, zeros - math.inf
            self._sample = torch.empty(self.reservoir, self.n_units, dtype=torch.float32, device=values.device)
        self._update_sample(values)
        x = values.to(torch.float64)
        nb, na = x.shape[0], self.n
        mean_b = x.mean(dim=0)
        d = x - mean_b
        d2 = d * d
        m2_b, m3_b = d2.sum(dim=0), (d2 * d).sum(dim=0)
        n = na + nb
        delta = mean_b - self._mean
        self._m3 = (self._m3 + m3_b + delta**3 * na * nb * (na - nb) / n**2
                    + 3.0 * delta * (na * m2_b - nb * self._m2) / n)
        self._m2 = self._m2 + m2_b + delta**2 * na * nb / n
        self._mean = self._mean + delta * nb / n
        lo, hi = torch.aminmax(values, dim=0)
        self._min = torch.minimum(self._min, lo.to(torch.float64))
        self._max = torch.maximum(self._max, hi.to(torch.float64))
        self._pos += (values > 0).sum(dim=0)
        self.n = n

    def _update_sample(self, values: torch.Tensor) -> None:
        """Algorithm R for a whole batch: input t (0-based) replaces slot j ~ U{0..t} if j < reservoir."""
        if self.reservoir == 0:
            return
        t = self.n + np.arange(values.shape[0])
        slots = np.where(t < self.reservoir, t, self._rng.integers(0, t + 1))
        rows = np.flatnonzero(slots < self.reservoir)
        slots = slots[rows]
        # when two inputs of the batch hit one slot, the later one wins (as in the sequential algorithm)
        _, last = np.unique(slots[::-1], return_index=True)
        keep = rows.size - 1 - last
        rows_t = torch.as_tensor(rows[keep], device=values.device)
        slots_t = torch.as_tensor(slots[keep], device=values.device)
        assert self._sample is not None  # allocated by update() before the first sample
        self._sample[slots_t] = values[rows_t].to(torch.float32)

    def result(self) -> dict[str, np.ndarray]:
        """All statistics as float64 arrays (units,) (``active`` boolean)."""
        if self.n == 0:
            raise RuntimeError("RunningStats saw no inputs")
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            m2, m3 = self._m2.cpu().numpy(), self._m3.cpu().numpy()
            skew = np.where(m2 > 0, math.sqrt(n) * m3 / np.maximum(m2, 1e-300) ** 1.5, np.nan)
        out = {
            "mean": self._mean.cpu().numpy(), "std": np.sqrt(m2 / n), "skew": skew,
            "min": self._min.cpu().numpy(), "max": self._max.cpu().numpy(),
            "frac_positive": self._pos.cpu().numpy() / n,
        }
        out["active"] = out["frac_positive"] >= self.active_fraction
        m = min(n, self.reservoir)
        if m == 0:
            nan = np.full(self.n_units, np.nan)
            out.update(q05=nan, q50=nan.copy(), q95=nan.copy(), gini=nan.copy())
            return out
        # one sort serves both the quantiles (numpy's "linear" rule) and the Gini coefficient
        assert self._sample is not None  # m > 0: update() has run
        ordered = np.sort(self._sample[:m].cpu().numpy(), axis=0).astype(np.float64)
        for q, key in ((0.05, "q05"), (0.5, "q50"), (0.95, "q95")):
            pos = q * (m - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, m - 1)
            out[key] = ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])
        shift = np.minimum(out["min"], 0.0)
        out["gini"] = _gini_sorted(np.maximum(ordered - shift, 0.0))
        return out

    def sample(self) -> np.ndarray:
        """The reservoir sample (min(n, reservoir), units) float32: responses of the same inputs for every unit."""
        if self._sample is None:
            raise RuntimeError("RunningStats saw no inputs")
        return self._sample[: min(self.n, self.reservoir)].cpu().numpy()


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
    layers = _check_layers(model, layers)
    if int(k) < 1:
        raise ValueError(f"screening k must be >= 1, got {k}")
    if units_per_layer is not None and int(units_per_layer) < 1:
        raise ValueError(f"units_per_layer must be >= 1 or None, got {units_per_layer}")
    state: dict[str, dict[str, dict[str, Any]]] = {sig: {} for sig in signals}
    n_seen = 0
    model.to(device)
    with ExitStack() as stack:
        stack.enter_context(_eval_mode(model))
        stack.enter_context(torch.no_grad())
        taps = {sig: stack.enter_context(_taps(model, layers, time_average, sig)) for sig in signals}
        for start, batch in _batches_with_bar(store_batches, n_inputs, progress, "screen"):
            x = _to_input(batch, device, transform)
            _forward(model, taps[signals[0]], layers, x)
            indices = torch.arange(start, start + len(x), device=x.device)
            if not state[signals[0]]:  # first batch: draw each layer's units once, the same for every signal
                rng = np.random.default_rng(seed)
                for li, name in enumerate(layers):
                    out = taps[signals[0]].outputs[name]
                    units = _draw_units(out[0].numel(), units_per_layer, rng)
                    for sig in signals:
                        state[sig][name] = _screen_state(units, k, reservoir, active_fraction, seed + li, x.device,
                                                         _unit_shape(out))
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
    with _eval_mode(model):
        for i in range(0, len(inputs), batch):
            out.append(model.embed(_to_input(inputs[i:i + batch], device, transform)).float().cpu().numpy())
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


# ----------------------------------------------------------------------------------------------
# synthesis of most / least exciting inputs
# ----------------------------------------------------------------------------------------------
def natural_spectrum(images: np.ndarray | torch.Tensor | Iterable[Any]) -> np.ndarray:
    """Mean magnitude spectrum of natural images (N, C, H, W) or clips (N, C, T, H, W).

    ``images`` is one array or an iterable of batches (arrays, or ``(start, array)`` pairs as yielded
    by a store). Each input's per-channel mean is removed; the result is ``sqrt(mean |rfftn|^2)``
    over inputs, per channel, over (H, W) or (T, H, W): shape (C, H, W//2+1) or (C, T, H, W//2+1),
    DC = 0. It is the fixed magnitude of the Fourier parameterisation (docs/reference.md §6).
    """
    batches = [images] if isinstance(images, (np.ndarray, torch.Tensor)) else images
    power, count, shape = None, 0, None
    for batch in batches:
        if isinstance(batch, tuple):
            batch = batch[1]
        x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch).double()
        if x.dim() not in (4, 5):
            raise ValueError(f"natural_spectrum needs (N, C, H, W) or (N, C, T, H, W), got {tuple(x.shape)}")
        if shape is not None and tuple(x.shape[1:]) != shape:
            raise ValueError(f"natural_spectrum: batch shape {tuple(x.shape[1:])} differs from {shape}")
        shape = tuple(x.shape[1:])
        dims = tuple(range(2, x.dim()))
        x = x - x.mean(dim=dims, keepdim=True)
        p = torch.fft.rfftn(x, dim=dims).abs().square().sum(dim=0)
        power = p if power is None else power + p
        count += x.shape[0]
    if power is None:
        raise ValueError("natural_spectrum got no images")
    mag = (power / count).sqrt()
    mag[(slice(None),) + (0,) * (mag.dim() - 1)] = 0.0
    return mag.float().numpy()


def _pink_spectrum(shape: tuple[int, ...]) -> torch.Tensor:
    """1/|f| magnitude (C, [T,] H, W//2+1) with DC = 0: the average natural-image spectrum."""
    spatial = shape[1:]
    grids = [torch.fft.fftfreq(n) for n in spatial[:-1]] + [torch.fft.rfftfreq(spatial[-1])]
    f = torch.sqrt(cast(torch.Tensor, sum(g.square() for g in torch.meshgrid(*grids, indexing="ij"))))
    mag = 1.0 / f.clamp(min=1.0 / max(spatial))
    mag[(0,) * mag.dim()] = 0.0
    return mag.expand(shape[0], *mag.shape).clone()


def _unit_rms(mag: torch.Tensor, last: int) -> torch.Tensor:
    """Scale a real-FFT magnitude so that its signal has RMS 1 over all channels (Parseval; channel ratios kept)."""
    weight = torch.full((mag.shape[-1],), 2.0, dtype=mag.dtype)
    weight[0] = 1.0
    if last % 2 == 0:
        weight[-1] = 1.0
    n = math.prod(mag.shape[1:-1]) * last
    rms = ((mag.square() * weight).sum() / (n**2 * mag.shape[0])).sqrt()
    if not rms > 0:
        raise ValueError("magnitude_spectrum is all zero")
    return mag / rms


def _gaussian_blur(g: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, [T,] H, W) over H and W (replicate padding)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=g.dtype, device=g.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    shape = g.shape
    x = F.pad(g.reshape(-1, 1, shape[-2], shape[-1]), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.reshape(1, 1, -1, 1))
    x = F.conv2d(x, kernel.reshape(1, 1, 1, -1))
    return x.reshape(shape)


def _project(x: torch.Tensor, norm: float | None) -> torch.Tensor:
    """Project each element of ``x`` (n, ...) onto the ball ``||x - mean(x)|| <= norm`` by shrinking its contrast
    about its mean.

    Differentiable; a convex combination of x and its mean, so values stay within [lo, hi].
    """
    if norm is None:
        return x
    dims = list(range(1, x.dim()))  # x: (n, C, [T,] H, W), one ball per element
    centre = x.mean(dim=dims, keepdim=True)
    d = x - centre
    length = d.square().sum(dim=dims, keepdim=True).sqrt()
    return centre + d * torch.clamp(norm / (length + 1e-12), max=1.0)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbours along H, W (and T for clips) of (C, [T,] H, W)."""
    return cast(torch.Tensor, sum(x.diff(dim=d).abs().mean() for d in range(1, x.dim())))


def _augment(x: torch.Tensor, batch: int, jitter: int, noise_std: float, gen: torch.Generator) -> torch.Tensor:
    """``batch`` copies of x, each a random crop of the reflect-padded input (shift <= jitter) plus noise."""
    copies = []
    h, w = x.shape[-2:]
    for _ in range(batch):
        y = x
        if jitter > 0:
            j = min(jitter, h - 1, w - 1)
            pad = F.pad(x.unsqueeze(0), (j, j, j, j) + ((0, 0) if x.dim() == 4 else ()), mode="reflect")[0]
            dy, dx = (int(v) for v in torch.randint(0, 2 * j + 1, (2,), generator=gen))
            y = pad[..., dy: dy + h, dx: dx + w]
        if noise_std > 0:
            y = y + noise_std * torch.randn(y.shape, generator=gen).to(y.device)
        copies.append(y)
    return torch.stack(copies)


def synthesize(
    model: nn.Module,
    layer: str,
    unit: int | None = None,
    channel: int | None = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Most (``sign=+1``, MEI) or least (``sign=-1``, LEI) exciting input of one ``unit`` (index in the flat
    channel-major unit order of ``layer``) or ``channel`` (its spatial map averaged), from ``seed``: exactly one of
    ``unit``/``channel``. ``options`` and the result are those of :func:`synthesize_many` (docs/reference.md §6).
    """
    if (unit is None) == (channel is None):
        raise ValueError("synthesize needs exactly one of unit (flat index) or channel")
    by, target = ("unit", unit) if unit is not None else ("channel", int(channel))  # type: ignore[arg-type]
    return synthesize_many(model, layer, [target], [seed], by=by, **options)[0]


def synthesize_many(
    model: nn.Module,
    layer: str,
    targets: Sequence[int],
    seeds: Sequence[int],
    by: str = "unit",
    sign: int = 1,
    input_shape: Sequence[int] = (3, 64, 64),
    param: str = "pixel",
    steps: int = 128,
    lr: float | None = None,
    device: str | torch.device = "cpu",
    magnitude_spectrum: np.ndarray | torch.Tensor | None = None,
    norm: float | None = None,
    tv_weight: float = 0.0,
    jitter: int = 2,
    noise_std: float = 0.01,
    blur_sigma: float = 1.0,
    batch: int = 1,
    lo: float = 0.0,
    hi: float = 1.0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    time_average: bool = True,
    signal: str = "output",
) -> list[dict[str, Any]]:
    """Most (``sign=+1``, MEI) or least (``sign=-1``, LEI) exciting inputs of several (target, seed) pairs at
    once (docs/reference.md §6): ``targets[i]`` is a unit (``by="unit"``: index in the flat channel-major unit order of
    ``layer``) or a channel (``by="channel"``: its spatial map averaged), optimised from ``seeds[i]``.

    Objective per pair: maximise ``sign x`` the mean response over ``batch`` augmented copies of its input,
    minus ``tv_weight x`` total variation.
    ``input_shape`` (3, H, W) gives an image, (3, T, H, W) a short movie.

    * ``param="pixel"``: ``x = sigmoid(p) (hi - lo) + lo``; SGD (``lr`` default 0.05, momentum 0.9)
      with cosine decay; the gradient of p is Gaussian-blurred over H, W (``blur_sigma``, 0 = off)
      and divided by its mean absolute value, so ``lr`` is the mean step per pixel whatever the
      model's gradient scale.
    * ``param="fourier"``: ``x = sigmoid(irfftn(M e^{i phase})) (hi - lo) + lo`` with M the fixed
      ``magnitude_spectrum`` (from :func:`natural_spectrum`, shape (3, [T,] H, W//2+1); default 1/|f|),
      scaled to unit RMS (over all channels), and a learnt phase; Adam (``lr`` default 1.0). For
      clips the spectrum is 3D (T, H, W).

    Each step: the input is projected onto ``||x - mean(x)||_2 <= norm`` (each pair's whole input; None = only
    the [lo, hi] box), randomly shifted by up to ``jitter`` pixels (a crop of the reflect-padded
    input) and given Gaussian noise ``noise_std``. ``transform`` maps [lo, hi] input to model input.
    ``signal``: the response optimised, the block output or its pre-activation (as screened, so that an MEI / LEI
    can be compared with the natural inputs' responses).

    One dict per pair: ``input`` (float32 array ``input_shape``, the projected input), ``trajectory`` (float64
    (steps,), signed mean response per step on the augmented batch) and ``activation`` (signed
    response to the clean final input).

    The pairs run as one batch through the model (in eval mode, so elements do not interact): each element keeps
    its own random stream (initialisation, jitter, noise), gradient normalisation, projection and total
    variation, and SGD / Adam act element-wise, so an element's result equals a run on its own (up to
    floating-point order). Tiny models and inputs are dominated by per-call overhead: 8 pairs cost about as much
    as one.
    """
    targets, seeds = [int(t) for t in targets], [int(s) for s in seeds]
    if by not in ("unit", "channel"):
        raise ValueError(f"by must be 'unit' or 'channel', got {by!r}")
    if not targets or len(targets) != len(seeds):
        raise ValueError(f"synthesize_many needs as many seeds as targets (>= 1), got {len(targets)} and {len(seeds)}")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 (MEI) or -1 (LEI), got {sign}")
    if param not in ("pixel", "fourier"):
        raise ValueError(f"param must be 'pixel' or 'fourier', got {param!r}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (C, T, H, W), got {input_shape}")
    if int(steps) < 1 or batch < 1 or jitter < 0 or noise_std < 0 or blur_sigma < 0 or tv_weight < 0:
        raise ValueError("synthesize needs steps >= 1, batch >= 1 and non-negative jitter/noise/blur/tv_weight")
    if norm is not None and norm <= 0:
        raise ValueError(f"norm must be positive or None, got {norm}")
    if not hi > lo:
        raise ValueError(f"pixel range needs hi > lo, got [{lo}, {hi}]")
    layer = _check_layers(model, [layer])[0]
    n = len(targets)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    dims = tuple(range(1, len(shape)))
    if param == "pixel":
        p = torch.stack([0.01 * torch.randn(shape, generator=g) for g in gens]).to(device).requires_grad_(True)
        opt: torch.optim.Optimizer = torch.optim.SGD([p], lr=0.05 if lr is None else lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(steps))

        def render() -> torch.Tensor:
            return _project(lo + (hi - lo) * torch.sigmoid(p), norm)
    else:
        spec_shape = shape[:-1] + (shape[-1] // 2 + 1,)
        mag = _pink_spectrum(shape) if magnitude_spectrum is None else torch.as_tensor(magnitude_spectrum).float()
        if tuple(mag.shape) != spec_shape:
            raise ValueError(f"magnitude_spectrum shape {tuple(mag.shape)} does not fit input {shape}: "
                             f"expected {spec_shape}")
        mag = _unit_rms(mag.double(), shape[-1]).float().to(device)
        p = torch.stack([(torch.rand(spec_shape, generator=g) * 2 - 1) * math.pi for g in gens])
        p = p.to(device).requires_grad_(True)
        opt = torch.optim.Adam([p], lr=1.0 if lr is None else lr)
        sched = None

        def render() -> torch.Tensor:
            signal = torch.fft.irfftn(torch.polar(mag.expand_as(p), p), s=shape[1:], dim=[d + 1 for d in dims])
            return _project(lo + (hi - lo) * torch.sigmoid(signal), norm)

    def responses(x: torch.Tensor, copies: int, taps: FeatureTaps) -> torch.Tensor:
        """(n,) mean response of each element's target over its ``copies`` rows of x (n * copies, ...)."""
        _forward(model, taps, [layer], transform(x) if transform is not None else x)
        out = taps.flat(layer) if by == "unit" else taps.outputs[layer]
        bad = [t for t in targets if not 0 <= t < out.shape[1]]
        if bad:
            raise ValueError(f"{by} {bad[0]} outside 0..{out.shape[1] - 1} of layer {layer}")
        rows = torch.arange(len(x), device=out.device)
        picked = out[rows, torch.tensor(targets, device=out.device).repeat_interleave(copies)]
        return picked.reshape(n, -1).mean(1)

    trajectory = []
    model.to(device)
    with _eval_mode(model), _taps(model, [layer], time_average, signal) as taps:
        for _ in range(int(steps)):
            x = render()
            acts = responses(torch.cat([_augment(x[i], batch, jitter, noise_std, gens[i]) for i in range(n)]), batch,
                             taps)
            loss = -sign * acts.sum()
            if tv_weight > 0:
                loss = loss + tv_weight * sum(_total_variation(x[i]) for i in range(n))
            (grad,) = torch.autograd.grad(loss, p)
            if param == "pixel":
                if blur_sigma > 0:
                    grad = _gaussian_blur(grad, blur_sigma)
                grad = grad / (grad.abs().mean(dim=[d + 1 for d in dims], keepdim=True) + 1e-12)  # mean step = lr
            p.grad = grad
            opt.step()
            if sched is not None:
                sched.step()
            trajectory.append(acts.detach().cpu().double())
        with torch.no_grad():
            x = render()
            finals = responses(x, 1, taps).cpu().tolist()
    traj = torch.stack(trajectory, dim=1).numpy()
    return [{"input": x[i].detach().cpu().numpy().astype(np.float32), "trajectory": traj[i], "activation": finals[i]}
            for i in range(n)]


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
