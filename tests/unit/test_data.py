"""Tests for tdann.data: downloads from a local HTTP server, safe extraction, dataset entries, image store."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tdann.data import (
    ChecksumError,
    DatasetConfigError,
    DownloadError,
    UnsafeArchiveError,
    build_image_store,
    download,
    fetch_dataset,
    safe_extract,
)
from tdann.h5io import read_strings, undescribed
from tdann.stores import Store
from tdann.video import make_synthetic_video


def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None, mode: str = "w:gz") -> bytes:
    """A tar archive (in memory) of regular files plus symlinks name -> target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


PAYLOAD = np.random.default_rng(0).bytes(30_000)  # incompressible, so the archive is ~30 kB
GOOD = make_tar({"data/a.txt": b"alpha\n", "data/sub/b.bin": PAYLOAD})
CORRUPT = GOOD[:100] + bytes([GOOD[100] ^ 0xFF]) + GOOD[101:]
EVIL = make_tar({"ok.txt": b"fine", "../evil": b"escaped"})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """A local HTTP server with Range support; counts bytes and requests per path; can drop connections."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.bytes_served, self.requests = files, Counter(), Counter()
        self.drop_after: dict[str, int] = {}  # path -> bytes to send before closing, on the next request only
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests[self.path] += 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.drop_after:
                    body = body[: server.drop_after.pop(self.path)]
                    self.close_connection = True
                # counted before the write: the client may finish reading (and the test check the count) before
                # this thread returns from write(), which made the resume tests flaky under load
                server.bytes_served[self.path] += len(body)
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server():
    s = Server({"/good.tar.gz": GOOD, "/corrupt.tar.gz": CORRUPT, "/evil.tar.gz": EVIL})
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_download_verifies_and_skips_existing(server: Server, tmp_path: Path) -> None:
    entry = {"url": f"{server.url}/good.tar.gz", "sha256": sha(GOOD), "name": "g.tar.gz"}
    before = server.requests["/good.tar.gz"]
    (path,) = download([entry], tmp_path)
    assert path == tmp_path / "g.tar.gz" and path.read_bytes() == GOOD
    assert download([entry], tmp_path) == [path]
    assert server.requests["/good.tar.gz"] == before + 1  # the second call found the verified file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.tar.gz"]


def test_checksum_mismatch_raises_and_deletes(server: Server, tmp_path: Path) -> None:
    entry = {"url": f"{server.url}/corrupt.tar.gz", "sha256": sha(GOOD)}
    with pytest.raises(ChecksumError) as err:
        download([entry], tmp_path, backoff=0)
    assert "corrupt.tar.gz" in str(err.value) and sha(GOOD) in str(err.value) and sha(CORRUPT) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_partial_file_is_resumed_not_restarted(server: Server, tmp_path: Path) -> None:
    assert len(GOOD) > 20_000
    (tmp_path / "good.tar.gz.part").write_bytes(GOOD[:1000])
    served = server.bytes_served["/good.tar.gz"]
    (path,) = download([{"url": f"{server.url}/good.tar.gz", "sha256": sha(GOOD)}], tmp_path)
    assert path.read_bytes() == GOOD
    assert server.bytes_served["/good.tar.gz"] - served == len(GOOD) - 1000


def test_dropped_connection_is_retried_and_resumed(server: Server, tmp_path: Path) -> None:
    served = server.bytes_served["/good.tar.gz"]
    server.drop_after["/good.tar.gz"] = 7000
    (path,) = download([{"url": f"{server.url}/good.tar.gz", "sha256": sha(GOOD)}], tmp_path, backoff=0)
    assert path.read_bytes() == GOOD
    assert server.bytes_served["/good.tar.gz"] - served == len(GOOD)  # 7000 + the rest, nothing twice
    assert server.requests["/good.tar.gz"] >= 2


def test_http_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="missing.tar.gz.*404"):
        download([{"url": f"{server.url}/missing.tar.gz", "sha256": "0" * 64}], tmp_path, backoff=0)
    assert server.requests["/missing.tar.gz"] == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"url": "ftp://x/y", "sha256": "0" * 64},
        {"url": "http://x/y", "sha256": "abc"},
        {"url": "http://x/y", "sha256": "0" * 64, "name": "../y"},
    ],
)
def test_bad_download_entries(entry: dict, tmp_path: Path) -> None:
    with pytest.raises(DatasetConfigError):
        download([entry], tmp_path)


def test_safe_extract_extracts_everything(tmp_path: Path) -> None:
    archive = tmp_path / "good.tar.gz"
    archive.write_bytes(GOOD)
    files = safe_extract(archive, tmp_path / "out")
    assert files == [tmp_path / "out/data/a.txt", tmp_path / "out/data/sub/b.bin"]
    assert files[1].read_bytes() == PAYLOAD


def zip_bytes(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr(name, b"escaped")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, member",
    [
        (EVIL, "../evil"),
        (make_tar({"ok.txt": b"x", "/abs/evil": b"y"}, mode="w"), "/abs/evil"),
        (make_tar({"ok.txt": b"x"}, links={"link": "../../etc/passwd"}, mode="w:bz2"), "link"),
        (make_tar({"ok.txt": b"x"}, links={"d/link": "/etc"}, mode="w:xz"), "d/link"),
        (zip_bytes("a/../../evil"), "a/../../evil"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_extracted(tmp_path: Path, data: bytes, member: str) -> None:
    archive = tmp_path / "bad.archive"
    archive.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("untouched")
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    assert "bad.archive" in str(err.value) and repr(member) in str(err.value)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.archive", "out"]  # no temporary folder left


def test_device_files_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("dev/null")
        info.type = tarfile.CHRTYPE
        tf.addfile(info)
    (tmp_path / "dev.tar").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="dev/null"):
        safe_extract(tmp_path / "dev.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fetch_url_dataset_with_extraction(server: Server, tmp_path: Path) -> None:
    entry = {"kind": "url", "extract": True, "urls": [{"url": f"{server.url}/good.tar.gz", "sha256": sha(GOOD)}]}
    dest = fetch_dataset(entry, tmp_path / "ds")
    manifest = pd.read_csv(dest / "manifest.csv")
    assert manifest["file"].tolist() == ["data/a.txt", "data/sub/b.bin", "downloads/good.tar.gz"]
    for row in manifest.itertuples():
        assert row.sha256 == sha((dest / row.file).read_bytes()) and row.kind == "url"


def test_fetch_url_dataset_with_unsafe_archive(server: Server, tmp_path: Path) -> None:
    entry = {"kind": "url", "extract": True, "urls": [{"url": f"{server.url}/evil.tar.gz", "sha256": sha(EVIL)}]}
    with pytest.raises(UnsafeArchiveError, match="'../evil'"):
        fetch_dataset(entry, tmp_path / "ds")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["downloads"]


def test_fetch_local_dataset(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "videos").mkdir(parents=True)
    (src / "videos/v.mp4").write_bytes(b"not really a video")
    dest = fetch_dataset({"kind": "local", "path": str(src)}, tmp_path / "ds")
    assert (dest / "videos/v.mp4").read_bytes() == b"not really a video"
    assert pd.read_csv(dest / "manifest.csv")["file"].tolist() == ["videos/v.mp4"]
    with pytest.raises(DatasetConfigError, match=r"'path'.*nowhere"):
        fetch_dataset({"kind": "local", "name": "mine", "path": str(tmp_path / "nowhere")}, tmp_path / "ds2")


def test_fetch_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(DatasetConfigError, match="kind"):
        fetch_dataset({"kind": "torrent"}, tmp_path)
    with pytest.raises(DatasetConfigError, match="n_frames"):
        fetch_dataset({"kind": "synthetic", "n_videos": 1, "n_frames": 0, "size": 32}, tmp_path)


def test_fetch_packaged_dataset(tmp_path: Path) -> None:
    dest = fetch_dataset({"kind": "packaged"}, tmp_path / "pk")
    manifest = pd.read_csv(dest / "manifest.csv")
    folders = Counter(f.split("/")[0] for f in manifest["file"])
    assert folders == {"faces": 100, "nonfaces": 100, "images": 14, "videos": 4}
    assert {"videos/bikes.mp4", "videos/bigbuckbunny.mp4", "images/astronaut.png"} <= set(manifest["file"])
    face = np.asarray(Image.open(dest / "faces/face_000.png"))
    assert face.shape == (25, 25) and face.dtype == np.uint8 and face.std() > 10
    row = manifest[manifest["file"] == "images/grace_hopper.png"].iloc[0]
    assert row.sha256 == sha((dest / row.file).read_bytes())


def test_fetch_synthetic_dataset(tmp_path: Path) -> None:
    entry = {"kind": "synthetic", "n_videos": 2, "n_frames": 6, "size": 32, "fps": 10, "seed": 5}
    dest = fetch_dataset(entry, tmp_path / "syn")
    manifest = pd.read_csv(dest / "manifest.csv")
    assert manifest["file"].tolist() == ["videos/synthetic_000.mp4", "videos/synthetic_001.mp4"]
    assert manifest["sha256"].nunique() == 2


@pytest.fixture(scope="module")
def photo_sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six flat-coloured photos of different sizes and a synthetic video."""
    d = tmp_path_factory.mktemp("photos")
    for k in range(6):
        colour = np.array([40 * k, 255 - 40 * k, 100], np.uint8)
        Image.fromarray(np.broadcast_to(colour, (50 + 10 * k, 80, 3)).copy()).save(d / f"p{k}.png")
    Image.fromarray(np.full((30, 30), 77, np.uint8)).save(d / "gray.jpg")
    video = make_synthetic_video(d / "v.mp4", n_frames=20, size=64, fps=20, seed=0)
    return d, video


