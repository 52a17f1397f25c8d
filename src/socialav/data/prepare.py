"""Prepare an AVA-ActiveSpeaker / UniTalk split: face crops and entity audio from raw videos.

Details and sources: ``docs/datasets.md`` (Preparing AVA-ActiveSpeaker / UniTalk: the details).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io.wavfile

from socialav.data.cluster import ClusterSpec, run_tasks, worker_name
from socialav.data.layout import DatasetLayout, timestamp_name, write_scene_image
from socialav.io.atomic import atomic_write
from socialav.io.ava_csv import BOX_COLUMNS, read_ava_csv, write_ava_csv_frame
from socialav.io.media import (
    MediaError,
    NoAudioStreamError,
    iter_frames_at_times,
    open_container,
    read_audio,
)
from socialav.types import AUDIO_SAMPLE_RATE

logger = logging.getLogger(__name__)

__all__ = [
    "EntitySpec",
    "PrepareIssue",
    "PrepareSummary",
    "VideoPrepareResult",
    "VideoTask",
    "crop_entity_box",
    "entity_audio_span",
    "find_video_files",
    "plan_prepare",
    "prepare_dataset",
    "prepare_video",
    "state_path",
]

#: Folder (under the dataset root) holding the per-entity state files.
STATE_DIR = ".socialav-prepare"
#: Version of the prepared files; a change redoes every entity.
PREPARE_VERSION = 1
#: JPEG quality of the face crops (OpenCV's default, as ``cv2.imwrite`` in the reference).
JPEG_QUALITY = 95

# Issue reasons (the CLI groups its summary by these).
MISSING_VIDEO = "missing video file"
AMBIGUOUS_VIDEO = "several video files for one video_id"
UNREADABLE_VIDEO = "unreadable video"
NO_AUDIO = "video has no audio stream"
OUTSIDE_VIDEO = "timestamp outside the video"
NAME_CLASH = "two timestamps share a %.2f file name"
EMPTY_BOX = "empty box clipped to the frame"  # a warning: the entity is still written
WRITE_FAILED = "write failed"

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".m4v", ".ts", ".flv")


@dataclass(frozen=True)
class EntitySpec:
    """The annotated frames of one entity (face track) of a video.

    Attributes:
        entity_id: AVA ``entity_id`` (``video_id:track`` or ``<video>_<start>_<end>:<n>``).
        frame_timestamps_s: ``(T,)`` float64 ``frame_timestamp`` values, ascending, unique.
        boxes: ``(T, 4)`` float64 normalised ``entity_box_x1, y1, x2, y2``.
    """

    entity_id: str
    frame_timestamps_s: np.ndarray
    boxes: np.ndarray

    def fingerprint(self) -> str:
        """SHA-256 of the entity id, timestamps and boxes (and :data:`PREPARE_VERSION`)."""
        h = hashlib.sha256(f"v{PREPARE_VERSION}:{self.entity_id}".encode())
        h.update(np.ascontiguousarray(self.frame_timestamps_s, np.float64).tobytes())
        h.update(np.ascontiguousarray(self.boxes, np.float64).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class VideoTask:
    """Everything a worker needs to prepare one video (picklable).

    Attributes:
        root: dataset root (see :class:`DatasetLayout`).
        split: ``train``, ``val``, ``test`` ...
        video_id: AVA ``video_id``.
        video_path: the raw video, or None when no file was found (reported, not decoded).
        entities: the video's entities.
        lookup_reason, lookup_detail: why ``video_path`` is None (:data:`MISSING_VIDEO` or
            :data:`AMBIGUOUS_VIDEO`, and the specifics).
        scene_size_px: also write ``S x S`` scene images with ``S`` = this (``None``: no).
    """

    root: str
    split: str
    video_id: str
    video_path: str | None
    entities: tuple[EntitySpec, ...]
    lookup_reason: str | None = None
    lookup_detail: str = ""
    scene_size_px: int | None = None


@dataclass(frozen=True)
class PrepareIssue:
    """Something skipped or repaired.

    Attributes:
        video_id: the video.
        entity_id: the entity, or None when the issue concerns the whole video.
        reason: one of the module's reason strings (``missing video file`` ...).
        detail: the specifics (paths, timestamps, decoder message).
        num_entities: entities affected (for a whole-video issue, all of them).
    """

    video_id: str
    entity_id: str | None
    reason: str
    detail: str = ""
    num_entities: int = 1

    @property
    def skipped(self) -> bool:
        """True when the affected entities were not written (False for repairs)."""
        return self.reason != EMPTY_BOX


@dataclass
class VideoPrepareResult:
    """What one per-video task did.

    Attributes:
        video_id: the video.
        num_entities: entities annotated for this video.
        entities_written: entities (re)written by this run.
        entities_already_complete: entities skipped because they were complete.
        frames_written: face crops written.
        issues: what was skipped or repaired, and why.
        worker: ``host:pid`` of the process that ran the task.
        seconds: wall-clock time of the task.
    """

    video_id: str
    num_entities: int
    entities_written: int = 0
    entities_already_complete: int = 0
    frames_written: int = 0
    issues: list[PrepareIssue] = field(default_factory=list)
    worker: str = ""
    seconds: float = 0.0


@dataclass
class PrepareSummary:
    """The outcome of :func:`prepare_dataset`.

    Attributes:
        layout: the dataset layout written to.
        split: the split prepared.
        videos: one result per video, in ``video_id`` order.
    """

    layout: DatasetLayout
    split: str
    videos: list[VideoPrepareResult]

    @property
    def num_entities(self) -> int:
        return sum(v.num_entities for v in self.videos)

    @property
    def entities_written(self) -> int:
        return sum(v.entities_written for v in self.videos)

    @property
    def entities_already_complete(self) -> int:
        return sum(v.entities_already_complete for v in self.videos)

    @property
    def frames_written(self) -> int:
        return sum(v.frames_written for v in self.videos)

    @property
    def issues(self) -> list[PrepareIssue]:
        return [issue for v in self.videos for issue in v.issues]

    @property
    def entities_skipped(self) -> int:
        """Entities not prepared because of an issue."""
        return sum(i.num_entities for i in self.issues if i.skipped)

    def skipped_by_reason(self) -> dict[str, int]:
        """Number of skipped entities per reason."""
        counts: Counter[str] = Counter()
        for issue in self.issues:
            if issue.skipped:
                counts[issue.reason] += issue.num_entities
        return dict(counts)


# ----------------------------------------------------------------------------------------------
# Geometry and audio span (the reference's rules)
# ----------------------------------------------------------------------------------------------
def crop_entity_box(frame_bgr: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, bool]:
    """Cut a normalised AVA box out of a frame as TalkNet's ``extract_video_clips`` does.

    Args:
        frame_bgr: ``(H, W, 3)`` uint8 frame.
        box: ``(4,)`` normalised ``entity_box_x1, y1, x2, y2``.

    Returns:
        ``(face, repaired)``: ``frame[int(y1*H):int(y2*H), int(x1*W):int(x2*W)]`` (NumPy slice
        semantics, as the reference; a view), and False; or, when that cut is empty, the box
        clipped to the frame with at least one pixel each way, and True.
    """
    height, width = frame_bgr.shape[:2]
    x1 = int(box[0] * width)
    y1 = int(box[1] * height)
    x2 = int(box[2] * width)
    y2 = int(box[3] * height)
    face = frame_bgr[y1:y2, x1:x2]
    if face.size:
        return face, False
    cx1 = min(max(x1, 0), width - 1)
    cy1 = min(max(y1, 0), height - 1)
    cx2 = min(max(x2, cx1 + 1), width)
    cy2 = min(max(y2, cy1 + 1), height)
    return frame_bgr[cy1:cy2, cx1:cx2], True


def entity_audio_span(
    frame_timestamps_s: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE
) -> tuple[int, int]:
    """Sample span ``[int(t_first * sr), int(t_last * sr))`` of an entity's WAV (TalkNet's
    ``extract_audio_clips``); empty for a one-frame entity."""
    start = int(float(frame_timestamps_s[0]) * sample_rate)
    stop = int(float(frame_timestamps_s[-1]) * sample_rate)
    return start, max(start, stop)


# ----------------------------------------------------------------------------------------------
# Decoding the frames nearest to given times
# ----------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------
# One video
# ----------------------------------------------------------------------------------------------
def state_path(layout: DatasetLayout, split: str, video_id: str, entity_id: str) -> Path:
    """The state file that marks an entity complete (see the module docstring)."""
    return layout.root / STATE_DIR / split / video_id / f"{entity_id}.json"


def _is_complete(layout: DatasetLayout, task: VideoTask, entity: EntitySpec) -> bool:
    marker = state_path(layout, task.split, task.video_id, entity.entity_id)
    try:
        state = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if state.get("fingerprint") != entity.fingerprint():
        return False
    if task.scene_size_px is not None:
        if state.get("scene_size_px") != task.scene_size_px:
            return False
        if not all(
            layout.scene_path(task.split, task.video_id, t).is_file()
            for t in entity.frame_timestamps_s
        ):
            return False
    if not layout.audio_path(task.split, task.video_id, entity.entity_id).is_file():
        return False
    folder = layout.entity_dir(task.split, task.video_id, entity.entity_id)
    try:
        present = set(os.listdir(folder))
    except OSError:
        return False
    return all(f"{timestamp_name(t)}.jpg" in present for t in entity.frame_timestamps_s)


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    with atomic_write(path, "wb") as handle:
        scipy.io.wavfile.write(handle, sample_rate, np.ascontiguousarray(samples, np.int16))


def _reset_entity(layout: DatasetLayout, task: VideoTask, entity: EntitySpec) -> None:
    """Forget an entity's previous state and remove crops that are no longer annotated."""
    state_path(layout, task.split, task.video_id, entity.entity_id).unlink(missing_ok=True)
    folder = layout.entity_dir(task.split, task.video_id, entity.entity_id)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{timestamp_name(t)}.jpg" for t in entity.frame_timestamps_s}
    for name in os.listdir(folder):
        if name not in wanted:
            (folder / name).unlink(missing_ok=True)


