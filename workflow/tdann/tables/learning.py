"""Did each network learn (held-out loss against chance, the primary probe against chance), and the alpha trade-off."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import probe_layer_of
from ..naming import MAPS, parse_model, run_name
from ._common import PROBES, _value


def _probe_values(metrics: pd.DataFrame, stream: str, model: str, layer: str | None) -> dict[str, float]:
    """``probe_<stimset>`` accuracy, ``_ci_lo``, ``_ci_hi`` and ``_chance`` of one model (NaN if not measured)."""
    out = {}
    for stimset in PROBES.get(stream, ()):
        for suffix, metric in (("", "probe_accuracy"), ("_ci_lo", "probe_ci_lo"), ("_ci_hi", "probe_ci_hi"),
                               ("_chance", "probe_chance")):
            out[f"probe_{stimset}{suffix}"] = _value(metrics, stream, model, layer, stimset, metric)
    return out


def learning(metrics: pd.DataFrame, evals: pd.DataFrame, analysis_cfg: dict,
             loss_ratio: float = 0.95) -> pd.DataFrame:
    """Did each network learn? One row per model: trained (stage 3 and stage 1) and the untrained controls.

    Held-out contrastive loss and top-1 beside their chance values (``tdann.chance.chance_levels``) and the linear
    probes with their 95% intervals beside chance (``tdann.probe``). A trained model ``learnt`` when its held-out
    loss is below ``loss_ratio`` x chance and its primary probe's interval (:data:`PROBES`) lies above chance; an
    untrained
    network is a control and never "learnt". Tables and figures mark models that did not learn, and
    :func:`emergence` leaves them out.
    """
    cfg = dict(analysis_cfg)
    rows = []
    ev = {(e["stream"], "pretrain" if e["stage"] == "pretrain" else run_name(e["alpha"], e["seed"])): e
          for e in evals.to_dict("records")}
    for (stream, model), _ in metrics.groupby(["stream", "model"], sort=False):
        info = parse_model(model)
        row = dict(stream=stream, model=model, kind=info["kind"], alpha=info["alpha"], seed=info["seed"])
        e = ev.get((stream, model), {})
        for key in ("task_loss", "task_loss_chance", "task_loss_ratio", "task_top1", "task_top1_chance"):
            row[key] = float(e.get(key, np.nan))
        probes = _probe_values(metrics, stream, model, probe_layer_of(cfg, stream))
        row.update(probes)
        primary = PROBES.get(stream, (None,))[0]
        row["probe_layer"] = probe_layer_of(cfg, stream)
        row["probe_above_chance"] = bool(primary and probes[f"probe_{primary}_ci_lo"] > probes[f"probe_{primary}_chance"])
        row["learnt"] = bool(info["kind"] in ("trained", "pretrain") and row["task_loss_ratio"] < loss_ratio
                             and row["probe_above_chance"])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["stream", "kind", "alpha", "seed"]).reset_index(drop=True)


def not_learnt(learning_table: pd.DataFrame) -> set[tuple[str, str]]:
    """(stream, model) of the trained models that did not learn: left out of every emergence verdict."""
    t = learning_table[learning_table["kind"].isin(["trained", "pretrain"]) & ~learning_table["learnt"].astype(bool)]
    return set(zip(t["stream"], t["model"]))


def tradeoff(metrics: pd.DataFrame, evals: pd.DataFrame, analysis_cfg: dict,
             learning_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trained model (stream, alpha, seed): task metrics on held-out data (contrastive loss and top-1
    with their chance values, linear probes) and whether it learnt (:func:`learning`, computed unless
    ``learning_table`` gives it), beside map smoothness."""
    cfg = dict(analysis_cfg)
    table = learning(metrics, evals, cfg) if learning_table is None else learning_table
    learnt = table.set_index(["stream", "model"])["learnt"].to_dict()
    ev = evals[evals["stage"] == "train"].copy()
    numeric = [c for c in ev.columns if c not in ("stream", "stage") and pd.api.types.is_numeric_dtype(ev[c])]
    rows = []
    for _, e in ev.iterrows():
        model = run_name(e["alpha"], e["seed"])
        row = {"stream": e["stream"], "alpha": e["alpha"], "seed": int(e["seed"]), "model": model}
        row.update({c: e[c] for c in numeric if c not in ("alpha", "seed")})
        row.update(_probe_values(metrics, e["stream"], model, probe_layer_of(cfg, e["stream"])))
        row["learnt"] = bool(learnt.get((e["stream"], model), False))
        m = metrics[(metrics["stream"] == e["stream"]) & (metrics["model"] == model)]
        for stream, area, key, stimset, prefix in MAPS:
            if stream != e["stream"]:
                continue
            sel = m[(m["layer"] == cfg[key]) & (m["stimset"] == stimset)]
            for suffix in ("smoothness", "far_index", "spread"):
                val = sel.loc[sel["metric"] == prefix + suffix, "value"]
                if len(val):
                    row[f"{area}_{prefix}{suffix}"] = float(val.iloc[0])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["stream", "alpha", "seed"]).reset_index(drop=True)
