"""Tests of tdann.models: torchvision equivalence, width / stem variants, feature taps, weight loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from tdann import models
from tdann.models import LAYERS, CheckpointError, FeatureTaps, build_model, input_shape, layer_shapes, load_weights


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_resnet18_state_dict_loads_into_torchvision_with_identical_outputs() -> None:
    ours = build_model("resnet18").eval()
    ref = torchvision.models.resnet18()
    ref.load_state_dict(ours.state_dict(), strict=True)
    ref.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_r3d_18_state_dict_loads_into_torchvision_with_identical_outputs() -> None:
    ours = build_model("r3d_18", num_classes=400).eval()
    ref = torchvision.models.video.r3d_18()
    ref.load_state_dict(ours.state_dict(), strict=True)
    ref.eval()
    x = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_torchvision_weights_load_into_ours() -> None:
    """The other direction: torchvision's (differently initialised) weights give torchvision's outputs."""
    ref = torchvision.models.resnet18(num_classes=10).eval()
    ours = build_model("resnet18", num_classes=10)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_width_scales_every_channel_count() -> None:
    shapes = layer_shapes(build_model("resnet18", width=0.5), (3, 64, 64))
    assert [shapes[f"layer{i}.1"][0] for i in range(1, 5)] == [32, 64, 128, 256]
    assert [shapes[f"layer{i}.0"][1:] for i in range(1, 5)] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    tiny = build_model("resnet18", width=0.001)
    assert tiny.conv1.out_channels == 1 and tiny.embed_dim == 1
    m3 = build_model("r3d_18", width=0.25)
    assert m3.stem[0].out_channels == 16 and m3.embed_dim == 128


def test_r3d_18_strides_and_time_averaged_shapes() -> None:
    shapes = layer_shapes(build_model("r3d_18", width=0.25), (3, 8, 32, 32))
    assert shapes["layer1.0"] == (16, 16, 16)
    assert shapes["layer2.0"] == (32, 8, 8)
    assert shapes["layer4.1"] == (128, 2, 2)


def test_keep_stem_keeps_resolution() -> None:
    m2 = build_model("resnet18", width=0.25, stem="keep")
    assert m2.conv1.kernel_size == (3, 3) and isinstance(m2.maxpool, torch.nn.Identity)
    assert layer_shapes(m2, (3, 32, 32))["layer1.0"] == (16, 32, 32)
    m3 = build_model("r3d_18", width=0.125, stem="keep")
    assert layer_shapes(m3, (3, 4, 16, 16))["layer1.0"] == (8, 16, 16)


@pytest.mark.parametrize(
    ("kwargs", "culprit"), [({"arch": "resnet50"}, "resnet50"), ({"arch": "resnet18", "stem": "tiny"}, "tiny")]
)
def test_unknown_arch_or_stem_raises_naming_it(kwargs: dict, culprit: str) -> None:
    with pytest.raises(ValueError, match=culprit):
        build_model(**kwargs)


@pytest.mark.parametrize(("arch", "shape"), [("resnet18", (3, 32, 32)), ("r3d_18", (3, 4, 16, 16))])
def test_embed_is_pooled_features_before_fc(arch: str, shape: tuple) -> None:
    model = build_model(arch, width=0.25, num_classes=7).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        e = model.embed(x)
        assert e.shape == (2, model.embed_dim)
        torch.testing.assert_close(model.fc(e), model(x))


def test_feature_taps_capture_block_outputs_channel_major() -> None:
    model = build_model("resnet18", width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), FeatureTaps(model) as taps:
        model(x)
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        expected = model.layer1[0](stem)
        assert set(taps.outputs) == set(LAYERS)
        torch.testing.assert_close(taps.outputs["layer1.0"], expected)
        flat = taps.flat("layer2.0")
        out = taps.outputs["layer2.0"]
        c, h, w = out.shape[1:]
        assert flat.shape == (3, c * h * w)
        assert torch.equal(flat[:, 5 * h * w + 2 * w + 3], out[:, 5, 2, 3])
    assert all(not model.get_submodule(name)._forward_hooks for name in LAYERS)


def test_feature_taps_keep_the_graph() -> None:
    model = build_model("resnet18", width=0.25)
    with FeatureTaps(model, ["layer2.0"]) as taps:
        model(torch.randn(2, 3, 32, 32))
        taps.flat("layer2.0").square().mean().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0
    assert model.layer4[0].conv1.weight.grad is None  # after the tapped block: untouched


def test_feature_taps_average_video_over_time() -> None:
    model = build_model("r3d_18", width=0.125).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        with FeatureTaps(model, ["layer1.1"], time_average=False) as raw:
            model(x)
        with FeatureTaps(model, ["layer1.1"]) as avg:
            model(x)
    assert raw.outputs["layer1.1"].ndim == 5
    torch.testing.assert_close(avg.outputs["layer1.1"], raw.outputs["layer1.1"].mean(dim=2))


def test_feature_taps_unknown_layer() -> None:
    with pytest.raises(ValueError, match="layer9.0"):
        FeatureTaps(build_model("resnet18", width=0.125), ["layer9.0"])


def test_layer_shapes_restores_training_mode() -> None:
    model = build_model("resnet18", width=0.125).train()
    layer_shapes(model, (3, 16, 16))
    assert model.training
    with pytest.raises(ValueError, match="input shape"):
        layer_shapes(model, (1, 16, 16))


def test_load_weights_round_trip_and_wrapped(tmp_path) -> None:
    model = build_model("resnet18", width=0.25, num_classes=5).eval()
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    loaded = load_weights(path, "resnet18", 0.25).eval()
    assert loaded.fc.out_features == 5
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    wrapped = tmp_path / "ckpt.pt"
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}, "step": 3}, wrapped)
    assert torch.equal(load_weights(wrapped, "resnet18", 0.25).conv1.weight, model.conv1.weight)


def test_load_weights_bad_files_raise_checkpoint_error(tmp_path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_weights(garbage, "resnet18", 0.25)
    a_list = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], a_list)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_weights(a_list, "resnet18", 0.25)
    sd = build_model("resnet18", width=0.25).state_dict()
    wrong = tmp_path / "wrong_width.pt"
    torch.save(sd, wrong)
    with pytest.raises(CheckpointError, match=r"wrong_width\.pt.*'conv1\.weight'"):
        load_weights(wrong, "resnet18", 0.5)
    missing = tmp_path / "missing.pt"
    torch.save({k: v for k, v in sd.items() if k != "layer3.1.bn2.bias"}, missing)
    with pytest.raises(CheckpointError, match="layer3.1.bn2.bias"):
        load_weights(missing, "resnet18", 0.25)
    extra = tmp_path / "extra.pt"
    torch.save({**sd, "head.weight": torch.zeros(1)}, extra)
    with pytest.raises(CheckpointError, match="head.weight"):
        load_weights(extra, "resnet18", 0.25)
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(wrong, "r3d_18", 0.25)


def test_input_shape() -> None:
    assert input_shape("resnet18", 64) == (3, 64, 64)
    assert input_shape("r3d_18", 32, 8) == (3, 8, 32, 32)
    with pytest.raises(ValueError, match="clip_len"):
        input_shape("r3d_18", 32)
    with pytest.raises(ValueError, match="vgg"):
        input_shape("vgg", 32)


@pytest.mark.parametrize("arch, width, stem, size, clip_len", [("resnet18", 0.125, "keep", 32, 1),
                                                               ("r3d_18", 0.125, "standard", 16, 4)])
def test_a_weights_file_rebuilds_its_network_without_a_sidecar(tmp_path, arch, width, stem, size, clip_len):
    torch.manual_seed(0)
    model = models.build_model(arch, width, stem).eval()
    path = models.save_weights(model, tmp_path / "w.pt", arch, width, stem, size, clip_len)
    assert models.weights_info(path) == {"format": models.WEIGHTS_FORMAT, "arch": arch, "width": width,
                                         "stem": stem, "input_size": size, "clip_len": clip_len}
    again = models.load(path).eval()
    x = torch.randn(2, *models.input_shape(arch, size, clip_len))
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    with pytest.raises(models.CheckpointError, match="w.pt: holds"):
        models.load_weights(path, arch, width * 2, stem)  # the file says what it holds


def test_full_width_weights_with_their_architecture_still_load_into_torchvision(tmp_path):
    import torchvision

    model = models.build_model("resnet18", 1.0).eval()
    path = models.save_weights(model, tmp_path / "w.pt", "resnet18", 1.0, "standard", 224)
    tv = torchvision.models.resnet18().eval()
    tv.load_state_dict(torch.load(path, weights_only=True))  # strict: the metadata is not a key
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tv(x), model(x))


def test_a_plain_state_dict_has_no_architecture_and_load_says_so(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({k: v for k, v in models.build_model("resnet18", 0.125).state_dict().items()}, path)
    assert models.weights_info(path) is None
    with pytest.raises(models.CheckpointError, match="plain.pt: the file does not say its architecture"):
        models.load(path)
    assert isinstance(models.load_weights(path, "resnet18", 0.125), torch.nn.Module)  # the explicit path works
