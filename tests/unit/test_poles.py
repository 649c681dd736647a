"""Bidirectional screening on a signal that can go below baseline: pre-activation taps, the poles' bootstrap, the
semantic axis, the screening tables and the MEI / LEI checks (docs/reference.md §6)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from tdann import analysis, bidirectional, models
from tdann.bidirectional import axis_separation, pole_bootstrap
from tdann.models import FeatureTaps
from tdann.screening import add_semantic_axes, load_screen, screen
from tdann.synthesis import synthesize_many

torch.set_num_threads(1)


@pytest.mark.parametrize("arch, shape", [("resnet18", (4, 3, 32, 32)), ("r3d_18", (4, 3, 4, 32, 32))])
def test_preact_is_what_the_final_relu_receives(arch, shape):
    torch.manual_seed(0)
    model = models.build_model(arch, width=0.125).eval()
    x = torch.rand(shape)
    layers = ["layer1.0", "layer2.0", "layer4.1"]
    with torch.no_grad(), FeatureTaps(model, layers, time_average=False, signal="preact") as pre, \
            FeatureTaps(model, layers, time_average=False) as out:
        model(x)
    for name in layers:
        assert torch.equal(torch.relu(pre.outputs[name]), out.outputs[name])
        assert (pre.flat(name) < 0).float().mean() > 0.2  # the pre-activation goes below 0 where the output ties
        assert (out.flat(name) == 0).float().mean() > 0.2


def test_preact_keeps_the_graph_and_refuses_blocks_without_a_final_relu():
    model = models.build_model("resnet18", width=0.125)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    with FeatureTaps(model, ["layer2.0"], signal="preact") as taps:
        model(x)
        taps.flat("layer2.0")[:, 5].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="layer 'layer2' .* no final ReLU"):
        FeatureTaps(model, ["layer2"], signal="preact")
    with pytest.raises(ValueError, match="signal must be one of"):
        FeatureTaps(model, ["layer2.0"], signal="membrane")


def test_pole_bootstrap_finds_low_poles_only_where_responses_go_below_baseline():
    rng = np.random.default_rng(0)
    pre = rng.standard_normal((1000, 6)).astype(np.float32)
    post = np.maximum(pre, 0)  # half the inputs tie at 0: the median sits on the floor
    res_pre, res_post = pole_bootstrap(pre, 1000, 8, n_boot=200), pole_bootstrap(post, 1000, 8, n_boot=200)
    assert (res_pre["low_ci_low"] > 1.5).all()  # the 8 lowest of 1000 normals lie ~2.6 SD below the median
    assert np.allclose(res_post["low_ci_low"], 0)  # never significant; the upper end varies where the median does
    sparse = np.maximum(pre - 0.5, 0)  # 69% of inputs at the floor: depth 0 in every resample
    assert np.allclose(pole_bootstrap(sparse, 1000, 8, n_boot=200)["low_ci_high"], 0)
    assert (res_post["high_ci_low"] > 1.5).all() and (res_pre["high_ci_low"] > 1.5).all()
    # a reservoir of 500 inputs of a store of 4000: the bottom 1 of the sample stands for the k = 8 of the store
    assert pole_bootstrap(pre[:500], 4000, 8, n_boot=50)["k_sample"][0] == 1
    with pytest.raises(ValueError, match="sample"):
        pole_bootstrap(pre[:1], 10, 2)


def test_axis_separation_finds_a_planted_axis_and_the_control_does_not():
    rng = np.random.default_rng(1)
    units, k, d = 40, 8, 16
    axes = rng.standard_normal((units, d))
    noise = lambda: rng.standard_normal((units, k, d))  # noqa: E731
    top = noise() + 2 * axes[:, None]
    bottom = noise() - 2 * axes[:, None]
    res = axis_separation(top, bottom)
    assert res["auc"].mean() > 0.95
    assert 0.35 < res["auc_other"].mean() < 0.65  # another unit's axis is unrelated
    flat = axis_separation(noise(), noise())
    assert 0.35 < flat["auc"].mean() < 0.65
    with pytest.raises(ValueError, match="k >= 2"):
        axis_separation(top[:, :1], bottom[:, :1])


class Tiny(torch.nn.Module):
    """A ResNet-like block (final ReLU ``relu``) on 8 x 8 inputs, with an ``embed``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block = models.BasicBlock(3, 4)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.block(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


def _batches(x: np.ndarray, size: int):
    for i in range(0, len(x), size):
        yield i, x[i:i + size]


def test_screen_writes_both_signals_on_the_same_units_with_poles_and_axes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((120, 3, 8, 8)).astype(np.float32)
    model = Tiny()
    out = screen(model, _batches(x, 32), ["block"], k=6, out_h5=tmp_path / "s.h5", units_per_layer=50,
                 progress=False, signals=["preact", "output"], n_boot=100)
    add_semantic_axes(out, model, lambda idx: x[idx])
    pre, post = load_screen(out, "block"), load_screen(out, "block", "output")
    assert load_screen(out, "block", "preact")["units"].tolist() == pre["units"].tolist()
    assert np.array_equal(pre["units"], post["units"])
    assert np.allclose(np.maximum(pre["top_val"], 0), post["top_val"])  # the 2D output is relu(preact)
    assert (pre["bottom_val"] < 0).mean() > 0.5 and (post["bottom_val"] >= 0).all()
    assert np.allclose(pre["low_depth"], pre["q50"] - pre["bottom_val"].mean(1))
    assert (pre["low_ci_low"] > 0).mean() > (post["low_ci_low"] > 0).mean()
    assert "axis_auc" in pre and "axis_auc" not in post and np.isfinite(pre["axis_auc"]).all()
    with h5py.File(out) as f:
        assert list(f.attrs["signals"]) == ["preact", "output"] and f.attrs["signal"] == "preact"
    with pytest.raises(ValueError, match="screen_membrane"):
        load_screen(out, "block", "membrane")
    units = bidirectional.screening_units({"preact": {"block": pre}, "output": {"block": post}})
    poles = bidirectional.screening_poles(units).set_index("signal")
    assert poles.loc["preact", "frac_low_below"] > poles.loc["output", "frac_low_below"]
    assert 0 <= poles.loc["output", "frac_low_below_ci_low"] <= poles.loc["output", "frac_low_below_ci_high"] <= 1
    assert np.isfinite(poles.loc["preact", "axis_auc_mean"])


def test_synthesis_on_the_preact_beats_the_natural_inputs_and_the_checks_say_so(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 3, 8, 8)).astype(np.float32)
    model = Tiny()
    out = screen(model, _batches(x, 32), ["block"], k=4, out_h5=tmp_path / "s.h5", progress=False,
                 signals=["preact"], n_boot=100)
    scr = load_screen(out, "block")
    unit_rows = [0, 1]
    chosen = scr["units"][unit_rows]
    acts = {}
    for sign, pole in ((1, "mei"), (-1, "lei")):
        res = synthesize_many(model, "block", list(np.repeat(chosen, 2)), [0, 1] * 2, sign=sign,
                              input_shape=(3, 8, 8), steps=60, jitter=0, noise_std=0.0, signal="preact")
        acts[f"pixel/{pole}"] = np.array([r["activation"] for r in res]).reshape(2, 2)
    assert (acts["pixel/lei"] < 0).all()  # post-ReLU, an LEI could only tie at 0
    units = bidirectional.screening_units({"preact": {"block": scr}})
    checks = bidirectional.synthesis_checks({"block": {"units": chosen} | acts}, units)
    assert len(checks) == 8 and set(checks["pole"]) == {"mei", "lei"}
    assert checks["passes"].all(), checks
    # a check fails where the synthesised input does not beat the natural bound
    weak = {"block": {"units": chosen, "pixel/mei": np.full((2, 2), -1e3)}}
    assert not bidirectional.synthesis_checks(weak, units)["passes"].any()


