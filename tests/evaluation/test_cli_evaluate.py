"""``socialav evaluate``: printed mAP, JSON content, subset file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.evaluation.ava import AvaValidationError

runner = CliRunner()


@pytest.fixture()
def ava_files(fixtures_dir: Path) -> tuple[Path, Path]:
    folder = fixtures_dir / "ava_metric"
    return folder / "groundtruth.csv", folder / "predictions.csv"


def test_prints_map_and_writes_json(ava_files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = ava_files
    out = tmp_path / "sub" / "metrics.json"
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(pred), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "mAP: 92.7938"
    assert "ROC-AUC" in result.stdout and "_a9SWtcaNj8" in result.stdout
    data = json.loads(out.read_text())
    assert data["map_percent"] == pytest.approx(92.79384083677978, abs=1e-6)
    assert data["num_rows"] == 670 and data["num_positives"] == 352
    assert data["threshold"] == 0.5
    assert {"accuracy", "f1", "roc_auc"} <= set(data)
    assert set(data["per_video"]) == {"-5KQ66BBWC4", "2qQs3Y9OJX0", "_a9SWtcaNj8"}
    assert sum(v["num_rows"] for v in data["per_video"].values()) == 670
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json"]


def test_subset_and_threshold(ava_files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = ava_files
    subset = tmp_path / "test_mixed.csv"
    subset.write_text("2qQs3Y9OJX0\n")
    out = tmp_path / "m.json"
    args = ["evaluate", "-g", str(gt), "-p", str(pred), "--subset", str(subset)]
    result = runner.invoke(app, [*args, "--threshold", "0.3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["subset"] == ["2qQs3Y9OJX0"] and data["threshold"] == 0.3
    assert data["num_rows"] == 252
    assert data["map_percent"] == pytest.approx(data["per_video"]["2qQs3Y9OJX0"]["map_percent"])


def test_validation_error_exits_2_with_one_line(
    ava_files: tuple[Path, Path], tmp_path: Path
) -> None:
    gt, pred = ava_files
    short = tmp_path / "pred.csv"
    pd.read_csv(pred).iloc[:-1].to_csv(
        short, index=False, header=False
    )  # headerless, one row short
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(short)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 1 ground-truth rows have no prediction")
    assert "Traceback" not in result.output
    debug = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(short), "--debug"])
    assert isinstance(debug.exception, AvaValidationError)


def test_bad_files_and_task_exit_2(ava_files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = ava_files
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(gt)])  # no score column
    assert result.exit_code == 2 and "missing column(s) ['score']" in result.stderr
    result = runner.invoke(app, ["evaluate", "-g", str(tmp_path / "nope.csv"), "-p", str(pred)])
    assert result.exit_code == 2 and "nope.csv" in result.stderr
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(pred), "--task", "ttm"])
    assert result.exit_code == 2 and "--task" in result.stderr
    result = runner.invoke(
        app, ["evaluate", "-g", str(gt), "-p", str(pred), "--json", str(tmp_path)]
    )
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_allow_any_score(ava_files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = ava_files
    logits = tmp_path / "logits.csv"
    frame = pd.read_csv(pred)
    frame.assign(score=frame["score"] * 20 - 10).to_csv(logits, index=False)
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(logits)])
    assert result.exit_code == 2 and "[0, 1]" in result.stderr
    result = runner.invoke(app, ["evaluate", "-g", str(gt), "-p", str(logits), "--allow-any-score"])
    assert result.exit_code == 0 and result.stdout.startswith("mAP: 92.7938")
