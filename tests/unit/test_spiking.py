"""Tests of the spiking speed channels: LIF box update, norse equivalence, speed selectivity, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tdann.h5io import undescribed
from tdann.spiking import (
    SpeedChannels,
    SpikingConfigError,
    channels_from_params,
    compare_speed_tuning,
    disk_kernel,
    events_to_frames,
    fit_channels,
    lif_box_step,
    localisation_error,
    occupancy_to_events,
    selectivity_index,
    speed_tuning,
    split_by_speed,
    stimulus_event_frames,
    unit_speed_tuning,
    write_speed_channels_h5,
)

torch.set_num_threads(1)
SPEEDS = (0.5, 1.0, 2.0)


def moving_disk(speed: float, size: int = 32, steps: int = 60, radius: float = 4.0) -> dict:
    """Binary occupancy frames of a disk moving along the middle row, bouncing off the side walls."""
    yy, xx = np.mgrid[0:size, 0:size]
    x, y, vx = radius + 1.0, size / 2, speed
    frames, centers = [], []
    for _ in range(steps):
        frames.append(((xx - x) ** 2 + (yy - y) ** 2 <= radius**2).astype(np.float32))
        centers.append((x, y))
        x += vx
        if x > size - radius - 1 or x < radius:
            vx = -vx
            x += 2 * vx
    return {"frames": np.stack(frames), "centers": np.array(centers), "speed": speed}


@pytest.fixture(scope="module")
def stimuli() -> dict:
    return {s: moving_disk(s) for s in SPEEDS}


def test_lif_box_step_matches_hand_calculation():
    # dt * tau_mem_inv = 0.1, constant input 5, from rest at 0: v = 0.5, 0.95, 1.355 -> spike and reset to 0, ...
    v = torch.zeros(1)
    expected_v = [0.5, 0.95, 0.0, 0.5, 0.95, 0.0]
    expected_z = [0, 0, 1, 0, 0, 1]
    for ev, ez in zip(expected_v, expected_z):
        z, v = lif_box_step(v, torch.tensor([5.0]), tau_mem_inv=100.0, v_leak=0.0, v_th=1.0, v_reset=0.0, dt=1e-3)
        assert float(z) == ez
        assert float(v) == pytest.approx(ev, abs=1e-6)
    # leak towards v_leak = -1 with no input, reset to 0.2 after a spike from above threshold
    z, v = lif_box_step(torch.tensor([0.0]), torch.tensor([0.0]), 200.0, v_leak=-1.0, dt=1e-3)
    assert float(z) == 0 and float(v) == pytest.approx(-0.2)
    z, v = lif_box_step(torch.tensor([1.5]), torch.tensor([2.0]), 100.0, v_th=1.0, v_reset=0.2, dt=1e-3)
    assert float(z) == 1 and float(v) == pytest.approx(0.2)


def test_norse_cell_equals_reference_step():
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState

    gen = torch.Generator().manual_seed(0)
    tau = torch.tensor([50.0, 300.0, 900.0]).view(3, 1)
    th = torch.tensor([0.3, 0.8, 1.2]).view(3, 1)
    cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=tau, v_leak=torch.tensor(0.1), v_th=th, v_reset=torch.tensor(-0.1)))
    v_ref = v_norse = torch.zeros(3, 20)
    n_spikes = 0
    for _ in range(40):
        i = torch.rand(3, 20, generator=gen) * 3
        z_ref, v_ref = lif_box_step(v_ref, i, tau, 0.1, th, -0.1, 1e-3)
        z_n, state = cell(i, LIFBoxFeedForwardState(v=v_norse))
        v_norse = state.v
        assert torch.equal(z_ref, z_n)
        assert torch.allclose(v_ref, v_norse, atol=1e-6)
        n_spikes += int(z_ref.sum())
    assert n_spikes > 0


def test_backends_agree_with_inhibition_and_surround(stimuli):
    events = stimulus_event_frames(stimuli[2.0])
    kw = dict(tau_mem_inv=[200.0, 800.0], v_th=[0.05, 0.2], kernel_radius=3, inhibition=1.0, surround=0.5)
    s_norse = SpeedChannels(2, backend="norse", **kw)(events)
    s_torch = SpeedChannels(2, backend="torch", **kw)(events)
    assert s_norse.shape == (events.shape[0], 2, 32, 32)
    assert s_norse.sum() > 0
    assert torch.equal(s_norse, s_torch)


def test_higher_threshold_channel_fires_only_for_faster_disks(stimuli):
    # kernel-averaged drive peaks at ~0.14, 0.24, 0.41 for speeds 0.5, 1, 2 (fraction of kernel pixels changing)
    model = SpeedChannels(2, tau_mem_inv=[800.0, 800.0], v_th=[0.08, 0.3], kernel_radius=3)
    table = speed_tuning(model, stimuli).pivot(index="channel", columns="speed", values="spike_count")
    assert (table.loc[0] > 0).all()  # low threshold: every speed
    assert table.loc[1, 0.5] == 0 and table.loc[1, 1.0] == 0
    assert table.loc[1, 2.0] > 0


def test_fit_channels_separates_three_speeds(stimuli):
    params = fit_channels(stimuli, n_channels=3, tau_grid=(100.0, 400.0, 800.0), n_thresholds=16)
    assert params["target_speed"] == list(SPEEDS)
    assert all(sep > 0.5 for sep in params["separation"]), params["separation"]
    assert params["v_th"][0] < params["v_th"][1] < params["v_th"][2]
    counts = speed_tuning(channels_from_params(params), stimuli).pivot(
        index="channel", columns="speed", values="spike_count").to_numpy()
    np.testing.assert_allclose(counts, np.asarray(params["spike_counts"]))
    for c in range(3):  # channel c fires at speeds >= SPEEDS[c] more than at any slower speed
        assert counts[c, c:].min() > counts[c, :c].max(initial=0)
    si = selectivity_index(speed_tuning(channels_from_params(params), stimuli))
    assert (si["preferred_speed"] == 2.0).all()  # without inhibition every channel is a high-pass


def test_inhibition_makes_slow_channel_band_selective(stimuli):
    params = fit_channels(stimuli, n_channels=3, tau_grid=(800.0,), n_thresholds=16)
    plain = speed_tuning(channels_from_params(params), stimuli)
    inhibited = speed_tuning(channels_from_params(params, inhibition=2.0), stimuli)
    si_plain, si_inh = selectivity_index(plain), selectivity_index(inhibited)
    assert si_plain.loc[0, "preferred_speed"] == 2.0
    # the fast channels silence the slow one at high speed: a high-pass channel becomes band-pass
    assert si_inh.loc[0, "preferred_speed"] < 2.0
    slow_at_top = lambda t: t[(t["channel"] == 0) & (t["speed"] == 2.0)]["spike_count"].item()  # noqa: E731
    assert slow_at_top(inhibited) < 0.5 * slow_at_top(plain)
    # the fastest channel is not inhibited by anyone
    fast = lambda t: t[t["channel"] == 2]["spike_count"].to_numpy()  # noqa: E731
    np.testing.assert_array_equal(fast(plain), fast(inhibited))


def test_localisation_error_exact_and_on_disks(stimuli):
    spikes = torch.zeros(3, 1, 10, 10)
    spikes[0, 0, 2, 3] = 1  # centroid (x=3, y=2)
    spikes[1, 0, 5, 5] = spikes[1, 0, 5, 7] = 1  # centroid (6, 5)
    centers = np.array([[3.0, 2.0], [6.0, 9.0], [0.0, 0.0]])
    out = localisation_error(spikes, centers)
    assert out["mean_error"] == pytest.approx(2.0)  # errors 0 and 4; step 2 is silent
    assert out["active_fraction"] == pytest.approx(2 / 3)
    model = SpeedChannels(1, [800.0], [0.08], kernel_radius=3)
    stim = stimuli[1.0]
    err = localisation_error(model(stimulus_event_frames(stim)), stim["centers"])
    assert err["mean_error"] < 2.0 and err["active_fraction"] > 0.9
    with pytest.raises(SpikingConfigError, match="centers"):
        localisation_error(spikes, centers[:2])


def test_selectivity_index_hand_values():
    tuning = pd.DataFrame({"channel": [0, 0, 0, 1, 1, 1, 2, 2, 2], "speed": [1, 2, 3] * 3,
                           "spike_count": [6, 2, 0, 1, 3, 1, 0, 0, 0]})
    si = selectivity_index(tuning).set_index("channel")
    assert si.loc[0, "selectivity"] == pytest.approx(1.0) and si.loc[0, "preferred_speed"] == 1
    assert si.loc[1, "selectivity"] == pytest.approx(0.5) and si.loc[1, "preferred_speed"] == 2
    assert si.loc[2, "selectivity"] == 0.0 and np.isnan(si.loc[2, "preferred_speed"])
    units = unit_speed_tuning({1: np.array([-1.0, 0.5]), 2: np.array([1.0, 0.5])})
    cmp = compare_speed_tuning(tuning, units).set_index("population")
    assert cmp.loc["dnn", "n_units"] == 2
    assert cmp.loc["dnn", "frac_prefer_2"] == pytest.approx(0.5)  # unit 0 prefers 2, unit 1 is flat


def test_events_and_occupancy_round_trip():
    stim = moving_disk(1.0, size=16, steps=10, radius=3)
    ev_frames = occupancy_to_events(stim["frames"])
    t, y, x = torch.nonzero(ev_frames, as_tuple=True)
    events = torch.stack([t, x, y], 1)
    assert torch.equal(events_to_frames(events, 10, 16, 16), ev_frames)
    assert torch.equal(stimulus_event_frames({"frames": stim["frames"], "events": events}), ev_frames)
    with pytest.raises(SpikingConfigError, match="outside"):
        events_to_frames(events + torch.tensor([0, 16, 0]), 10, 16, 16)


def test_kernel_and_bad_parameters():
    k = disk_kernel(3, surround=1.0)
    assert k.sum().item() == pytest.approx(0.0, abs=1e-6)
    assert disk_kernel(3).sum().item() == pytest.approx(1.0)
    with pytest.raises(SpikingConfigError, match="v_th"):
        SpeedChannels(2, [100.0, 100.0], [1.0])
    with pytest.raises(SpikingConfigError, match="tau_mem_inv"):
        SpeedChannels(1, [2000.0], [1.0], dt=1e-3)
    with pytest.raises(SpikingConfigError, match="n_channels"):
        fit_channels({1.0: moving_disk(1.0, steps=5)}, n_channels=2)


def test_h5_output_is_described(tmp_path, stimuli):
    params = {"tau_mem_inv": [800.0, 800.0], "v_th": [0.08, 0.3]}
    tuning = speed_tuning(channels_from_params(params), stimuli)
    path = tmp_path / "speed.h5"
    write_speed_channels_h5(str(path), params, tuning, {"mean_error": 1.0, "active_fraction": 0.9})
    assert undescribed(str(path)) == []


def test_split_by_speed_cuts_segments_and_drops_onsets():
    clips = [moving_disk(s, size=16, steps=12, radius=3) for s in (2.0, 0.5, 2.0)]
    frames = torch.as_tensor(np.concatenate([c["frames"] for c in clips]))
    on = frames.clone()
    on[1:] = on[1:] * (1 - frames[:-1])  # on-events, the whole disk at t = 0 and at each new segment
    t, y, x = torch.nonzero(on, as_tuple=True)
    stream = {"frames": frames, "events": torch.stack([t, x, y], 1).float(),
              "centers": torch.as_tensor(np.concatenate([c["centers"] for c in clips])),
              "speed": torch.tensor([2.0, 0.5, 2.0]), "segments": torch.tensor([[0, 12], [12, 24], [24, 36]])}
    parts = split_by_speed(stream)
    assert sorted(parts) == [0.5, 2.0] and len(parts[2.0]) == 2
    second = parts[2.0][1]
    np.testing.assert_allclose(second["centers"], clips[2]["centers"])
    ev = stimulus_event_frames(second)
    assert ev.shape == (12, 16, 16) and ev[0].sum() == 0  # onset burst dropped
    assert torch.equal(ev[1:], on[25:36])
    with pytest.raises(SpikingConfigError, match="segments"):
        split_by_speed({k: v for k, v in stream.items() if k != "segments"})


def test_fitted_inhibition_gives_each_channel_its_own_disk(stimuli, tmp_path):
    """The exercise's point: threshold channels all prefer the fastest disk; with the fitted inhibition from faster
    channels (a pool wider than the disk, a low-passed trace) the three prefer three different speeds, and most of
    each channel's spikes come from the disk it was fitted to."""
    from tdann.spiking import channel_selectivity, fit_inhibition

    params = fit_channels(stimuli, n_channels=3, tau_grid=(100.0, 400.0, 800.0), n_thresholds=16)
    params.update(inhibition_radius=8.0, inhibition_tau=20.0)
    plain = channel_selectivity(speed_tuning(channels_from_params(params), stimuli), params["target_speed"])
    assert plain["preferred_speed"].nunique() == 1 and (plain["preferred_speed"] == 2.0).all()
    best, tried = fit_inhibition(params, stimuli, [0.0, 2.0, 8.0, 16.0], 8.0, 20.0)
    assert best > 0 and tried.loc[tried["inhibition"] == 0.0, "distinct_preferences"].item() == 1
    sel = channel_selectivity(speed_tuning(channels_from_params({**params, "inhibition": best}), stimuli),
                              params["target_speed"])
    assert list(sel["preferred_speed"]) == list(SPEEDS)
    assert (sel["own_fraction"] > 0.5).all() and (sel["own_fraction"] > plain["own_fraction"]).iloc[:2].all()
    row_sums = sel[[f"frac_{s:g}" for s in SPEEDS]].sum(1)
    np.testing.assert_allclose(row_sums, 1.0)
    path = tmp_path / "speed.h5"
    write_speed_channels_h5(str(path), {**params, "inhibition": best}, speed_tuning(channels_from_params(params),
                                                                                   stimuli), inhibition_fit=tried)
    assert undescribed(str(path)) == []


