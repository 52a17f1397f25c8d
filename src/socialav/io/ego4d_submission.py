"""Ego4D social challenge submission files: Talking-to-Me and Looking-at-Me.

CSV layouts (headerless, one row per scored face frame, as the baselines' test
post-processors write ``pred.csv`` with ``to_csv(index=False, header=None)``):

- TTM: ``seg_id,frame_id,1,score`` -- ``test_PostProcessor`` of EGO4D/social-interactions
  (branch ``ttm``, ``common/utils.py``) writes ``[seg_id, frame_id, 1, score]`` for every
  frame of a test segment, the score being the segment's softmax probability;
- LAM: ``video_id,unique_id,track_id,1,score`` -- the fields of the Looking-at-Me EvalAI
  results named by the maintainers (EGO4D/social-interactions issue #7: ``video_id``,
  ``unique_id`` "unique id for each frame", ``track_id``, ``label``, ``score``).

EvalAI JSON (``{"version": "1.0", "challenge": ..., "results": [...]}``) is written too:
``ego4d_talking_to_me`` with ``video_id``, ``frame_id``, ``label``, ``score`` per result
(as ``QuAVF.py`` / ``common/engine.py`` of Ego4D-QuAVF-TTM-CVPR23 write it, the segment id in
``video_id``) and ``ego4d_looking_at_me`` with the fields of issue #7.

The baselines' validation result files (``PostProcessor`` of both branches: ``result/pred.csv``
and ``result/gt.csv``) are written too: TTM per segment ``clip_uid,segment_index,start_frame,
end_frame,1,score`` with ground truth ``...,label``; LAM with boxes ``video_id,frame_id,x1,y1,
x2,y2,track_id,1,score`` with ground truth ``...,track_id,label``; and the ground truth of the
challenge layouts (:func:`write_social_groundtruth`), so ``socialav evaluate --task ttm|lam``
reads every pair.

Scores are written as the shortest text that reads back to the same float64 (``repr``), so
:mod:`socialav.evaluation.ego4d` sees exactly the values written. All writers are atomic.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from socialav.io.atomic import atomic_write
from socialav.io.ego4d_csv import (
    LAM_SUBMISSION_PREDICTION_COLUMNS,
    TTM_FRAME_PREDICTION_COLUMNS,
    read_social_csv,
)

__all__ = [
    "SubmissionError",
    "read_lam_submission",
    "read_ttm_submission",
    "ttm_frame_rows",
    "write_lam_box_predictions",
    "write_lam_submission",
    "write_lam_submission_json",
    "write_social_groundtruth",
    "write_ttm_segment_predictions",
    "write_ttm_submission",
    "write_ttm_submission_json",
]


class SubmissionError(ValueError):
    """Rows that cannot go into a submission (bad score, duplicate key, bad id)."""


def _score_text(score: float) -> str:
    value = float(score)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise SubmissionError(f"score must be a probability in [0, 1], but got {score!r}")
    return "0.0" if value == 0.0 else repr(value)


def _check_id(value: object, name: str) -> str:
    text = str(value)
    if not text or any(c in text for c in ',\n\r"') or text != text.strip():
        raise SubmissionError(
            f"{name} must be non-empty text without commas, quotes, newlines or surrounding "
            f"spaces, but got {text!r}"
        )
    return text


def ttm_frame_rows(
    segment_scores: Mapping[str, float], segment_frames: Mapping[str, Sequence[int]]
) -> list[tuple[str, int, float]]:
    """Expand per-segment scores to one ``(seg_id, frame_id, score)`` row per frame.

    As ``test_PostProcessor._merge_output`` (every listed frame of a segment gets the
    segment's score).

    Raises:
        SubmissionError: a segment without a score, or a score without frames.
    """
    missing = [s for s in segment_frames if s not in segment_scores]
    extra = [s for s in segment_scores if s not in segment_frames]
    if missing or extra:
        raise SubmissionError(
            f"segment_scores and segment_frames must name the same segments; without score: "
            f"{missing[:5]}, without frames: {extra[:5]}"
        )
    return [
        (seg, int(f), float(segment_scores[seg]))
        for seg, frames in segment_frames.items()
        for f in frames
    ]


def write_ttm_submission(
    rows: Iterable[tuple[str, int, float]], path: str | os.PathLike[str]
) -> int:
    """Write TTM rows ``seg_id,frame_id,1,score`` (no header), atomically.

    Args:
        rows: ``(seg_id, frame_id, score)``; scores in [0, 1].

    Returns:
        The number of rows written.

    Raises:
        SubmissionError: a bad id or score, or a repeated ``(seg_id, frame_id)``.
    """
    seen: set[tuple[str, int]] = set()
    lines = []
    for seg, frame, score in rows:
        key = (_check_id(seg, "seg_id"), int(frame))
        if key in seen:
            raise SubmissionError(f"duplicate TTM row for seg_id={key[0]!r} frame_id={key[1]}")
        seen.add(key)
        lines.append([key[0], str(key[1]), "1", _score_text(score)])
    with atomic_write(path, newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(lines)
    return len(lines)


def write_lam_submission(
    rows: Iterable[tuple[str, str, str, float]], path: str | os.PathLike[str]
) -> int:
    """Write LAM rows ``video_id,unique_id,track_id,1,score`` (no header), atomically.

    Args:
        rows: ``(video_id, unique_id, track_id, score)``; ``unique_id`` identifies the frame
            (e.g. the frame number as text).

    Raises:
        SubmissionError: a bad id or score, or a repeated ``(video_id, unique_id, track_id)``.
    """
    seen: set[tuple[str, str, str]] = set()
    lines = []
    for video_id, unique_id, track_id, score in rows:
        key = (
            _check_id(video_id, "video_id"),
            _check_id(unique_id, "unique_id"),
            _check_id(track_id, "track_id"),
        )
        if key in seen:
            raise SubmissionError(f"duplicate LAM row for {key}")
        seen.add(key)
        lines.append([*key, "1", _score_text(score)])
    with atomic_write(path, newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(lines)
    return len(lines)


def read_ttm_submission(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a TTM submission CSV: columns ``seg_id, frame_id, label, score``."""
    return read_social_csv(path, TTM_FRAME_PREDICTION_COLUMNS, "TTM submission")


def read_lam_submission(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a LAM submission CSV: columns ``video_id, unique_id, track_id, label, score``."""
    return read_social_csv(path, LAM_SUBMISSION_PREDICTION_COLUMNS, "LAM submission")


def _write_json(
    challenge: str, results: list[dict[str, object]], path: str | os.PathLike[str]
) -> Path:
    payload = {"version": "1.0", "challenge": challenge, "results": results}
    with atomic_write(path) as handle:
        json.dump(payload, handle, allow_nan=False)
        handle.write("\n")
    return Path(path)


def write_ttm_submission_json(
    rows: Iterable[tuple[str, int, float]], path: str | os.PathLike[str]
) -> Path:
    """EvalAI JSON for ``ego4d_talking_to_me``: ``{"video_id": seg_id, "frame_id", "label": 1,
    "score"}`` per row, as QuAVF writes it."""
    results: list[dict[str, object]] = []
    for seg, frame, score in rows:
        _score_text(score)
        results.append(
            {
                "video_id": _check_id(seg, "seg_id"),
                "frame_id": int(frame),
                "label": 1,
                "score": float(score),
            }
        )
    return _write_json("ego4d_talking_to_me", results, path)


def write_lam_submission_json(
    rows: Iterable[tuple[str, str, str, float]], path: str | os.PathLike[str]
) -> Path:
    """EvalAI JSON for ``ego4d_looking_at_me`` (fields of EGO4D/social-interactions issue #7)."""
    results: list[dict[str, object]] = []
    for video_id, unique_id, track_id, score in rows:
        _score_text(score)
        results.append(
            {
                "video_id": _check_id(video_id, "video_id"),
                "unique_id": _check_id(unique_id, "unique_id"),
                "track_id": _check_id(track_id, "track_id"),
                "label": 1,
                "score": float(score),
            }
        )
    return _write_json("ego4d_looking_at_me", results, path)


def _write_rows(lines: list[list[str]], path: str | os.PathLike[str]) -> int:
    with atomic_write(path, newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(lines)
    return len(lines)


def _unique(key: tuple, seen: set, what: str) -> None:
    if key in seen:
        raise SubmissionError(f"duplicate {what} row for {key}")
    seen.add(key)


def write_ttm_segment_predictions(
    rows: Iterable[tuple[str, int, int, int, float]], path: str | os.PathLike[str]
) -> int:
    """Write TTM rows ``clip_uid,segment_index,start_frame,end_frame,1,score`` (no header),
    atomically: the baseline's validation ``pred.csv`` (``PostProcessor``, branch ``ttm``).

    Raises:
        SubmissionError: a bad id or score, or a repeated ``(clip_uid, segment_index)``.
    """
    seen: set = set()
    lines = []
    for clip_uid, index, start, end, score in rows:
        key = (_check_id(clip_uid, "clip_uid"), int(index))
        _unique(key, seen, "TTM segment")
        lines.append([key[0], str(key[1]), str(int(start)), str(int(end)), "1", _score_text(score)])
    return _write_rows(lines, path)


def write_lam_box_predictions(
    rows: Iterable[tuple[str, int, float, float, float, float, str, float]],
    path: str | os.PathLike[str],
) -> int:
    """Write LAM rows ``video_id,frame_id,x1,y1,x2,y2,track_id,1,score`` (no header),
    atomically: the baseline's validation ``pred.csv`` (``PostProcessor``, branch ``lam``);
    boxes as the shortest text that reads back to the same float64.

    Raises:
        SubmissionError: a bad id, box or score, or a repeated ``(video_id, frame_id,
            track_id)``.
    """
    seen: set = set()
    lines = []
    for video_id, frame, x1, y1, x2, y2, track_id, score in rows:
        key = (_check_id(video_id, "video_id"), int(frame), _check_id(track_id, "track_id"))
        _unique(key, seen, "LAM")
        box = [float(v) for v in (x1, y1, x2, y2)]
        if not all(math.isfinite(v) for v in box):
            raise SubmissionError(f"box of {key} must be finite, but got {box}")
        lines.append([key[0], str(key[1]), *map(repr, box), key[2], "1", _score_text(score)])
    return _write_rows(lines, path)


def write_social_groundtruth(
    rows: Iterable[Sequence[object]], path: str | os.PathLike[str], num_keys: int
) -> int:
    """Write ground-truth rows (no header), atomically: each row is its fields, the last the
    0/1 label; text fields checked as ids, floats written as the shortest exact text.

    The layouts (:mod:`socialav.io.ego4d_csv`): TTM segment ``clip_uid, segment_index,
    start_frame, end_frame, label``; TTM frame ``seg_id, frame_id, label``; LAM boxes
    ``video_id, frame_id, x1, y1, x2, y2, track_id, label``; LAM submission ``video_id,
    unique_id, track_id, label``.

    Args:
        num_keys: how many leading fields form the row key (checked for repeats); the LAM
            boxes layout's key ``(video_id, frame_id, track_id)`` is not leading, so give 0
            there and rely on the prediction writer's check.

    Raises:
        SubmissionError: a bad id, a label other than 0/1, a repeated key.
    """
    seen: set = set()
    lines = []
    for row in rows:
        *fields, label = row
        if int(label) not in (0, 1) or int(label) != label:
            raise SubmissionError(f"ground-truth label must be 0 or 1, but got {label!r} in {row}")
        out = []
        for value in fields:
            if isinstance(value, str):
                out.append(_check_id(value, "id"))
            elif isinstance(value, float):
                out.append(repr(value))
            else:
                out.append(str(int(value)))  # type: ignore[call-overload]
        if num_keys:
            _unique(tuple(out[:num_keys]), seen, "ground-truth")
        lines.append([*out, str(int(label))])
    return _write_rows(lines, path)
