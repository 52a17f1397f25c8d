"""The Talking-to-Me "course" format of seed 000 (DLCV final project, Ego4D TTM on Kaggle).

Per video ``<hash>`` (the video file stem), two CSV files with a header line:

- ``<hash>_seg.csv``: ``person_id,start_frame,end_frame[,ttm]`` -- one talking segment per
  row, inclusive frame span at 30 fps; ``ttm`` (0/1) is present in the training files only;
- ``<hash>_bbox.csv``: ``person_id,frame_id,x1,y1,x2,y2`` -- the person's face box in pixels
  at that frame, all four coordinates ``-1`` when the face is not visible.

Their preprocessing turns each segment into one sample ``<hash>_<person_id>_<start>_<end>``
(``.npz`` with ``image``, ``audio``, ``ttm``, ``is_empty``): the face crop of every frame
(zeros where there is no face), the segment's audio and a per-frame ``is_empty`` mask. The
project's code is not among the stored sources; the layout above is the one its README
describes, and the sample is built with the same crop and audio rules as the Ego4D baseline
(:func:`socialav.vision.crops.crop_face_box`, :func:`~socialav.audio.features.
ttm_audio_span`).

:func:`read_course_video` validates both files and raises :class:`CourseFormatError` naming
the file, row and column and what was expected.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from socialav.audio.features import ttm_audio_span
from socialav.data.ego4d.samples import FrameSource
from socialav.io.text import read_text
from socialav.types import EGO4D_FPS
from socialav.vision.crops import crop_face_box

__all__ = [
    "BBOX_COLUMNS",
    "SEG_COLUMNS",
    "CourseFormatError",
    "CourseSegment",
    "course_sample",
    "course_sample_name",
    "find_course_videos",
    "read_course_video",
    "write_course_sample",
]

SEG_COLUMNS: tuple[str, ...] = ("person_id", "start_frame", "end_frame")
BBOX_COLUMNS: tuple[str, ...] = ("person_id", "frame_id", "x1", "y1", "x2", "y2")


class CourseFormatError(ValueError):
    """A ``_seg.csv`` or ``_bbox.csv`` file does not follow the course format."""


@dataclass
class CourseSegment:
    """One talking segment of one person, with its per-frame face boxes.

    Attributes:
        video_id: the ``<hash>``.
        person_id: as written in the files (text).
        start_frame, end_frame: inclusive span (30 fps).
        ttm: 0/1 label, ``None`` for test files.
        frames: ``(T,)`` int64 ``start_frame .. end_frame``.
        boxes_xyxy_px: ``(T, 4)`` float64 boxes, NaN where there is no face.
        is_empty: ``(T,)`` bool, True where there is no face (``-1`` box or no row).
    """

    video_id: str
    person_id: str
    start_frame: int
    end_frame: int
    ttm: int | None
    frames: np.ndarray
    boxes_xyxy_px: np.ndarray
    is_empty: np.ndarray


def _read(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"course file not found: {path}")
    text = read_text(path, "course CSV", error=CourseFormatError)
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise CourseFormatError(
            f"{path}: missing column(s) {missing}; expected a header with "
            f"{', '.join(required + tuple(f'[{o}]' for o in optional))}, found "
            f"{list(table.columns)}"
        )
    return table


def _numeric(table: pd.DataFrame, column: str, path: Path, integer: bool) -> np.ndarray:
    text = table[column].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() | (integer & (values != np.round(values)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "an integer" if integer else "a number"
        raise CourseFormatError(
            f"{path}: row {row + 2} (line), column {column!r}: expected {kind}, found "
            f"{text.iloc[row]!r}"
        )
    return values.to_numpy(np.int64 if integer else np.float64)


def read_course_video(
    seg_csv: str | os.PathLike[str],
    bbox_csv: str | os.PathLike[str],
    *,
    video_id: str | None = None,
    frame_size_px: tuple[int, int] | None = None,
) -> list[CourseSegment]:
    """Read one video's ``_seg.csv`` and ``_bbox.csv`` into per-segment records.

    Args:
        seg_csv, bbox_csv: the two files.
        video_id: defaults to the ``_seg.csv`` name without ``_seg.csv``.
        frame_size_px: ``(width, height)``; when given, boxes must lie inside the frame.

    Returns:
        Segments in file order.

    Raises:
        FileNotFoundError: a file is missing.
        CourseFormatError: missing columns, non-numeric values, ``end_frame < start_frame``
            (empty segment), ``ttm`` not 0/1, a box that is neither all ``-1`` nor
            ``x1 < x2, y1 < y2``, a box outside the frame, or two rows for one
            (person, frame). Messages give file, line, column and the values found.
    """
    seg_path, bbox_path = Path(seg_csv), Path(bbox_csv)
    vid = video_id or seg_path.name.removesuffix("_seg.csv")
    segs = _read(seg_path, SEG_COLUMNS, ("ttm",))
    boxes = _read(bbox_path, BBOX_COLUMNS)
    starts = _numeric(segs, "start_frame", seg_path, True)
    ends = _numeric(segs, "end_frame", seg_path, True)
    ttm = _numeric(segs, "ttm", seg_path, True) if "ttm" in segs.columns else None
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if s < 0 or e < s:
            raise CourseFormatError(
                f"{seg_path}: line {i + 2}: empty or negative segment: expected "
                f"0 <= start_frame <= end_frame, found start_frame={s}, end_frame={e}"
            )
        if ttm is not None and ttm[i] not in (0, 1):
            raise CourseFormatError(f"{seg_path}: line {i + 2}: ttm must be 0 or 1, found {ttm[i]}")
    frame_ids = _numeric(boxes, "frame_id", bbox_path, True)
    xyxy = np.stack([_numeric(boxes, c, bbox_path, False) for c in BBOX_COLUMNS[2:]], axis=1)
    persons = boxes["person_id"].astype(str).str.strip().to_numpy()
    lookup: dict[tuple[str, int], np.ndarray] = {}
    for i, (pid, fid, box) in enumerate(zip(persons, frame_ids, xyxy, strict=True)):
        line = i + 2
        if (pid, int(fid)) in lookup:
            raise CourseFormatError(
                f"{bbox_path}: line {line}: second row for person_id={pid!r} frame_id={fid}"
            )
        if np.all(box == -1):
            lookup[(pid, int(fid))] = np.full(4, np.nan)
            continue
        if not (box[0] < box[2] and box[1] < box[3]) or np.any(box < 0):
            raise CourseFormatError(
                f"{bbox_path}: line {line} (person_id={pid!r}, frame_id={fid}): expected a box "
                f"with 0 <= x1 < x2 and 0 <= y1 < y2, or all four -1 (no face), found "
                f"{box.tolist()}"
            )
        if frame_size_px is not None and (box[2] > frame_size_px[0] or box[3] > frame_size_px[1]):
            raise CourseFormatError(
                f"{bbox_path}: line {line} (person_id={pid!r}, frame_id={fid}): box "
                f"{box.tolist()} extends outside the {frame_size_px[0]}x{frame_size_px[1]} frame"
            )
        lookup[(pid, int(fid))] = box
    out = []
    seg_persons = segs["person_id"].astype(str).str.strip().to_numpy()
    for i, pid in enumerate(seg_persons):
        frames = np.arange(starts[i], ends[i] + 1, dtype=np.int64)
        seg_boxes = np.stack([lookup.get((pid, int(f)), np.full(4, np.nan)) for f in frames])
        out.append(
            CourseSegment(
                vid,
                pid,
                int(starts[i]),
                int(ends[i]),
                None if ttm is None else int(ttm[i]),
                frames,
                seg_boxes,
                np.isnan(seg_boxes[:, 0]),
            )
        )
    return out


def find_course_videos(
    seg_dir: str | os.PathLike[str], bbox_dir: str | os.PathLike[str]
) -> dict[str, tuple[Path, Path]]:
    """``<hash> -> (seg_csv, bbox_csv)`` for every ``<hash>_seg.csv`` in ``seg_dir``.

    Raises:
        CourseFormatError: a ``_seg.csv`` without its ``_bbox.csv`` (or the reverse).
    """
    segs = {p.name.removesuffix("_seg.csv"): p for p in Path(seg_dir).glob("*_seg.csv")}
    bbs = {p.name.removesuffix("_bbox.csv"): p for p in Path(bbox_dir).glob("*_bbox.csv")}
    if set(segs) != set(bbs):
        raise CourseFormatError(
            f"unpaired course files: without _bbox.csv {sorted(set(segs) - set(bbs))[:5]}, "
            f"without _seg.csv {sorted(set(bbs) - set(segs))[:5]}"
        )
    return {h: (segs[h], bbs[h]) for h in sorted(segs)}


def course_sample_name(segment: CourseSegment) -> str:
    """``<hash>_<person_id>_<start>_<end>`` (the seed's npz file stem)."""
    return f"{segment.video_id}_{segment.person_id}_{segment.start_frame}_{segment.end_frame}"


def course_sample(
    segment: CourseSegment,
    frames: FrameSource,
    audio: np.ndarray,
    sample_rate: int = 16000,
    *,
    size_px: int = 224,
    fps: float = EGO4D_FPS,
) -> dict[str, np.ndarray | int]:
    """The seed's per-segment sample.

    Returns:
        ``{"image": (T, size_px, size_px, 3) uint8 RGB face crops (zeros where empty),
        "audio": (N,) float32 audio of the span (:func:`ttm_audio_span`), "ttm": label or -1,
        "is_empty": (T,) bool}``. A frame with a box but no decodable image counts as empty.
    """
    images = np.zeros((len(segment.frames), size_px, size_px, 3), dtype=np.uint8)
    empty = segment.is_empty.copy()
    for i, f in enumerate(segment.frames.tolist()):
        if empty[i]:
            continue
        image = frames.frame(segment.video_id, f)
        if image is None:
            empty[i] = True
            continue
        images[i] = crop_face_box(image, segment.boxes_xyxy_px[i], size_px)
    onset, offset = ttm_audio_span(segment.start_frame, segment.end_frame, sample_rate, fps)
    wave = np.asarray(audio)[onset:offset]
    if wave.dtype == np.int16:
        wave = wave.astype(np.float32) / 32768.0
    return {
        "image": images,
        "audio": wave.astype(np.float32),
        "ttm": -1 if segment.ttm is None else segment.ttm,
        "is_empty": empty,
    }


def write_course_sample(sample: Mapping[str, object], path: str | os.PathLike[str]) -> Path:
    """Save a :func:`course_sample` as ``.npz`` (keys ``image, audio, ttm, is_empty``), atomically."""
    from socialav.io.atomic import atomic_output_path

    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle, **{k: np.asarray(sample[k]) for k in ("image", "audio", "ttm", "is_empty")}
            )
    return Path(path)
