"""Ego4D audio-visual annotations (``av_{train,val,test_unannotated}.json``): typed records.

Layout (Ego4D docs, "Social Interactions" / "Audio-Visual Diarization - av_<set>.json"; the
fields read here are the ones the social benchmarks use)::

    {"videos": [{"video_uid": ..., "clips": [{
        "clip_uid": "...",
        "persons": [{"person_id": "camera_wearer" | "1" | ..., "tracking_paths": [
            {"track_id": "...", "track": [{"frame": 12, "x": 10.5, "y": 20.0,
                                          "width": 80.0, "height": 96.0}, ...]}],
                     "voice_segments": [{"start_frame": ..., "end_frame": ...}]}],
        "social_segments_talking": [{"person": "'2'" | "2" | null, "target": "0" | null,
                                     "start_frame": 0, "end_frame": 60}],
        "social_segments_looking": [{"person": "2", "start_frame": 3, "end_frame": 40}]}]}]}

Frame numbers are indices of the clip at 30 fps (:data:`EGO4D_FPS`); ``start_frame`` and
``end_frame`` are inclusive (the baselines take ``range(start_frame, end_frame + 1)``). Boxes
are ``x, y`` (top-left corner), ``width, height`` in pixels of the clip. Person 0 -- the
first entry of ``persons``, ``person_id`` ``"camera_wearer"`` or ``"0"`` -- is the camera
wearer; it has no face tracks of its own.

Person ids are written inconsistently in the released files (``"2"``, ``"'2'"``); the
baselines compare them after removing the quotes (``int(person.replace("'", ""))`` in
``scripts/get_ttm_result.py`` of EGO4D/social-interactions and ``data/annotation.py`` of
Ego4D-QuAVF-TTM-CVPR23). :func:`normalize_person_id` does the same.

Labels, as the baselines derive them:

- Talking-to-Me: a talking segment with a non-null ``target`` is "talking to me" (label 1),
  ``target`` null is label 0; segments with ``person`` null are dropped
  (``get_ttm_result.py``).
- Looking-at-Me: a face of ``person`` at a frame in ``[start_frame, end_frame]`` of one of
  its looking segments is label 1, every other tracked face frame is label 0
  (``dataset/data_loader.py``, branch ``lam``).

:func:`load_av_annotations` validates everything it reads and raises
:class:`Ego4dAnnotationError` naming the clip, person, track or segment and what was
expected; nothing is skipped silently.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from socialav.io.text import read_text
from socialav.types import EGO4D_FPS

logger = logging.getLogger(__name__)

__all__ = [
    "CAMERA_WEARER_IDS",
    "Ego4dAnnotationError",
    "Ego4dClip",
    "Ego4dPerson",
    "Ego4dTrack",
    "FrameSegment",
    "SocialSegment",
    "clips_by_uid",
    "interpolate_track",
    "load_av_annotations",
    "normalize_person_id",
    "read_split_list",
]

#: ``person_id`` values (after :func:`normalize_person_id`) that denote the camera wearer.
CAMERA_WEARER_IDS: frozenset[str] = frozenset({"0", "camera_wearer"})

OutsidePolicy = Literal["error", "clip"]


class Ego4dAnnotationError(ValueError):
    """An ``av_*.json`` file (or dict) does not have the expected structure or values.

    Attributes:
        location: where the problem is, e.g. ``videos[0].clips[1] (clip_uid='c1').persons[2]
            (person_id='2').tracking_paths[0].track[5]``.
    """

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location


def normalize_person_id(value: Any) -> str | None:
    """A person id as text without quotes (``"'2'"`` -> ``"2"``, ``3`` -> ``"3"``).

    Returns ``None`` for ``None``. Mirrors ``person.replace("'", "")`` of the baselines.
    """
    if value is None:
        return None
    return str(value).replace("'", "").strip()


@dataclass(frozen=True)
class FrameSegment:
    """An inclusive frame span ``[start_frame, end_frame]`` of a clip (30 fps)."""

    start_frame: int
    end_frame: int

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


@dataclass(frozen=True)
class SocialSegment:
    """One entry of ``social_segments_talking`` or ``social_segments_looking``.

    Attributes:
        index: position in the clip's list as read from the file (0-based).
        person: the person the segment is about (normalised id) or ``None``.
        target: who is addressed (normalised id) or ``None`` (not addressed to anyone
            annotated; for TTM label 0).
        start_frame, end_frame: inclusive frame span at 30 fps.
        is_at_me: the file's ``is_at_me`` flag when present, else ``None``.
    """

    index: int
    person: str | None
    target: str | None
    start_frame: int
    end_frame: int
    is_at_me: bool | None = None

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    @property
    def talking_to_me(self) -> bool:
        """TTM label of the baselines: ``target`` is not null (``get_ttm_result.py``)."""
        return self.target is not None


@dataclass
class Ego4dTrack:
    """One face track of a person.

    Attributes:
        track_id: the file's ``track_id``.
        frames: ``(T,)`` int64 strictly increasing frame indices (gaps allowed).
        boxes_xywh_px: ``(T, 4)`` float64 ``x, y, width, height`` in pixels.
    """

    track_id: str
    frames: np.ndarray
    boxes_xywh_px: np.ndarray

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes_xywh_px = np.asarray(self.boxes_xywh_px, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes_xywh_px):
            raise ValueError(
                f"track {self.track_id!r}: frames and boxes_xywh_px must have the same length, "
                f"but got {len(self.frames)} and {len(self.boxes_xywh_px)}"
            )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def boxes_xyxy_px(self) -> np.ndarray:
        """``(T, 4)`` float64 ``x1, y1, x2, y2`` = ``x, y, x + width, y + height``."""
        xywh = self.boxes_xywh_px
        return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


@dataclass
class Ego4dPerson:
    """One entry of ``persons``.

    Attributes:
        person_id: normalised id (``"camera_wearer"``, ``"0"``, ``"1"``, ...).
        is_camera_wearer: ``True`` for the camera wearer (the file's ``camera_wearer`` flag,
            else ``person_id`` in :data:`CAMERA_WEARER_IDS`).
        tracks: the person's face tracks (``tracking_paths``).
        voice_segments: when the person speaks (used by the active-speaker conversion).
    """

    person_id: str
    is_camera_wearer: bool
    tracks: list[Ego4dTrack] = field(default_factory=list)
    voice_segments: list[FrameSegment] = field(default_factory=list)


@dataclass
class Ego4dClip:
    """One clip of ``videos[].clips[]``.

    Attributes:
        clip_uid: the clip id (also the video file stem of extracted clips).
        video_uid: the parent video id (``""`` when absent).
        persons: ``persons`` in file order.
        talking: ``social_segments_talking`` in file order.
        looking: ``social_segments_looking`` in file order.
        fps: frame rate of the frame indices (:data:`EGO4D_FPS`).
    """

    clip_uid: str
    video_uid: str
    persons: list[Ego4dPerson]
    talking: list[SocialSegment]
    looking: list[SocialSegment]
    fps: float = EGO4D_FPS

    def person(self, person_id: str) -> Ego4dPerson:
        """The person with this (normalised) id; ``KeyError`` naming the known ids."""
        for person in self.persons:
            if person.person_id == person_id:
                return person
        known = [p.person_id for p in self.persons]
        raise KeyError(f"clip {self.clip_uid!r} has no person {person_id!r}; persons: {known}")

    def person_boxes_xyxy(self, person_id: str) -> dict[int, np.ndarray]:
        """``frame -> (4,) x1, y1, x2, y2`` over all tracks of a person (later tracks win).

        The baselines key face boxes on ``str(frame) + ":" + person`` the same way
        (``get_bbox`` in ``dataset/data_loader.py``, branch ``ttm``).
        """
        boxes: dict[int, np.ndarray] = {}
        for track in self.person(person_id).tracks:
            for frame, box in zip(track.frames.tolist(), track.boxes_xyxy_px, strict=True):
                boxes[int(frame)] = box
        return boxes

    def looking_frames(self, person_id: str) -> set[int]:
        """Frames at which ``person_id`` looks at the camera wearer (LAM positives)."""
        frames: set[int] = set()
        for seg in self.looking:
            if seg.person == person_id:
                frames.update(range(seg.start_frame, seg.end_frame + 1))
        return frames


def interpolate_track(track: Ego4dTrack, clip_to_origin: bool = True) -> Ego4dTrack:
    """Fill the gaps of a track by linear interpolation of the box corners.

    As ``check()`` of the LAM baseline (``dataset/data_loader.py``, EGO4D/social-interactions,
    branch ``lam``): corners ``x1 = max(x, 0)``, ``y1 = max(y, 0)``, ``x2 = x + width``,
    ``y2 = y + height`` are interpolated with ``scipy.interpolate.interp1d`` (linear) at every
    frame from the first to the last. (That function also drops boxes at frame 0; we keep
    them: frame 0 is a valid frame.)

    Args:
        track: a validated track (at least one box, strictly increasing frames).
        clip_to_origin: clip ``x, y`` at 0 first, as the baseline.

    Returns:
        A new track with consecutive frames; ``boxes_xywh_px`` from the interpolated corners.
    """
    xyxy = track.boxes_xyxy_px.copy()
    if clip_to_origin:
        xyxy[:, 0] = np.maximum(track.boxes_xywh_px[:, 0], 0.0)
        xyxy[:, 1] = np.maximum(track.boxes_xywh_px[:, 1], 0.0)
    frames = track.frames
    full = np.arange(frames[0], frames[-1] + 1, dtype=np.int64)
    if len(full) != len(frames):
        xyxy = np.stack([np.interp(full, frames, xyxy[:, k]) for k in range(4)], axis=1)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return Ego4dTrack(track.track_id, full, xywh)


# ----------------------------------------------------------------------------- parsing


def _require(obj: Mapping[str, Any], key: str, where: str, kinds: tuple[type, ...]) -> Any:
    if not isinstance(obj, Mapping):
        raise Ego4dAnnotationError(where, f"expected a JSON object, but found {type(obj).__name__}")
    if key not in obj:
        found = sorted(obj.keys())
        raise Ego4dAnnotationError(where, f"missing key {key!r} (keys found: {found})")
    value = obj[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise Ego4dAnnotationError(
            f"{where}.{key}", f"expected {names}, but found {type(value).__name__} ({value!r})"
        )
    return value


def _frame_index(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = _require(obj, key, where, (int, float))
    if not math.isfinite(value) or float(value) != int(value) or value < 0:
        raise Ego4dAnnotationError(
            f"{where}.{key}", f"expected a non-negative integer frame index, but found {value!r}"
        )
    return int(value)


def _parse_segment(obj: Any, index: int, where: str, kind: str) -> SocialSegment | FrameSegment:
    start = _frame_index(obj, "start_frame", where)
    end = _frame_index(obj, "end_frame", where)
    if end < start:
        raise Ego4dAnnotationError(
            where,
            f"empty segment: expected start_frame <= end_frame, but found start_frame={start}, "
            f"end_frame={end}",
        )
    if kind == "voice":
        return FrameSegment(start, end)
    if "person" not in obj:
        raise Ego4dAnnotationError(where, f"missing key 'person' (keys found: {sorted(obj)})")
    target = None
    if kind == "talking":
        if "target" not in obj:
            raise Ego4dAnnotationError(
                where, f"missing key 'target' (keys found: {sorted(obj)}); null means not to me"
            )
        target = normalize_person_id(obj["target"])
    is_at_me = obj.get("is_at_me")
    return SocialSegment(
        index=index,
        person=normalize_person_id(obj["person"]),
        target=target,
        start_frame=start,
        end_frame=end,
        is_at_me=None if is_at_me is None else bool(is_at_me),
    )


def _parse_track(
    obj: Any,
    where: str,
    frame_size_px: tuple[int, int] | None,
    outside: OutsidePolicy,
    tolerance_px: float,
) -> Ego4dTrack:
    track_id = str(_require(obj, "track_id", where, (str, int)))
    where = f"{where} (track_id={track_id!r})"
    boxes = _require(obj, "track", where, (list,))
    if not boxes:
        raise Ego4dAnnotationError(f"{where}.track", "expected at least one box, but it is empty")
    frames = np.empty(len(boxes), dtype=np.int64)
    xywh = np.empty((len(boxes), 4), dtype=np.float64)
    for k, box in enumerate(boxes):
        at = f"{where}.track[{k}]"
        frames[k] = _frame_index(box, "frame", at)
        for j, key in enumerate(("x", "y", "width", "height")):
            value = _require(box, key, at, (int, float))
            if not math.isfinite(value):
                raise Ego4dAnnotationError(f"{at}.{key}", f"expected a finite number, got {value}")
            xywh[k, j] = value
        if xywh[k, 2] <= 0 or xywh[k, 3] <= 0:
            raise Ego4dAnnotationError(
                at,
                f"expected a box with positive width and height, but found width={xywh[k, 2]}, "
                f"height={xywh[k, 3]} at frame {frames[k]}",
            )
        if frame_size_px is not None:
            width_px, height_px = frame_size_px
            x1, y1 = xywh[k, 0], xywh[k, 1]
            x2, y2 = x1 + xywh[k, 2], y1 + xywh[k, 3]
            fully_outside = x2 <= 0 or y2 <= 0 or x1 >= width_px or y1 >= height_px
            partly_outside = (
                x1 < -tolerance_px
                or y1 < -tolerance_px
                or x2 > width_px + tolerance_px
                or y2 > height_px + tolerance_px
            )
            if fully_outside or (partly_outside and outside == "error"):
                what = "entirely" if fully_outside else "partly"
                raise Ego4dAnnotationError(
                    at,
                    f"box {what} outside the {width_px}x{height_px} frame at frame {frames[k]}: "
                    f"expected 0 <= x1 < x2 <= {width_px} and 0 <= y1 < y2 <= {height_px} "
                    f"(tolerance {tolerance_px} px), but found x1={x1:g}, y1={y1:g}, "
                    f"x2={x2:g}, y2={y2:g}"
                    + ("" if fully_outside else "; pass outside='clip' to clip such boxes"),
                )
            if partly_outside:  # outside == "clip"
                cx1, cy1 = max(x1, 0.0), max(y1, 0.0)
                cx2, cy2 = min(x2, float(width_px)), min(y2, float(height_px))
                xywh[k] = (cx1, cy1, cx2 - cx1, cy2 - cy1)
    order = np.diff(frames)
    if np.any(order <= 0):
        k = int(np.flatnonzero(order <= 0)[0])
        raise Ego4dAnnotationError(
            f"{where}.track[{k + 1}]",
            f"expected strictly increasing frames, but frame {frames[k + 1]} follows "
            f"frame {frames[k]} (duplicate or unsorted boxes)",
        )
    return Ego4dTrack(track_id, frames, xywh)


def _parse_clip(
    obj: Any,
    where: str,
    frame_sizes: Mapping[str, tuple[int, int]] | tuple[int, int] | None,
    outside: OutsidePolicy,
    tolerance_px: float,
) -> Ego4dClip:
    clip_uid = str(_require(obj, "clip_uid", where, (str,)))
    where = f"{where} (clip_uid={clip_uid!r})"
    if isinstance(frame_sizes, Mapping):
        size = frame_sizes.get(clip_uid)
    else:
        size = frame_sizes
    persons_raw = _require(obj, "persons", where, (list,))
    persons: list[Ego4dPerson] = []
    seen: set[str] = set()
    for i, person_obj in enumerate(persons_raw):
        at = f"{where}.persons[{i}]"
        pid = normalize_person_id(_require(person_obj, "person_id", at, (str, int)))
        assert pid is not None
        if pid in seen:
            raise Ego4dAnnotationError(at, f"duplicate person_id {pid!r} in this clip")
        seen.add(pid)
        at = f"{at} (person_id={pid!r})"
        wearer_flag = person_obj.get("camera_wearer")
        is_wearer = bool(wearer_flag) if wearer_flag is not None else pid in CAMERA_WEARER_IDS
        paths = person_obj.get("tracking_paths", [])
        if not isinstance(paths, list):
            raise Ego4dAnnotationError(
                f"{at}.tracking_paths", f"expected a list, but found {type(paths).__name__}"
            )
        tracks = [
            _parse_track(path, f"{at}.tracking_paths[{j}]", size, outside, tolerance_px)
            for j, path in enumerate(paths)
        ]
        voice_raw = person_obj.get("voice_segments", [])
        if not isinstance(voice_raw, list):
            raise Ego4dAnnotationError(
                f"{at}.voice_segments", f"expected a list, but found {type(voice_raw).__name__}"
            )
        voice = [
            _parse_segment(seg, j, f"{at}.voice_segments[{j}]", "voice")
            for j, seg in enumerate(voice_raw)
        ]
        persons.append(Ego4dPerson(pid, is_wearer, tracks, voice))  # type: ignore[arg-type]
    talking = [
        _parse_segment(seg, j, f"{where}.social_segments_talking[{j}]", "talking")
        for j, seg in enumerate(_require(obj, "social_segments_talking", where, (list,)))
    ]
    looking = [
        _parse_segment(seg, j, f"{where}.social_segments_looking[{j}]", "looking")
        for j, seg in enumerate(_require(obj, "social_segments_looking", where, (list,)))
    ]
    video_uid = str(obj.get("video_uid", ""))
    return Ego4dClip(clip_uid, video_uid, persons, talking, looking)  # type: ignore[arg-type]


def load_av_annotations(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    frame_size_px: Mapping[str, tuple[int, int]] | tuple[int, int] | None = None,
    outside: OutsidePolicy = "error",
    tolerance_px: float = 1.0,
    clip_uids: Iterable[str] | None = None,
) -> list[Ego4dClip]:
    """Read and validate an Ego4D ``av_*.json`` (path or already-parsed dict).

    Args:
        source: the JSON file or its parsed content.
        frame_size_px: ``(width_px, height_px)`` of every clip, or ``clip_uid -> (w, h)``;
            ``None`` skips the frame-boundary check (the JSON holds no frame size).
        outside: what to do with a box that extends past the frame by more than
            ``tolerance_px``: ``"error"`` (default) raises, ``"clip"`` clips it to the frame
            (the baselines clip ``x, y`` at 0 and let array slicing cut the rest). A box
            entirely outside the frame is always an error.
        tolerance_px: allowed overhang in pixels.
        clip_uids: keep only these clips (e.g. an official split list); every id must exist.

    Returns:
        The clips, in file order (videos then clips).

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        Ego4dAnnotationError: invalid JSON, a missing key, a wrong type, a non-positive or
            out-of-frame box, unsorted/duplicate track frames, an empty track, a segment with
            ``end_frame < start_frame``, a duplicate ``clip_uid`` or ``person_id``, or a
            requested clip that is absent. The message names the location
            (``videos[i].clips[j] (clip_uid=...)...``), what was expected and what was found.
    """
    if outside not in ("error", "clip"):
        raise ValueError(f"outside must be 'error' or 'clip', but got {outside!r}")
    if isinstance(source, Mapping):
        data: Any = source
        name = "<dict>"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"Ego4D annotation file not found: {path}")
        name = str(path)
        try:
            data = json.loads(
                read_text(
                    path,
                    "Ego4D annotation JSON",
                    error=lambda m: Ego4dAnnotationError(name, m.removeprefix(f"{name}: ")),
                )
            )
        except json.JSONDecodeError as exc:
            raise Ego4dAnnotationError(
                name,
                f"expected an Ego4D av_<split>.json annotation file, but it is not valid JSON ({exc})",
            ) from None
    videos = _require(data, "videos", name, (list,))
    clips: list[Ego4dClip] = []
    seen: dict[str, str] = {}
    for i, video in enumerate(videos):
        at = f"videos[{i}]"
        for j, clip_obj in enumerate(_require(video, "clips", at, (list,))):
            where = f"{at}.clips[{j}]"
            clip = _parse_clip(clip_obj, where, frame_size_px, outside, tolerance_px)
            if clip.clip_uid in seen:
                raise Ego4dAnnotationError(
                    where, f"duplicate clip_uid {clip.clip_uid!r} (first at {seen[clip.clip_uid]})"
                )
            seen[clip.clip_uid] = where
            clips.append(clip)
    if clip_uids is not None:
        wanted = list(dict.fromkeys(clip_uids))
        missing = [uid for uid in wanted if uid not in seen]
        if missing:
            raise Ego4dAnnotationError(
                name,
                f"{len(missing)} requested clip_uid(s) not in the annotations, e.g. "
                f"{missing[:5]} ({len(seen)} clips present)",
            )
        keep = set(wanted)
        clips = [c for c in clips if c.clip_uid in keep]
    logger.info("read %d Ego4D clips from %s", len(clips), name)
    return clips


def read_split_list(path: str | os.PathLike[str]) -> list[str]:
    """Clip ids of an official split list (``data/split/{train,val,test}.list``): one per line.

    Blank lines are ignored; duplicates raise ``ValueError`` naming the id.
    """
    ids: list[str] = []
    seen: set[str] = set()
    for line in read_text(path, "clip_uid list").splitlines():
        uid = line.strip()
        if not uid:
            continue
        if uid in seen:
            raise ValueError(f"{path}: clip id {uid!r} listed twice")
        seen.add(uid)
        ids.append(uid)
    return ids


def clips_by_uid(clips: Sequence[Ego4dClip]) -> dict[str, Ego4dClip]:
    """``clip_uid -> clip``."""
    return {clip.clip_uid: clip for clip in clips}
