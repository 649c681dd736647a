"""Per-unit statistics of a stream of responses in bounded memory: the top / bottom k inputs
(:class:`StreamingTopK`) and quantiles, Gini coefficient and fraction positive from a reservoir sample
(:class:`RunningStats`), with their error bounds (:func:`dkw_epsilon`; docs/reference.md §6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


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
        self._mean: Any = None
        self._m2: Any = None
        self._m3: Any = None
        self._min: Any = None
        self._max: Any = None
        self._pos: Any = None
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
