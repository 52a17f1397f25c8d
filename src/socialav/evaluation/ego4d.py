"""Ego4D Talking-to-Me and Looking-at-Me metrics with the official semantics, strictly checked.

Details and sources: ``docs/ego4d.md`` (The TTM and LAM metrics: official semantics and checks).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from socialav.evaluation.ava import average_precision_voc
from socialav.io.ego4d_csv import (
    LAM_GROUNDTRUTH_COLUMNS,
    LAM_PREDICTION_COLUMNS,
    LAYOUTS,
    MAX_SHOWN_ROWS,
    TTM_FRAME_GROUNDTRUTH_COLUMNS,
    TTM_FRAME_PREDICTION_COLUMNS,
    TTM_SEGMENT_GROUNDTRUTH_COLUMNS,
    TTM_SEGMENT_PREDICTION_COLUMNS,
    Ego4dMetricError,
    detect_layout,
    read_social_csv,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Ego4dEvaluation",
    "Ego4dMetricError",
    "LAM_GROUNDTRUTH_COLUMNS",
    "LAM_PREDICTION_COLUMNS",
    "TTM_FRAME_GROUNDTRUTH_COLUMNS",
    "TTM_FRAME_PREDICTION_COLUMNS",
    "TTM_SEGMENT_GROUNDTRUTH_COLUMNS",
    "TTM_SEGMENT_PREDICTION_COLUMNS",
    "evaluate_lam",
    "evaluate_ttm",
    "read_social_csv",
    "social_map",
    "ttm_segment_scores",
    "write_social_evaluation_json",
]

Task = Literal["ttm", "lam"]


@dataclass(frozen=True)
class Ego4dEvaluation:
    """Result of :func:`evaluate_ttm` / :func:`evaluate_lam`.

    Attributes:
        task: ``"ttm"`` or ``"lam"``.
        layout: which file layout was read (``segment``/``frame``, ``boxes``/``submission``).
        map_percent: mean of the two APs, in percent (official ``mAP`` x 100).
        ap_positive_percent: AP of class 1 (talking to / looking at me), percent.
        ap_negative_percent: AP of class 0 on ``1 - score``, percent.
        accuracy: fraction of rows with ``(score >= threshold) == label`` ("TOP-1 Acc").
        threshold: the accuracy threshold.
        num_rows: evaluated rows; num_positives: rows with label 1.
        true_positive_rate, true_negative_rate: the official confusion-matrix diagonal
            (fractions; NaN without positives/negatives).
    """

    task: str
    layout: str
    map_percent: float
    ap_positive_percent: float
    ap_negative_percent: float
    accuracy: float
    threshold: float
    num_rows: int
    num_positives: int
    true_positive_rate: float
    true_negative_rate: float

    def to_dict(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if isinstance(v, float) and math.isnan(v) else v

        names = {"ttm": "Talking-to-Me", "lam": "Looking-at-Me"}
        return {
            "metric": f"Ego4D {names.get(self.task, self.task)} mAP (percent): mean of AP "
            "(class 1) and AP (class 0 on 1 - score), VOC-interpolated, official "
            "EGO4D/social-interactions common/metrics.py semantics",
            **{k: clean(v) for k, v in self.__dict__.items()},
        }


def social_map(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> tuple[float, float, float]:
    """``(mAP, AP class 1, AP class 0)`` as fractions, the official definition.

    ``AP1 = average_precision_voc(score, label)``, ``AP0 = average_precision_voc(1 - score,
    1 - label)``, ``mAP = (AP0 + AP1) / 2``.

    Raises:
        Ego4dMetricError: ``single_class`` when either class has no row (its AP is undefined).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if len(s) == 0:
        raise Ego4dMetricError("no_rows", "no rows to evaluate")
    if y.min() == y.max():
        raise Ego4dMetricError(
            "single_class",
            f"the ground truth holds only label {int(y[0])} ({len(y)} rows): the mAP needs "
            "both classes (it averages the AP of each)",
        )
    ap1 = average_precision_voc(s, y)
    ap0 = average_precision_voc(1.0 - s, 1 - y)
    return (ap0 + ap1) / 2.0, ap1, ap0


