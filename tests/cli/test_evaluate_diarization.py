"""``socialav evaluate --task diarization``: DER of RTTM files from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.evaluation.diarization import evaluate_diarization
from socialav.io.writers import RttmTurn, format_rttm_line

pytest.importorskip("pyannote.metrics")

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "audio" / "pyannote_sample.rttm"


def _evaluate(*args: str):
    return CliRunner().invoke(app, ["evaluate", "--task", "diarization", *args])


def _write(path: Path, spans) -> Path:
    lines = [format_rttm_line(RttmTurn(f, "1", a, b - a, who)) for f, a, b, who in spans]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_sample_against_itself_is_zero_and_against_a_relabelled_copy_is_confusion(tmp_path):
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} missing (../shared)")
    result = _evaluate("-g", str(SAMPLE), "-p", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "DER: 0.00"
    # every third turn given to speaker90: pure speaker confusion, no miss / false alarm
    lines = SAMPLE.read_text().splitlines()
    relabelled = tmp_path / "sys.rttm"
    relabelled.write_text(
        "\n".join(
            " ".join(f if k != 7 or n % 3 else "speaker90" for k, f in enumerate(line.split()))
            for n, line in enumerate(lines, 1)
        )
        + "\n"
    )
    out = tmp_path / "der.json"
    result = _evaluate(
        "-g", str(SAMPLE), "-p", str(relabelled), "--collar", "0.5", "--json", str(out)
    )
    assert result.exit_code == 0, result.output
    expected = evaluate_diarization(SAMPLE, relabelled, collar_s=0.5)
    assert 0 < expected["der"] < 1 and expected["der"] == pytest.approx(expected["confusion"])
    assert result.output.splitlines()[0] == f"DER: {100 * expected['der']:.2f}"
    written = json.loads(out.read_text())
    assert written["der"] == pytest.approx(expected["der"]) and written["collar_s"] == 0.5


def test_a_corpus_gets_a_table_per_recording_and_a_warning_for_what_the_system_lacks(tmp_path):
    ref = _write(
        tmp_path / "ref.rttm", [("r1", 0, 10, "A"), ("r1", 10, 20, "B"), ("r2", 0, 5, "C")]
    )
    system = _write(tmp_path / "sys.rttm", [("r1", 0, 12, "x"), ("r1", 12, 20, "y")])
    result = _evaluate("-g", str(ref), "-p", str(system), "--collar", "0")
    assert result.exit_code == 0, result.output
    # 2 s confusion in r1 + 5 s missed in r2 over 25 s of speech
    assert result.output.splitlines()[0] == f"DER: {100 * 7 / 25:.2f}"
    assert "per recording" in result.output and "r2" in result.output
    assert "no turn for 1 reference recording" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--threshold", "0.3"], "--threshold has no meaning for --task diarization"),
        (["--subset", "ids.txt"], "--subset applies to --task ava only"),
        (["--collar", "-1"], "--collar"),
    ],
)
def test_options_the_task_does_not_use_are_refused(tmp_path, args, fragment):
    ref = _write(tmp_path / "ref.rttm", [("r1", 0, 10, "A")])
    result = _evaluate("-g", str(ref), "-p", str(ref), *args)
    assert result.exit_code == 2 and fragment in result.output, result.output


def test_collar_is_refused_for_the_csv_tasks(tmp_path):
    result = CliRunner().invoke(
        app, ["evaluate", "-g", "gt.csv", "-p", "p.csv", "--collar", "0.5", "--skip-overlap"]
    )
    assert result.exit_code == 2 and "--collar applies to --task diarization only" in result.output


def test_a_system_file_id_the_reference_lacks_is_named(tmp_path):
    ref = _write(tmp_path / "ref.rttm", [("r1", 0, 10, "A")])
    system = _write(tmp_path / "sys.rttm", [("typo", 0, 10, "x")])
    result = _evaluate("-g", str(ref), "-p", str(system))
    assert result.exit_code == 2
    assert "sys.rttm" in result.output and "'typo'" in result.output
