"""Tests of tdann.training: resume bit for bit, NaN guard, SIGTERM, log, weights, alpha effect, bad input.

Tiny models (width 0.125, 32 px images / 4x16x16 clips) on random uint8 stores written to tmp.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from tdann import models, positions, training
from tdann.chance import chance_levels
from tdann.training import TrainConfig
from tdann.training.batches import Prefetch

torch.set_num_threads(1)

SHEET_SPEC = {"sheet_size": 10.0, "neighborhood_width": 7.0, "rf_overlap": 0.1, "min_units": 10, "max_units": 48}


def _write_store(path: Path, kind: str, shape: tuple[int, ...], n: int, n_val: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f[kind] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        f["split"] = (np.arange(n) >= n - n_val).astype(np.uint8)
    return path


def _write_sheets(path: Path, arch: str, input_shape: tuple[int, ...], width: float = 0.125) -> Path:
    model = models.build_model(arch, width)
    sheets = positions.init_sheets(model, input_shape, {k: SHEET_SPEC for k in models.LAYERS}, seed=0, n_windows=100)
    positions.save_sheets(path, sheets)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """(store, sheets) per task: ``simclr`` (resnet18 images), ``moco`` (r3d_18 clips)."""
    d = tmp_path_factory.mktemp("data")
    return {
        "simclr": (_write_store(d / "images.h5", "images", (36, 36, 3), 48, 24),
                   _write_sheets(d / "sheets2d.h5", "resnet18", (3, 32, 32))),
        "moco": (_write_store(d / "clips.h5", "clips", (6, 20, 20, 3), 24, 8),
                 _write_sheets(d / "sheets3d.h5", "r3d_18", (3, 4, 16, 16))),
    }


def _cfg(task: str = "simclr", **kw) -> TrainConfig:
    base = dict(width=0.125, steps=6, batch_size=8, lr=0.05, warmup_steps=1, checkpoint_every=2, log_every=1,
                threads=1, proj_hidden=32, proj_dim=16, device="cpu", seed=3)
    if task == "simclr":
        base.update(stream="ventral", arch="resnet18", input_size=32, task="simclr", temperature=0.1)
    else:
        base.update(stream="dorsal", arch="r3d_18", input_size=16, clip_len=4, task="moco", temperature=0.2,
                    moco_k=32, moco_m=0.9)
    base.update(kw)
    return TrainConfig(**base)


def _run(cfg: TrainConfig, data: dict, run: Path, **kw) -> dict:
    store, sheets = data[cfg.task]
    return training.train(cfg, store, sheets, run / "ckpt", run / "weights.pt", run / "log.csv", progress=False, **kw)


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uninterrupted 6-step runs of both tasks."""
    out = {}
    for task in ("simclr", "moco"):
        run = tmp_path_factory.mktemp(f"ref_{task}")
        _run(_cfg(task), data, run)
        out[task] = run
    return out


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _load(a), _load(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


class _Kill(Exception):
    pass


@pytest.mark.parametrize("task", ["simclr", "moco"])
def test_resume_after_kill_is_bit_identical(task: str, data: dict, reference: dict, tmp_path: Path) -> None:
    def kill_at_3(step: int) -> None:
        if step == 3:  # checkpoint at 2, step 3 done but lost
            raise _Kill

    with pytest.raises(_Kill):
        _run(_cfg(task), data, tmp_path, on_step=kill_at_3)
    assert training.load_checkpoint(tmp_path / "ckpt" / "checkpoint.pt")["step"] == 2
    out = _run(_cfg(task), data, tmp_path)
    assert out["resumed_from"] == 2
    _assert_same_weights(reference[task] / "weights.pt", tmp_path / "weights.pt")
    log, ref = pd.read_csv(tmp_path / "log.csv"), pd.read_csv(reference[task] / "log.csv")
    assert log["step"].tolist() == [1, 2, 3, 4, 5, 6]  # one row per step, no duplicates after resume
    cols = [c for c in ref.columns if c != "samples_per_s"]
    pd.testing.assert_frame_equal(log[cols], ref[cols])
    # training moved the weights away from the seeded initialisation, so equality above is not trivial
    torch.manual_seed(_cfg(task).seed)
    init = models.build_model(_cfg(task).arch, 0.125).state_dict()
    trained = _load(tmp_path / "weights.pt")
    assert not torch.equal(init["layer1.0.conv1.weight" if task == "simclr" else "layer1.0.conv1.0.weight"],
                           trained["layer1.0.conv1.weight" if task == "simclr" else "layer1.0.conv1.0.weight"])
    assert torch.equal(init["fc.weight"], trained["fc.weight"])  # same start; fc is not trained


def test_log_columns_and_finished_rerun(data: dict, reference: dict) -> None:
    log = pd.read_csv(reference["simclr"] / "log.csv")
    expected = ["step", "task_loss", "task_top1", *[f"sl_{k}" for k in models.LAYERS], "total_loss", "lr",
                "samples_per_s"]
    assert list(log.columns) == expected
    assert len(log) == 6 and log["step"].is_unique
    sl = log[[f"sl_{k}" for k in models.LAYERS]].to_numpy()
    assert np.all((sl >= 0) & (sl <= 1))
    alpha = _cfg().layer_alpha("layer1.0")
    np.testing.assert_allclose(log["total_loss"], log["task_loss"] + alpha * sl.sum(1), rtol=1e-5)
    assert log["lr"].iloc[0] == pytest.approx(0.05) and log["lr"].iloc[-1] < log["lr"].iloc[1]  # warmup, cosine
    # every checkpoint loads with weights_only; a finished run reruns without training
    ck = training.load_checkpoint(reference["simclr"] / "ckpt" / "checkpoint.pt")
    assert ck["step"] == 6 and {"model", "task", "optimizer", "scheduler", "rng"} <= set(ck)
    out = _run(_cfg(), data, reference["simclr"])
    assert out["resumed_from"] == 6 and out["last"]["step"] == 6


def test_nonfinite_loss_names_step_and_terms(data: dict, tmp_path: Path) -> None:
    cfg = _cfg(lr=1e30, warmup_steps=0, checkpoint_every=1)
    with pytest.raises(training.NonFiniteLossError) as err:
        _run(cfg, data, tmp_path)
    msg = str(err.value)
    assert msg.startswith("non-finite loss at step 2:"), msg  # step 1's update overflows the weights
    for term in ("task_loss=nan", "task_top1=", "sl_layer1.0=", "sl_layer4.1=", "total_loss=nan"):
        assert term in msg
    ck_path = tmp_path / "ckpt" / "checkpoint.pt"
    ck = training.load_checkpoint(ck_path)  # the last good checkpoint is kept and loads
    assert ck["step"] == 1
    assert all(bool(torch.isfinite(v).all()) for v in ck["model"].values() if v.is_floating_point())
    models.load_weights(ck_path, "resnet18", 0.125)  # usable as weights


def test_sigterm_checkpoints_then_resumes(data: dict, reference: dict, tmp_path: Path) -> None:
    def term_at_3(step: int) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(training.Preempted) as err:
        _run(_cfg(), data, tmp_path, on_step=term_at_3)
    assert err.value.exit_code == training.EXIT_PREEMPTED == 75
    assert training.load_checkpoint(tmp_path / "ckpt" / "checkpoint.pt")["step"] == 3
    assert not (tmp_path / "weights.pt").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored
    out = _run(_cfg(), data, tmp_path)
    assert out["resumed_from"] == 3
    _assert_same_weights(reference["simclr"] / "weights.pt", tmp_path / "weights.pt")


def test_weights_load_into_torchvision(tmp_path: Path) -> None:
    model = models.build_model("resnet18", 1.0).eval()
    training.save_weights(model, tmp_path / "w.pt")
    tv = torchvision.models.resnet18().eval()
    tv.load_state_dict(_load(tmp_path / "w.pt"))  # strict
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tv(x), model(x))


