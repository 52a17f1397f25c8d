"""`socialav detect` end to end on real clips, and its handling of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from media_factory import make_video
from typer.testing import CliRunner

from socialav.cli import app
from socialav.io.writers import read_rttm

SUFFIXES = [".ava.csv", ".rttm", ".json", ".timeline.png", ".report.html", ".annotated.mp4"]


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script in a subprocess (as a user would)."""
    cmd = [sys.executable, "-m", "socialav.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def interview_outputs(tmp_path_factory, videos_dir):
    out = tmp_path_factory.mktemp("interview")
    proc = _run_cli("detect", str(videos_dir / "visualvoice_interview.mp4"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_interview_writes_five_outputs_for_two_people(interview_outputs):
    out, proc = interview_outputs
    for suffix in SUFFIXES:
        assert (out / f"visualvoice_interview{suffix}").stat().st_size > 0, suffix
    with av.open(str(out / "visualvoice_interview.annotated.mp4")) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (854, 480)  # 1280x720 capped at the default 480
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left"
    csv = pd.read_csv(out / "visualvoice_interview.ava.csv")
    assert list(csv.columns[:9]) == [
        "video_id", "frame_timestamp", "entity_box_x1", "entity_box_y1", "entity_box_x2",
        "entity_box_y2", "label", "entity_id", "score",
    ]  # fmt: skip
    assert set(csv.entity_id) == {"visualvoice_interview:0", "visualvoice_interview:1"}
    assert (csv.label == "SPEAKING_AUDIBLE").all() and csv.score.between(0, 1).all()
    assert csv.groupby("entity_id").size().min() > 400  # both faces visible throughout
    # the two people sit left and right
    centres = csv.groupby("entity_id")[["entity_box_x1", "entity_box_x2"]].mean().mean(axis=1)
    assert centres.min() < 0.5 < centres.max()
    info = json.loads((out / "visualvoice_interview.json").read_text())
    assert info["num_tracks"] == 2
    assert len(info["run_info"]["weights"]["asd"]["sha256"]) == 64
    turns = read_rttm(out / "visualvoice_interview.rttm")
    # the RTTM names persons (diarization, on by default); the CSV maps tracks to them
    assert list(csv.columns[9:]) == ["person_id"]
    assert set(csv.groupby("entity_id").person_id.nunique()) == {1}
    assert {t.speaker for t in turns} == set(csv.person_id) and len(turns) >= 2
    assert {p["person_id"] for p in info["persons"]} == set(csv.person_id)
    # both people talk in this clip (often over each other)
    for entity in csv.entity_id.unique():
        assert (csv[csv.entity_id == entity].score > 0.5).mean() > 0.3


def test_existing_outputs_are_skipped_unless_overwrite(interview_outputs, videos_dir):
    out, _ = interview_outputs
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = _run_cli("detect", str(videos_dir / "visualvoice_interview.mp4"), "-o", str(out))
    assert proc.returncode == 0 and "skip" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_folder_batch_and_overwrite(tmp_path, videos_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("grid_bbaf2n.mpg", "grid_sbia1a.mpg"):
        (folder / name).symlink_to(videos_dir / name)
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["detect", str(folder), "-o", str(out), "--no-video"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{s}{x}" for s in ("grid_bbaf2n", "grid_sbia1a") for x in SUFFIXES[:5])
    old = (out / "grid_bbaf2n.json").stat().st_mtime_ns
    result = runner.invoke(app, ["detect", str(folder / "grid_bbaf2n.mpg"), "-o", str(out),
                                 "--no-video", "--overwrite"])  # fmt: skip
    assert result.exit_code == 0 and (out / "grid_bbaf2n.json").stat().st_mtime_ns > old
    # a GRID speaker talks in the middle of the clip and is silent at both ends
    csv = pd.read_csv(out / "grid_bbaf2n.ava.csv")
    assert csv.entity_id.nunique() == 1
    score = csv.score.to_numpy()
    assert score[25:50].mean() > score[:5].mean() + 0.3


def _assert_clean_failure(proc: subprocess.CompletedProcess, out: Path, expect: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert expect in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello\n" * 50)
    out = tmp_path / "out"
    _assert_clean_failure(
        _run_cli("detect", str(bad), "-o", str(out)), out, "expected a video file"
    )


def test_truncated_video(tmp_path, videos_dir):
    data = (videos_dir / "visualvoice_interview.mp4").read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    _assert_clean_failure(_run_cli("detect", str(bad), "-o", str(out)), out, "error:")


def test_video_without_audio(tmp_path):
    path = make_video(tmp_path / "mute.mp4", audio=False)
    out = tmp_path / "out"
    _assert_clean_failure(_run_cli("detect", str(path), "-o", str(out)), out, "audio stream")


def test_unwritable_output_dir(tmp_path, videos_dir):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):  # root writes anywhere: use a read-only filesystem
            proc = _run_cli("detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", "/proc/sav-out")
            assert proc.returncode == 2 and "cannot create output folder" in proc.stderr
        else:
            proc = _run_cli("detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(out))
            assert proc.returncode == 2 and "not writable" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        out.chmod(0o700)


def test_output_dir_is_a_file(tmp_path, videos_dir):
    out = tmp_path / "file"
    out.write_text("x")
    proc = _run_cli("detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot create output folder" in proc.stderr


def test_no_face_gives_empty_valid_outputs(tmp_path):
    path = make_video(tmp_path / "noface.mp4", num_frames=40, size_wh=(160, 120))
    out = tmp_path / "out"
    proc = _run_cli("detect", str(path), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "no face found" in proc.stderr
    csv = pd.read_csv(out / "noface.ava.csv")
    assert len(csv) == 0 and "score" in csv.columns
    assert json.loads((out / "noface.json").read_text())["num_tracks"] == 0
    assert (out / "noface.rttm").read_text() == ""
    assert (out / "noface.timeline.png").stat().st_size > 0
    assert (out / "noface.annotated.mp4").stat().st_size > 0


def test_debug_shows_traceback(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello\n" * 50)
    proc = _run_cli("detect", str(bad), "-o", str(tmp_path / "out"), "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_scores_are_probabilities_per_frame(interview_outputs):
    out, _ = interview_outputs
    info = json.loads((out / "visualvoice_interview.json").read_text())
    for track in info["tracks"]:
        prob = np.array(track["probabilities"], dtype=float)
        assert len(prob) == len(track["frame_indices"]) and np.all((prob >= 0) & (prob <= 1))
