"""Ego4D TTM/LAM metrics against hand-computed values, layouts, and invalid input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialav.evaluation.ego4d import (
    Ego4dMetricError,
    evaluate_lam,
    evaluate_ttm,
    social_map,
    ttm_segment_scores,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# TTM hand example: labels y = [1, 0, 1, 0, 1], scores s = [0.9, 0.8, 0.6, 0.3, 0.2].
# AP(label 1): ranking 0.9(1) 0.8(0) 0.6(1) 0.3(0) 0.2(1), 3 positives:
#   precision 1, 1/2, 2/3, 2/4, 3/5; recall 1/3, 1/3, 2/3, 2/3, 1
#   envelope at the recall steps: 1 (r=1/3), 2/3 (r=2/3), 3/5 (r=1)
#   AP1 = (1 + 2/3 + 3/5) / 3 = 34/45
# AP(label 0) on 1 - s = [0.1, 0.2, 0.4, 0.7, 0.8], labels [0, 1, 0, 1, 0]:
#   ranking 0.8(0) 0.7(1) 0.4(0) 0.2(1) 0.1(0), 2 positives:
#   precision 0, 1/2, 1/3, 2/4, 2/5; recall 0, 1/2, 1/2, 1, 1
#   envelope at the recall steps: 1/2 (r=1/2), 1/2 (r=1) -> AP0 = 1/2
# mAP = (34/45 + 1/2) / 2 = 113/180 = 62.7778 %
# accuracy @0.5: predicted [1, 1, 1, 0, 0] vs [1, 0, 1, 0, 1] -> 3/5
TTM_LABELS = [1, 0, 1, 0, 1]
TTM_SCORES = [0.9, 0.8, 0.6, 0.3, 0.2]
TTM_MAP = 100 * 113 / 180

# LAM hand example: labels [1, 1, 0, 0, 1, 0], scores [0.7, 0.4, 0.6, 0.1, 0.9, 0.3].
# AP1: ranking .9(1) .7(1) .6(0) .4(1) .3(0) .1(0): precision 1, 1, 2/3, 3/4, 3/5, 1/2;
#   recall steps at rows 1, 2, 4 with envelope 1, 1, 3/4 -> AP1 = (1 + 1 + 3/4) / 3 = 11/12
# AP0 on 1 - s = [.3, .6, .4, .9, .1, .7], labels [0, 0, 1, 1, 0, 1]:
#   ranking .9(1) .7(1) .6(0) .4(1) .3(0) .1(0): the same pattern -> 11/12
# mAP = 11/12 = 91.6667 %; accuracy: predicted [1, 0, 1, 0, 1, 0] vs labels -> 4/6
LAM_LABELS = [1, 1, 0, 0, 1, 0]
LAM_SCORES = [0.7, 0.4, 0.6, 0.1, 0.9, 0.3]


def test_social_map_hand_values():
    mean_ap, ap1, ap0 = social_map(TTM_SCORES, TTM_LABELS)
    assert ap1 == pytest.approx(34 / 45, abs=1e-12)
    assert ap0 == pytest.approx(0.5, abs=1e-12)
    assert mean_ap == pytest.approx(113 / 180, abs=1e-12)
    with pytest.raises(Ego4dMetricError, match="only label 1"):
        social_map([0.3, 0.4], [1, 1])


def _ttm_segment_files(tmp_path, labels=TTM_LABELS, scores=TTM_SCORES):
    gt = tmp_path / "gt.csv"
    pred = tmp_path / "pred.csv"
    gt.write_text(
        "".join(f"clip-{i % 2},{i},{10 * i},{10 * i + 9},{y}\n" for i, y in enumerate(labels))
    )
    pred.write_text(
        "".join(f"clip-{i % 2},{i},{10 * i},{10 * i + 9},1,{s}\n" for i, s in enumerate(scores))
    )
    return gt, pred


def test_ttm_segment_layout_the_official_script_crashes_on(tmp_path):
    gt, pred = _ttm_segment_files(tmp_path)
    result = evaluate_ttm(gt, pred)
    assert result.layout == "segment"
    assert result.map_percent == pytest.approx(TTM_MAP, abs=1e-9)
    assert result.ap_positive_percent == pytest.approx(100 * 34 / 45, abs=1e-9)
    assert result.ap_negative_percent == pytest.approx(50.0, abs=1e-9)
    assert result.accuracy == pytest.approx(3 / 5)
    assert (result.num_rows, result.num_positives) == (5, 3)
    # confusion diagonal: TP 2 of 3 positives, TN 1 of 2 negatives
    assert result.true_positive_rate == pytest.approx(2 / 3)
    assert result.true_negative_rate == pytest.approx(1 / 2)
    # a different threshold changes only the accuracy: >= 0.7 -> [1,1,0,0,0] -> 2/5 correct
    assert evaluate_ttm(gt, pred, threshold=0.7).accuracy == pytest.approx(2 / 5)


def test_ttm_frame_layout_with_header_and_shuffled_rows(tmp_path):
    gt = tmp_path / "gt.csv"
    pred = tmp_path / "pred.csv"
    rows = [
        (f"seg{i}", 100 + i, y, s)
        for i, (y, s) in enumerate(zip(TTM_LABELS, TTM_SCORES, strict=False))
    ]
    gt.write_text("seg_id,frame_id,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y, _ in rows))
    pred.write_text("".join(f"{a},{b},1,{s}\n" for a, b, _, s in reversed(rows)))
    result = evaluate_ttm(gt, pred)
    assert result.layout == "frame"
    assert result.map_percent == pytest.approx(TTM_MAP, abs=1e-9)


def test_lam_box_and_submission_layouts(tmp_path):
    gt_rows = [
        ("vid", 10 + i // 2, 0.1 * i, 0.2, 0.5, 0.9, f"t{i % 2}", y)
        for i, y in enumerate(LAM_LABELS)
    ]
    gt = pd.DataFrame(
        gt_rows, columns=["video_id", "frame_id", "x1", "y1", "x2", "y2", "track_id", "label"]
    )
    pred = gt.assign(label=1, score=LAM_SCORES)
    result = evaluate_lam(gt, pred)
    assert result.layout == "boxes"
    assert result.map_percent == pytest.approx(100 * 11 / 12, abs=1e-9)
    assert result.accuracy == pytest.approx(4 / 6)
    # same numbers from the challenge layout written as CSV files
    gt_csv, pred_csv = tmp_path / "gt.csv", tmp_path / "pred.csv"
    gt_csv.write_text("".join(f"{r[0]},{r[1]},{r[6]},{r[7]}\n" for r in gt_rows))
    pred_csv.write_text(
        "".join(f"{r[0]},{r[1]},{r[6]},1,{s}\n" for r, s in zip(gt_rows, LAM_SCORES, strict=False))
    )
    sub = evaluate_lam(gt_csv, pred_csv)
    assert sub.layout == "submission"
    assert sub.map_percent == pytest.approx(100 * 11 / 12, abs=1e-9)
    # a moved box is an error in the box layout
    bad = pred.copy()
    bad.loc[2, "x2"] = 0.6
    with pytest.raises(Ego4dMetricError, match="differ from the ground truth") as info:
        evaluate_lam(gt, bad)
    assert info.value.problem == "box_mismatch"


@pytest.mark.parametrize(
    "edit, problem, pattern",
    [
        (
            lambda g, p: p[:-1],
            "missing_predictions",
            r"1 ground-truth rows have no prediction: "
            r"clip_uid='clip-0', segment_index=4",
        ),
        (
            lambda g, p: p + ["clip-9,9,90,99,1,0.5"],
            "extra_predictions",
            r"1 prediction rows match no ground-truth row: clip_uid='clip-9'",
        ),
        (lambda g, p: p + [p[0]], "duplicate_predictions", r"2 rows with a repeated key"),
        (
            lambda g, p: [p[0].replace(",1,0.9", ",0,0.9")] + p[1:],
            "invalid_prediction_label",
            r"must carry label 1",
        ),
        (
            lambda g, p: [p[0].replace("0.9", "1.5")] + p[1:],
            "score_out_of_range",
            r"probabilities in \[0, 1\].*1\.5",
        ),
        (lambda g, p: [p[0].replace("0.9", "nan")] + p[1:], "invalid_score", r"not finite"),
        (
            lambda g, p: [p[0].replace("0.9", "high")] + p[1:],
            "parse",
            r"column 'score' must be numeric, but rows \[0\] hold \['high'\]",
        ),
        (lambda g, p: [r + ",x" for r in p], "layout", r"7 columns on the first line"),
    ],
)
def test_invalid_predictions_are_errors(tmp_path, edit, problem, pattern):
    gt, pred = _ttm_segment_files(tmp_path)
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join(edit(None, lines)) + "\n")
    with pytest.raises(Ego4dMetricError, match=pattern) as info:
        evaluate_ttm(gt, pred)
    assert info.value.problem == problem


def test_invalid_groundtruth_labels(tmp_path):
    gt, pred = _ttm_segment_files(tmp_path)
    gt.write_text(gt.read_text().replace(",1\n", ",2\n", 1))
    with pytest.raises(Ego4dMetricError, match=r"labels must be 0 or 1, but found \[2\]"):
        evaluate_ttm(gt, pred)


def test_ttm_segment_scores_average_logits_then_softmax():
    logits = np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 0.0]])
    scores = ttm_segment_scores(["a", "a", "b"], logits)
    # a: mean logits (0, 1) -> softmax[1] = e / (1 + e); b: (1, 0) -> 1 / (1 + e)
    assert scores["a"] == pytest.approx(np.e / (1 + np.e))
    assert scores["b"] == pytest.approx(1 / (1 + np.e))
    # not the mean of the sub-clip probabilities: (sigmoid(2) + 0.5) / 2 differs
    assert scores["a"] != pytest.approx((1 / (1 + np.exp(-2)) + 0.5) / 2)
