"""Typed reader and writer for AVA-ActiveSpeaker and UniTalk CSV files.

Layouts (one row per face per annotated frame):

- ground truth (``ava_activespeaker_val_v1.0.csv`` style, 8 columns)::

    video_id, frame_timestamp, entity_box_x1, entity_box_y1, entity_box_x2, entity_box_y2,
    label, entity_id

- predictions (the upload format of the official evaluator, 9 columns): the same plus
  ``score``, the confidence that the entity is ``SPEAKING_AUDIBLE``;
- UniTalk ``csv/{train,val}_orig.csv`` (10 columns): the ground-truth columns plus
  ``label_id`` (1 for ``SPEAKING_AUDIBLE``, else 0) and ``instance_id``.

``frame_timestamp`` is in seconds from the start of the video; the ``entity_box_*`` columns
are normalised to [0, 1] by the frame width (x) and height (y).

Header line: the official files and upload format have none, the UniTalk files and most
research code write one. :func:`read_ava_csv` accepts both: a first line that contains a
known column name is a header (columns are then found by name, in any order, and unknown
extra columns such as a pandas index column or ``ttm_score`` are dropped); otherwise the
columns are taken by position (8, 9 or 10 fields, as above).

Timestamps: the official ``get_ava_active_speaker_performance.py`` (activitynet/ActivityNet,
``Evaluation/``) joins rows on ``str(float(frame_timestamp)) + ":" + entity_id``. Every
float has exactly one shortest ``str``, so that key is the parsed float itself: the texts
``900.97`` and ``900.970`` are the same key, ``900.97`` and ``900.9700001`` are not. This
module therefore parses ``frame_timestamp`` to float64 (pandas' parser, as the official
script; Python's ``float`` for tables given as text) and keeps only the float (no text column is needed to reproduce the official join); the
evaluator (:mod:`socialav.evaluation.ava`) reports timestamps that would match only after
rounding instead of dropping those rows as the official script does.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from socialav.io.atomic import atomic_write
from socialav.io.text import read_text

logger = logging.getLogger(__name__)

__all__ = [
    "AvaCsvError",
    "AvaLabel",
    "BOX_COLUMNS",
    "GROUNDTRUTH_COLUMNS",
    "PREDICTION_COLUMNS",
    "UNITALK_EXTRA_COLUMNS",
    "CsvKind",
    "coerce_ava_frame",
    "read_ava_csv",
    "read_video_id_list",
    "write_ava_csv_frame",
]


class AvaLabel(str, enum.Enum):
    """The three labels of AVA-ActiveSpeaker (Roth et al., ICASSP 2020).

    Only ``SPEAKING_AUDIBLE`` is a positive for the official mAP; ``SPEAKING_NOT_AUDIBLE``
    counts as a negative.
    """

    SPEAKING_AUDIBLE = "SPEAKING_AUDIBLE"
    SPEAKING_NOT_AUDIBLE = "SPEAKING_NOT_AUDIBLE"
    NOT_SPEAKING = "NOT_SPEAKING"


#: Normalised box columns, in file order.
BOX_COLUMNS: tuple[str, ...] = ("entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2")
#: Columns of a ground-truth file, in the order of the headerless official format.
GROUNDTRUTH_COLUMNS: tuple[str, ...] = (
    "video_id",
    "frame_timestamp",
    *BOX_COLUMNS,
    "label",
    "entity_id",
)
#: Columns of a prediction file, in the order of the headerless official upload format.
PREDICTION_COLUMNS: tuple[str, ...] = (*GROUNDTRUTH_COLUMNS, "score")
#: Extra columns of UniTalk's ``*_orig.csv`` ground truth (after the 8 AVA columns).
UNITALK_EXTRA_COLUMNS: tuple[str, ...] = ("label_id", "instance_id")

CsvKind = Literal["groundtruth", "predictions"]

_FLOAT_COLUMNS: tuple[str, ...] = ("frame_timestamp", *BOX_COLUMNS)
_STRING_COLUMNS: tuple[str, ...] = ("video_id", "label", "entity_id")
_MAX_SHOWN = 5


class AvaCsvError(ValueError):
    """An AVA/UniTalk CSV (or DataFrame) does not have the expected columns or values."""


def _required_columns(kind: CsvKind) -> tuple[str, ...]:
    if kind == "groundtruth":
        return GROUNDTRUTH_COLUMNS
    if kind == "predictions":
        return PREDICTION_COLUMNS
    raise ValueError(f"kind must be 'groundtruth' or 'predictions', but got {kind!r}")


def _describe_rows(frame: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    bad = np.flatnonzero(mask)
    shown = ", ".join(f"row {int(i)}: {frame[column].iloc[i]!r}" for i in bad[:_MAX_SHOWN])
    more = f", ... ({len(bad)} rows in all)" if len(bad) > _MAX_SHOWN else ""
    return f"{shown}{more}"


def _parse_float_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """Parse one column to float64 with Python's correctly rounded ``float``.

    Empty cells become NaN (the caller decides whether NaN is allowed); text that is not a
    number raises :class:`AvaCsvError` naming the rows.
    """
    values = frame[column]
    if pd.api.types.is_bool_dtype(values.dtype):
        raise AvaCsvError(f"{source}: column {column!r} must be numeric, but it is boolean")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    objects = values.to_numpy(dtype=object)
    try:  # fast path: numpy calls Python's float() on every cell
        return objects.astype(np.float64)
    except (ValueError, TypeError):
        pass  # empty cells or text: parse one by one to name the bad rows
    parsed = np.full(len(values), np.nan, dtype=np.float64)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        text = str(value).strip()
        if not text:
            continue
        try:
            parsed[i] = float(text)
        except ValueError:
            bad[i] = True
    if bad.any():
        raise AvaCsvError(
            f"{source}: column {column!r} must hold numbers, but found "
            f"{_describe_rows(frame, bad, column)}"
        )
    return parsed


def _text_column(values: pd.Series) -> np.ndarray:
    """Cells as Python ``str`` (object array); missing cells (None, NaN, pd.NA) become "".

    Text is kept as written (no stripping of trailing spaces), like the official evaluator.
    """
    cells = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":
        return cells
    return np.array(["" if pd.isna(v) else str(v) for v in cells.tolist()], dtype=object)


def coerce_ava_frame(
    frame: pd.DataFrame, kind: CsvKind, *, source: str = "DataFrame"
) -> pd.DataFrame:
    """Check the columns of an AVA table and return a copy with canonical dtypes.

    Args:
        frame: a table with at least the columns of ``kind`` (any order, any dtypes that
            parse: numbers may be strings). Extra columns are dropped except UniTalk's
            ``label_id`` and ``instance_id``.
        kind: ``"groundtruth"`` (:data:`GROUNDTRUTH_COLUMNS`) or ``"predictions"``
            (:data:`PREDICTION_COLUMNS`).
        source: name used in error messages (a file path).

    Returns:
        A new DataFrame with a fresh ``RangeIndex`` and columns in canonical order:
        ``video_id``, ``label``, ``entity_id`` (and ``instance_id``) as Python ``str``
        (object dtype); ``frame_timestamp`` (s) and the normalised ``entity_box_*`` as
        float64; ``score`` as float64 (may be NaN: the evaluator reports it);
        ``label_id`` as int64.

    Raises:
        AvaCsvError: a required column is missing (the message lists expected and found
            columns), a value does not parse, or ``frame_timestamp``/a box is missing or not
            finite.
    """
    required = _required_columns(kind)
    if not isinstance(frame, pd.DataFrame):
        raise AvaCsvError(f"{source}: expected a pandas DataFrame, but got {type(frame).__name__}")
    found = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in found]
    if missing:
        raise AvaCsvError(
            f"{source}: missing column(s) {missing} for {kind}; expected columns "
            f"{list(required)}, found {found}"
        )
    keep = list(required) + [c for c in UNITALK_EXTRA_COLUMNS if c in found]
    dropped = [c for c in found if c not in keep]
    if dropped:
        logger.debug("%s: ignoring extra columns %s", source, dropped)
    frame = frame.reset_index(drop=True)
    out: dict[str, object] = {}
    for column in keep:
        if column in _STRING_COLUMNS or column == "instance_id":
            texts = _text_column(frame[column])
            empty = texts == ""
            if column != "instance_id" and empty.any():
                raise AvaCsvError(
                    f"{source}: column {column!r} must not be empty, but found "
                    f"{_describe_rows(frame, empty, column)}"
                )
            out[column] = texts
        elif column == "label_id":
            parsed = _parse_float_column(frame, column, source)
            bad = ~np.isin(parsed, (0.0, 1.0))
            if bad.any():
                raise AvaCsvError(
                    f"{source}: column 'label_id' must be 0 or 1, but found "
                    f"{_describe_rows(frame, bad, column)}"
                )
            out[column] = parsed.astype(np.int64)
        else:
            parsed = _parse_float_column(frame, column, source)
            if column != "score":
                bad = ~np.isfinite(parsed)
                if bad.any():
                    raise AvaCsvError(
                        f"{source}: column {column!r} must hold finite numbers, but found "
                        f"{_describe_rows(frame, bad, column)}"
                    )
            out[column] = parsed
    return pd.DataFrame(out, columns=keep)


def _split_first_line(text: str) -> list[str]:
    first = text.split("\n", 1)[0].rstrip("\r")
    return [field.strip() for field in next(csv.reader([first]), [])]


def _read_table(text: str, header: int | None, names: list[str] | None) -> pd.DataFrame:
    """Parse CSV text with the pandas C parser.

    Numeric columns are parsed as float64 by pandas (its default parser agrees with Python's
    correctly rounded ``float`` on AVA-style decimals; ``test_round_trip_is_exact`` checks
    awkward values). If a numeric cell is empty or not a number, everything is read as text
    instead so that :func:`coerce_ava_frame` can name the bad rows.
    """
    common = dict(header=header, names=names, keep_default_na=False, na_filter=False)
    numeric = {c: np.float64 for c in (*_FLOAT_COLUMNS, "score")}
    text_columns = {c: str for c in (*_STRING_COLUMNS, *UNITALK_EXTRA_COLUMNS)}
    try:
        return pd.read_csv(
            io.StringIO(text),
            dtype={**numeric, **text_columns},
            skipinitialspace=True,
            **common,
        )
    except ValueError as exc:
        if isinstance(exc, pd.errors.ParserError):
            raise
    return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True, **common)


def read_ava_csv(path: str | os.PathLike[str], kind: CsvKind) -> pd.DataFrame:
    """Read an AVA-ActiveSpeaker or UniTalk CSV, with or without a header line.

    Args:
        path: the CSV file.
        kind: ``"groundtruth"`` (8 columns, or UniTalk's 10 with ``label_id`` and
            ``instance_id``) or ``"predictions"`` (9 columns, the 8 plus ``score``).

    Returns:
        The table from :func:`coerce_ava_frame`: one row per line in file order, canonical
        column order and dtypes (``frame_timestamp`` and boxes float64, ids str).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        AvaCsvError: the file is empty, a headerless file has the wrong number of fields,
            a header lacks required columns (expected vs found are listed), or values do
            not parse.
    """
    path = Path(path)
    required = _required_columns(kind)
    text = read_text(path, f"{kind} CSV", error=AvaCsvError, encoding="utf-8-sig")
    if not text.strip():
        raise AvaCsvError(
            f"{path}: the file is empty; expected {kind} rows with columns {list(required)}"
        )
    first = _split_first_line(text)
    known = set(PREDICTION_COLUMNS) | set(UNITALK_EXTRA_COLUMNS)
    has_header = any(field in known for field in first)
    if has_header:
        try:
            frame = _read_table(text, header=0, names=None)
        except pd.errors.ParserError as exc:
            raise AvaCsvError(f"{path}: lines do not match the header line ({exc})") from exc
    else:
        layouts: dict[int, Sequence[str]] = {len(required): required}
        if kind == "groundtruth":
            layouts[len(required) + len(UNITALK_EXTRA_COLUMNS)] = (
                *required,
                *UNITALK_EXTRA_COLUMNS,
            )
        if len(first) not in layouts:
            raise AvaCsvError(
                f"{path}: a headerless {kind} file must have "
                f"{' or '.join(str(n) for n in sorted(layouts))} fields per line "
                f"(columns {list(required)}), but the first line has {len(first)}: {first}"
            )
        names = list(layouts[len(first)])
        try:
            frame = _read_table(text, header=None, names=names)
        except pd.errors.ParserError as exc:
            raise AvaCsvError(f"{path}: not a {len(names)}-column CSV ({exc})") from exc
        # A short line is padded with empty fields; coerce_ava_frame reports them.
    frame = coerce_ava_frame(frame, kind, source=str(path))
    logger.debug("read %d %s rows from %s (header: %s)", len(frame), kind, path, has_header)
    return frame


def _format_float(value: float) -> str:
    # Shortest text that parses back to the same float64 (Python's repr), never "-0".
    if value == 0.0:
        return "0.0"
    return repr(float(value))


def write_ava_csv_frame(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    kind: CsvKind,
    *,
    header: bool = True,
) -> int:
    """Write an AVA table atomically with deterministic formatting.

    Floats are written as the shortest text that parses back to the same float64 (Python
    ``repr``), so :func:`read_ava_csv` returns exactly the values written. Column order is
    canonical (:data:`GROUNDTRUTH_COLUMNS` or :data:`PREDICTION_COLUMNS`, then UniTalk's
    ``label_id``/``instance_id`` when present for ground truth); lines end with ``\\n``.
    Row order is the row order of ``frame``.

    Args:
        frame: the table (checked and converted by :func:`coerce_ava_frame`).
        path: destination (temporary file beside it, then :func:`os.replace`).
        kind: ``"groundtruth"`` or ``"predictions"``.
        header: write a header line (``False`` gives the official headerless format).

    Returns:
        The number of data rows written.

    Raises:
        AvaCsvError: missing columns or unparsable values.
    """
    table = coerce_ava_frame(frame, kind, source=str(path))
    if kind == "predictions":
        table = table[list(PREDICTION_COLUMNS)]
    columns = list(table.columns)
    formatters = []
    for column in columns:
        if column == "label_id":
            formatters.append(lambda v: str(int(v)))
        elif pd.api.types.is_float_dtype(table[column].dtype):
            formatters.append(lambda v: "" if np.isnan(v) else _format_float(v))
        else:
            formatters.append(str)
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header:
            writer.writerow(columns)
        for row in table.itertuples(index=False, name=None):
            writer.writerow([fmt(v) for fmt, v in zip(formatters, row, strict=True)])
    return len(table)


def read_video_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Read a list of video ids, one per line (UniTalk ``sub_categories/test_<category>.csv``).

    UniTalk's files hold one YouTube id per line with no header (e.g. ``EEey6Pt0rqI``).
    Blank lines are skipped, a first line ``video_id`` is taken as a header, and when a
    line has several comma-separated fields only the first is used.

    Returns:
        The ids in file order, without duplicates.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        AvaCsvError: the file holds no id.
    """
    path = Path(path)
    ids: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(
        csv.reader(
            read_text(path, "video_id list", error=AvaCsvError, encoding="utf-8-sig").splitlines()
        )
    ):
        if not row or not row[0].strip():
            continue
        video_id = row[0].strip()
        if number == 0 and video_id == "video_id":
            continue
        if video_id not in seen:
            seen.add(video_id)
            ids.append(video_id)
    if not ids:
        raise AvaCsvError(f"{path}: expected one video_id per line, but found none")
    return ids