def test_event_tensor_in_the_exercise_format_round_trips_and_refuses_code(tmp_path, stimuli):
    """The course's 2404_circle.dat is a sparse (T, X, Y) tensor saved with torch.save; ours are written so."""
    import os

    from tdann.spiking import SpikingConfigError, load_event_tensor, save_event_tensor

    frames = stimulus_event_frames(stimuli[1.0])
    path = tmp_path / "disk.dat"
    save_event_tensor(str(path), frames)
    raw = torch.load(path, weights_only=True)
    assert raw.layout == torch.sparse_coo and tuple(raw.shape) == (frames.shape[0], frames.shape[2], frames.shape[1])
    torch.testing.assert_close(load_event_tensor(str(path)), frames)
    x = int(frames[5].nonzero()[0, 1])  # a column with an event at step 5: it is the X axis of the file
    assert raw.to_dense()[5, x].any()

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    torch.save(Payload(), tmp_path / "evil.dat")
    with pytest.raises(SpikingConfigError, match="evil.dat: not an event tensor file, refused"):
        load_event_tensor(str(tmp_path / "evil.dat"))
    assert not (tmp_path / "ran").exists()
    torch.save(torch.zeros(3, 4), tmp_path / "flat.dat")
    with pytest.raises(SpikingConfigError, match=r"flat.dat: expected a \(T, X, Y\) tensor"):
        load_event_tensor(str(tmp_path / "flat.dat"))


