"""What the HTML report shows, computed from a ``socialav detect`` JSON record (no I/O).

The report's JavaScript gets one compact payload (:func:`report_payload`): per face track the
boxes on *keyframes* only (detection frames, plus any frame where linear interpolation
between keyframes would be off by more than :data:`BOX_TOLERANCE_PX`; the page interpolates
in between, as the tracker did) as base64 little-endian ``int32`` frame indices and ``int16``
pixel coordinates, and every per-frame series (speaking probability, ``lam``, ``ttm``) as
base64 ``uint8`` in steps of 1/254 (255 = no value). Rows of the timeline are persons when
the record has ``persons`` (diarization), otherwise face tracks (:func:`report_rows`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest error (px) of the page's linear interpolation between box keyframes.
BOX_TOLERANCE_PX = 1.0
#: Per-frame series are stored at the full analysis frame rate up to this many face-frames
#: in all (tracks × frames): 25 faces on screen through a 10-minute video, whose report with
#: three series and boxes every 3rd frame is 3.6 MB. Above it every series is averaged over
#: bins of ``step`` frames, ``step`` the smallest integer that fits (:func:`series_step`).
MAX_FULL_RATE_FACE_FRAMES = 375_000
#: Quantisation of probabilities: ``round(p * 254)``; 255 marks a frame without a value.
QUANT_LEVELS = 254
QUANT_MISSING = 255
#: Series the page knows how to draw (key in the JSON ``extra`` → label, colour, dash).
SERIES_STYLE: dict[str, dict[str, Any]] = {
    "p": {"label": "speaking probability", "color": "#1f5fbf", "dash": []},
    "lam": {"label": "looking at camera (lam)", "color": "#e07b00", "dash": []},
    "ttm": {"label": "talking to camera (ttm)", "color": "#8e3ccb", "dash": [3, 3]},
}
_OTHER_COLORS = ("#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22")


@dataclass(frozen=True)
class ReportRow:
    """One timeline row: a person (with diarization) or a face track.

    Attributes:
        key: unique id in the page (``person:<person_id>`` or ``track:<track_id>``).
        label: what the page calls it (the ``person_id`` or ``track <id>``).
        kind: ``"person"`` or ``"track"``.
        track_ids: the face tracks drawn on this row (none for an off-screen person).
        segments_s: ``(start_s, end_s)`` speaking turns, sorted, seconds.
        speaking_time_s: the JSON's ``speaking_time_s`` for a person, else the sum of
            the segments' durations.
        num_turns: the JSON's ``num_turns`` for a person, else the number of segments.
        on_screen: whether the row has a face on screen (False: a voice without a face).
        thumbnail_jpeg_base64: the person's thumbnail from the JSON, or None.
    """

    key: str
    label: str
    kind: str
    track_ids: tuple[int, ...]
    segments_s: tuple[tuple[float, float], ...]
    speaking_time_s: float
    num_turns: int
    on_screen: bool
    thumbnail_jpeg_base64: str | None = None


@dataclass(frozen=True)
class SpeechTotals:
    """Speech over all rows of a report, in seconds.

    Attributes:
        anyone_s: time at least one row speaks (union of all turns).
        overlap_s: time two or more rows speak at once.
        nobody_s: the video's duration minus ``anyone_s``.
    """

    anyone_s: float
    overlap_s: float
    nobody_s: float


def _fail(where: str, expected: str, found: Any) -> ValueError:
    return ValueError(f"{where}: expected {expected}, but found {found!r}")


def check_record(record: Mapping[str, Any]) -> None:
    """Check that ``record`` is a ``socialav detect`` JSON record the report can draw.

    Raises:
        ValueError: wrong schema, missing fields, per-frame arrays of the wrong length,
            persons naming unknown tracks, or turns that end before they start (the message
            names the field, what was expected and what was found).
    """
    if record.get("schema") != "socialav.detect":
        raise _fail(
            "record.schema", '"socialav.detect" (the JSON of socialav detect)', record.get("schema")
        )
    video = record.get("video")
    if not isinstance(video, Mapping):
        raise _fail("record.video", "an object with the video's fields", video)
    for key in ("video_id", "width_px", "height_px", "fps", "duration_s", "num_frames"):
        if key not in video:
            raise _fail(f"record.video.{key}", "a value", None)
    if not float(video["fps"]) > 0:
        raise _fail("record.video.fps", "a positive frame rate", video["fps"])
    tracks = record.get("tracks")
    if not isinstance(tracks, list):
        raise _fail("record.tracks", "a list of face tracks", type(tracks).__name__)
    ids = set()
    for i, track in enumerate(tracks):
        where = f"record.tracks[{i}]"
        for key in ("track_id", "start_frame", "end_frame", "boxes_xyxy_px", "segments"):
            if key not in track:
                raise _fail(f"{where}.{key}", "a value", None)
        n = int(track["end_frame"]) - int(track["start_frame"]) + 1
        if n < 1:
            raise _fail(
                f"{where}.end_frame", f">= start_frame {track['start_frame']}", track["end_frame"]
            )
        if np.shape(track["boxes_xyxy_px"]) != (n, 4):
            raise _fail(
                f"{where}.boxes_xyxy_px", f"shape ({n}, 4)", np.shape(track["boxes_xyxy_px"])
            )
        for key in ("probabilities", "detected"):
            values = track.get(key)
            if values is not None and len(values) != n:
                raise _fail(f"{where}.{key}", f"{n} values (one per frame)", len(values))
        for name, values in (track.get("extra") or {}).items():
            if values is not None and len(values) != n:
                raise _fail(f"{where}.extra.{name}", f"{n} values (one per frame)", len(values))
        _check_segments(f"{where}.segments", track["segments"])
        if track["track_id"] in ids:
            raise _fail(f"{where}.track_id", "a unique track id", track["track_id"])
        ids.add(track["track_id"])
    persons = record.get("persons")
    if persons is None:
        return
    if not isinstance(persons, list):
        raise _fail("record.persons", "a list of persons", type(persons).__name__)
    owner: dict[int, str] = {}
    seen = set()
    for i, person in enumerate(persons):
        where = f"record.persons[{i}]"
        pid = person.get("person_id")
        if not isinstance(pid, str) or not pid or pid in seen:
            raise _fail(f"{where}.person_id", "a unique non-empty string", pid)
        seen.add(pid)
        for tid in person.get("track_ids") or []:
            if tid not in ids:
                raise _fail(f"{where}.track_ids", f"ids of record.tracks ({sorted(ids)})", tid)
            if tid in owner:
                raise _fail(f"{where}.track_ids", f"a track not already in {owner[tid]}", tid)
            owner[tid] = pid
        _check_segments(f"{where}.speaking_segments", person.get("speaking_segments") or [])
    for i, track in enumerate(tracks):
        pid = track.get("person_id")
        if pid is not None and owner.get(track["track_id"]) != pid:
            raise _fail(
                f"record.tracks[{i}].person_id",
                f"the person whose track_ids hold track {track['track_id']} "
                f"({owner.get(track['track_id'])!r})",
                pid,
            )


def _check_segments(where: str, segments: Sequence[Mapping[str, Any]]) -> None:
    for j, seg in enumerate(segments):
        try:
            start, end = float(seg["start_s"]), float(seg["end_s"])
        except (KeyError, TypeError, ValueError):
            raise _fail(f"{where}[{j}]", 'an object {"start_s", "end_s"} in seconds', seg) from None
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise _fail(f"{where}[{j}]", "finite times with end_s > start_s", seg)


def _segments(segments: Sequence[Mapping[str, Any]]) -> tuple[tuple[float, float], ...]:
    return tuple(sorted((float(s["start_s"]), float(s["end_s"])) for s in segments))


def report_rows(record: Mapping[str, Any]) -> list[ReportRow]:
    """The timeline rows: one per person if the record has ``persons``, else one per track.

    A person's speaking time and number of turns are the JSON's (``speaking_time_s``,
    ``num_turns``; computed from ``speaking_segments`` where absent); a person without
    tracks is a voice off screen. A face track's speaking time is the sum of its segments'
    durations and its number of turns the number of segments. Tracks keep their order by
    ``track_id``; persons keep the record's order.

    Raises:
        ValueError: see :func:`check_record`.
    """
    check_record(record)
    tracks = sorted(record["tracks"], key=lambda t: int(t["track_id"]))
    persons = record.get("persons")
    rows = []
    if persons is None:
        for track in tracks:
            segs = _segments(track["segments"])
            rows.append(
                ReportRow(
                    key=f"track:{int(track['track_id'])}",
                    label=f"track {int(track['track_id'])}",
                    kind="track",
                    track_ids=(int(track["track_id"]),),
                    segments_s=segs,
                    speaking_time_s=sum(e - s for s, e in segs),
                    num_turns=len(segs),
                    on_screen=True,
                )
            )
        return rows
    for person in persons:
        segs = _segments(person.get("speaking_segments") or [])
        track_ids = tuple(sorted(int(t) for t in person.get("track_ids") or []))
        speaking = person.get("speaking_time_s")
        turns = person.get("num_turns")
        rows.append(
            ReportRow(
                key=f"person:{person['person_id']}",
                label=str(person.get("name") or person["person_id"]),
                kind="person",
                track_ids=track_ids,
                segments_s=segs,
                speaking_time_s=float(speaking)
                if speaking is not None
                else sum(e - s for s, e in segs),
                num_turns=int(turns) if turns is not None else len(segs),
                on_screen=bool(person.get("on_screen", bool(track_ids))),
                thumbnail_jpeg_base64=person.get("thumbnail_jpeg_base64") or None,
            )
        )
    return rows


def _measure(intervals: Sequence[tuple[float, float]], min_count: int) -> float:
    """Total time covered by at least ``min_count`` of the intervals (sweep over endpoints)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    total, depth, last = 0.0, 0, 0.0
    for t, delta in events:
        if depth >= min_count:
            total += t - last
        depth += delta
        last = t
    return total


