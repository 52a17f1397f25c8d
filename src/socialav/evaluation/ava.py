"""AVA-ActiveSpeaker mAP with the semantics of the official evaluator, and stricter checks.

Details and sources: ``docs/datasets.md`` (The AVA-ActiveSpeaker mAP: official semantics and checks).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
import pandas as pd

from socialav.io.ava_csv import (
    BOX_COLUMNS,
    AvaLabel,
    CsvKind,
    coerce_ava_frame,
    read_ava_csv,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AvaEvaluation",
    "AvaValidationError",
    "TIMESTAMP_RESOLUTION_S",
    "average_precision_voc",
    "evaluate_ava",
    "join_ava_predictions",
    "write_evaluation_json",
]

#: Resolution of AVA ``frame_timestamp`` values (two decimals). Unmatched ground-truth and
#: prediction rows of one ``entity_id`` closer than this are reported as "matches only after
#: rounding" rather than as plain missing/extra rows.
TIMESTAMP_RESOLUTION_S: float = 0.01
#: Join key of the official evaluator (its ``uid``).
KEY_COLUMNS: tuple[str, str] = ("frame_timestamp", "entity_id")
_MAX_SHOWN = 5


class AvaValidationError(ValueError):
    """Ground truth and predictions cannot be evaluated as they are.

    Attributes:
        problem: a short code: ``"missing_predictions"``, ``"extra_predictions"``,
            ``"timestamp_rounding"``, ``"duplicate_groundtruth"``,
            ``"duplicate_predictions"``, ``"invalid_score"``, ``"score_out_of_range"``,
            ``"invalid_groundtruth_label"``, ``"invalid_prediction_label"``,
            ``"box_mismatch"``, ``"video_id_mismatch"``, ``"subset_not_found"``,
            ``"no_rows"`` or ``"no_positives"``.
        rows: the offending rows (all of them; the message shows the first five and the
            count). ``row N`` in messages is the 0-based data row of the table named (the
            header line is not counted), ``prediction_row`` that of the prediction table.
    """

    def __init__(self, problem: str, message: str, rows: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.rows = rows if rows is not None else pd.DataFrame()


@dataclass(frozen=True)
class AvaEvaluation:
    """Result of :func:`evaluate_ava`.

    Attributes:
        map_percent: AVA-ActiveSpeaker mAP in percent (official semantics).
        num_rows: joined (evaluated) rows, one per ground-truth face per frame.
        num_positives: ground-truth rows labelled ``SPEAKING_AUDIBLE``.
        threshold: score threshold of ``accuracy`` and ``f1`` (positive: ``score >=
            threshold``).
        accuracy: fraction of rows whose thresholded score agrees with the ground truth.
        f1: F1 of ``SPEAKING_AUDIBLE`` at ``threshold`` (0 when nothing is predicted).
        roc_auc: area under the ROC curve (threshold-free; NaN with a single class).
        per_video: ``video_id`` -> AP in percent over that video's rows (NaN when the
            video has no ``SPEAKING_AUDIBLE`` row).
        per_video_num_rows: ``video_id`` -> evaluated rows.
        per_video_num_positives: ``video_id`` -> ``SPEAKING_AUDIBLE`` rows.
        subset: the ``video_id`` subset evaluated, or ``None`` for all rows.
        ties: tied scores over all rows and the mAP range over their orders
            (:class:`TieReport`); ``map_percent`` uses the official script's order.
    """

    map_percent: float
    num_rows: int
    num_positives: int
    threshold: float
    accuracy: float
    f1: float
    roc_auc: float
    per_video: dict[str, float] = field(default_factory=dict)
    per_video_num_rows: dict[str, int] = field(default_factory=dict)
    per_video_num_positives: dict[str, int] = field(default_factory=dict)
    subset: tuple[str, ...] | None = None
    ties: TieReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``); ``per_video`` is keyed by video_id."""

        def clean(value: float) -> float | None:
            return None if math.isnan(value) else float(value)

        return {
            "metric": "AVA-ActiveSpeaker mAP (percent), official "
            "get_ava_active_speaker_performance.py semantics",
            "map_percent": clean(self.map_percent),
            "num_rows": self.num_rows,
            "num_positives": self.num_positives,
            "num_videos": len(self.per_video),
            "threshold": self.threshold,
            "accuracy": clean(self.accuracy),
            "f1": clean(self.f1),
            "roc_auc": clean(self.roc_auc),
            "subset": list(self.subset) if self.subset is not None else None,
            "ties": None
            if self.ties is None
            else {
                "num_groups": self.ties.num_groups,
                "num_rows": self.ties.num_rows,
                "map_percent_min": clean(self.ties.min_percent),
                "map_percent_max": clean(self.ties.max_percent),
                "order": "official: pandas sort_values(score, descending, quicksort) of the "
                "rows in ground-truth order, as get_ava_active_speaker_performance.py",
            },
            "per_video": {
                video_id: {
                    "map_percent": clean(ap),
                    "num_rows": self.per_video_num_rows[video_id],
                    "num_positives": self.per_video_num_positives[video_id],
                }
                for video_id, ap in self.per_video.items()
            },
        }


