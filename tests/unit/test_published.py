"""The published TDANN checkpoints and positions (tdann.published), on fixtures in the release's own layout."""

import os
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from published_fixture import DIMS_224, PAPER_SIDES, vissl_checkpoint, write_checkpoint, write_positions
from tdann import models, published, tables
from tdann.published import VERSION1_SCALE, PublishedFormatError


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    final, state = write_checkpoint(root / "run_checkpoints", seed=3)
    return root, final, state


def test_the_trunk_is_torchvisions_resnet18_block_for_block(release):
    root, _final, state = release
    ours = published.load_trunk(root / "run_checkpoints")  # the folder: its final checkpoint of the highest phase
    ref = torchvision.models.resnet18()
    ref.load_state_dict(state)
    ours.eval(), ref.eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad(), models.FeatureTaps(ours, ["layer2.0", "layer4.1"]) as taps:
        ours(x)
        got = {k: v.clone() for k, v in taps.outputs.items()}
        want = {"layer2.0": ref.layer2[0](ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))}
        h = ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x)))))))
        want["layer4.1"] = ref.layer4(h)
    for layer in want:
        torch.testing.assert_close(got[layer], want[layer], rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(ours.fc.weight) == 0  # the release has no classifier: no made-up readout


def test_the_folder_resolves_to_the_final_checkpoint_of_the_highest_phase(release, tmp_path):
    root, final, _ = release
    assert published.final_checkpoint(root / "run_checkpoints") == final
    (tmp_path / "model_phase3.torch").write_bytes(b"")
    (tmp_path / "model_phase12.torch").write_bytes(b"")
    assert published.final_checkpoint(tmp_path).name == "model_phase12.torch"
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishedFormatError, match="empty: no model_final_checkpoint"):
        published.final_checkpoint(tmp_path / "empty")
    with pytest.raises(PublishedFormatError, match="no such checkpoint"):
        published.final_checkpoint(tmp_path / "absent")


