"""The map metrics on the published protocol, through the path the pipeline takes (issue 16).

A periodic Gaussian random field of known column spacing Lambda is sampled at the scattered retinotopic unit
positions of a sheet, laid back on a grid by ``tdann.metrics`` (smoothing tied to the grid spacing), and measured:
the spacing must come back within 10% and the pinwheel density within 10% of pi per Lambda^2 wherever the map holds
at least 2 periods; the smoothness index of a 3.5 mm map must be high on the published bins and was near 0 on the
old bins spanning half the sheet.
"""

from __future__ import annotations

import numpy as np
import pytest

import oracles
from tdann import analysis as A
from tdann import metrics, positions

FIELD_PX = 256


def _sheet(shape: tuple[int, int, int], sheet_mm: float, overlap: float, seed: int) -> np.ndarray:
    return positions.retinotopic_positions(shape, sheet_mm, overlap, 0.3, np.random.default_rng(seed)).astype(float)


def _field_at(pos: np.ndarray, sheet_mm: float, lam_mm: float, seed: int) -> np.ndarray:
    """A complex GRF with spacing ``lam_mm`` on the sheet, read at ``pos`` (nearest field pixel)."""
    k0 = sheet_mm / lam_mm  # cycles per sheet side
    z = oracles.gaussian_random_field(FIELD_PX, k0, 0.05 * k0 + 0.5, rng=seed)
    ij = np.clip((pos / sheet_mm * FIELD_PX).astype(int), 0, FIELD_PX - 1)
    return z[ij[:, 1], ij[:, 0]]


def _measure(shape, sheet_mm, overlap, lam_mm, grid_px, seeds):
    cfg = {"grid_px": grid_px, "map_sigma_units": 1.5, "smoothness_bins": 9, "min_hypercolumn_grid": 2.0}
    geo = metrics.Geometry(sheet_mm, shape[1:], int(np.prod(shape)), cfg)
    lams, dens = [], []
    for seed in seeds:
        pos = _sheet(shape, sheet_mm, overlap, seed)
        z = _field_at(pos, sheet_mm, lam_mm, seed)
        rows, _ = metrics._map_measures(pos, z / np.abs(z), geo, cfg, "ori_")
        lams.append(rows["ori_lambda_mm"])
        dens.append(rows["ori_pinwheel_density"])
    return np.array(lams), np.array(dens)


@pytest.mark.parametrize("case", [
    # the paper's V1 sheet: 128 x 28 x 28 units on 36.75 mm, 3.5 mm columns
    dict(shape=(128, 28, 28), sheet_mm=36.75, overlap=0.2, lam_mm=3.5, grid_px=128),
    # the default's V1 sheet: 8 x 8 locations, 64 channels; 9 mm columns (4 periods; at 2-3 periods a random field
    # on so small a sheet has a broad spectrum and itself holds ~7% more than pi pinwheels per Lambda^2)
    dict(shape=(64, 8, 8), sheet_mm=36.75, overlap=0.2, lam_mm=9.0, grid_px=48),
])
def test_spacing_and_pinwheel_density_recovered_from_scattered_units(case: dict) -> None:
    assert case["sheet_mm"] / case["lam_mm"] >= 2
    lams, dens = _measure(case["shape"], case["sheet_mm"], case["overlap"], case["lam_mm"], case["grid_px"],
                          seeds=range(6))
    assert np.median(lams) == pytest.approx(case["lam_mm"], rel=0.10)
    assert np.all(np.abs(lams / case["lam_mm"] - 1) < 0.2)
    assert np.mean(dens) == pytest.approx(np.pi, rel=0.10)


def test_pinwheel_area_counts_plaquettes() -> None:
    assert A.pinwheel_area(48, 0.5) == pytest.approx((47 * 0.5) ** 2)
    assert A.pinwheel_area(48, 0.5, periodic=True) == pytest.approx(24.0**2)


def test_protocol_bins_are_the_published_ones() -> None:
    bins = A.protocol_bins(3.5)
    assert len(bins) == 10 and bins[-1] == pytest.approx(3.2998, abs=1e-3)


def test_smoothness_of_a_3p5_mm_map_on_the_published_bins() -> None:
    pos = _sheet((16, 28, 28), 36.75, 0.2, 0)
    theta = np.degrees(np.angle(_field_at(pos, 36.75, 3.5, 0))) / 2 % 180  # orientation map, 3.5 mm columns
    ptp = np.random.default_rng(1).random(len(pos))
    rng = np.random.default_rng(2)
    published = A.smoothness(pos, theta, 180, weights=ptp, top_frac=0.25, bins=A.protocol_bins(3.5),
                             n_samples=20, sample_size=1000, rng=rng)
    old_bins = A.smoothness(pos, theta, 180, weights=ptp, top_frac=0.25, bins=np.linspace(0, 36.75 / 2, 9),
                            rng=rng)
    null = A.shuffled_smoothness(pos, theta, 180, weights=ptp, top_frac=0.25, bins=A.protocol_bins(3.5),
                                 n_samples=20, sample_size=1000, rng=rng, n_shuffles=3)
    assert published["index"] > 0.5 and len(published["index_all"]) == 20
    assert old_bins["index"] < 0.2
    assert null["index"] < 0.15
    assert np.all(np.diff(published["curve"][:4]) > 0)  # difference grows with distance inside a hypercolumn


def test_hypercolumn_floor_on_coarse_grids() -> None:
    cfg = {"map_sigma_units": 1.5, "smoothness_bins": 9, "min_hypercolumn_grid": 2.0}
    paper = metrics.Geometry(36.75, (28, 28), 128 * 28 * 28, cfg, hypercolumn_mm=3.5)
    coarse = metrics.Geometry(36.75, (8, 8), 64 * 8 * 8, cfg, hypercolumn_mm=3.5)
    assert paper.hypercolumn_mm == 3.5 and paper.sigma_mm == pytest.approx(1.5 * 36.75 / np.sqrt(128 * 784))
    assert coarse.hypercolumn_mm == pytest.approx(2 * 36.75 / 8) and coarse.sigma_mm == pytest.approx(0.861, 1e-3)
    assert metrics.Geometry(70.0, (7, 7), 100, cfg).hypercolumn_mm == pytest.approx(20.0)  # 2 grid spacings > 6.67