def prepare_video(task: VideoTask) -> VideoPrepareResult:
    """Write the face crops and WAVs of one video's entities (a task of
    :func:`prepare_dataset`; runs in a worker process).

    Never raises for bad input: a missing, unreadable or soundless video, timestamps beyond
    the video, or clashing file names are returned as :class:`PrepareIssue` records.
    """
    t_start = time.perf_counter()
    layout = DatasetLayout(Path(task.root))
    result = VideoPrepareResult(task.video_id, len(task.entities), worker=worker_name())

    def finish() -> VideoPrepareResult:
        result.seconds = time.perf_counter() - t_start
        return result

    if task.video_path is None:
        result.issues.append(
            PrepareIssue(
                task.video_id,
                None,
                task.lookup_reason or MISSING_VIDEO,
                task.lookup_detail,
                len(task.entities),
            )
        )
        return finish()

    pending: list[EntitySpec] = []
    for entity in task.entities:
        names = [timestamp_name(t) for t in entity.frame_timestamps_s]
        if len(set(names)) != len(names):
            dup = sorted(n for n, c in Counter(names).items() if c > 1)
            result.issues.append(
                PrepareIssue(task.video_id, entity.entity_id, NAME_CLASH, f"names {dup[:3]}")
            )
        elif _is_complete(layout, task, entity):
            result.entities_already_complete += 1
        else:
            pending.append(entity)
    if not pending:
        return finish()

    try:
        audio = read_audio(task.video_path)
    except NoAudioStreamError as exc:
        result.issues.append(PrepareIssue(task.video_id, None, NO_AUDIO, str(exc), len(pending)))
        return finish()
    except MediaError as exc:
        result.issues.append(
            PrepareIssue(task.video_id, None, UNREADABLE_VIDEO, str(exc), len(pending))
        )
        return finish()

    for entity in pending:
        _reset_entity(layout, task, entity)

    # All requested (time, entity, frame) triples of the pending entities, by time.
    times = np.concatenate([e.frame_timestamps_s for e in pending])
    owners = np.concatenate([np.full(len(e.frame_timestamps_s), k) for k, e in enumerate(pending)])
    rows = np.concatenate([np.arange(len(e.frame_timestamps_s)) for e in pending])
    order = np.argsort(times, kind="stable")
    times, owners, rows = times[order], owners[order], rows[order]
    unique_times, first_of = np.unique(times, return_index=True)
    bounds = list(first_of) + [len(times)]
    failed: dict[int, PrepareIssue] = {}
    written = np.zeros(len(pending), dtype=np.int64)
    encode = [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY]
    try:
        tolerance_s = _frame_tolerance_s(task.video_path)
        for u, image, frame_t in iter_frames_at_times(task.video_path, unique_times):
            t = float(unique_times[u])
            if task.scene_size_px is not None and abs(frame_t - t) <= tolerance_s:
                _write_scene(layout, task, t, image)
            for j in range(bounds[u], bounds[u + 1]):
                k, r = int(owners[j]), int(rows[j])
                if k in failed:
                    continue
                entity = pending[k]
                if abs(frame_t - t) > tolerance_s:
                    failed[k] = PrepareIssue(
                        task.video_id,
                        entity.entity_id,
                        OUTSIDE_VIDEO,
                        f"frame_timestamp {t:.3f} s, nearest decoded frame at {frame_t:.3f} s",
                    )
                    continue
                face, repaired = crop_entity_box(image, entity.boxes[r])
                if repaired:
                    result.issues.append(
                        PrepareIssue(task.video_id, entity.entity_id, EMPTY_BOX, f"at {t:.2f} s")
                    )
                ok, jpeg = cv2.imencode(".jpg", face, encode)
                if not ok:
                    failed[k] = PrepareIssue(
                        task.video_id, entity.entity_id, WRITE_FAILED, f"JPEG encoding at {t:.2f} s"
                    )
                    continue
                path = layout.face_path(task.split, task.video_id, entity.entity_id, t)
                with atomic_write(path, "wb", fsync=False) as handle:  # the state file
                    handle.write(jpeg.tobytes())  # (fsynced, written last) marks completion
                written[k] += 1
    except MediaError as exc:
        result.issues.append(
            PrepareIssue(task.video_id, None, UNREADABLE_VIDEO, str(exc), len(pending))
        )
        return finish()

    for k, entity in enumerate(pending):
        if k in failed:
            result.issues.append(failed[k])
            continue
        start, stop = entity_audio_span(entity.frame_timestamps_s)
        _write_wav(
            layout.audio_path(task.split, task.video_id, entity.entity_id),
            audio[start:stop],
            AUDIO_SAMPLE_RATE,
        )
        state = {
            "fingerprint": entity.fingerprint(),
            "num_frames": len(entity.frame_timestamps_s),
            "audio_samples": [start, stop],
            "video": str(task.video_path),
            "scene_size_px": task.scene_size_px,
        }
        with atomic_write(state_path(layout, task.split, task.video_id, entity.entity_id)) as fh:
            json.dump(state, fh)
        result.entities_written += 1
        result.frames_written += int(written[k])
    return finish()