class Payload:
    """Pickled code: unpickling would run ``touch <path>``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def test_a_checkpoint_that_needs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    ckpt = vissl_checkpoint(torchvision.models.resnet18().state_dict())
    ckpt["classy_state_dict"]["loss"] = Payload(marker)
    torch.save(ckpt, tmp_path / "evil.torch")
    with pytest.raises(PublishedFormatError, match=r"evil\.torch.*refused without running it.*system"):
        published.load_trunk(tmp_path / "evil.torch")
    assert not marker.exists()


def test_a_checkpoint_without_the_trunk_path_names_the_missing_key(tmp_path):
    torch.save({"classy_state_dict": {"base_model": {"meta": {}}}}, tmp_path / "c.torch")
    with pytest.raises(PublishedFormatError, match=r"c\.torch: no 'model' under checkpoint\['classy_state_dict'\]"):
        published.load_trunk(tmp_path / "c.torch")
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "plain.torch")
    with pytest.raises(PublishedFormatError, match="no 'classy_state_dict'"):
        published.load_trunk(tmp_path / "plain.torch")


def test_a_trunk_of_another_network_is_refused(tmp_path):
    torch.save(vissl_checkpoint(torchvision.models.resnet34().state_dict()), tmp_path / "r34.torch")
    with pytest.raises(PublishedFormatError, match="does not fit torchvision resnet18"):
        published.load_trunk(tmp_path / "r34.torch")


def test_version1_positions_are_rescaled_as_the_published_analysis_does(tmp_path):
    folder = write_positions(tmp_path / "pos", layers=("layer2.0", "layer4.1"))
    raw = np.load(folder / "layer2.0.npz")
    sheets = published.load_positions(folder, ["layer2.0", "layer4.1"])
    for layer, s in sheets.items():
        stored = np.load(folder / f"{layer}.npz")
        np.testing.assert_allclose(s.positions, stored["coordinates"] * VERSION1_SCALE[layer], rtol=1e-6)
        assert s.neighborhood_width == pytest.approx(float(stored["neighborhood_width"]) * VERSION1_SCALE[layer])
        assert s.shape == DIMS_224[layer] and s.n_units == np.prod(DIMS_224[layer])
        assert PAPER_SIDES[layer] * 0.9 < s.sheet_size <= PAPER_SIDES[layer] * 1.001
        np.testing.assert_array_equal(s.neighborhoods, stored["neighborhood_indices"])
    as_stored = published.load_positions(folder, ["layer2.0"], rescale="none")["layer2.0"]
    np.testing.assert_allclose(as_stored.positions, raw["coordinates"], rtol=1e-6)


def test_later_versions_are_read_as_stored(tmp_path):
    folder = write_positions(tmp_path / "pos", layers=("layer4.1",), version=2)
    s = published.load_positions(folder, ["layer4.1"])["layer4.1"]
    np.testing.assert_allclose(s.positions, np.load(folder / "layer4.1.npz")["coordinates"], rtol=1e-6)
    (folder / "version.txt").write_text("two\n")
    with pytest.raises(PublishedFormatError, match="version.txt"):
        published.load_positions(folder, ["layer4.1"])


@pytest.mark.parametrize("damage, message", [
    (lambda z: z.pop("neighborhood_width"), "lacks \\['neighborhood_width'\\]"),
    (lambda z: z.update(dims=np.array([512, 7, 6])), "do not fit dims"),
    (lambda z: z.update(neighborhood_indices=z["neighborhood_indices"] + 10**6), "neighborhood_indices"),
    (lambda z: z.update(coordinates=np.array([{"x": 1}], dtype=object)), "cannot be read as a position file"),
])
def test_a_damaged_position_file_is_named(tmp_path, damage, message):
    folder = write_positions(tmp_path / "pos", layers=("layer4.1",))
    z = dict(np.load(folder / "layer4.1.npz"))
    damage(z)
    np.savez(folder / "layer4.1.npz", **z)
    with pytest.raises(PublishedFormatError, match=f"layer4\\.1\\.npz: .*{message}"):
        published.load_positions(folder, ["layer4.1"])


def test_a_missing_layer_file_lists_the_files_there(tmp_path):
    folder = write_positions(tmp_path / "pos", layers=("layer4.1",))
    with pytest.raises(PublishedFormatError, match=r"layer2\.0\.npz: missing .*\['layer4\.1'\]"):
        published.load_positions(folder, ["layer2.0"])


def test_positions_that_do_not_fit_the_input_size_are_refused(tmp_path):
    folder = write_positions(tmp_path / "pos", layers=("layer4.1",))
    sheets = published.load_positions(folder, ["layer4.1"])
    shapes = models.layer_shapes(models.build_model("resnet18"), (3, 112, 112), ["layer4.1"])
    with pytest.raises(PublishedFormatError, match=r"dims \(512, 7, 7\) but resnet18 layer4\.1 gives \(512, 4, 4\)"):
        published.check_shapes(sheets, shapes, folder)


def _metrics(model, smooth, lam_ok):
    rows = [("layer2.0", "gratings", "ori_smoothness", smooth), ("layer2.0", "gratings", "ori_shuffled_smoothness", 0.01),
            ("layer2.0", "gratings", "ori_lambda_fit_ok", float(lam_ok)), ("layer2.0", "gratings", "ori_lambda_mm", 7.0),
            ("layer2.0", "gratings", "grid_spacing_mm", 1.3), ("layer2.0", "gratings", "ori_area_lambda2", 27.0),
            ("layer2.0", "gratings", "ori_pinwheel_density", 3.1),
            ("layer4.1", "categories", "cat_faces_patches", 2.0), ("layer4.1", "categories", "probe_accuracy", 0.9),
            ("layer4.1", "categories", "probe_chance", 0.2)]
    return pd.DataFrame([dict(stream="ventral", model=model, sheet="s", layer=ly, stimset=s, metric=m, value=v)
                         for ly, s, m, v in rows])


def test_the_published_table_pairs_each_network_with_its_control():
    metrics = pd.concat([_metrics("published-a", 0.6, True), _metrics("untrained-published-a_s0", 0.05, False)])
    t = tables.published(metrics, {"published-a": {"label": "A", "alpha": 0.25}},
                         {"published-a": "untrained-published-a_s0"}, {"v1_layer": "layer2.0", "vtc_layer": "layer4.1"})
    pick = lambda who, q: t[(t["network"] == who) & (t["quantity"] == q)].iloc[0]  # noqa: E731
    assert pick("published", "orientation smoothness index")["value"] == 0.6
    assert pick("published", "orientation smoothness index")["null"] == 0.01
    assert pick("published", "pinwheels per column spacing^2")["value"] == 3.1
    assert np.isnan(pick("untrained_control", "pinwheels per column spacing^2")["value"])  # spacing not measured
    assert pick("published", "faces: patches")["value"] == 2.0
    assert pick("published", "category probe accuracy")["null_kind"] == "chance"
    md = tables.published_markdown(t)
    assert md.startswith("### A (`published-a`, alpha 0.25)")
    assert re.search(r"\| V1\s+\| orientation smoothness index\s+\| 0\.6\s+\|", md)