def test_trained_weights_and_head_evaluate(data: dict, reference: dict) -> None:
    store, sheets = data["simclr"]
    run = reference["simclr"]
    info = models.weights_info(run / "weights.pt")
    assert (info["arch"], info["width"], info["input_size"], info["clip_len"]) == ("resnet18", 0.125, 32, 1)
    model = models.load_weights(run / "weights.pt", "resnet18", 0.125)
    assert isinstance(model, models.ResNet)
    res = training.evaluate(_cfg(), run / "weights.pt", store, sheets, n_batches=2, seed=0,
                            head_path=run / "ckpt" / "head.pt")
    again = training.evaluate(_cfg(), run / "weights.pt", store, sheets, n_batches=2, seed=0,
                              head_path=run / "ckpt" / "head.pt")
    assert res == again  # fixed eval seed
    assert 0 < res["task_loss"] < 10 and 0 <= res["task_top1"] <= 1 and 0 <= res["sl_mean"] <= 1
    store3, sheets3 = data["moco"]
    res3 = training.evaluate(_cfg("moco"), reference["moco"] / "weights.pt", store3, sheets3, n_batches=1,
                             head_path=reference["moco"] / "ckpt" / "head.pt")
    assert np.isfinite(res3["task_loss"]) and set(res3) >= {f"sl_{k}" for k in models.LAYERS}


