"""Output files of ``socialav detect``: AVA-ActiveSpeaker CSV, RTTM and JSON.

Every writer here is atomic: it writes a temporary file in the destination directory,
flushes and fsyncs it, and moves it over the destination with :func:`os.replace`. A writer
that fails midway leaves the previous file (if any) untouched and no temporary file behind.
The atomic helpers live in :mod:`socialav.io.atomic`.

Times: frame ``k`` of the 25 fps analysis timeline is at ``k / fps`` seconds after the first
decoded video frame (see :mod:`socialav.types`). Rows and records are joined on
``(video_id, frame_timestamp, entity_id)`` -- by frame index, never by row position.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from socialav.io.atomic import atomic_write
from socialav.io.ava_csv import PREDICTION_COLUMNS
from socialav.io.text import read_text
from socialav.types import FaceTrack, TrackScores, VideoInfo

logger = logging.getLogger(__name__)

#: Columns of the AVA-ActiveSpeaker prediction CSV read by the official evaluator
#: (``get_ava_active_speaker_performance.py`` in activitynet/ActivityNet, Evaluation/).
AVA_PREDICTION_COLUMNS: tuple[str, ...] = PREDICTION_COLUMNS
#: The only label the official evaluator accepts in a prediction file; the score is the
#: confidence that the entity is ``SPEAKING_AUDIBLE``.
AVA_SPEAKING_LABEL = "SPEAKING_AUDIBLE"
#: Version of the layout written by :func:`write_json`; bump it when fields change meaning.
JSON_SCHEMA_VERSION = 1
JSON_SCHEMA_NAME = "socialav.detect"

_EXTRA_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_WHITESPACE_RE = re.compile(r"\s+")


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


def entity_id_for(video_id: str, track_id: int) -> str:
    """The AVA-style entity id of a face track: ``f"{video_id}:{track_id}"``."""
    return f"{video_id}:{int(track_id)}"


def timestamp_decimals(fps: float, max_decimals: int = 6) -> int:
    """Fewest decimals that write every ``k / fps`` exactly (2 at 25 fps, AVA's format).

    Returns ``max_decimals`` when no count up to it is exact (e.g. 30 fps).
    """
    step = 1.0 / fps
    for decimals in range(max_decimals + 1):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-9 * max(1.0, scaled):
            return decimals
    return max_decimals


def rttm_safe(name: str) -> str:
    """Make a file id or speaker name safe for space-separated RTTM fields.

    Rule: every run of whitespace becomes one ``_``; an empty name becomes ``<NA>``.
    Other characters (``:`` in entity ids included) are kept.
    """
    safe = _WHITESPACE_RE.sub("_", str(name).strip())
    return safe or "<NA>"


def _pair_tracks_and_scores(
    tracks: Sequence[FaceTrack], scores: Sequence[TrackScores]
) -> list[tuple[FaceTrack, TrackScores | None]]:
    """Join face tracks and their scores on ``track_id``, sorted by ``track_id``."""
    by_id: dict[int, FaceTrack] = {}
    for track in tracks:
        if track.track_id in by_id:
            raise ValueError(f"track_id must be unique, but {track.track_id} appears twice")
        by_id[track.track_id] = track
    scores_by_id: dict[int, TrackScores] = {}
    for score in scores:
        if score.track_id in scores_by_id:
            raise ValueError(
                f"expected one TrackScores per track_id, but {score.track_id} appears twice"
            )
        if score.track_id not in by_id:
            raise ValueError(
                f"TrackScores for track_id {score.track_id} has no FaceTrack; "
                f"known track ids: {sorted(by_id)}"
            )
        scores_by_id[score.track_id] = score
    pairs = []
    for track_id in sorted(by_id):
        if track_id not in scores_by_id:
            logger.warning(
                "face track %d has no scores (no AVA rows; null scores in JSON)", track_id
            )
        pairs.append((by_id[track_id], scores_by_id.get(track_id)))
    return pairs


def _score_rows_in_track(track: FaceTrack, score: TrackScores) -> np.ndarray:
    """Row index into ``track`` of each frame in ``score`` (join on frame index)."""
    pos = score.frame_indices - track.start_frame
    bad = (pos < 0) | (pos >= len(track))
    if bad.any():
        missing = score.frame_indices[bad]
        raise ValueError(
            f"TrackScores for track_id {track.track_id} has frames outside the face track "
            f"(frames {track.start_frame}..{track.end_frame}): first missing frame "
            f"{int(missing[0])}, {int(bad.sum())} in all"
        )
    return pos


def _check_extra(score: TrackScores) -> None:
    for name, values in score.extra.items():
        if not _EXTRA_NAME_RE.match(name):
            raise ValueError(
                f"extra series names must match {_EXTRA_NAME_RE.pattern} (they become column "
                f"names), but track {score.track_id} has {name!r}"
            )
        if np.shape(values) != (len(score.frame_indices),):
            raise ValueError(
                f"extra series {name!r} of track {score.track_id} must have shape "
                f"({len(score.frame_indices)},), but got {np.shape(values)}"
            )


# --------------------------------------------------------------------------------------
# AVA-ActiveSpeaker CSV
# --------------------------------------------------------------------------------------


def write_ava_csv(
    path: str | os.PathLike[str],
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    *,
    include_extra: bool = True,
    box_decimals: int = 4,
) -> int:
    """Write per-frame speaking scores in the AVA-ActiveSpeaker prediction format.

    One row per scored frame of every face track, with a header line::

        video_id,frame_timestamp,entity_box_x1,entity_box_y1,entity_box_x2,entity_box_y2,
        label,entity_id,score[,<name>_score ...]

    - ``frame_timestamp``: ``frame_index / video.fps`` in seconds, with the fewest decimals
      that are exact on the frame grid (:func:`timestamp_decimals`: 2 at 25 fps, as in AVA).
    - ``entity_box_*``: the face box divided by the frame width/height, clipped to [0, 1].
    - ``label``: always ``SPEAKING_AUDIBLE`` (the official evaluator,
      ``get_ava_active_speaker_performance.py``, requires it on prediction rows).
    - ``entity_id``: ``f"{video_id}:{track_id}"``.
    - ``score``: ``TrackScores.probabilities``, written with 9 significant digits (exact
      for float32, so no ties are introduced that would change average precision).
    - ``<name>_score``: optional trailing columns for ``TrackScores.extra`` series (e.g.
      ``lam_score``, ``ttm_score``), empty where a track lacks that series.

    Scores are joined to boxes by frame index, never by row position. Rows are sorted by
    ``entity_id`` (numeric track id order) then time.

    Args:
        path: destination CSV (written atomically).
        video: the video the tracks come from (``video_id``, frame size, ``fps``).
        tracks: face tracks (unique ``track_id``).
        scores: one ``TrackScores`` per scored track; tracks without scores get no rows.
        include_extra: write the extra series columns.
        box_decimals: decimals of the normalised box coordinates.

    Returns:
        The number of data rows written.

    Raises:
        ValueError: duplicated track ids, scores for an unknown track, score frames outside
            their track, or extra series with a bad name or shape.
    """
    pairs = [(t, s) for t, s in _pair_tracks_and_scores(tracks, scores) if s is not None]
    extra_names: list[str] = []
    if include_extra:
        for _, score in pairs:
            _check_extra(score)
            extra_names.extend(n for n in score.extra if n not in extra_names)
    header = list(AVA_PREDICTION_COLUMNS) + [f"{name}_score" for name in extra_names]
    ts_decimals = timestamp_decimals(video.fps)
    size = np.array([video.width_px, video.height_px] * 2, dtype=np.float64)
    n_rows = 0
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for track, score in pairs:
            entity_id = entity_id_for(video.video_id, track.track_id)
            rows_in_track = _score_rows_in_track(track, score)
            boxes = np.clip(track.boxes_xyxy_px[rows_in_track].astype(np.float64) / size, 0, 1)
            order = np.argsort(score.frame_indices, kind="stable")
            for i in order:
                row = [
                    video.video_id,
                    f"{score.frame_indices[i] / video.fps:.{ts_decimals}f}",
                    *(f"{v:.{box_decimals}f}" for v in boxes[i]),
                    AVA_SPEAKING_LABEL,
                    entity_id,
                    f"{float(score.probabilities[i]):.9g}",
                ]
                for name in extra_names:
                    series = score.extra.get(name)
                    row.append("" if series is None else f"{float(series[i]):.9g}")
                writer.writerow(row)
                n_rows += 1
    logger.debug("wrote %d AVA rows to %s", n_rows, path)
    return n_rows


# --------------------------------------------------------------------------------------
# RTTM
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RttmTurn:
    """One ``SPEAKER`` line of an RTTM file (NIST Rich Transcription Time Marked).

    Attributes:
        file_id: the recording id (field 2).
        channel: channel number (field 3, ``1`` in our files).
        onset_s: start of the turn in seconds (field 4).
        duration_s: duration in seconds (field 5).
        speaker: speaker name (field 8); ``entity_id`` in files written by socialav.
    """

    file_id: str
    channel: str
    onset_s: float
    duration_s: float
    speaker: str

    @property
    def end_s(self) -> float:
        return self.onset_s + self.duration_s


def format_rttm_line(turn: RttmTurn, decimals: int = 3) -> str:
    """One RTTM line: ``SPEAKER <file> <chan> <onset> <dur> <NA> <NA> <speaker> <NA> <NA>``."""
    return (
        f"SPEAKER {rttm_safe(turn.file_id)} {turn.channel} {turn.onset_s:.{decimals}f} "
        f"{turn.duration_s:.{decimals}f} <NA> <NA> {rttm_safe(turn.speaker)} <NA> <NA>"
    )


def rttm_turns(video: VideoInfo, scores: Sequence[TrackScores]) -> list[RttmTurn]:
    """Speaking segments of all face tracks as RTTM turns, sorted by onset then speaker.

    ``file_id`` is ``video.video_id`` and ``speaker`` the track's ``entity_id``, both made
    safe with :func:`rttm_safe` (whitespace runs become ``_``).

    Raises:
        ValueError: a segment whose end is not after its start.
    """
    turns = []
    for score in scores:
        speaker = rttm_safe(entity_id_for(video.video_id, score.track_id))
        for seg in score.segments:
            if not seg.end_s > seg.start_s:
                raise ValueError(
                    f"speaking segment of track {score.track_id} must end after it starts, "
                    f"but got start_s={seg.start_s}, end_s={seg.end_s}"
                )
            turns.append(
                RttmTurn(
                    file_id=rttm_safe(video.video_id),
                    channel="1",
                    onset_s=float(seg.start_s),
                    duration_s=float(seg.end_s - seg.start_s),
                    speaker=speaker,
                )
            )
    turns.sort(key=lambda t: (t.onset_s, t.duration_s, t.speaker))
    return turns


def write_rttm(
    path: str | os.PathLike[str],
    video: VideoInfo,
    scores: Sequence[TrackScores],
    *,
    decimals: int = 3,
) -> int:
    """Write the speaking segments of every face track as an RTTM file.

    One line per segment, in the layout pyannote-audio writes::

        SPEAKER <file-id> 1 <onset_s> <duration_s> <NA> <NA> <speaker> <NA> <NA>

    with ``file-id = video_id`` and ``speaker = entity_id`` (``video_id:track_id``), both
    passed through :func:`rttm_safe` (whitespace runs become ``_``, because RTTM fields are
    space-separated). Lines are sorted by onset; times have ``decimals`` decimals (3: ms).
    Overlapping turns of different tracks are kept (several faces may speak at once).

    Returns:
        The number of lines written.

    Raises:
        ValueError: a segment whose end is not after its start.
    """
    turns = rttm_turns(video, scores)
    with atomic_write(path) as handle:
        for turn in turns:
            handle.write(format_rttm_line(turn, decimals) + "\n")
    return len(turns)


def read_rttm(path_or_lines: str | os.PathLike[str] | Iterable[str]) -> list[RttmTurn]:
    """Parse the ``SPEAKER`` lines of an RTTM file.

    Blank lines and lines starting with ``;;`` (comments) are skipped, as are other record
    types (``SPKR-INFO``, ``LEXEME``, ...). A ``SPEAKER`` line needs at least the 8 first
    fields (type, file, channel, onset, duration, ortho, stype, name); the optional
    confidence and lookahead fields are ignored.

    Args:
        path_or_lines: a file path, or an iterable of lines.

    Returns:
        The turns in file order.

    Raises:
        ValueError: a ``SPEAKER`` line with too few fields, a non-numeric onset/duration or a
            negative duration (the message gives the line number).
    """
    if isinstance(path_or_lines, (str, os.PathLike)):
        lines = read_text(path_or_lines, "RTTM file").splitlines()
        source = str(path_or_lines)
    else:
        lines = list(path_or_lines)
        source = "<lines>"
    turns = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith(";;") or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(
                f"{source}:{number}: an RTTM SPEAKER line needs at least 8 space-separated "
                f"fields, but got {len(fields)}: {line!r}"
            )
        try:
            onset_s, duration_s = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(
                f"{source}:{number}: expected numeric onset and duration (fields 4 and 5), "
                f"but got {fields[3]!r} and {fields[4]!r}"
            ) from None
        if duration_s < 0 or not math.isfinite(onset_s) or not math.isfinite(duration_s):
            raise ValueError(
                f"{source}:{number}: expected a finite onset and a duration >= 0, but got "
                f"onset {onset_s} and duration {duration_s}"
            )
        turns.append(RttmTurn(fields[1], fields[2], onset_s, duration_s, fields[7]))
    return turns


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def _round_list(values: np.ndarray, decimals: int) -> list[Any]:
    """A nested list of rounded floats, with NaN/inf as ``None`` (JSON has no NaN)."""
    arr = np.round(np.asarray(values, dtype=np.float64), decimals)
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()


def _on_track_grid(
    values: np.ndarray, rows: np.ndarray, num_frames: int, decimals: int = 6
) -> list[Any]:
    """Per-frame values placed at ``rows`` of a track's frame grid, null elsewhere."""
    grid = np.full(num_frames, np.nan)
    grid[rows] = values
    return _round_list(grid, decimals)


def _json_ready(value: Any, where: str) -> Any:
    """Convert numpy scalars/arrays, paths and tuples for JSON; reject anything else."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist(), where)
    if isinstance(value, np.generic):
        return _json_ready(value.item(), where)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(
        f"{where} must be JSON-serialisable (str, number, bool, None, list, dict, numpy), "
        f"but got {type(value).__name__}"
    )


def _is_flat(value: Any) -> bool:
    """True for a list of scalars or of lists of scalars (written on one line)."""
    if not isinstance(value, list):
        return False
    return all(
        not isinstance(v, (dict, list))
        or (isinstance(v, list) and not any(isinstance(w, (dict, list)) for w in v))
        for v in value
    )


def _dump_compact(value: Any, out: io.StringIO, indent: int, level: int) -> None:
    """JSON with indented objects, but numeric arrays (and arrays of boxes) on one line and
    flat objects inside arrays (speaking segments) one per line."""
    pad = " " * (indent * (level + 1))
    end_pad = " " * (indent * level)
    if isinstance(value, dict):
        if not value:
            out.write("{}")
            return
        out.write("{\n")
        for i, (key, item) in enumerate(value.items()):
            out.write(f"{pad}{json.dumps(key)}: ")
            _dump_compact(item, out, indent, level + 1)
            out.write(",\n" if i < len(value) - 1 else "\n")
        out.write(end_pad + "}")
    elif isinstance(value, list) and not _is_flat(value):
        out.write("[\n")
        for i, item in enumerate(value):
            out.write(pad)
            if isinstance(item, dict) and not any(
                isinstance(v, (dict, list)) for v in item.values()
            ):
                # small records such as speaking segments: one per line
                out.write(json.dumps(item, allow_nan=False, separators=(", ", ": ")))
            else:
                _dump_compact(item, out, indent, level + 1)
            out.write(",\n" if i < len(value) - 1 else "\n")
        out.write(end_pad + "]")
    else:
        out.write(json.dumps(value, allow_nan=False, separators=(", ", ": ")))


def detection_record(
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    run_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dictionary :func:`write_json` writes (see there for the layout)."""
    tracks_out = []
    for track, score in _pair_tracks_and_scores(tracks, scores):
        frames = track.frame_indices
        record: dict[str, Any] = {
            "track_id": int(track.track_id),
            "entity_id": entity_id_for(video.video_id, track.track_id),
            "start_frame": track.start_frame,
            "end_frame": track.end_frame,
            "start_s": round(track.start_frame / video.fps, 6),
            "end_s": round((track.end_frame + 1) / video.fps, 6),
            "frame_indices": frames.tolist(),
            "frame_timestamps_s": _round_list(frames / video.fps, 6),
            "boxes_xyxy_px": _round_list(track.boxes_xyxy_px, 1),
            "detected": np.asarray(track.detected, dtype=bool).tolist(),
            "detector_confidence": _round_list(track.confidence, 4),
        }
        if score is None:
            record.update(probabilities=None, logits=None, segments=[], extra={})
        else:
            # Scores may cover only part of the track: write them on the track's frame grid
            # (join by frame index), null where there is no score.
            rows = _score_rows_in_track(track, score)
            _check_extra(score)

            record["probabilities"] = _on_track_grid(score.probabilities, rows, len(track))
            record["logits"] = _on_track_grid(score.logits, rows, len(track))
            record["segments"] = [
                {
                    "start_s": round(float(seg.start_s), 6),
                    "end_s": round(float(seg.end_s), 6),
                    "start_frame": int(seg.start_frame),
                    "end_frame": int(seg.end_frame),
                    "mean_score": round(float(seg.mean_score), 6),
                }
                for seg in score.segments
            ]
            record["extra"] = {
                name: _on_track_grid(np.asarray(values), rows, len(track))
                for name, values in score.extra.items()
            }
        tracks_out.append(record)
    return {
        "schema": JSON_SCHEMA_NAME,
        "schema_version": JSON_SCHEMA_VERSION,
        "video": _json_ready(asdict(video), "video"),
        "run_info": _json_ready(dict(run_info or {}), "run_info"),
        "num_tracks": len(tracks_out),
        "tracks": tracks_out,
    }


def write_json(
    path: str | os.PathLike[str],
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    run_info: Mapping[str, Any] | None = None,
    *,
    indent: int = 1,
) -> dict[str, Any]:
    """Write everything ``socialav detect`` found in one JSON file.

    Layout (``schema = "socialav.detect"``, ``schema_version = 1``)::

        {"schema", "schema_version",
         "video": VideoInfo fields,
         "run_info": what the pipeline passes (model, weights name + sha256, windowing,
                     thresholds, library versions),
         "num_tracks",
         "tracks": [{"track_id", "entity_id", "start_frame", "end_frame" (inclusive),
                     "start_s", "end_s" (exclusive), "frame_indices", "frame_timestamps_s",
                     "boxes_xyxy_px" (0.1 px), "detected", "detector_confidence",
                     "probabilities", "logits" (6 decimals, null where not scored),
                     "segments": [{"start_s", "end_s", "start_frame", "end_frame",
                                   "mean_score"}],
                     "extra": {name: per-frame series}}]}

    Per-frame arrays are aligned with ``frame_indices`` (joined by frame index). Objects
    are indented; numeric arrays are written on one line. NaN/inf become ``null``, so the
    file is strict JSON. Tracks are sorted by ``track_id``.

    Returns:
        The written dictionary.

    Raises:
        TypeError: ``run_info`` holds a value that is not JSON-serialisable.
        ValueError: see :func:`write_ava_csv`.
    """
    record = detection_record(video, tracks, scores, run_info)
    write_record(path, record, indent=indent)
    return record


def write_record(
    path: str | os.PathLike[str], record: Mapping[str, Any], *, indent: int = 1
) -> None:
    """Write a ready detect record -- :func:`detection_record`'s output, possibly with more
    top-level entries such as ``persons``, all of plain JSON types -- as :func:`write_json`
    formats it, atomically."""
    buffer = io.StringIO()
    _dump_compact(record, buffer, indent, 0)
    buffer.write("\n")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
