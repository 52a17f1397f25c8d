"""``socialav detect``: video → face tracks → per-frame speaking probability → output files.

One streaming pass over the decoded video does everything that needs pixels:

1. decode on the 25 fps timeline (:func:`socialav.io.media.iter_frames`);
2. shot boundaries (:class:`~socialav.vision.shots.ShotBoundaryDetector`): a face track never
   crosses a cut;
3. face detection on every ``detect_every``-th frame and IoU tracking with interpolation
   (:class:`~socialav.vision.tracking.FaceTracker`);
4. face crops, cut as soon as a frame's smoothed crop geometry is final (the 13-frame median
   needs 6 frames of look-ahead, the tracker up to ``max_gap_frames`` more), from a short ring
   buffer of recent frames — so memory does not grow with the video's length, only with the
   length of the face tracks (112×112 bytes per face and frame);
5. finished tracks are scored by the ASD model in batches (:mod:`socialav.inference`) and
   their crops freed.

Then :func:`write_outputs` writes the AVA CSV, RTTM, JSON, timeline and annotated video
(a second decoding pass) into a temporary folder and moves them into place.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import os
import platform
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from socialav import __version__, hub
from socialav.audio.features import track_mfcc
from socialav.inference import (
    DEFAULT_BACKEND,
    WindowConfig,
    configure_threads,
    make_runner,
    predict_tracks_logits,
)
from socialav.io.media import NoAudioStreamError, iter_frames, probe_video, read_audio
from socialav.models.checkpoints import load_asd_model
from socialav.postprocess import SegmentConfig, smooth, speaking_probability, speaking_segments
from socialav.social import social_series
from socialav.types import FaceTrack, TrackScores, VideoInfo
from socialav.vision.crops import DEFAULT_CROP_SCALE, crop_face
from socialav.vision.detection import UltraLightFaceDetector
from socialav.vision.head_pose import FSANetHeadPose, HeadPoseTracker
from socialav.vision.shots import ShotBoundaryDetector
from socialav.vision.tracking import FaceTracker, TrackerConfig, smooth_crop_geometry

logger = logging.getLogger(__name__)

__all__ = [
    "DetectConfig",
    "DetectResult",
    "Progress",
    "OUTPUT_SUFFIXES",
    "detect_speakers",
    "output_paths",
    "outputs_exist",
    "write_outputs",
]

#: ``progress(stage, done, total)``; ``total`` may be None when unknown.
Progress = Callable[[str, int, int | None], None]

#: Questions ``detect`` can answer per face and frame.
TASKS: tuple[str, ...] = ("asd", "lam", "ttm")

#: Output kinds and their file suffixes (``<stem><suffix>`` in the output folder).
OUTPUT_SUFFIXES: dict[str, str] = {
    "csv": ".ava.csv",
    "rttm": ".rttm",
    "json": ".json",
    "timeline": ".timeline.png",
    "video": ".annotated.mp4",
}


@dataclass(frozen=True)
class DetectConfig:
    """Everything ``socialav detect`` can be told; defaults chosen by the benchmarks in
    ``benchmarks/`` (see README: *Choosing the defaults*).

    Attributes:
        asd_weights: registry name of the ASD weights (``socialav weights list``).
        windows: window durations and visual context for scoring (see
            :class:`socialav.inference.WindowConfig`). Default: consecutive 6 s windows, each
            scored on its own (the longest window of the Light-ASD demo; one pass over each
            frame plus short recomputations at window edges). On the GRID benchmark the demo's
            1-6 s average gave the same natural AP (98.55 vs 98.54 for one pass) at about half
            the speed; a bounded window keeps long tracks within the clip lengths the models
            were trained on.
        backend: ``torch`` / ``onnx`` / ``onnx-int8`` (see :mod:`socialav.inference`).
        face_detector: registry name of the face detector weights.
        detector_score_threshold: minimum face detector confidence.
        detect_every: run the face detector on every n-th frame, track in between.
        tracker: face-tracking parameters (TalkNet/Light-ASD demo defaults).
        shot_threshold: PySceneDetect ``ContentDetector`` threshold (its default 27).
        crop_scale: face-crop context (the demo's ``--cropScale`` 0.40).
        segments: probability smoothing and speaking-segment rules.
        num_threads: CPU threads for PyTorch and onnxruntime (None: all cores).
        score_batch_frames: score finished tracks once this many face-frames wait (bounds
            the memory held by crops and by the scoring of one batch).
        model_batch_frames: face-frames per visual-encoder call (its activations take about
            2 MB per frame; 32 keeps the peak low at no measured cost in speed).
        tasks: what to answer per face and frame: ``asd`` (is this person speaking; always
            on), ``lam`` (looking at the camera: FSA-Net head pose, :mod:`socialav.social`),
            ``ttm`` (talking to the camera wearer: speaking × looking over ±1 s; implies
            ``lam``).
    """

    asd_weights: str = "lr-asd-ava"
    windows: WindowConfig = field(default_factory=lambda: WindowConfig(durations_s=(6.0,)))
    backend: str = DEFAULT_BACKEND
    face_detector: str = "ultra-light-face-rfb-320"
    detector_score_threshold: float = 0.7
    detect_every: int = 3
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    shot_threshold: float = 27.0
    crop_scale: float = DEFAULT_CROP_SCALE
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    num_threads: int | None = None
    score_batch_frames: int = 600
    model_batch_frames: int = 32
    tasks: tuple[str, ...] = ("asd",)

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; expected some of {list(TASKS)}")
        tasks = {"asd", *self.tasks} | ({"lam"} if "ttm" in self.tasks else set())
        object.__setattr__(self, "tasks", tuple(t for t in TASKS if t in tasks))
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be ≥ 1, but got {self.detect_every}")
        if self.tracker.detect_every != self.detect_every:
            object.__setattr__(
                self,
                "tracker",
                TrackerConfig(**{**asdict(self.tracker), "detect_every": self.detect_every}),
            )


@dataclass
class DetectResult:
    """What :func:`detect_speakers` found in one video.

    Attributes:
        video: decoder information.
        tracks: face tracks, ``track_id`` 0, 1, 2 ... in order of first appearance.
        scores: one :class:`TrackScores` per track, same order.
        timings_s: wall-clock seconds per stage (``decode``, ``shots``, ``detect``,
            ``crop``, ``audio``, ``model``, ``total``).
        run_info: model, weights (name + sha256), configuration and library versions, for
            the JSON output.
    """

    video: VideoInfo
    tracks: list[FaceTrack]
    scores: list[TrackScores]
    timings_s: dict[str, float]
    run_info: dict[str, Any]

    @property
    def real_time_factor(self) -> float:
        """Video seconds processed per wall-clock second (> 1 is faster than real time)."""
        total = self.timings_s.get("total", 0.0)
        return self.video.duration_s / total if total > 0 else float("inf")


class AnalysedTrack(NamedTuple):
    """One finished face track from the analysis pass.

    Attributes:
        track: the face track.
        crops: ``(T, 112, 112)`` uint8 grayscale face crops (the ASD models' input).
        head_pose_deg: ``(T, 3)`` float32 yaw, pitch, roll in degrees (FSA-Net, sampled on
            detection frames and interpolated), or None when ``lam``/``ttm`` are off.
    """

    track: FaceTrack
    crops: np.ndarray
    head_pose_deg: np.ndarray | None


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now


class _IncrementalCropper:
    """Cuts face crops of open tracks as soon as their smoothed geometry is final.

    The crop geometry of frame ``t`` is the 13-frame median (zero-padded at the track's start
    and end, as ``scipy.signal.medfilt`` in the demo) of the interpolated boxes, so it is final
    once the track has a detection at ``t + 6`` or later; the rest is cut when the track
    closes, from the final :class:`FaceTrack`. Frames are held in a ring buffer only while some
    open track may still need them.
    """

    def __init__(self, kernel: int, crop_scale: float) -> None:
        self.half = kernel // 2
        self.kernel = kernel
        self.crop_scale = crop_scale
        self.frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self.crops: dict[int, list[np.ndarray]] = {}
        self.next_frame: dict[int, int] = {}

    def add_frame(self, frame_index: int, frame: np.ndarray) -> None:
        self.frames[frame_index] = frame

    def _cut(self, key: int, frame_indices: np.ndarray, geometry: np.ndarray) -> None:
        out = self.crops.setdefault(key, [])
        for t, (s, cx, cy) in zip(frame_indices, geometry, strict=True):
            frame = self.frames.get(int(t))
            if frame is None:
                raise RuntimeError(
                    f"frame {t} left the crop buffer before face track {key} was cut there"
                )
            out.append(crop_face(frame, float(s), float(cx), float(cy), self.crop_scale))
        if len(frame_indices):
            self.next_frame[key] = int(frame_indices[-1]) + 1

    def advance_open(self, open_tracks: Iterable[tuple[int, list[int], list[np.ndarray]]]) -> None:
        """Cut the frames of open tracks whose geometry became final.

        Args:
            open_tracks: ``FaceTracker.open_tracks()``: per open track its key and the lists
                of detection frames and boxes (only their tails are read).
        """
        for key, det_frames, det_boxes in open_tracks:
            first = int(det_frames[0])
            start = self.next_frame.setdefault(key, first)
            final_upto = int(det_frames[-1]) - self.half
            if final_upto < start:
                continue
            lo = max(first, start - self.half)
            hi = final_upto + self.half
            tail = max(bisect.bisect_left(det_frames, lo) - 1, 0)
            frames_d = np.asarray(det_frames[tail:], dtype=np.float64)
            boxes_d = np.asarray(det_boxes[tail:], dtype=np.float64)
            frames = np.arange(lo, hi + 1)
            boxes = np.stack([np.interp(frames, frames_d, boxes_d[:, j]) for j in range(4)], axis=1)
            # rows start-lo.. have their whole 13-frame window inside [lo, hi] (or reach the
            # track's true start, where the zero padding is the demo's too)
            geometry = smooth_crop_geometry(boxes, self.kernel)
            rows = slice(start - lo, final_upto - lo + 1)
            self._cut(key, frames[rows], geometry[rows])

    def close(self, key: int, track: FaceTrack | None) -> np.ndarray | None:
        """Cut what is left of a closed track; return all its crops ``(T, 112, 112)``."""
        if track is None:  # rejected by the tracker (too short / too small)
            self.crops.pop(key, None)
            self.next_frame.pop(key, None)
            return None
        start = self.next_frame.pop(key, track.start_frame)
        rows = slice(start - track.start_frame, None)
        self._cut(key, track.frame_indices[rows], track.crop_size_cx_cy_px[rows])
        self.next_frame.pop(key, None)
        crops = self.crops.pop(key, [])
        if len(crops) != len(track):
            raise RuntimeError(
                f"face track {track.track_id}: {len(crops)} crops, {len(track)} frames"
            )
        return np.stack(crops)

    def prune(self, current_frame: int) -> None:
        """Drop buffered frames that no open track can still need."""
        keep_from = min(self.next_frame.values(), default=current_frame)
        keep_from = min(keep_from, current_frame)
        while self.frames and next(iter(self.frames)) < keep_from:
            self.frames.popitem(last=False)


def _release_freed_memory() -> None:
    """Hand memory freed after a scoring batch back to the OS (glibc keeps it otherwise, and
    the resident size of a long video would creep up batch after batch)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _versions() -> dict[str, str]:
    import av
    import onnxruntime
    import torch

    return {
        "socialav": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "av": av.__version__,
        "numpy": np.__version__,
    }


class SpeakerDetector:
    """Loaded models and configuration, reusable across videos (load once, run many)."""

    def __init__(self, config: DetectConfig = DetectConfig()) -> None:
        self.config = config
        self.num_threads = configure_threads(config.num_threads or (os.cpu_count() or 1))
        cv2.setNumThreads(1)  # crops are small: OpenCV's pool only adds overhead here
        asd_path = hub.resolve_weights(config.asd_weights)
        entry = hub.get_entry(config.asd_weights)
        self.model = load_asd_model(asd_path, architecture=entry.architecture.replace("_", "-"))
        self.runner = make_runner(self.model, config.backend, num_threads=self.num_threads)
        det_path = hub.resolve_weights(config.face_detector)
        self.detector = UltraLightFaceDetector(
            det_path,
            score_threshold=config.detector_score_threshold,
            intra_op_num_threads=self.num_threads,
        )
        self._head_pose: FSANetHeadPose | None = None
        if {"lam", "ttm"} & set(config.tasks):
            self._head_pose = FSANetHeadPose(num_threads=self.num_threads)
        self.weights_info = {
            "asd": {"name": entry.name, "sha256": entry.sha256, "architecture": entry.architecture},
            "face_detector": {
                "name": config.face_detector,
                "sha256": hub.get_entry(config.face_detector).sha256,
            },
        }
        if self._head_pose is not None:
            self.weights_info["head_pose"] = [
                {"name": n, "sha256": hub.get_entry(n).sha256} for n in ("fsanet-1x1", "fsanet-var")
            ]

    def _head_pose_tracker(self) -> HeadPoseTracker | None:
        if not {"lam", "ttm"} & set(self.config.tasks):
            return None
        if self._head_pose is None:
            self._head_pose = FSANetHeadPose(num_threads=self.num_threads)
        return HeadPoseTracker(self._head_pose)

    def face_tracks(
        self,
        path: str | Path,
        video: VideoInfo,
        timer: _Timer | None = None,
        progress: Progress | None = None,
        stats: dict[str, int] | None = None,
    ) -> Iterator[AnalysedTrack]:
        """Stream the video once and yield each finished face track with its crops.

        Args:
            path: the video file.
            video: its :func:`~socialav.io.media.probe_video` record.
            timer: accumulates seconds per stage (``decode``, ``shots``, ``detect``, ``crop``).
            progress: called as ``progress("analyse", frames_done, num_frames)``.
            stats: if given, receives ``num_shot_cuts``.

        Yields:
            :class:`AnalysedTrack` records, in the order tracks end (not by ``track_id``).
        """
        cfg = self.config
        timer = timer or _Timer()
        shots = ShotBoundaryDetector(threshold=cfg.shot_threshold, fps=video.fps)
        tracker = FaceTracker(cfg.tracker)
        cropper = _IncrementalCropper(cfg.tracker.smoothing_kernel, cfg.crop_scale)
        num_cuts = 0
        last_detect = -cfg.detect_every

        head_pose = self._head_pose_tracker()

        def closed() -> Iterator[AnalysedTrack]:
            for key, track in tracker.pop_closed():
                t0 = time.perf_counter()
                crops = cropper.close(key, track)
                t0 = timer.add("crop", t0)
                angles = None
                if head_pose is not None:
                    if track is None:
                        head_pose.discard(key)
                    else:
                        angles = head_pose.finish(key, track.frame_indices)
                    timer.add("head_pose", t0)
                if track is not None and crops is not None:
                    yield AnalysedTrack(track, crops, angles)

        t = time.perf_counter()
        for frame_index, frame in iter_frames(path, fps=video.fps):
            t = timer.add("decode", t)
            cut = shots.update(frame_index, frame)
            if cut:
                num_cuts += 1
                tracker.end_shot()
            t = timer.add("shots", t)
            # detect on the first frame of every shot, then on every detect_every-th frame
            dets = None
            if cut or frame_index - last_detect >= cfg.detect_every:
                dets = self.detector.detect(frame)
                last_detect = frame_index
            tracker.update(frame_index, dets)
            t = timer.add("detect", t)
            if head_pose is not None and dets is not None:
                head_pose.update_open_tracks(frame_index, frame, tracker.open_tracks())
                t = timer.add("head_pose", t)
            cropper.add_frame(frame_index, frame)
            yield from closed()
            t = time.perf_counter()
            cropper.advance_open(tracker.open_tracks())
            cropper.prune(frame_index)
            t = timer.add("crop", t)
            if progress:
                progress("analyse", frame_index + 1, video.num_frames)
            t = time.perf_counter()
        tracker.finish()
        yield from closed()
        if stats is not None:
            stats["num_shot_cuts"] = num_cuts

    def run(self, path: str | Path, progress: Progress | None = None) -> DetectResult:
        """Detect faces and score who speaks in one video (see the module docstring).

        Raises:
            socialav.io.media.MediaError: unreadable, truncated or corrupt video.
            socialav.io.media.NoAudioStreamError: the video has no audio stream.
        """
        cfg = self.config
        timer = _Timer()
        t_start = time.perf_counter()
        video = probe_video(path, fps=cfg.windows.fps)
        if not video.has_audio:
            raise NoAudioStreamError(
                f"{path}: expected an audio stream (active speaker detection needs the "
                "soundtrack), found only video"
            )
        t = time.perf_counter()
        audio = read_audio(path)
        timer.add("audio", t)

        done_tracks: list[FaceTrack] = []
        done_logits: dict[int, np.ndarray] = {}
        pending: list[tuple[FaceTrack, np.ndarray, np.ndarray]] = []
        head_poses: dict[int, np.ndarray] = {}
        stats: dict[str, int] = {}

        def score_pending() -> None:
            nonlocal pending
            if not pending:
                return
            t0 = time.perf_counter()
            logits = predict_tracks_logits(
                self.runner,
                [(f, m) for _, f, m in pending],
                cfg.windows,
                max_batch_frames=cfg.model_batch_frames,
            )
            for (track, _, _), lg in zip(pending, logits, strict=True):
                done_logits[track.track_id] = lg
            pending = []
            _release_freed_memory()
            timer.add("model", t0)

        for track, crops, angles in self.face_tracks(path, video, timer, progress, stats):
            if angles is not None:
                head_poses[track.track_id] = angles
            t0 = time.perf_counter()
            mfcc = track_mfcc(audio, track.start_frame, track.end_frame, video.fps)
            timer.add("audio", t0)
            done_tracks.append(track)
            pending.append((track, crops, mfcc))
            if sum(len(tr) for tr, _, _ in pending) >= cfg.score_batch_frames:
                score_pending()
        score_pending()
        num_cuts = stats.get("num_shot_cuts", 0)

        t = time.perf_counter()
        scores = []
        done_tracks.sort(key=lambda tr: tr.track_id)
        for track in done_tracks:
            logits = done_logits[track.track_id]
            prob = smooth(speaking_probability(logits), cfg.segments.smooth_frames)
            extra = {}
            if track.track_id in head_poses:
                series = social_series(head_poses[track.track_id], prob, video.fps)
                extra = {task: series[task] for task in ("lam", "ttm") if task in cfg.tasks}
            scores.append(
                TrackScores(
                    track_id=track.track_id,
                    frame_indices=track.frame_indices,
                    logits=logits[:, 1],
                    probabilities=prob,
                    segments=speaking_segments(prob, track.frame_indices, cfg.segments, video.fps),
                    extra=extra,
                )
            )
        timer.add("postprocess", t)
        timer.seconds["total"] = time.perf_counter() - t_start
        run_info = {
            "tasks": list(cfg.tasks),
            "model": self.weights_info["asd"]["architecture"],
            "weights": self.weights_info,
            "backend": cfg.backend,
            "windows_s": list(cfg.windows.durations_s or []),
            "visual_context": cfg.windows.visual_context,
            "probability": "softmax of the 2-way head, class 1 (= sigmoid(l1 - l0))",
            "logits": "class-1 output of the 2-way head, mean over windows",
            "segments": asdict(cfg.segments),
            "lam": "zero-shot: P(looking at camera) from FSA-Net yaw/pitch (socialav.social)"
            if "lam" in cfg.tasks
            else None,
            "ttm": "zero-shot: P(speaking) x min(1, mean P(looking) over +-1 s / 0.4)"
            if "ttm" in cfg.tasks
            else None,
            "detect_every": cfg.detect_every,
            "num_shot_cuts": num_cuts,
            "num_threads": self.num_threads,
            "timings_s": {k: round(v, 3) for k, v in timer.seconds.items()},
            "versions": _versions(),
        }
        return DetectResult(video, done_tracks, scores, dict(timer.seconds), run_info)


def detect_speakers(
    path: str | Path, config: DetectConfig = DetectConfig(), progress: Progress | None = None
) -> DetectResult:
    """One-call form of :class:`SpeakerDetector` (loads the models each time)."""
    return SpeakerDetector(config).run(path, progress)


def output_paths(video_path: str | Path, output_dir: str | Path) -> dict[str, Path]:
    """Where each output of one video goes: ``<output_dir>/<stem><suffix>``."""
    stem = Path(video_path).stem
    return {kind: Path(output_dir) / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def outputs_exist(video_path: str | Path, output_dir: str | Path, kinds: Iterable[str]) -> bool:
    """True if every requested output of this video is already in ``output_dir``."""
    paths = output_paths(video_path, output_dir)
    return all(paths[k].is_file() for k in kinds)


def write_outputs(
    result: DetectResult,
    output_dir: str | Path,
    kinds: Iterable[str] = tuple(OUTPUT_SUFFIXES),
    threshold: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Write the requested outputs of one video, all or nothing.

    Everything is written into a temporary folder inside ``output_dir`` and then renamed into
    place, so an error (or Ctrl-C) leaves no partial file, and a rerun replaces old outputs.

    Returns:
        kind → final path, for the kinds written.

    Raises:
        OSError: the output folder cannot be created or written.
    """
    from socialav.io.annotate import write_annotated_video
    from socialav.io.plots import plot_timeline
    from socialav.io.writers import write_ava_csv, write_json, write_rttm

    kinds = list(kinds)
    unknown = set(kinds) - set(OUTPUT_SUFFIXES)
    if unknown:
        raise ValueError(
            f"unknown output kinds {sorted(unknown)}; expected {list(OUTPUT_SUFFIXES)}"
        )
    threshold = result.run_info["segments"]["threshold"] if threshold is None else threshold
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_paths(result.video.path, output_dir)
    video, tracks, scores = result.video, result.tracks, result.scores
    tmp_dir = Path(tempfile.mkdtemp(prefix=".socialav-", dir=output_dir))
    try:
        tmp = {k: tmp_dir / final[k].name for k in kinds}
        t = time.perf_counter()
        if "csv" in tmp:
            write_ava_csv(tmp["csv"], video, tracks, scores)
        if "rttm" in tmp:
            write_rttm(tmp["rttm"], video, scores)
        if "timeline" in tmp:
            plot_timeline(tmp["timeline"], video, scores, threshold=threshold)
        result.timings_s["write"] = time.perf_counter() - t
        if "video" in tmp:
            t = time.perf_counter()
            cb = (lambda done, total: progress("video", done, total)) if progress else None
            write_annotated_video(
                tmp["video"], video.path, video, tracks, scores, threshold=threshold, progress=cb
            )
            result.timings_s["video"] = time.perf_counter() - t
        if "json" in tmp:  # last, so that it records the output timings too
            info = dict(result.run_info)
            info["timings_s"] = {k: round(v, 3) for k, v in result.timings_s.items()}
            write_json(tmp["json"], video, tracks, scores, info)
        for kind, path in tmp.items():
            os.replace(path, final[kind])
        return {k: final[k] for k in kinds}
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