def speech_totals(rows: Sequence[ReportRow], duration_s: float) -> SpeechTotals:
    """Union and overlap of the rows' turns (each row's own turns merged first).

    ``overlap_s`` counts time when two or more *rows* speak at once, so one row's own
    overlapping turns do not count as overlap.
    """
    per_row = []
    for row in rows:
        merged: list[list[float]] = []
        for s, e in sorted(row.segments_s):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        per_row.extend((s, e) for s, e in merged)
    anyone = _measure(per_row, 1)
    return SpeechTotals(
        anyone_s=anyone, overlap_s=_measure(per_row, 2), nobody_s=max(duration_s - anyone, 0.0)
    )


def box_keyframes(
    boxes_xyxy_px: np.ndarray, detected: np.ndarray | None, tolerance_px: float = BOX_TOLERANCE_PX
) -> np.ndarray:
    """Rows of a track's boxes from which linear interpolation rebuilds all within a tolerance.

    Starts from the detection frames and the first and last frame (the tracker interpolates
    linearly between detections, so these usually suffice) and adds, until none is left, the
    frame of largest error in every keyframe interval where the interpolation misses a box
    coordinate by more than ``tolerance_px``.

    Args:
        boxes_xyxy_px: ``(T, 4)`` boxes of consecutive frames.
        detected: ``(T,)`` bool or None (then only the ends start the set).
        tolerance_px: largest allowed error in pixels.

    Returns:
        ``(K,)`` int64 sorted row indices, first 0 and last ``T - 1``.
    """
    boxes = np.asarray(boxes_xyxy_px, dtype=np.float64)
    n = len(boxes)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    if detected is not None:
        keep |= np.asarray(detected, dtype=bool)
    rows = np.arange(n)
    while True:
        key = np.flatnonzero(keep)
        approx = np.stack([np.interp(rows, key, boxes[key, j]) for j in range(4)], axis=1)
        err = np.abs(approx - boxes).max(axis=1)
        if err.max() <= tolerance_px:
            return key
        # the worst frame of each interval that is off
        interval = np.searchsorted(key, rows, side="right") - 1
        bad = np.flatnonzero(err > tolerance_px)
        order = np.lexsort((-err[bad], interval[bad]))
        first_of_interval = np.r_[True, np.diff(interval[bad][order]) != 0]
        keep[bad[order][first_of_interval]] = True


