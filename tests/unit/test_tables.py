"""Results tables: emergence needs every control beaten, no collapse and a real retinotopic grid."""

import numpy as np
import pandas as pd
import pytest

from tdann import tables

CFG = {"v1_layer": "layer2.0", "vtc_layer": "layer4.1", "mt_layer": "layer3.1"}


def fake_metrics(model_smooth: float, zero_smooth: float, spread_alpha: float, grid: int = 8,
                 sheet: str = "swapopt") -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for seed in (0, 1, 2):
        for model, smooth, spread in ((f"a0.25_s{seed}", model_smooth, spread_alpha), (f"a0_s{seed}", zero_smooth, 0.9),
                                      (f"untrained-{sheet}_s{seed}", 0.05, 0.95)):
            noise = rng.normal(0, 0.01)
            for metric, value in (("ori_smoothness", smooth + noise), ("ori_shuffled_smoothness", 0.01 + noise),
                                  ("ori_far_index", smooth / 2 + noise), ("ori_shuffled_far_index", noise),
                                  ("ori_spread", spread), ("grid_h", grid), ("grid_w", grid)):
                rows.append(dict(stream="ventral", model=model, sheet=sheet, layer="layer2.0",
                                 stimset="gratings", metric=metric, value=value))
    return pd.DataFrame(rows)


def verdict(metrics: pd.DataFrame) -> pd.Series:
    table = tables.emergence(metrics, [0.0, 0.25], [0, 1, 2], "swapopt", CFG)
    assert set(table["control"]) == {"alpha=0", "shuffled", "untrained (swapopt)"}
    v = tables.verdicts(table, tables.spreads(metrics, [0, 1, 2], CFG))
    return v[(v["area"] == "V1") & (v["alpha"] == 0.25)].iloc[0]


def test_a_smooth_uncollapsed_map_on_a_real_grid_emerges():
    v = verdict(fake_metrics(0.5, 0.1, 0.85))
    assert v["beats_all"] and not v["collapsed"] and not v["coarse"] and v["emerged"]


def test_losing_to_alpha_zero_is_no_emergence():
    v = verdict(fake_metrics(0.1, 0.5, 0.85))
    assert not v["beats_all"] and not v["emerged"]


def test_a_collapsed_layer_does_not_count():
    v = verdict(fake_metrics(0.5, 0.1, 0.3))
    assert v["beats_all"] and v["collapsed"] and not v["emerged"]


def test_a_two_by_two_layer_does_not_count():
    v = verdict(fake_metrics(0.5, 0.1, 0.85, grid=2))
    assert v["coarse"] and not v["emerged"]




def test_the_settings_sweep_names_the_variant_where_a_map_emerged_and_its_cost():
    metrics = pd.concat([fake_metrics(0.5, 0.1, 0.85, grid=16, sheet="retinotopic").assign(variant="keep_stem"),
                         fake_metrics(0.5, 0.1, 0.85, grid=2, sheet="retinotopic").assign(variant="base")])
    evals = pd.DataFrame([dict(stream="ventral", variant=v, alpha=a, seed=s, task_loss=4.0 + a, train_seconds=t)
                          for v, t in (("keep_stem", 80.0), ("base", 20.0)) for a in (0.0, 0.25) for s in (0, 1, 2)])
    table = tables.settings_sweep(metrics, evals, [0.0, 0.25], [0, 1, 2], CFG).set_index("variant")
    assert list(table.index) == ["keep_stem", "base"] and set(table["area"]) == {"V1"}
    assert table.loc["keep_stem", "emerged"] and table.loc["keep_stem", "emerged_far"]
    assert not table.loc["base", "emerged"] and table.loc["base", "coarse"]
    assert np.isclose(table.loc["keep_stem", "alpha0"], 0.1, atol=0.02)
    assert np.isclose(table.loc["keep_stem", "untrained"], 0.05, atol=0.02)
    assert table.loc["keep_stem", "task_loss"] == 4.25 and table.loc["keep_stem", "task_loss_alpha0"] == 4.0
    assert table.loc["base", "train_seconds"] == 20.0 and table.loc["keep_stem", "n_seeds"] == 3


def tuning_metrics(untrained_lambda: float = 3.0) -> pd.DataFrame:
    """Column spacing 3 mm on a 1 mm grid (resolved) unless ``untrained_lambda`` says otherwise."""
    rows = []
    for seed, (n, ok) in enumerate(((3, 1), (5, 1), (4, 1))):
        for model, dsi in ((f"a25_s{seed}", 0.5 + 0.01 * seed), (f"a0_s{seed}", 0.2)):
            for metric, value in (("dir_mean_dsi", dsi), ("dir_pinwheels", n), ("dir_area_lambda2", 4.0),
                                  ("dir_lambda_fit_ok", ok), ("dir_lambda_mm", 3.0), ("grid_spacing_mm", 1.0)):
                rows.append(dict(stream="dorsal", model=model, layer="layer3.1", stimset="drifting", metric=metric,
                                 value=value))
    # the untrained network: one seed's spacing could not be measured (its 50 pinwheels must not count)
    for seed, (n, ok) in enumerate(((6, 1), (50, 0), (2, 1))):
        for metric, value in (("dir_pinwheels", n), ("dir_area_lambda2", 4.0), ("dir_lambda_fit_ok", ok),
                              ("dir_lambda_mm", untrained_lambda), ("grid_spacing_mm", 1.0)):
            rows.append(dict(stream="dorsal", model=f"untrained-swapopt_s{seed}", layer="layer3.1",
                             stimset="drifting", metric=metric, value=value))
    return pd.DataFrame(rows)


