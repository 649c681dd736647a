"""Parallel LIF box channels on a shared spatial kernel, with centre-surround and inhibition from faster channels (docs/reference.md §7)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

try:  # norse compiles a few functions with torch.jit.script on import, which warns under torch 2.x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from norse.torch import LIFBoxCell, LIFBoxParameters
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState
    HAVE_NORSE = True
except ImportError:  # pragma: no cover - norse is pinned in the environment
    HAVE_NORSE = False


class SpikingConfigError(ValueError):
    """A speed-channel parameter or stimulus is malformed."""


def lif_box_step(
    v: torch.Tensor,
    i: torch.Tensor,
    tau_mem_inv: torch.Tensor | float,
    v_leak: torch.Tensor | float = 0.0,
    v_th: torch.Tensor | float = 1.0,
    v_reset: torch.Tensor | float = 0.0,
    dt: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step of a LIF box neuron (docs/reference.md §7); the plain-torch reference of norse's update.

    ``v <- v + dt * tau_mem_inv * (v_leak - v + i)``; ``spikes = v > v_th``; spiking units are set to ``v_reset``.
    Returns ``(spikes, v)`` with spikes as 0/1 in ``v``'s dtype. Parameters broadcast against ``v``.
    """
    v = v + dt * tau_mem_inv * (v_leak - v + i)
    z = (v > v_th).to(v.dtype)
    v = (1 - z) * v + z * v_reset
    return z, v


def disk_kernel(radius: float, surround: float = 0.0) -> torch.Tensor:
    """A (k, k) spatial kernel: a disk of ``radius`` pixels normalised to sum 1, minus ``surround`` times an
    annulus (radius .. 2 radius) normalised to sum 1. With ``surround = 1`` a uniform input gives zero."""
    if radius <= 0:
        raise SpikingConfigError(f"kernel_radius must be > 0, got {radius}")
    if surround < 0:
        raise SpikingConfigError(f"surround must be >= 0, got {surround}")
    outer = 2 * radius if surround > 0 else radius
    half = int(math.ceil(outer))
    yy, xx = torch.meshgrid(torch.arange(-half, half + 1.0), torch.arange(-half, half + 1.0), indexing="ij")
    d = torch.sqrt(xx**2 + yy**2)
    centre = (d <= radius).float()
    kernel = centre / centre.sum()
    if surround > 0:
        ring = ((d > radius) & (d <= outer)).float()
        kernel = kernel - surround * ring / ring.sum()
    return kernel