def test_alpha_lowers_held_out_spatial_loss(data: dict, tmp_path: Path) -> None:
    store, sheets = data["simclr"]
    layers = ("layer3.1", "layer4.1")
    result = {}
    for alpha in (0.0, 5.0):
        cfg = _cfg(alpha=alpha, layers=layers, steps=25, lr=0.1, batch_size=16, checkpoint_every=25)
        run = tmp_path / f"a{alpha}"
        _run(cfg, data, run)
        result[alpha] = training.evaluate(cfg, run / "weights.pt", store, sheets, n_batches=3, seed=1)
    assert result[5.0]["sl_mean"] < result[0.0]["sl_mean"] - 0.05, result


def test_config_from_dict_rejects_bad_values() -> None:
    d = _cfg().to_dict()
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == _cfg()
    with pytest.raises(training.TrainConfigError, match="bogus"):
        TrainConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(training.TrainConfigError, match="arch"):
        TrainConfig.from_dict({**d, "arch": "r3d_18"})  # ventral stream
    with pytest.raises(training.TrainConfigError, match="not tapped"):
        TrainConfig.from_dict({**d, "layers": ["layer4.1"], "alpha": {"layer2.0": 1.0}})
    with pytest.raises(training.TrainConfigError, match="alpha"):
        TrainConfig.from_dict({**d, "alpha": -1})
    cfg = TrainConfig.from_dict({**d, "alpha": {"layer4.1": 2.0}})
    assert cfg.layer_alpha("layer4.1") == 2.0 and cfg.layer_alpha("layer1.0") == 0.0


def test_bad_inputs_raise_clear_errors(data: dict, tmp_path: Path) -> None:
    store, sheets = data["simclr"]
    clips, _sheets3 = data["moco"]
    with pytest.raises(training.DataStoreError, match="clips"):
        training.train(_cfg(), clips, sheets, tmp_path / "r1", tmp_path / "w.pt", tmp_path / "l.csv", progress=False)
    wide = _write_sheets(tmp_path / "wide.h5", "resnet18", (3, 32, 32), width=0.25)
    with pytest.raises(training.TrainConfigError, match="layer1.0"):  # sheets of another width
        training.train(_cfg(), store, wide, tmp_path / "r2", tmp_path / "w.pt", tmp_path / "l.csv", progress=False)
    with pytest.raises(training.TrainConfigError, match="layer"):  # sheets lack a tapped layer
        only = tmp_path / "only.h5"
        full = positions.load_sheets(sheets)
        positions.save_sheets(only, {"layer4.1": full["layer4.1"]})
        training.train(_cfg(), store, only, tmp_path / "r3", tmp_path / "w.pt", tmp_path / "l.csv", progress=False)
    _run(_cfg(steps=2, checkpoint_every=1), data, tmp_path / "r4")
    with pytest.raises(training.ResumeError, match="lr"):  # resuming with another config
        _run(_cfg(steps=2, checkpoint_every=1, lr=0.5), data, tmp_path / "r4")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(training.ResumeError, match="bad.pt"):
        training.load_checkpoint(tmp_path / "bad.pt")


