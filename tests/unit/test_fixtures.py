"""The real-format fixtures of the rehearsal (tdann.fixtures) are read by the pipeline's readers as the real sets."""

from pathlib import Path

import numpy as np

from tdann import data, fixtures, stimuli, video


def test_each_fixture_has_the_real_layout_and_reads(tmp_path: Path) -> None:
    inet = fixtures.imagenet(tmp_path / "imagenet", classes=2, per_class=3, val=2)
    photos = data.find_files([inet / "train"], data.IMAGE_SUFFIXES)
    assert [p.parent.name for p in photos] == ["n01440764"] * 3 + ["n01443537"] * 3
    assert all(p.suffix == ".JPEG" for p in photos) and len(list((inet / "val").glob("ILSVRC2012_val_*.JPEG"))) == 2

    ucf = fixtures.ucf101(tmp_path / "ucf101", classes=2, groups=2, n_frames=20)
    vids = data.find_videos([ucf / "UCF-101"])
    assert [v.name for v in vids] == ["v_ApplyEyeMakeup_g01_c01.avi", "v_ApplyEyeMakeup_g02_c01.avi",
                                      "v_Biking_g01_c01.avi", "v_Biking_g02_c01.avi"]
    info = video.probe(vids[0])
    assert (info["width"], info["height"]) == (320, 240) and info["n_packets"] == 20
    lists = ucf / "ucfTrainTestlist"
    assert (lists / "classInd.txt").read_text() == "1 ApplyEyeMakeup\n2 Biking\n"
    assert (lists / "trainlist01.txt").read_text().splitlines() == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1", "Biking/v_Biking_g02_c01.avi 2"]
    for line in (lists / "testlist01.txt").read_text().splitlines():
        assert (ucf / "UCF-101" / line).is_file()
    frames = video.read_frames(vids[0], [0, 5, 10], 64)
    assert frames.shape == (3, 64, 64, 3) and frames.std() > 5

    kin = fixtures.kinetics(tmp_path / "kinetics", classes=1, per_class=1, n_frames=12)
    (mp4,) = data.find_videos([kin / "train"])
    assert mp4.parent.name == "riding a bike" and mp4.name.endswith("_000000_000010.mp4")

    fl = fixtures.floc(tmp_path / "floc", per_subfolder=2, size=48)
    images, table = stimuli.load_floc(fl, 32)
    assert images.shape == (20, 3, 32, 32)
    assert table["category"].value_counts().to_dict() == {c: 4 for c in stimuli.CATEGORIES}
    assert set(table["subcategory"]) == set(stimuli.FLOC_SUBFOLDERS) and np.ptp(images) > 0.3
