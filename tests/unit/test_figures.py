"""Figure helpers that decide what a reader sees: an isoluminant angle map, pinwheels only on measured maps."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tdann import figures, metrics


def _lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L* of sRGB colours (D65)."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    f = np.where(y > (6 / 29) ** 3, np.cbrt(y), y / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f - 16


def test_the_angle_colour_map_is_isoluminant_cyclic_and_varied():
    cmap = figures.angle_cmap("isoluminant")
    rgb = cmap(np.linspace(0, 1, 256))[:, :3]
    light = _lightness(rgb)
    assert light.std() < 0.5 and abs(light.mean() - 70) < 0.5  # every angle equally bright
    twilight = _lightness(plt.get_cmap("twilight")(np.linspace(0, 1, 256))[:, :3])
    assert np.ptp(twilight) > 50  # the old default: 90 deg looked like "weak"
    step = np.linalg.norm(np.diff(rgb, axis=0), axis=1)
    assert np.linalg.norm(rgb[0] - rgb[-1]) < 2 * step.max()  # closes on itself
    assert np.ptp(rgb, axis=0).max() > 0.5  # hues differ
    with pytest.raises(ValueError, match="angle_cmap.*nope"):
        figures.angle_cmap("nope")


@pytest.mark.parametrize("fit_ok, lam, spacing, area, resolved", [
    (1.0, 12.0, 4.0, 9.0, True), (1.0, 11.0, 4.0, 9.0, False), (0.0, 20.0, 4.0, 9.0, False),
    (1.0, np.nan, 4.0, 9.0, False), (1.0, 12.0, 4.0, 1.05, False),  # a 4 x 4 MT-like layer: one column's area
])
def test_column_spacing_counts_only_when_fitted_and_resolved_by_the_grid(fit_ok, lam, spacing, area, resolved):
    assert metrics.spacing_resolved(fit_ok, lam, spacing, area) is resolved


def test_pinwheels_are_marked_only_on_maps_with_a_measured_spacing():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    g = {"ori_map": z, "ori_pinwheels_mm": np.array([[1.0, 1.0], [2.0, 3.0]]), "ori_pinwheel_charge": np.ones(2)}
    fig, axes = plt.subplots(2, 2)
    measured = {"grid": 16, "lambda_mm": 4.0, "spacing_measured": True}
    coarse = {"grid": 4, "lambda_mm": 4.0, "spacing_measured": False}
    figures.map_panels(fig, axes[0], axes[1], [("a", g, measured, ""), ("b", g, coarse, " [did not learn]")],
                       "orientation", 180.0, 8.0, figures.angle_cmap("isoluminant"))
    assert len(axes[0, 0].lines) == 1 and "2 pinwheels" in axes[0, 0].get_title()
    assert len(axes[0, 1].lines) == 0 and "pinwheels not marked" in axes[0, 1].get_title()
    assert "4 x 4 units" in axes[0, 1].get_title() and "did not learn" in axes[0, 1].get_title()
    assert len(fig.axes) == 8  # every map has its colour bar
    plt.close(fig)


def test_a_clip_panel_shows_its_motion_as_a_tilted_space_time_slice():
    t, h, w = 8, 16, 16
    clip = np.zeros((3, t, h, w))
    for k in range(t):
        clip[:, k, :, 2 + k] = 1.0  # a vertical bar moving right one pixel per frame
    img = figures.clip_image(clip)
    frame, xt = img[:h], img[h + 1:]
    assert img.shape[1:] == (w, 3) and frame[:, 2 + t // 2].min() == 1.0  # the middle frame
    rows = xt[:, :, 0]
    cols = [int(np.argmax(r)) for r in rows[:: len(rows) // t]]
    assert cols == [2 + k for k in range(t)]  # time runs down, the bar's column moves: the stripe is tilted
    assert figures.clip_image(clip[:, 0]).shape == (h, w, 3)
    with pytest.raises(ValueError, match="expected"):
        figures.clip_image(np.zeros((3, 4)))
