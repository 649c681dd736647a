"""Tests of tdann.positions: retinotopic init, neighbourhoods, sheets I/O."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tdann.h5io import undescribed
from tdann.models import build_model
from tdann.positions import (
    LayerSheet,
    SheetsFileError,
    init_sheets,
    load_sheets,
    make_neighborhoods,
    redraw_neighborhoods,
    retinotopic_positions,
    save_sheets,
)


def test_retinotopic_counts_range_and_order() -> None:
    c, h, w = 16, 6, 9
    pos = retinotopic_positions((c, h, w), 20.0, 0.2, 0.3, np.random.default_rng(0))
    assert pos.shape == (c * h * w, 2) and pos.dtype == np.float32
    assert pos.min() >= 0 and pos.max() <= 20.0
    assert np.all(pos.min(axis=0) < 0.3) and np.all(pos.max(axis=0) > 19.7)  # the units cover the sheet
    grid = pos.reshape(c, h, w, 2)  # channel-major unit order
    mean_x = grid[..., 0].mean(axis=(0, 1))  # per w
    mean_y = grid[..., 1].mean(axis=(0, 2))  # per h
    assert np.all(np.diff(mean_x) > 0) and np.all(np.diff(mean_y) > 0)


def test_retinotopic_patch_width_follows_overlap() -> None:
    """n patches of width sheet / (n - n*o + o) overlapping by o fill the sheet (o = 0.5, n = 5: 3.33 mm)."""
    c, h, w = 4000, 1, 5
    pos = retinotopic_positions((c, h, w), 10.0, 0.5, 0.0, np.random.default_rng(1)).reshape(c, h, w, 2)
    first = pos[:, 0, 0, 0]
    assert first.min() == pytest.approx(0.0, abs=0.02) and first.max() == pytest.approx(10 / 3, abs=0.02)
    assert pos[:, 0, 2, 0].mean() == pytest.approx(5.0, abs=0.05)  # the middle patch is centred
    tight = retinotopic_positions((50, 3, 5), 10.0, 0.0, 0.0, np.random.default_rng(2)).reshape(50, 3, 5, 2)
    for col in range(4):  # without overlap (and jitter) the patches of neighbouring columns do not overlap
        assert tight[:, :, col, 0].max() <= tight[:, :, col + 1, 0].min()


def test_retinotopic_jitter_is_in_mm() -> None:
    """0.3 mm jitter barely moves units on a 70 mm sheet but scrambles a 2.4 mm one (as in the original)."""
    rng = np.random.default_rng(3)
    shape = (8, 7, 7)

    def rank_corr(sheet: float) -> float:
        grid = retinotopic_positions(shape, sheet, 0.1, 0.3, rng).reshape(8, 7, 7, 2)
        cols = np.broadcast_to(np.arange(7), (8, 7, 7)).ravel()
        return float(np.corrcoef(np.argsort(np.argsort(grid[..., 0].ravel())), cols)[0, 1])

    assert rank_corr(70.0) > 0.95 and rank_corr(0.5) < 0.8


def test_retinotopic_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        retinotopic_positions((4, 4), 1.0, 0.1, 0.3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sheet_size"):
        retinotopic_positions((4, 4, 4), 0.0, 0.1, 0.3, np.random.default_rng(0))


def test_neighborhoods_are_compact_windows_of_working_size() -> None:
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 10, size=(4000, 2)).astype(np.float32)  # 40 units per mm^2
    nbs = make_neighborhoods(pos, 1.0, n_windows=2000, rng=rng)
    k = nbs.shape[1]
    assert nbs.dtype == np.int64 and 25 <= k < 40  # 5th percentile of ~Poisson(40) counts
    assert nbs.shape[0] > 0.9 * 2000  # only the smallest ~5% of windows are dropped
    assert all(len(np.unique(row)) == k for row in nbs[:50])
    spread = pos[nbs].max(axis=1) - pos[nbs].min(axis=1)
    assert spread.max() <= 1.0 + 1e-6


def test_neighborhoods_capped_and_deterministic() -> None:
    pos = np.random.default_rng(3).uniform(0, 10, size=(4000, 2))
    a = make_neighborhoods(pos, 5.0, n_windows=300, rng=np.random.default_rng(7))
    b = make_neighborhoods(pos, 5.0, n_windows=300, rng=np.random.default_rng(7))
    assert a.shape == (300, 500) and np.array_equal(a, b)


def test_neighborhood_width_too_small_names_layer() -> None:
    pos = np.random.default_rng(4).uniform(0, 10, size=(500, 2))
    with pytest.raises(ValueError, match=r"layer2\.0.*too small"):
        make_neighborhoods(pos, 0.1, n_windows=200, rng=np.random.default_rng(0), name="layer2.0")


def test_distances_inv() -> None:
    pos = np.array([[0, 0], [3, 4], [0, 1]], dtype=np.float32)
    sheet = LayerSheet("l", (3, 1, 1), pos, 5.0, 1.0, np.array([[0, 1, 2]]))
    d = sheet.distances_inv(np.array([0, 1, 2]))
    assert d[0, 1] == pytest.approx(1 / 6) and d[0, 2] == pytest.approx(0.5) and np.allclose(np.diag(d), 1)
    assert sheet.distances_inv(sheet.neighborhoods).shape == (1, 3, 3)


SPECS = {
    "layer1.0": {"sheet_size": 2.4, "neighborhood_width": 0.5, "rf_overlap": 0.1},
    "layer4.1": {"sheet_size": 70.0, "neighborhood_width": 40.0, "rf_overlap": 0.8},
}


def test_init_sheets_shapes_and_seeds() -> None:
    model = build_model("resnet18", width=0.25)
    sheets = init_sheets(model, (3, 32, 32), SPECS, seed=0, n_windows=500)
    assert set(sheets) == set(SPECS)
    s1 = sheets["layer1.0"]
    assert s1.shape == (16, 8, 8) and s1.positions.shape == (16 * 8 * 8, 2) and s1.n_units == 1024
    assert s1.positions.max() <= 2.4 and sheets["layer4.1"].positions.max() <= 70.0
    assert s1.neighborhoods.max() < s1.n_units and s1.neighborhoods.shape[1] >= 25
    again = init_sheets(model, (3, 32, 32), SPECS, seed=0, n_windows=500)
    other = init_sheets(model, (3, 32, 32), SPECS, seed=1, n_windows=500)
    assert np.array_equal(again["layer4.1"].positions, sheets["layer4.1"].positions)
    assert not np.array_equal(other["layer4.1"].positions, sheets["layer4.1"].positions)
    capped = init_sheets(model, (3, 32, 32), SPECS, seed=0, n_windows=200, min_units=10, max_units=30)
    assert capped["layer4.1"].neighborhoods.shape[1] == 30 and capped["layer4.1"].max_units == 30
    assert capped["layer1.0"].min_units == 10 and capped["layer1.0"].n_windows == 200
    with pytest.raises(ValueError, match=r"layer1\.0.*rf_overlap"):
        init_sheets(model, (3, 32, 32), {"layer1.0": {"sheet_size": 1, "neighborhood_width": 1}}, seed=0)


def test_save_load_round_trip(tmp_path) -> None:
    sheets = init_sheets(build_model("resnet18", width=0.25), (3, 32, 32), SPECS, seed=0, n_windows=300)
    path = tmp_path / "sheets.h5"
    save_sheets(path, sheets, {"arch": "resnet18", "seed": 0})
    assert undescribed(str(path)) == []
    with h5py.File(path) as f:
        assert f.attrs["arch"] == "resnet18"
        assert f["layer1.0/positions"].attrs["units"] == "mm"
        assert f["layer1.0"].attrs["n_units"] == 1024
    loaded = load_sheets(path)
    assert list(loaded) == list(sheets)
    for name, sheet in sheets.items():
        got = loaded[name]
        assert got.shape == sheet.shape and got.sheet_size == sheet.sheet_size
        assert got.neighborhood_width == sheet.neighborhood_width
        assert np.array_equal(got.positions, sheet.positions)
        assert np.array_equal(got.neighborhoods, sheet.neighborhoods)
        assert (got.n_windows, got.min_units, got.max_units) == (300, 25, 500)


def test_load_sheets_reports_broken_file(tmp_path) -> None:
    sheets = init_sheets(build_model("resnet18", width=0.25), (3, 32, 32), SPECS, seed=0, n_windows=300)
    path = tmp_path / "sheets.h5"
    save_sheets(path, sheets)
    with h5py.File(path, "a") as f:
        del f["layer4.1/neighborhoods"]
    with pytest.raises(SheetsFileError, match=r"layer4\.1.*neighborhoods"):
        load_sheets(path)


def test_redraw_follows_new_positions() -> None:
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 10, size=(3000, 2)).astype(np.float32)
    sheet = LayerSheet("layer2.0", (3000, 1, 1), pos, 10.0, 1.5, make_neighborhoods(pos, 1.5, 300, rng), 300)
    moved = LayerSheet("layer2.0", sheet.shape, pos[rng.permutation(3000)], 10.0, 1.5, sheet.neighborhoods, 300)
    old_spread = np.ptp(moved.positions[moved.neighborhoods], axis=1).max()
    redrawn = redraw_neighborhoods(moved, rng)
    assert len(redrawn.neighborhoods) > 250  # the sheet's own window count (300), not the default 20000
    new_spread = np.ptp(redrawn.positions[redrawn.neighborhoods], axis=1).max()
    assert old_spread > 5.0 and new_spread <= 1.5 + 1e-6
    assert np.array_equal(redrawn.positions, moved.positions)


def test_channel_grid_layout_puts_grid_neighbours_next_to_each_other():
    from tdann.losses import channel_grid
    from tdann.positions import retinotopic_positions

    c, h, w = 16, 3, 3
    pos = retinotopic_positions((c, h, w), 9.0, 0.0, 0.3, np.random.default_rng(0), layout="channel_grid")
    _rows, cols = channel_grid(c)
    grid = pos.reshape(c, h * w, 2)
    # every location's channels fill its 3 mm patch on the rows x columns grid, no jitter
    centre = grid[:, 4]
    assert np.allclose(centre.mean(0), [4.5, 4.5]) and np.all(np.abs(centre - 4.5) < 1.5)
    step = 3.0 / cols
    assert np.allclose(grid[1, 4] - grid[0, 4], [step, 0]) and np.allclose(grid[cols, 4] - grid[0, 4], [0, step])
    with pytest.raises(ValueError, match="layout"):
        retinotopic_positions((c, h, w), 9.0, 0.0, 0.3, np.random.default_rng(0), layout="spiral")
