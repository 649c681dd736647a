"""Linear probes (tdann.probe): exact intervals, chance, splits, and a probe that finds a linear code and not noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tdann import metrics, probe


def test_probe_finds_a_linear_code_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 40)
    test = np.tile(np.arange(40) % 2 == 1, 5)
    means = rng.normal(0, 1, (5, 30))
    coded = means[labels] + rng.normal(0, 2.5, (200, 30))
    good = probe.linear_probe(coded, labels, test)
    assert 0.5 < good["accuracy"] < 1 and good["above_chance"] and good["chance"] == 0.2
    assert good["n_test"] == 100 and good["n_train"] == 100 and good["ci_lo"] < good["accuracy"] < good["ci_hi"]
    noise = probe.linear_probe(rng.normal(0, 1, (200, 30)), labels, test)
    assert noise["ci_lo"] < 0.2 + 0.05 and not noise["above_chance"]


def test_clopper_pearson_matches_known_values() -> None:
    lo, hi = probe.clopper_pearson(5, 10)
    assert lo == pytest.approx(0.1871, abs=1e-4) and hi == pytest.approx(0.8129, abs=1e-4)
    assert probe.clopper_pearson(0, 10)[0] == 0.0 and probe.clopper_pearson(10, 10)[1] == 1.0


def test_pooled_features_are_the_channel_means() -> None:
    r = np.arange(2 * 3 * 4, dtype=float).reshape(2, 12)  # 2 stimuli, 3 channels x (2 x 2)
    np.testing.assert_allclose(probe.pooled_features(r, (3, 2, 2)), r.reshape(2, 3, 4).mean(axis=2))
    with pytest.raises(probe.ProbeError, match="channels"):
        probe.pooled_features(r, (5, 2, 2))


def test_splits_hold_out_phase_dot_pattern_and_images() -> None:
    drifting = pd.DataFrame({"direction": [0, 0, 90, 90], "phase": [0.0, np.pi, 0.0, np.pi]})
    col, test = probe.probe_split(drifting, "drifting")
    assert col == "direction" and list(test) == [False, True, False, True]
    dots = pd.DataFrame({"direction": [0, 0, 90, 90], "repeat": [0, 1, 0, 1]})
    assert list(probe.probe_split(dots, "dots")[1]) == [False, True, False, True]
    cats = pd.DataFrame({"category": ["faces"] * 4 + ["places"] * 4})
    assert list(probe.probe_split(cats, "categories")[1]) == [False, True] * 4
    assert probe.probe_split(pd.DataFrame({"orientation": [0, 90]}), "gratings") is None
    assert probe.probe_split(pd.DataFrame({"direction": [0, 90]}), "dots") is None  # one pattern: no probe


def test_probe_rejects_unusable_splits() -> None:
    x = np.zeros((4, 3))
    with pytest.raises(probe.ProbeError, match="no training example"):
        probe.linear_probe(x, ["a", "a", "b", "b"], [False, False, True, True])
    with pytest.raises(probe.ProbeError, match="non-finite"):
        probe.linear_probe(np.full((4, 3), np.nan), ["a", "b", "a", "b"], [False, False, True, True])


def test_biology_anchors_count_responsive_units() -> None:
    cv = np.linspace(0, 1, 101)
    out = metrics.biology_anchors(cv, np.full(101, 2.0))
    assert out["ori_cv_median"] == pytest.approx(0.5) and out["ori_frac_selective"] == pytest.approx(60 / 101)
    assert out["ori_anchor_units"] == 101
    silent = metrics.biology_anchors(cv, np.full(101, 0.5))  # none above the published mean response of 1
    assert np.isnan(silent["ori_cv_median"]) and silent["ori_anchor_units"] == 0


def test_ringach_file_read_and_compared(tmp_path) -> None:
    from scipy import io

    rng = np.random.default_rng(0)
    macaque = rng.beta(2, 2, 308)
    io.savemat(tmp_path / "ringach_2002_db.mat", {"db": {"orivar": macaque[:, None], "other": 1.0}})
    got = metrics.load_ringach(tmp_path)
    np.testing.assert_allclose(np.sort(got), np.sort(macaque))
    same = metrics.biology_anchors(rng.beta(2, 2, 500), np.full(500, 2.0), macaque_cv=got)
    shifted = metrics.biology_anchors(rng.beta(5, 1, 500), np.full(500, 2.0), macaque_cv=got)
    assert same["ori_cv_ks_d"] < 0.1 < shifted["ori_cv_ks_d"] and shifted["ori_cv_ks_p"] < 1e-6
    io.savemat(tmp_path / "ringach_2002_db.mat", {"x": 1.0})
    with pytest.raises(ValueError, match="orivar"):
        metrics.load_ringach(tmp_path)
    with pytest.raises(FileNotFoundError, match="ringach_2002_db.mat"):
        metrics.load_ringach(tmp_path / "empty")
