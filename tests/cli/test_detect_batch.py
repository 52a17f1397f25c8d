"""``socialav detect`` on batches and interrupted runs: unique output names, a folder run that
never reads its own outputs, stale temporary folders, long names, kept outputs that were made
with other settings, rejected runs that create nothing, warnings about what a video lacks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media_factory import cut_clip
from typer.testing import CliRunner

from socialav.cli import app

FAST = ["--no-diarize", "--threads", "1", "--windows", "full"]


def _detect(*args: str) -> object:
    return CliRunner().invoke(app, ["detect", *args, *FAST], catch_exceptions=False)


@pytest.fixture(scope="module")
def grid(videos_dir: Path) -> Path:
    return videos_dir / "grid_bbaf2n.mpg"


@pytest.mark.slow
def test_inputs_with_the_same_name_get_distinct_outputs(tmp_path, grid):
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
    shutil.copy(grid, tmp_path / "a" / "grid.mpg")
    shutil.copy(grid, tmp_path / "b" / "grid.mpg")
    cut_clip(grid, tmp_path / "c" / "x.mp4", 40)
    shutil.copy(tmp_path / "c" / "x.mp4", tmp_path / "c" / "x.mkv")
    out = tmp_path / "out"
    result = _detect(
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        str(tmp_path / "c"),
        "-o",
        str(out),
        "--outputs",
        "csv,json",
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{stem}{suffix}"
        for stem in ("a__grid", "b__grid", "x_mp4", "x_mkv")
        for suffix in (".ava.csv", ".json")
    )
    assert "outputs named a__grid" in result.output
    # the ids inside follow the names, so the CSVs can be concatenated and evaluated
    record = json.loads((out / "b__grid.json").read_text())
    assert record["video"]["video_id"] == "b__grid"
    assert (out / "x_mkv.ava.csv").read_text().splitlines()[1].startswith("x_mkv,")


@pytest.mark.slow
def test_a_folder_run_never_reads_its_own_outputs(tmp_path, grid):
    shutil.copy(grid, tmp_path / "grid.mpg")
    out = tmp_path / "socialav-out"  # the default output folder, inside the input folder
    first = _detect(str(tmp_path), "-o", str(out), "--outputs", "video,json")
    assert first.exit_code == 0, first.output
    assert (out / "grid.annotated.mp4").is_file()
    second = _detect(str(tmp_path), "-o", str(out), "--outputs", "video,json")
    assert second.exit_code == 0, second.output
    assert "skip" in second.output and "not taken as input" in " ".join(second.output.split())
    assert sorted(p.name for p in out.iterdir()) == ["grid.annotated.mp4", "grid.json"]


@pytest.mark.slow
def test_a_long_file_name_is_written(tmp_path, grid):
    name = "n" * 230 + ".mpg"  # + .annotated.mp4 = 248 characters: fits, the temporary names too
    shutil.copy(grid, tmp_path / name)
    out = tmp_path / "out"
    result = _detect(str(tmp_path / name), "-o", str(out), "--outputs", "csv,video")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"{'n' * 230}.annotated.mp4",
        f"{'n' * 230}.ava.csv",
    ]


@pytest.mark.slow
def test_kept_outputs_made_with_other_settings_are_named(tmp_path, grid):
    out = tmp_path / "out"
    assert _detect(str(grid), "-o", str(out), "--outputs", "csv,json").exit_code == 0
    same = _detect(str(grid), "-o", str(out), "--outputs", "csv,json")
    assert "skip" in same.output and "other settings" not in same.output
    other = _detect(str(grid), "-o", str(out), "--outputs", "csv,json", "--threshold", "0.7")
    text = " ".join(other.output.split())
    assert "other settings" in text and "threshold: 0.5 -> 0.7" in text and "--overwrite" in text


def test_rejected_runs_create_nothing(tmp_path, grid):
    out = tmp_path / "out"
    text_file = tmp_path / "weights.pt"
    text_file.write_text("not a checkpoint\n")
    result = _detect(str(grid), "-o", str(out), "--weights", str(text_file))
    assert result.exit_code == 2
    assert str(text_file) in result.output and "PyTorch" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    result = _detect(str(not_video), "-o", str(out))
    assert result.exit_code == 1 and str(not_video) in result.output
    assert not out.exists()


@pytest.mark.parametrize("what", ["video", "truncated"])
def test_weights_that_are_no_checkpoint_name_the_file(tmp_path, grid, weights_dir, what):
    path = tmp_path / "w.model"
    if what == "video":
        shutil.copy(grid, path)
    else:
        data = (weights_dir / "lr-asd" / "pretrain_AVA.model").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    result = _detect(str(grid), "-o", str(tmp_path / "out"), "--weights", str(path))
    assert result.exit_code == 2
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and str(path) in line and "weights_only=False" not in line


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_that_survives_the_next_one(tmp_path, videos_dir):
    video = videos_dir / "visualvoice_interview.mp4"
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "socialav.cli",
        "detect",
        str(video),
        "-o",
        str(out),
        *FAST,
        "--outputs",
        "video",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not list(out.glob(".socialav-*")):
            if proc.poll() is not None:
                pytest.fail("the run ended before it started writing")
            time.sleep(0.05)
        assert list(out.glob(".socialav-*")), "no temporary folder appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(out.glob(".socialav-*"))  # SIGKILL: nothing could clean up
    assert not (out / "visualvoice_interview.annotated.mp4").exists()
    grid = videos_dir / "grid_bbaf2n.mpg"
    result = _detect(str(grid), "-o", str(out), "--outputs", "csv")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["grid_bbaf2n.ava.csv"]


@pytest.mark.slow
def test_one_frame_video_says_the_face_track_is_too_short(tmp_path, grid):
    clip = cut_clip(grid, tmp_path / "one.mp4", 1, start_frame=20)
    result = _detect(str(clip), "-o", str(tmp_path / "out"), "--outputs", "csv")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "faces were detected" in text and "long enough to make a face track" in text


@pytest.mark.slow
def test_small_faces_get_a_warning(tmp_path, videos_dir):
    clip = cut_clip(
        videos_dir / "visualvoice_interview.mp4", tmp_path / "small.mp4", 50, size_wh=(160, 90)
    )
    result = _detect(str(clip), "-o", str(tmp_path / "out"), "--outputs", "csv,video")
    assert result.exit_code == 0, result.output
    assert "faces are small" in " ".join(result.output.split())


@pytest.mark.slow
def test_video_max_short_side_caps_the_annotated_video_and_is_recorded(tmp_path, grid):
    import av

    out = tmp_path / "out"
    capped = _detect(
        str(grid), "-o", str(out), "--outputs", "video,json", "--video-max-short-side", "144"
    )
    assert capped.exit_code == 0, capped.output
    with av.open(str(out / "grid_bbaf2n.annotated.mp4")) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (180, 144)  # 360x288 halved
    record = json.loads((out / "grid_bbaf2n.json").read_text())
    assert record["run_info"]["settings"]["config"]["video_max_short_side_px"] == 144
    again = _detect(str(grid), "-o", str(out), "--outputs", "video,json")  # the default, 480
    text = " ".join(again.output.split())
    assert "other settings" in text and "video_max_short_side_px: 144 -> 480" in text