def ttm_segment_scores(
    segment_ids: Sequence[str], logits: np.ndarray | torch.Tensor
) -> dict[str, float]:
    """Per-segment TTM score: softmax of the mean of its sub-clips' 2-way logits, class 1.

    As ``PostProcessor._merge_output`` of the TTM baseline (``F.softmax(pred.mean(0))[1]``).

    Args:
        segment_ids: ``(N,)`` segment id of every sub-clip (any order).
        logits: ``(N, 2)`` logits of every sub-clip.

    Returns:
        ``segment_id -> probability`` in first-appearance order.
    """
    arr = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] != len(segment_ids):
        raise ValueError(
            f"logits must have shape ({len(segment_ids)}, 2), but got {tuple(arr.shape)}"
        )
    groups: dict[str, list[int]] = {}
    for i, sid in enumerate(segment_ids):
        groups.setdefault(str(sid), []).append(i)
    return {sid: float(torch.softmax(arr[idx].mean(0), dim=-1)[1]) for sid, idx in groups.items()}


def _show(table: pd.DataFrame, keys: Sequence[str]) -> str:
    rows = table.head(MAX_SHOWN_ROWS)
    parts = [", ".join(f"{k}={row[k]!r}" for k in keys) for _, row in rows.iterrows()]
    more = f" (and {len(table) - MAX_SHOWN_ROWS} more)" if len(table) > MAX_SHOWN_ROWS else ""
    return "; ".join(parts) + more


def _evaluate(
    task: Task,
    groundtruth: str | os.PathLike[str] | pd.DataFrame,
    predictions: str | os.PathLike[str] | pd.DataFrame,
    threshold: float,
    layout: str | None,
    box_tolerance: float,
) -> Ego4dEvaluation:
    layout = layout or detect_layout(task, predictions)
    if layout not in LAYOUTS[task]:
        raise Ego4dMetricError(
            "layout", f"layout must be one of {list(LAYOUTS[task])} for {task}, but got {layout!r}"
        )
    gt_cols, pred_cols, keys = LAYOUTS[task][layout]
    gt = read_social_csv(groundtruth, gt_cols, "ground truth")
    pred = read_social_csv(predictions, pred_cols, "predictions")
    if len(gt) == 0:
        raise Ego4dMetricError("no_rows", "the ground truth has no rows")
    bad = ~gt["label"].isin([0, 1])
    if bad.any():
        raise Ego4dMetricError(
            "invalid_label",
            f"ground-truth labels must be 0 or 1, but found "
            f"{sorted(gt.loc[bad, 'label'].unique().tolist())[:10]} in {int(bad.sum())} rows: "
            + _show(gt[bad], keys),
        )
    bad = pred["label"] != 1
    if bad.any():
        raise Ego4dMetricError(
            "invalid_prediction_label",
            f"prediction rows must carry label 1 (the positive class), but {int(bad.sum())} "
            "rows do not: " + _show(pred[bad], keys),
        )
    bad = ~np.isfinite(pred["score"].to_numpy())
    if bad.any():
        raise Ego4dMetricError(
            "invalid_score",
            f"{int(bad.sum())} prediction scores are not finite: " + _show(pred[bad], keys),
        )
    bad = (pred["score"] < 0) | (pred["score"] > 1)
    if bad.any():
        raise Ego4dMetricError(
            "score_out_of_range",
            f"scores must be probabilities in [0, 1] (the class-0 AP ranks 1 - score), but "
            f"{int(bad.sum())} are not, e.g. {pred.loc[bad, 'score'].head(3).tolist()}: "
            + _show(pred[bad], keys),
        )
    for table, name in ((gt, "groundtruth"), (pred, "predictions")):
        dup = table.duplicated(list(keys), keep=False)
        if dup.any():
            raise Ego4dMetricError(
                f"duplicate_{name}",
                f"{name} has {int(dup.sum())} rows with a repeated key ({', '.join(keys)}): "
                + _show(table[dup], keys),
            )
    merged = gt.reset_index().merge(
        pred, on=list(keys), how="outer", suffixes=("_gt", "_pred"), indicator=True
    )
    missing = merged[merged["_merge"] == "left_only"]
    if len(missing):
        raise Ego4dMetricError(
            "missing_predictions",
            f"{len(missing)} ground-truth rows have no prediction: " + _show(missing, keys),
        )
    extra = merged[merged["_merge"] == "right_only"]
    if len(extra):
        raise Ego4dMetricError(
            "extra_predictions",
            f"{len(extra)} prediction rows match no ground-truth row: " + _show(extra, keys),
        )
    merged = merged.sort_values("index", kind="stable").reset_index(drop=True)
    if layout == "boxes":
        diff = np.zeros(len(merged))
        for c in ("x1", "y1", "x2", "y2"):
            diff = np.maximum(diff, np.abs(merged[f"{c}_gt"] - merged[f"{c}_pred"]).to_numpy())
        bad = diff > box_tolerance
        if bad.any():
            raise Ego4dMetricError(
                "box_mismatch",
                f"{int(bad.sum())} prediction boxes differ from the ground "
                f"truth by more than {box_tolerance}: " + _show(merged[bad], keys),
            )
    if layout == "segment":
        diff = (merged["start_frame_gt"] != merged["start_frame_pred"]) | (
            merged["end_frame_gt"] != merged["end_frame_pred"]
        )
        if diff.any():
            raise Ego4dMetricError(
                "box_mismatch",
                f"{int(diff.sum())} prediction rows have other start/end "
                "frames than the ground truth: " + _show(merged[diff], keys),
            )
    scores = merged["score"].to_numpy(np.float64)
    labels = merged["label_gt"].to_numpy(np.int64)
    mean_ap, ap1, ap0 = social_map(scores, labels)
    predicted = scores >= threshold
    positives = labels == 1
    tp = int((predicted & positives).sum())
    tn = int((~predicted & ~positives).sum())
    result = Ego4dEvaluation(
        task=task,
        layout=layout,
        map_percent=100.0 * mean_ap,
        ap_positive_percent=100.0 * ap1,
        ap_negative_percent=100.0 * ap0,
        accuracy=(tp + tn) / len(labels),
        threshold=float(threshold),
        num_rows=len(labels),
        num_positives=int(positives.sum()),
        true_positive_rate=tp / int(positives.sum()),
        true_negative_rate=tn / int((~positives).sum()),
    )
    logger.info(
        "%s mAP %.4f%% accuracy %.4f over %d rows",
        task,
        result.map_percent,
        result.accuracy,
        result.num_rows,
    )
    return result


