"""``socialav data ego4d-course``: seed 000's preprocessing (``preprocess.sh`` /
``preprocess_only_test.sh``) as one job: the layout and samples of
:mod:`socialav.data.ego4d.course`, with one decoding pass per video, one task per video
(:mod:`socialav.data.cluster`: inline, local processes or Dask), resumable.

Per video: its audio is written once (``dlcvchallenge1_audios/<hash>.wav``, 16 kHz mono int16:
the seed's moviepy writes 44.1 kHz stereo and its loaders resample to 16 kHz mono, which is
what every sample holds); the video is decoded forward once up to the last frame any pending
segment needs, each face crop is cut as its frame passes (:func:`~socialav.data.ego4d.course.
course_crop`), and a segment's ``.npz`` is written atomically as soon as its last frame has
passed (:func:`~socialav.data.ego4d.course.assemble_course_sample`), so memory holds only the
crops of the segments open at that frame.

Resumption: a sample file that exists is complete (atomic writes) and is kept; a video whose
samples and audio all exist is not decoded. Training samples are numbered ``0 .. N-1`` over
the ``_seg.csv`` files in name order and their rows (the seed numbers them in ``os.listdir``
order); ``dlcvchallenge1_<split>_samples.csv`` records which segment each name holds, and a
rerun on other segment files into the same folder is refused instead of mixing them.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from socialav.data.cluster import ClusterSpec, run_tasks, worker_name
from socialav.data.ego4d.course import (
    COURSE_IMAGE_SIZE_PX,
    CourseFormatError,
    CourseSegment,
    assemble_course_sample,
    course_crop,
    course_sample_name,
    find_course_videos,
    read_course_video,
    write_course_sample,
)
from socialav.io.atomic import atomic_write
from socialav.io.media import MediaError, iter_frames, read_audio
from socialav.types import AUDIO_SAMPLE_RATE, EGO4D_FPS

logger = logging.getLogger(__name__)

__all__ = [
    "CourseIssue",
    "CourseLayout",
    "CourseSummary",
    "CourseVideoTask",
    "plan_course",
    "prepare_course",
    "prepare_course_video",
]

_VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


@dataclass(frozen=True)
class CourseLayout:
    """The seed's output folders under ``root`` for one split (``train`` or ``test``)."""

    root: Path
    split: str

    @property
    def audio_dir(self) -> Path:
        return self.root / "dlcvchallenge1_audios"

    @property
    def data_dir(self) -> Path:
        return self.root / f"dlcvchallenge1_{self.split}_data"

    @property
    def manifest(self) -> Path:
        return self.root / f"dlcvchallenge1_{self.split}_samples.csv"


@dataclass(frozen=True)
class CourseVideoTask:
    """One video's work (picklable): ``samples`` are ``(file name, segment)`` pairs."""

    video_id: str
    video: Path | None
    samples: tuple[tuple[str, CourseSegment], ...]
    layout: CourseLayout
    size_px: int = COURSE_IMAGE_SIZE_PX


@dataclass(frozen=True)
class CourseIssue:
    """Samples of a video that could not be written: ``reason`` and ``detail``."""

    video_id: str
    reason: str
    detail: str
    num_samples: int


@dataclass
class CourseVideoResult:
    video_id: str
    written: int = 0
    already_there: int = 0
    frames_decoded: int = 0
    issue: CourseIssue | None = None
    worker: str = ""


@dataclass
class CourseSummary:
    """What :func:`prepare_course` did.

    Attributes:
        num_samples: segments planned; written: samples written now; already_there: kept
            from an earlier run; issues: per failed video; seconds: wall time of the run;
            frames_decoded: video frames decoded in total.
    """

    split: str
    num_samples: int = 0
    written: int = 0
    already_there: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0
    issues: list[CourseIssue] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        """Samples written per second of wall time (0 when none)."""
        return self.written / self.seconds if self.seconds > 0 and self.written else 0.0

    @property
    def failed(self) -> int:
        return sum(i.num_samples for i in self.issues)


