"""Tests of tdann.stimuli: the generated stimuli carry the features their labels claim, deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tdann import stimuli as S
from tdann.h5io import undescribed
from tdann.stimuli.dots import _rdk_positions as rdk_positions


def _angle_diff(a: float, b: float, period: float) -> float:
    d = (a - b) % period
    return min(d, period - d)


def _fft_peak(img: np.ndarray, pad: int = 4) -> tuple[float, float]:
    """(kx, ky_up) of the strongest spatial frequency in cycles/image, from a zero-padded 2D FFT."""
    n = img.shape[-1]
    spec = np.abs(np.fft.fft2(img - img.mean(), s=(pad * n, pad * n)))
    r, c = np.unravel_index(np.argmax(spec), spec.shape)
    freqs = np.fft.fftfreq(pad * n) * n
    return float(freqs[c]), float(-freqs[r])  # rows grow downwards, y is up


def test_grating_orientation_and_sf_match_labels():
    stim, params = S.gratings(64, orientations=8, sfs=(3.0, 6.0), phases=2, colours=("gray", "red_green"))
    assert stim.shape == (8 * 2 * 2 * 2, 3, 64, 64) and stim.dtype == np.float32
    assert stim.min() >= 0 and stim.max() <= 1
    assert list(params.columns) == ["orientation", "sf", "phase", "colour"]
    for i in range(0, len(stim), 3):
        kx, ky = _fft_peak(stim[i, 0])
        # bars are perpendicular to the wave vector
        measured_ori = (np.degrees(np.arctan2(ky, kx)) + 90.0) % 180.0
        assert _angle_diff(measured_ori, params.orientation[i], 180.0) < 3.0, i
        assert abs(np.hypot(kx, ky) - params.sf[i]) < 0.3, i
    # orientation 0 = horizontal bars: constant along each row
    horizontal = stim[(params.orientation == 0).to_numpy()][0, 0]
    assert np.allclose(horizontal, horizontal[:, :1])
    # the red/green variant modulates R and G in antiphase, B stays mid-gray
    rg = stim[(params.colour == "red_green").to_numpy()][0]
    assert np.allclose(rg[0] - 0.5, -(rg[1] - 0.5)) and np.allclose(rg[2], 0.5)


def test_gratings_reject_bad_arguments():
    with pytest.raises(ValueError, match="sfs"):
        S.gratings(32, sfs=(20.0,))
    with pytest.raises(ValueError, match="colour"):
        S.gratings(32, colours=("purple",))


def test_drifting_grating_motion_matches_direction_and_speed():
    frames = 8
    stim, params = S.drifting_gratings(32, frames, directions=8, sfs=(3.0,), tfs=(1.0, 2.0))
    assert stim.shape == (16, 3, frames, 32, 32)
    assert np.allclose(params.orientation, (params.direction + 90) % 180)
    assert np.allclose(params.speed, params.tf / frames / params.sf)
    for i in range(len(stim)):
        spec = np.abs(np.fft.fftn(stim[i, 0] - 0.5))
        kt, kr, kc = np.unravel_index(np.argmax(spec), spec.shape)
        ft = np.fft.fftfreq(frames)[kt] * frames  # cycles per clip
        fx = np.fft.fftfreq(32)[kc] * 32
        fy = -np.fft.fftfreq(32)[kr] * 32
        # a pattern exp(i 2 pi (k.x + ft t)) moves along -sign(ft) k
        motion = -np.sign(ft) * np.array([fx, fy])
        measured = np.degrees(np.arctan2(motion[1], motion[0])) % 360
        assert _angle_diff(measured, params.direction[i], 360.0) < 1e-6, i
        assert abs(abs(ft) - params.tf[i]) < 1e-9 and abs(np.hypot(fx, fy) - params.sf[i]) < 0.5


def _circular_centroid(frame: np.ndarray) -> np.ndarray:
    """(x, y) centroid in pixels of a single blob on a torus (wrap-safe)."""
    n = frame.shape[0]
    ang = 2 * np.pi * np.arange(n) / n
    cx = np.angle((frame.sum(0) * np.exp(1j * ang)).sum()) * n / (2 * np.pi)
    cy = np.angle((frame.sum(1) * np.exp(1j * ang)).sum()) * n / (2 * np.pi)
    return np.array([cx, cy]) % n


def test_random_dots_coherent_motion():
    # fully coherent, immortal dots at an integer displacement: each frame is the previous one shifted (with wrap)
    stim, params = S.random_dots(40, 5, directions=4, coherences=(1.0,), speeds=(2.0,), density=0.02,
                                 lifetime=None, seed=3)
    assert stim.shape == (4, 3, 5, 40, 40) and list(params.direction) == [0.0, 90.0, 180.0, 270.0]
    shifts = {0.0: (0, 2), 90.0: (-2, 0), 180.0: (0, -2), 270.0: (2, 0)}  # (rows, cols); up = fewer rows
    for i, d in enumerate(params.direction):
        clip = stim[i, 0]
        assert clip.max() > 0.9
        for t in range(4):
            assert np.allclose(np.roll(clip[t], shifts[d], axis=(0, 1)), clip[t + 1], atol=1e-5), (d, t)
    # a single dot at an oblique direction and fractional speed: track its centroid
    stim, params = S.random_dots(40, 6, directions=12, coherences=(1.0,), speeds=(1.5,), density=1e-4,
                                 dot_radius=2.0, lifetime=None, seed=5)
    i = int(np.flatnonzero(params.direction == 30.0)[0])
    c = np.array([_circular_centroid(f) for f in stim[i, 0]])
    step = (np.diff(c, axis=0) + 20) % 40 - 20
    expected = 1.5 * np.array([np.cos(np.radians(30)), -np.sin(np.radians(30))])
    assert np.allclose(step, expected, atol=0.1)


def test_random_dots_incoherent_and_lifetime():
    # with zero coherence the net displacement of a frame pair is not along the labelled direction
    pos, signal, born = rdk_positions(64, 10, 200, 0.0, 0.5, 2.0, 4, np.random.default_rng(0))
    assert signal.sum() == 100
    assert born[1:].sum(axis=1).mean() == pytest.approx(200 / 4, rel=0.3)
    moved = ~born[1]
    step = (pos[1] - pos[0] + 32) % 64 - 32
    assert np.allclose(step[signal & moved], [2.0, 0.0])
    assert not np.allclose(step[~signal & moved], [2.0, 0.0])
    assert np.allclose(np.hypot(*step[moved].T), 2.0)


def test_generators_are_deterministic():
    a, pa = S.random_dots(24, 3, directions=2, seed=1)
    b, pb = S.random_dots(24, 3, directions=2, seed=1)
    c, _ = S.random_dots(24, 3, directions=2, seed=2)
    assert np.array_equal(a, b) and pa.equals(pb) and not np.array_equal(a, c)
    x, px = S.category_localizer(32, 3, seed=7)
    y, py = S.category_localizer(32, 3, seed=7)
    z, _pz = S.category_localizer(32, 3, seed=8)
    assert np.array_equal(x, y) and px.equals(py)
    assert not np.array_equal(x, z)
    d1, d2, d3 = S.moving_disks(seed=4), S.moving_disks(seed=4), S.moving_disks(seed=5)
    assert all(np.array_equal(d1[k], d2[k]) for k in d1)
    assert not np.array_equal(d1["centers"], d3["centers"])


def test_category_localizer_counts_and_matched_luminance():
    stim, params = S.category_localizer(48, 6, seed=0, rms=0.15)
    assert stim.shape == (30, 3, 48, 48) and stim.dtype == np.float32
    assert params.category.value_counts().to_dict() == {c: 6 for c in S.CATEGORIES}
    assert list(params.category[:6]) == ["faces"] * 6
    assert params.source[params.category == "faces"].str.startswith("skimage.data.lfw_subset[").all()
    assert np.array_equal(stim[:, 0], stim[:, 2])  # grayscale
    assert np.allclose(stim[:, 0].mean(axis=(1, 2)), 0.5, atol=0.005)
    assert np.allclose(stim[:, 0].std(axis=(1, 2)), 0.15, atol=0.005)
    # images differ within a category (not one image repeated)
    for cat in S.CATEGORIES:
        imgs = stim[(params.category == cat).to_numpy(), 0]
        assert np.abs(imgs[0] - imgs[1]).mean() > 0.01, cat
    # faces passed in are used
    own = np.random.default_rng(0).uniform(0, 1, (2, 16, 16))
    _, p2 = S.category_localizer(32, 2, faces=own)
    assert set(p2.source[p2.category == "faces"]) <= {"faces[0]", "faces[1]"}
    with pytest.raises(ValueError, match="faces"):
        S.category_localizer(32, 2, faces=np.zeros((2, 16)))


def test_load_floc(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in S.FLOC_SUBFOLDERS:
        (tmp_path / sub).mkdir()
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(tmp_path / sub / f"{sub}-{k}.jpg")
    stim, params = S.load_floc(tmp_path, 24)
    assert stim.shape == (20, 3, 24, 24)
    assert params.category.value_counts().to_dict() == {c: 4 for c in S.CATEGORIES}
    assert set(params.subcategory[params.category == "places"]) == {"house", "corridor"}
    for sub in ("house", "corridor"):
        for f in (tmp_path / sub).iterdir():
            f.unlink()
        (tmp_path / sub).rmdir()
    with pytest.raises(ValueError, match=r"places") as err:
        S.load_floc(tmp_path, 24)
    assert str(tmp_path) in str(err.value)


def test_moving_disk_speeds_match_labels():
    out = S.moving_disks(size=50, steps=300, speeds=(0.5, 1.0, 2.0), radius=4, seed=0)
    frames, centers, events = out["frames"].numpy(), out["centers"].numpy(), out["events"].numpy()
    assert frames.shape == (300, 50, 50) and centers.shape == (300, 2)
    assert sorted(out["speed"].tolist()) == [0.5, 1.0, 2.0]
    for (start, stop), speed in zip(out["segments"].tolist(), out["speed"].tolist()):
        steps = np.hypot(*np.diff(centers[start:stop], axis=0).T)
        assert np.median(steps) == pytest.approx(speed, abs=1e-4)
        # the frames show the disk where the centres say it is
        ys, xs = np.nonzero(frames[start + 5])
        assert np.allclose([xs.mean(), ys.mean()], centers[start + 5], atol=0.6)
    assert np.array_equal(out["speed_per_step"][out["segments"][1, 0]], out["speed"][1])
    # events are exactly the off->on transitions, as (t, x, y)
    t, x, y = events.T.astype(int)
    assert np.all(frames[t, y, x] == 1)
    assert np.all(frames[t[t > 0] - 1, y[t > 0], x[t > 0]] == 0)
    on = (frames[1:] == 1) & (frames[:-1] == 0)
    assert len(events) == on.sum() + frames[0].sum()
    assert np.all(np.diff(t) >= 0)


def test_save_load_round_trip(tmp_path):
    stim, params = S.drifting_gratings(16, 4, directions=4, sfs=(2.0,), tfs=(1.0,))
    params["label"] = [f"é{i}" for i in range(len(params))]
    path = tmp_path / "set.h5"
    args = {"size": 16, "frames": 4, "sfs": (2.0,), "lifetime": None}
    S.save_stimulus_set(path, stim, params, "drifting_gratings", args)
    back, bparams, attrs = S.load_stimulus_set(path)
    assert back.dtype == np.float32 and back.shape == stim.shape
    assert np.abs(back - stim).max() <= 0.5 / 255 + 1e-6
    pd.testing.assert_frame_equal(bparams, params)
    assert attrs == {"kind": "drifting_gratings", "size": 16, "frames": 4, "sfs": [2.0], "lifetime": None}
    assert undescribed(str(path)) == []
    batches = list(S.iter_stimulus_batches(path, 3))
    assert [s for s, _ in batches] == [0, 3]
    assert np.array_equal(np.concatenate([b for _, b in batches]), back)
    S.save_stimulus_set(path, stim, params, "drifting_gratings", dtype="float16")
    assert np.abs(S.load_stimulus_set(path)[0] - stim).max() < 1e-3
    with pytest.raises(ValueError, match="params"):
        S.save_stimulus_set(path, stim, params.iloc[:2], "x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.save_stimulus_set(path, stim * 2, params, "x")
    bad = tmp_path / "other.h5"
    import h5py

    with h5py.File(bad, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="other.h5"):
        S.load_stimulus_set(bad)


def test_params_count_and_moving_disks_round_trip(tmp_path):
    import torch

    from tdann import stimuli as st

    stim, params = st.gratings(16, orientations=4, sfs=(2,), phases=2)
    path = tmp_path / "g.h5"
    st.save_stimulus_set(path, stim, params, kind="gratings")
    assert st.count_stimuli(path) == len(stim) == 8
    assert st.load_params(path).equals(st.load_stimulus_set(path)[1])
    disks = st.moving_disks(size=20, steps=60, seed=3)
    st.save_moving_disks(tmp_path / "d.h5", disks)
    back = st.load_moving_disks(tmp_path / "d.h5")
    for key, value in disks.items():
        assert torch.equal(back[key].to(value.dtype), value), key
    with pytest.raises(st.StimulusError, match="g.h5"):
        st.load_moving_disks(path)


def test_the_config_schema_names_every_grating_colour_and_no_other():
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml").read_text())
    enum = schema["properties"]["stimuli"]["properties"]["gratings"]["properties"]["colours"]["items"]["enum"]
    assert set(enum) == set(S.GRATING_COLOURS)
    red_cyan = S.gratings(16, orientations=1, sfs=(2.0,), phases=1, colours=("red_cyan",))[0][0]
    assert np.allclose(red_cyan[1], red_cyan[2]) and np.allclose(red_cyan[0] - 0.5, -(red_cyan[1] - 0.5))