def test_batch_indices_are_seeded_epochs() -> None:
    a = np.concatenate([training.batch_indices(10, 4, s, seed=1) for s in range(5)])  # 2 epochs
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:]) == list(range(10))
    assert np.array_equal(training.batch_indices(10, 4, 3, seed=1), a[12:16])
    assert not np.array_equal(training.batch_indices(10, 4, 0, seed=2), a[:4])


def test_main_ddp_single_process(data: dict, tmp_path: Path) -> None:
    store, sheets = data["simclr"]
    (tmp_path / "cfg.json").write_text(json.dumps(_cfg(steps=2).to_dict()))
    rc = training.main_ddp(["--config", str(tmp_path / "cfg.json"), "--data", str(store), "--sheets", str(sheets),
                            "--run-dir", str(tmp_path / "run"), "--weights", str(tmp_path / "w.pt"),
                            "--log-csv", str(tmp_path / "log.csv"), "--no-progress"])
    assert rc == 0 and len(pd.read_csv(tmp_path / "log.csv")) == 2


# ---------------------------------------------------------------------------------------------- learning


def _grating_store(path: Path, n: int = 256, n_val: int = 64, size: int = 40) -> Path:
    """Distinct images (a grating of random orientation, frequency, phase and tint under a coloured blob): instance
    discrimination is learnable through SimCLR's augmentations within a hundred steps."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    imgs = []
    for _ in range(n):
        th, sf, ph = rng.uniform(0, np.pi), rng.uniform(1.5, 6), rng.uniform(0, 2 * np.pi)
        g = np.sin(2 * np.pi * sf * (x * np.cos(th) + y * np.sin(th)) + ph)
        blob = np.exp(-((x - rng.uniform(0.2, 0.8)) ** 2 + (y - rng.uniform(0.2, 0.8)) ** 2) / 0.05)
        img = 0.5 + 0.4 * g[..., None] * rng.uniform(0.3, 1, 3) + 0.3 * (blob[..., None] - 0.3) * rng.uniform(-1, 1, 3)
        imgs.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    with h5py.File(path, "w") as f:
        f["images"] = np.stack(imgs)
        f["split"] = (np.arange(n) >= n - n_val).astype(np.uint8)
    return path


@pytest.fixture(scope="module")
def learnable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("learnable")
    return _grating_store(d / "gratings.h5"), _write_sheets(d / "sheets.h5", "resnet18", (3, 32, 32))


@pytest.mark.parametrize("setting, learns", [
    ({"lr": training.scaled_lr(0.3, 32), "head_bn": True}, True),   # the published rate per 256, scaled: learns
    ({"lr": 0.3, "head_bn": True}, False),                          # the per-256 rate unscaled (8x): collapses
    ({"lr": training.scaled_lr(0.3, 32), "head_bn": False}, False),  # SimCLR v1's head at this scale: stuck
])
def test_short_run_learns_only_with_the_scaled_rate(setting: dict, learns: bool, learnable: tuple,
                                                    tmp_path: Path) -> None:
    store, sheets = learnable
    cfg = _cfg(alpha=0.0, steps=150, batch_size=32, warmup_steps=5, checkpoint_every=1000, log_every=50,
               proj_hidden=64, proj_dim=32, seed=0, **setting)
    training.train(cfg, store, sheets, tmp_path / "run", tmp_path / "w.pt", tmp_path / "log.csv", progress=False)
    ev = training.evaluate(cfg, tmp_path / "w.pt", store, sheets, n_batches=4, head_path=tmp_path / "run" / "head.pt")
    chance = chance_levels(32)
    assert ev["task_loss_chance"] == pytest.approx(np.log(63)) == pytest.approx(chance["task_loss_chance"])
    assert ev["task_loss_ratio"] == pytest.approx(ev["task_loss"] / np.log(63))
    if learns:
        assert ev["task_loss_ratio"] < 0.9 and ev["task_top1"] > 2 * chance["task_top1_chance"]
    else:
        assert ev["task_loss_ratio"] > 0.95


def test_scaled_lr_and_chance_levels() -> None:
    assert training.scaled_lr(0.3, 512) == pytest.approx(0.6)
    assert training.scaled_lr(0.3, 32) == pytest.approx(0.0375)
    assert training.scaled_lr(0.03, 256) == pytest.approx(0.03)
    with pytest.raises(training.TrainConfigError, match="lr_per_256"):
        training.scaled_lr(0.0, 32)
    assert chance_levels(16) == {"task_loss_chance": pytest.approx(np.log(31)),
                                          "task_top1_chance": pytest.approx(1 / 31)}


def test_run_key_changes_with_config_and_inputs_not_with_resumable_fields() -> None:
    base = training.run_key(_cfg(), "data1", "sheet1")
    assert training.run_key(_cfg(threads=2, checkpoint_every=5), "data1", "sheet1") == base
    assert training.run_key(_cfg(lr=0.5), "data1", "sheet1") != base
    assert training.run_key(_cfg(), "data2", "sheet1") != base
    assert training.run_key(_cfg(), "data1", "sheet2") != base


def test_a_failed_save_leaves_no_temporary_file_and_names_the_path(tmp_path: Path, monkeypatch) -> None:
    """Disk full mid-save: the old file stays, the 16 MB temporary file does not, the error names the target."""
    target = tmp_path / "weights.pt"
    models.atomic_save({"w": torch.zeros(3)}, target)
    before = target.read_bytes()

    def full_disk(obj, fh):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=str(target)):
        models.atomic_save({"w": torch.ones(3)}, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


@pytest.mark.parametrize("task", ["simclr", "moco"])
def test_channels_last_trains_to_the_float32_result_and_bf16_waits_for_cuda(task: str, data: dict, reference: dict,
                                                                            tmp_path: Path) -> None:
    """channels_last gives the default layout's losses to float precision (the first steps; a tiny net at this
    learning rate amplifies float error to ~2% by step 6) and contiguous weights; amp: bf16 is a
    CUDA setting, so on a CPU the run is the float32 one, bit for bit (tdann.gpucheck times bf16 on a GPU)."""
    ref = pd.read_csv(reference[task] / "log.csv")
    run = tmp_path / "cl"
    _run(_cfg(task, channels_last=True), data, run)
    got = pd.read_csv(run / "log.csv")
    np.testing.assert_allclose(got["task_loss"][:2], ref["task_loss"][:2], rtol=1e-4)  # then float error grows
    np.testing.assert_allclose(got["task_loss"], ref["task_loss"], rtol=0.05)
    assert all(v.is_contiguous() for v in _load(run / "weights.pt").values())
    _run(_cfg(task, amp="bf16"), data, tmp_path / "bf16")
    _assert_same_weights(tmp_path / "bf16" / "weights.pt", reference[task] / "weights.pt")
    with pytest.raises(training.TrainConfigError, match="amp"):
        _cfg(task, amp="fp8")


def test_speed_settings_at_their_defaults_keep_the_run_key() -> None:
    base = training.run_key(_cfg(), "d", "s")
    assert training.run_key(_cfg(amp="none", channels_last=False), "d", "s") == base
    assert training.run_key(_cfg(amp="bf16"), "d", "s") != base


@pytest.mark.parametrize("task", ["simclr", "moco"])
def test_topo_objective_lowers_held_out_topo_loss(task: str, data: dict, tmp_path: Path) -> None:
    """sl_kind topo trains TopoLoss on the tapped blocks' weights (no sheet features needed) and evaluates it."""
    store, sheets = data[task]
    layers = ("layer2.0", "layer3.1") if task == "simclr" else ("layer2.0",)
    result = {}
    for alpha in (0.0, 5.0):
        cfg = _cfg(task, alpha=alpha, layers=layers, steps=12, lr=0.1, checkpoint_every=12, sl_kind="topo",
                   topo_factor=2.0)
        run = tmp_path / f"a{alpha}"
        _run(cfg, data, run)
        result[alpha] = training.evaluate(cfg, run / "weights.pt", store, sheets, n_batches=2, seed=1)
    assert result[5.0]["sl_mean"] < result[0.0]["sl_mean"] - 0.02, result
    assert training.run_key(_cfg(topo_factor=3.0), "d", "s") == training.run_key(_cfg(), "d", "s")
    with pytest.raises(training.TrainConfigError, match="topo_factor"):
        _run(_cfg(task, sl_kind="topo", topo_factor=50.0, layers=layers), data, tmp_path / "bad")