def _find_video(videos_dir: Path, video_id: str) -> Path | None:
    for suffix in _VIDEO_SUFFIXES:
        path = videos_dir / f"{video_id}{suffix}"
        if path.is_file():
            return path
    return None


def _manifest_text(samples: Sequence[tuple[str, CourseSegment]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "video_id", "person_id", "start_frame", "end_frame", "ttm"])
    for name, s in samples:
        ttm = "" if s.ttm is None else s.ttm
        writer.writerow([name, s.video_id, s.person_id, s.start_frame, s.end_frame, ttm])
    return out.getvalue()


def plan_course(
    videos_dir: str | os.PathLike[str],
    seg_dir: str | os.PathLike[str],
    bbox_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "train",
    size_px: int = COURSE_IMAGE_SIZE_PX,
) -> list[CourseVideoTask]:
    """One :class:`CourseVideoTask` per ``<hash>_seg.csv``, samples named as the seed names them
    (module docstring); writes the sample manifest.

    Raises:
        ValueError: ``split`` other than ``train`` / ``test``.
        FileNotFoundError: a missing folder.
        CourseFormatError: malformed or unpaired course files, or ``out`` holding samples of
            other segment files.
    """
    if split not in ("train", "test"):
        raise ValueError(f"--split must be 'train' or 'test' (the seed's two), got {split!r}")
    for what, folder in (("--videos", videos_dir), ("--seg", seg_dir), ("--bbox", bbox_dir)):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{what} {folder} is not a folder")
    pairs = find_course_videos(seg_dir, bbox_dir)
    if not pairs:
        raise CourseFormatError(f"--seg {seg_dir}: no <hash>_seg.csv files found")
    layout = CourseLayout(Path(out), split)
    tasks, everything = [], []
    for video_id, (seg_csv, bbox_csv) in pairs.items():
        segments = read_course_video(seg_csv, bbox_csv, video_id=video_id)
        if split == "train" and any(s.ttm is None for s in segments):
            raise CourseFormatError(
                f"{seg_csv}: --split train needs a 'ttm' column (the training labels); "
                "test files have none: use --split test"
            )
        samples = []
        for seg in segments:
            name = str(len(everything)) if split == "train" else course_sample_name(seg)
            samples.append((name, seg))
            everything.append((name, seg))
        video = _find_video(Path(videos_dir), video_id)
        tasks.append(CourseVideoTask(video_id, video, tuple(samples), layout, size_px))
    text = _manifest_text(everything)
    if layout.manifest.is_file() and layout.manifest.read_text(encoding="utf-8") != text:
        raise CourseFormatError(
            f"{layout.manifest} lists other samples than these segment files give: "
            f"{out} holds samples of another preprocessing run; write to a new --out folder"
        )
    with atomic_write(layout.manifest, newline="") as handle:
        handle.write(text)
    return tasks


def _clip_audio(task: CourseVideoTask) -> np.ndarray:
    """The video's 16 kHz mono int16 audio, from its WAV when written, else decoded (and
    the WAV written)."""
    wav = task.layout.audio_dir / f"{task.video_id}.wav"
    if wav.is_file():
        return wavfile.read(str(wav))[1]
    audio = read_audio(task.video, AUDIO_SAMPLE_RATE)  # type: ignore[arg-type]
    wav.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(wav, "wb") as handle:
        wavfile.write(handle, AUDIO_SAMPLE_RATE, audio)
    return audio