def test_the_share_interval_is_exact_and_empty_for_no_units():
    lo, hi = analysis.clopper_pearson(512, 512)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / 512))  # all 512: the exact lower bound
    lo, hi = analysis.clopper_pearson(256, 512)
    assert lo < 0.5 < hi and hi - lo < 0.1
    assert np.isnan(analysis.clopper_pearson(0, 0)[0])


def test_held_out_inputs_never_share_a_source_with_the_fit():
    """Crops of one photo carry the axis from fit to test: split by source, only other sources are scored."""
    rng = np.random.default_rng(2)
    units, k, d = 30, 8, 12
    photo = rng.standard_normal((units, 2, d))  # per unit: one MAI photo, one LAI photo, cropped k times
    top = photo[:, :1] + 0.1 * rng.standard_normal((units, k, d))
    bottom = photo[:, 1:] + 0.1 * rng.standard_normal((units, k, d))
    by_rank = axis_separation(top, bottom)
    assert by_rank["auc"].mean() > 0.95  # near-duplicates make the rank split look perfect
    same = np.zeros((units, k), int)
    split = axis_separation(top, bottom, top_groups=same, bottom_groups=same + 1)
    assert np.isnan(split["auc"]).all() and (split["n_pairs"] == 0).all()  # nothing is held out
    # held-out ranks from other photos: only those pairs count
    groups_t, groups_b = same.copy(), same + 1
    groups_t[:, 1], groups_b[:, 3] = 7, 8
    part = axis_separation(top, bottom, top_groups=groups_t, bottom_groups=groups_b)
    assert (part["n_pairs"] == 1).all() and np.isfinite(part["auc"]).all()