def _write_scene(layout: DatasetLayout, task: VideoTask, t: float, image_bgr: np.ndarray) -> None:
    """The scene image of the frame ``image_bgr`` shown at annotated time ``t``."""
    from socialav.models.scene_context import scene_image

    small = scene_image(image_bgr, task.scene_size_px)  # INTER_AREA acts per channel
    write_scene_image(
        layout.scene_path(task.split, task.video_id, t), cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    )


def _frame_tolerance_s(path: str | Path) -> float:
    """How far an annotated time may be from the nearest decoded frame before it counts as
    outside the video: two nominal frame intervals (variable-frame-rate videos have longer
    gaps), at least 0.1 s."""
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: expected a video stream, found none")
        vstream = container.streams.video[0]
        rate = vstream.average_rate or vstream.guessed_rate
    return max(2.0 / float(rate), 0.1) if rate else 0.1


# ----------------------------------------------------------------------------------------------
# The whole split
# ----------------------------------------------------------------------------------------------
def find_video_files(videos_dir: str | Path) -> dict[str, list[Path]]:
    """Video files in ``videos_dir`` (not recursive) by stem: ``<video_id>.<ext>``.

    AVA's raw videos have several extensions (``.mp4``, ``.mkv``, ``.webm``); files whose
    suffix is not a known video suffix are ignored.

    Raises:
        NotADirectoryError: ``videos_dir`` is not a folder.
    """
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise NotADirectoryError(f"--videos {folder}: expected a folder of <video_id>.<ext> files")
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            found.setdefault(entry.stem, []).append(entry)
    return found