#: How rows with equal scores are ordered before the precision/recall sweep.
TieOrder = Literal["official", "stable", "positives_first", "positives_last"]


def rank_order(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    tie_order: TieOrder = "official",
) -> np.ndarray:
    """The order in which rows are swept, highest score first.

    Args:
        scores: ``(N,)`` scores, in the order the official script has the rows after its
            merge (ground-truth order).
        labels: ``(N,)`` 0/1, needed for ``positives_first`` / ``positives_last``.
        tie_order: ``official`` -- exactly the order of the official
            ``get_ava_active_speaker_performance.py``: its ``merge(...).sort_values(by=
            ["score"], ascending=False)``, pandas' default (unstable) quicksort, so the order
            of tied rows is the one pandas produces for this input (reproduced by running
            the same pandas sort); ``stable`` -- ties keep input order; ``positives_first`` /
            ``positives_last`` -- within each group of tied scores, positives before / after
            negatives (the best / worst AP any tie order can give).

    Returns:
        ``(N,)`` int64 row indices.

    Raises:
        ValueError: an unknown ``tie_order``, or no ``labels`` for the label-aware orders.
    """
    scores_arr = np.asarray(scores, dtype=np.float64)
    if tie_order == "official":
        frame = pd.DataFrame({"score": scores_arr})
        return frame.sort_values(by=["score"], ascending=False).index.to_numpy(dtype=np.int64)
    if tie_order == "stable":
        return np.argsort(-scores_arr, kind="stable").astype(np.int64)
    if tie_order in ("positives_first", "positives_last"):
        if labels is None:
            raise ValueError(f"tie_order {tie_order!r} needs the labels")
        hits = np.asarray(labels).astype(bool)
        second = ~hits if tie_order == "positives_first" else hits
        # lexsort: the last key is the primary one
        return np.lexsort((second, -scores_arr)).astype(np.int64)
    raise ValueError(
        "tie_order must be one of official, stable, positives_first, positives_last, but got "
        f"{tie_order!r}"
    )


def average_precision_voc(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    tie_order: TieOrder = "stable",
) -> float:
    """VOC-style interpolated average precision of a ranking, as a fraction in [0, 1].

    Rows are ranked by ``scores`` (highest first; ties as ``tie_order``, see
    :func:`rank_order`). With ``tp_k`` the positives among the first ``k`` rows and ``P``
    all positives, precision ``p_k = tp_k / k`` and recall ``r_k = tp_k / P``; with sentinels
    ``(r, p) = (0, 0)`` before the first row and ``(1, 0)`` after the last, precision is
    replaced by its running maximum from the right (the monotone envelope) and
    ``AP = sum_k (r_k - r_{k-1}) * p_k`` over the rows where recall changes. This is
    ``compute_average_precision`` of the official AVA evaluator
    (``get_ava_active_speaker_performance.py``, activitynet/ActivityNet), following the
    VOCdevkit definition. It is *not* scikit-learn's ``average_precision_score`` (no
    envelope).

    Args:
        scores: ``(N,)`` real scores (any scale: only their order matters).
        labels: ``(N,)`` 1 for a positive, 0 for a negative (bool accepted).
        tie_order: see :func:`rank_order` (``official`` reproduces the official script's
            result when ``scores`` are in its merge order, i.e. ground-truth order).

    Returns:
        The AP as a fraction (multiply by 100 for AVA's percent); NaN when there is no
        positive (recall is undefined, as in the official script).

    Raises:
        ValueError: different lengths, not 1-D, scores not finite, labels not 0/1.
    """
    scores_arr = np.asarray(scores, dtype=np.float64)
    labels_arr = np.asarray(labels)
    if scores_arr.ndim != 1 or labels_arr.shape != scores_arr.shape:
        raise ValueError(
            f"scores and labels must be 1-D of the same length, but got shapes "
            f"{scores_arr.shape} and {labels_arr.shape}"
        )
    if not np.isfinite(scores_arr).all():
        raise ValueError(
            f"scores must be finite, but {int((~np.isfinite(scores_arr)).sum())} are not"
        )
    if labels_arr.dtype != bool and not np.isin(labels_arr, (0, 1)).all():
        raise ValueError(
            f"labels must be 0 or 1, but got values {np.unique(labels_arr)[:10].tolist()}"
        )
    hits = labels_arr.astype(bool)
    num_positives = int(hits.sum())
    if num_positives == 0:
        return math.nan
    order = rank_order(scores_arr, hits, tie_order)
    true_positives = np.cumsum(hits[order])
    precision = true_positives / np.arange(1, len(order) + 1)
    recall = true_positives / num_positives
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))


