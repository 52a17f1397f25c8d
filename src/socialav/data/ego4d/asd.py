"""Ego4D active speaker detection: annotations or tracker results -> ASD training/eval files.

Seed 002 (TalkNet+DeiT, ASRU 2023) prepares Ego4D with the scripts of zcxu-eric/
Ego4d_TalkNet_ASD; reproduced here with our own code:

- ``utils/preprocessing.py`` (``generate``), annotated splits: for every face track of every
  person except the camera wearer (``person_id == "camera_wearer"``; tracks whose
  ``track_id`` contains ``visual_anchor`` are skipped), the per-frame label is 1 when the
  frame lies in one of the person's ``voice_segments`` (inclusive). The track is cut into
  chunks of 300 boxes: chunk ``i`` holds boxes ``[300 i, 300 i + 300)`` for ``i`` in
  ``range(0, last_frame - first_frame + 1, 300)``; a chunk with more than one box becomes a
  record ``[entity, num_boxes, 30.0, labels, first_frame]`` with ``entity =
  clip_uid:track_id:i``, and every chunk's boxes are written to ``bbox/<entity>.json``.
  Records go to ``csv/active_speaker_<split>.csv`` (tab-separated, no header; ``labels`` is
  a Python list literal) -- the TalkNet loader layout.
- TalkNet+DeiT's ``utils/annot_preprocessing.py`` additionally writes, per chunk,
  ``bboxes_per_track/<entity>.json``: for every frame of the chunk the boxes of the *other*
  tracked persons at that frame (``{frame: [{"x1", "y1", "x2", "y2" (text), "pid", "label"}]}``,
  the context its scene branch sees; :func:`asd_context_boxes`).
- ``utils/process_tracking_result.py`` (``generate_from_pretained_tracker``), unannotated
  clips: tracker output lines ``frameNumber pid x1 y1 x2 y2`` (whitespace-separated; the
  TalkNet+DeiT variant adds a seventh column, ``activity``) are
  grouped per ``pid`` and split into local tracks at a frame gap or after 300 boxes
  (``track_length > 300``: the 302nd box starts a new track, as the reference), entity
  ``<video>:<pid>:<count>``, record ``[entity, num_boxes, 30.0, [0], first_frame]``.

:func:`ava_groundtruth_from_clips` additionally writes the annotations as an
AVA-ActiveSpeaker CSV (``video_id`` = clip_uid, ``frame_timestamp`` = frame / 30, boxes
normalised by the frame size, ``SPEAKING_AUDIBLE`` / ``NOT_SPEAKING``, ``entity_id`` =
``clip_uid:track_id``), and :func:`ava_rows_from_track_results` the tracker's faces (label
``NOT_SPEAKING``: unknown), so ``socialav data prepare`` / ``score`` / ``evaluate`` run on Ego4D;
:func:`convert_ego4d_asd` writes all of it (``socialav data ego4d-asd``).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from socialav.data.ego4d.annotations import Ego4dClip
from socialav.io.ava_csv import GROUNDTRUTH_COLUMNS
from socialav.io.text import read_text
from socialav.types import EGO4D_FPS

__all__ = [
    "AsdConversion",
    "AsdRecord",
    "TrackResultError",
    "asd_context_boxes",
    "asd_records_from_clips",
    "asd_records_from_track_results",
    "ava_groundtruth_from_clips",
    "ava_rows_from_track_results",
    "convert_ego4d_asd",
    "read_track_results",
    "write_asd_layout",
]

#: Boxes per record chunk / local track in the reference scripts.
CHUNK_BOXES = 300


class TrackResultError(ValueError):
    """A tracker result file line is not ``frameNumber pid x1 y1 x2 y2``."""


@dataclass
class AsdRecord:
    """One row of ``active_speaker_<split>.csv`` and its boxes.

    Attributes:
        entity: ``clip_uid:track_id:chunk`` (annotations) or ``video:pid:count`` (tracker).
        labels: per-box 0/1 speaking labels (``[0]`` for tracker results, as the reference).
        first_frame: frame number of the first box.
        boxes: the chunk's boxes as dicts (annotation: ``frame, x, y, width, height``;
            tracker: ``frameNumber, x1, y1, x2, y2, pid``), written to ``bbox/<entity>.json``.
        fps: 30.0.
    """

    entity: str
    labels: list[int]
    first_frame: int
    boxes: list[dict[str, float | int]]
    fps: float = EGO4D_FPS

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)


def asd_records_from_clips(
    clips: Sequence[Ego4dClip],
) -> tuple[list[AsdRecord], list[AsdRecord]]:
    """Records of annotated clips, as ``generate`` of Ego4d_TalkNet_ASD.

    Returns:
        ``(records, chunks)``: ``records`` are the CSV rows (chunks with more than one box);
        ``chunks`` are all chunks (every one gets a ``bbox`` JSON file).
    """
    records: list[AsdRecord] = []
    chunks: list[AsdRecord] = []
    for clip in clips:
        for person in clip.persons:
            if person.is_camera_wearer:
                continue
            speaking: set[int] = set()
            for seg in person.voice_segments:
                speaking.update(range(seg.start_frame, seg.end_frame + 1))
            for track in person.tracks:
                if "visual_anchor" in track.track_id:
                    continue
                frames = track.frames.tolist()
                labels = [int(f in speaking) for f in frames]
                boxes = [
                    {
                        "frame": int(f),
                        "x": float(b[0]),
                        "y": float(b[1]),
                        "width": float(b[2]),
                        "height": float(b[3]),
                    }
                    for f, b in zip(frames, track.boxes_xywh_px, strict=True)
                ]
                for i, start in enumerate(range(0, frames[-1] - frames[0] + 1, CHUNK_BOXES)):
                    part = boxes[start : start + CHUNK_BOXES]
                    first = part[0]["frame"] if part else -1
                    rec = AsdRecord(
                        f"{clip.clip_uid}:{track.track_id}:{i}",
                        labels[start : start + CHUNK_BOXES],
                        int(first),
                        part,
                    )
                    chunks.append(rec)
                    if len(part) > 1:
                        records.append(rec)
    return records, chunks


_LINE = re.compile(
    r"^\s*(-?\d+)\s+(\S+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)(?:\s+(-?\d+))?\s*$"
)


def read_track_results(path: str | os.PathLike[str]) -> list[dict[str, int]]:
    """Parse a tracker result file: ``frameNumber pid x1 y1 x2 y2 [activity]`` per line
    (integers; the seventh, TalkNet+DeiT's ``activity``, is kept when present).

    Raises:
        TrackResultError: naming the file, line number and the line.
    """
    rows = []
    for n, line in enumerate(
        read_text(path, "face track result file", error=TrackResultError).splitlines(), start=1
    ):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise TrackResultError(
                f"{path}: line {n}: expected 'frameNumber pid x1 y1 x2 y2 [activity]' (six or "
                "seven integers), "
                f"found {line!r}"
            )
        frame, pid, x1, y1, x2, y2, activity = m.groups()
        if not pid.lstrip("-").isdigit():
            raise TrackResultError(f"{path}: line {n}: pid must be an integer, found {pid!r}")
        row = {
            "frameNumber": int(frame),
            "pid": int(pid),
            "x1": int(x1),
            "y1": int(y1),
            "x2": int(x2),
            "y2": int(y2),
        }
        if activity is not None:
            row["activity"] = int(activity)
        rows.append(row)
    return rows


def asd_records_from_track_results(
    rows: Sequence[Mapping[str, int]], video: str
) -> list[AsdRecord]:
    """Local tracks of one video's tracker output, as ``generate_from_pretained_tracker``."""
    by_pid: dict[int, list[Mapping[str, int]]] = defaultdict(list)
    for row in rows:
        by_pid[int(row["pid"])].append(row)
    local: dict[str, list[dict[str, int]]] = {}
    for pid, frames in by_pid.items():
        count, last, length = -1, -2, 0
        for row in sorted(frames, key=lambda r: r["frameNumber"]):
            if row["frameNumber"] > last + 1 or length > CHUNK_BOXES:
                count += 1
                length = 0
            last = row["frameNumber"]
            local.setdefault(f"{video}:{pid}:{count}", []).append(dict(row))
            length += 1
    return [
        AsdRecord(entity, [0], boxes[0]["frameNumber"], boxes)  # type: ignore[arg-type]
        for entity, boxes in local.items()
    ]


def write_asd_layout(
    records: Sequence[AsdRecord],
    root: str | os.PathLike[str],
    split: str,
    chunks: Sequence[AsdRecord] | None = None,
) -> Path:
    """Write ``root/csv/active_speaker_<split>.csv`` and ``root/bbox/<entity>.json``.

    CSV rows: ``entity \\t num_boxes \\t 30.0 \\t [l0, l1, ...] \\t first_frame`` (no header),
    as pandas writes the reference's list records with ``sep='\\t'``. Files are written
    atomically.

    Returns:
        The CSV path.
    """
    from socialav.io.atomic import atomic_write

    root = Path(root)
    for rec in chunks if chunks is not None else records:
        with atomic_write(root / "bbox" / f"{rec.entity}.json") as fh:
            json.dump(rec.boxes, fh)
    csv_path = root / "csv" / f"active_speaker_{split}.csv"
    with atomic_write(csv_path, newline="") as fh:
        for rec in records:
            labels = "[" + ", ".join(str(int(v)) for v in rec.labels) + "]"
            fh.write(f"{rec.entity}\t{rec.num_boxes}\t{rec.fps}\t{labels}\t{rec.first_frame}\n")
    return csv_path


def ava_groundtruth_from_clips(
    clips: Sequence[Ego4dClip],
    frame_size_px: Mapping[str, tuple[int, int]] | tuple[int, int],
) -> pd.DataFrame:
    """AVA-ActiveSpeaker ground-truth rows for every non-wearer face box of the clips.

    Args:
        frame_size_px: ``(width, height)`` of every clip or ``clip_uid -> (w, h)``.

    Returns:
        A table with :data:`socialav.io.ava_csv.GROUNDTRUTH_COLUMNS` (write it with
        :func:`socialav.io.ava_csv.write_ava_csv_frame`); boxes are clipped to [0, 1].
    """
    rows = []
    for clip in clips:
        size = frame_size_px[clip.clip_uid] if isinstance(frame_size_px, Mapping) else frame_size_px
        w, h = float(size[0]), float(size[1])
        for person in clip.persons:
            if person.is_camera_wearer:
                continue
            speaking: set[int] = set()
            for seg in person.voice_segments:
                speaking.update(range(seg.start_frame, seg.end_frame + 1))
            for track in person.tracks:
                if "visual_anchor" in track.track_id:
                    continue
                xyxy = track.boxes_xyxy_px / np.array([w, h, w, h])
                xyxy = np.clip(xyxy, 0.0, 1.0)
                for f, box in zip(track.frames.tolist(), xyxy, strict=True):
                    rows.append(
                        {
                            "video_id": clip.clip_uid,
                            "frame_timestamp": f / clip.fps,
                            "entity_box_x1": box[0],
                            "entity_box_y1": box[1],
                            "entity_box_x2": box[2],
                            "entity_box_y2": box[3],
                            "label": "SPEAKING_AUDIBLE" if f in speaking else "NOT_SPEAKING",
                            "entity_id": f"{clip.clip_uid}:{track.track_id}",
                        }
                    )
    return pd.DataFrame(rows, columns=list(GROUNDTRUTH_COLUMNS))


def asd_context_boxes(
    clips: Sequence[Ego4dClip],
) -> dict[str, dict[str, list[dict[str, str | int]]]]:
    """Per chunk entity, the other persons' boxes at each of its frames (TalkNet+DeiT's
    ``bboxes_per_track``): ``entity -> {str(frame): [{"x1", "y1", "x2", "y2", "pid",
    "label"}]}``, coordinates as text (``str(x)``, ``str(x + width)``), ``label`` 1 when that
    person speaks at the frame. Entities and chunks as :func:`asd_records_from_clips`."""
    out: dict[str, dict[str, list[dict[str, str | int]]]] = {}
    for clip in clips:
        speaking: dict[str, set[int]] = {}
        per_frame: dict[int, list[tuple[str, dict[str, str | int]]]] = defaultdict(list)
        tracks = []
        for person in clip.persons:
            if person.is_camera_wearer:
                continue
            frames_on = speaking.setdefault(person.person_id, set())
            for seg in person.voice_segments:
                frames_on.update(range(seg.start_frame, seg.end_frame + 1))
            for track in person.tracks:
                if "visual_anchor" in track.track_id:
                    continue
                tracks.append((person.person_id, track))
                for f, (x, y, w, h) in zip(
                    track.frames.tolist(), track.boxes_xywh_px.tolist(), strict=True
                ):
                    per_frame[int(f)].append(
                        (
                            person.person_id,
                            {
                                "x1": str(x),
                                "y1": str(y),
                                "x2": str(x + w),
                                "y2": str(y + h),
                                "pid": int(person.person_id)
                                if person.person_id.isdigit()
                                else person.person_id,
                                "label": int(f in frames_on),
                            },
                        )
                    )
        for pid, track in tracks:
            frames = track.frames.tolist()
            for i, start in enumerate(range(0, frames[-1] - frames[0] + 1, CHUNK_BOXES)):
                part = frames[start : start + CHUNK_BOXES]
                if not part:
                    continue
                out[f"{clip.clip_uid}:{track.track_id}:{i}"] = {
                    str(f): [box for owner, box in per_frame[int(f)] if owner != pid] for f in part
                }
    return out


def ava_rows_from_track_results(
    records: Sequence[AsdRecord], frame_size_px: tuple[int, int], fps: float = EGO4D_FPS
) -> pd.DataFrame:
    """AVA-ActiveSpeaker rows of tracker faces (:func:`asd_records_from_track_results`):
    ``video_id`` the record's video, ``frame_timestamp = frameNumber / fps``, boxes divided
    by ``(width, height)`` and clipped to [0, 1], label ``NOT_SPEAKING`` (unknown: these rows
    are to be scored, not evaluated), ``entity_id`` the record's ``video:pid:count``."""
    w, h = float(frame_size_px[0]), float(frame_size_px[1])
    rows = []
    for rec in records:
        video = rec.entity.rsplit(":", 2)[0]
        for box in rec.boxes:
            xyxy = np.clip(
                np.array([box["x1"] / w, box["y1"] / h, box["x2"] / w, box["y2"] / h]), 0, 1
            )
            rows.append(
                {
                    "video_id": video,
                    "frame_timestamp": int(box["frameNumber"]) / fps,
                    "entity_box_x1": xyxy[0],
                    "entity_box_y1": xyxy[1],
                    "entity_box_x2": xyxy[2],
                    "entity_box_y2": xyxy[3],
                    "label": "NOT_SPEAKING",
                    "entity_id": rec.entity,
                }
            )
    return pd.DataFrame(rows, columns=list(GROUNDTRUTH_COLUMNS))


@dataclass
class AsdConversion:
    """What :func:`convert_ego4d_asd` wrote: the seed layout's CSV, the number of records
    (CSV rows) and chunk files, and the AVA-style CSV with its row count."""

    seed_csv: Path
    num_records: int
    num_chunks: int
    ava_csv: Path
    num_ava_rows: int
    missing_track_results: list[str] = field(default_factory=list)


def _frame_size(clip_uid: str, videos_dir: Path | None, frame_size_px: tuple[int, int] | None):
    if frame_size_px is not None:
        return frame_size_px
    from socialav.io.media import probe_video

    if videos_dir is None:
        raise ValueError("give --videos (to read each clip's frame size) or --frame-size WxH")
    path = videos_dir / f"{clip_uid}.mp4"
    if not path.is_file():
        raise FileNotFoundError(
            f"clip {clip_uid!r}: expected {path} to read its frame size (or give --frame-size)"
        )
    info = probe_video(path)
    return info.width_px, info.height_px


def convert_ego4d_asd(
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "val",
    *,
    track_results: str | os.PathLike[str] | None = None,
    clip_list: str | os.PathLike[str] | None = None,
    videos_dir: str | os.PathLike[str] | None = None,
    frame_size_px: tuple[int, int] | None = None,
) -> AsdConversion:
    """Seed 002's annotation conversion of one split, plus the AVA-style CSV.

    Writes (all files atomically)::

        OUT/ego4d/csv/active_speaker_<split>.csv, ego4d/bbox/<entity>.json,
        ego4d/bboxes_per_track/<entity>.json      annotated faces (the seed's data/ego4d)
        OUT/infer/...                             the same from --track-results (data/infer)
        OUT/ava/<split>_orig.csv                  AVA-ActiveSpeaker ground truth (header),
                                                  for socialav data prepare / score / evaluate

    Args:
        annotations: ``av_<split>.json``.
        track_results: a folder of ``<clip_uid>.txt`` tracker files (TalkNet+DeiT's
            ``data/track_results``); their faces replace the annotated ones (labels unknown).
        clip_list: official split list (``data/split/<split>.list``); default every clip.
        videos_dir: ``<clip_uid>.mp4``, read for the frame size; or ``frame_size_px``.

    Raises:
        FileNotFoundError, Ego4dAnnotationError, TrackResultError, ValueError.
    """
    from socialav.data.ego4d.annotations import load_av_annotations, read_split_list
    from socialav.io.atomic import atomic_write
    from socialav.io.ava_csv import write_ava_csv_frame

    out = Path(out)
    clip_uids = read_split_list(clip_list) if clip_list is not None else None
    clips = load_av_annotations(annotations, clip_uids=clip_uids, outside="clip")
    videos = None if videos_dir is None else Path(videos_dir)
    if track_results is None:
        records, chunks = asd_records_from_clips(clips)
        seed_csv = write_asd_layout(records, out / "ego4d", split, chunks)
        for entity, boxes in asd_context_boxes(clips).items():
            with atomic_write(out / "ego4d" / "bboxes_per_track" / f"{entity}.json") as fh:
                json.dump(boxes, fh)
        sizes = {c.clip_uid: _frame_size(c.clip_uid, videos, frame_size_px) for c in clips}
        table = ava_groundtruth_from_clips(clips, sizes)
        missing: list[str] = []
    else:
        folder = Path(track_results)
        if not folder.is_dir():
            raise FileNotFoundError(f"--track-results {folder} is not a folder")
        records, tables, missing = [], [], []
        for clip in clips:
            path = folder / f"{clip.clip_uid}.txt"
            if not path.is_file():
                missing.append(clip.clip_uid)
                continue
            mine = asd_records_from_track_results(read_track_results(path), clip.clip_uid)
            records.extend(mine)
            size = _frame_size(clip.clip_uid, videos, frame_size_px)
            tables.append(ava_rows_from_track_results(mine, size))
        chunks = records
        seed_csv = write_asd_layout(records, out / "infer", split)
        table = (
            pd.concat(tables, ignore_index=True)
            if tables
            else pd.DataFrame(columns=list(GROUNDTRUTH_COLUMNS))
        )
    ava_csv = out / "ava" / f"{split}_orig.csv"
    count = write_ava_csv_frame(table, ava_csv, "groundtruth")
    return AsdConversion(seed_csv, len(records), len(chunks), ava_csv, count, missing)