def test_store_sources_name_the_photo_or_video_of_each_input(tmp_path):
    from tdann import stores

    with h5py.File(tmp_path / "images.h5", "w") as f:
        f["images"] = np.zeros((4, 8, 8, 3), np.uint8)
        f["source"] = np.array(["b.jpg", "a.jpg", "b.jpg", "c.png"], dtype=object)
    assert stores.store_sources(tmp_path / "images.h5").tolist() == [1, 0, 1, 2]
    with h5py.File(tmp_path / "clips.h5", "w") as f:
        f["clips"] = np.zeros((3, 2, 8, 8, 3), np.uint8)
        f["clip_video"] = np.array([0, 0, 5], np.int32)
    assert stores.store_sources(tmp_path / "clips.h5").tolist() == [0, 0, 5]
    with h5py.File(tmp_path / "bare.h5", "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
    assert stores.store_sources(tmp_path / "bare.h5").tolist() == [0, 1, 2]


def test_trained_and_untrained_are_compared_unit_by_unit():
    rng = np.random.default_rng(3)
    base = dict(signal="preact", layer="layer2.0", unit=np.arange(50))
    noise = lambda: rng.normal(0, 0.05, 50)  # noqa: E731
    trained = pd.DataFrame(base | dict(model="a2.5_s0", low_depth=1.0 + noise(), high_height=2 + noise(),
                                       depth_ratio=0.5 + noise(), gini=0.2 + noise(), axis_auc=0.9 + noise()))
    untrained = pd.DataFrame(base | dict(model="untrained (init_s0)", low_depth=1.0 + noise(),
                                         high_height=1.5 + noise(), depth_ratio=0.5 + noise(),
                                         gini=0.2 + noise(), axis_auc=0.7 + noise()))
    out = bidirectional.screening_vs_untrained(pd.concat([trained, untrained]), "a2.5_s0", "untrained (init_s0)",
                                        "preact").set_index("measure")
    assert out.loc["axis_auc", "differs"] and out.loc["axis_auc", "diff_mean"] == pytest.approx(0.2, abs=0.03)
    assert out.loc["high_height", "differs"] and not out.loc["low_depth", "differs"]
    assert (out["n_units"] == 50).all()
