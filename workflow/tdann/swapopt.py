"""SwapOpt: shuffle unit positions so that nearby units respond alike (stage 2 of the TDANN recipe).

docs/reference.md §3: from the responses of the alpha = 0 network, draw random square windows of the layer's
neighbourhood width (at most ``max_units`` units), and in each make ``attempts_per_window`` swap attempts: swap the
positions of a random pair of units and keep the swap only if the Pearson-form spatial loss (docs/reference.md §2,
``SL = (1 - pearson(r, 1 / (d + 1))) / 2``) computed on the two swapped units' rows strictly decreases.

Why the fast path can be exact and cheap. For a candidate pair (a, b) of a window with correlation matrix R and
inverse distances D = 1 / (d + 1), the acceptance test of the original compares
``pearson(concat(R[a], R[b]), concat(D[a], D[b]))`` before and after the swap (both rows over all k units of the
window, self terms included). A swap only permutes the entries of D[a] and D[b] among themselves (the 2 x 2 block
{a, b} x {a, b} is unchanged), so the sums of x, y, x^2 and y^2 are unchanged and only sum(x * y) moves, by

    delta = sum_{j not in {a, b}} (R[a, j] - R[b, j]) * (D[b, j] - D[a, j]).

The SL strictly decreases exactly when ``delta > 0``: an O(k) test. The same delta (times two) is the change of the
full-window sum(x * y) while the full-window sums of x, y, x^2, y^2 stay put, so every accepted swap also strictly
lowers the full-window SL_Rel: the window's loss never increases.

The fast path keeps positions as fixed sheet *sites* plus a permutation (who sits where): a window's sites never
change, so windows, their sizes and which windows overlap are known before any swap. Windows that share no site
commute; they are packed into batches (a window goes to a batch after every earlier window it overlaps), so the
result equals processing the windows one after another, and every batch runs its windows in lockstep, vectorised
in torch (same code on CPU and GPU). Correlations of a window's units come from z-scored responses
(``Z_w Z_w^T``), never from an N x N matrix; memory does not grow with the number of attempts.

Random stream (shared by :func:`swapopt` and the plain oracle in tests/oracles.py): one
``numpy.random.default_rng(seed)``;
per window, in order: the square's corner ``x0 = uniform(xmin, xmax - width)``, ``y0 = uniform(ymin, ymax - width)``;
units inside (bounds inclusive, sorted by unit index); fewer than ``min_units``: the window is skipped; more than
``max_units``: ``choice(n, max_units, replace=False)`` picks them (in that order); then the window's own pairs
(:func:`draw_pairs`).

Deliberate differences from the original (neuroailab/TDANN ``spacetorch/swapopt.py``): each window draws fresh pairs
(the original reseeds every window identically); a window with exactly ``max_units`` units is not subsampled; a swap
whose SL is NaN before or after (two constant units) is rejected (the original's ``>=`` test kept it); constant
units correlate 0 with everything, as the original's NaN -> 0. The reported SL is the full window's SL_Rel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MIN_UNITS = 5  # the original skips windows with fewer units ("don't bother if there aren't even 5 units")


class SwapOptError(ValueError):
    """Bad input to SwapOpt (responses, positions or a configuration value)."""


# --------------------------------------------------------------------------------------------------------------
# Inputs, windows and random draws
# --------------------------------------------------------------------------------------------------------------


def _check_inputs(
    responses: Any, positions: Any, width: float, n_windows: int, attempts_per_window: int, max_units: int,
    min_units: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate arguments; return (responses as an (S, N) array or tensor, sites as float64 (N, 2))."""
    sites = np.asarray(positions, dtype=np.float64)
    if sites.ndim != 2 or sites.shape[1] != 2 or sites.shape[0] < 2:
        raise SwapOptError(f"positions must have shape (N, 2) with N >= 2, got {sites.shape}")
    if not np.isfinite(sites).all():
        raise SwapOptError("positions contain NaN or inf")
    if not isinstance(responses, torch.Tensor):
        responses = np.asarray(responses)
    if responses.ndim != 2 or responses.shape[1] != sites.shape[0]:
        raise SwapOptError(
            f"responses must have shape (stimuli, units) = (S, {sites.shape[0]}), got {tuple(responses.shape)}")
    if responses.shape[0] < 2:
        raise SwapOptError(f"responses need at least 2 stimuli to correlate units, got {responses.shape[0]}")
    finite = torch.isfinite(responses).all() if isinstance(responses, torch.Tensor) else np.isfinite(responses).all()
    if not bool(finite):
        raise SwapOptError("responses contain NaN or inf")
    extent = np.ptp(sites, axis=0)
    if not (np.isfinite(width) and 0 < width <= extent.min()):
        raise SwapOptError(
            f"width (neighbourhood width) must be in (0, {extent.min():.6g}] (the sheet's extent), got {width}")
    if int(n_windows) < 1:
        raise SwapOptError(f"n_windows must be >= 1, got {n_windows}")
    if int(attempts_per_window) < 0:
        raise SwapOptError(f"attempts_per_window must be >= 0, got {attempts_per_window}")
    if int(min_units) < 3:
        raise SwapOptError(f"min_units must be >= 3, got {min_units}")
    if int(max_units) < int(min_units):
        raise SwapOptError(f"max_units must be >= min_units = {min_units}, got {max_units}")
    return responses, sites


