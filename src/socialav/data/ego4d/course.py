"""The Talking-to-Me "course" format of seed 000 (DLCV final project, Ego4D TTM on Kaggle).

Per video ``<hash>`` (the video file stem), two CSV files with a header line:

- ``<hash>_seg.csv``: ``person_id,start_frame,end_frame[,ttm]`` -- one talking segment per
  row, inclusive frame span at 30 fps; ``ttm`` (0/1) is present in the training files only;
- ``<hash>_bbox.csv``: ``person_id,frame_id,x1,y1,x2,y2`` -- the person's face box in pixels
  at that frame, all four coordinates ``-1`` when the face is not visible.

The project's preprocessing (Ethan07902050/ttm: ``preprocess_video2wav.py``,
``preprocess_train2npz.py``, ``preprocess_test2npz.py``, run by ``preprocess.sh`` /
``preprocess_only_test.sh``) writes, under the output folder::

    dlcvchallenge1_audios/<hash>.wav           the videos' audio
    dlcvchallenge1_train_data/<i>.npz          one per training segment, i = 0, 1, ...
    dlcvchallenge1_test_data/<hash>_<person_id>_<start>_<end>.npz

Each sample holds, for a segment of ``T`` frames (:func:`course_sample`, as the seed's
``TTM_ROI_Dataset.__getitem__`` and ``TTM_Inference_Dataset.__getitem__``):

- ``image``: ``(K, 3, 96, 96)`` float32, one crop per frame with a face (``K = T -
  sum(is_empty)``; ``(0,)`` when there is none): ``PIL.Image.crop((int(x1), int(y1),
  int(x2), int(y2)))`` (zeros outside the frame), ``resize((96, 96), BILINEAR)``,
  ``ToTensor``, ``Normalize(0.5, 0.5)`` -- of the frame as OpenCV decodes it, so the channels
  are in **B, G, R** order (the seed hands ``cv2`` frames to ``ToPILImage``);
- ``audio``: ``(N,)`` float32 in [-1, 1], 16 kHz mono samples ``int(start / 30 * 16000)`` to
  ``int(end / 30 * 16000)`` (empty for a one-frame segment);
- ``ttm``: int64 label (train; the seed's test script writes no ``ttm``, its README lists it:
  we write ``-1``);
- ``is_empty``: ``(T,)`` int64, 1 where the box is ``-1`` (no face).

Frames are the clip's 30 fps timeline (the seed seeks ``CAP_PROP_POS_FRAMES``; course videos
are 30 fps). Where the seed would crash we mark the frame empty instead: a frame with no
``_bbox.csv`` row, or one past the end of the video. :func:`prepare_course` writes the whole
layout with one decoding pass per video (the seed seeks and decodes again for every segment),
in parallel over videos, resumably (samples already written are kept).

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

__all__ = [
    "BBOX_COLUMNS",
    "COURSE_IMAGE_SIZE_PX",
    "SEG_COLUMNS",
    "CourseFormatError",
    "CourseSegment",
    "assemble_course_sample",
    "course_crop",
    "course_sample",
    "course_sample_name",
    "find_course_videos",
    "read_course_video",
    "write_course_sample",
]

SEG_COLUMNS: tuple[str, ...] = ("person_id", "start_frame", "end_frame")
#: Side of the seed's face crops (``image_H = image_W = 96``).
COURSE_IMAGE_SIZE_PX = 96
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


def course_crop(image_rgb: np.ndarray, box_xyxy_px: np.ndarray, size_px: int = 96) -> np.ndarray:
    """One face crop of the seed: ``(3, S, S)`` float32 in [-1, 1], channels B, G, R.

    ``PIL.Image.fromarray(bgr).crop((int(x1), int(y1), int(x2), int(y2)))`` (PIL fills what
    lies outside the frame with zeros), ``resize((S, S), BILINEAR)`` (torchvision's
    ``Resize`` on a PIL image), ``/ 255``, ``(x - 0.5) / 0.5``. ``image_rgb`` is ``(H, W, 3)``
    uint8 RGB; the seed crops OpenCV's BGR frames, hence the channel order.
    """
    from PIL import Image

    image = np.asarray(image_rgb)
    x1, y1, x2, y2 = (int(v) for v in box_xyxy_px)
    # PIL's crop of the box, zeros where it leaves the frame, cut before the channel swap
    region = np.zeros((max(y2 - y1, 0), max(x2 - x1, 0), 3), dtype=np.uint8)
    ya, yb = max(y1, 0), min(y2, image.shape[0])
    xa, xb = max(x1, 0), min(x2, image.shape[1])
    if ya < yb and xa < xb:
        region[ya - y1 : yb - y1, xa - x1 : xb - x1] = image[ya:yb, xa:xb]
    bgr = np.ascontiguousarray(region[..., ::-1])
    crop = Image.fromarray(bgr).resize((size_px, size_px), Image.BILINEAR)
    pixels = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (pixels - 0.5) / 0.5


def assemble_course_sample(
    segment: CourseSegment,
    crops: Mapping[int, np.ndarray],
    audio: np.ndarray,
    sample_rate: int = 16000,
    fps: float = EGO4D_FPS,
) -> dict[str, np.ndarray]:
    """The sample of ``segment`` from its crops (``position in the segment -> course_crop``,
    positions without a crop are empty) and the clip's ``(N,)`` audio (int16 or float)."""
    num_frames = len(segment.frames)
    is_empty = np.ones(num_frames, dtype=np.int64)
    positions = sorted(int(k) for k in crops)
    is_empty[positions] = 0
    if positions:
        image = np.stack([crops[k] for k in positions]).astype(np.float32)
    else:
        image = np.zeros((0,), dtype=np.float32)
    wave = np.zeros(0, dtype=np.float32)
    if num_frames > 1:
        onset, offset = ttm_audio_span(segment.start_frame, segment.end_frame, sample_rate, fps)
        wave = np.asarray(audio)[onset:offset]
        wave = wave.astype(np.float32) / 32768.0 if wave.dtype == np.int16 else wave
    return {
        "image": image,
        "audio": np.asarray(wave, dtype=np.float32),
        "ttm": np.asarray(-1 if segment.ttm is None else segment.ttm, dtype=np.int64),
        "is_empty": is_empty,
    }