def quantise(values: Sequence[float | None], threshold: float | None = None) -> np.ndarray:
    """Probabilities in [0, 1] as ``uint8`` ``round(p * 254)``; None/NaN → 255.

    With ``threshold``, a value keeps its side of it: a quantised value that would cross the
    threshold is moved to the nearest level on the original side, so the page colours a box
    exactly as ``p >= threshold`` does.

    Raises:
        ValueError: a value outside [0, 1].
    """
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    finite = np.isfinite(arr)
    if finite.any() and (arr[finite].min() < -1e-9 or arr[finite].max() > 1 + 1e-9):
        raise ValueError(
            f"probabilities must lie in [0, 1], but found values from {arr[finite].min()} "
            f"to {arr[finite].max()}"
        )
    q = np.full(len(arr), QUANT_MISSING, dtype=np.uint8)
    levels = np.clip(np.round(arr[finite] * QUANT_LEVELS), 0, QUANT_LEVELS)
    if threshold is not None:
        orig = arr[finite] >= threshold
        up = math.ceil(threshold * QUANT_LEVELS - 1e-9)  # lowest level >= threshold
        levels = np.where(orig & (levels / QUANT_LEVELS < threshold), up, levels)
        levels = np.where(~orig & (levels / QUANT_LEVELS >= threshold), up - 1, levels)
    q[finite] = np.clip(levels, 0, QUANT_LEVELS).astype(np.uint8)
    return q


def series_step(total_face_frames: int, max_face_frames: int = MAX_FULL_RATE_FACE_FRAMES) -> int:
    """Frames per stored value of every per-frame series: 1 up to ``max_face_frames``."""
    return max(1, math.ceil(total_face_frames / max_face_frames))


