"""Backbones of the two topographic models, hooks to read their block outputs, and weight loading.

* ``resnet18``: the 2D ResNet-18 of the ventral TDANN (docs/reference.md §1, Margalit et al. 2024).
* ``r3d_18``: the 3D ResNet-18 of the dorsal / MT model (docs/reference.md §1, Gu et al. 2026): stem Conv3d (3,7,7)
  stride (1,2,2), layers 2-4 stride 2 in t, h and w.

Both are written out here in the style of ``torchvision.models`` with torchvision's module names, so at
``width=1`` and ``stem="standard"`` a state dict loads into ``torchvision.models.resnet18()`` /
``torchvision.models.video.r3d_18()`` (strict) and gives identical outputs. ``width`` scales every channel count
(laptop-scale runs); ``stem="keep"`` swaps in a stem that keeps the input resolution, a laptop-scale deviation so
that small inputs (e.g. 64x64) still give usable feature maps (8x8 at layer2 becomes 32x32).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: The 8 BasicBlock outputs that carry a cortical sheet and a spatial loss (docs/reference.md §1).
LAYERS = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")

ARCHS = ("resnet18", "r3d_18")
STEMS = ("standard", "keep")


class CheckpointError(RuntimeError):
    """A weights file that is not a state dict, or whose keys / shapes do not fit the model."""


def channels(width: float) -> tuple[int, int, int, int]:
    """Channel counts of layer1..layer4 (64, 128, 256, 512 at width 1), each scaled by ``width``, rounded, >= 1."""
    if not width > 0:
        raise ValueError(f"model width must be > 0, got {width!r}")
    return tuple(max(1, int(round(c * width))) for c in (64, 128, 256, 512))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- 2D ResNet-18


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BN, identity (or 1x1-conv) shortcut, ReLU after the sum."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet-18 (2 BasicBlocks per stage) with torchvision's module names and initialisation."""

    def __init__(self, width: float = 1.0, stem: str = "standard", num_classes: int = 1000) -> None:
        super().__init__()
        c = channels(width)
        if stem == "standard":
            self.conv1 = nn.Conv2d(3, c[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        elif stem == "keep":  # laptop-scale deviation: keep the input resolution
            self.conv1 = nn.Conv2d(3, c[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"unknown stem {stem!r}; expected one of {STEMS}")
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _stage(BasicBlock, c[0], c[0], stride=1)
        self.layer2 = _stage(BasicBlock, c[0], c[1], stride=2)
        self.layer3 = _stage(BasicBlock, c[1], c[2], stride=2)
        self.layer4 = _stage(BasicBlock, c[2], c[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c[3], num_classes)
        self.embed_dim: int = c[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, x: Tensor) -> Tensor:
        """Pooled layer4 features before ``fc``: (B, 3, H, W) -> (B, embed_dim)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.embed(x))


# --------------------------------------------------------------------------------------------- 3D ResNet-18


class BasicBlock3d(nn.Module):
    """3D basic block as in ``torchvision.models.video``: conv1 = (Conv3d, BN, ReLU), conv2 = (Conv3d, BN)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(inplanes, planes, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            nn.Conv3d(planes, planes, 3, stride=1, padding=1, bias=False), nn.BatchNorm3d(planes)
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes)
            )
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        out += identity
        return self.relu(out)


class VideoResNet(nn.Module):
    """R3D-18 with torchvision's module names (``stem``, ``layer1..4``, ``avgpool``, ``fc``) and initialisation."""

    def __init__(self, width: float = 1.0, stem: str = "standard", num_classes: int = 1000) -> None:
        super().__init__()
        c = channels(width)
        if stem == "standard":
            stride = (1, 2, 2)
        elif stem == "keep":  # laptop-scale deviation: keep the input resolution
            stride = (1, 1, 1)
        else:
            raise ValueError(f"unknown stem {stem!r}; expected one of {STEMS}")
        self.stem = nn.Sequential(
            nn.Conv3d(3, c[0], kernel_size=(3, 7, 7), stride=stride, padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(c[0]),
            nn.ReLU(inplace=True),
        )
        self.layer1 = _stage(BasicBlock3d, c[0], c[0], stride=1)
        self.layer2 = _stage(BasicBlock3d, c[0], c[1], stride=2)
        self.layer3 = _stage(BasicBlock3d, c[1], c[2], stride=2)
        self.layer4 = _stage(BasicBlock3d, c[2], c[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(c[3], num_classes)
        self.embed_dim: int = c[3]
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def embed(self, x: Tensor) -> Tensor:
        """Pooled layer4 features before ``fc``: (B, 3, T, H, W) -> (B, embed_dim)."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.embed(x))


def _stage(block: type[nn.Module], inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """Two blocks; the first one changes resolution / channel count."""
    return nn.Sequential(block(inplanes, planes, stride), block(planes, planes, 1))


#: what build_model returns: a ResNet or VideoResNet, each with ``embed(x)`` and ``embed_dim``
Encoder = ResNet | VideoResNet


def build_model(arch: str, width: float = 1.0, stem: str = "standard", num_classes: int = 1000) -> Encoder:
    """Build ``resnet18`` (2D, ventral) or ``r3d_18`` (3D, dorsal) at the given channel ``width`` and ``stem``."""
    if arch == "resnet18":
        return ResNet(width, stem, num_classes)
    if arch == "r3d_18":
        return VideoResNet(width, stem, num_classes)
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")


def input_shape(arch: str, input_size: int, clip_len: int | None = None) -> tuple[int, ...]:
    """Per-sample input shape: (3, size, size) for ``resnet18``, (3, clip_len, size, size) for ``r3d_18``."""
    if arch == "resnet18":
        return (3, int(input_size), int(input_size))
    if arch == "r3d_18":
        if not clip_len or clip_len < 1:
            raise ValueError(f"r3d_18 needs a clip length >= 1, got clip_len={clip_len!r}")
        return (3, int(clip_len), int(input_size), int(input_size))
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")


# --------------------------------------------------------------------------------------------- feature taps


#: What a tap reads from a block: its output (after the final ReLU) or the pre-activation that ReLU receives.
SIGNALS = ("output", "preact")


class FeatureTaps:
    """Forward hooks on named blocks that keep their outputs (with the autograd graph) during a forward pass.

    Use as a context manager; the hooks are removed on exit::

        with FeatureTaps(model) as taps:
            model(x)
            f = taps.flat("layer2.0")   # (B, C*H*W), channel-major unit order (docs/reference.md §2)

    With ``time_average`` a 5D output (B, C, T, H, W) is averaged over time to (B, C, H, W): the dorsal model's
    spatial loss works on time-averaged activations (docs/reference.md §1).

    ``signal="preact"`` keeps instead what the block's final ReLU (``block.relu``) receives: the sum of the
    residual branch and the shortcut, whose ``relu`` is the block's output, a signal that can go below its
    baseline (docs/reference.md §6). The block's ReLU may run more than once per forward (the 2D block calls it
    after its first conv too); the last call before the block returns is the final one.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str] = LAYERS, time_average: bool = True,
                 signal: str = "output") -> None:
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        self.model = model
        self.layers = tuple(layers)
        self.time_average = time_average
        self.signal = signal
        self.outputs: dict[str, Tensor] = {}
        self._pre: dict[str, Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        for name in self.layers:  # fail early on a bad name, or a block without a final ReLU to read
            block = _submodule(model, name)
            if signal == "preact" and not isinstance(getattr(block, "relu", None), nn.ReLU):
                raise ValueError(f"layer {name!r} ({type(block).__name__}) has no final ReLU 'relu': "
                                 "signal 'preact' needs a block whose output is relu(pre-activation)")

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            if self.signal == "preact":
                output = self._pre.pop(name)
            if self.time_average and output.dim() == 5:
                output = output.mean(dim=2)
            self.outputs[name] = output

        return hook

    def _pre_hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple) -> None:
            self._pre[name] = inputs[0].clone()  # the ReLU is in place: keep the value it receives

        return hook

    def __enter__(self) -> FeatureTaps:
        self.outputs, self._pre = {}, {}
        self._handles = [_submodule(self.model, n).register_forward_hook(self._hook(n)) for n in self.layers]
        if self.signal == "preact":
            self._handles += [_submodule(self.model, f"{n}.relu").register_forward_pre_hook(self._pre_hook(n))
                              for n in self.layers]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def flat(self, layer: str) -> Tensor:
        """Output of ``layer`` as (B, C*H*W), channel-major (``flatten(start_dim=1)``)."""
        if layer not in self.outputs:
            raise KeyError(f"no output recorded for layer {layer!r}; tapped layers: {self.layers}")
        return self.outputs[layer].flatten(start_dim=1)


def _submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"model {type(model).__name__} has no layer {name!r}") from err


@torch.no_grad()
def layer_shapes(model: nn.Module, input_shape: tuple, layers: Iterable[str] = LAYERS) -> dict[str, tuple]:
    """Per-sample output shape (C, H, W) of each layer (after time averaging), from one dry forward on zeros.

    ``input_shape`` is per sample: (3, H, W) for ``resnet18``, (3, T, H, W) for ``r3d_18``. The model is run in
    eval mode (batch of one) and put back in its previous mode.
    """
    layers = tuple(layers)
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with FeatureTaps(model, layers) as taps:
            model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    except RuntimeError as err:
        raise ValueError(f"input shape {tuple(input_shape)} does not fit the model: {err}") from err
    finally:
        model.train(was_training)
    return {name: tuple(taps.outputs[name].shape[1:]) for name in layers}


# --------------------------------------------------------------------------------------------- weights


def memory_format(arch: str) -> torch.memory_format:
    """The channels-last layout of an architecture's activations: ``channels_last`` for the 2D ResNet-18,
    ``channels_last_3d`` for r3d_18 (GPU convolutions run faster in it; shared by training and gpucheck)."""
    if arch not in ARCHS:
        raise ValueError(f"memory_format: arch must be one of {ARCHS}, got {arch!r}")
    return torch.channels_last_3d if arch == "r3d_18" else torch.channels_last


WEIGHTS_FORMAT = "tdann-weights/1"


def atomic_save(obj, path: str | Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename: ``path`` is either the old or the new file. A
    failed save (disk full, read-only folder) removes the temporary file and raises OSError naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch.save reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path}: {err}") from err
    return path


def save_weights(model: nn.Module, path: str | Path, arch: str, width: float = 1.0, stem: str = "standard",
                 input_size: int | None = None, clip_len: int = 1) -> Path:
    """Write a model's plain state dict (CPU tensors) atomically, with what rebuilds it.

    The file stays a state dict that ``torch.load(path, weights_only=True)`` reads and, at width 1 with the
    standard stem, ``torchvision.models.resnet18()`` / ``video.r3d_18()`` loads strictly. The architecture rides
    in the state dict's own ``_metadata`` (where torch keeps module versions, and which ``load_state_dict``
    passes over): ``{"": {"tdann": {"format", "arch", "width", "stem", "input_size", "clip_len"}}}``, so that
    :func:`load` needs no sidecar. ``clip_len`` is recorded for r3d_18 only (an image network's is 1).
    """
    if arch not in ARCHS or stem not in STEMS:
        raise ValueError(f"save_weights: arch {arch!r} / stem {stem!r} not in {ARCHS} / {STEMS}")
    model = getattr(model, "module", model)  # DistributedDataParallel
    source = model.state_dict()
    state: Any = type(source)((k, v.detach().cpu().contiguous().clone()) for k, v in source.items())  # channels_last too
    meta = dict(getattr(source, "_metadata", {}) or {})
    root = dict(meta.get("", {}))
    root["tdann"] = {"format": WEIGHTS_FORMAT, "arch": arch, "width": float(width), "stem": stem,
                     "input_size": None if input_size is None else int(input_size),
                     "clip_len": int(clip_len) if arch == "r3d_18" else 1}
    meta[""] = root
    state._metadata = meta
    return atomic_save(state, path)


def _read_state(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: cannot be read as a weights file ({err})") from err


def _info(state) -> dict | None:
    """The network a loaded state dict says it holds (:func:`save_weights`), or None."""
    info = (getattr(state, "_metadata", None) or {}).get("", {}).get("tdann")
    return dict(info) if isinstance(info, dict) else None


def weights_info(path: str | Path) -> dict | None:
    """What a weights file says about its network (arch, width, stem, input_size, clip_len), or None for a file
    written without it (a plain torchvision or older tdann state dict)."""
    return _info(_read_state(Path(path)))


def load(path: str | Path) -> Encoder:
    """Rebuild the network a weights file describes and load it (no sidecar, no config)::

        model = tdann.models.load("results/models/ventral/a2.5_s0/weights.pt")

    Raises :class:`CheckpointError` naming the file when it carries no architecture (pass it to
    :func:`load_weights` with arch / width / stem instead).
    """
    path = Path(path)
    state = _read_state(path)  # read once: the metadata and the tensors come from the same load
    info = _info(state)
    if info is None:
        raise CheckpointError(f"{path}: the file does not say its architecture (written by torchvision or before "
                              "tdann-weights/1); use tdann.models.load_weights(path, arch, width, stem)")
    return _load_state(path, state, info["arch"], info["width"], info["stem"], None)


def load_weights(
    path: str | Path, arch: str, width: float = 1.0, stem: str = "standard", num_classes: int | None = None
) -> Encoder:
    """Build the model and load a state dict saved with ``torch.save(model.state_dict(), path)``.

    Also accepts a dict holding the state dict under ``"model"`` or ``"state_dict"`` (training checkpoints) and
    strips a ``"module."`` prefix (DistributedDataParallel). ``num_classes=None`` takes it from ``fc.weight``.
    Raises :class:`CheckpointError` naming the file and the first missing, unexpected or misshapen key.
    """
    path = Path(path)
    return _load_state(path, _read_state(path), arch, width, stem, num_classes)


def _load_state(path: Path, state, arch: str, width: float, stem: str, num_classes: int | None) -> Encoder:
    """:func:`load_weights` on a state already read from ``path`` (named in every error)."""
    info = _info(state)
    if info is not None and (info.get("arch"), float(info.get("width", width)), info.get("stem")) != (
            arch, float(width), stem):
        raise CheckpointError(f"{path}: holds {info.get('arch')} width {info.get('width')} stem {info.get('stem')}, "
                              f"asked for {arch} width {width} stem {stem}")
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict (a dict of tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if num_classes is None:
        fc = state.get("fc.weight")
        num_classes = int(fc.shape[0]) if isinstance(fc, Tensor) and fc.dim() == 2 else 1000
    model = build_model(arch, width, stem, num_classes)
    expected = model.state_dict()
    for key in expected:
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r} for {arch} width {width} stem {stem}")
        if state[key].shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(expected[key].shape)} for {arch} width {width} stem {stem}"
            )
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{path}: unexpected key {key!r} for {arch} width {width} stem {stem}")
    model.load_state_dict(state)
    return model
