"""socialav data prepare: reference crop and audio rules, nearest-frame decoding, resume."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pandas as pd
import pytest
import scipy.io.wavfile
from media_factory import make_video
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data import prepare as prep
from socialav.data.layout import DatasetLayout
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame
from socialav.io.media import read_audio


def _rows(video_id: str, times: np.ndarray, box=(0.25, 0.25, 0.75, 0.75), track: int = 0):
    return [
        dict(
            video_id=video_id,
            frame_timestamp=float(t),
            entity_box_x1=box[0],
            entity_box_y1=box[1],
            entity_box_x2=box[2],
            entity_box_y2=box[3],
            label="NOT_SPEAKING",
            entity_id=f"{video_id}:{track}",
        )
        for t in times
    ]


def test_crop_uses_int_truncation_and_numpy_slices():
    frame = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    face, repaired = prep.crop_entity_box(frame, np.array([0.26, 0.15, 0.74, 0.99]))
    # x1 = int(5.2) = 5, y1 = int(1.5) = 1, x2 = int(14.8) = 14, y2 = int(9.9) = 9
    assert not repaired
    np.testing.assert_array_equal(face, frame[1:9, 5:14])


def test_empty_crop_is_clipped_to_one_pixel():
    frame = np.zeros((10, 20, 3), np.uint8)
    face, repaired = prep.crop_entity_box(frame, np.array([0.5, 0.5, 0.5, 0.5]))
    assert repaired and face.shape == (1, 1, 3)
    face, repaired = prep.crop_entity_box(frame, np.array([1.2, 0.1, 1.5, 0.5]))
    assert repaired and face.shape[:2] == (4, 1)


def test_audio_span_is_talknets_int_rule():
    # 2.01 * 16000 = 32159.999999999996 in float64: the reference's int() gives 32159
    assert prep.entity_audio_span(np.array([2.01, 2.5, 3.0])) == (32159, 48000)
    assert prep.entity_audio_span(np.array([900.97])) == (14415520, 14415520)


@pytest.fixture
def small_set(tmp_path, videos_dir):
    """GRID clip (2 entities), a missing video, a corrupt file and a video without audio."""
    vids = tmp_path / "videos"
    vids.mkdir()
    os.symlink(videos_dir / "grid_bbaf2n.mpg", vids / "grid_bbaf2n.mpg")
    (vids / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    make_video(vids / "silent.mp4", num_frames=10, fps=25, audio=False)
    times = np.arange(20, 60) / 25.0
    rows = _rows("grid_bbaf2n", times) + _rows("grid_bbaf2n", times[:10], (0.1, 0.1, 0.3, 0.3), 1)
    rows += _rows("missing", times[:5]) + _rows("broken", times[:5])
    rows += _rows("silent", np.arange(5) / 25.0)
    csv = tmp_path / "val_orig.csv"
    write_ava_csv_frame(pd.DataFrame(rows).sample(frac=1, random_state=0), csv, "groundtruth")
    return vids, csv, tmp_path / "root"


def test_prepare_writes_reference_crops_and_audio(small_set, videos_dir):
    vids, csv, root = small_set
    summary = prep.prepare_dataset(vids, csv, root, "val")
    layout = DatasetLayout(root)
    assert summary.entities_written == 2
    assert summary.skipped_by_reason() == {
        prep.MISSING_VIDEO: 1,
        prep.UNREADABLE_VIDEO: 1,
        prep.NO_AUDIO: 1,
    }
    # faces: the box cut from the frame at the timestamp (GRID is 25 fps: frame k at k/25)
    frames = {k: img for k, img in enumerate(_bgr_frames(videos_dir / "grid_bbaf2n.mpg"))}
    for k in (20, 37, 59):
        jpeg = cv2.imread(str(layout.face_path("val", "grid_bbaf2n", "grid_bbaf2n:0", k / 25)))
        expected, _ = prep.crop_entity_box(frames[k], np.array([0.25, 0.25, 0.75, 0.75]))
        assert jpeg.shape == expected.shape == (144, 180, 3)
        assert np.abs(jpeg.astype(int) - expected).mean() < 4  # JPEG quality 95
    names = sorted(os.listdir(layout.entity_dir("val", "grid_bbaf2n", "grid_bbaf2n:1")))
    assert names == [f"{k / 25:.2f}.jpg" for k in range(20, 30)]
    # audio: samples int(t_first*16000) .. int(t_last*16000) of the 16 kHz soundtrack
    rate, wav = scipy.io.wavfile.read(layout.audio_path("val", "grid_bbaf2n", "grid_bbaf2n:0"))
    full = read_audio(videos_dir / "grid_bbaf2n.mpg")
    assert rate == 16000 and wav.dtype == np.int16
    np.testing.assert_array_equal(wav, full[int(0.8 * 16000) : int(59 / 25 * 16000)])
    # the CSV is copied (rewritten with a header) and reads back the same
    back = read_ava_csv(layout.csv_path("val"), "groundtruth")
    orig = read_ava_csv(csv, "groundtruth")
    pd.testing.assert_frame_equal(back, orig)


def _bgr_frames(path):
    from socialav.io.media import iter_frames

    for _, img in iter_frames(path, pixel_format="bgr24"):
        yield img


def test_prepare_resumes_and_repairs(small_set, monkeypatch):
    vids, csv, root = small_set
    layout = DatasetLayout(root)
    real_write_wav = prep._write_wav
    calls = []

    def crash_on_second(path, samples, rate):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real_write_wav(path, samples, rate)

    monkeypatch.setattr(prep, "_write_wav", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_dataset(vids, csv, root, "val")
    monkeypatch.setattr(prep, "_write_wav", real_write_wav)
    # one entity finished before the "kill", the other is half-written: redone
    again = prep.prepare_dataset(vids, csv, root, "val")
    assert (again.entities_written, again.entities_already_complete) == (1, 1)
    face = layout.face_path("val", "grid_bbaf2n", "grid_bbaf2n:0", 1.0)
    mtime = face.stat().st_mtime_ns
    third = prep.prepare_dataset(vids, csv, root, "val")
    assert (third.entities_written, third.entities_already_complete) == (0, 2)
    assert face.stat().st_mtime_ns == mtime  # nothing rewritten
    # a deleted crop makes its entity incomplete; a stale crop is removed when it is redone
    face.unlink()
    stale = layout.entity_dir("val", "grid_bbaf2n", "grid_bbaf2n:0") / "99.99.jpg"
    stale.write_bytes(b"x")
    fourth = prep.prepare_dataset(vids, csv, root, "val")
    assert (fourth.entities_written, fourth.entities_already_complete) == (1, 1)
    assert face.exists() and not stale.exists()
    state = json.loads(prep.state_path(layout, "val", "grid_bbaf2n", "grid_bbaf2n:0").read_text())
    assert state["num_frames"] == 40


def test_changed_annotations_redo_the_entity(small_set):
    vids, csv, root = small_set
    prep.prepare_dataset(vids, csv, root, "val")
    table = read_ava_csv(csv, "groundtruth")
    table.loc[table["entity_id"] == "grid_bbaf2n:1", "entity_box_x2"] = 0.35
    write_ava_csv_frame(table, csv, "groundtruth")
    again = prep.prepare_dataset(vids, csv, root, "val")
    assert (again.entities_written, again.entities_already_complete) == (1, 1)


def test_timestamps_past_the_end_are_reported(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    make_video(vids / "short.mp4", num_frames=25, fps=25)
    csv = tmp_path / "gt.csv"
    rows = _rows("short", np.arange(20, 25) / 25.0) + _rows("short", [0.5, 3.0], track=1)
    write_ava_csv_frame(pd.DataFrame(rows), csv, "groundtruth")
    summary = prep.prepare_dataset(vids, csv, tmp_path / "root", "val")
    assert summary.entities_written == 1
    (issue,) = summary.issues
    assert issue.entity_id == "short:1" and issue.reason == prep.OUTSIDE_VIDEO
    assert "3.000" in issue.detail


def test_local_process_pool_gives_the_same_files(small_set, tmp_path):
    vids, csv, root = small_set
    inline = prep.prepare_dataset(vids, csv, root, "val")
    pooled = prep.prepare_dataset(vids, csv, tmp_path / "pooled", "val", workers=2)
    assert pooled.entities_written == inline.entities_written
    assert pooled.skipped_by_reason() == inline.skipped_by_reason()
    for jpeg in sorted((root / "clips_videos").rglob("*.jpg")):
        twin = tmp_path / "pooled" / jpeg.relative_to(root)
        assert twin.read_bytes() == jpeg.read_bytes()


def test_cli_prepare_reports_skips(small_set):
    vids, csv, root = small_set
    result = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(vids), "--csv", str(csv), "--split", "val"]
        + ["--out", str(root)],
    )
    assert result.exit_code == 1, result.output
    assert "missing video file" in result.output
    assert "unreadable video" in result.output
    assert "video has no audio stream" in result.output
    again = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(vids), "--csv", str(csv), "--split", "val"]
        + ["--out", str(root)],
    )
    assert "already complete (skipped)" in again.output


def test_cli_prepare_bad_input(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text("video_id,frame_timestamp\nx,1.0\n")
    result = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(tmp_path), "--csv", str(csv), "--split", "val"]
        + ["--out", str(tmp_path / "root")],
    )
    assert result.exit_code == 2
    assert "missing column" in result.output
    result = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(tmp_path / "nope"), "--csv", str(csv)]
        + ["--split", "val", "--out", str(tmp_path / "root")],
    )
    assert result.exit_code == 2
