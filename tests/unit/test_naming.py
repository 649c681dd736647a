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
