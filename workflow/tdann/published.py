"""The published TDANN models (Margalit et al. 2024; OSF project 64qv3): their VISSL checkpoints and unit positions,
read into this pipeline's weights and sheets so that the published networks go through the same responses, maps,
metrics and figures as the ones trained here.

Formats (docs/reference.md §10), as the TDANN code writes and reads them:

* checkpoint (``tdann_data/tdann/checkpoints/<run>_checkpoints/model_final_checkpoint_phase199.torch``): a VISSL
  file whose trunk state dict is at ``["classy_state_dict"]["base_model"]["model"]["trunk"]``; each tensor appears
  once as ``base_model.<torchvision key>`` and again as ``_feature_blocks.<key>``. The ``base_model.`` keys, less
  ``fc.``, are torchvision's ``resnet18`` trunk.
* positions (``tdann_data/tdann/positions/<run>/<init>``): one ``<layer>.npz`` per layer with ``name``, ``dims``
  (C, H, W), ``coordinates`` (N x 2, mm; units in C, H, W flattening order, as this pipeline orders them),
  ``neighborhood_indices`` (P x Q) and ``neighborhood_width`` (mm); an optional ``version.txt``. Version-1
  positions (no ``version.txt``) were laid out for macaque sizes, and the published analysis rescales their
  coordinates and neighbourhood widths by :data:`VERSION1_SCALE` before measuring anything (spacetorch
  ``get_positions``); ``rescale="auto"`` does the same.

Nothing here runs pickled code: checkpoints load with ``torch.load(weights_only=True)`` and a small allow-list of
numpy data types (VISSL stores numpy scalars beside the tensors); ``.npz`` files load with ``allow_pickle=False``.
A file that needs anything else is refused with an error that names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .positions import LayerSheet

#: published coordinate (and neighbourhood-width) scale factors of version-1 position files, per layer
VERSION1_SCALE = {
    "layer1.0": 0.6, "layer1.1": 0.6, "layer2.0": 1.5, "layer2.1": 1.5,
    "layer3.0": 1.75, "layer3.1": 1.4, "layer4.0": 7.0, "layer4.1": 7.0,
}
RESCALE = ("auto", "none")
TRUNK_PATH = ("classy_state_dict", "base_model", "model", "trunk")
POSITION_KEYS = ("name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width")


class PublishedFormatError(ValueError):
    """A published checkpoint or position file that is not in the layout above (the message names the file)."""


def _numpy_safe_globals() -> list[Any]:
    """numpy's array / scalar reconstructors and dtypes (plain data, which VISSL checkpoints carry beside the
    tensors), under both module spellings: ``numpy.core`` (files pickled by numpy 1) and ``numpy._core``."""
    from numpy._core import multiarray

    found: list[Any] = [np.ndarray, np.dtype]
    for name in ("scalar", "_reconstruct"):
        obj = getattr(multiarray, name)
        found += [obj, (obj, f"numpy.core.multiarray.{name}")]
    found += [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")]
    return found


def _first_reason(err: BaseException) -> str:
    """The line of a torch.load error that names the refused global, else its first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    hit = next((line for line in lines if "unsupported global" in line.lower()),
               lines[0] if lines else repr(err))
    return hit.split(" was not an allowed global")[0].removeprefix("error: ")