def _entities_of(rows: pd.DataFrame) -> tuple[EntitySpec, ...]:
    entities = []
    for entity_id, group in rows.groupby("entity_id", sort=True):
        group = group.sort_values("frame_timestamp", kind="stable")
        group = group.drop_duplicates("frame_timestamp", keep="first")
        entities.append(
            EntitySpec(
                str(entity_id),
                group["frame_timestamp"].to_numpy(np.float64),
                group[list(BOX_COLUMNS)].to_numpy(np.float64),
            )
        )
    return tuple(entities)


def plan_prepare(
    annotations: pd.DataFrame,
    videos_dir: str | Path,
    root: str | Path,
    split: str,
    scene_size_px: int | None = None,
) -> list[VideoTask]:
    """One :class:`VideoTask` per ``video_id`` of the annotations, in ``video_id`` order.

    Args:
        annotations: ground-truth table (:func:`socialav.io.ava_csv.read_ava_csv`).
        videos_dir: folder of raw videos named ``<video_id>.<ext>``.
        root: dataset root to write.
        split: split name.
        scene_size_px: also write scene images of this side (``None``: no scenes).
    """
    files = find_video_files(videos_dir)
    tasks = []
    for video_id, rows in annotations.groupby("video_id", sort=True):
        video_id = str(video_id)
        candidates = files.get(video_id, [])
        path, reason, detail = None, None, ""
        if len(candidates) == 1:
            path = str(candidates[0])
        elif not candidates:
            reason, detail = MISSING_VIDEO, f"no file {video_id}.<ext> in {videos_dir}"
        else:
            reason, detail = AMBIGUOUS_VIDEO, f"{[c.name for c in candidates]}"
        tasks.append(
            VideoTask(
                str(root),
                split,
                video_id,
                path,
                _entities_of(rows),
                reason,
                detail,
                scene_size_px,
            )
        )
    return tasks