def test_channels_answer_an_event_file_as_they_answer_its_frames(tmp_path, stimuli):
    """An event file of the exercise's size (500 x 50 x 50 in the course) read back gives the same spikes."""
    from tdann.spiking import channels_from_params, event_file_summary, load_event_tensor, save_event_tensor

    frames = stimulus_event_frames(stimuli[2.0])
    path = tmp_path / "circle.dat"
    save_event_tensor(str(path), frames)
    params = {"tau_mem_inv": [200.0, 400.0], "v_th": [0.01, 0.05], "kernel_radius": 3.0, "surround": 0.0, "dt": 0.001}
    channels = channels_from_params(params)
    direct, read = channels(frames), channels(load_event_tensor(str(path)))
    assert torch.equal(direct, read)
    rows = event_file_summary("circle", path, frames, read)
    assert [r["channel"] for r in rows] == [0, 1]
    assert rows[0]["steps"] == frames.shape[0] and rows[0]["x"] == frames.shape[2]
    assert rows[0]["spikes"] == int(direct[:, 0].sum()) and rows[0]["spikes"] >= rows[1]["spikes"]
    assert rows[0]["spikes"] > 0 and rows[0]["first_spike_step"] >= 0
    assert all((r["first_spike_step"] == -1) == (r["spikes"] == 0) for r in rows)
