"""The run contract: how a model is named in paths, tables and figures.

A stage-3 model is ``a<alpha>_s<seed>`` (``a2.5_s0``); the stage-1 network is ``pretrain``; the untrained controls
are ``untrained-<sheet>_s<seed>`` (``untrained-swapopt_s1``); a published TDANN network imported from its
checkpoint is ``published-<name>`` (``published-lw0.25``), and its untrained control on the same positions
``untrained-published-<name>_s<seed>``. Alpha is written in plain positional decimals, the
shortest spelling that reads back as the same float (``0.00001``, never ``1e-05``), so that every valid alpha
round-trips through a path and matches :data:`ALPHA_PATTERN`. Rules, tables and figures all use these functions,
and :data:`MAPS`, the table of which stimulus set measures which area.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

#: the alpha wildcard (Snakemake ``wildcard_constraints``)
ALPHA_PATTERN = r"\d+(\.\d+)?"
#: a published network's id (its name has no "_", so that ``_s<seed>`` stays unambiguous)
PUBLISHED_NAME_PATTERN = r"[A-Za-z0-9.-]+"
PUBLISHED_PATTERN = rf"published-{PUBLISHED_NAME_PATTERN}"
#: every model id: stage 3, stage 1, untrained controls, published networks
MODEL_PATTERN = (rf"pretrain|untrained-(retinotopic|swapopt|{PUBLISHED_PATTERN})_s\d+|a{ALPHA_PATTERN}_s\d+"
                 rf"|{PUBLISHED_PATTERN}")


#: (stream, area, analysis config key of its layer, stimulus set, metric prefix): which stimuli measure which map,
#: for rules, tables and figures alike
MAPS = (
    ("ventral", "V1", "v1_layer", "gratings", "ori_"),
    ("ventral", "VTC", "vtc_layer", "categories", "cat_faces_t_"),
    ("dorsal", "V1", "v1_layer", "drifting", "ori_"),
    ("dorsal", "MT", "mt_layer", "drifting", "dir_"),
)


def map_stimset(stream: str, area: str) -> str:
    """The stimulus set that measures ``area``'s map in ``stream`` (:data:`MAPS`); ValueError naming both if none."""
    for st, ar, _, stimset, _ in MAPS:
        if (st, ar) == (stream, area):
            return stimset
    raise ValueError(f"no {area} map in the {stream} stream; maps: {[(m[0], m[1]) for m in MAPS]}")


def format_alpha(alpha: float | int | str) -> str:
    """0.0 -> '0', 0.25 -> '0.25', 25.0 -> '25', 1e-5 -> '0.00001'; raises ValueError for negative or non-finite
    values (no path could hold them)."""
    value = float(alpha)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    text = format(Decimal(repr(value)), "f")  # repr: the shortest digits that round-trip; "f": no exponent
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def run_name(alpha: float, seed: int) -> str:
    """The stage-3 model id of (alpha, seed)."""
    return f"a{format_alpha(alpha)}_s{int(seed)}"


def untrained_name(sheet: str, seed: int) -> str:
    return f"untrained-{sheet}_s{int(seed)}"


def published_name(name: str) -> str:
    """The model id of the published network configured as ``published.models.<name>``."""
    if not re.fullmatch(PUBLISHED_PATTERN, f"published-{name}"):
        raise ValueError(f"published model name {name!r}: use letters, digits, '.' and '-' only")
    return f"published-{name}"


def init_name(seed: int) -> str:
    """The weights file id of the untrained network of ``seed`` (shared by every untrained control of that seed)."""
    return f"init_s{int(seed)}"


#: every weights id: stage 1, the untrained networks, stage 3, the published networks
WEIGHTS_PATTERN = rf"pretrain|init_s\d+|a{ALPHA_PATTERN}_s\d+|{PUBLISHED_PATTERN}"


def is_published(model: str) -> bool:
    """A published network or its untrained control (both analysed on the published positions)."""
    return model.startswith("published-") or model.startswith("untrained-published-")


def weights_of(model: str) -> str:
    """The weights a model id uses: ``untrained-<sheet>_s<seed>`` -> ``init_s<seed>``, any other id -> itself."""
    info = parse_model(model)
    return init_name(info["seed"]) if info["kind"].startswith("untrained-") else model


def sheet_of(model: str, positions: str) -> str:
    """The sheet (positions) a model id is analysed on: a published network's own, the retinotopic sheet for stage 1,
    an untrained control's named sheet, and ``positions`` (the sweep's sheet) for a stage-3 model."""
    info = parse_model(model)
    if info["kind"] == "published":
        return model
    if info["kind"] == "pretrain":
        return "retinotopic"
    if info["kind"].startswith("untrained-"):
        return info["kind"].removeprefix("untrained-")
    return positions


def parse_model(model: str) -> dict:
    """'a0.25_s1' -> alpha 0.25, seed 1, kind 'trained'; 'untrained-swapopt_s0' -> kind 'untrained-swapopt';
    'pretrain' -> kind 'pretrain'. Raises ValueError naming the id if it is none of these."""
    if not re.fullmatch(MODEL_PATTERN, model):
        raise ValueError(f"not a model id: {model!r} (expected a<alpha>_s<seed>, pretrain, untrained-<sheet>_s<seed> "
                         "or published-<name>)")
    if model.startswith("published-"):
        return {"kind": "published", "alpha": math.nan, "seed": math.nan}
    if model == "pretrain":
        return {"kind": "pretrain", "alpha": 0.0, "seed": 0}
    head, seed = model.rsplit("_s", 1)
    if head.startswith("untrained-"):
        return {"kind": head, "alpha": math.nan, "seed": int(seed)}
    return {"kind": "trained", "alpha": float(head[1:]), "seed": int(seed)}
