"""DER / JER / purity / coverage with pyannote.metrics, strict RTTM reading."""

from __future__ import annotations

import pytest

from socialav.evaluation.diarization import (
    diarization_metrics,
    evaluate_diarization,
    read_rttm_checked,
)
from socialav.io.writers import RttmTurn, format_rttm_line

pytest.importorskip("pyannote.metrics")


def turns(*spans):
    return [RttmTurn("rec", "1", a, b - a, who) for a, b, who in spans]


REF = turns((0, 10, "A"), (10, 20, "B"))


def test_hand_computed_der_and_jer():
    system = turns((0, 12, "x"), (12, 20, "y"))
    m = diarization_metrics(REF, system, collar_s=0.0)
    # 10..12 is said by x, which is mapped to A: 2 s of confusion over 20 s of speech
    assert m["der"] == pytest.approx(0.1)
    assert m["confusion_s"] == pytest.approx(2.0) and m["missed_detection_s"] == 0
    assert m["false_alarm_s"] == 0 and m["total_s"] == pytest.approx(20.0)
    # JER: A~x: 1 - 10/12; B~y: 1 - 8/10; mean
    assert m["jer"] == pytest.approx(((1 - 10 / 12) + (1 - 8 / 10)) / 2)
    assert m["num_reference_speakers"] == 2 and m["num_system_speakers"] == 2
    assert m["purity"] == pytest.approx(18 / 20) and m["coverage"] == pytest.approx(18 / 20)


def test_collar_is_total_width_centred_on_boundaries():
    system = turns((0, 12, "x"), (12, 20, "y"))
    m = diarization_metrics(REF, system, collar_s=0.5)
    # 0.25 s removed on each side of the boundaries at 0, 10 and 20 (1 s in all)
    assert m["total_s"] == pytest.approx(19.0)
    assert m["confusion_s"] == pytest.approx(12 - 10.25)
    assert m["der"] == pytest.approx(1.75 / 19.0)


def test_miss_false_alarm_and_one_speaker_for_two():
    system = turns((0, 15, "x"), (22, 25, "x"))
    m = diarization_metrics(REF, system, collar_s=0.0)
    # 15..20 missed (5 s), 22..25 false alarm (3 s), 10..15 confusion (5 s)
    assert m["missed_detection_s"] == pytest.approx(5.0)
    assert m["false_alarm_s"] == pytest.approx(3.0)
    assert m["confusion_s"] == pytest.approx(5.0)
    assert m["der"] == pytest.approx(13 / 20)
    assert m["num_system_speakers"] == 1


def test_empty_reference_and_empty_system():
    m = diarization_metrics([], [], collar_s=0.25)
    assert m["der"] is None and m["num_reference_speakers"] == 0
    m = diarization_metrics([], turns((1, 2, "x")), collar_s=0.0)
    assert m["der"] is None and m["false_alarm_s"] == pytest.approx(1.0)
    m = diarization_metrics(REF, [], collar_s=0.0)
    assert m["der"] == pytest.approx(1.0) and m["missed"] == pytest.approx(1.0)


def test_writer_lines_equal_the_pyannote_sample(shared_dir):
    path = shared_dir / "audio/pyannote_sample.rttm"
    file_id, sample = read_rttm_checked(path)
    assert file_id == "sample" and len(sample) == 10
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    assert [format_rttm_line(t) for t in sample] == lines
    # a file scored against itself is perfect
    m = evaluate_diarization(path, path)
    assert m["der"] == 0 and m["jer"] == 0 and m["num_reference_speakers"] == 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("SPEAKER rec 1 0.0 1.0 <NA> <NA> A <NA>\n", "10 space-separated fields"),
        ("SPEAKER rec 1 0.0 -1.0 <NA> <NA> A <NA> <NA>\n", "duration >= 0"),
        ("SPEAKER rec 1 zero 1.0 <NA> <NA> A <NA> <NA>\n", "numeric onset"),
        (
            "SPEAKER rec 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n"
            "SPEAKER other 1 1.0 1.0 <NA> <NA> A <NA> <NA>\n",
            "2 file ids",
        ),
    ],
)
def test_malformed_rttm_is_refused_with_file_and_line(tmp_path, content, message):
    bad = tmp_path / "bad.rttm"
    bad.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_rttm_checked(bad)
    assert "bad.rttm" in str(info.value)


def test_evaluate_refuses_other_recording_and_missing_file(tmp_path):
    ref = tmp_path / "ref.rttm"
    ref.write_text("SPEAKER rec 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n")
    sys_ = tmp_path / "sys.rttm"
    sys_.write_text("SPEAKER other 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(ValueError, match=r"file ids the reference .*ref.rttm lacks: \['other'\]"):
        evaluate_diarization(ref, sys_)
    with pytest.raises(FileNotFoundError, match="system RTTM"):
        evaluate_diarization(ref, tmp_path / "missing.rttm")
    with pytest.raises(ValueError, match="collar_s"):
        evaluate_diarization(ref, ref, collar_s=-1)
    empty = tmp_path / "empty.rttm"
    empty.write_text("")
    m = evaluate_diarization(ref, empty)
    assert m["der"] == pytest.approx(1.0) and m["file_id"] == "rec"


def _write(path, spans):
    path.write_text(
        "".join(format_rttm_line(RttmTurn(f, "1", a, b - a, who)) + "\n" for f, a, b, who in spans)
    )
    return path


def test_a_corpus_rttm_is_scored_per_recording_and_accumulated(tmp_path):
    """Two recordings: DER = all errors / all speech (pyannote's accumulation), not the mean
    of the two DERs; a recording the system lacks is all missed."""
    ref = _write(
        tmp_path / "ref.rttm",
        [("r1", 0, 10, "A"), ("r1", 10, 20, "B"), ("r2", 0, 5, "C"), ("r3", 0, 2, "D")],
    )
    system = _write(
        tmp_path / "sys.rttm", [("r1", 0, 12, "x"), ("r1", 12, 20, "y"), ("r2", 0, 4, "z")]
    )
    m = evaluate_diarization(ref, system, collar_s=0.0)
    # r1: 2 s confusion of 20; r2: 1 s missed of 5; r3: 2 s missed of 2 -> 5 / 27
    assert m["recordings"]["r1"]["der"] == pytest.approx(0.1)
    assert m["recordings"]["r2"]["der"] == pytest.approx(0.2)
    assert m["recordings"]["r3"]["der"] == pytest.approx(1.0)
    assert m["der"] == pytest.approx(5 / 27) and m["total_s"] == pytest.approx(27.0)
    assert m["missed_detection_s"] == pytest.approx(3.0) and m["confusion_s"] == pytest.approx(2.0)
    assert m["file_id"] is None and m["num_recordings"] == 3 and m["missing_in_system"] == ["r3"]
    # JER: mean over the 4 reference speakers (A, B as before; C: 1 - 4/5; D: missed -> 1)
    assert m["jer"] == pytest.approx(((1 - 10 / 12) + (1 - 8 / 10) + (1 - 4 / 5) + 1) / 4)