def draw_pairs(rng: np.random.Generator, k: int, attempts: int) -> np.ndarray:
    """``attempts`` random pairs of distinct local indices in [0, k), shape (attempts, 2), int64."""
    a = rng.integers(0, k, size=attempts)
    b = rng.integers(0, k - 1, size=attempts)
    b = b + (b >= a)
    return np.stack([a, b], axis=1)


@dataclass(frozen=True)
class Window:
    """One drawn window: its sheet sites, the subsample (or None) and its swap pairs.

    ``sites`` are indices into the fixed site array (the input positions); the window's units are the units
    sitting on those sites when the window is run, sorted by unit index, then ``pick``-ed (if not None).
    """

    index: int
    sites: np.ndarray
    pick: np.ndarray | None
    pairs: np.ndarray

    @property
    def size(self) -> int:
        return len(self.sites) if self.pick is None else len(self.pick)


def draw_windows(
    sites: np.ndarray, width: float, n_windows: int, attempts_per_window: int, max_units: int = 500,
    seed: int = 0, min_units: int = MIN_UNITS,
) -> Iterator[Window]:
    """Yield the windows of a SwapOpt run in order (skipped windows are not yielded; their index is).

    ``sites`` (N, 2) are the sheet positions; since SwapOpt only permutes units over these sites, the set of sites
    in a square never changes, so windows can be drawn before any swap. The random stream is described in the
    module docstring and is the one the plain oracle in tests/oracles.py consumes.
    """
    sites = np.asarray(sites, dtype=np.float64)
    rng = np.random.default_rng(seed)
    (xmin, ymin), (xmax, ymax) = sites.min(0), sites.max(0)
    order = np.argsort(sites[:, 0], kind="stable")
    xs, ys = sites[order, 0], sites[order, 1]
    for index in range(int(n_windows)):
        x0 = rng.uniform(xmin, xmax - width)
        y0 = rng.uniform(ymin, ymax - width)
        lo, hi = np.searchsorted(xs, x0, "left"), np.searchsorted(xs, x0 + width, "right")
        strip_y = ys[lo:hi]
        inside = np.sort(order[lo:hi][(strip_y >= y0) & (strip_y <= y0 + width)])
        n = len(inside)
        if n < min_units:
            continue
        pick = rng.choice(n, size=max_units, replace=False) if n > max_units else None
        k = n if pick is None else max_units
        yield Window(index, inside, pick, draw_pairs(rng, k, int(attempts_per_window)))