class SpeedChannels(nn.Module):
    """Parallel LIF box channels on a shared spatial kernel; ``forward(events (T, H, W)) -> spikes (T, C, H, W)``.

    Args:
        n_channels: number of channels C, ordered slow to fast.
        tau_mem_inv: per-channel inverse membrane time constants (1/s; docs/reference.md §7 default 100).
        v_th: per-channel thresholds (default 1).
        kernel_radius: radius (pixels) of the disk kernel.
        inhibition: weight of the inhibition a channel receives from every faster channel's spikes (pooled over a
            disk of ``inhibition_radius`` pixels and low-pass filtered with ``inhibition_tau``); 0 disables it.
        inhibition_radius: radius (pixels) of the pool of faster-channel spikes that inhibits a pixel (default: the
            kernel radius). A pool wider than the disk lets the few spikes of a fast channel silence the slower
            channels over the whole disk.
        inhibition_tau: time constant (steps) of the inhibitory trace, ``trace <- exp(-1/tau) trace + pooled
            spikes``; 0: the previous step's spikes only.
        surround: weight of the surround annulus of the kernel (0 = plain disk).
        input_gain: factor on the kernel output (the kernel sums to 1, so the drive is a fraction of pixels with
            events per step times this gain).
        v_leak, v_reset, dt: LIF constants (docs/reference.md §7: 0, 0, 1e-3).
        backend: "norse" (``LIFBoxCell``) or "torch" (``lif_box_step``); same update.
    """

    tau_mem_inv: torch.Tensor
    v_th: torch.Tensor
    kernel: torch.Tensor
    pool: torch.Tensor
    inhib: torch.Tensor

    def __init__(
        self,
        n_channels: int,
        tau_mem_inv: Sequence[float],
        v_th: Sequence[float],
        kernel_radius: float = 3.0,
        inhibition: float = 0.0,
        surround: float = 0.0,
        input_gain: float = 1.0,
        inhibition_radius: float | None = None,
        inhibition_tau: float = 0.0,
        v_leak: float = 0.0,
        v_reset: float = 0.0,
        dt: float = 1e-3,
        backend: str = "norse",
    ) -> None:
        super().__init__()
        if len(tau_mem_inv) != n_channels or len(v_th) != n_channels:
            raise SpikingConfigError(
                f"tau_mem_inv ({len(tau_mem_inv)}) and v_th ({len(v_th)}) need n_channels={n_channels} values"
            )
        if any(t <= 0 or dt * t > 1 for t in tau_mem_inv):
            raise SpikingConfigError(
                f"tau_mem_inv must be in (0, 1/dt={1 / dt:g}] for a stable Euler step: {list(tau_mem_inv)}"
            )
        if backend not in ("norse", "torch"):
            raise SpikingConfigError(f"backend must be 'norse' or 'torch', got {backend!r}")
        if backend == "norse" and not HAVE_NORSE:
            raise RuntimeError("backend 'norse' requested but norse does not import; use backend='torch'")
        if inhibition < 0 or inhibition_tau < 0:
            raise SpikingConfigError(f"inhibition and inhibition_tau must be >= 0, got {inhibition}, {inhibition_tau}")
        self.n_channels = n_channels
        self.inhibition = float(inhibition)
        self.inhibition_tau = float(inhibition_tau)
        self.input_gain = float(input_gain)
        self.v_leak, self.v_reset, self.dt = float(v_leak), float(v_reset), float(dt)
        self.backend = backend
        self.register_buffer("tau_mem_inv", torch.as_tensor(list(tau_mem_inv), dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("v_th", torch.as_tensor(list(v_th), dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("kernel", disk_kernel(kernel_radius, surround)[None, None])
        self.register_buffer("pool", disk_kernel(kernel_radius if inhibition_radius is None else inhibition_radius)[None, None])
        # inhib[c, c'] = 1 where c' is faster than c (c' > c): faster channels silence slower ones
        self.register_buffer("inhib", torch.triu(torch.ones(n_channels, n_channels), diagonal=1))

    def drive(self, events: torch.Tensor) -> torch.Tensor:
        """Input current (T, H, W): event frames filtered with the spatial kernel, times ``input_gain``."""
        x = events.to(self.kernel)[:, None]
        pad = self.kernel.shape[-1] // 2
        return self.input_gain * F.conv2d(F.pad(x, (pad,) * 4), self.kernel)[:, 0]

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        """Spikes (T, C, H, W) for event frames (T, H, W)."""
        if events.ndim != 3:
            raise SpikingConfigError(f"SpeedChannels expects event frames (T, H, W), got {tuple(events.shape)}")
        drive = self.drive(events)
        T, H, W = drive.shape
        v = torch.full((self.n_channels, H, W), self.v_leak, device=drive.device)
        z = torch.zeros_like(v)
        cell = None
        if self.backend == "norse":
            p = LIFBoxParameters(
                tau_mem_inv=self.tau_mem_inv,
                v_leak=torch.as_tensor(self.v_leak, device=drive.device),
                v_th=self.v_th,
                v_reset=torch.as_tensor(self.v_reset, device=drive.device),
            )
            cell = LIFBoxCell(p, dt=self.dt)
        out = torch.empty(T, self.n_channels, H, W, device=drive.device)
        pad = self.pool.shape[-1] // 2
        decay = math.exp(-1.0 / self.inhibition_tau) if self.inhibition_tau > 0 else 0.0
        trace = torch.zeros_like(v)
        for t in range(T):
            i = drive[t].expand(self.n_channels, H, W)
            if self.inhibition > 0:
                pooled = F.conv2d(F.pad(z[None], (pad,) * 4), self.pool.expand(self.n_channels, 1, -1, -1),
                                  groups=self.n_channels)[0]
                trace = decay * trace + pooled
                i = i - self.inhibition * torch.einsum("cd,dhw->chw", self.inhib, trace)
            if cell is not None:
                z, state = cell(i, LIFBoxFeedForwardState(v=v))
                v = state.v
            else:
                z, v = lif_box_step(v, i, self.tau_mem_inv, self.v_leak, self.v_th, self.v_reset, self.dt)
            out[t] = z
        return out
