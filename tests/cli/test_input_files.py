"""Every command's input file, given the wrong kind of file, is one clear error.

A table of input slots (which command reads which file) crossed with the wrong files people
pass (a text file, a video, a truncated checkpoint, an empty file, random bytes, and slot
specific shapes: YAML that does not parse, a CSV with the wrong columns): the command exits
non-zero with exactly one line that names the file and says what was expected, no
traceback, and writes nothing. A new input slot is one row in ``SLOTS``. (``predict``
needs trained checkpoints first: its input files are in tests/pipelines/test_predict_ego4d.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialav.cli import app

FAST_DETECT = ["--no-diarize", "--threads", "1", "--windows", "full"]
AVA_FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ava_metric"


def _make(kind: str, path: Path, shared: dict[str, Path]) -> None:
    """Write the wrong file ``kind`` to ``path``."""
    if kind == "text":
        path.write_text("these are my notes, not the file you wanted\n")
    elif kind == "video":  # the head of a real MP4 (enough for its signature)
        path.write_bytes(shared["mp4"].read_bytes()[:65536])
    elif kind == "truncated-checkpoint":
        data = shared["checkpoint"].read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "broken-yaml":
        path.write_text("model:\n  name: light-asd\n epochs: [1, 2\n")
    elif kind == "yaml-list":
        path.write_text("- light-asd\n- 3\n")
    elif kind == "csv-two-columns":
        path.write_text("a,b\n1,2\n")
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(kind)


# slot name -> (argv builder, wrong kinds, what the message must also say)
Builder = Callable[[Path, Path], list[str]]
SLOTS: dict[str, tuple[Builder, tuple[str, ...]]] = {
    "detect --weights": (
        lambda f, t: (
            ["detect", str(t / "clip.mp4"), "-o", str(t / "out"), "--weights", str(f)] + FAST_DETECT
        ),
        ("text", "video", "truncated-checkpoint", "empty", "binary"),
    ),
    "detect VIDEO": (
        lambda f, t: ["detect", str(f), "-o", str(t / "out"), *FAST_DETECT],
        ("text", "video", "empty", "binary"),
    ),
    "calibrate CHECKPOINT": (
        lambda f, t: ["calibrate", str(f), "--root", str(t), "-o", str(t / "out" / "c.pt")],
        ("text", "video", "truncated-checkpoint", "empty", "binary"),
    ),
    "train CONFIG": (
        lambda f, t: ["train", str(f)],
        ("video", "truncated-checkpoint", "empty", "binary", "broken-yaml", "yaml-list"),
    ),
    "evaluate --groundtruth": (
        lambda f, t: ["evaluate", "-g", str(f), "-p", str(AVA_FIXTURE / "predictions.csv")],
        ("video", "empty", "binary", "csv-two-columns"),
    ),
    "evaluate --predictions": (
        lambda f, t: ["evaluate", "-g", str(AVA_FIXTURE / "groundtruth.csv"), "-p", str(f)],
        ("video", "empty", "binary", "csv-two-columns"),
    ),
    "evaluate --subset": (
        lambda f, t: [
            "evaluate",
            "-g",
            str(AVA_FIXTURE / "groundtruth.csv"),
            "-p",
            str(AVA_FIXTURE / "predictions.csv"),
            "--subset",
            str(f),
        ],
        ("video", "empty", "binary"),
    ),
    "evaluate --task ttm --predictions": (
        lambda f, t: ["evaluate", "--task", "ttm", "-g", str(f), "-p", str(f)],
        ("video", "empty", "binary", "csv-two-columns"),
    ),
    "evaluate --task diarization --predictions": (
        lambda f, t: ["evaluate", "--task", "diarization", "-g", str(f), "-p", str(f)],
        ("text", "video", "binary", "csv-two-columns"),
    ),
    "data ego4d-media --clips": (
        lambda f, t: [
            "data",
            "ego4d-media",
            "--videos",
            str(t),
            "--frames",
            str(t / "out"),
            "--clips",
            str(f),
        ],
        ("video", "binary"),
    ),
    "data ego4d-asd --annotations": (
        lambda f, t: ["data", "ego4d-asd", "--annotations", str(f), "--out", str(t / "out")],
        ("video", "empty", "binary", "text"),
    ),
}

CASES = [(slot, kind) for slot, (_, kinds) in SLOTS.items() for kind in kinds]

#: Words that show the message says what was expected or what the file is.
EXPLAINS = ("expected", "must", "not a", "looks like", "empty", "no video", "invalid")


@pytest.fixture(scope="module")
def shared_files(videos_dir: Path, weights_dir: Path) -> dict[str, Path]:
    return {
        "mp4": videos_dir / "visualvoice_interview.mp4",
        "checkpoint": weights_dir / "lr-asd" / "pretrain_AVA.model",
        "grid": videos_dir / "grid_bbaf2n.mpg",
    }


@pytest.mark.parametrize(("slot", "kind"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_a_wrong_input_file_is_one_line_naming_it(slot, kind, tmp_path, shared_files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").symlink_to(shared_files["grid"])
    bad = tmp_path / f"input-{kind}{'.yaml' if 'yaml' in kind else '.csv'}"
    if slot.startswith("detect VIDEO"):
        bad = bad.with_suffix(".mp4")
    _make(kind, bad, shared_files)
    build, _ = SLOTS[slot]
    result = CliRunner().invoke(app, build(bad, tmp_path), catch_exceptions=True)
    output = result.output.strip()
    assert result.exit_code in (1, 2), (result.exit_code, output, result.exception)
    assert "Traceback" not in output and not isinstance(result.exception, AssertionError)
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if bad.name in line]
    assert len(errors) == 1, output
    assert any(word in errors[0].lower() for word in EXPLAINS), errors[0]
    assert not (tmp_path / "out").exists(), output
