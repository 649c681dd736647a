"""Self-supervised task losses: SimCLR (NT-Xent with its projection head) for the ventral stream, MoCo v2 for the
dorsal stream (docs/reference.md §1). The spatial losses they are trained with are in :mod:`tdann.losses`.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .models import Encoder

# --------------------------------------------------------------------------------------------- SimCLR


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


class SimCLRNet(nn.Module):
    """Encoder plus projection head: ``forward(x) = head(encoder.embed(x))`` (one module so DDP can wrap it)."""

    def __init__(self, encoder: Encoder, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.embed(x))


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