def _schedule(windows: list[Window], last_batch: np.ndarray, per_batch: int) -> list[list[Window]]:
    """Pack windows into batches of pairwise site-disjoint windows, keeping overlapping windows in order.

    A window goes into the first batch with room after the last batch holding any of its sites, so running the
    batches in order equals running the windows in order. ``last_batch`` (one int per site, all -1) is scratch
    space and is reset before returning.
    """
    batches: list[list[Window]] = []
    for w in windows:
        b = int(last_batch[w.sites].max()) + 1
        while b < len(batches) and len(batches[b]) >= per_batch:
            b += 1
        if b == len(batches):
            batches.append([])
        batches[b].append(w)
        last_batch[w.sites] = b
    for w in windows:
        last_batch[w.sites] = -1
    return batches


# --------------------------------------------------------------------------------------------------------------
# Correlations and losses
# --------------------------------------------------------------------------------------------------------------


def unit_zscores(
    responses: Any, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", chunk: int = 16384,
) -> torch.Tensor:
    """Z-scored responses, units x stimuli (N, S), scaled by 1/sqrt(S) so that ``Z[u] @ Z[v]`` is the Pearson r.

    Statistics are taken in float64, a chunk of units at a time. Units with constant responses get zeros (the
    original set their NaN correlations, self-correlation included, to 0).
    """
    n_stim, n_units = responses.shape
    out = torch.empty((n_units, n_stim), dtype=dtype, device=device)
    for c0 in range(0, n_units, chunk):
        x = torch.as_tensor(responses[:, c0:c0 + chunk]).to(torch.float64)
        xc = x - x.mean(0)
        sd = xc.square().mean(0).sqrt()
        live = x.amax(0) > x.amin(0)
        z = torch.where(live, xc / (sd * np.sqrt(n_stim)).clamp_min(1e-300), torch.zeros_like(xc))
        out[c0:c0 + chunk] = z.T.to(dtype=dtype, device=device)
    return out