def evaluate_ttm(
    groundtruth: str | os.PathLike[str] | pd.DataFrame,
    predictions: str | os.PathLike[str] | pd.DataFrame,
    threshold: float = 0.5,
    *,
    layout: Literal["segment", "frame"] | None = None,
) -> Ego4dEvaluation:
    """Talking-to-Me mAP and accuracy (see the module docstring).

    Args:
        groundtruth, predictions: CSV paths or tables in the ``segment`` or ``frame`` layout.
        threshold: accuracy threshold (official 0.5).
        layout: force a layout; ``None`` detects it from the predictions' column count.

    Raises:
        FileNotFoundError, Ego4dMetricError: see the module docstring.
    """
    return _evaluate("ttm", groundtruth, predictions, threshold, layout, 0.0)


def evaluate_lam(
    groundtruth: str | os.PathLike[str] | pd.DataFrame,
    predictions: str | os.PathLike[str] | pd.DataFrame,
    threshold: float = 0.5,
    *,
    layout: Literal["boxes", "submission"] | None = None,
    box_tolerance: float = 1e-6,
) -> Ego4dEvaluation:
    """Looking-at-Me mAP and accuracy per (clip, frame, track) (see the module docstring).

    Args:
        box_tolerance: largest allowed box difference in the ``boxes`` layout (official 1e-9;
            1e-6 here, to allow boxes written with fewer digits).
    """
    return _evaluate("lam", groundtruth, predictions, threshold, layout, box_tolerance)


def write_social_evaluation_json(evaluation: Ego4dEvaluation, path: str | os.PathLike[str]) -> Path:
    """Write :meth:`Ego4dEvaluation.to_dict` as indented JSON, atomically."""
    import json

    from socialav.io.atomic import atomic_write

    with atomic_write(path) as handle:
        handle.write(json.dumps(evaluation.to_dict(), indent=2, allow_nan=False) + "\n")
    return Path(path)