def test_image_store_split_by_source_and_content(photo_sources, tmp_path: Path) -> None:
    photos, video = photo_sources
    out = tmp_path / "images.h5"
    summary = build_image_store(
        [photos], [video], out, 16, crops_per_image=3, frames_per_video=4, val_fraction=0.3, seed=1
    )
    assert summary["n_images"] == 7 * 3 + 4 and summary["n_sources"] == 8 and summary["n_val_sources"] == 2
    with h5py.File(out, "r") as f:
        images, source, split = f["images"][()], read_strings(f["source"]), f["split"][()]
        assert f["images"].chunks == (1, 16, 16, 3) and f.attrs["n_val"] == split.sum() == summary["n_val"]
    assert images.shape == (25, 16, 16, 3) and images.dtype == np.uint8
    for s in set(source):  # each source is in exactly one split
        assert len({split[i] for i, t in enumerate(source) if t == s}) == 1
    for i, s in enumerate(source):  # crops come from their own photo
        if s.endswith(".png"):
            k = int(Path(s).stem[1:])
            np.testing.assert_array_equal(images[i], np.broadcast_to([40 * k, 255 - 40 * k, 100], (16, 16, 3)))
    frames = images[[i for i, s in enumerate(source) if s == str(video)]]
    assert len(frames) == 4 and frames.std() > 10
    assert undescribed(str(out)) == []
    store = Store(out)
    assert len(store) == 25 and store[3].shape == (16, 16, 3)
    assert sorted(np.concatenate([store.indices("train"), store.indices("val")])) == list(range(25))
    assert pickle.loads(pickle.dumps(store))[0].shape == (16, 16, 3)