def _bin_mean(values: np.ndarray, step: int) -> np.ndarray:
    """NaN-aware mean over consecutive bins of ``step`` values (the last bin may be short)."""
    if step == 1:
        return values
    pad = (-len(values)) % step
    padded = np.concatenate([values, np.full(pad, np.nan)]).reshape(-1, step)
    count = np.isfinite(padded).sum(axis=1)
    total = np.nansum(padded, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def b64(array: np.ndarray, dtype: str) -> str:
    """Base64 of ``array`` as little-endian ``dtype`` (``<i4``, ``<i2``, ``u1``)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()).decode(
        "ascii"
    )


def _series_style(names: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(names):
        style = SERIES_STYLE.get(
            name, {"label": name, "color": _OTHER_COLORS[i % len(_OTHER_COLORS)], "dash": []}
        )
        out.append({"key": name, **style})
    return out


def report_payload(
    record: Mapping[str, Any],
    rows: Sequence[ReportRow],
    *,
    thumbnails: Mapping[str, str | None] | None = None,
    start_s: float = 0.0,
    max_face_frames: int = MAX_FULL_RATE_FACE_FRAMES,
) -> dict[str, Any]:
    """The JSON object the page's script reads (see the module docstring for the encoding).

    Args:
        record: the detect record (checked by :func:`report_rows`).
        rows: its rows (:func:`report_rows`).
        thumbnails: row key → ``data:`` URI of a JPEG (or None).
        start_s: time of the video's first frame on the player's clock (analysis time ``t``
            plays at ``start_s + t``; :func:`socialav.io.media.first_frame_time_s`).
        max_face_frames: budget of :func:`series_step`.

    Returns:
        ``{"video", "threshold", "step_frames", "series", "tracks", "rows", "cuts_s"}``
        (row thumbnails are ``rows[i]["thumb"]``):
        ``tracks[i]`` has ``id``, ``row`` (index into ``rows``), ``label``, ``start`` and
        ``end`` (inclusive frame indices), ``kf`` (int32 keyframe indices), ``box`` (int16
        ``x1, y1, x2, y2`` per keyframe, rounded px) and ``s`` (series key → uint8 values, one
        per ``step_frames`` frames from ``start``).
    """
    video = record["video"]
    fps = float(video["fps"])
    run_info = record.get("run_info") or {}
    threshold = float((run_info.get("segments") or {}).get("threshold", 0.5))
    tracks = sorted(record["tracks"], key=lambda t: int(t["track_id"]))
    row_of = {tid: i for i, row in enumerate(rows) for tid in row.track_ids}
    total = sum(int(t["end_frame"]) - int(t["start_frame"]) + 1 for t in tracks)
    step = series_step(total, max_face_frames)
    names = ["p"]
    for track in tracks:
        names.extend(n for n in (track.get("extra") or {}) if n not in names)
    tracks_out = []
    for track in tracks:
        tid = int(track["track_id"])
        boxes = np.asarray(track["boxes_xyxy_px"], dtype=np.float64)
        key = box_keyframes(boxes, track.get("detected"))
        series: dict[str, str] = {}
        for name in names:
            values = (
                track.get("probabilities") if name == "p" else (track.get("extra") or {}).get(name)
            )
            if values is None:
                continue
            arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            arr = _bin_mean(arr, step)
            series[name] = b64(quantise(arr, threshold if name == "p" else 0.5), "u1")
        row = row_of.get(tid)
        tracks_out.append(
            {
                "id": tid,
                "row": row,
                "label": rows[row].label if row is not None else f"track {tid}",
                "start": int(track["start_frame"]),
                "end": int(track["end_frame"]),
                "kf": b64(key + int(track["start_frame"]), "<i4"),
                "box": b64(np.clip(np.round(boxes[key]), -32768, 32767), "<i2"),
                "s": series,
            }
        )
    cut_frames = run_info.get("shot_cut_frames")
    thumbnails = thumbnails or {}
    return {
        "video": {
            "id": str(video["video_id"]),
            "width_px": int(video["width_px"]),
            "height_px": int(video["height_px"]),
            "fps": fps,
            "duration_s": max(float(video["duration_s"]), int(video["num_frames"]) / fps),
            "num_frames": int(video["num_frames"]),
            "start_s": float(start_s),
        },
        "threshold": threshold,
        "step_frames": step,
        "series": _series_style(names),
        "tracks": tracks_out,
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "kind": row.kind,
                "tracks": list(row.track_ids),
                "segments": [[round(s, 6), round(e, 6)] for s, e in row.segments_s],
                "speaking_s": row.speaking_time_s,
                "turns": row.num_turns,
                "on_screen": row.on_screen,
                "thumb": thumbnails.get(row.key),
            }
            for row in rows
        ],
        "cuts_s": None if cut_frames is None else [round(int(k) / fps, 6) for k in cut_frames],
    }