def test_comparisons_pair_alpha_with_alpha_zero_by_seed():
    trade = pd.DataFrame([dict(stream="dorsal", alpha=a, seed=s, task_loss=3.0 + a / 100 + 0.001 * s)
                          for a in (0.0, 25.0) for s in (0, 1, 2)])
    c = tables.comparisons(tuning_metrics(), trade, [0.0, 25.0], [0, 1, 2], CFG).set_index("quantity")
    assert c.loc["dir_mean_dsi", "diff_mean"] == pytest.approx(0.31)
    assert c.loc["dir_mean_dsi", "change"] == "higher" and c.loc["dir_mean_dsi", "n_seeds"] == 3
    assert c.loc["task_loss", "diff_mean"] == pytest.approx(0.25) and c.loc["task_loss", "area"] == "task"
    assert np.isnan(c.loc["dir_mean_cv", "diff_mean"]) and c.loc["dir_mean_cv", "change"] == "not measured"


def test_a_pinwheel_density_without_a_measured_lambda_is_not_compared():
    m = tuning_metrics()
    m = pd.concat([m, m[m["metric"] == "dir_pinwheels"].assign(metric="dir_pinwheel_density")], ignore_index=True)
    bad = (m["model"] == "a0_s1") & (m["metric"] == "dir_lambda_fit_ok")
    m.loc[bad, "value"] = 0
    trade = pd.DataFrame(columns=["stream", "alpha", "seed"])
    c = tables.comparisons(m, trade, [0.0, 25.0], [0, 1, 2], CFG).set_index("quantity")
    assert c.loc["dir_pinwheel_density", "n_seeds"] == 2 and c.loc["dir_pinwheel_density", "diff_mean"] == 0
    assert c.loc["dir_pinwheel_density", "change"] == "too few seeds"


def test_pinwheel_density_is_pooled_over_seeds_with_a_poisson_interval():
    p = tables.pinwheels(tuning_metrics(), [0.0, 25.0], [0, 1, 2], "swapopt", CFG)
    assert (p.loc[p["area"] == "V1", "n_seeds"] == 0).all()                 # no orientation map in these metrics
    p = p[p["area"] == "MT"].set_index("model")
    row = p.loc["alpha=25"]
    assert (row["pinwheels"], row["area_lambda2"], row["n_seeds"]) == (12, 12.0, 3)
    assert row["density"] == pytest.approx(1.0) and row["ci_low"] < 1.0 < row["ci_high"]
    assert row["ci_low"] == pytest.approx(6.2006 / 12, rel=1e-3) and not row["pi_inside"]  # Garwood, N = 12
    untrained = p.loc["untrained (swapopt)"]
    assert (untrained["pinwheels"], untrained["n_seeds"]) == (8, 2) and untrained["density"] == pytest.approx(1.0)


def test_pinwheels_of_a_spacing_the_grid_cannot_resolve_do_not_count():
    """A fitted spacing of 2 grid spacings is the grid's Nyquist limit, not a measurement (4 x 4 MT-like layers)."""
    p = tables.pinwheels(tuning_metrics(untrained_lambda=2.0), [0.0, 25.0], [0, 1, 2], "swapopt", CFG)
    untrained = p[p["area"] == "MT"].set_index("model").loc["untrained (swapopt)"]
    assert untrained["n_seeds"] == 0 and np.isnan(untrained["density"])


def probe_rows(model: str, acc: float, lo: float, stream: str = "ventral", stimset: str = "categories") -> list[dict]:
    return [dict(stream=stream, model=model, layer="layer4.1", stimset=stimset, metric=m, value=v)
            for m, v in (("probe_accuracy", acc), ("probe_ci_lo", lo), ("probe_ci_hi", acc + 0.1),
                         ("probe_chance", 0.2))]