@dataclass(frozen=True)
class TieReport:
    """Tied scores in a ranking and how much they can move the AP.

    Attributes:
        num_groups: groups of two or more rows with the same score.
        num_rows: rows in those groups.
        min_percent, max_percent: AP (percent) with the positives of every tied group ranked
            last / first: the range any order of the ties can give.
    """

    num_groups: int
    num_rows: int
    min_percent: float
    max_percent: float


def tie_report(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> TieReport:
    """Count the tied scores and the AP range over their orders (:class:`TieReport`)."""
    scores_arr = np.asarray(scores, dtype=np.float64)
    _, counts = np.unique(scores_arr, return_counts=True)
    tied = counts[counts > 1]
    return TieReport(
        num_groups=int(len(tied)),
        num_rows=int(tied.sum()),
        min_percent=100.0 * average_precision_voc(scores_arr, labels, "positives_last"),
        max_percent=100.0 * average_precision_voc(scores_arr, labels, "positives_first"),
    )


def _format_rows(rows: pd.DataFrame, columns: Sequence[str], row_column: str | None = None) -> str:
    """``row 3 (video_id='a', frame_timestamp=1.5, ...); ...`` for the first few rows."""
    parts = []
    for _, row in rows.head(_MAX_SHOWN).iterrows():
        fields = ", ".join(
            f"{c}={row[c]!r}" if isinstance(row[c], str) else f"{c}={row[c]}" for c in columns
        )
        parts.append(f"row {int(row[row_column])} ({fields})" if row_column else f"({fields})")
    shown = "; ".join(parts)
    if len(rows) > _MAX_SHOWN:
        shown += f"; ... and {len(rows) - _MAX_SHOWN} more"
    return shown


def _fail(
    problem: str,
    what: str,
    rows: pd.DataFrame,
    columns: Sequence[str],
    hint: str = "",
    row_column: str | None = "row",
) -> NoReturn:
    message = f"{len(rows)} {what}: {_format_rows(rows, columns, row_column)}"
    if hint:
        message += f". {hint}"
    raise AvaValidationError(problem, message, rows.reset_index(drop=True))


def _load(table: pd.DataFrame | str | os.PathLike[str], kind: CsvKind) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return coerce_ava_frame(table, kind)
    return read_ava_csv(table, kind)


def _check_labels(gt: pd.DataFrame, pred: pd.DataFrame) -> None:
    valid = {label.value for label in AvaLabel}
    bad = gt[~gt["label"].isin(valid)]
    if len(bad):
        _fail(
            "invalid_groundtruth_label",
            f"ground-truth rows have a label other than {sorted(valid)}",
            bad,
            ("video_id", "frame_timestamp", "entity_id", "label"),
        )
    bad = pred[pred["label"] != AvaLabel.SPEAKING_AUDIBLE.value]
    if len(bad):
        _fail(
            "invalid_prediction_label",
            "prediction rows have a label other than SPEAKING_AUDIBLE",
            bad,
            ("video_id", "frame_timestamp", "entity_id", "label"),
            "Every prediction row must say SPEAKING_AUDIBLE: its score is the confidence "
            "of that label (the official evaluator requires the same)",
        )


def _check_scores(pred: pd.DataFrame, score_range: tuple[float, float] | None) -> None:
    scores = pred["score"].to_numpy()
    bad = pred[~np.isfinite(scores)]
    if len(bad):
        _fail(
            "invalid_score",
            "prediction rows have a missing, NaN or infinite score",
            bad,
            ("video_id", "frame_timestamp", "entity_id", "score"),
        )
    if score_range is not None:
        low, high = score_range
        bad = pred[(scores < low) | (scores > high)]
        if len(bad):
            _fail(
                "score_out_of_range",
                f"prediction scores are outside [{low:g}, {high:g}]",
                bad,
                ("video_id", "frame_timestamp", "entity_id", "score"),
                f"Scores must be probabilities in [{low:g}, {high:g}] (apply a sigmoid or "
                "softmax to logits), or disable the range check (score_range=None, "
                "--allow-any-score) to rank raw scores as the official script does",
            )


def _check_duplicates(table: pd.DataFrame, name: str) -> None:
    what = {"groundtruth": "ground-truth", "predictions": "prediction"}[name]
    dup = table[table.duplicated(list(KEY_COLUMNS), keep=False)]
    if len(dup):
        _fail(
            f"duplicate_{name}",
            f"{what} rows share a (frame_timestamp, entity_id) key with another row",
            dup.sort_values([*KEY_COLUMNS, "row"]),
            ("video_id", "frame_timestamp", "entity_id"),
            "Each face must appear once per frame_timestamp",
        )


def _check_rounding(missing: pd.DataFrame, extra: pd.DataFrame) -> None:
    """Report unmatched GT/prediction pairs of one entity_id closer than the resolution."""
    if not len(missing) or not len(extra):
        return
    left = missing[["row", "video_id", "entity_id", "frame_timestamp"]].sort_values(
        "frame_timestamp"
    )
    right = extra[["row", "entity_id", "frame_timestamp"]].rename(
        columns={"row": "prediction_row", "frame_timestamp": "prediction_frame_timestamp"}
    )
    right = right.sort_values("prediction_frame_timestamp")
    near = pd.merge_asof(
        left,
        right,
        left_on="frame_timestamp",
        right_on="prediction_frame_timestamp",
        by="entity_id",
        direction="nearest",
    )
    gap = (near["frame_timestamp"] - near["prediction_frame_timestamp"]).abs()
    near = near[gap < TIMESTAMP_RESOLUTION_S].sort_values("row")
    near = near.astype({"prediction_row": np.int64})
    if len(near):
        near = near.rename(columns={"frame_timestamp": "groundtruth_frame_timestamp"})
        _fail(
            "timestamp_rounding",
            "ground-truth rows match a prediction only after rounding frame_timestamp",
            near,
            (
                "entity_id",
                "groundtruth_frame_timestamp",
                "prediction_frame_timestamp",
                "prediction_row",
            ),
            "Write frame_timestamp exactly as in the ground truth (the official script "
            "would silently drop these rows)",
        )


def join_ava_predictions(
    groundtruth: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    box_tolerance: float = 1e-6,
    score_range: tuple[float, float] | None = (0.0, 1.0),
) -> pd.DataFrame:
    """Validate and join ground truth and predictions on ``(frame_timestamp, entity_id)``.

    Args:
        groundtruth: table with :data:`~socialav.io.ava_csv.GROUNDTRUTH_COLUMNS`.
        predictions: table with :data:`~socialav.io.ava_csv.PREDICTION_COLUMNS`.
        box_tolerance: largest allowed absolute difference of a normalised box coordinate
            between the two tables (the official script uses 1e-9).
        score_range: inclusive range scores must lie in, or ``None`` to accept any finite
            real score.

    Returns:
        One row per ground-truth row, in ground-truth order: ``video_id``,
        ``frame_timestamp`` (s), ``entity_id``, ``label`` (ground truth), ``score``,
        ``is_positive`` (bool: label is ``SPEAKING_AUDIBLE``), ``groundtruth_row`` and
        ``prediction_row`` (0-based data rows of the inputs).

    Raises:
        AvaCsvError: missing columns or unparsable values.
        AvaValidationError: any of the checks listed in the module docstring; the message
            names the first offending rows (0-based data rows, header not counted) and
            their count, ``.rows`` holds all of them.
    """
    gt = coerce_ava_frame(groundtruth, "groundtruth").assign(row=np.arange(len(groundtruth)))
    pred = coerce_ava_frame(predictions, "predictions").assign(row=np.arange(len(predictions)))
    return _join(gt, pred, box_tolerance=box_tolerance, score_range=score_range)


def _join(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    box_tolerance: float,
    score_range: tuple[float, float] | None,
) -> pd.DataFrame:
    if not len(gt):
        raise AvaValidationError("no_rows", "the ground truth has no rows to evaluate")
    _check_labels(gt, pred)
    _check_scores(pred, score_range)
    _check_duplicates(gt, "groundtruth")
    _check_duplicates(pred, "predictions")

    merged = gt.merge(
        pred,
        on=list(KEY_COLUMNS),
        how="outer",
        suffixes=("_gt", "_pred"),
        indicator=True,
        sort=False,
    )
    missing = merged[merged["_merge"] == "left_only"].rename(
        columns={"row_gt": "row", "video_id_gt": "video_id"}
    )
    extra = merged[merged["_merge"] == "right_only"].rename(
        columns={"row_pred": "row", "video_id_pred": "video_id"}
    )
    _check_rounding(missing, extra)
    columns = ("video_id", "frame_timestamp", "entity_id")
    if len(missing):
        _fail(
            "missing_predictions",
            "ground-truth rows have no prediction with the same (frame_timestamp, entity_id)",
            missing.sort_values("row"),
            columns,
            "Predict every ground-truth face (the official script requires the same keys)",
        )
    if len(extra):
        _fail(
            "extra_predictions",
            "prediction rows have no ground-truth row with the same (frame_timestamp, entity_id)",
            extra.sort_values("row"),
            columns,
        )

    both = merged.sort_values("row_gt").reset_index(drop=True)
    wrong_video = both[both["video_id_gt"] != both["video_id_pred"]]
    if len(wrong_video):
        _fail(
            "video_id_mismatch",
            "prediction rows have a different video_id than the ground truth for the same key",
            wrong_video,
            ("frame_timestamp", "entity_id", "video_id_gt", "video_id_pred"),
            row_column="row_pred",
        )
    box_gt = both[[f"{c}_gt" for c in BOX_COLUMNS]].to_numpy()
    box_pred = both[[f"{c}_pred" for c in BOX_COLUMNS]].to_numpy()
    box_diff = np.abs(box_gt - box_pred).max(axis=1)
    wrong_box = both[box_diff > box_tolerance].assign(
        box_gt=[tuple(b.tolist()) for b in box_gt[box_diff > box_tolerance]],
        box_pred=[tuple(b.tolist()) for b in box_pred[box_diff > box_tolerance]],
    )
    if len(wrong_box):
        _fail(
            "box_mismatch",
            f"prediction rows have a box differing from the ground truth by more than "
            f"{box_tolerance:g}",
            wrong_box,
            ("frame_timestamp", "entity_id", "box_gt", "box_pred"),
            "Copy entity_box_* from the ground truth",
            row_column="row_pred",
        )
    return pd.DataFrame(
        {
            "video_id": both["video_id_gt"].to_numpy(dtype=object),
            "frame_timestamp": both["frame_timestamp"].to_numpy(dtype=np.float64),
            "entity_id": both["entity_id"].to_numpy(dtype=object),
            "label": both["label_gt"].to_numpy(dtype=object),
            "score": both["score"].to_numpy(dtype=np.float64),
            "is_positive": (both["label_gt"] == AvaLabel.SPEAKING_AUDIBLE.value).to_numpy(),
            "groundtruth_row": both["row_gt"].to_numpy(dtype=np.int64),
            "prediction_row": both["row_pred"].to_numpy(dtype=np.int64),
        }
    )


def _filter_subset(
    gt: pd.DataFrame, pred: pd.DataFrame, subset: Collection[str]
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    if isinstance(subset, str):
        raise TypeError("subset must be a collection of video_id strings, not one string")
    wanted = tuple(dict.fromkeys(str(v) for v in subset))
    if not wanted:
        raise AvaValidationError("subset_not_found", "the video_id subset is empty")
    known = set(gt["video_id"])
    absent = [v for v in wanted if v not in known]
    if absent:
        shown = ", ".join(repr(v) for v in absent[:_MAX_SHOWN])
        more = f" and {len(absent) - _MAX_SHOWN} more" if len(absent) > _MAX_SHOWN else ""
        raise AvaValidationError(
            "subset_not_found",
            f"{len(absent)} subset video_id(s) are not in the ground truth: {shown}{more}",
            pd.DataFrame({"video_id": absent}),
        )
    keep = set(wanted)
    return gt[gt["video_id"].isin(keep)], pred[pred["video_id"].isin(keep)], wanted


def _threshold_metrics(
    scores: np.ndarray, positives: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    predicted = scores >= threshold
    accuracy = float(np.mean(predicted == positives))
    f1 = float(f1_score(positives, predicted, zero_division=0))
    if positives.all() or not positives.any():
        roc_auc = math.nan
    else:
        roc_auc = float(roc_auc_score(positives, scores))
    return accuracy, f1, roc_auc


def evaluate_ava(
    groundtruth: pd.DataFrame | str | os.PathLike[str],
    predictions: pd.DataFrame | str | os.PathLike[str],
    subset: Collection[str] | None = None,
    threshold: float = 0.5,
    *,
    box_tolerance: float = 1e-6,
    score_range: tuple[float, float] | None = (0.0, 1.0),
) -> AvaEvaluation:
    """AVA-ActiveSpeaker mAP (official semantics) plus threshold metrics, strictly checked.

    Args:
        groundtruth: ground-truth table or CSV path (AVA or UniTalk layout, header
            optional; see :func:`socialav.io.ava_csv.read_ava_csv`).
        predictions: prediction table or CSV path (``score`` = confidence of
            ``SPEAKING_AUDIBLE``).
        subset: evaluate only these ``video_id`` values (e.g. from UniTalk's
            ``sub_categories/test_<category>.csv`` via
            :func:`~socialav.io.ava_csv.read_video_id_list`); rows of other videos are
            ignored in both tables. ``None``: every row.
        threshold: score at or above which a row counts as predicted ``SPEAKING_AUDIBLE``
            for ``accuracy`` and ``f1``.
        box_tolerance: see :func:`join_ava_predictions`.
        score_range: see :func:`join_ava_predictions` (``None`` accepts logits).

    Returns:
        :class:`AvaEvaluation` with ``map_percent`` = ``100 *``
        :func:`average_precision_voc` over all joined rows, and one AP per ``video_id``.

    Raises:
        FileNotFoundError: a path does not exist.
        AvaCsvError: a file or table lacks columns or has unparsable values.
        AvaValidationError: see the module docstring; also ``subset_not_found`` (a subset
            id absent from the ground truth) and ``no_positives`` (no ``SPEAKING_AUDIBLE``
            row, so AP is undefined).
    """
    gt = _load(groundtruth, "groundtruth")
    pred = _load(predictions, "predictions")
    gt = gt.assign(row=np.arange(len(gt)))
    pred = pred.assign(row=np.arange(len(pred)))
    chosen: tuple[str, ...] | None = None
    if subset is not None:
        gt, pred, chosen = _filter_subset(gt, pred, subset)
    joined = _join(gt, pred, box_tolerance=box_tolerance, score_range=score_range)

    scores = joined["score"].to_numpy()
    positives = joined["is_positive"].to_numpy()
    num_positives = int(positives.sum())
    if num_positives == 0:
        raise AvaValidationError(
            "no_positives",
            f"the ground truth has no SPEAKING_AUDIBLE row among {len(joined)} rows, so "
            "average precision is undefined",
        )
    map_percent = 100.0 * average_precision_voc(scores, positives, "official")
    ties = tie_report(scores, positives)
    accuracy, f1, roc_auc = _threshold_metrics(scores, positives, threshold)

    per_video: dict[str, float] = {}
    per_video_rows: dict[str, int] = {}
    per_video_positives: dict[str, int] = {}
    for video_id, rows in joined.groupby("video_id", sort=True):
        video_positives = rows["is_positive"].to_numpy()
        per_video[str(video_id)] = 100.0 * average_precision_voc(
            rows["score"].to_numpy(), video_positives, "official"
        )
        per_video_rows[str(video_id)] = len(rows)
        per_video_positives[str(video_id)] = int(video_positives.sum())

    logger.info(
        "AVA mAP %.4f%% over %d rows (%d positives)", map_percent, len(joined), num_positives
    )
    return AvaEvaluation(
        map_percent=map_percent,
        num_rows=len(joined),
        num_positives=num_positives,
        threshold=float(threshold),
        accuracy=accuracy,
        f1=f1,
        roc_auc=roc_auc,
        per_video=per_video,
        per_video_num_rows=per_video_rows,
        per_video_num_positives=per_video_positives,
        subset=chosen,
        ties=ties,
    )


def write_evaluation_json(evaluation: AvaEvaluation, path: str | os.PathLike[str]) -> Path:
    """Write :meth:`AvaEvaluation.to_dict` as indented JSON, atomically.

    Raises:
        IsADirectoryError: ``path`` is a directory.
    """
    import json

    from socialav.io.atomic import atomic_write

    text = json.dumps(evaluation.to_dict(), indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)
