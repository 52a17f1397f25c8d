"""Submission writers round-trip through ``socialav evaluate --task ttm|lam`` on the fixtures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data.ego4d.annotations import load_av_annotations
from socialav.data.ego4d.samples import lam_samples, ttm_samples
from socialav.evaluation.ego4d import ttm_segment_scores
from socialav.io.ego4d_submission import (
    SubmissionError,
    read_lam_submission,
    read_ttm_submission,
    ttm_frame_rows,
    write_lam_submission,
    write_lam_submission_json,
    write_ttm_submission,
    write_ttm_submission_json,
)

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def test_ttm_round_trip_on_the_real_derived_clip(interview_ego4d, tmp_path):
    """Segment scores from sub-clip logits -> per-frame submission -> evaluate.

    The two talking segments of the fixture: seg 0 (person 1, frames 0-29, label 1) and
    seg 1 (person 2, frames 20-59, label 0), each one sub-clip. Logits (0, 1) and (0, -1)
    give softmax scores s0 = e / (1 + e) = 0.7311 and s1 = 1 / (1 + e) = 0.2689.
    Per frame: 30 positive rows scored s0 and 40 negative rows scored s1 -> every positive
    ranks above every negative: AP1 = 1 and AP0 (on 1 - s) = 1, mAP = 100 %, accuracy 1.
    """
    clips = load_av_annotations(interview_ego4d.av)
    samples = ttm_samples(clips, train=False)
    scores = ttm_segment_scores([s.segment_id for s in samples], [[0.0, 1.0], [0.0, -1.0]])
    frames = {s.segment_id: range(s.start_frame, s.end_frame + 1) for s in samples}
    rows = ttm_frame_rows(scores, frames)
    sub = tmp_path / "ttm_pred.csv"
    assert write_ttm_submission(rows, sub) == 70
    first = sub.read_text().splitlines()[0]
    assert first == f"interview:0,0,1,{scores['interview:0']!r}"
    table = read_ttm_submission(sub)
    assert table["score"].tolist() == [r[2] for r in rows]  # exact float round trip
    gt = tmp_path / "ttm_gt.csv"
    gt.write_text(
        "".join(
            f"{s.segment_id},{f},{s.label}\n"
            for s in samples
            for f in range(s.start_frame, s.end_frame + 1)
        )
    )
    out = tmp_path / "ttm.json"
    result = runner.invoke(
        app, ["evaluate", "--task", "ttm", "-g", str(gt), "-p", str(sub), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["mAP: 100.0000", "accuracy: 1.000000"]
    data = json.loads(out.read_text())
    assert data["layout"] == "frame" and data["num_rows"] == 70 and data["num_positives"] == 30

    payload = json.loads(write_ttm_submission_json(rows, tmp_path / "ttm.json").read_text())
    assert payload["challenge"] == "ego4d_talking_to_me" and len(payload["results"]) == 70
    assert payload["results"][0] == {
        "video_id": "interview:0",
        "frame_id": 0,
        "label": 1,
        "score": scores["interview:0"],
    }


def test_lam_round_trip_with_hand_computed_numbers(interview_ego4d, tmp_path):
    """Every LAM sample of the fixture (2 tracks x 60 frames, 40 positives) scored by a rule.

    Scores: 0.8 for frames 5..24 of face-1 and 40..59 of face-2 except frames 55..59 (0.4),
    0.3 elsewhere except frames 0..4 of face-1 (0.6).
    Ranking: 35 positives at 0.8, then the 5 false positives at 0.6, then 5 positives at
    0.4, then 75 negatives at 0.3.
    AP1: precision 1 up to recall 35/40 (rank 35), then at the 5 positives of ranks 41..45:
    36/41 .. 40/45 (rising, so the envelope is 40/45 for all five) ->
    AP1 = 35/40 * 1 + 5/40 * 40/45 = 0.875 + 0.1111111 = 0.9861111.
    AP0 (labels flipped, 1 - score): 75 negatives at 0.7 first (precision 1, recall 75/80),
    then 5 positives at 0.6, then the 5 false positives at 0.4 -> precision 76/81 .. 80/85,
    envelope 80/85 -> AP0 = 75/80 + 5/80 * 80/85 = 0.9375 + 0.0588235 = 0.9963235.
    mAP = (0.9861111 + 0.9963235) / 2 = 99.1217 %; accuracy = (120 - 5 - 5) / 120 = 0.916667.
    """
    clips = load_av_annotations(interview_ego4d.av)
    samples = lam_samples(clips)
    assert len(samples) == 120 and sum(s.label for s in samples) == 40

    def score(s) -> float:
        if s.label:
            return 0.4 if s.frame >= 55 else 0.8
        return 0.6 if (s.track_id == "face-1" and s.frame < 5) else 0.3

    rows = [(s.clip_uid, str(s.frame), s.track_id, score(s)) for s in samples]
    sub = tmp_path / "lam_pred.csv"
    write_lam_submission(rows, sub)
    assert sub.read_text().splitlines()[0] == "interview,0,face-1,1,0.6"
    assert read_lam_submission(sub)["score"].tolist() == [r[3] for r in rows]
    gt = tmp_path / "lam_gt.csv"
    gt.write_text("".join(f"{s.clip_uid},{s.frame},{s.track_id},{s.label}\n" for s in samples))
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--task",
            "lam",
            "-g",
            str(gt),
            "-p",
            str(sub),
            "--json",
            str(tmp_path / "lam.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    ap1 = 35 / 40 + 5 / 40 * 40 / 45
    ap0 = 75 / 80 + 5 / 80 * 80 / 85
    expected = 100 * (ap1 + ap0) / 2
    assert result.stdout.splitlines()[0] == f"mAP: {expected:.4f}" == "mAP: 99.1217"
    assert result.stdout.splitlines()[1] == f"accuracy: {110 / 120:.6f}"
    data = json.loads((tmp_path / "lam.json").read_text())
    assert data["map_percent"] == pytest.approx(expected, abs=1e-9)
    assert data["ap_positive_percent"] == pytest.approx(100 * 71 / 72, abs=1e-9)  # 0.98611

    payload = json.loads(write_lam_submission_json(rows, tmp_path / "l.json").read_text())
    assert payload["challenge"] == "ego4d_looking_at_me"
    assert set(payload["results"][0]) == {"video_id", "unique_id", "track_id", "label", "score"}


def test_cli_errors_exit_2(tmp_path):
    gt = tmp_path / "gt.csv"
    pred = tmp_path / "pred.csv"
    gt.write_text("s,1,1\ns,2,0\n")
    pred.write_text("s,1,1,0.9\n")
    result = runner.invoke(app, ["evaluate", "--task", "ttm", "-g", str(gt), "-p", str(pred)])
    assert result.exit_code == 2
    assert "1 ground-truth rows have no prediction: seg_id='s', frame_id=2" in result.output
    result = runner.invoke(
        app, ["evaluate", "--task", "lam", "-g", str(gt), "-p", str(pred), "--allow-any-score"]
    )
    assert result.exit_code == 2 and "--task ava only" in result.output
    result = runner.invoke(app, ["evaluate", "--task", "xyz", "-g", str(gt), "-p", str(pred)])
    flat = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert result.exit_code == 2 and "['ava', 'ttm', 'lam', 'diarization']" in flat


def test_writers_reject_bad_rows(tmp_path):
    with pytest.raises(SubmissionError, match=r"\[0, 1\], but got 1.2"):
        write_ttm_submission([("s", 1, 1.2)], tmp_path / "a.csv")
    with pytest.raises(SubmissionError, match="duplicate TTM row for seg_id='s' frame_id=1"):
        write_ttm_submission([("s", 1, 0.2), ("s", 1, 0.3)], tmp_path / "a.csv")
    with pytest.raises(SubmissionError, match="without commas"):
        write_lam_submission([("v,1", "1", "t", 0.5)], tmp_path / "b.csv")
    with pytest.raises(SubmissionError, match="without score"):
        ttm_frame_rows({}, {"s": [1]})
    assert not (tmp_path / "a.csv").exists()  # nothing half-written