def course_sample(
    segment: CourseSegment,
    frames: FrameSource,
    audio: np.ndarray,
    sample_rate: int = 16000,
    *,
    size_px: int = COURSE_IMAGE_SIZE_PX,
    fps: float = EGO4D_FPS,
) -> dict[str, np.ndarray]:
    """The seed's per-segment sample (module docstring), from random-access frames.

    Args:
        segment: from :func:`read_course_video`.
        frames: RGB frames of the clip on its 30 fps timeline.
        audio: ``(N,)`` 16 kHz mono audio of the clip, int16 or float in [-1, 1].

    Returns:
        ``{"image": (K, 3, S, S) float32 (BGR), "audio": (N,) float32, "ttm": int64 (-1
        without label), "is_empty": (T,) int64}``. A frame with a box but no decodable image
        counts as empty.
    """
    crops: dict[int, np.ndarray] = {}
    for i, f in enumerate(segment.frames.tolist()):
        if segment.is_empty[i]:
            continue
        image = frames.frame(segment.video_id, f)
        if image is not None:
            crops[i] = course_crop(image, segment.boxes_xyxy_px[i], size_px)
    return assemble_course_sample(segment, crops, audio, sample_rate, fps)


def write_course_sample(sample: Mapping[str, object], path: str | os.PathLike[str]) -> Path:
    """Save a :func:`course_sample` as ``.npz`` (keys ``image, audio, ttm, is_empty``), atomically."""
    from socialav.io.atomic import atomic_output_path

    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle, **{k: np.asarray(sample[k]) for k in ("image", "audio", "ttm", "is_empty")}
            )
    return Path(path)
