"""Tests for tdann.screening: responses, streaming screening and MEI / LEI synthesis on toy models."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from tdann import screening
from tdann.h5io import load_responses, undescribed
from tdann.responses import compute_responses
from tdann.screening import load_screen, screen
from tdann.streaming import RunningStats, StreamingTopK, dkw_epsilon, gini
from tdann.synthesis import natural_spectrum, synthesize, synthesize_many

torch.set_num_threads(1)


class Boom(nn.Module):
    """A head that must never run when only earlier layers are tapped."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("forward went past the last tapped layer")


class Toy2D(nn.Module):
    """conv (signed) -> relu -> strided block; input (B, 3, 8, 8)."""

    def __init__(self, boom: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.block = nn.Sequential(nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU())
        self.head = Boom() if boom else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.relu(self.conv(x))))


class Toy3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv3d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def batches(x: np.ndarray, sizes: list[int], order: list[int] | None = None) -> list[tuple[int, np.ndarray]]:
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    out = [(int(s), x[s: s + n]) for s, n in zip(starts, sizes)]
    return [out[i] for i in order] if order is not None else out


def stimuli(n: int, shape: tuple[int, ...] = (3, 8, 8), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


# ---------------------------------------------------------------- responses
def test_compute_responses_shapes_order_and_attrs(tmp_path):
    model, x = Toy2D(boom=True), stimuli(11)
    out = tmp_path / "r.h5"
    compute_responses(model, batches(x, [4, 3, 4], order=[2, 0, 1]), ["conv", "block.0"], out, 11, progress=False)
    model.head = nn.Identity()
    with torch.no_grad():
        conv = model.conv(torch.from_numpy(x))
        block = model.block[0](model.relu(conv))
    got = load_responses(out, "conv")
    assert got.shape == (11, 4 * 8 * 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, conv.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    # unit n is channel-major: unit c*H*W + h*W + w is channel c at (h, w)
    np.testing.assert_allclose(got[:, 1 * 64 + 2 * 8 + 5], conv[:, 1, 2, 5].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(load_responses(out, "block.0"), block.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    with h5py.File(out) as f:
        assert tuple(f["responses/conv"].attrs["shape"]) == (4, 8, 8)
        assert tuple(f["responses/block.0"].attrs["shape"]) == (5, 4, 4)
        assert f["responses/conv"].attrs["layer"] == "conv"
        assert f["responses/conv"].chunks[1] == 256 and f["responses/conv"].chunks[0] <= 4
    assert undescribed(out) == []
    units = [200, 3, 17, 3]
    np.testing.assert_array_equal(load_responses(out, "conv", units), got[:, units])


def test_compute_responses_float16_and_transform(tmp_path):
    model, x = Toy2D(), stimuli(6)
    out = compute_responses(model, batches(x, [6]), ["conv"], tmp_path / "r.h5", 6, dtype="float16",
                            progress=False, transform=lambda t: 2 * t - 1)
    got = load_responses(out, "conv")
    assert got.dtype == np.float16
    with torch.no_grad():
        want = model.conv(2 * torch.from_numpy(x) - 1).flatten(1).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def test_compute_responses_time_average(tmp_path):
    model, x = Toy3D(), stimuli(5, (3, 4, 6, 6))
    out = compute_responses(model, batches(x, [2, 3]), ["conv"], tmp_path / "r.h5", 5, progress=False)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).mean(dim=2).flatten(1).numpy()
    np.testing.assert_allclose(load_responses(out, "conv"), want, rtol=1e-5, atol=1e-6)
    with h5py.File(out) as f:
        assert tuple(f["responses/conv"].attrs["shape"]) == (2, 6, 6)
    out = compute_responses(model, batches(x, [5]), ["conv"], tmp_path / "r2.h5", 5, progress=False,
                            time_average=False)
    assert load_responses(out, "conv").shape == (5, 2 * 4 * 6 * 6)


def test_compute_responses_rejects_bad_input(tmp_path):
    model, x = Toy2D(), stimuli(8)
    with pytest.raises(RuntimeError, match="never came"):
        compute_responses(model, batches(x, [4, 4])[:1], ["conv"], tmp_path / "a.h5", 8, progress=False)
    with pytest.raises(ValueError, match="outside"):
        compute_responses(model, [(6, x[:4])], ["conv"], tmp_path / "b.h5", 8, progress=False)
    with pytest.raises(ValueError, match="float64"):
        compute_responses(model, batches(x, [8]), ["conv"], tmp_path / "c.h5", 8, dtype="float64")
    with pytest.raises(ValueError, match="nolayer"):
        compute_responses(model, batches(x, [8]), ["nolayer"], tmp_path / "d.h5", 8)
    out = compute_responses(model, batches(x, [8]), ["conv"], tmp_path / "e.h5", 8, progress=False)
    with pytest.raises(ValueError, match="relu"):
        load_responses(out, "relu")


# ---------------------------------------------------------------- streaming top-k and statistics
@pytest.mark.parametrize("sizes", [[300], [7] * 42 + [6], [1, 2, 100, 3, 194], [2] * 150])
def test_streaming_topk_equals_full_sort(sizes):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((300, 40)).astype(np.float32)
    perm = rng.permutation(300)  # store indices need not be the row order
    topk = StreamingTopK(40, k=6)
    start = 0
    for n in sizes:
        topk.update(torch.from_numpy(data[start: start + n]), perm[start: start + n])
        start += n
    res = topk.result()
    order = np.argsort(-data, axis=0)[:6].T
    np.testing.assert_array_equal(res["top_idx"], perm[order])
    np.testing.assert_array_equal(res["top_val"], np.take_along_axis(data.T, order, axis=1))
    order = np.argsort(data, axis=0)[:6].T
    np.testing.assert_array_equal(res["bottom_idx"], perm[order])
    np.testing.assert_array_equal(res["bottom_val"], np.take_along_axis(data.T, order, axis=1))
    assert (res["bottom_val"] < 0).all()  # signs are kept


def test_streaming_topk_errors():
    topk = StreamingTopK(3, k=5)
    with pytest.raises(ValueError):
        topk.update(np.zeros((2, 4), np.float32), [0, 1])
    topk.update(np.zeros((2, 3), np.float32), [0, 1])
    with pytest.raises(RuntimeError, match="fewer than k"):
        topk.result()


def test_gini_known_values():
    np.testing.assert_allclose(gini(np.array([0.0, 0.0, 0.0, 1.0])), 0.75)
    np.testing.assert_allclose(gini(np.full(10, 3.0)), 0.0, atol=1e-12)
    x = np.random.default_rng(0).exponential(size=(5000,))  # Gini of the exponential distribution is 1/2
    assert abs(gini(x) - 0.5) < 0.02
    assert np.isnan(gini(np.zeros(4)))
    with pytest.raises(ValueError):
        gini(np.array([-1.0, 1.0]))


def _mixed_units(rng: np.random.Generator, n: int) -> np.ndarray:
    """Columns: ReLU-Gaussian, exponential, offset Gaussian (large mean), signed skewed, a dead unit."""
    return np.stack([
        np.maximum(rng.standard_normal(n), 0), rng.exponential(2.0, n), 1000 + rng.standard_normal(n),
        rng.gamma(2.0, size=n) - 3, np.zeros(n),
    ], axis=1).astype(np.float32)


def test_running_stats_moments_exact():
    rng = np.random.default_rng(4)
    data = _mixed_units(rng, 3001)
    stats = RunningStats(5, reservoir=64, active_fraction=0.1)
    for chunk in np.array_split(data, [1, 5, 500, 2999]):
        stats.update(torch.from_numpy(chunk))
    res = stats.result()
    d = data.astype(np.float64)
    np.testing.assert_allclose(res["mean"], d.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res["std"], d.std(0), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res["skew"][:4], scipy.stats.skew(d[:, :4], axis=0), rtol=1e-6)
    assert np.isnan(res["skew"][4])
    np.testing.assert_array_equal(res["min"], d.min(0))
    np.testing.assert_array_equal(res["max"], d.max(0))
    np.testing.assert_allclose(res["frac_positive"], (d > 0).mean(0))
    np.testing.assert_array_equal(res["active"], [True, True, True, True, False])


def test_running_stats_sample_exact_when_stream_fits():
    data = _mixed_units(np.random.default_rng(5), 300)
    stats = RunningStats(5, reservoir=512)
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    res = stats.result()
    np.testing.assert_allclose(res["q05"], np.quantile(data.astype(np.float64), 0.05, axis=0), rtol=1e-6)
    np.testing.assert_allclose(res["q95"], np.quantile(data.astype(np.float64), 0.95, axis=0), rtol=1e-6)
    shifted = data.astype(np.float64) - np.minimum(data.min(0), 0)
    np.testing.assert_allclose(res["gini"][:4], gini(shifted[:, :4]), rtol=1e-6)
    assert np.isnan(res["gini"][4])


def test_running_stats_sample_within_error_bound():
    """A drifting stream (each unit's values rise over time) exposes any bias of the reservoir."""
    rng = np.random.default_rng(6)
    n, reservoir = 30000, 2048
    data = _mixed_units(rng, n)
    data[:, :4] += np.linspace(0, 2, n, dtype=np.float32)[:, None]
    stats = RunningStats(5, reservoir=reservoir, seed=1)
    for chunk in np.array_split(data, 60):
        stats.update(chunk)
    res = stats.result()
    eps = dkw_epsilon(reservoir, delta=1e-3)
    for q, key in [(0.05, "q05"), (0.95, "q95")]:
        rank = (data[:, :4] <= res[key][:4]).mean(axis=0)  # true CDF at the estimate
        assert np.all(np.abs(rank - q) <= eps), (key, rank)
    full = gini(data[:, :4].astype(np.float64) - np.minimum(data[:, :4].min(0), 0))
    assert np.all(np.abs(res["gini"][:4] - full) < 0.02), (res["gini"][:4], full)
    assert abs(dkw_epsilon(2048, 0.01) - 0.036) < 1e-3


# ---------------------------------------------------------------- screening
def test_screen_matches_full_responses(tmp_path):
    model, x = Toy2D(boom=True), stimuli(61, seed=2)
    sizes = [16, 16, 16, 13]
    out = screen(model, batches(x, sizes), ["conv", "block.0"], 5, tmp_path / "s.h5", device="cpu",
                 progress=False, store_path="store.h5", reservoir=128)
    model.head = nn.Identity()
    full = compute_responses(model, batches(x, sizes), ["conv", "block.0"], tmp_path / "r.h5", 61, progress=False)
    with h5py.File(out) as f:
        assert f.attrs["n_inputs"] == 61 and f.attrs["store"] == "store.h5" and f.attrs["k"] == 5
        assert tuple(f["screen/conv"].attrs["shape"]) == (4, 8, 8)
    assert undescribed(out) == []
    for layer in ["conv", "block.0"]:
        res, resp = load_screen(out, layer), load_responses(full, layer).astype(np.float64)
        assert res["top_idx"].shape == (resp.shape[1], 5)
        np.testing.assert_allclose(res["top_val"], -np.sort(-resp, axis=0)[:5].T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res["bottom_val"], np.sort(resp, axis=0)[:5].T, rtol=1e-5, atol=1e-6)
        picked = np.take_along_axis(resp.T, res["top_idx"], axis=1)
        np.testing.assert_allclose(picked, res["top_val"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res["mean"], resp.mean(0), rtol=1e-4, atol=1e-5)
    assert (load_screen(out, "conv")["bottom_val"] < 0).any()  # the signed layer keeps negative responses
    with pytest.raises(ValueError, match="relu"):
        load_screen(out, "relu")


def test_screen_samples_units(tmp_path):
    model, x = Toy2D(), stimuli(20, seed=3)
    out = screen(model, batches(x, [10, 10]), ["conv"], 3, tmp_path / "s.h5", units_per_layer=30,
                 progress=False, seed=7)
    full = compute_responses(model, batches(x, [20]), ["conv"], tmp_path / "r.h5", 20, progress=False)
    res = load_screen(out, "conv")
    units = res["units"]
    assert units.shape == (30,) and np.all(np.diff(units) > 0) and units.max() < 256
    resp = load_responses(full, "conv", units)
    np.testing.assert_allclose(res["top_val"], -np.sort(-resp, axis=0)[:3].T, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than k"):
        screen(model, batches(x, [2]), ["conv"], 3, tmp_path / "t.h5", progress=False)


# ---------------------------------------------------------------- synthesis
def gabor(size: int, channels: int = 3, frames: int | None = None) -> np.ndarray:
    """A smooth, zero-mean oriented filter (C, [T,] H, W) with norm 1."""
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    g = np.exp(-(xx**2 + yy**2) / (2 * (size / 5) ** 2)) * np.cos(2 * np.pi * (0.8 * xx + 0.6 * yy) / (size / 2))
    w = np.stack([g * s for s in (1.0, -0.5, 0.8)[:channels]])
    if frames is not None:
        w = np.stack([w * np.cos(np.pi * t / frames) for t in range(frames)], axis=1)
    w = w - w.mean()
    return (w / np.linalg.norm(w)).astype(np.float32)


def linear_unit(w: np.ndarray) -> nn.Module:
    """One output unit computing <w, x>: a conv whose kernel covers the whole input."""
    conv_cls = nn.Conv2d if w.ndim == 3 else nn.Conv3d
    conv = conv_cls(w.shape[0], 1, w.shape[1:], bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w)[None])
    return nn.Sequential(conv)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef((a - a.mean()).ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("sign", [1, -1])
def test_pixel_mei_lei_of_linear_filter(sign):
    w = gabor(16)
    norm = 0.35 / np.abs(w).max()  # the ball lies inside the [0, 1] box, so the optimum is 0.5 + norm * sign * w
    res = synthesize(linear_unit(w), "0", unit=0, sign=sign, input_shape=(3, 16, 16), steps=60,
                     norm=norm, jitter=0, noise_std=0.0, seed=0)  # SGD lr 0.05, gradient blur 1 px
    assert res["input"].shape == (3, 16, 16) and res["input"].min() >= 0 and res["input"].max() <= 1
    assert sign * corr(res["input"], w) > 0.9
    assert sign * res["activation"] > 0.9 * norm  # <w, x> at the optimum is sign * norm
    assert res["trajectory"].shape == (60,) and sign * res["trajectory"][-1] > sign * res["trajectory"][0]


@pytest.mark.parametrize("sign", [1, -1])
def test_fourier_mei_lei_of_linear_filter(sign):
    """With the filter's own magnitude spectrum the optimal phase is the filter's (up to the sigmoid)."""
    w = gabor(16)
    mag = np.abs(np.fft.rfftn(w, axes=(1, 2))).astype(np.float32)
    res = synthesize(linear_unit(w), "0", unit=0, sign=sign, input_shape=(3, 16, 16), param="fourier",
                     magnitude_spectrum=mag, steps=128, jitter=0, noise_std=0.0, seed=1)  # Adam lr 1.0
    assert sign * corr(res["input"], w) > 0.9


def test_pixel_mei_of_3d_filter_and_bad_spectrum():
    w = gabor(8, frames=4)
    norm = 0.35 / np.abs(w).max()
    res = synthesize(linear_unit(w), "0", unit=0, sign=1, input_shape=(3, 4, 8, 8), steps=60,
                     norm=norm, jitter=0, noise_std=0.0, seed=2)
    assert res["input"].shape == (3, 4, 8, 8)
    assert corr(res["input"], w) > 0.9
    spec = natural_spectrum(np.random.default_rng(0).random((4, 3, 4, 8, 8)))
    assert spec.shape == (3, 4, 8, 5)
    res = synthesize(linear_unit(w), "0", unit=0, input_shape=(3, 4, 8, 8), param="fourier",
                     magnitude_spectrum=spec, steps=3)
    assert res["input"].shape == (3, 4, 8, 8)
    with pytest.raises(ValueError, match="magnitude_spectrum shape"):
        synthesize(linear_unit(w), "0", unit=0, input_shape=(3, 4, 8, 8), param="fourier",
                   magnitude_spectrum=spec[:, :2], steps=3)


def test_mei_beats_mais_and_lei_below_lais(tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1, stride=2))
    x = stimuli(128, (3, 16, 16), seed=4)
    unit = 2 * 64 + 3 * 8 + 4  # channel 2 at (3, 4) of the (4, 8, 8) output of layer "2"
    out = screen(model, batches(x, [64, 64]), ["2"], 5, tmp_path / "s.h5", progress=False)
    res = load_screen(out, "2")
    # jitter off: on a 16 px toy a shift moves the pattern off the unit's small receptive field
    kw = dict(unit=unit, input_shape=(3, 16, 16), steps=60, jitter=0, noise_std=0.01)
    mei = synthesize(model, "2", sign=1, **kw)
    lei = synthesize(model, "2", sign=-1, **kw)
    assert mei["activation"] > res["top_val"][unit].max()
    assert lei["activation"] < res["bottom_val"][unit].min()
    # channel mode: the whole map of channel 2 goes up
    with torch.no_grad():
        base = model(torch.from_numpy(x))[:, 2].mean(dim=(1, 2)).max().item()
    chan = synthesize(model, "2", channel=2, sign=1, input_shape=(3, 16, 16), steps=40, seed=1)
    assert chan["activation"] > base


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_synthesize_many_equals_one_at_a_time(param):
    """A batch of (unit, seed) pairs gives each pair the result of its own run: BatchNorm in eval mode, per-element
    random streams, gradient scaling, projection and total variation."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1))
    with torch.no_grad():
        model(torch.rand(16, 3, 12, 12))  # BatchNorm running statistics away from their init
    targets, seeds = [5, 300, 5], [0, 0, 1]
    kw = dict(input_shape=(3, 12, 12), param=param, steps=12, norm=2.0, tv_weight=0.01, jitter=1, batch=2,
              sign=-1)
    many = synthesize_many(model, "3", targets, seeds, **kw)
    for target, seed, got in zip(targets, seeds, many):
        one = synthesize(model, "3", unit=target, seed=seed, **kw)
        np.testing.assert_allclose(got["input"], one["input"], atol=1e-5)
        np.testing.assert_allclose(got["trajectory"], one["trajectory"], rtol=1e-4, atol=1e-6)
        assert got["activation"] == pytest.approx(one["activation"], rel=1e-4, abs=1e-6)
    assert not np.allclose(many[0]["input"], many[2]["input"])  # the seed matters
    with pytest.raises(ValueError, match="as many seeds"):
        synthesize_many(model, "3", [1, 2], [0], **kw)
    with pytest.raises(ValueError, match="unit 999"):
        synthesize_many(model, "3", [1, 999], [0, 0], **{**kw, "steps": 1})


def test_natural_spectrum_of_pink_noise():
    rng = np.random.default_rng(0)
    f = np.sqrt(np.fft.fftfreq(32)[:, None] ** 2 + np.fft.rfftfreq(32)[None] ** 2)
    spec = np.where(f > 0, 1 / np.maximum(f, 1e-9), 0)
    noise = np.fft.rfft2(rng.standard_normal((20, 3, 32, 32))) * spec
    images = np.fft.irfft2(noise, s=(32, 32)) + 5.0
    mag = natural_spectrum((i, images[i: i + 5]) for i in range(0, 20, 5))  # batches from a store
    assert mag.shape == (3, 32, 17) and np.all(mag[:, 0, 0] == 0)
    radial = [mag[:, (f > lo) & (f <= lo + 0.1)].mean() for lo in (0.0, 0.1, 0.2, 0.3)]
    assert np.all(np.diff(radial) < 0)
    np.testing.assert_allclose(mag[0, 1, 2] * f[1, 2], mag[0, 5, 7] * f[5, 7], rtol=0.5)
    with pytest.raises(ValueError):
        natural_spectrum(np.zeros((3, 8, 8)))


def test_synthesize_rejects_bad_arguments():
    model = linear_unit(gabor(8))
    with pytest.raises(ValueError, match="exactly one"):
        synthesize(model, "0", unit=0, channel=0, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="sign"):
        synthesize(model, "0", unit=0, sign=0, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="param"):
        synthesize(model, "0", unit=0, param="wavelet", input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="unit 5"):
        synthesize(model, "0", unit=5, input_shape=(3, 8, 8), steps=1)
    with pytest.raises(ValueError, match="fc"):
        synthesize(model, "fc", unit=0, input_shape=(3, 8, 8))


def test_screen_resnet18_blocks_match_feature_taps(tmp_path):
    """On the project's ResNet-18 the early-stopped forward gives the same block outputs as a full one."""
    from tdann.models import FeatureTaps, build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 0.25).eval()
    x = stimuli(24, (3, 32, 32), seed=5)
    layers = ["layer1.1", "layer2.0"]
    out = screen(model, batches(x, [10, 14]), layers, 4, tmp_path / "s.h5", progress=False)
    with torch.no_grad(), FeatureTaps(model, layers) as taps:
        model(torch.from_numpy(x))
        for layer in layers:
            resp = taps.flat(layer).numpy()
            res = load_screen(out, layer)
            assert res["top_val"].shape == (resp.shape[1], 4)
            np.testing.assert_allclose(res["top_val"], -np.sort(-resp, axis=0)[:4].T, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(res["active"], (resp > 0).mean(0) >= 0.01)


def test_pick_units_spreads_over_the_sheet_among_active_units():
    from tdann.screening import pick_units

    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 10, (200, 2))
    units = np.arange(0, 200, 2)
    mean = np.where(units < 100, 1.0, -1.0) + rng.normal(0, 0.01, len(units))
    picked = pick_units({"units": units, "mean": mean}, positions, 4)
    assert len(picked) == 4 and set(picked) <= set(units[units < 100])
    d = np.linalg.norm(positions[picked][:, None] - positions[picked][None], axis=-1)
    assert d[np.triu_indices(4, 1)].min() > 2.0
    # not at the corners: each pick lies near the centre of its quarter of the sheet (2.5 mm from the edges)
    edge = np.minimum(positions[picked], 10 - positions[picked]).min(1)
    assert (edge > 1.0).all(), positions[picked]


def test_distinct_sources_skips_crops_of_a_photo_already_shown():
    sources = np.array([7, 7, 7, 3, 7, 5])  # inputs 0-2 and 4 are crops of one photo
    assert list(screening.distinct_sources(np.array([1, 0, 4, 3, 5]), sources, 2)) == [0, 3]
    assert list(screening.distinct_sources(np.array([1, 0, 4, 3, 5]), sources, 5)) == [0, 3, 4]  # only 3 sources
