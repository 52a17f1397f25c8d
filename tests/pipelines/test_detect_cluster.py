"""``socialav detect --cluster``: one video per task on a local two-worker Dask cluster, the
same outputs as a run in this process, failures reported per video, finished videos skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from media_factory import cut_clip
from typer.testing import CliRunner

from socialav.cli import app
from socialav.io.media import MediaError
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.pipelines.detect_batch import VideoDetectTask, detect_video_task

FAST = ["--no-diarize", "--windows", "full", "--outputs", "csv,json"]


def _scores(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    return frame.sort_values(["entity_id", "frame_timestamp"]).reset_index(drop=True)


@pytest.mark.slow
def test_two_workers_write_what_a_run_here_writes(tmp_path, videos_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(videos_dir / "grid_bbaf2n.mpg", inputs / "grid.mpg")
    cut_clip(videos_dir / "videoretalking_face_1.mp4", inputs / "talk.mp4", 60)
    here, there = tmp_path / "here", tmp_path / "there"
    runner = CliRunner()
    result = runner.invoke(app, ["detect", str(inputs), "-o", str(here), *FAST])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["detect", str(inputs), "-o", str(there), "--cluster", "local:2", *FAST]
    )
    assert result.exit_code == 0, result.output
    assert "[2/2]" in result.output and "done in" in result.output
    assert sorted(p.name for p in there.iterdir()) == sorted(p.name for p in here.iterdir())
    for csv in here.glob("*.ava.csv"):
        a, b = _scores(csv), _scores(there / csv.name)
        assert len(a) == len(b) > 0
        keys = ["video_id", "frame_timestamp", "entity_id"]
        assert (a[keys] == b[keys]).all().all()  # same frames and entities
        # onnxruntime with 1 thread per worker vs all cores: the same up to float rounding
        np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=1e-3)
    # a rerun skips the finished videos (resumable)
    result = runner.invoke(
        app, ["detect", str(inputs), "-o", str(there), "--cluster", "local:2", *FAST]
    )
    assert result.exit_code == 0 and result.output.count("skip ") == 2, result.output


def test_a_video_that_fails_in_its_task_is_reported_not_raised(tmp_path, videos_dir):
    data = (videos_dir / "visualvoice_interview.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # probes, then fails while decoding
    config = DetectConfig(diarize=False, num_threads=1)
    detector = SpeakerDetector(config)
    out = tmp_path / "out"
    task = VideoDetectTask(str(cut), "cut", str(out), ("csv", "json"), config)
    summary = detect_video_task(task, detector)
    assert summary.error is not None and str(cut) in summary.error
    with pytest.raises(MediaError):  # --debug: the traceback, not a summary
        detect_video_task(task, detector, reraise=True)
    assert not out.exists() or not any(out.glob("cut.*"))
    good = VideoDetectTask(
        str(videos_dir / "grid_bbaf2n.mpg"), "grid", str(out), ("csv", "json"), config
    )
    summary = detect_video_task(good, detector)
    assert summary.error is None and summary.num_tracks == 1 and summary.duration_s > 2.9
    assert (out / "grid.ava.csv").is_file() and (out / "grid.json").is_file()


def test_cluster_option_is_checked_before_any_work(tmp_path, videos_dir):
    out = tmp_path / "out"
    for bad in ("local:0", "host:8786"):
        result = CliRunner().invoke(
            app, ["detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(out), "--cluster", bad]
        )
        assert result.exit_code == 2 and "--cluster" in result.output
        assert not out.exists()