def test_image_store_is_deterministic(photo_sources, tmp_path: Path) -> None:
    photos, video = photo_sources
    texture = tmp_path / "texture"
    texture.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(texture / "noise.png")
    stores = []
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        build_image_store([photos, texture], [video], tmp_path / f"{name}.h5", 16, 2, 3, 0.3, seed)
        with h5py.File(tmp_path / f"{name}.h5", "r") as f:
            stores.append((f["images"][()], f["split"][()]))
    np.testing.assert_array_equal(stores[0][0], stores[1][0])
    np.testing.assert_array_equal(stores[0][1], stores[1][1])
    assert not np.array_equal(stores[0][0], stores[2][0])


def test_image_store_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DatasetConfigError, match="nowhere"):
        build_image_store([tmp_path / "nowhere"], [], tmp_path / "s.h5", 16, 1, 1, 0.1, 0)
    with pytest.raises(DatasetConfigError, match="gone.mp4"):
        build_image_store([], [tmp_path / "gone.mp4"], tmp_path / "s.h5", 16, 1, 1, 0.1, 0)
    with pytest.raises(DatasetConfigError, match="no photos or videos"):
        build_image_store([tmp_path], [], tmp_path / "s.h5", 16, 1, 1, 0.1, 0)
    assert not (tmp_path / "s.h5").exists()


