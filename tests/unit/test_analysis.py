"""Tests of tdann.analysis with analytic curves and synthetic maps whose metrics are known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import iv

import oracles
from tdann import analysis as A
from tdann.analysis.patches import _pair_subset

ORI = np.arange(0.0, 180.0, 11.25)   # 16 orientations
DIRS = np.arange(0.0, 360.0, 15.0)   # 24 directions


def von_mises(theta_deg: np.ndarray, kappa: float, mu_deg: float, k: int) -> np.ndarray:
    return np.exp(kappa * np.cos(k * np.radians(theta_deg - mu_deg)))


# ---------------------------------------------------------------------------------------- tuning


def test_tuning_curves_average_phase_and_pick_best_condition() -> None:
    grid = pd.MultiIndex.from_product([ORI, [0.04, 0.08, 0.16], [0, 90, 180, 270]],
                                      names=["orientation", "sf", "phase"]).to_frame(index=False)
    grid = grid.sample(frac=1.0, random_state=0).reset_index(drop=True)   # order must not matter
    rng = np.random.default_rng(0)
    gain = {0.04: np.array([1.0, 3.0]), 0.08: np.array([2.0, 1.0]), 0.16: np.array([0.5, 0.5])}
    shape = np.stack([von_mises(grid.orientation, 2.0, 30, 2), von_mises(grid.orientation, 1.0, 120, 2)], 1)
    phase_noise = rng.standard_normal((len(grid), 2))
    phase_noise -= pd.DataFrame(phase_noise).groupby([grid.orientation, grid.sf]).transform("mean").to_numpy()
    resp = shape * np.stack([gain[s] for s in grid.sf]) + phase_noise   # noise averages out over phase
    angles, curves, best = A.tuning_curves(resp, grid, "orientation")
    np.testing.assert_allclose(angles, ORI)
    np.testing.assert_array_equal(best["sf"], [0.08, 0.04])
    np.testing.assert_allclose(curves[0], 2.0 * von_mises(ORI, 2.0, 30, 2), rtol=1e-10)
    np.testing.assert_allclose(curves[1], 3.0 * von_mises(ORI, 1.0, 120, 2), rtol=1e-10)
    hole = ~((grid.sf == 0.16) & (grid.orientation == 0))   # one condition lacks one angle
    with pytest.raises(ValueError, match="sf"):
        A.tuning_curves(resp[hole.to_numpy()], grid[hole], "orientation")
    with pytest.raises(ValueError, match="angle column"):
        A.tuning_curves(resp, grid, "direction")


@pytest.mark.parametrize("kappa,mu", [(0.7, 20.0), (2.5, 133.0)])
def test_direction_von_mises_cv_equals_bessel_ratio(kappa: float, mu: float) -> None:
    m = A.direction_metrics(DIRS, von_mises(DIRS, kappa, mu, 1), fit=True).iloc[0]
    assert m.pref_dir == pytest.approx(mu, abs=1e-6)
    assert m.cv_dir == pytest.approx(1 - iv(1, kappa) / iv(0, kappa), abs=1e-9)
    assert m.dsi_vector == pytest.approx(iv(1, kappa) / iv(0, kappa), abs=1e-9)
    assert m.axial == pytest.approx(iv(2, kappa) / iv(0, kappa), abs=1e-9)
    assert m.vm_kappa == pytest.approx(kappa, rel=1e-4)
    assert m.vm_pref_dir == pytest.approx(mu, abs=1e-4)


def test_orientation_von_mises_cv_and_fit() -> None:
    kappa, mu = 1.8, 160.0
    m = A.orientation_metrics(ORI, von_mises(ORI, kappa, mu, 2)).iloc[0]
    assert m.pref_ori == pytest.approx(mu, abs=1e-6)
    assert m.cv_ori == pytest.approx(1 - iv(1, kappa) / iv(0, kappa), abs=1e-9)
    # baseline + amplitude form with noise: the fit recovers the generating parameters
    rng = np.random.default_rng(1)
    n = 200
    kap, pref = rng.uniform(0.5, 6, n), rng.uniform(0, 180, n)
    amp, base = rng.uniform(1, 3, n), rng.uniform(0, 1, n)
    curves = base[:, None] + amp[:, None] * np.exp(
        kap[:, None] * (np.cos(2 * np.radians(ORI[None] - pref[:, None])) - 1))
    fit = A.orientation_metrics(ORI, curves + 0.01 * rng.standard_normal(curves.shape))
    assert np.median(np.abs(fit.vm_kappa - kap) / kap) < 0.05
    assert np.median(A.circular_difference(fit.vm_pref_ori, pref, 180)) < 1.0
    assert np.median(np.abs(fit.vm_baseline - base)) < 0.02
    assert fit.vm_r2.min() > 0.95
    np.testing.assert_allclose(fit.peak_to_peak, np.ptp(curves, 1), atol=0.06)


def test_negative_curves_are_shifted_by_their_minimum() -> None:
    r = von_mises(ORI, 1.0, 45, 2)
    shifted = A.orientation_metrics(ORI, r - 5.0, fit=False).iloc[0]
    expected = A.orientation_metrics(ORI, r - r.min(), fit=False).iloc[0]
    assert shifted.cv_ori == pytest.approx(expected.cv_ori)
    assert 0 < shifted.cv_ori < 1
    # a non-negative curve is not shifted, so a constant offset lowers selectivity (higher CV)
    assert A.orientation_metrics(ORI, r + 5.0, fit=False).cv_ori[0] > A.orientation_metrics(ORI, r, fit=False).cv_ori[0]


def test_axial_curve_and_classic_dsi() -> None:
    axial = 1.0 + np.cos(2 * np.radians(DIRS - 30.0))
    m = A.direction_metrics(DIRS, axial).iloc[0]
    assert m.dsi_vector == pytest.approx(0.0, abs=1e-12)
    assert m.axial == pytest.approx(0.5, abs=1e-12)
    assert m.pref_axis == pytest.approx(30.0, abs=1e-9)
    assert m.dsi_classic == pytest.approx(0.0, abs=1e-12)
    curve = np.full(DIRS.size, 0.5)
    curve[DIRS == 90] = 3.0
    curve[DIRS == 270] = 1.0
    m = A.direction_metrics(DIRS, curve).iloc[0]
    assert m.dsi_classic == pytest.approx((3 - 1) / (3 + 1))
    assert m.pref_dir == pytest.approx(90.0)
    assert np.isnan(A.direction_metrics(DIRS, np.zeros(DIRS.size)).cv_dir[0])


def test_speed_tuning_recovers_log_gaussian() -> None:
    speeds = 0.5 * 2.0 ** np.arange(8)
    v0, q = 0.3, np.log((speeds + 0.3) / 0.3)
    prefs, sigmas = np.array([1.0, 4.0, 20.0]), np.array([1.0, 1.25, 1.6])
    qp = np.log((prefs + v0) / v0)
    curves = 0.2 + 2.0 * np.exp(-((q[None] - qp[:, None]) ** 2) / (2 * sigmas[:, None] ** 2))
    out = A.speed_tuning(speeds, curves, v0=v0)
    np.testing.assert_allclose(out.pref_speed, prefs, rtol=1e-3)
    np.testing.assert_allclose(out.sigma, sigmas, rtol=1e-3)
    assert out.r2.min() > 0.999
    with pytest.raises(ValueError, match="speed curves"):
        A.speed_tuning(speeds, curves[:, :-1])


def test_category_selectivity_equals_welch_t_and_is_nan_safe() -> None:
    rng = np.random.default_rng(2)
    cats = ["faces", "bodies", "characters", "places", "objects", "limbs"]
    labels = np.repeat(cats, [12, 10, 8, 9, 11, 7])
    resp = rng.standard_normal((labels.size, 5))
    resp[labels == "faces", 0] += 2.0
    resp[:, 4] = 1.0                                    # constant unit
    t = A.category_selectivity(resp, labels)
    assert list(t.columns) == cats[:5]
    for c in cats[:5]:
        ref = stats.ttest_ind(resp[labels == c, :4], resp[labels != c, :4], equal_var=False).statistic
        np.testing.assert_allclose(t[c].to_numpy()[:4], ref, rtol=1e-12)
    assert t.faces[0] > 3 and t.isna().iloc[4].all()
    with pytest.raises(ValueError, match="scenes"):
        A.category_selectivity(resp, labels, categories=("faces", "scenes"))


# ---------------------------------------------------------------------------------------- maps


def test_smoothness_smooth_map_shuffled_null_and_collapse() -> None:
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 10, (3000, 2))
    pref = np.mod(18.0 * pos[:, 0], 180.0)             # one orientation cycle across the sheet
    strength = rng.uniform(size=3000)
    s = A.smoothness(pos, pref, 180, weights=strength, rng=0)
    assert s["n_units"] == 750
    assert s["index"] > 0.8 and s["far_index"] > 0.8
    assert np.all(np.diff(s["curve"]) > 0)              # difference grows with distance
    assert s["spread"] > 0.9 and s["chance"] == pytest.approx(45, abs=2)
    null = A.shuffled_smoothness(pos, pref, 180, weights=strength, rng=0, n_shuffles=4)
    assert abs(null["index"]) < 0.1 and abs(null["far_index"]) < 0.1
    np.testing.assert_allclose(null["bin_centres"], s["bin_centres"])
    collapsed = A.smoothness(pos, np.mod(10 + 3 * rng.standard_normal(3000), 180), 180, rng=0)
    assert collapsed["spread"] < 0.01 and collapsed["chance"] < 5
    assert A.smoothness(pos, pos[:, 0], None, max_pairs=1000, rng=0)["index"] > 0.8
    with pytest.raises(ValueError, match="positions"):
        A.smoothness(pos[:10], pref, 180)


def test_grid_map_recovers_a_sampled_field() -> None:
    rng = np.random.default_rng(4)
    z = oracles.gaussian_random_field(64, 6, 0.8, rng=5)
    pos = rng.uniform(0, 32.0, (20000, 2))              # 32 mm sheet, 0.5 mm pixels
    ij = np.minimum((pos / 0.5).astype(int), 63)
    gm = A.grid_map(pos, z[ij[:, 1], ij[:, 0]], 32.0, 64, 0.35)
    assert np.abs(np.angle(gm * np.conj(z))).mean() < 0.3  # phases agree pixel by pixel
    assert A.column_spacing(gm, 0.5)["Lambda_mm"] == pytest.approx(32.0 / 6, rel=0.05)
    with pytest.raises(ValueError, match="outside"):
        A.grid_map(pos * 10, z[ij[:, 1], ij[:, 0]], 32.0, 64, 0.35)


def test_grf_lambda_and_pinwheel_density_is_pi() -> None:
    densities = []
    for seed in range(3):
        z = oracles.gaussian_random_field(256, 16, 1.5, rng=seed)
        cs = A.column_spacing(z, pixel_mm=0.25)           # 64 mm map -> Lambda = 4 mm
        assert cs["fit_ok"] and cs["Lambda_mm"] == pytest.approx(64 / 16, rel=0.05)
        xy, charge = A.pinwheels(z, periodic=True)
        assert charge.sum() == 0 and set(np.unique(charge)) == {-1, 1}   # periodic field: net zero
        densities.append(A.pinwheel_density(len(xy), 64.0**2, cs["Lambda_mm"])[0])
    assert np.mean(densities) == pytest.approx(np.pi, rel=0.1)
    density, se = A.pinwheel_density(100, 400.0, 2.0)
    assert (density, se) == (1.0, 0.1)


def test_a_spacing_larger_than_the_map_is_not_measured() -> None:
    # a smooth ramp of less than one cycle across the map has no column spacing to measure
    y, x = np.mgrid[0:48, 0:48].astype(float)
    rng = np.random.default_rng(0)
    z = np.exp(2j * np.pi * (0.3 * x / 48 + 0.2 * y / 48)) + 0.01 * rng.normal(size=x.shape)
    assert not A.column_spacing(z, pixel_mm=1.0)["fit_ok"]


def test_single_pinwheel_position_and_charge() -> None:
    y, x = np.mgrid[0:9, 0:9].astype(float)
    xy, charge = A.pinwheels((x - 4.5) + 1j * (y - 3.5))   # zero at a plaquette centre
    np.testing.assert_allclose(xy, [[4.5, 3.5]])
    assert list(charge) == [1]
    assert list(A.pinwheels((x - 4.5) - 1j * (y - 3.5))[1]) == [-1]


def test_category_patch_of_planted_blob_and_none_for_noise() -> None:
    rng = np.random.default_rng(6)
    pos = rng.uniform(0, 70, (4000, 2))
    t = rng.standard_normal(4000)
    blob = np.hypot(pos[:, 0] - 30, pos[:, 1] - 40) < 10
    patches, tmap = A.category_patches(pos, t + 5.0 * blob, 70.0, 70)
    assert tmap.shape == (70, 70) and len(patches) == 1
    p = patches[0]
    assert p["area_mm2"] == pytest.approx(np.pi * 100, rel=0.2)
    assert p["n_units"] == pytest.approx(blob.sum(), rel=0.25)
    np.testing.assert_allclose(p["centroid_mm"], (30, 40), atol=1.0)
    assert A.category_patches(pos, t, 70.0, 70)[0] == []
    small = A.category_patches(pos, t + 5.0 * blob, 70.0, 70, max_area=200)[0]
    assert small == []


def test_selectivity_rsm() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 20, 20))
    rsm = A.selectivity_rsm({"faces": a, "bodies": 0.5 * a + 0.1 * b, "places": -a})
    assert rsm.shape == (3, 3)
    np.testing.assert_allclose(np.diag(rsm), 1.0)
    assert rsm[0, 1] > 0.9 and rsm[0, 2] == pytest.approx(-1.0)


def test_wiring_length_identical_and_shifted_clusters() -> None:
    rng = np.random.default_rng(8)
    centres = np.array([[5.0, 5.0], [20.0, 10.0], [10.0, 25.0]])
    src = np.concatenate([c + 0.1 * rng.standard_normal((40, 2)) for c in centres])
    on = np.ones(len(src), bool)
    assert A.wiring_length(src, on, src, on, thr_mm=1.0) == pytest.approx(0.0, abs=1e-9)
    assert A.wiring_length(src, on, src + [2.0, 0.0], on, thr_mm=1.0) == pytest.approx(3 * 2.0, rel=1e-6)
    assert A.wiring_length(src, on, src, np.zeros(len(src), bool), thr_mm=1.0) == 0.0
    with pytest.raises(ValueError, match="tgt_active"):
        A.wiring_length(src, on, src, on[:-1], thr_mm=1.0)


def test_orientation_direction_relation() -> None:
    rng = np.random.default_rng(9)
    pos = rng.uniform(0, 10, (2000, 2))
    ori = np.mod(18.0 * pos[:, 0], 180.0)
    axis_of_motion = np.mod(ori + 180.0 * rng.integers(0, 2, 2000), 360.0)   # both directions per domain
    rel = A.orientation_direction_relation(ori, axis_of_motion, pos, radius_mm=0.5)
    assert rel["n_opposite"] > 100
    assert rel["mean_dori_opposite"] < 10 and rel["frac_same_domain_opposite"] > 0.9
    rand = A.orientation_direction_relation(ori, rng.uniform(0, 360, 2000), np.roll(pos, 1, 0), 0.5)
    assert rand["mean_dori_opposite"] == pytest.approx(45, abs=6)


def test_bootstrap_ci_and_paired_test() -> None:
    rng = np.random.default_rng(10)
    v = rng.normal(1.0, 1.0, 400)
    lo, hi = A.bootstrap_ci(v, n=1000, rng=0)
    assert lo < v.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.2)
    assert np.isnan(A.bootstrap_ci([1.0])[0])
    a, b = rng.normal(0, 1, 12), rng.normal(0, 1, 12)
    res = A.paired_test(a + 1.0, a + b * 0.1)
    assert res["n"] == 12 and res["p_t"] == pytest.approx(stats.ttest_rel(a + 1.0, a + b * 0.1).pvalue)
    assert res["p_wilcoxon"] < 0.01
    assert np.isnan(A.paired_test([1, 2], [1, 2])["p_wilcoxon"])
    with pytest.raises(ValueError, match="lengths"):
        A.paired_test([1, 2, 3], [1, 2])


def test_orientation_direction_relation_on_a_paper_sized_layer() -> None:
    """200,704 units on a 2.39 mm sheet (the dorsal layer1 at paper shapes) within 0.3 mm hold ~10^9 pairs: listing
    them ran out of memory in the paper-config rehearsal; the pairs now come from a random subset of the units, and
    the same domain structure is found."""
    rng = np.random.default_rng(11)
    n, side = 200_704, 2.387
    pos = rng.uniform(0, side, (n, 2))
    ori = np.mod(180.0 * pos[:, 0] / 0.6, 180.0)  # 0.6 mm orientation columns along x
    axis_of_motion = np.mod(ori + 180.0 * rng.integers(0, 2, n), 360.0)
    rel = A.orientation_direction_relation(ori, axis_of_motion, pos, radius_mm=side / 8, max_pairs=50_000, rng=rng)
    assert rel["n_pairs"] == 50_000 and rel["n_opposite"] > 5_000
    assert rel["frac_same_domain_opposite"] > 0.6 and rel["frac_same_domain_all"] < 0.4  # measured 0.76 / 0.33
    rand = A.orientation_direction_relation(ori, rng.uniform(0, 360, n), pos, radius_mm=side / 8, max_pairs=50_000,
                                            rng=rng)
    assert rand["frac_same_domain_opposite"] == pytest.approx(rand["frac_same_domain_all"], abs=0.03)
    sub = _pair_subset(pos, side / 8, 1_000_000, rng)
    assert 2 < len(sub) < n and len(np.unique(sub)) == len(sub)
    assert len(_pair_subset(pos[:500], side / 8, 1_000_000, rng)) == 500