def window_sl(corr: np.ndarray, positions: np.ndarray) -> float:
    """Full-window SL_Rel (docs/reference.md §2): ``(1 - pearson(r_tri, 1/(d_tri + 1))) / 2`` over the lower
    triangle (no diagonal) of the (k, k) correlation matrix ``corr`` and the distances of ``positions`` (k, 2).

    NaN when either triangle is constant.
    """
    corr = np.asarray(corr, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    k = len(positions)
    if corr.shape != (k, k) or positions.shape != (k, 2) or k < 3:
        raise SwapOptError(f"window_sl needs corr (k, k) and positions (k, 2) with k >= 3, got {corr.shape} and "
                           f"{positions.shape}")
    rows, cols = np.tril_indices(k, -1)
    dist = np.sqrt(((positions[rows] - positions[cols]) ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(corr[rows, cols], 1.0 / (dist + 1.0))[0, 1]
    return float((1.0 - r) / 2.0)


# --------------------------------------------------------------------------------------------------------------
# Fast path
# --------------------------------------------------------------------------------------------------------------


def _prepare_window(corr_w: torch.Tensor, coords_w: torch.Tensor, corr_out: torch.Tensor,
                    dist_out: torch.Tensor) -> torch.Tensor:
    """Copy one window into its (K, K) slots of the batch; return the raw sums its SL needs (8,).

    ``dist_out`` gets ``1/(d+1) - c``, c = the mean 1/(d+1) of the window's first unit: swap decisions only use
    differences of it, and the shift keeps the float32 sums well conditioned. Padding is 0 in both outputs.
    Returned: [sum r, sum r^2, trace r, sum diag(r)^2, c, sum y, sum y^2, sum r y] over all k x k entries,
    y = the shifted 1/(d+1); :func:`_window_sls` removes the diagonal. All of a window's work is done here at
    once, while it is in cache.
    """
    m = len(coords_w)
    for out in (corr_out, dist_out):
        out[m:].zero_()
        out[:m, m:].zero_()
    corr_out[:m, :m] = corr_w
    x, y = coords_w.T.contiguous()
    dy = y.unsqueeze(1) - y
    dist = (x.unsqueeze(1) - x).square_().addcmul_(dy, dy).sqrt_().add_(1.0).reciprocal_()  # 1 / (d + 1)
    shift = dist[0].mean()
    dist.sub_(shift)
    dist_out[:m, :m] = dist
    diag = corr_w.diagonal()
    flat_r, flat_d = corr_w.reshape(-1), dist.view(-1)
    return torch.stack([flat_r.sum(), torch.dot(flat_r, flat_r), diag.sum(), torch.dot(diag, diag), shift,
                        flat_d.sum(), torch.dot(flat_d, flat_d), torch.dot(flat_r, flat_d)])


def _window_sls(raw: torch.Tensor, sizes: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-window SL_Rel before and after (B,), float64, from :func:`_prepare_window`'s sums and the loop's gain.

    Pearson r over the m(m - 1) off-diagonal pairs (both triangles give the lower triangle's r; docs/reference.md
    §2); the diagonal of the shifted 1/(d+1) is 1 - c. The swaps only permute y, so the sums of x, y, x^2, y^2
    stay and sum(x y) rises by 2 gain.
    """
    sum_r, sum_rr, tr, diag2, shift, sum_d, sum_dd, sum_rd = raw.double().unbind(1)
    m = sizes.double()
    n = m * (m - 1)
    one = 1.0 - shift
    sx, sxx = sum_r - tr, sum_rr - diag2
    sy, syy = sum_d - m * one, sum_dd - m * one * one
    sxy = sum_rd - one * tr
    scale = ((sxx - sx * sx / n) * (syy - sy * sy / n)).sqrt()
    before = (1.0 - (sxy - sx * sy / n) / scale) / 2.0
    after = (1.0 - (sxy + 2.0 * gain.double() - sx * sy / n) / scale) / 2.0
    return before, after


def _swap_loop(corr: torch.Tensor, inv_dist: torch.Tensor, pairs: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the attempts of a batch of windows in lockstep.

    corr (B, K, K): correlations between the window's local units; inv_dist (B, K, K): 1/(d+1) (any constant
    shift) between the window's local sites, fixed; padding 0 in corr; pairs (A, B, 2): local unit pairs. Local unit
    i starts on local site i. Returns slot (B, K), the local site each local unit ends on, accepted (B,), swaps kept
    per window, and gain (B,), the summed delta of the kept swaps (the full-window sum of r/(d+1) rose by 2 gain).
    """
    n_win, k, _ = corr.shape
    dev = corr.device
    slot = torch.arange(k, device=dev).repeat(n_win, 1)  # slot[b, i]: site of unit i
    unit = slot.clone()  # unit[b, s]: unit on site s
    offset = (torch.arange(n_win, device=dev) * k).unsqueeze(1)
    corr_rows = corr.view(n_win * k, k)
    dist_rows = inv_dist.view(n_win * k, k)
    accepted = torch.zeros(n_win, dtype=torch.long, device=dev)
    gain = torch.zeros(n_win, dtype=corr.dtype, device=dev)
    for ab in pairs:  # (B, 2)
        x = corr_rows.index_select(0, (ab + offset).view(-1)).view(n_win, 2, k)
        u = x[:, 0] - x[:, 1]  # R[a, j] - R[b, j], unit order
        u.scatter_(1, ab, 0.0)  # j in {a, b} does not change (module docstring)
        s_ab = slot.gather(1, ab)
        y = dist_rows.index_select(0, (s_ab + offset).view(-1)).view(n_win, 2, k)  # D rows of a, b, site order
        delta = (u.gather(1, unit) * (y[:, 1] - y[:, 0])).sum(1)
        keep = (delta > 0).unsqueeze(1)
        slot.scatter_(1, ab, torch.where(keep, s_ab.flip(1), s_ab))
        unit.scatter_(1, s_ab, torch.where(keep, ab.flip(1), ab))
        accepted += keep.squeeze(1)
        gain += delta.clamp_min(0.0)
    return slot, accepted, gain


def _swap_loop_cpu(corr: torch.Tensor, inv_dist: torch.Tensor, pairs: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_swap_loop` for a few windows on the CPU: one window after another, one attempt at a time in numpy.

    Same decisions (the same float32 sums of the same terms) at a fraction of the per-attempt overhead of torch's
    small-tensor ops: ~5-7 us per attempt against ~110 us for a lone window; the lockstep wins from ~20-30 windows
    of 500 units (tests/benchmarks/bench_swapopt.py).
    """
    c_all, d_all, p_all = corr.numpy(), inv_dist.numpy(), pairs.numpy()
    n_win, k, _ = c_all.shape
    slot = np.tile(np.arange(k), (n_win, 1))
    unit = slot.copy()
    accepted = np.zeros(n_win, dtype=np.int64)
    gain = np.zeros(n_win, dtype=c_all.dtype)
    for w in range(n_win):
        c, d, sl, un = c_all[w], d_all[w], slot[w], unit[w]
        for a, b in p_all[:, w].tolist():
            u = c[a] - c[b]
            u[a] = u[b] = 0.0
            sa, sb = sl[a], sl[b]
            delta = u[un] @ (d[sb] - d[sa])
            if delta > 0:
                sl[a], sl[b] = sb, sa
                un[sa], un[sb] = b, a
                accepted[w] += 1
                gain[w] += delta
    return torch.from_numpy(slot), torch.from_numpy(accepted), torch.from_numpy(gain)


#: Below this many windows in a batch the CPU runs :func:`_swap_loop_cpu`.
CPU_LOCKSTEP_MIN = 24


def swap_windows(
    corrs: list[torch.Tensor], coords: list[torch.Tensor], pairs: torch.Tensor,
    workspace: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """SwapOpt a batch of disjoint windows at once (the fast kernel, any device).

    corrs[b] (m_b, m_b): correlations of window b's units; coords[b] (m_b, 2): their positions; pairs (A, B, 2)
    long: local unit pairs (< m_b). ``workspace``: optional flat tensor of >= 2 B K^2 elements (K = max m_b) to
    reuse between calls. Returns (slot (B, K): local unit i moves to the starting position of local unit slot[b, i];
    accepted (B,); full-window SL_Rel before (B,) and after (B,), float64).
    """
    n_win = len(corrs)
    k = max(len(c) for c in coords)
    size = n_win * k * k
    if workspace is None or workspace.numel() < 2 * size:
        workspace = torch.empty(2 * size, dtype=corrs[0].dtype, device=corrs[0].device)
    corr = workspace[:size].view(n_win, k, k)
    inv_dist = workspace[size:2 * size].view(n_win, k, k)
    raw = torch.stack([_prepare_window(c, xy, corr[b], inv_dist[b]) for b, (c, xy) in enumerate(zip(corrs, coords))])
    small_cpu = corr.device.type == "cpu" and n_win < CPU_LOCKSTEP_MIN
    slot, accepted, gain = (_swap_loop_cpu if small_cpu else _swap_loop)(corr, inv_dist, pairs)
    sizes = torch.tensor([len(xy) for xy in coords], device=raw.device)
    before, after = _window_sls(raw, sizes, gain)
    return slot, accepted, before, after


def _default_batch(device: torch.device) -> int:
    return 256 if device.type == "cuda" else 64


def swapopt(
    responses: Any,
    positions: Any,
    width: float,
    n_windows: int,
    attempts_per_window: int = 500,
    max_units: int = 500,
    seed: int = 0,
    device: str | torch.device = "cpu",
    windows_per_batch: int | None = None,
    *,
    min_units: int = MIN_UNITS,
    dtype: torch.dtype = torch.float32,
    per_window: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SwapOpt one layer (docs/reference.md §3), fast path; same result as the plain oracle in tests/oracles.py.

    responses (S, N): stimuli x units, unit order as ``positions`` (N, 2) in mm. ``width``: the layer's
    neighbourhood width (mm). ``n_windows`` windows are drawn, each gets ``attempts_per_window`` attempts.
    ``windows_per_batch`` disjoint windows run in lockstep (default 64 on CPU, 256 on CUDA); it changes speed only.
    ``dtype`` of the correlations and distances (float32; float64 reproduces the reference up to exact ties).

    Returns (new positions (N, 2) float32, a permutation of the input rows; stats) with stats holding scalars:
    attempts, accepted, sl_before, sl_after (mean full-window SL_Rel of the windows, before and after their
    attempts), wall_s, attempts_per_s, windows (run), windows_skipped (fewer than ``min_units`` units), batches,
    setup_s (z-scoring and allocation, part of wall_s).
    ``per_window=True`` adds arrays window_index, window_units, window_accepted, window_sl_before, window_sl_after.
    """
    t0 = time.perf_counter()
    responses, sites = _check_inputs(responses, positions, width, n_windows, attempts_per_window, max_units,
                                     min_units)
    device = torch.device(device)
    per_batch = int(windows_per_batch) if windows_per_batch is not None else _default_batch(device)
    if per_batch < 1:
        raise SwapOptError(f"windows_per_batch must be >= 1, got {windows_per_batch}")
    n_units = len(sites)
    z = unit_zscores(responses, dtype=dtype, device=device)
    sites_t = torch.as_tensor(sites, dtype=dtype, device=device)
    site_of_unit = np.arange(n_units)
    unit_on_site = np.arange(n_units)
    last_batch = np.full(n_units, -1, dtype=np.int64)
    workspace = torch.empty(2 * per_batch * max_units * max_units, dtype=dtype, device=device)
    setup = time.perf_counter() - t0
    records: dict[str, list] = {k: [] for k in ("index", "units", "accepted", "sl_before", "sl_after")}
    n_batches = 0

    def run_batch(batch: list[Window]) -> None:
        units = []
        for w in batch:
            u = np.sort(unit_on_site[w.sites])
            units.append(u if w.pick is None else u[w.pick])
        corrs, coords = [], []
        for u in units:
            zw = z.index_select(0, torch.from_numpy(u).to(device))
            corrs.append(zw @ zw.T)
            coords.append(sites_t.index_select(0, torch.from_numpy(site_of_unit[u]).to(device)))
        pairs = torch.from_numpy(np.stack([w.pairs for w in batch], axis=1)).to(device)
        slot, accepted, before, after = swap_windows(corrs, coords, pairs, workspace)
        slot_np = slot.cpu().numpy()
        for i, u in enumerate(units):
            new_sites = site_of_unit[u][slot_np[i, :len(u)]]
            site_of_unit[u] = new_sites
            unit_on_site[new_sites] = u
        records["index"] += [w.index for w in batch]
        records["units"] += [len(u) for u in units]
        records["accepted"] += accepted.cpu().tolist()
        records["sl_before"] += before.cpu().tolist()
        records["sl_after"] += after.cpu().tolist()

    windows = draw_windows(sites, width, n_windows, attempts_per_window, max_units, seed, min_units)
    chunk_size = 32 * per_batch  # windows scheduled together: larger fills batches better
    while chunk := [w for _, w in zip(range(chunk_size), windows)]:
        for batch in _schedule(chunk, last_batch, per_batch):
            run_batch(batch)
            n_batches += 1

    order = np.argsort(records["index"], kind="stable")
    per = {k: np.asarray(v)[order] for k, v in records.items()}
    wall = time.perf_counter() - t0
    attempts = int(len(per["index"]) * attempts_per_window)
    stats: dict[str, Any] = {
        "attempts": attempts,
        "accepted": int(per["accepted"].sum()),
        "sl_before": float(np.nanmean(per["sl_before"])) if len(order) else float("nan"),
        "sl_after": float(np.nanmean(per["sl_after"])) if len(order) else float("nan"),
        "wall_s": wall,
        "attempts_per_s": attempts / wall,
        "windows": int(len(order)),
        "windows_skipped": int(n_windows) - int(len(order)),
        "batches": n_batches,
        "setup_s": setup,
    }
    if per_window:
        stats.update({f"window_{k}": v for k, v in per.items()})
    return sites[site_of_unit].astype(np.float32), stats