def test_store_batches_items_and_sample(tmp_path):
    import h5py

    from tdann import stores as D

    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (7, 6, 20, 20, 3), dtype=np.uint8)
    path = tmp_path / "clips.h5"
    with h5py.File(path, "w") as f:
        f["clips"] = clips
    assert D.store_len(path) == 7
    batches = list(D.store_batches(path, 3, size=10, clip_len=4))
    assert [s for s, _ in batches] == [0, 3, 6]
    x = np.concatenate([b for _, b in batches])
    assert x.shape == (7, 3, 4, 10, 10) and x.dtype == np.float32
    # area resize of a frame = mean of 2x2 blocks
    expected = clips[2, 1].astype(np.float32).reshape(10, 2, 10, 2, 3).mean((1, 3)) / 255
    assert np.allclose(np.moveaxis(x[2, :, 1], 0, -1), expected, atol=1e-6)
    items = D.store_items(path, [5, 1, 5])
    assert items.shape == (3, 3, 6, 20, 20)
    assert np.allclose(items[0], items[2]) and np.allclose(items[1], np.moveaxis(clips[1], -1, 0) / 255)
    assert D.store_sample(path, 3, size=10, clip_len=2, seed=1).shape == (3, 3, 2, 10, 10)
    with pytest.raises(D.StoreError, match="frames"):
        next(D.store_batches(path, 2, size=10, clip_len=9))


def test_imagenet_style_tree_through_a_local_dataset(tmp_path: Path) -> None:
    """ImageNet's train/<wnid>/*.JPEG: upper-case suffixes, class folders that a local dataset links."""
    from PIL import Image

    from tdann.data import IMAGE_SUFFIXES, build_image_store, find_files

    train = tmp_path / "imagenet/train"
    rng = np.random.default_rng(0)
    for wnid in ("n01440764", "n01443537"):
        (train / wnid).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)).save(train / wnid / f"{wnid}_{i}.JPEG")
    dest = fetch_dataset({"kind": "local", "path": str(train)}, tmp_path / "data/imagenet")
    assert (dest / "n01440764").is_symlink()
    assert len(find_files([dest], IMAGE_SUFFIXES)) == 6
    build_image_store([dest], [], tmp_path / "images.h5", size=32, crops_per_image=2, frames_per_video=0,
                      val_fraction=0.34, seed=0)
    with h5py.File(tmp_path / "images.h5") as f:
        assert f["images"].shape == (12, 32, 32, 3)


def test_one_store_reader_reads_both_kinds_and_names_a_wrong_file(tmp_path):
    """tdann.stores.Store: an image store's split, a clip store's split by video, a file of neither kind named."""
    import h5py

    from tdann.stores import Store, StoreError

    with h5py.File(tmp_path / "clips.h5", "w") as f:
        f["clips"] = np.arange(4 * 2 * 4 * 4 * 3, dtype=np.uint8).reshape(4, 2, 4, 4, 3)
        f["clip_video"] = np.array([0, 0, 1, 2])
        f["video_split"] = np.array([0, 1, 0], np.uint8)
    clips = Store(tmp_path / "clips.h5")
    assert clips.kind == "clips" and len(clips) == 4 and clips.indices("val").tolist() == [2]
    np.testing.assert_array_equal(clips.read([3, 0, 3]), np.stack([clips[3], clips[0], clips[3]]))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["weights"] = np.zeros(3)
    with pytest.raises(StoreError, match="other.h5"):
        Store(tmp_path / "other.h5")
    with pytest.raises(StoreError, match="an image store"):
        Store(tmp_path / "clips.h5", kind="images")
    with pytest.raises(StoreError, match="missing.h5"):
        Store(tmp_path / "missing.h5")
