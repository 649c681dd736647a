"""Fixtures in the exact layout of the published TDANN release (OSF 64qv3, ``tdann_data/tdann``), written by the
tests themselves: a torchvision resnet18 state dict wrapped as VISSL saves it, and version-1 position files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision

from tdann import positions
from tdann.published import VERSION1_SCALE

#: (C, H, W) of resnet18's blocks at 224 px
DIMS_224 = {"layer1.0": (64, 56, 56), "layer1.1": (64, 56, 56), "layer2.0": (128, 28, 28), "layer2.1": (128, 28, 28),
            "layer3.0": (256, 14, 14), "layer3.1": (256, 14, 14), "layer4.0": (512, 7, 7), "layer4.1": (512, 7, 7)}
#: the paper's sheet sides (mm) after the published rescaling; version-1 files hold them divided by VERSION1_SCALE
PAPER_SIDES = {"layer1.0": 2.4, "layer1.1": 2.4, "layer2.0": 36.75, "layer2.1": 36.75, "layer3.0": 35.0,
               "layer3.1": 22.4, "layer4.0": 70.0, "layer4.1": 70.0}
RUN = "simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3"
POSITIONS = ("positions/simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_lw0/"
             "resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019_NBVER2")


def vissl_checkpoint(state: dict[str, torch.Tensor], phase: int = 199) -> dict:
    """A VISSL checkpoint around a torchvision resnet18 state dict: the trunk holds each tensor as
    ``base_model.<key>`` (fc included) and again as ``_feature_blocks.<key>``; heads, loss and meter state beside."""
    trunk = {f"base_model.{k}": v for k, v in state.items()}
    trunk.update({f"_feature_blocks.{k}": v for k, v in state.items() if not k.startswith("fc.")})
    return {
        "phase_idx": phase, "iteration": 1000 * (phase + 1), "type": "final", "train_phase_idx": phase,
        "classy_state_dict": {
            "base_model": {"model": {"trunk": trunk, "heads": {"0.clf.0.weight": torch.zeros(128, 512)}},
                           "meta": {}},
            "loss": {"temperature": np.float64(0.1), "num_negatives": np.int64(1022)},
            "meters": [], "optimizer": {"state": {}, "param_groups": [{"lr": 0.3, "momentum": 0.9}]},
        },
    }


def write_checkpoint(folder: Path, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    """A ``<run>_checkpoints`` folder with an early phase and the final checkpoint; returns (final path, state)."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18()
    net.eval()
    state = net.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"phase_idx": 10}, folder / "model_phase10.torch")  # an earlier phase: must not be the one read
    final = folder / "model_final_checkpoint_phase199.torch"
    torch.save(vissl_checkpoint(state), final)
    return final, state


def write_positions(folder: Path, layers=tuple(DIMS_224), n_windows: int = 40, window_units: int = 30,
                    version: int | None = None, seed: int = 0) -> Path:
    """One ``<layer>.npz`` per layer as ``LayerPositions.save`` writes them: retinotopic positions on the version-1
    (macaque) sheet, i.e. the paper's side divided by the published scale factor, unless ``version`` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for layer in layers:
        dims = DIMS_224[layer]
        side = PAPER_SIDES[layer] / (VERSION1_SCALE[layer] if version is None else 1.0)
        coords = positions.retinotopic_positions(dims, side, 0.2, 0.3 * side / 36.75, rng).astype(np.float64)
        nbs = rng.integers(0, int(np.prod(dims)), size=(n_windows, window_units))
        np.savez(folder / f"{layer}.npz", name=layer, dims=np.array(dims), coordinates=coords,
                 neighborhood_indices=nbs, neighborhood_width=0.1 * side)
    if version is not None:
        (folder / "version.txt").write_text(f"{version}\n")
    return folder


def write_release(root: Path, models: dict[str, int]) -> Path:
    """``root`` laid out as OSF's ``tdann_data/tdann``: ``checkpoints/<run>[_<name>]_checkpoints/`` per model (name
    -> seed of its weights; "" is the main run) and one shared positions folder (version 1)."""
    for name, seed in models.items():
        write_checkpoint(root / "checkpoints" / (f"{RUN}_{name}_checkpoints" if name else f"{RUN}_checkpoints"), seed)
    write_positions(root / POSITIONS)
    return root
