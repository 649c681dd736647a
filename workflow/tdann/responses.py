"""Responses of named layers to a stimulus set, and the forward-hook plumbing the screening and synthesis share.

Everything needs only "a model + layer names": activations are read with forward hooks on named submodules
(``tdann.models.FeatureTaps``), units are numbered channel-major as ``tensor.flatten(start_dim=1)``
(docs/reference.md §2), and 3D (video) activations (B, C, T, H, W) are averaged over time by default, like the
spatial loss of the dorsal model (docs/reference.md §1). :func:`compute_responses` writes the full (stimuli x units)
matrix of a (small) stimulus set, e.g. gratings or fLoc images, batch by batch to HDF5; read it back with
:func:`tdann.h5io.load_responses`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from tdann.h5io import write_dataset
from tdann.models import FeatureTaps
from tdann.progress import Progress

Batch = tuple[int, Any]  # (index of the first input in the store, float array (B, 3, [T,] H, W) in [0, 1])
_RESPONSE_DTYPES = {"float32": np.float32, "float16": np.float16}
_CHUNK_BYTES = 4 << 20  # target HDF5 chunk size


# ----------------------------------------------------------------------------------------------
# hooks and forward passes
# ----------------------------------------------------------------------------------------------
def tap_layers(model: nn.Module, layers: Sequence[str], time_average: bool, signal: str = "output") -> FeatureTaps:
    """Forward hooks on ``layers`` (outputs keep their autograd graph; 5D averaged over time if asked); ``signal``:
    the block output or its pre-activation (:class:`tdann.models.FeatureTaps`)."""
    return FeatureTaps(model, list(layers), time_average=time_average, signal=signal)


class _StopForward(Exception):
    """Raised by a hook once every tapped layer has fired: later layers are not computed."""


def check_layers(model: nn.Module, layers: Sequence[str] | str) -> list[str]:
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


def forward_to_layers(model: nn.Module, taps: FeatureTaps, layers: Sequence[str], x: torch.Tensor) -> None:
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


def as_input(batch: Any, device: str | torch.device, transform: Callable | None) -> torch.Tensor:
    """A batch (B, 3, [T,] H, W) as float32 on ``device`` (uint8 is scaled by 1/255), then ``transform``."""
    x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch)
    if x.dim() not in (4, 5):
        raise ValueError(f"input batch must be (B, C, H, W) or (B, C, T, H, W), got shape {tuple(x.shape)}")
    x = x.to(device)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return transform(x) if transform is not None else x


def unit_shape(output: torch.Tensor) -> tuple[int, ...]:
    """Shape of one input's units as tapped: (C, H, W), or (C, T, H, W) without time averaging."""
    return tuple(int(s) for s in output.shape[1:])


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def counted_batches(batches: Iterable[Batch], total: int | None, progress: bool | None, desc: str) -> Iterator[Batch]:
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
    layers = check_layers(model, layers)
    written = np.zeros(n_stimuli, dtype=bool)
    out_h5 = Path(out_h5)
    model.to(device)
    with (
        eval_mode(model),
        torch.no_grad(),
        h5py.File(out_h5, "w", rdcc_nbytes=4 * _CHUNK_BYTES) as f,
        tap_layers(model, layers, time_average) as taps,
    ):
        f.attrs.update(n_stimuli=n_stimuli, dtype=dtype, time_average=time_average, layers=layers)
        group = f.create_group("responses")
        group.attrs["description"] = "unit responses per layer, rows = stimuli, columns = units (channel-major)"
        for start, batch in counted_batches(batches, n_stimuli, progress, "responses"):
            x = as_input(batch, device, transform)
            stop = start + len(x)
            if start < 0 or stop > n_stimuli:
                raise ValueError(f"batch rows {start}..{stop - 1} outside 0..{n_stimuli - 1} (n_stimuli)")
            if written[start:stop].any():
                raise ValueError(f"batch starting at {start} overlaps rows already written")
            forward_to_layers(model, taps, layers, x)
            for name in layers:
                flat = taps.flat(name).float().cpu().numpy().astype(np_dtype)
                if name not in group:
                    _create_response_dataset(group, name, n_stimuli, flat.shape[1], np_dtype, len(x),
                                             unit_shape(taps.outputs[name]))
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
