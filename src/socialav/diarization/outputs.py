"""Person-level outputs of ``socialav detect``: RTTM by person, JSON ``persons``, CSV column.

Contract (the HTML report builds on these names):

- JSON: a top-level ``"persons"`` list of ``{"person_id", "on_screen", "track_ids",
  "thumbnail_jpeg_base64", "speaking_segments": [{"start_s", "end_s"}], "speaking_time_s",
  "num_turns"}`` and a ``"person_id"`` in every entry of ``"tracks"``;
- AVA CSV: the detect CSV (``entity_id`` per face track) with a trailing ``person_id``
  column;
- RTTM: ``SPEAKER <video_id> 1 <onset> <duration> <NA> <NA> person_<k> <NA> <NA>``, one line
  per speaking segment, sorted by onset.

Writers are atomic (:mod:`socialav.io.atomic`).
"""

from __future__ import annotations

import base64
import csv
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from socialav.diarization.records import DiarizationResult, Person
from socialav.io.atomic import atomic_write
from socialav.io.person_timeline import PersonRow, plot_person_timeline
from socialav.io.writers import RttmTurn, format_rttm_line, rttm_safe, write_ava_csv
from socialav.types import FaceTrack, TrackScores, VideoInfo

__all__ = [
    "person_rttm_turns",
    "write_person_rttm",
    "persons_json",
    "add_persons_to_record",
    "write_ava_csv_with_persons",
    "write_person_timeline",
]


def person_rttm_turns(video_id: str, persons: Sequence[Person]) -> list[RttmTurn]:
    """One RTTM turn per speaking segment of every person, sorted by onset then speaker."""
    turns = [
        RttmTurn(rttm_safe(video_id), "1", seg.start_s, seg.duration_s, p.person_id)
        for p in persons
        for seg in p.speaking_segments
    ]
    return sorted(turns, key=lambda t: (t.onset_s, t.speaker))


def write_person_rttm(
    path: str | os.PathLike[str], video_id: str, persons: Sequence[Person], decimals: int = 3
) -> int:
    """Write the persons' speaking segments as RTTM (empty file when nobody speaks).

    Returns:
        The number of lines written.
    """
    turns = person_rttm_turns(video_id, persons)
    with atomic_write(path) as handle:
        for turn in turns:
            handle.write(format_rttm_line(turn, decimals) + "\n")
    return len(turns)


def persons_json(persons: Sequence[Person], decimals: int = 3) -> list[dict[str, Any]]:
    """The JSON ``"persons"`` list (see the module docstring)."""
    out = []
    for p in persons:
        thumb = base64.b64encode(p.thumbnail_jpeg).decode("ascii") if p.thumbnail_jpeg else None
        out.append(
            {
                "person_id": p.person_id,
                "on_screen": p.on_screen,
                "track_ids": list(p.track_ids),
                "thumbnail_jpeg_base64": thumb,
                "speaking_segments": [
                    {"start_s": round(s.start_s, decimals), "end_s": round(s.end_s, decimals)}
                    for s in p.speaking_segments
                ],
                "speaking_time_s": round(p.speaking_time_s, decimals),
                "num_turns": p.num_turns,
            }
        )
    return out


def add_persons_to_record(
    record: Mapping[str, Any], result: DiarizationResult, info: bool = True
) -> dict[str, Any]:
    """A copy of a detect JSON record (``socialav.io.writers.detection_record``) with the
    ``"persons"`` list and a ``"person_id"`` in every track (``None`` for a track the
    diarization did not see); ``run_info["diarization"]`` gets ``result.info`` if ``info``."""
    out = dict(record)
    tracks = []
    for track in record.get("tracks", []):
        entry = dict(track)
        entry["person_id"] = result.track_to_person.get(int(track["track_id"]))
        tracks.append(entry)
    out["tracks"] = tracks
    out["persons"] = persons_json(result.persons)
    if info:
        run_info = dict(out.get("run_info", {}))
        run_info["diarization"] = result.info
        out["run_info"] = run_info
    return out


def write_ava_csv_with_persons(
    path: str | os.PathLike[str],
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    track_to_person: Mapping[int, str],
) -> int:
    """The detect AVA CSV (:func:`socialav.io.writers.write_ava_csv`) plus a last column
    ``person_id``, joined on the row's ``entity_id`` (``<video_id>:<track_id>``).

    Returns:
        The number of data rows.

    Raises:
        ValueError: a track without a person in ``track_to_person``.
    """
    missing = sorted({t.track_id for t in tracks} - set(track_to_person))
    if missing:
        raise ValueError(f"track_to_person has no person for face tracks {missing[:10]}")
    by_entity = {f"{video.video_id}:{tid}": pid for tid, pid in track_to_person.items()}
    with tempfile.TemporaryDirectory(prefix=".socialav-csv-", dir=Path(path).parent) as tmp:
        plain = Path(tmp) / "plain.csv"
        write_ava_csv(plain, video, tracks, scores)
        with open(plain, newline="", encoding="utf-8") as src:
            rows = list(csv.reader(src))
    header, body = rows[0], rows[1:]
    column = header.index("entity_id")
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*header, "person_id"])
        for row in body:
            writer.writerow([*row, by_entity[row[column]]])
    return len(body)


def write_person_timeline(
    path: str | os.PathLike[str], video: VideoInfo, persons: Sequence[Person]
):
    """Timeline PNG with one row per person and its face thumbnail
    (:func:`socialav.io.person_timeline.plot_person_timeline`). Returns the rows drawn."""
    rows = [
        PersonRow(
            p.person_id,
            p.on_screen,
            [(s.start_s, s.end_s) for s in p.speaking_segments],
            p.thumbnail_jpeg,
        )
        for p in persons
    ]
    duration_s = max([video.duration_s] + [s.end_s for p in persons for s in p.speaking_segments])
    return plot_person_timeline(path, f"{video.video_id}: who spoke when", duration_s, rows)