def prepare_course_video(task: CourseVideoTask) -> CourseVideoResult:
    """Write one video's samples (module docstring). Never raises for a missing or broken
    video: the result carries the issue."""
    result = CourseVideoResult(task.video_id, worker=worker_name())
    data_dir = task.layout.data_dir
    pending = [(n, s) for n, s in task.samples if not (data_dir / f"{n}.npz").is_file()]
    result.already_there = len(task.samples) - len(pending)
    wav = task.layout.audio_dir / f"{task.video_id}.wav"
    if not pending and wav.is_file():
        return result
    if task.video is None:
        result.issue = CourseIssue(
            task.video_id, "video missing", f"no {task.video_id}.<mp4|mkv|...>", len(pending)
        )
        return result
    try:
        audio = _clip_audio(task)
        if pending:
            result.written, result.frames_decoded = _write_streaming(task, pending, audio)
    except (MediaError, OSError, ValueError) as exc:
        done = sum(1 for n, _ in pending if (data_dir / f"{n}.npz").is_file())
        result.written = done
        result.issue = CourseIssue(
            task.video_id, "unreadable video", " ".join(str(exc).split()), len(pending) - done
        )
    return result


def _write_streaming(
    task: CourseVideoTask, pending: Sequence[tuple[str, CourseSegment]], audio: np.ndarray
) -> tuple[int, int]:
    """Decode once, cut crops as frames pass, write each sample when its span has passed."""
    data_dir = task.layout.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    wanted: dict[int, list[tuple[int, int]]] = {}  # frame -> [(sample, position)]
    closing: dict[int, list[int]] = {}  # end frame -> samples
    for k, (_, seg) in enumerate(pending):
        for pos, (frame, empty) in enumerate(zip(seg.frames.tolist(), seg.is_empty, strict=True)):
            if not empty:
                wanted.setdefault(int(frame), []).append((k, pos))
        closing.setdefault(seg.end_frame, []).append(k)
    crops: dict[int, dict[int, np.ndarray]] = {k: {} for k in range(len(pending))}
    last = max(seg.end_frame for _, seg in pending)
    written, decoded = 0, 0

    def finish(k: int) -> None:
        nonlocal written
        name, seg = pending[k]
        sample = assemble_course_sample(seg, crops.pop(k), audio, AUDIO_SAMPLE_RATE, EGO4D_FPS)
        write_course_sample(sample, data_dir / f"{name}.npz")
        written += 1

    for index, image in iter_frames(task.video, fps=EGO4D_FPS):  # type: ignore[arg-type]
        if index > last:
            break
        decoded += 1
        for k, pos in wanted.get(index, ()):
            crops[k][pos] = course_crop(image, pending[k][1].boxes_xyxy_px[pos], task.size_px)
        for k in closing.get(index, ()):
            finish(k)
    for k in sorted(crops):  # segments reaching past the end of the video: the rest is empty
        finish(k)
    return written, decoded


def prepare_course(
    videos_dir: str | os.PathLike[str],
    seg_dir: str | os.PathLike[str],
    bbox_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "train",
    *,
    size_px: int = COURSE_IMAGE_SIZE_PX,
    workers: int = 1,
    cluster: str | ClusterSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CourseSummary:
    """Seed 000's preprocessing of one split into ``out`` (module docstring).

    Args:
        videos_dir: ``<hash>.mp4``; seg_dir, bbox_dir: ``<hash>_seg.csv``, ``<hash>_bbox.csv``.
        split: ``train`` (labelled, samples ``<i>.npz``) or ``test``.
        size_px: crop side (the seed's 96).
        workers, cluster: see :func:`socialav.data.cluster.run_tasks` (one task per video).
        progress: ``progress(done_videos, total_videos)``.

    Returns:
        A :class:`CourseSummary` (videos that failed are listed in ``issues``).

    Raises:
        See :func:`plan_course`.
    """
    start = time.perf_counter()
    tasks = plan_course(videos_dir, seg_dir, bbox_dir, out, split, size_px)
    summary = CourseSummary(split, num_samples=sum(len(t.samples) for t in tasks))
    for done, (_, result) in enumerate(
        run_tasks(prepare_course_video, tasks, workers=workers, cluster=cluster, name="course"),
        start=1,
    ):
        summary.written += result.written
        summary.already_there += result.already_there
        summary.frames_decoded += result.frames_decoded
        if result.issue is not None:
            summary.issues.append(result.issue)
        if progress is not None:
            progress(done, len(tasks))
    summary.seconds = time.perf_counter() - start
    return summary
