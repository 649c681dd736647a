"""Statistics of the results tables: exact binomial intervals, bootstrap intervals, paired tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from ._common import RngLike, _rng


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion k / n (every share in the tables: probe accuracies, the fraction
    of units with a low pole); (nan, nan) for n = 0."""
    if n <= 0:
        return (np.nan, np.nan)
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def bootstrap_ci(values: Any, n: int = 2000, rng: RngLike = None, ci: float = 0.95,
                 stat: Callable[[np.ndarray], Any] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap confidence interval (low, high) of ``stat`` over finite ``values`` (scipy.stats.bootstrap).

    ``stat`` must take an ``axis`` argument (np.mean, np.median, ...). Fewer than 2 finite values
    give (nan, nan): no spread can be estimated from one seed.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not 0 < ci < 1 or n < 1:
        raise ValueError(f"need 0 < ci < 1 and n >= 1, got ci={ci}, n={n}")
    if v.size < 2:
        return (np.nan, np.nan)
    res = stats.bootstrap((v,), stat, n_resamples=n, confidence_level=ci, method="percentile", vectorized=True,
                          axis=-1, rng=_rng(rng))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_test(a: Any, b: Any) -> dict[str, float]:
    """Paired comparison of a and b (e.g. alpha > 0 vs alpha = 0 over seeds).

    Pairs with a NaN are dropped. Returns n, mean_diff (a - b), the paired t test (t, p_t) and the
    Wilcoxon signed-rank test (w, p_wilcoxon); NaN where a test is undefined (n < 2, all
    differences equal).
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_test needs equal lengths, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = dict(n=float(x.size), mean_diff=float(np.mean(x - y)) if x.size else np.nan,
               t=np.nan, p_t=np.nan, w=np.nan, p_wilcoxon=np.nan)
    if x.size < 2:
        return out
    d = x - y
    if np.ptp(d) > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            res = stats.ttest_rel(x, y)
        out.update(t=float(res.statistic), p_t=float(res.pvalue))
    if np.any(d != 0):
        try:
            w = stats.wilcoxon(x, y)
            out.update(w=float(w.statistic), p_wilcoxon=float(w.pvalue))
        except ValueError:
            pass
    return out
