"""Spatial losses: SL_Rel / SL_Abs on a cortical sheet, and TopoLoss (a weight-similarity objective of TopoNets).
The task losses (SimCLR, MoCo v2) are in :mod:`tdann.ssl`.

Total loss of a topographic model (docs/reference.md §1): ``L = L_task + sum_k alpha_k * SL_k`` over the tapped blocks.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --------------------------------------------------------------------------------------------- spatial loss


def _tri_index(k: int, device: torch.device | None = None) -> Tensor:
    """Flat indices of the lower triangle (no diagonal) of a (k, k) matrix."""
    rows, cols = torch.tril_indices(k, k, offset=-1, device=device)
    return rows * k + cols


def _corr_tri(x: Tensor, tri: Tensor, eps: float) -> Tensor:
    """Lower-triangle unit-by-unit Pearson correlations across the batch: (n, B, k) -> (n, k*(k-1)/2).

    A constant unit has zero variance; clamping the sum of squares at ``eps`` makes its correlations 0 instead of
    NaN (and leaves all others exact, so the loss stays invariant to rescaling a unit).
    """
    xc = x - x.mean(dim=1, keepdim=True)
    xn = xc / torch.sqrt((xc * xc).sum(dim=1, keepdim=True).clamp_min(eps))
    r = torch.bmm(xn.transpose(1, 2), xn)
    return r.flatten(1)[:, tri]


def _pearson(a: Tensor, b: Tensor, eps: float) -> Tensor:
    """Pearson correlation of the rows of ``a`` and ``b`` (n, P) -> (n,)."""
    ac = a - a.mean(dim=-1, keepdim=True)
    bc = b - b.mean(dim=-1, keepdim=True)
    return (ac * bc).sum(-1) / torch.sqrt(((ac * ac).sum(-1) * (bc * bc).sum(-1)).clamp_min(eps))


def _inv_dist(pos: Tensor) -> Tensor:
    """``D = 1 / (d + 1)`` for positions (..., k, 2) in mm -> (..., k, k) (docs/reference.md §2)."""
    diff = pos.unsqueeze(-2) - pos.unsqueeze(-3)
    return 1.0 / (torch.sqrt((diff * diff).sum(-1)) + 1.0)


def sl_rel(responses: Tensor, positions: Tensor, eps: float = 1e-8) -> Tensor:
    """SL_Rel of one neighbourhood (docs/reference.md §2): ``(1 - pearson(r_tri, D_tri)) / 2``, in [0, 1].

    ``responses`` (B, k): the k units' responses to a batch; ``positions`` (k, 2) mm. ``r`` is the unit-by-unit
    Pearson correlation across the batch, ``D = 1 / (d + 1)``; both are taken as lower triangles without diagonal.
    """
    k = responses.shape[1]
    tri = _tri_index(k, responses.device)
    r = _corr_tri(responses.unsqueeze(0), tri, eps)
    d = _inv_dist(positions.to(responses)).flatten()[tri].unsqueeze(0)
    return ((1.0 - _pearson(r, d, eps)) / 2.0)[0]


def sl_abs(responses: Tensor, positions: Tensor, eps: float = 1e-8) -> Tensor:
    """SL_Abs of one neighbourhood (docs/reference.md §2, older form): ``mean |r_tri - D_tri|``."""
    k = responses.shape[1]
    tri = _tri_index(k, responses.device)
    r = _corr_tri(responses.unsqueeze(0), tri, eps)[0]
    d = _inv_dist(positions.to(responses)).flatten()[tri]
    return (r - d).abs().mean()


class SpatialLoss(nn.Module):
    """Spatial loss of one layer, averaged over a few randomly sampled neighbourhoods per call.

    ``positions`` (N, 2) mm and ``neighborhoods`` (K, k) unit indices come from a ``LayerSheet``; they are
    non-persistent buffers (they follow ``.to(device)`` but stay out of checkpoints: the sheets file is their
    record). ``forward(features)`` takes (B, N) activations (or (B, C, H, W), flattened channel-major), samples
    ``neighborhoods_per_batch`` neighbourhoods without replacement and evaluates all of them with batched matrix
    products; it equals the mean of :func:`sl_rel` (or :func:`sl_abs`) over the sampled neighbourhoods.

    SL_Rel is computed without forming the (k, k) correlation matrix when k > B: with X the (B, k) z-scored
    responses, the Pearson correlation of ``r_tri`` with ``D_tri`` equals ``<X^T X, Dn> / sqrt(var)`` where ``Dn``
    is D centred over its off-diagonal entries, with zero diagonal and unit norm, and the off-diagonal variance of
    r comes from the (B, B) Gram matrix. ``Dn`` is a constant per neighbourhood: it is cached, lazily, until the
    cache holds ``cache_mb`` megabytes; neighbourhoods beyond that are recomputed when sampled.
    """

    positions: Tensor
    neighborhoods: Tensor
    tri: Tensor

    def __init__(
        self,
        positions: np.ndarray | Tensor,
        neighborhoods: np.ndarray | Tensor,
        kind: str = "rel",
        neighborhoods_per_batch: int = 8,
        eps: float = 1e-8,
        cache_mb: float = 64.0,
    ) -> None:
        super().__init__()
        if kind not in ("rel", "abs"):
            raise ValueError(f"unknown spatial loss kind {kind!r}; expected 'rel' or 'abs'")
        pos = torch.as_tensor(positions).detach().to(torch.float32)
        nbs = torch.as_tensor(neighborhoods).detach().to(torch.long)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ValueError(f"positions must be (N, 2), got {tuple(pos.shape)}")
        if nbs.ndim != 2 or nbs.shape[0] < 1 or nbs.shape[1] < 3:
            raise ValueError(f"neighborhoods must be (K, k) with K >= 1, k >= 3, got {tuple(nbs.shape)}")
        if nbs.min() < 0 or nbs.max() >= pos.shape[0]:
            raise ValueError(f"neighborhood indices out of range for {pos.shape[0]} positions")
        if neighborhoods_per_batch < 1:
            raise ValueError(f"neighborhoods_per_batch must be >= 1, got {neighborhoods_per_batch}")
        self.kind = kind
        self.neighborhoods_per_batch = int(neighborhoods_per_batch)
        self.eps = eps
        self.cache_bytes = int(cache_mb * 2**20)
        self.register_buffer("positions", pos, persistent=False)
        self.register_buffer("neighborhoods", nbs, persistent=False)
        self.register_buffer("tri", _tri_index(nbs.shape[1]), persistent=False)
        self._cache: dict[int, Tensor] = {}

    @torch.no_grad()
    def centred_d(self, idx: Tensor) -> Tensor:
        """``Dn`` (n, k, k) of the neighbourhoods ``idx``: ``D = 1/(d+1)`` with zero diagonal, centred over the
        off-diagonal entries, unit Frobenius norm. Cached up to ``cache_mb``."""
        if self._cache and next(iter(self._cache.values())).device != self.positions.device:
            self._cache.clear()  # the module moved to another device
        wanted = idx.tolist()
        missing = sorted({i for i in wanted if i not in self._cache})
        fresh = {}
        if missing:
            fresh = dict(zip(missing, self._compute_centred_d(self.neighborhoods[missing])))
            k = self.neighborhoods.shape[1]
            room = (self.cache_bytes - len(self._cache) * k * k * 4) // (k * k * 4)
            for i in missing[: max(0, room)]:
                self._cache[i] = fresh[i]
        return torch.stack([self._cache[i] if i in self._cache else fresh[i] for i in wanted])

    def _compute_centred_d(self, nbs: Tensor) -> Tensor:
        p = self.positions[nbs]
        p = p - p.mean(dim=1, keepdim=True)  # centring keeps the |a|^2 + |b|^2 - 2ab form accurate
        sq = (p * p).sum(-1)
        d2 = torch.baddbmm(sq.unsqueeze(2) + sq.unsqueeze(1), p, p.transpose(1, 2), alpha=-2.0)
        dn = d2.clamp_min_(0.0).sqrt_().add_(1.0).reciprocal_()
        k = dn.shape[1]
        diag = dn.diagonal(dim1=1, dim2=2)
        diag.zero_()
        dn.sub_((dn.sum(dim=(1, 2)) / (k * (k - 1))).view(-1, 1, 1))
        diag.zero_()
        return dn.div_(dn.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1))

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Indices of ``neighborhoods_per_batch`` distinct neighbourhoods (all of them if there are fewer)."""
        n_all = self.neighborhoods.shape[0]
        dev = generator.device if generator is not None else torch.device("cpu")
        idx = torch.randperm(n_all, generator=generator, device=dev)[: self.neighborhoods_per_batch]
        return idx.to(self.neighborhoods.device)

    def forward(self, features: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.loss_at(features, self.sample(generator))

    def loss_at(self, features: Tensor, idx: Tensor) -> Tensor:
        """Mean spatial loss over the given neighbourhoods ``idx`` (n,); half precision is promoted to float32."""
        f = features.flatten(1)
        if f.shape[1] != self.positions.shape[0]:
            raise ValueError(f"features have {f.shape[1]} units per sample, the sheet has {self.positions.shape[0]}")
        if f.shape[0] < 2:
            raise ValueError("the spatial loss needs a batch of at least 2 samples to correlate units")
        return self.loss_of_units(f[:, self.neighborhoods[idx].reshape(-1)], idx)

    def loss_of_units(self, units: Tensor, idx: Tensor) -> Tensor:
        """Mean spatial loss from the responses of the sampled units only: ``units`` (B, n*k) holds, in order, the
        k units of each neighbourhood in ``idx`` (n,), i.e. ``features[:, neighborhoods[idx].reshape(-1)]``, e.g.
        after gathering them across processes."""
        nbs = self.neighborhoods[idx]
        n, k = nbs.shape
        if units.ndim != 2 or units.shape[1] != n * k or units.shape[0] < 2:
            raise ValueError(f"units must be (B >= 2, {n * k}) for {n} neighbourhoods of {k}, got {tuple(units.shape)}")
        x = units.reshape(units.shape[0], n, k).transpose(0, 1)  # (n, B, k)
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        if self.kind == "abs":
            r = _corr_tri(x, self.tri, self.eps)
            d = _inv_dist(self.positions[nbs]).flatten(1)[:, self.tri].to(r.dtype)
            return (r - d).abs().mean()
        return ((1.0 - self._pearson_r_d(x, self.centred_d(idx).to(x.dtype))) / 2.0).mean()

    def _pearson_r_d(self, x: Tensor, dn: Tensor) -> Tensor:
        """Pearson correlation, over unit pairs, of the response correlations r with ``Dn``; (n, B, k) -> (n,).

        With X the z-scored responses, u their mean column and E = X - u 1^T (so E 1 = 0): r = X^T X =
        M + a 1^T + 1 a^T + c with M = E^T E, a = E^T u (sum a = 0) and a constant c that Pearson ignores. Then
        sum_ij r'_ij = 0 and sum_ij r'_ij^2 = ||M||^2 + 2k |a|^2. Working with E keeps these sums free of
        cancellation when all units are strongly correlated (r near 1). M is formed as (k, k) only when k <= B;
        otherwise its sums come from the (B, B) Gram matrix (||E^T E|| = ||E E^T||) and from E Dn.
        """
        b, k = x.shape[1], x.shape[2]
        xc = x - x.mean(dim=1, keepdim=True)
        xn = xc / torch.sqrt((xc * xc).sum(dim=1, keepdim=True).clamp_min(self.eps))
        u = xn.mean(dim=2, keepdim=True)
        e = xn - u
        a = (e * u).sum(dim=1)  # (n, k)
        if k <= b:
            m = torch.bmm(e.transpose(1, 2), e)
            m_dn, m_sq = (m * dn).sum(dim=(1, 2)), (m * m).sum(dim=(1, 2))
        else:
            gram = torch.bmm(e, e.transpose(1, 2))
            m_dn, m_sq = (torch.bmm(e, dn) * e).sum(dim=(1, 2)), (gram * gram).sum(dim=(1, 2))
        cov = m_dn + 2.0 * (a * dn.sum(dim=2)).sum(dim=1)  # <r, Dn>: Dn is centred, symmetric, zero diagonal
        r_diag = (e * e).sum(dim=1) + 2.0 * a
        sum_off = -r_diag.sum(dim=1)
        var_off = m_sq + 2.0 * k * (a * a).sum(dim=1) - (r_diag * r_diag).sum(dim=1) - sum_off**2 / (k * (k - 1))
        return cov / torch.sqrt(var_off.clamp_min(self.eps))


# --------------------------------------------------------------------------------------------- TopoLoss


def channel_grid(n_channels: int) -> tuple[int, int]:
    """(rows, columns) of the channel sheet of TopoNets (Deb et al. 2025): the largest divisor of ``n_channels``
    not above its square root as rows; channel c sits at (c // columns, c % columns)."""
    n = int(n_channels)
    if n < 1:
        raise ValueError(f"need at least one channel, got {n_channels}")
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


def topo_loss(weight: Tensor, factor: float = 3.0) -> Tensor:
    """TopoLoss of one layer's weights (TopoNets, docs/reference.md §2): the output channels are laid on their
    :func:`channel_grid`, each channel's flattened weights are a vector at its cell; the sheet is blurred by
    down-sampling by ``factor`` (bilinear) and up-sampling back, and the loss is ``1 - mean cosine similarity``
    between each channel's weights and the blurred ones. 0: weights already smooth over the sheet; it rewards
    neighbouring channels that share their weights, hence their responses."""
    if weight.ndim < 2:
        raise ValueError(f"topo_loss needs (out_channels, ...) weights, got shape {tuple(weight.shape)}")
    rows, cols = channel_grid(weight.shape[0])
    if not 1 <= factor <= min(rows, cols):
        raise ValueError(f"topo factor {factor} must be in [1, {min(rows, cols)}] for a {rows} x {cols} channel "
                         f"grid ({weight.shape[0]} channels)")
    grid = weight.reshape(rows, cols, -1).permute(2, 0, 1).unsqueeze(0)  # (1, e, rows, cols)
    down = F.interpolate(grid, scale_factor=(1 / factor, 1 / factor), mode="bilinear")
    up = F.interpolate(down, size=(rows, cols), mode="bilinear")
    return 1 - F.cosine_similarity(grid[0].flatten(1).T, up[0].flatten(1).T, dim=-1).mean()


def output_conv(block: nn.Module) -> nn.Conv2d | nn.Conv3d:
    """The convolution whose output channels are the block's output channels: the last conv of the residual
    branch (``conv2`` of a basic block; the shortcut's 1x1 conv does not count)."""
    convs = [m for name, m in block.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))
             and not name.startswith("downsample")]
    if not convs:
        raise ValueError(f"{type(block).__name__} has no convolution for TopoLoss")
    return convs[-1]


class TopoWeightLoss(nn.Module):
    """TopoLoss of one tapped block, with the interface of :class:`SpatialLoss` (the features are not needed:
    the loss reads the block's output convolution's weights, with their gradient)."""

    def __init__(self, block: nn.Module, factor: float = 3.0) -> None:
        super().__init__()
        self.conv = [output_conv(block)]  # a list: not a submodule, so the encoder keeps owning it
        self.factor = float(factor)
        topo_loss(self.conv[0].weight.detach(), self.factor)  # fail early on a grid too small for the factor

    def sample(self, generator: torch.Generator | None = None) -> None:
        return None

    def loss_at(self, features: Tensor | None = None, idx: Tensor | None = None) -> Tensor:
        return topo_loss(self.conv[0].weight, self.factor)

    def forward(self, features: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.loss_at()


#: a spatial loss of one tapped layer, as training uses it: ``sample(generator)``, ``loss_at(features, idx)``
SheetLoss = SpatialLoss | TopoWeightLoss
