"""The CSV layouts of the Ego4D Talking-to-Me and Looking-at-Me benchmarks: column names, the
reader that checks and types them, and layout detection. Read by the metrics
(:mod:`socialav.evaluation.ego4d`) and the submission writers (:mod:`socialav.io.ego4d_submission`).

Layouts (headerless CSV, as the baselines write them; a header line is accepted too):

- TTM per segment (the baseline's validation files): ground truth ``clip_uid, segment_index,
  start_frame, end_frame, label``; predictions ``clip_uid, segment_index, start_frame,
  end_frame, 1, score``.
- TTM per frame (the challenge layout): ground truth ``seg_id, frame_id, label``; predictions
  ``seg_id, frame_id, 1, score``.
- LAM: ground truth ``video_id, frame_id, x1, y1, x2, y2, track_id, label``; predictions the
  same with ``1, score`` in place of ``label``; or the challenge layout ``video_id, unique_id,
  track_id, label`` / ``video_id, unique_id, track_id, 1, score``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from socialav.io.text import read_text

__all__ = [
    "LAM_GROUNDTRUTH_COLUMNS",
    "LAM_PREDICTION_COLUMNS",
    "LAM_SUBMISSION_GROUNDTRUTH_COLUMNS",
    "LAM_SUBMISSION_PREDICTION_COLUMNS",
    "LAYOUTS",
    "TTM_FRAME_GROUNDTRUTH_COLUMNS",
    "TTM_FRAME_PREDICTION_COLUMNS",
    "TTM_SEGMENT_GROUNDTRUTH_COLUMNS",
    "TTM_SEGMENT_PREDICTION_COLUMNS",
    "Ego4dMetricError",
    "detect_layout",
    "read_social_csv",
]

TTM_SEGMENT_GROUNDTRUTH_COLUMNS = ("clip_uid", "segment_index", "start_frame", "end_frame", "label")
TTM_SEGMENT_PREDICTION_COLUMNS = (
    "clip_uid",
    "segment_index",
    "start_frame",
    "end_frame",
    "label",
    "score",
)
TTM_FRAME_GROUNDTRUTH_COLUMNS = ("seg_id", "frame_id", "label")
TTM_FRAME_PREDICTION_COLUMNS = ("seg_id", "frame_id", "label", "score")
LAM_GROUNDTRUTH_COLUMNS = ("video_id", "frame_id", "x1", "y1", "x2", "y2", "track_id", "label")
LAM_PREDICTION_COLUMNS = (*LAM_GROUNDTRUTH_COLUMNS, "score")
LAM_SUBMISSION_GROUNDTRUTH_COLUMNS = ("video_id", "unique_id", "track_id", "label")
LAM_SUBMISSION_PREDICTION_COLUMNS = ("video_id", "unique_id", "track_id", "label", "score")


# task -> layout name -> (ground-truth columns, prediction columns, key columns)
LAYOUTS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "ttm": {
        "segment": (
            TTM_SEGMENT_GROUNDTRUTH_COLUMNS,
            TTM_SEGMENT_PREDICTION_COLUMNS,
            ("clip_uid", "segment_index"),
        ),
        "frame": (
            TTM_FRAME_GROUNDTRUTH_COLUMNS,
            TTM_FRAME_PREDICTION_COLUMNS,
            ("seg_id", "frame_id"),
        ),
    },
    "lam": {
        "boxes": (
            LAM_GROUNDTRUTH_COLUMNS,
            LAM_PREDICTION_COLUMNS,
            ("video_id", "frame_id", "track_id"),
        ),
        "submission": (
            LAM_SUBMISSION_GROUNDTRUTH_COLUMNS,
            LAM_SUBMISSION_PREDICTION_COLUMNS,
            ("video_id", "unique_id", "track_id"),
        ),
    },
}


_TEXT_COLUMNS = {"clip_uid", "seg_id", "video_id", "track_id", "unique_id"}


_INT_COLUMNS = {"segment_index", "start_frame", "end_frame", "frame_id", "label"}


_FLOAT_COLUMNS = {"x1", "y1", "x2", "y2", "score"}


MAX_SHOWN_ROWS = 5


class Ego4dMetricError(ValueError):
    """Ground truth and predictions cannot be evaluated as they are.

    Attributes:
        problem: ``"layout"``, ``"parse"``, ``"duplicate_groundtruth"``,
            ``"duplicate_predictions"``, ``"missing_predictions"``, ``"extra_predictions"``,
            ``"invalid_label"``, ``"invalid_prediction_label"``, ``"invalid_score"``,
            ``"score_out_of_range"``, ``"box_mismatch"``, ``"no_rows"`` or
            ``"single_class"``.
    """

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _has_header(first_line: str, names: Iterable[str]) -> bool:
    fields = [f.strip() for f in first_line.split(",")]
    return any(f in set(names) for f in fields)


def read_social_csv(
    source: str | os.PathLike[str] | pd.DataFrame,
    columns: Sequence[str],
    name: str,
) -> pd.DataFrame:
    """Read one of the layouts above (header optional) into typed columns.

    Raises:
        FileNotFoundError: missing file.
        Ego4dMetricError: ``layout`` (wrong number of columns) or ``parse`` (non-numeric
            values where numbers are expected), naming the file, row and column.
    """
    if isinstance(source, pd.DataFrame):
        table = source.copy()
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise Ego4dMetricError(
                "layout", f"{name}: missing columns {missing} (found {list(table.columns)})"
            )
        table = table[list(columns)]
        where = name
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{name} file not found: {path}")
        text = read_text(path, f"{name} CSV", error=lambda m: Ego4dMetricError("parse", m))
        where = f"{name} {path}"
        first = text.split("\n", 1)[0]
        header = _has_header(first, columns)
        table = pd.read_csv(
            io.StringIO(text),
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
        if header:
            missing = [c for c in columns if c not in table.columns]
            if missing:
                raise Ego4dMetricError(
                    "layout", f"{where}: header lacks {missing} (found {list(table.columns)})"
                )
            table = table[list(columns)]
        elif table.shape[1] != len(columns):
            raise Ego4dMetricError(
                "layout",
                f"{where}: expected {len(columns)} columns ({', '.join(columns)}), but found "
                f"{table.shape[1]}",
            )
        else:
            table.columns = list(columns)
    out = {}
    for col in columns:
        values = table[col]
        if col in _TEXT_COLUMNS:
            out[col] = values.astype(str).str.strip()
            continue
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna() & ~(values.astype(str).str.strip().str.lower() == "nan")
        if col != "score" and parsed.isna().any():
            bad = parsed.isna()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())[:MAX_SHOWN_ROWS]
            raise Ego4dMetricError(
                "parse",
                f"{where}: column {col!r} must be numeric, but rows {rows.tolist()} hold "
                f"{[values.iloc[r] for r in rows]}",
            )
        if col in _INT_COLUMNS:
            if (parsed != np.round(parsed)).any():
                r = int(np.flatnonzero((parsed != np.round(parsed)).to_numpy())[0])
                raise Ego4dMetricError(
                    "parse",
                    f"{where}: column {col!r} must hold integers, row {r} holds {values.iloc[r]!r}",
                )
            out[col] = parsed.astype(np.int64)
        else:
            out[col] = parsed.astype(np.float64)
    return pd.DataFrame(out)


def detect_layout(task: str, predictions: Any) -> str:
    layouts = LAYOUTS[task]
    if isinstance(predictions, pd.DataFrame):
        for layout, (_, pred_cols, _) in layouts.items():
            if all(c in predictions.columns for c in pred_cols):
                return layout
        raise Ego4dMetricError(
            "layout",
            f"predictions table columns {list(predictions.columns)} match no "
            f"{task} layout: {[p for _, p, _ in layouts.values()]}",
        )
    path = Path(predictions)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    first = read_text(path, "predictions CSV", error=lambda m: Ego4dMetricError("parse", m)).split(
        "\n", 1
    )[0]
    fields = [f.strip() for f in first.split(",")]
    for layout, (_, pred_cols, _) in layouts.items():
        if _has_header(first, pred_cols):
            if all(c in fields for c in pred_cols) and len(fields) == len(pred_cols):
                return layout
        elif len(fields) == len(pred_cols):
            return layout
    expected = "; ".join(
        f"{layout}: {len(p)} columns ({', '.join(p)})" for layout, (_, p, _) in layouts.items()
    )
    raise Ego4dMetricError(
        "layout",
        f"predictions {path}: {len(fields)} columns on the first line match no {task} "
        f"layout; expected {expected}",
    )