def _check_split_name(split: str) -> None:
    if not split or "/" in split or "\\" in split or split in (".", ".."):
        raise ValueError(f"split must be a plain folder name like 'train' or 'val', got {split!r}")


def prepare_dataset(
    videos_dir: str | Path,
    csv_path: str | Path,
    root: str | Path,
    split: str,
    *,
    workers: int = 1,
    cluster: str | ClusterSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
    scene_size_px: int | None = None,
) -> PrepareSummary:
    """Prepare one split: face crops, entity WAVs and ``csv/<split>_orig.csv`` under ``root``.

    Args:
        videos_dir: raw videos named ``<video_id>.<ext>``.
        csv_path: AVA or UniTalk annotation CSV (header optional).
        root: dataset root (created if needed).
        split: split name (``train``, ``val`` ...).
        workers: local worker processes (parallel over videos).
        cluster: Dask cluster (``"local:N"`` or ``"tcp://host:8786"``; see
            :mod:`socialav.data.cluster`): one task per video; workers must see ``videos_dir``
            and ``root`` at the same paths.
        progress: called as ``progress(videos_done, videos_total)``.
        scene_size_px: also write the ``S x S`` scene image of every annotated timestamp
            (``clips_scenes/``, see the module docstring) with ``S`` = this; ``None``: none.

    Returns:
        :class:`PrepareSummary` (what was written, skipped as complete, or skipped and why).

    Raises:
        FileNotFoundError: ``csv_path`` does not exist.
        NotADirectoryError: ``videos_dir`` is not a folder.
        AvaCsvError: the CSV lacks columns or has bad values.
        ValueError: bad ``split``, ``workers`` or ``scene_size_px``.
    """
    _check_split_name(split)
    if scene_size_px is not None and scene_size_px < 1:
        raise ValueError(f"scene_size_px must be >= 1 or None, got {scene_size_px}")
    annotations = read_ava_csv(csv_path, "groundtruth")
    layout = DatasetLayout(Path(root))
    tasks = plan_prepare(annotations, videos_dir, layout.root, split, scene_size_px)
    layout.root.mkdir(parents=True, exist_ok=True)
    destination = layout.csv_path(split)
    if not (destination.exists() and _same_file(Path(csv_path), destination)):
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_ava_csv_frame(annotations, destination, "groundtruth")
    results: list[VideoPrepareResult | None] = [None] * len(tasks)
    if progress:
        progress(0, len(tasks))
    done = 0
    for index, result in run_tasks(
        prepare_video, tasks, workers=workers, cluster=cluster, name="prepare"
    ):
        results[index] = result
        done += 1
        if progress:
            progress(done, len(tasks))
    summary = PrepareSummary(layout, split, [r for r in results if r is not None])
    logger.info(
        "prepared %s: %d entities written, %d already complete, %d skipped",
        split,
        summary.entities_written,
        summary.entities_already_complete,
        summary.entities_skipped,
    )
    return summary


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or a.samefile(b)
    except OSError:
        return False
