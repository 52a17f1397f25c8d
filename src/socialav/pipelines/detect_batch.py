"""``socialav detect`` over many videos: one task per video (analyse, score, write the
outputs), run in this process or on Dask distributed (``--cluster``), the models loaded once
per worker process. Hands back one small :class:`VideoDetectSummary` per video; a video that
fails is reported in its summary and the others go on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from socialav.data.cluster import ClusterSpec, run_tasks, worker_name
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import Progress, SpeakerDetector
from socialav.pipelines.outputs import write_outputs
from socialav.pipelines.result import DetectResult

logger = logging.getLogger(__name__)

__all__ = [
    "SMALL_FACE_PX",
    "VideoDetectSummary",
    "VideoDetectTask",
    "detect_video_task",
    "result_warnings",
    "run_detect_tasks",
]

#: Median face height (px) below which the ASD models get little to see (their crops are
#: 112 px, cut from a face box scaled by the crop context).
SMALL_FACE_PX = 40.0


@dataclass(frozen=True)
class VideoDetectTask:
    """One video of a batch (picklable: it travels to Dask workers).

    Attributes:
        video: the video file (on a cluster: the same path on every worker).
        stem: output names ``<stem>.*`` (see :func:`socialav.pipelines.outputs.unique_stems`).
        output_dir: where the outputs go (on a cluster: a shared folder).
        kinds: output kinds to write (:data:`socialav.pipelines.outputs.OUTPUT_SUFFIXES`).
        config: what to load and how to run.
        report_embed: inline the video in the HTML report.
    """

    video: str
    stem: str
    output_dir: str
    kinds: tuple[str, ...]
    config: DetectConfig
    report_embed: bool = False


@dataclass
class VideoDetectSummary:
    """What one task did (small, picklable).

    Attributes:
        video, stem: as in the task.
        error: one line when the video failed (nothing of it was written), else None.
        duration_s: the video's duration.
        num_tracks: face tracks found.
        speaking_s: speaking seconds per ``track_id``.
        seconds: wall-clock seconds of the task (analysis + writing, models already loaded).
        worker: ``host:pid`` of the process that ran it.
        warnings: lines a user should read (no face, faces too small, ...).
    """

    video: str
    stem: str
    error: str | None = None
    duration_s: float = 0.0
    num_tracks: int = 0
    speaking_s: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """Video seconds per wall-clock second of the task (inf for an instant task)."""
        return self.duration_s / self.seconds if self.seconds > 0 else float("inf")


#: Detectors of this process by configuration (a Dask worker runs many tasks: load once).
_DETECTORS: dict[str, SpeakerDetector] = {}
_DETECTORS_LOCK = threading.Lock()


def _detector_for(config: DetectConfig) -> SpeakerDetector:
    key = json.dumps(asdict(config), sort_keys=True, default=str)
    with _DETECTORS_LOCK:
        detector = _DETECTORS.get(key)
        if detector is None:
            detector = SpeakerDetector(config)
            _DETECTORS[key] = detector
            logger.info("%s: loaded the detect models", worker_name())
        return detector


def result_warnings(result: DetectResult, path: str | Path, config: DetectConfig) -> list[str]:
    """Lines a user needs about one video's result: no face found, faces seen too briefly to
    make a face track, faces too small for the models (median height < :data:`SMALL_FACE_PX`).
    """
    info = result.run_info
    if not result.tracks:
        if info.num_face_detections:
            minimum = config.tracker.min_track_frames
            return [
                f"{path}: faces were detected ({info.num_face_detections} times) but no face "
                f"stayed long enough to make a face track (at least {minimum + 1} frames at "
                f"{result.video.fps:g} fps); writing empty outputs"
            ]
        return [f"{path}: no face found; writing empty outputs"]
    heights = np.concatenate([t.boxes_xyxy_px[:, 3] - t.boxes_xyxy_px[:, 1] for t in result.tracks])
    median_px = float(np.median(heights))
    if median_px < SMALL_FACE_PX:
        return [
            f"{path}: faces are small (median {median_px:.0f} px high); the ASD models see "
            "112 px face crops and get little from faces this small"
        ]
    return []


def detect_video_task(
    task: VideoDetectTask,
    detector: SpeakerDetector | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    reraise: bool = False,
) -> VideoDetectSummary:
    """Analyse one video and write its outputs (a task of :func:`run_detect_tasks`).

    Args:
        task: the video and what to do.
        detector: loaded models to use; default one per configuration and process (cached).
        progress: ``progress(stage, done, total)`` of the analysis and the writing.
        warn: called with each line of :func:`result_warnings` as soon as the analysis
            ends (they are also kept in :attr:`VideoDetectSummary.warnings`).
        reraise: raise this video's error instead of reporting it (``--debug``).

    Returns:
        The summary; errors that concern this video (unreadable media, no audio, an output
        that cannot be written) are caught and reported in ``error``.

    Raises:
        FileNotFoundError, socialav.hub.WeightsError, ...: the models cannot be loaded (that
            concerns every video, so the batch stops).
    """
    from socialav.io.media import MediaError

    detector = detector if detector is not None else _detector_for(task.config)
    summary = VideoDetectSummary(task.video, task.stem, worker=worker_name())
    t = time.perf_counter()
    try:
        result = detector.run(task.video, progress, video_id=task.stem)
        summary.warnings = result_warnings(result, task.video, task.config)
        for line in summary.warnings if warn is not None else ():
            warn(line)
        write_outputs(
            result,
            task.output_dir,
            task.kinds,
            progress=progress,
            report_embed=task.report_embed,
            stem=task.stem,
            video_max_short_side_px=task.config.video_max_short_side_px,
        )
    except (MediaError, OSError, ValueError, RuntimeError) as exc:
        if reraise:
            raise
        summary.error = " ".join(str(exc).split())
        return summary
    summary.seconds = time.perf_counter() - t
    summary.duration_s = result.video.duration_s
    summary.num_tracks = len(result.tracks)
    summary.speaking_s = {
        s.track_id: float(sum(seg.duration_s for seg in s.segments)) for s in result.scores
    }
    return summary


def run_detect_tasks(
    tasks: Sequence[VideoDetectTask], cluster: str | ClusterSpec
) -> Iterator[VideoDetectSummary]:
    """Run every task on Dask distributed, one video per task; yield summaries as videos
    finish (not in input order).

    Args:
        tasks: the videos (their ``video`` and ``output_dir`` paths must be valid on every
            worker: a shared file system).
        cluster: ``"local:N"`` (a local cluster of N single-threaded worker processes for the
            duration of the call) or a scheduler address (``tcp://host:8786``); see
            :mod:`socialav.data.cluster`.

    Raises:
        ValueError: a malformed ``cluster``.
        ImportError: Dask distributed is not installed.
        ConnectionError: the scheduler cannot be reached.
        Exception: a model that cannot load on a worker (remaining videos are cancelled).
    """
    for _, summary in run_tasks(detect_video_task, list(tasks), cluster=cluster, name="detect"):
        yield summary
