"""socialav data trim / to-asc: UniTalk's trim_dataset.py and convert_to_ASC.py layouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data.asc import convert_to_asc
from socialav.data.layout import DatasetLayout
from socialav.data.trim import trim_dataset
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame


@pytest.fixture
def root(tmp_path):
    """A prepared root with 3 videos x 2 entities x 3 frames (files hold their own path)."""
    layout = DatasetLayout(tmp_path / "root")
    rows = []
    for v in ("vidA", "vidB", "vidC"):
        for e in (0, 1):
            entity = f"{v}:{e}"
            for t in (0.5, 0.54, 0.58):
                rows.append([v, t, 0.1, 0.1, 0.5, 0.5, "NOT_SPEAKING", entity, 0, f"{entity}:0"])
                face = layout.face_path("val", v, entity, t)
                face.parent.mkdir(parents=True, exist_ok=True)
                face.write_text(str(face))
            wav = layout.audio_path("val", v, entity)
            wav.parent.mkdir(parents=True, exist_ok=True)
            wav.write_text(entity)
    columns = [
        "video_id", "frame_timestamp", "entity_box_x1", "entity_box_y1", "entity_box_x2",
        "entity_box_y2", "label", "entity_id", "label_id", "instance_id",
    ]  # fmt: skip
    layout.csv_path("val").parent.mkdir(parents=True)
    write_ava_csv_frame(pd.DataFrame(rows, columns=columns), layout.csv_path("val"), "groundtruth")
    return layout


def test_trim_keeps_listed_videos(root, tmp_path):
    listing = tmp_path / "test_noise.csv"
    listing.write_text("vidC\nvidA\nnotThere\n")
    result = trim_dataset(root.root, listing, tmp_path / "trimmed")
    new = DatasetLayout(tmp_path / "trimmed")
    assert result.videos_kept == ["vidC", "vidA"]
    assert result.not_in_csv == ["notThere"] and result.num_rows == 12
    assert sorted(p.name for p in new.videos_dir("val").iterdir()) == ["vidA", "vidC"]
    assert sorted(p.name for p in new.audios_dir("val").iterdir()) == ["vidA", "vidC"]
    face = new.face_path("val", "vidA", "vidA:1", 0.54)
    assert face.read_text() == str(root.face_path("val", "vidA", "vidA:1", 0.54))
    table = read_ava_csv(new.csv_path("val"), "groundtruth")
    original = read_ava_csv(root.csv_path("val"), "groundtruth")
    expected = original[original["video_id"].isin(["vidA", "vidC"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, expected)
    # a second run refuses to overwrite, unless told to
    with pytest.raises(FileExistsError, match="--overwrite"):
        trim_dataset(root.root, listing, tmp_path / "trimmed")
    trim_dataset(root.root, listing, tmp_path / "trimmed", overwrite=True)
    with pytest.raises(ValueError, match="must not be the source"):
        trim_dataset(root.root, listing, root.root / "inside", overwrite=True)


def test_to_asc_flattens_entities_and_writes_gt_per_video(root, tmp_path):
    dest = tmp_path / "asc"
    result = convert_to_asc(root.root, dest)
    assert (result.entities, result.audios, result.gt_files) == (6, 6, 3)
    for split in ("train", "val"):
        assert (dest / "clips_videos" / split).is_dir() and (dest / "clips_audios" / split).is_dir()
    entity_dir = dest / "clips_videos" / "val" / "vidB:1"
    assert sorted(p.name for p in entity_dir.iterdir()) == ["0.50.jpg", "0.54.jpg", "0.58.jpg"]
    assert (dest / "clips_audios" / "val" / "vidB:1.wav").read_text() == "vidB:1"
    assert (dest / "csv" / "val_orig.csv").read_bytes() == root.csv_path("val").read_bytes()
    gt = (dest / "gt" / "vidB.csv").read_text().splitlines()
    assert len(gt) == 6 and not gt[0].startswith("video_id")  # no header, no index
    assert gt[0].split(",") == [
        "vidB", "0.5", "0.1", "0.1", "0.5", "0.5", "NOT_SPEAKING", "vidB:0", "0", "vidB:0:0",
    ]  # fmt: skip
    back = read_ava_csv(dest / "gt" / "vidB.csv", "groundtruth")
    assert np.allclose(back["frame_timestamp"], [0.5, 0.54, 0.58, 0.5, 0.54, 0.58])


def test_cli_trim_and_to_asc(root, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("vidB\n")
    runner = CliRunner()
    out = runner.invoke(
        app, ["data", "trim", "--root", str(root.root), "--list", str(listing)]
        + ["--out", str(tmp_path / "t")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "kept 1 videos, 6 rows" in out.output
    out = runner.invoke(
        app, ["data", "to-asc", "--root", str(tmp_path / "t"), "--out", str(tmp_path / "a")]
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "a" / "gt" / "vidB.csv").is_file()
    out = runner.invoke(
        app, ["data", "to-asc", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "b")]
    )
    assert out.exit_code == 2 and "not found" in out.output
