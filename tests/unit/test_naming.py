"""The run contract: model ids round-trip, alpha never takes an exponent, bad ids are named."""

import math
import re

import pytest

from tdann import naming


@pytest.mark.parametrize("alpha, text", [(0.0, "0"), (0, "0"), (0.25, "0.25"), (25.0, "25"), (2.5, "2.5"),
                                         (0.00001, "0.00001"), (1e-12, "0.000000000001"), (1e20, "100000000000000000000"),
                                         (0.1 + 0.2, "0.30000000000000004")])
def test_alpha_is_written_in_positional_decimals_that_read_back(alpha, text):
    assert naming.format_alpha(alpha) == text
    assert re.fullmatch(naming.ALPHA_PATTERN, text)
    assert float(text) == float(alpha)


@pytest.mark.parametrize("bad", [-0.5, math.inf, math.nan, "x"])
def test_alpha_that_no_path_can_hold_is_refused(bad):
    with pytest.raises(ValueError):
        naming.format_alpha(bad)


@pytest.mark.parametrize("alpha, seed", [(0.0, 0), (0.00001, 3), (2.5, 12)])
def test_run_names_round_trip(alpha, seed):
    name = naming.run_name(alpha, seed)
    assert re.fullmatch(naming.MODEL_PATTERN, name)
    info = naming.parse_model(name)
    assert info == {"kind": "trained", "alpha": alpha, "seed": seed}


def test_controls_parse_and_garbage_is_named():
    assert naming.parse_model("pretrain")["kind"] == "pretrain"
    info = naming.parse_model(naming.untrained_name("swapopt", 4))
    assert info["kind"] == "untrained-swapopt" and info["seed"] == 4 and math.isnan(info["alpha"])
    with pytest.raises(ValueError, match="a1e-05_s0"):
        naming.parse_model("a1e-05_s0")


def test_weights_and_sheets_of_every_kind_of_model():
    assert naming.weights_of("untrained-swapopt_s3") == naming.init_name(3) == "init_s3"
    assert naming.weights_of("a2.5_s1") == "a2.5_s1" and naming.weights_of("pretrain") == "pretrain"
    assert naming.weights_of("untrained-published-lw0.25_s0") == "init_s0"
    assert naming.sheet_of("a2.5_s1", "swapopt") == "swapopt"
    assert naming.sheet_of("pretrain", "swapopt") == "retinotopic"
    assert naming.sheet_of("untrained-retinotopic_s2", "swapopt") == "retinotopic"
    assert naming.sheet_of("untrained-published-lw0.25_s0", "swapopt") == "published-lw0.25"
    assert naming.sheet_of("published-lw0.25", "swapopt") == "published-lw0.25"
    assert naming.is_published("untrained-published-lw0.25_s0") and not naming.is_published("untrained-swapopt_s0")
    for weights in ("pretrain", "init_s4", "a0.25_s1", "published-lw0.25"):
        assert re.fullmatch(naming.WEIGHTS_PATTERN, weights)
    with pytest.raises(ValueError, match="init_s0"):
        naming.weights_of("init_s0")  # a weights id, not a model id


def test_every_map_names_its_stimulus_set():
    assert naming.map_stimset("ventral", "V1") == "gratings" and naming.map_stimset("dorsal", "V1") == "drifting"
    assert naming.map_stimset("dorsal", "MT") == "drifting" and naming.map_stimset("ventral", "VTC") == "categories"
    with pytest.raises(ValueError, match="MT map in the ventral"):
        naming.map_stimset("ventral", "MT")
