"""Losses: the spatial loss (SL_Rel / SL_Abs), TopoLoss (a weight-similarity objective of TopoNets), SimCLR NT-Xent
with its projection head, and MoCo v2.

Total loss of a topographic model (docs/reference.md §1): ``L = L_task + sum_k alpha_k * SL_k`` over the tapped blocks.
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

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


# --------------------------------------------------------------------------------------------- SimCLR


#: a spatial loss of one tapped layer, as training uses it: ``sample(generator)``, ``loss_at(features, idx)``
SheetLoss = SpatialLoss | TopoWeightLoss


class ProjectionHead(nn.Module):
    """SimCLR projection MLP ``in_dim -> hidden -> out`` with ReLU (512-512-128 for ResNet-18, docs/reference.md §1).

    ``batch_norm`` adds BatchNorm1d after the hidden layer (SimCLR v2 style); off by default, as in SimCLR v1.
    """

    def __init__(self, in_dim: int, hidden: int = 512, out: int = 128, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> tuple[Tensor, Tensor]:
    """SimCLR NT-Xent over the 2B projections of two views (temperature 0.1, docs/reference.md §1).

    Sample i of view 1 and sample i of view 2 are positives; the other 2B - 2 samples are negatives. Returns the
    mean loss over all 2B anchors and top1 = fraction of anchors whose positive is their most similar sample.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = (z @ z.T) / temperature
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    loss = F.cross_entropy(sim, targets)
    top1 = (sim.detach().argmax(dim=1) == targets).float().mean()
    return loss, top1


# --------------------------------------------------------------------------------------------- MoCo v2


class MoCo(nn.Module):
    """MoCo v2 (docs/reference.md §1): query / momentum key encoders, MLP heads, a queue of K negative keys.

    ``encoder_q`` must have ``embed(x) -> (B, embed_dim)`` (see ``tdann.models``); the heads map the embedding to
    ``dim`` (MLP ``embed_dim -> embed_dim -> dim`` with ``mlp``, else one linear layer). ``encoder_k`` is a deep
    copy of ``encoder_q`` when None; either way it starts from the query weights and gets no gradients.

    Shuffle-BN: the original shuffles keys across GPUs so that a query and its key never share BN statistics. On one
    process this class uses the split-batch equivalent of the official single-GPU demo: the key batch is shuffled,
    split into ``bn_splits`` sub-batches whose BN statistics are computed separately (one key-encoder forward per
    sub-batch), and unshuffled. The query encoder sees the whole batch. ``bn_splits=1`` turns this off.

    ``batch_negatives`` adds the batch's other keys as negatives (as MoCo v3 uses them). Without them every
    negative comes from an earlier batch, and a network can find its positive by what the current batch shares
    (BatchNorm statistics over a 16-clip batch) instead of by content: measured here, training top-1 0.5-0.9 while
    the held-out loss stayed at chance. With in-batch negatives that shortcut no longer separates the positive.

    ``queue`` (dim, K) and ``queue_ptr`` are buffers, so checkpoints resume them; enqueueing wraps around the end of
    the queue, so K need not be a multiple of the batch size (a batch larger than K is an error).
    """

    queue: Tensor
    queue_ptr: Tensor
    encoder_q: Any  # a tdann.models encoder: embed(x), embed_dim
    encoder_k: Any

    def __init__(
        self,
        encoder_q: nn.Module,
        encoder_k: nn.Module | None = None,
        dim: int = 128,
        K: int = 65536,
        m: float = 0.999,
        T: float = 0.2,
        mlp: bool = True,
        bn_splits: int = 2,
        head_bn: bool = False,
        batch_negatives: bool = False,
    ) -> None:
        super().__init__()
        if not hasattr(encoder_q, "embed") or not hasattr(encoder_q, "embed_dim"):
            raise ValueError("MoCo needs an encoder with embed(x) and embed_dim (build it with tdann.models)")
        if K < 1 or not 0.0 <= m <= 1.0 or T <= 0 or bn_splits < 1:
            raise ValueError(f"MoCo needs K >= 1, 0 <= m <= 1, T > 0, bn_splits >= 1; got {K}, {m}, {T}, {bn_splits}")
        self.K, self.m, self.T, self.bn_splits = int(K), float(m), float(T), int(bn_splits)
        self.batch_negatives = bool(batch_negatives)
        e = cast(int, encoder_q.embed_dim)
        self.encoder_q = encoder_q
        self.head_q: nn.Module = ProjectionHead(e, e, dim, batch_norm=head_bn) if mlp else nn.Linear(e, dim)
        self.encoder_k = copy.deepcopy(encoder_q) if encoder_k is None else encoder_k
        self.head_k = copy.deepcopy(self.head_q)
        for p_q, p_k in zip(self._params_q(), self._params_k(), strict=True):
            p_k.data.copy_(p_q.data)
            p_k.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(dim, self.K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _params_q(self) -> list[nn.Parameter]:
        return [*self.encoder_q.parameters(), *self.head_q.parameters()]

    def _params_k(self) -> list[nn.Parameter]:
        return [*self.encoder_k.parameters(), *self.head_k.parameters()]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_k <- m * theta_k + (1 - m) * theta_q`` for every key parameter."""
        for p_q, p_k in zip(self._params_q(), self._params_k(), strict=True):
            p_k.mul_(self.m).add_(p_q.detach(), alpha=1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (B, dim) into the queue at ``queue_ptr``, wrapping around, and advance the pointer."""
        b = keys.shape[0]
        if b > self.K:
            raise ValueError(f"batch of {b} keys is larger than the MoCo queue (K={self.K})")
        ptr = int(self.queue_ptr[0])
        idx = (ptr + torch.arange(b, device=self.queue.device)) % self.K
        self.queue[:, idx] = keys.detach().to(self.queue.dtype).T
        self.queue_ptr[0] = (ptr + b) % self.K

    def query(self, x: Tensor) -> Tensor:
        """Normalised query projections (B, dim)."""
        return F.normalize(self.head_q(self.encoder_q.embed(x)), dim=1)

    @torch.no_grad()
    def keys(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Normalised key projections (B, dim) with shuffled split-batch BN (see class docstring)."""
        b = x.shape[0]
        if b < self.bn_splits:
            raise ValueError(f"key batch of {b} is smaller than bn_splits={self.bn_splits}")
        dev = generator.device if generator is not None else torch.device("cpu")
        perm = torch.randperm(b, generator=generator, device=dev).to(x.device)
        parts = [self.head_k(self.encoder_k.embed(c)) for c in x[perm].tensor_split(self.bn_splits)]
        k = parts[0].new_empty(b, parts[0].shape[1])
        k[perm] = torch.cat(parts)
        return F.normalize(k, dim=1)

    def forward(self, x_q: Tensor, x_k: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """InfoNCE loss of queries against their keys (positives) and the queue (negatives); returns (loss, top1)."""
        q = self.query(x_q)
        self.momentum_update()
        k = self.keys(x_k, generator)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.clone().detach()
        if self.batch_negatives:  # the other keys of this batch (MoCo v3's negatives) beside the queue
            in_batch = q @ k.T
            off = ~torch.eye(len(q), dtype=torch.bool, device=q.device)
            l_neg = torch.cat([in_batch[off].view(len(q), -1), l_neg], dim=1)
        logits = torch.cat([l_pos, l_neg], dim=1).float() / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, labels)
        top1 = (logits.detach().argmax(dim=1) == 0).float().mean()
        self.enqueue(k)
        return loss, top1