def test_learning_marks_models_at_chance_and_emergence_leaves_them_out():
    metrics = fake_metrics(0.5, 0.1, 0.85)
    probes = []
    for seed in (0, 1, 2):
        probes += probe_rows(f"a0_s{seed}", 0.7, 0.6) + probe_rows(f"untrained-swapopt_s{seed}", 0.7, 0.6)
        probes += probe_rows(f"a0.25_s{seed}", 0.7 if seed else 0.25, 0.6 if seed else 0.15)  # seed 0: probe at chance
    metrics = pd.concat([metrics, pd.DataFrame(probes)], ignore_index=True)
    evals = pd.DataFrame([dict(stream="ventral", stage="train", alpha=a, seed=s, task_loss=ratio * np.log(63),
                               task_loss_chance=np.log(63), task_loss_ratio=ratio, task_top1=0.2,
                               task_top1_chance=1 / 63)
                          for a, s, ratio in ((0.0, 0, 0.8), (0.0, 1, 0.8), (0.0, 2, 0.97),  # a0_s2: loss at chance
                                              (0.25, 0, 0.9), (0.25, 1, 0.9), (0.25, 2, 0.9))])
    learn = tables.learning(metrics, evals, {**CFG, "probe_layer": "layer4.1"}).set_index("model")
    assert learn.loc["a0_s0", "learnt"] and learn.loc["a0.25_s1", "learnt"]
    assert not learn.loc["a0_s2", "learnt"] and learn.loc["a0_s2", "probe_above_chance"]  # loss decides
    assert not learn.loc["a0.25_s0", "learnt"] and not learn.loc["a0.25_s0", "probe_above_chance"]  # probe decides
    assert not learn.loc["untrained-swapopt_s0", "learnt"]  # a control, never "learnt"
    excluded = tables.not_learnt(learn.reset_index())
    assert excluded == {("ventral", "a0_s2"), ("ventral", "a0.25_s0")}
    table = tables.emergence(metrics, [0.0, 0.25], [0, 1, 2], "swapopt", CFG, exclude=excluded)
    table = table[table["area"] == "V1"]
    assert (table.loc[table["control"] == "alpha=0", "n_seeds"] == 1).all()  # only seed 1 keeps both models
    assert (table.loc[table["control"] == "shuffled", "n_seeds"] == 2).all()
    trade = tables.tradeoff(metrics, evals, {**CFG, "probe_layer": "layer4.1"}).set_index("model")
    assert not trade.loc["a0.25_s0", "learnt"] and trade.loc["a0.25_s0", "probe_categories"] == 0.25


def test_pinwheels_of_networks_that_did_not_learn_are_left_out():
    p = tables.pinwheels(tuning_metrics(), [0.0, 25.0], [0, 1, 2], "swapopt", CFG,
                         exclude={("dorsal", "a25_s0"), ("dorsal", "a25_s2")})
    row = p[p["area"] == "MT"].set_index("model").loc["alpha=25"]
    assert (row["n_seeds"], row["pinwheels"], row["n_not_learnt"]) == (1, 5, 2)


def test_objectives_compare_smoothness_at_matched_task_cost():
    """Objective B buys the same smoothness at half the task cost of A: at A's cost, B's curve is smoother."""
    a = fake_metrics(0.5, 0.1, 0.85, sheet="retinotopic").assign(variant="rel")
    b = fake_metrics(0.5, 0.1, 0.85, sheet="retinotopic").assign(variant="topo")
    evals = pd.DataFrame([dict(stream="ventral", variant=v, alpha=al, seed=s, task_loss=4.0 + cost * (al > 0) + 0.01 * s,
                               task_loss_ratio=(4.0 + cost * (al > 0)) / 4.5)
                          for v, cost in (("rel", 0.4), ("topo", 0.2)) for al in (0.0, 0.25) for s in (0, 1, 2)])
    labels = {("ventral", "rel"): "SL_Rel", ("ventral", "topo"): "TopoLoss"}
    table = tables.objectives(pd.concat([a, b]), evals, [0.0, 0.25], [0, 1, 2], CFG, labels)
    t = table.set_index(["objective", "alpha"])
    assert set(table["area"]) == {"V1"} and len(table) == 4
    assert t.loc[("SL_Rel", 0.25), "task_cost"] == pytest.approx(0.4)
    assert t.loc[("TopoLoss", 0.25), "task_cost"] == pytest.approx(0.2)
    assert t.loc[("SL_Rel", 0.0), "task_cost"] == 0.0
    assert t.loc[("SL_Rel", 0.25), "vs_shuffled_ci_low"] > 0
    # TopoLoss at cost 0.2 against SL_Rel's curve (0.1 at cost 0, 0.5 at 0.4): 0.3, so +0.2 for TopoLoss
    assert t.loc[("TopoLoss", 0.25), "smoothness_matched_SL_Rel"] == pytest.approx(0.3, abs=0.02)
    assert t.loc[("TopoLoss", 0.25), "matched_diff_SL_Rel"] == pytest.approx(0.2, abs=0.02)
    assert t.loc[("SL_Rel", 0.25), "n_learnt"] == 0 and t.loc[("TopoLoss", 0.25), "n_learnt"] == 3  # 0.98 and 0.93 x chance
    # SL_Rel's cost 0.4 lies beyond TopoLoss's curve: no matched value
    assert np.isnan(t.loc[("SL_Rel", 0.25), "matched_diff_TopoLoss"])
