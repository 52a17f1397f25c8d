"""AVA-ActiveSpeaker mAP: official fixture, hand-computed VOC AP, independent re-computation,
strict validation errors and the video_id subset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from socialav.evaluation.ava import (
    AvaValidationError,
    average_precision_voc,
    evaluate_ava,
    join_ava_predictions,
)
from socialav.io.ava_csv import read_ava_csv

# --------------------------------------------------------------------------------------
# Official fixture
# --------------------------------------------------------------------------------------


def test_fixture_matches_official_script(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ava_metric"
    expected = json.loads((folder / "expected.json").read_text())
    result = evaluate_ava(folder / "groundtruth.csv", folder / "predictions.csv")
    assert result.map_percent == pytest.approx(expected["map_percent"], abs=1e-6)
    assert result.map_percent == pytest.approx(92.79384083677978, abs=1e-6)
    assert result.num_rows == 670
    assert result.num_positives == 352  # SPEAKING_NOT_AUDIBLE rows (42) are negatives
    assert set(result.per_video) == {"-5KQ66BBWC4", "2qQs3Y9OJX0", "_a9SWtcaNj8"}
    assert sum(result.per_video_num_rows.values()) == 670
    assert sum(result.per_video_num_positives.values()) == 352
    # Not scikit-learn's non-interpolated AP (92.7435): the envelope matters.
    gt = read_ava_csv(folder / "groundtruth.csv", "groundtruth")
    joined = join_ava_predictions(gt, read_ava_csv(folder / "predictions.csv", "predictions"))
    sk = 100 * average_precision_score(joined["is_positive"], joined["score"])
    assert sk == pytest.approx(92.7435, abs=1e-4)
    assert abs(result.map_percent - sk) > 0.04


def test_fixture_as_dataframes_with_shuffled_rows(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ava_metric"
    gt = pd.read_csv(folder / "groundtruth.csv")
    pred = pd.read_csv(folder / "predictions.csv").sample(frac=1.0, random_state=3)
    result = evaluate_ava(gt.sample(frac=1.0, random_state=4), pred)
    assert result.map_percent == pytest.approx(92.79384083677978, abs=1e-6)


# --------------------------------------------------------------------------------------
# average_precision_voc
# --------------------------------------------------------------------------------------


def test_voc_ap_hand_computed() -> None:
    # Ranked by score: labels 0, 1, 0, 1, 1 (P = 3).
    #   k  tp  precision  recall   envelope (max precision at rank >= k)
    #   1  0   0          0        3/5
    #   2  1   1/2        1/3      3/5
    #   3  1   1/3        1/3      3/5
    #   4  2   1/2        2/3      3/5
    #   5  3   3/5        1        3/5
    # Recall steps at k = 2, 4, 5, each 1/3: AP = 1/3 * (3/5 + 3/5 + 3/5) = 0.6.
    # Without the envelope (scikit-learn): 1/3 * (1/2 + 1/2 + 3/5) = 0.5333...
    scores = np.array([0.6, 0.9, 0.5, 0.7, 0.8])  # input order shuffled on purpose
    labels = np.array([1, 0, 1, 0, 1])
    assert average_precision_voc(scores, labels) == pytest.approx(0.6, abs=1e-12)
    assert average_precision_score(labels, scores) == pytest.approx(1.6 / 3, abs=1e-12)


def test_voc_ap_second_hand_example() -> None:
    # Ranked labels 1, 0, 1, 0, 1: precisions 1, 1/2, 2/3, 1/2, 3/5; envelope at the
    # positives 1, 2/3, 3/5 -> AP = (1 + 2/3 + 3/5) / 3 = 34/45.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    assert average_precision_voc(scores, [1, 0, 1, 0, 1]) == pytest.approx(34 / 45, abs=1e-12)


def test_voc_ap_edge_cases() -> None:
    assert average_precision_voc([0.3, 0.2], [1, 1]) == 1.0
    assert average_precision_voc([0.9, 0.1], [0, 1]) == 0.5
    assert math.isnan(average_precision_voc([0.9, 0.1], [0, 0]))
    # ties keep input order (stable sort)
    assert average_precision_voc([0.5, 0.5], [1, 0]) == 1.0
    assert average_precision_voc([0.5, 0.5], [0, 1]) == 0.5
    with pytest.raises(ValueError, match="same length"):
        average_precision_voc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="finite"):
        average_precision_voc([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        average_precision_voc([0.1, 0.2], [2, 0])


def _ap_by_official_loop(scores: np.ndarray, labels: np.ndarray) -> float:
    """The official algorithm written out as plain loops (independent of the vectorised code)."""
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
    positives = int(sum(labels))
    precision, recall, tp = [], [], 0
    for rank, i in enumerate(ranked, start=1):
        tp += int(labels[i])
        precision.append(tp / rank)
        recall.append(tp / positives)
    precision = [0.0, *precision, 0.0]
    recall = [0.0, *recall, 1.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return sum(
        (recall[i] - recall[i - 1]) * precision[i]
        for i in range(1, len(recall))
        if recall[i] != recall[i - 1]
    )


def _ap_by_interpolated_positives(scores: np.ndarray, labels: np.ndarray) -> float:
    """Second formulation: mean over positives of the best precision at that rank or later."""
    ranked = np.asarray(labels)[np.argsort(-np.asarray(scores), kind="stable")]
    precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    total = 0.0
    for k in np.flatnonzero(ranked):
        total += precision[k:].max()
    return total / ranked.sum()


@pytest.mark.parametrize("seed", range(40))
def test_voc_ap_matches_independent_computations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    labels = rng.integers(0, 2, n)
    labels[rng.integers(0, n)] = 1  # at least one positive
    scores = rng.random(n)  # continuous: no ties
    ours = average_precision_voc(scores, labels)
    assert ours == pytest.approx(_ap_by_official_loop(scores, labels), abs=1e-12)
    assert ours == pytest.approx(_ap_by_interpolated_positives(scores, labels), abs=1e-12)
    # invariants: interpolation never lowers AP; AP is rank-based (monotone maps keep it)
    assert ours >= average_precision_score(labels, scores) - 1e-12
    assert average_precision_voc(np.log(scores + 1e-3) * 7 - 2, labels) == pytest.approx(
        ours, abs=1e-12
    )


# --------------------------------------------------------------------------------------
# Strict validation
# --------------------------------------------------------------------------------------


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    gt = pd.DataFrame(
        {
            "video_id": ["vA"] * 4 + ["vB"] * 3,
            "frame_timestamp": [1.0, 1.04, 1.08, 1.0, 2.0, 2.04, 2.08],
            "entity_box_x1": [0.1] * 7,
            "entity_box_y1": [0.2] * 7,
            "entity_box_x2": [0.3] * 7,
            "entity_box_y2": [0.4] * 7,
            "label": [
                "SPEAKING_AUDIBLE",
                "SPEAKING_AUDIBLE",
                "NOT_SPEAKING",
                "SPEAKING_NOT_AUDIBLE",
                "SPEAKING_AUDIBLE",
                "NOT_SPEAKING",
                "NOT_SPEAKING",
            ],
            "entity_id": ["vA:0", "vA:0", "vA:0", "vA:1", "vB:0", "vB:0", "vB:0"],
        }
    )
    pred = gt.assign(label="SPEAKING_AUDIBLE", score=[0.9, 0.3, 0.4, 0.8, 0.7, 0.2, 0.75]).iloc[
        ::-1
    ]
    return gt, pred.reset_index(drop=True)


def test_small_tables_hand_computed() -> None:
    gt, pred = _tables()
    result = evaluate_ava(gt, pred)
    # Ranked: 0.9 P, 0.8 N(not audible), 0.75 N, 0.7 P, 0.4 N, 0.3 P, 0.2 N; P = 3.
    # precision at positives 1, 2/4, 3/6; envelope 1, 1/2, 1/2 -> AP = (1 + .5 + .5) / 3.
    assert result.map_percent == pytest.approx(100 * 2 / 3, abs=1e-9)
    # vA: 0.9 P, 0.8 N, 0.4 N, 0.3 P -> (1 + 1/2) / 2; vB: 0.75 N, 0.7 P, 0.2 N -> 1/2.
    assert result.per_video == pytest.approx({"vA": 75.0, "vB": 50.0})
    assert result.per_video_num_rows == {"vA": 4, "vB": 3}
    assert result.per_video_num_positives == {"vA": 2, "vB": 1}
    # threshold 0.5: predicted P at 0.9, 0.8, 0.75, 0.7 -> TP 2, FP 2, FN 1, TN 2
    assert result.accuracy == pytest.approx(4 / 7)
    assert result.f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert result.threshold == 0.5
    assert 0.0 <= result.roc_auc <= 1.0
    high = evaluate_ava(gt, pred, threshold=0.95)
    assert high.f1 == 0.0 and high.accuracy == pytest.approx(4 / 7)
    assert high.map_percent == result.map_percent


def _error(gt: pd.DataFrame, pred: pd.DataFrame, **kwargs) -> AvaValidationError:
    with pytest.raises(AvaValidationError) as info:
        evaluate_ava(gt, pred, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_prediction_rows_are_named() -> None:
    gt, pred = _tables()
    error = _error(gt, pred[pred["score"] != 0.3])
    assert error.problem == "missing_predictions"
    assert str(error).startswith("1 ground-truth rows have no prediction")
    assert "row 1 (video_id='vA', frame_timestamp=1.04, entity_id='vA:0')" in str(error)
    assert len(error.rows) == 1


def test_extra_prediction_rows_are_named() -> None:
    gt, pred = _tables()
    extra = pred.iloc[:1].assign(entity_id="vB:9", frame_timestamp=5.0)
    error = _error(gt, pd.concat([pred, extra], ignore_index=True))
    assert error.problem == "extra_predictions"
    assert "row 7 (video_id='vB', frame_timestamp=5.0, entity_id='vB:9')" in str(error)


def test_same_count_but_different_keys_is_not_silently_dropped() -> None:
    # The official script only compares counts; its inner join would drop both rows.
    gt, pred = _tables()
    pred.loc[pred["score"] == 0.3, "entity_id"] = "vA:7"
    error = _error(gt, pred)
    assert error.problem == "missing_predictions"
    assert "entity_id='vA:0'" in str(error)


def test_timestamps_matching_only_after_rounding() -> None:
    gt, pred = _tables()
    pred.loc[pred["score"] == 0.3, "frame_timestamp"] = 1.0400001
    error = _error(gt, pred)
    assert error.problem == "timestamp_rounding"
    message = str(error)
    assert "groundtruth_frame_timestamp=1.04" in message
    assert "prediction_frame_timestamp=1.0400001" in message
    assert "prediction_row=5)" in message  # pred is in reverse ground-truth order
    assert "only after rounding" in message


def test_equal_timestamp_texts_match(tmp_path: Path) -> None:
    gt, pred = _tables()
    gt_path, pred_path = tmp_path / "gt.csv", tmp_path / "pred.csv"
    gt.to_csv(gt_path, index=False, header=False)
    text = pred.assign(frame_timestamp=[f"{t:.3f}" for t in pred["frame_timestamp"]])
    text.to_csv(pred_path, index=False)  # "1.040" vs "1.04": same float, same key
    assert evaluate_ava(gt_path, pred_path).map_percent == pytest.approx(100 * 2 / 3)


@pytest.mark.parametrize("which", ["groundtruth", "predictions"])
def test_duplicate_keys(which: str) -> None:
    gt, pred = _tables()
    if which == "groundtruth":
        gt = pd.concat([gt, gt.iloc[[2]]], ignore_index=True)
    else:
        pred = pd.concat([pred, pred.iloc[[2]]], ignore_index=True)
    error = _error(gt, pred)
    assert error.problem == f"duplicate_{which}"
    what = {"groundtruth": "ground-truth", "predictions": "prediction"}[which]
    assert str(error).startswith(f"2 {what} rows share a (frame_timestamp, entity_id) key")
    assert len(error.rows) == 2


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_scores(bad: float) -> None:
    gt, pred = _tables()
    pred.loc[3, "score"] = bad
    error = _error(gt, pred)
    assert error.problem == "invalid_score"
    assert "row 3 (" in str(error)


def test_scores_must_be_probabilities_unless_disabled() -> None:
    gt, pred = _tables()
    logits = np.log(pred["score"] / (1 - pred["score"]))
    error = _error(gt, pred.assign(score=logits))
    assert error.problem == "score_out_of_range"
    assert "[0, 1]" in str(error) and "--allow-any-score" in str(error)
    # with the check disabled, logits give the same mAP as the probabilities (rank-based)
    assert evaluate_ava(gt, pred.assign(score=logits), score_range=None).map_percent == (
        pytest.approx(evaluate_ava(gt, pred).map_percent, abs=1e-12)
    )


def test_box_mismatch_beyond_tolerance() -> None:
    gt, pred = _tables()
    tiny = pred.copy()
    tiny["entity_box_x1"] += 1e-8
    evaluate_ava(gt, tiny)  # within the default 1e-6
    pred.loc[4, "entity_box_y2"] = 0.45
    error = _error(gt, pred)
    assert error.problem == "box_mismatch"
    assert "row 4 (" in str(error)
    assert "box_gt=(0.1, 0.2, 0.3, 0.4), box_pred=(0.1, 0.2, 0.3, 0.45)" in str(error)
    with pytest.raises(AvaValidationError):
        evaluate_ava(gt, tiny, box_tolerance=1e-9)


def test_labels_outside_the_three_ava_labels() -> None:
    gt, pred = _tables()
    error = _error(gt.assign(label=gt["label"].replace("NOT_SPEAKING", "SILENT")), pred)
    assert error.problem == "invalid_groundtruth_label"
    assert str(error).startswith("3 ground-truth rows have a label other than")
    assert "label='SILENT'" in str(error)
    pred.loc[0, "label"] = "NOT_SPEAKING"
    error = _error(gt, pred)
    assert error.problem == "invalid_prediction_label"
    assert "row 0 (" in str(error)


def test_video_id_must_agree_on_joined_rows() -> None:
    gt, pred = _tables()
    pred.loc[0, "video_id"] = "vZ"
    error = _error(gt, pred)
    assert error.problem == "video_id_mismatch"
    assert "video_id_pred='vZ'" in str(error)


def test_video_without_positives_has_nan_ap_and_json_null(tmp_path: Path) -> None:
    from socialav.evaluation.ava import write_evaluation_json

    gt, pred = _tables()
    gt.loc[gt["video_id"] == "vB", "label"] = "NOT_SPEAKING"
    result = evaluate_ava(gt, pred)
    assert math.isnan(result.per_video["vB"]) and result.per_video["vA"] == 75.0
    path = write_evaluation_json(result, tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["per_video"]["vB"] == {"map_percent": None, "num_rows": 3, "num_positives": 0}


def test_no_positive_is_an_error() -> None:
    gt, pred = _tables()
    gt = gt.assign(label="NOT_SPEAKING")
    assert _error(gt, pred).problem == "no_positives"


# --------------------------------------------------------------------------------------
# Subset
# --------------------------------------------------------------------------------------


def test_subset_equals_per_video_and_filtered_tables() -> None:
    gt, pred = _tables()
    full = evaluate_ava(gt, pred)
    only_a = evaluate_ava(gt, pred, subset=["vA"])
    assert only_a.map_percent == pytest.approx(full.per_video["vA"])
    assert only_a.num_rows == 4 and only_a.subset == ("vA",)
    assert list(only_a.per_video) == ["vA"]
    # predictions restricted to the subset are enough when a subset is given
    assert evaluate_ava(gt, pred[pred["video_id"] == "vA"], subset=["vA"]) == only_a
    both = evaluate_ava(gt, pred, subset=["vB", "vA"])
    assert both.map_percent == pytest.approx(full.map_percent)


def test_subset_with_unknown_video_id() -> None:
    gt, pred = _tables()
    error = _error(gt, pred, subset=["vA", "nope"])
    assert error.problem == "subset_not_found"
    assert "'nope'" in str(error)
    with pytest.raises(TypeError):
        evaluate_ava(gt, pred, subset="vA")
