"""Score the ground-truth face tracks of a prepared AVA / UniTalk split with an ASD model.

For every entity of ``csv/<split>_orig.csv`` (or a given annotation CSV), the face crops
``clips_videos/<split>/<video_id>/<entity_id>/<frame_timestamp>.jpg`` and the WAV
``clips_audios/<split>/<video_id>/<entity_id>.wav`` (see :mod:`socialav.data.prepare`) are
loaded as the evaluation loader of TalkNet / Light-ASD does (``dataLoader.py``, ``val_loader``
with ``visualAug=False, audioAug=False``):

- faces: each JPEG read as BGR, ``cv2.COLOR_BGR2GRAY``, ``cv2.resize`` to 112x112
  (bilinear); no centre crop (unlike the demo's 224 -> 112 crop of :mod:`socialav.vision.crops`);
- audio: ``python_speech_features.mfcc(wav, 16000, numcep=13, winlen=0.025 * 25 / fps,
  winstep=0.010 * 25 / fps)`` where ``fps`` is the entity's frame rate (the reference reads it
  from its shipped ``*_loader.csv``; we compute it from the annotated timestamps as
  ``(T - 1) / (t_last - t_first)``, 25 for a one-frame entity), then wrap-padded
  (``numpy.pad(..., 'wrap')``) to ``4 T`` frames and cut to ``round(4 T)``: 4 MFCC frames per
  face.

The model then scores the whole entity in one pass (``windows=None``, as Light-ASD's
``evaluate_network``; windows as in ``socialav detect`` are an option) and the score of a
face is the speaking probability ``softmax(lossAV.FC(x))[:, 1]`` (``loss.py`` of Light-ASD).

Predictions are keyed by ``(entity_id, frame_timestamp)`` and joined to the ground-truth rows
by that key (never by row order): each prediction row is its ground-truth row with the
label set to ``SPEAKING_AUDIBLE`` (the official upload format) and ``score`` added.

The work is one task per video (:mod:`socialav.data.cluster`); every worker process loads the
model once and keeps it for the following tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io.wavfile

from socialav.data.cluster import ClusterSpec, run_tasks, worker_name
from socialav.data.entity import entity_fps, entity_mfcc, load_entity_faces
from socialav.data.layout import DatasetLayout
from socialav.inference.asd import WindowConfig
from socialav.io.ava_csv import PREDICTION_COLUMNS, AvaLabel, read_ava_csv, write_ava_csv_frame
from socialav.types import AUDIO_SAMPLE_RATE

logger = logging.getLogger(__name__)

__all__ = [
    "EntityScores",
    "ScoreConfig",
    "ScoreIssue",
    "ScoreSummary",
    "ScoreTask",
    "VideoScoreResult",
    "entity_fps",
    "entity_mfcc",
    "load_entity_faces",
    "plan_scoring",
    "predictions_frame",
    "score_dataset",
    "score_video",
    "write_predictions",
]


@dataclass(frozen=True)
class ScoreConfig:
    """How entities are scored.

    Attributes:
        weights: registry name of the ASD weights (``socialav weights list``):
            ``light-asd-ava`` (94.06 mAP on AVA val in its README), ``light-asd-talkset``,
            ``lr-asd-ava``, ``lr-asd-talkset``.
        windows: window durations; default one pass over the whole entity, as the
            reference evaluation (``ASD.evaluate_network``).
        backend: ``torch`` (default; the reference computation), ``onnx`` (fp32, within
            1e-4 of it) or ``onnx-int8`` (the int8 visual encoder, for weights whose ranges
            ship; see :mod:`socialav.inference.backends`).
        num_threads: CPU threads per worker process (PyTorch and onnxruntime).
        device: PyTorch device for the ``torch`` backend.
        max_batch_frames: at most this many frames per encoder call.
    """

    weights: str = "light-asd-ava"
    windows: WindowConfig = field(default_factory=lambda: WindowConfig(durations_s=None))
    backend: str = "torch"
    num_threads: int = 1
    device: str = "cpu"
    max_batch_frames: int = 256


@dataclass(frozen=True)
class ScoreTask:
    """One video's entities to score (picklable).

    Attributes:
        root, split, video_id: where the prepared files are.
        entities: per entity ``(entity_id, frame_timestamps_s)`` with ascending unique
            timestamps.
        config: the scoring configuration.
    """

    root: str
    split: str
    video_id: str
    entities: tuple[tuple[str, np.ndarray], ...]
    config: ScoreConfig


@dataclass(frozen=True)
class ScoreIssue:
    """An entity that could not be scored (missing or unreadable files)."""

    video_id: str
    entity_id: str
    reason: str


@dataclass
class EntityScores:
    """Per-frame output for one entity.

    Attributes:
        entity_id: the entity.
        frame_timestamps_s: ``(T,)`` float64, ascending.
        logits: ``(T, 2)`` float32 head outputs (class 0, class 1).
        probabilities: ``(T,)`` float64 ``softmax(logits)[:, 1]``.
    """

    entity_id: str
    frame_timestamps_s: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray


@dataclass
class VideoScoreResult:
    """What one per-video scoring task produced."""

    video_id: str
    entities: list[EntityScores] = field(default_factory=list)
    issues: list[ScoreIssue] = field(default_factory=list)
    worker: str = ""
    seconds: float = 0.0


@dataclass
class ScoreSummary:
    """The outcome of :func:`score_dataset`.

    Attributes:
        predictions: prediction table (:data:`~socialav.io.ava_csv.PREDICTION_COLUMNS`),
            the ground-truth rows in their order, without the rows of unscored entities.
        issues: entities that could not be scored.
        videos: per-video task results (without the per-frame arrays).
    """

    predictions: pd.DataFrame
    issues: list[ScoreIssue]
    videos: list[VideoScoreResult]


# ----------------------------------------------------------------------------------------------
# Loading one entity as the reference evaluation loader does
# ----------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------
# One video (runs in a worker; the model is loaded once per process)
# ----------------------------------------------------------------------------------------------
_RUNNERS: dict[tuple, object] = {}
_RUNNERS_LOCK = threading.Lock()


def _runner_for(config: ScoreConfig):
    """The model runner of this process for ``config`` (loaded on first use, then kept)."""
    key = (config.weights, config.backend, config.num_threads, config.device)
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            from socialav.inference.backends import configure_threads, load_asd_runner

            configure_threads(config.num_threads)
            cv2.setNumThreads(1)
            runner, _, _ = load_asd_runner(
                config.weights,
                backend=config.backend,
                device=config.device,
                num_threads=config.num_threads,
            )
            _RUNNERS[key] = runner
            logger.info("%s: loaded %s (%s)", worker_name(), config.weights, config.backend)
    return runner


def score_video(task: ScoreTask) -> VideoScoreResult:
    """Score one video's entities (a task of :func:`score_dataset`).

    Entities with missing or unreadable files are reported in ``issues``, not raised.

    Raises:
        socialav.hub.WeightsError, FileNotFoundError: the weights cannot be found.
    """
    from socialav.inference.asd import predict_tracks_logits
    from socialav.inference.segments import speaking_probability

    t_start = time.perf_counter()
    layout = DatasetLayout(Path(task.root))
    result = VideoScoreResult(task.video_id, worker=worker_name())
    inputs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    for entity_id, timestamps in task.entities:
        paths = [layout.face_path(task.split, task.video_id, entity_id, t) for t in timestamps]
        wav = layout.audio_path(task.split, task.video_id, entity_id)
        try:
            faces = load_entity_faces(paths)
            rate, samples = scipy.io.wavfile.read(wav)
        except (OSError, ValueError) as exc:
            result.issues.append(ScoreIssue(task.video_id, entity_id, str(exc)))
            continue
        if rate != AUDIO_SAMPLE_RATE or samples.ndim != 1:
            result.issues.append(
                ScoreIssue(
                    task.video_id,
                    entity_id,
                    f"{wav}: expected 16 kHz mono, found {rate} Hz with shape {samples.shape}",
                )
            )
            continue
        mfcc = entity_mfcc(samples, len(faces), entity_fps(timestamps))
        inputs.append((entity_id, timestamps, faces, mfcc))
    if inputs:
        runner = _runner_for(task.config)
        logits = predict_tracks_logits(
            runner,
            [(faces, mfcc) for _, _, faces, mfcc in inputs],
            task.config.windows,
            max_batch_frames=task.config.max_batch_frames,
        )
        for (entity_id, timestamps, _, _), lg in zip(inputs, logits, strict=True):
            if np.isnan(lg).any():  # cannot happen with 4 MFCC frames per face
                raise RuntimeError(f"{entity_id}: the model left frames without a score")
            result.entities.append(
                EntityScores(
                    entity_id,
                    timestamps,
                    lg,
                    speaking_probability(lg).astype(np.float64),
                )
            )
    result.seconds = time.perf_counter() - t_start
    return result


# ----------------------------------------------------------------------------------------------
# The whole split
# ----------------------------------------------------------------------------------------------
def predictions_frame(groundtruth: pd.DataFrame, scores: list[EntityScores]) -> pd.DataFrame:
    """Prediction rows for the ground-truth rows that have a score, joined by key.

    Args:
        groundtruth: ground-truth table (:func:`~socialav.io.ava_csv.read_ava_csv`).
        scores: per-entity scores.

    Returns:
        The ground-truth rows (in their order) that have a score under
        ``(entity_id, frame_timestamp)``, with ``label = SPEAKING_AUDIBLE`` and ``score``
        (columns :data:`~socialav.io.ava_csv.PREDICTION_COLUMNS`).

    Raises:
        ValueError: the scores hold a key twice.
    """
    keys = pd.DataFrame(
        {
            "entity_id": np.concatenate(
                [np.full(len(s.frame_timestamps_s), s.entity_id, dtype=object) for s in scores]
            )
            if scores
            else np.array([], dtype=object),
            "frame_timestamp": np.concatenate([s.frame_timestamps_s for s in scores])
            if scores
            else np.array([], dtype=np.float64),
            "score": np.concatenate([s.probabilities for s in scores])
            if scores
            else np.array([], dtype=np.float64),
        }
    )
    if keys.duplicated(["entity_id", "frame_timestamp"]).any():
        raise ValueError("scores hold some (entity_id, frame_timestamp) key twice")
    merged = groundtruth.merge(
        keys, on=["entity_id", "frame_timestamp"], how="inner", sort=False, validate="many_to_one"
    )
    merged["label"] = AvaLabel.SPEAKING_AUDIBLE.value
    return merged[list(PREDICTION_COLUMNS)].reset_index(drop=True)


def plan_scoring(
    groundtruth: pd.DataFrame, root: str | Path, split: str, config: ScoreConfig
) -> list[ScoreTask]:
    """One :class:`ScoreTask` per ``video_id``, in ``video_id`` order."""
    tasks = []
    for video_id, rows in groundtruth.groupby("video_id", sort=True):
        entities = []
        for entity_id, group in rows.groupby("entity_id", sort=True):
            timestamps = np.unique(group["frame_timestamp"].to_numpy(np.float64))
            entities.append((str(entity_id), timestamps))
        tasks.append(ScoreTask(str(root), split, str(video_id), tuple(entities), config))
    return tasks


def score_dataset(
    root: str | Path,
    split: str,
    csv_path: str | Path | None = None,
    config: ScoreConfig = ScoreConfig(),
    *,
    workers: int = 1,
    cluster: str | ClusterSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score every entity of a prepared split (see the module docstring).

    Args:
        root: dataset root written by ``socialav data prepare``.
        split: split name.
        csv_path: ground-truth CSV (default ``ROOT/csv/<split>_orig.csv``).
        config: model, windows, backend, threads.
        workers: local worker processes (each loads the model once).
        cluster: Dask cluster (``"local:N"`` or a scheduler address), one task per video.
        progress: called as ``progress(videos_done, videos_total)``.

    Returns:
        :class:`ScoreSummary`; its ``predictions`` lack the rows of entities in ``issues``.

    Raises:
        FileNotFoundError: the CSV or the weights do not exist.
        AvaCsvError: the CSV is malformed.
    """
    layout = DatasetLayout(Path(root))
    csv_path = Path(csv_path) if csv_path is not None else layout.csv_path(split)
    groundtruth = read_ava_csv(csv_path, "groundtruth")
    if not layout.videos_dir(split).is_dir():
        raise FileNotFoundError(
            f"{layout.videos_dir(split)} does not exist: prepare the split first "
            f"(socialav data prepare --split {split} --out {layout.root})"
        )
    tasks = plan_scoring(groundtruth, layout.root, split, config)
    results: list[VideoScoreResult | None] = [None] * len(tasks)
    done = 0
    if progress:
        progress(0, len(tasks))
    for index, result in run_tasks(
        score_video, tasks, workers=workers, cluster=cluster, name="score"
    ):
        results[index] = result
        done += 1
        if progress:
            progress(done, len(tasks))
    videos = [r for r in results if r is not None]
    scores = [s for v in videos for s in v.entities]
    predictions = predictions_frame(groundtruth, scores)
    issues = [i for v in videos for i in v.issues]
    for v in videos:
        v.entities = []  # the per-frame arrays are in `predictions` now
    return ScoreSummary(predictions, issues, videos)


def write_predictions(predictions: pd.DataFrame, path: str | Path, header: bool = True) -> int:
    """Write a prediction CSV atomically (see
    :func:`~socialav.io.ava_csv.write_ava_csv_frame`); returns the number of rows."""
    return write_ava_csv_frame(predictions, path, "predictions", header=header)