def final_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a file; in a VISSL checkpoint folder, the final checkpoint of the highest phase
    (``model_final_checkpoint_phase<N>.torch``, else ``model_phase<N>.torch``: what ``step: latest`` loads)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise PublishedFormatError(f"{path}: no such checkpoint file or folder")
    for pattern in (r"model_final_checkpoint_phase(\d+)\.torch", r"model_phase(\d+)\.torch"):
        found = [(int(m.group(1)), p) for p in path.iterdir() if (m := re.fullmatch(pattern, p.name))]
        if found:
            return max(found)[1]
    raise PublishedFormatError(f"{path}: no model_final_checkpoint_phase<N>.torch or model_phase<N>.torch in it")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A VISSL checkpoint as plain data (tensors, numbers, strings, containers), never running pickled code."""
    import torch

    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors come in many types; a refused global is one of them
        raise PublishedFormatError(
            f"{path}: cannot be read as tensors only, refused without running it ({_first_reason(err)})"
        ) from err
    if not isinstance(ckpt, dict):
        raise PublishedFormatError(f"{path}: a {type(ckpt).__name__}, not a VISSL checkpoint dict")
    return ckpt


def trunk_state_dict(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> dict[str, Any]:
    """torchvision ``resnet18`` keys (no ``fc.``) of a VISSL checkpoint's trunk: the ``base_model.`` copies, prefix
    stripped (the ``_feature_blocks.`` copies hold the same tensors)."""
    import torch

    node: Any = ckpt
    for i, key in enumerate(TRUNK_PATH):
        if not isinstance(node, dict) or key not in node:
            have = sorted(map(str, node))[:8] if isinstance(node, dict) else type(node).__name__
            where = "".join(f"[{k!r}]" for k in TRUNK_PATH[:i])
            raise PublishedFormatError(f"{source}: no {key!r} under checkpoint{where} (has {have})")
        node = node[key]
    state = {k.removeprefix("base_model."): v for k, v in node.items()
             if k.startswith("base_model.") and not k.startswith("base_model.fc.")}
    if not state:
        raise PublishedFormatError(f"{source}: the trunk has no 'base_model.*' keys (first keys: {sorted(node)[:5]})")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise PublishedFormatError(f"{source}: trunk entries that are not tensors: {bad[:5]}")
    return state


def load_trunk(path: str | Path):
    """The published network: our ``resnet18`` (torchvision's module names) with the trunk loaded, strictly, from
    the checkpoint at ``path`` (a file or a VISSL checkpoint folder). The trunk has no classifier (VISSL keeps the
    SimCLR head apart), so ``fc`` is set to zeros: the network's readout says nothing, its blocks are the
    published ones."""
    import torch

    from .models import build_model

    path = final_checkpoint(path)
    state = trunk_state_dict(load_checkpoint(path), path)
    model = build_model("resnet18", width=1.0, stem="standard")
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise PublishedFormatError(f"{path}: trunk does not fit torchvision resnet18: missing {missing[:4]}, "
                                   f"unexpected {extra[:4]}")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise PublishedFormatError(f"{path}: {key!r} has shape {tuple(state[key].shape)}, "
                                       f"resnet18 expects {tuple(value.shape)}")
    with torch.no_grad():
        fc = model.get_submodule("fc")
        assert isinstance(fc, torch.nn.Linear)
        fc.weight.zero_()
        fc.bias.zero_()
    model.load_state_dict(state, strict=False)
    return model


def positions_version(folder: str | Path) -> int:
    """The position files' layout version: ``version.txt``'s first line, 1 without it (the published models)."""
    vfile = Path(folder) / "version.txt"
    if not vfile.is_file():
        return 1
    text = vfile.read_text().strip().splitlines()
    try:
        return int(float(text[0]))
    except (IndexError, ValueError):
        raise PublishedFormatError(f"{vfile}: first line must be the version number, got {text[:1]}") from None


def load_layer_positions(path: str | Path) -> dict[str, Any]:
    """One published ``<layer>.npz``, checked: dims (C, H, W), N = C*H*W coordinates, neighbourhoods in range."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in POSITION_KEYS if k not in z.files]
            if missing:
                raise PublishedFormatError(f"{path}: lacks {missing} (has {sorted(z.files)})")
            raw = {k: z[k] for k in POSITION_KEYS}
    except PublishedFormatError:
        raise
    except Exception as err:  # not a zip, pickled object arrays, truncated file
        raise PublishedFormatError(f"{path}: cannot be read as a position file ({err})") from err
    dims = tuple(int(d) for d in np.asarray(raw["dims"]).ravel())
    coords = np.asarray(raw["coordinates"], dtype=np.float64)
    nbs = np.asarray(raw["neighborhood_indices"])
    if len(dims) != 3:
        raise PublishedFormatError(f"{path}: dims {dims} are not (C, H, W)")
    if coords.shape != (int(np.prod(dims)), 2) or not np.isfinite(coords).all():
        raise PublishedFormatError(f"{path}: coordinates {coords.shape} do not fit dims {dims} (need N x 2 finite)")
    if nbs.ndim != 2 or not np.issubdtype(nbs.dtype, np.integer) or (nbs.size and (nbs.min() < 0 or nbs.max() >= len(coords))):
        raise PublishedFormatError(f"{path}: neighborhood_indices must be a P x Q integer array of unit indices")
    width = float(np.asarray(raw["neighborhood_width"]))
    if not width > 0:
        raise PublishedFormatError(f"{path}: neighborhood_width must be > 0 mm, got {width}")
    return {"name": str(np.asarray(raw["name"])), "dims": dims, "coordinates": coords,
            "neighborhood_indices": nbs.astype(np.int64), "neighborhood_width": width}


def load_positions(folder: str | Path, layers: Iterable[str], rescale: str = "auto") -> dict[str, LayerSheet]:
    """The published positions of ``layers`` as this pipeline's sheets (mm), rescaled as the published analysis
    does for version-1 files (``rescale="auto"``) or as stored (``"none"``). The sheet side is the extent of the
    coordinates from the origin; ``n_windows`` / unit bounds are the stored neighbourhoods' count and size."""
    folder = Path(folder)
    if rescale not in RESCALE:
        raise ValueError(f"rescale must be one of {RESCALE}, got {rescale!r}")
    if not folder.is_dir():
        raise PublishedFormatError(f"{folder}: no such positions folder")
    version = positions_version(folder)
    sheets = {}
    for layer in layers:
        path = folder / f"{layer}.npz"
        if not path.is_file():
            have = sorted(p.stem for p in folder.glob("*.npz"))
            raise PublishedFormatError(f"{path}: missing (position files here: {have})")
        pos = load_layer_positions(path)
        scale = VERSION1_SCALE.get(layer, 1.0) if (rescale == "auto" and version == 1) else 1.0
        coords = pos["coordinates"] * scale
        side = float((coords.max(0) - np.minimum(coords.min(0), 0.0)).max())
        nbs = pos["neighborhood_indices"]
        sheets[layer] = LayerSheet(
            layer, pos["dims"], coords.astype(np.float32), side, pos["neighborhood_width"] * scale, nbs,
            n_windows=int(nbs.shape[0]), min_units=int(nbs.shape[1]), max_units=int(nbs.shape[1]),
        )
    return sheets


def check_shapes(sheets: dict[str, LayerSheet], shapes: dict[str, tuple], source: str | Path) -> None:
    """Every sheet's (C, H, W) must be the layer's output shape at the stream's input size."""
    for layer, sheet in sheets.items():
        if tuple(sheet.shape) != tuple(shapes[layer]):
            raise PublishedFormatError(
                f"{Path(source) / (layer + '.npz')}: dims {tuple(sheet.shape)} but resnet18 {layer} gives "
                f"{tuple(shapes[layer])} at this stream's input size (the published models take 224 px)"
            )