@pytest.mark.parametrize("max_bytes", [1 << 30, 0])  # in memory, and read from disk batch by batch
def test_batches_read_ahead_are_the_batches_of_their_steps(data: dict, max_bytes: int) -> None:
    store = training.TrainingStore(data["simclr"][0], "images", split=0, max_bytes=max_bytes)
    ahead = Prefetch(store, 8, 3, start=2, stop=7, pin=False)
    try:
        for step in range(2, 7):
            expected = store.get(training.batch_indices(len(store), 8, step, 3))  # h5py serialises the reads
            assert torch.equal(ahead.get(step), expected)
    finally:
        ahead.close()
    early = Prefetch(store, 8, 3, start=0, stop=1000, pin=False)  # a run stopped early (SIGTERM)
    early.get(0)
    early.close()
    assert not early._thread.is_alive()
    store.close()


def test_a_read_error_in_the_prefetch_thread_reaches_the_training_loop(data: dict) -> None:
    class Broken:
        def __len__(self):
            return 10

        def get(self, idx):
            raise OSError("disk gone")

    ahead = Prefetch(Broken(), 4, 0, start=0, stop=3, pin=False)
    with pytest.raises(OSError, match="disk gone"):
        ahead.get(0)
    ahead.close()


def test_a_stream_config_becomes_the_run_of_a_stage() -> None:
    import yaml
    from snakemake.utils import validate

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    validate(config, str(root / "workflow/schemas/config.schema.yaml"))  # fills the schema's defaults
    stream = config["streams"]["ventral"]
    cfg = TrainConfig.from_stream("ventral", stream, "train", 2.5, 1, "cpu", 2)
    sched = stream["train"]
    assert (cfg.steps, cfg.batch_size, cfg.seed, cfg.threads) == (sched["steps"], sched["batch_size"], 1, 2)
    assert cfg.lr == pytest.approx(sched["lr_per_256"] * sched["batch_size"] / 256)
    for layer, spec in stream["layers"].items():
        assert cfg.layer_alpha(layer) == pytest.approx(2.5 * spec.get("alpha_scale", 1.0))
    assert cfg.checkpoint_every == max(1, sched["steps"] // 4) and cfg.task == stream["task"]
    with pytest.raises(training.TrainConfigError, match="unknown training config keys"):
        TrainConfig.from_stream("ventral", {**stream, "optim": {**stream["optim"], "bogus": 1}}, "train", 0, 0)
