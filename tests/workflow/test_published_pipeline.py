"""The published TDANN networks through the rules (config/published.yaml), on a release written in OSF's layout
by the test: import, responses, metrics, table, figure; no training."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from checkout import copy_checkout
from published_fixture import POSITIONS, RUN, write_release
from tdann import positions

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def overlay(release: Path) -> dict:
    """config/published.yaml pointed at the fixture release, with small stimulus sets. Model "simclr-a0" holds
    torchvision's resnet18 drawn with seed 0, i.e. the very weights of the untrained control (control_seed 0)."""
    models = {
        "simclr-a0": {"checkpoint": f"checkpoints/{RUN}_lw0_checkpoints", "positions": POSITIONS, "alpha": 0.0,
                      "label": "fixture, alpha 0"},
        "simclr-a0.25": {"checkpoint": f"checkpoints/{RUN}_checkpoints/model_final_checkpoint_phase199.torch",
                         "positions": POSITIONS, "alpha": 0.25, "label": "fixture, alpha 0.25"},
    }
    return {
        "datasets": {"tdann": {"kind": "local", "path": str(release)}, "floc": {"kind": "local", "path": str(release)}},
        "published": {"models": models},
        "stimuli": {"gratings": {"orientations": 8, "sfs": [4, 8], "phases": 2, "colours": ["gray"]},
                    "categories": {"n_per_category": 6, "seed": 0, "floc_dataset": None}},
        "analysis": {"n_shuffles": 2, "grid_px": 32, "batch_size": 16, "smoothness_samples": 3,
                     "smoothness_sample_size": 300},
    }


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--configfile", "config/published.yaml",
                           "test.yaml", *args], cwd=cwd, capture_output=True, text=True, timeout=1200,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.fixture(scope="module")
def published_run(tmp_path_factory):
    work = copy_checkout(tmp_path_factory.mktemp("published"))
    release = write_release(tmp_path_factory.mktemp("osf") / "tdann", {"lw0": 0, "": 1})
    # published.yaml has three networks; the overlay replaces the release paths of two and drops the third
    cfg = yaml.safe_load((work / "config/published.yaml").read_text())
    cfg["published"]["models"] = {}
    (work / "config/published.yaml").write_text(yaml.safe_dump(cfg))
    (work / "test.yaml").write_text(yaml.safe_dump(overlay(release)))
    out = snakemake(work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    return work, work / "results/published"


def test_the_published_networks_go_through_the_rules_to_a_table_and_a_figure(published_run):
    _work, res = published_run
    for f in ("tables/published.csv", "tables/published.md", "figures/published_maps.png",
              "figures/published_maps.pdf"):
        assert (res / f).stat().st_size > 0, f
    t = pd.read_csv(res / "tables/published.csv")
    assert set(t["model"]) == {"published-simclr-a0", "published-simclr-a0.25"}
    assert set(t["network"]) == {"published", "untrained_control"}
    assert set(t["area"]) == {"V1", "VTC"}
    assert not list((res / "models/ventral").glob("a*_s*"))  # nothing was trained
    assert not (res / "sheets/ventral/retinotopic.h5").exists()


def test_the_imported_sheet_holds_the_rescaled_published_positions(published_run):
    _work, res = published_run
    sheets = positions.load_sheets(res / "sheets/ventral/published-simclr-a0.h5")
    assert set(sheets) == {"layer2.0", "layer4.1"}
    assert sheets["layer2.0"].shape == (128, 28, 28) and 33 < sheets["layer2.0"].sheet_size <= 36.76
    assert 63 < sheets["layer4.1"].sheet_size <= 70.01
    with h5py.File(res / "sheets/ventral/published-simclr-a0.h5") as f:
        assert f.attrs["rescaled"] and f.attrs["positions_version"] == 1
        assert f.attrs["source_checkpoint"].endswith("model_final_checkpoint_phase199.torch")


def test_imported_weights_respond_exactly_as_the_same_weights_built_here(published_run):
    """The release's seed-0 network is torchvision's resnet18 under manual_seed(0), which this pipeline's own
    untrained seed-0 network reproduces: through VISSL keys, import, and responses, the two must agree exactly."""
    _work, res = published_run
    for stimset in ("gratings", "categories"):
        with h5py.File(res / f"responses/ventral/published-simclr-a0/{stimset}.h5") as a, \
                h5py.File(res / f"responses/ventral/init_s0/{stimset}.h5") as b:
            assert set(a["responses"]) == {"layer2.0", "layer4.1"}
            for layer in a["responses"]:
                np.testing.assert_array_equal(a["responses"][layer][()], b["responses"][layer][()])
    other = h5py.File(res / "responses/ventral/published-simclr-a0.25/gratings.h5")["responses/layer4.1"][()]
    assert not np.allclose(other, h5py.File(res / "responses/ventral/init_s0/gratings.h5")["responses/layer4.1"][()])


def test_a_release_path_that_is_not_there_is_named(published_run, tmp_path):
    work, _res = published_run
    bad = yaml.safe_load((work / "test.yaml").read_text())
    bad["published"]["models"]["simclr-a0.25"]["positions"] = "positions/nope"
    bad["results"] = str(tmp_path / "r")
    (work / "bad.yaml").write_text(yaml.safe_dump(bad))
    out = subprocess.run([str(BIN / "snakemake"), "--cores", "1", "--configfile", "config/published.yaml",
                          "bad.yaml", "--", str(tmp_path / "r/sheets/ventral/published-simclr-a0.25.h5")], cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode != 0, out.stdout[-2000:]
    assert (tmp_path / "r/logs/import_published").is_dir(), (out.stdout + out.stderr)[-3000:]
    log = (tmp_path / "r/logs/import_published/simclr-a0.25.log").read_text()
    assert "positions/nope: no such positions folder" in log
