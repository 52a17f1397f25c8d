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

With ``DetectConfig.context_weights`` (``socialav detect --context``) a scene-context model
(TalkNet+DeiT style, :mod:`socialav.models.scene_context`) replaces the ASD model: step 1 also
encodes every analysed frame once with its scene encoder, in batches of
``scene_batch_frames`` as the frames stream by (only the ``(num_frames, D)`` embeddings are
kept, never the frames), and step 5 scores each track with the base ASD model plus the
embeddings of its frames (:func:`predict_tracks_logits_with_context`).

With ``DetectConfig.lam_weights`` / ``ttm_weights`` (``--lam-weights`` / ``--ttm-weights``),
Ego4D-trained LAM/TTM models (:mod:`socialav.social_models`) replace the zero-shot rules of
:mod:`socialav.social`: step 4 also cuts RGB face crops at the checkpoints' sizes and the
per-frame visual quality (the training samples' ``crop_face_box`` / ``frame_quality``) as soon
as a frame's box is final (:class:`_SocialInputCropper`), and each track is scored by those
models when it ends (with its audio span), after which its RGB crops are freed. FSA-Net head
pose then runs only for a zero-shot LAM.

Then :func:`write_outputs` writes the AVA CSV, RTTM, JSON, timeline, annotated video
(a second decoding pass) and HTML report into a temporary folder and moves them into place.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from socialav import __version__, hub
from socialav.audio.features import track_audio, track_mfcc
from socialav.inference import (
    DEFAULT_BACKEND,
    ASDRunner,
    WindowConfig,
    configure_threads,
    make_runner,
    predict_tracks_logits,
)
from socialav.io.media import NoAudioStreamError, iter_frames, probe_video, read_audio
from socialav.models.checkpoints import load_asd_model
from socialav.models.light_asd import AudioVisualASD
from socialav.models.lr_asd import LRASD
from socialav.models.scene_context import SceneContextASD
from socialav.postprocess import SegmentConfig, smooth, speaking_probability, speaking_segments
from socialav.social import social_series, talking_to_me_probability
from socialav.social_models import (
    TrainedSocialModel,
    load_social_checkpoint,
    social_face_inputs,
)
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
    "SceneEmbeddingStream",
    "load_context_model",
    "predict_tracks_logits_with_context",
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
    "report": ".report.html",
}


@dataclass(frozen=True)
class DetectConfig:
    """Everything ``socialav detect`` can be told; defaults chosen by the benchmarks in
    ``benchmarks/`` (see README: *Choosing the defaults*).

    Attributes:
        asd_weights: registry name of the ASD weights (``socialav weights list``) or the path
            of a Light-ASD / LR-ASD checkpoint (socialav or original; :func:`load_asd_weights`).
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
        lam_weights: a socialav ``gaze-lstm`` checkpoint (Ego4D-trained Looking-at-Me,
            :mod:`socialav.social_models`) that replaces the zero-shot ``lam`` rule; implies
            the ``lam`` task. ``None``: zero-shot.
        ttm_weights: socialav ``quavf-visual`` and/or ``quavf-audio`` checkpoints
            (Ego4D-trained Talking-to-Me, fused by quality when both are given) that replace
            the zero-shot ``ttm`` rule; imply the ``ttm`` task. ``()``: zero-shot.
        context_weights: a socialav ``scene-context`` checkpoint (file path or weights-registry
            name) whose model replaces the ASD model of ``asd_weights`` (see the module
            docstring); ``None``: no scene context.
        scene_batch_frames: frames per scene-encoder call with ``context_weights``.
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
    lam_weights: str | None = None
    ttm_weights: tuple[str, ...] = ()
    context_weights: str | None = None
    scene_batch_frames: int = 32

    def __post_init__(self) -> None:
        if self.scene_batch_frames < 1:
            raise ValueError(f"scene_batch_frames must be ≥ 1, but got {self.scene_batch_frames}")
        # trained LAM/TTM checkpoints switch their task on
        ttm = (self.ttm_weights,) if isinstance(self.ttm_weights, str | Path) else self.ttm_weights
        object.__setattr__(self, "ttm_weights", tuple(str(p) for p in ttm))
        if self.lam_weights is not None:
            object.__setattr__(self, "lam_weights", str(self.lam_weights))
        trained = ("lam",) * bool(self.lam_weights) + ("ttm",) * bool(self.ttm_weights)
        object.__setattr__(self, "tasks", (*self.tasks, *trained))
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


class _SocialInputCropper:
    """RGB face crops and visual quality of open tracks for the trained LAM/TTM models
    (``DetectConfig.lam_weights`` / ``ttm_weights``), cut while the video streams.

    Per frame of a track: :func:`~socialav.social_models.social_face_inputs` of the track's
    box (``crop_face_box`` at each checkpoint's ``face_size_px``, and ``frame_quality`` of the
    box pixels), i.e. what the Ego4D training samples are cut with. A frame's box is final
    once the track has a detection at or after it (linear interpolation between detections,
    as :class:`~socialav.vision.tracking.FaceTracker` builds the :class:`FaceTrack`); the
    frames after its last detection (held boxes) are cut when the track closes. The quality
    is multiplied by the track's detector confidence on close. Frames are referenced (not
    copied) only while an open track still needs them; memory grows with the tracks'
    lengths: ``3 S^2`` bytes per face-frame (150 kB at 224 px), freed when the track is
    scored.
    """

    def __init__(self, sizes_px: Sequence[int], with_quality: bool) -> None:
        self.sizes_px = tuple(int(s) for s in sizes_px)
        self.with_quality = with_quality
        self.frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self.crops: dict[int, dict[int, list[np.ndarray]]] = {}
        self.quality: dict[int, list[float]] = {}
        self.next_frame: dict[int, int] = {}
        self.done: dict[int, tuple[dict[int, np.ndarray], np.ndarray | None]] = {}

    def add_frame(self, frame_index: int, frame: np.ndarray) -> None:
        self.frames[frame_index] = frame

    def _cut(self, key: int, frame_indices: np.ndarray, boxes: np.ndarray) -> None:
        crops = self.crops.setdefault(key, {s: [] for s in self.sizes_px})
        quality = self.quality.setdefault(key, [])
        for t, box in zip(frame_indices, boxes, strict=True):
            frame = self.frames.get(int(t))
            if frame is None:
                raise RuntimeError(
                    f"frame {t} left the frame buffer before face track {key} was cut there"
                )
            by_size, q = social_face_inputs(frame, box, self.sizes_px, self.with_quality)
            for s, crop in by_size.items():
                crops[s].append(crop)
            if q is not None:
                quality.append(q)
        if len(frame_indices):
            self.next_frame[key] = int(frame_indices[-1]) + 1

    def advance_open(self, open_tracks: Iterable[tuple[int, list[int], list[np.ndarray]]]) -> None:
        """Cut the frames of open tracks up to their latest detection."""
        for key, det_frames, det_boxes in open_tracks:
            start = self.next_frame.setdefault(key, int(det_frames[0]))
            last = int(det_frames[-1])
            if last < start:
                continue
            tail = max(bisect.bisect_right(det_frames, start) - 1, 0)
            frames_d = np.asarray(det_frames[tail:], dtype=np.float64)
            boxes_d = np.asarray(det_boxes[tail:], dtype=np.float64)
            frames = np.arange(start, last + 1)
            boxes = np.stack([np.interp(frames, frames_d, boxes_d[:, j]) for j in range(4)], 1)
            self._cut(key, frames, boxes.astype(np.float32))  # FaceTrack boxes are float32

    def close(self, key: int, track: FaceTrack | None) -> None:
        """Cut what is left of a closed track and keep its inputs for :meth:`pop`."""
        start = self.next_frame.pop(key, None)
        if track is None:  # rejected by the tracker (too short / too small)
            self.crops.pop(key, None)
            self.quality.pop(key, None)
            return
        start = track.start_frame if start is None else start
        rows = slice(start - track.start_frame, None)
        self._cut(key, track.frame_indices[rows], track.boxes_xyxy_px[rows])
        self.next_frame.pop(key, None)
        crops = {s: np.stack(c) for s, c in self.crops.pop(key, {}).items()}
        quality = self.quality.pop(key, [])
        if any(len(c) != len(track) for c in crops.values()):
            raise RuntimeError(f"face track {track.track_id}: crops do not cover its frames")
        q = None
        if self.with_quality:
            conf = np.clip(np.asarray(track.confidence, dtype=np.float64), 0.0, 1.0)
            q = np.asarray(quality, dtype=np.float64) * conf
        self.done[track.track_id] = (crops, q)

    def pop(self, track_id: int) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
        """``({size: (T, S, S, 3) uint8}, quality (T,) or None)`` of a closed track."""
        return self.done.pop(track_id)

    def prune(self, current_frame: int) -> None:
        """Drop buffered frames that no open track can still need."""
        keep_from = min(min(self.next_frame.values(), default=current_frame), current_frame)
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


# ----------------------------------------------------------------------------------------------
# Scene context (``socialav detect --context``)
# ----------------------------------------------------------------------------------------------
def load_context_model(weights: str | Path) -> tuple[SceneContextASD, dict[str, Any]]:
    """Load a socialav ``scene-context`` checkpoint given as a file path or a weights-registry
    name.

    Returns:
        ``(model, info)``: the :class:`~socialav.models.scene_context.SceneContextASD` in eval
        mode on the CPU, and what the JSON output records: ``name`` (as given), ``path``,
        ``sha256`` of the file, ``architecture`` (``scene-context``), ``base_architecture``,
        ``scene`` (the scene encoder's sizes), ``training_data``.

    Raises:
        FileNotFoundError: ``weights`` is neither a file nor a registry name.
        socialav.training.checkpoint.CheckpointError: not a socialav checkpoint, or one of
            another architecture (the message names it), another input contract, or weights
            that do not fit.
    """
    from socialav.training.checkpoint import load_model_checkpoint

    path = Path(weights)
    if not path.is_file():
        if str(weights) not in hub.REGISTRY:
            raise FileNotFoundError(
                f"context weights {str(weights)!r}: expected a socialav scene-context checkpoint "
                f"file or a weights-registry name ({', '.join(sorted(hub.REGISTRY))}), "
                "found neither"
            )
        path = hub.resolve_weights(str(weights))
    model, meta = load_model_checkpoint(path, architecture="scene-context")
    config = model.architecture_config()
    info = {
        "name": str(weights),
        "path": str(path),
        "sha256": hub.sha256_of(path),
        "architecture": "scene-context",
        "base_architecture": config["base"],
        "scene": config["scene"],
        "training_data": meta.get("training_data", ""),
    }
    return model, info


class SceneEmbeddingStream:
    """Scene embeddings of every frame of a video, computed while the frames stream by.

    Frames are turned into scene images (:func:`~socialav.models.scene_context.scene_image`)
    as they arrive and encoded in batches of ``batch_frames``; only the ``(num_frames,
    D_scene)`` float32 embeddings are kept (about 0.8 kB per frame for DeiT-Tiny widths).

    Args:
        model: a :class:`~socialav.models.scene_context.SceneContextASD` (its
            ``scene_encoder`` is used in eval mode, not modified).
        batch_frames: frames per encoder call.
        device: PyTorch device of the encoder.

    Attributes:
        seconds: wall-clock time spent in image resizing and encoding.
    """

    def __init__(self, model: SceneContextASD, batch_frames: int = 32, device: str = "cpu") -> None:
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be ≥ 1, but got {batch_frames}")
        self.encoder = model.scene_encoder.eval()
        self.size_px = int(model.scene_size_px)
        self.batch_frames = int(batch_frames)
        self.device = device
        self._pending: list[np.ndarray] = []
        self._store = np.empty((0, int(model.scene_dim)), np.float32)
        self.num_encoded = 0
        self.seconds = 0.0

    @property
    def num_frames(self) -> int:
        """Frames received so far."""
        return self.num_encoded + len(self._pending)

    def add(self, frame_index: int, frame_rgb: np.ndarray) -> None:
        """Take frame ``frame_index`` (``(H, W, 3)`` uint8 RGB); frames must arrive in order
        0, 1, 2, ...

        Raises:
            ValueError: a frame out of order, or not ``(H, W, 3)`` uint8.
        """
        from socialav.models.scene_context import scene_image

        if frame_index != self.num_frames:
            raise ValueError(
                f"frames must arrive in order: expected frame {self.num_frames}, got {frame_index}"
            )
        t0 = time.perf_counter()
        self._pending.append(scene_image(frame_rgb, self.size_px))
        self.seconds += time.perf_counter() - t0
        if len(self._pending) >= self.batch_frames:
            self.flush()

    def flush(self) -> None:
        """Encode the frames received but not yet encoded."""
        if not self._pending:
            return
        import torch

        from socialav.models.scene_context import scene_input

        t0 = time.perf_counter()
        x = torch.from_numpy(scene_input(np.stack(self._pending))).to(self.device)
        with torch.inference_mode():
            emb = self.encoder(x).float().cpu().numpy()
        needed = self.num_encoded + len(emb)
        if needed > len(self._store):
            grown = np.empty((max(needed, 2 * len(self._store)), emb.shape[1]), np.float32)
            grown[: self.num_encoded] = self._store[: self.num_encoded]
            self._store = grown
        self._store[self.num_encoded : needed] = emb
        self.num_encoded = needed
        self._pending = []
        self.seconds += time.perf_counter() - t0

    def embeddings(self, frame_indices: np.ndarray) -> np.ndarray:
        """``(T, D_scene)`` float32 embeddings of the given frames (encodes pending frames
        first when needed).

        Raises:
            IndexError: a frame that has not been received.
        """
        idx = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
        if len(idx) and idx.max() >= self.num_encoded:
            self.flush()
        if len(idx) and (idx.min() < 0 or idx.max() >= self.num_encoded):
            raise IndexError(
                f"scene embeddings exist for frames 0..{self.num_encoded - 1}, but frames "
                f"{int(idx.min())}..{int(idx.max())} were asked for"
            )
        return self._store[idx].copy()


def predict_tracks_logits_with_context(
    runner: ASDRunner,
    tracks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    windows: WindowConfig | None = None,
    max_batch_frames: int = 32,
    chunk_frames: int = 128,
) -> list[np.ndarray]:
    """Audio-visual logits of face tracks scored by a scene-context model: the base ASD
    model (``runner``, from :func:`socialav.inference.make_runner` on
    ``SceneContextASD.base``) with each frame's scene context added to its visual embedding
    before the back-end (``decode(audio, visual + W c)``,
    :meth:`~socialav.models.scene_context.SceneContextASD.forward_context`): windows,
    aggregation and NaN rows of :func:`socialav.inference.predict_tracks_logits`, which does
    the work (``visual_offsets``).

    Args:
        runner: the base model's runner (any backend).
        tracks: per track ``(faces, mfcc, context)``: ``faces`` ``(T, 112, 112)`` uint8,
            ``mfcc`` ``(N, 13)`` float32 (4 per video frame), ``context`` ``(T, 128)``
            float32: ``SceneContextASD.context_term`` of the scene embeddings of the track's
            frames.
        windows: window durations and visual context (``None``: :class:`WindowConfig`
            defaults, the demo's 1-6 s).
        max_batch_frames, chunk_frames: as :func:`~socialav.inference.predict_tracks_logits`.

    Returns:
        Per track, ``(T, 2)`` float32 logits; rows at and beyond ``usable_frames(T, N)`` NaN.

    Raises:
        ValueError: malformed inputs, naming the track and what was found.
    """
    return predict_tracks_logits(
        runner,
        [(faces, mfcc) for faces, mfcc, _ in tracks],
        windows or WindowConfig(),
        max_batch_frames=max_batch_frames,
        chunk_frames=chunk_frames,
        visual_offsets=[context for _, _, context in tracks],
    )


def load_asd_weights(weights: str) -> tuple[AudioVisualASD, dict[str, str]]:
    """The ASD model of ``weights`` and what the JSON records of it.

    Args:
        weights: a weights-registry name (``socialav weights list``), or the path of a
            checkpoint: a socialav checkpoint of ``light-asd`` / ``lr-asd`` (e.g. a
            ``socialav train`` output) or an original Light-ASD / LR-ASD ``.model`` file.

    Returns:
        ``(model in eval mode, {"name", "sha256", "architecture"})``.

    Raises:
        ValueError: neither a registry name nor an existing file.
        WeightsError, CheckpointError, CheckpointMismatchError: unusable weights (they say
            what was expected and found).
    """
    if weights in hub.REGISTRY:
        entry = hub.get_entry(weights)
        model = load_asd_model(
            hub.resolve_weights(weights), architecture=entry.architecture.replace("_", "-")
        )
        return model, {
            "name": entry.name,
            "sha256": entry.sha256,
            "architecture": entry.architecture,
        }
    path = Path(weights)
    if not path.is_file():
        raise ValueError(
            f"unknown weights {weights!r}; expected a checkpoint file or one of: "
            f"{', '.join(sorted(hub.REGISTRY))}"
        )
    model = load_asd_model(path)
    architecture = "lr-asd" if isinstance(model, LRASD) else "light-asd"
    return model, {"name": str(path), "sha256": hub.sha256_of(path), "architecture": architecture}


class SpeakerDetector:
    """Loaded models and configuration, reusable across videos (load once, run many)."""

    def __init__(self, config: DetectConfig = DetectConfig()) -> None:
        self.config = config
        self.num_threads = configure_threads(config.num_threads or (os.cpu_count() or 1))
        cv2.setNumThreads(1)  # crops are small: OpenCV's pool only adds overhead here
        #: The scene-context model of ``config.context_weights`` (None without it).
        self.context_model: SceneContextASD | None = None
        if config.context_weights is None:
            self.model, asd_info = load_asd_weights(config.asd_weights)
        else:  # the scene-context model replaces the ASD model; its base scores the faces
            self.context_model, context_info = load_context_model(config.context_weights)
            self.model = self.context_model.base
            asd_info = {
                k: context_info[k] for k in ("name", "sha256", "architecture", "base_architecture")
            }
        self.runner = make_runner(self.model, config.backend, num_threads=self.num_threads)
        det_path = hub.resolve_weights(config.face_detector)
        self.detector = UltraLightFaceDetector(
            det_path,
            score_threshold=config.detector_score_threshold,
            intra_op_num_threads=self.num_threads,
        )
        #: Ego4D-trained LAM/TTM models of ``lam_weights`` / ``ttm_weights`` (None: zero-shot).
        self.social_model = self._load_social_model(config)
        self._head_pose: FSANetHeadPose | None = None
        if self._needs_head_pose():
            self._head_pose = FSANetHeadPose(num_threads=self.num_threads)
        self.weights_info = {
            "asd": asd_info,
            "face_detector": {
                "name": config.face_detector,
                "sha256": hub.get_entry(config.face_detector).sha256,
            },
        }
        if self.context_model is not None:
            self.weights_info["context"] = context_info
        if self._head_pose is not None:
            self.weights_info["head_pose"] = [
                {"name": n, "sha256": hub.get_entry(n).sha256} for n in ("fsanet-1x1", "fsanet-var")
            ]
        if self.social_model is not None:
            self.weights_info.update(self.social_model.describe())

    @staticmethod
    def _load_social_model(config: DetectConfig) -> TrainedSocialModel | None:
        """The trained LAM/TTM checkpoints of the configuration (``--lam-weights`` must be a
        ``gaze-lstm``, ``--ttm-weights`` QuAVF branches; anything else is refused with
        expected vs found), or None."""
        if config.lam_weights is None and not config.ttm_weights:
            return None
        checkpoints = []
        if config.lam_weights is not None:
            checkpoints.append(load_social_checkpoint(config.lam_weights, task="lam"))
        checkpoints += [load_social_checkpoint(p, task="ttm") for p in config.ttm_weights]
        return TrainedSocialModel(checkpoints)

    def _needs_head_pose(self) -> bool:
        """Head pose feeds the zero-shot LAM (and through it the zero-shot TTM); ``ttm``
        implies ``lam`` in the tasks."""
        trained_lam = self.social_model is not None and "lam" in self.social_model.tasks
        return "lam" in self.config.tasks and not trained_lam

    def _social_extra(
        self,
        speaking_prob: np.ndarray,
        head_pose_deg: np.ndarray | None,
        trained: dict[str, np.ndarray] | None,
        fps: float,
    ) -> dict[str, np.ndarray]:
        """The ``TrackScores.extra`` series of one track for the ``lam``/``ttm`` tasks:
        trained models where given, else the zero-shot rules (:func:`social_series`); the
        zero-shot TTM rule runs on the trained LAM when only LAM is trained."""
        tasks = self.config.tasks
        trained = trained or {}
        if "lam" in trained:
            lam = trained["lam"]
            zero_shot_ttm = None
        elif head_pose_deg is not None:
            series = social_series(head_pose_deg, speaking_prob, fps)
            lam, zero_shot_ttm = series["lam"], series["ttm"]
        else:
            return {}
        out = {"lam": lam} if "lam" in tasks else {}
        if "ttm" in tasks:
            if "ttm" in trained:
                out["ttm"] = trained["ttm"]
            elif zero_shot_ttm is not None:
                out["ttm"] = zero_shot_ttm
            else:
                out["ttm"] = talking_to_me_probability(speaking_prob, lam, fps)
        return out

    def _social_notes(self) -> dict[str, str | None]:
        """What produced the ``lam``/``ttm`` series, for the JSON ``run_info``."""
        tasks, model = self.config.tasks, self.social_model
        trained = model.tasks if model is not None else ()
        lam = ttm = None
        if "lam" in tasks:
            lam = (
                "Ego4D-trained GazeLSTM (weights.lam): softmax class 1 of 7-frame windows of "
                "RGB face crops on a 30 fps timeline (socialav.social_models)"
                if "lam" in trained
                else "zero-shot: P(looking at camera) from FSA-Net yaw/pitch (socialav.social)"
            )
        if "ttm" in tasks and "ttm" in trained:
            assert model is not None
            if model.ttm_visual is not None and model.ttm_audio is not None:
                ttm = "Ego4D-trained QuAVF (weights.ttm): (1 - q) p_audio + q p_visual"
            elif model.ttm_visual is not None:
                ttm = "Ego4D-trained QuAVF visual branch (weights.ttm)"
            else:
                ttm = "Ego4D-trained QuAVF audio branch (weights.ttm)"
        elif "ttm" in tasks:
            ttm = "zero-shot: P(speaking) x min(1, mean P(looking) over +-1 s / 0.4)" + (
                ", P(looking) from the trained LAM model" if "lam" in trained else ""
            )
        return {"lam": lam, "ttm": ttm}

    def _score_social(
        self, track: FaceTrack, cropper: _SocialInputCropper, audio: np.ndarray, fps: float
    ) -> dict[str, np.ndarray]:
        """Trained LAM/TTM probabilities of a just-closed track (its RGB crops are freed)."""
        assert self.social_model is not None
        crops, quality = cropper.pop(track.track_id)
        audio_span = track_audio(audio, track.start_frame, track.end_frame, fps)
        return self.social_model.score_track(track, crops or None, audio_span, fps, quality)

    def _head_pose_tracker(self) -> HeadPoseTracker | None:
        if not self._needs_head_pose():
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
        stats: dict[str, Any] | None = None,
        on_frame: Callable[[int, np.ndarray], None] | None = None,
        social_cropper: _SocialInputCropper | None = None,
    ) -> Iterator[AnalysedTrack]:
        """Stream the video once and yield each finished face track with its crops.

        Args:
            path: the video file.
            video: its :func:`~socialav.io.media.probe_video` record.
            timer: accumulates seconds per stage (``decode``, ``shots``, ``detect``, ``crop``,
                and ``scene`` for ``on_frame``).
            progress: called as ``progress("analyse", frames_done, num_frames)``.
            stats: if given, receives ``num_shot_cuts`` and ``shot_cut_frames`` (the first
                frame index of every new shot).
            on_frame: if given, called as ``on_frame(frame_index, frame_rgb)`` for every
                decoded frame, in order (e.g. :meth:`SceneEmbeddingStream.add`).
            social_cropper: if given, also cuts the RGB crops and quality the trained LAM/TTM
                models need (timed as ``social``); a closed track's are in
                ``social_cropper.pop(track_id)`` when it is yielded.

        Yields:
            :class:`AnalysedTrack` records, in the order tracks end (not by ``track_id``).
        """
        cfg = self.config
        timer = timer or _Timer()
        shots = ShotBoundaryDetector(threshold=cfg.shot_threshold, fps=video.fps)
        tracker = FaceTracker(cfg.tracker)
        cropper = _IncrementalCropper(cfg.tracker.smoothing_kernel, cfg.crop_scale)
        num_cuts = 0
        cut_frames: list[int] = []
        last_detect = -cfg.detect_every

        head_pose = self._head_pose_tracker()

        def closed() -> Iterator[AnalysedTrack]:
            for key, track in tracker.pop_closed():
                t0 = time.perf_counter()
                crops = cropper.close(key, track)
                t0 = timer.add("crop", t0)
                if social_cropper is not None:
                    social_cropper.close(key, track)
                    t0 = timer.add("social", t0)
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
            if on_frame is not None:
                on_frame(frame_index, frame)
                t = timer.add("scene", t)
            cut = shots.update(frame_index, frame)
            if cut:
                num_cuts += 1
                cut_frames.append(frame_index)
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
            if social_cropper is not None:
                social_cropper.add_frame(frame_index, frame)
            yield from closed()
            t = time.perf_counter()
            cropper.advance_open(tracker.open_tracks())
            cropper.prune(frame_index)
            t = timer.add("crop", t)
            if social_cropper is not None:
                social_cropper.advance_open(tracker.open_tracks())
                social_cropper.prune(frame_index)
                t = timer.add("social", t)
            if progress:
                progress("analyse", frame_index + 1, video.num_frames)
            t = time.perf_counter()
        tracker.finish()
        yield from closed()
        if stats is not None:
            stats["num_shot_cuts"] = num_cuts
            stats["shot_cut_frames"] = cut_frames

    def _context_logits(
        self,
        stream: SceneEmbeddingStream,
        pending: Sequence[tuple[FaceTrack, np.ndarray, np.ndarray]],
    ) -> list[np.ndarray]:
        """Logits of finished tracks with the scene-context model (``--context``)."""
        import torch

        tracks = []
        for track, faces, mfcc in pending:
            embed = torch.from_numpy(stream.embeddings(track.frame_indices))
            with torch.inference_mode():
                context = self.context_model.context_term(embed).float().numpy()
            tracks.append((faces, mfcc, context))
        return predict_tracks_logits_with_context(
            self.runner,
            tracks,
            self.config.windows,
            max_batch_frames=self.config.model_batch_frames,
        )

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
        stats: dict[str, Any] = {}
        scene_stream = None
        if self.context_model is not None:
            scene_stream = SceneEmbeddingStream(self.context_model, cfg.scene_batch_frames)

        def score_pending() -> None:
            nonlocal pending
            if not pending:
                return
            t0 = time.perf_counter()
            if scene_stream is not None:
                logits = self._context_logits(scene_stream, pending)
            else:
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

        social_scores: dict[int, dict[str, np.ndarray]] = {}
        social_cropper = None
        if self.social_model is not None:
            social_cropper = _SocialInputCropper(
                self.social_model.face_sizes_px, self.social_model.needs_quality
            )

        on_frame = scene_stream.add if scene_stream is not None else None
        for track, crops, angles in self.face_tracks(
            path, video, timer, progress, stats, on_frame=on_frame, social_cropper=social_cropper
        ):
            if angles is not None:
                head_poses[track.track_id] = angles
            if social_cropper is not None:  # trained LAM/TTM: score now, free the RGB crops
                t0 = time.perf_counter()
                social_scores[track.track_id] = self._score_social(
                    track, social_cropper, audio, video.fps
                )
                timer.add("social", t0)
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
            extra = self._social_extra(
                prob, head_poses.get(track.track_id), social_scores.get(track.track_id), video.fps
            )
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
            **self._social_notes(),
            "scene_context": "per-frame SceneViT embedding of the whole frame, projected and "
            "added to the visual embedding before the back-end (socialav.models.scene_context)"
            if self.context_model is not None
            else None,
            "detect_every": cfg.detect_every,
            "num_shot_cuts": num_cuts,
            "shot_cut_frames": list(stats.get("shot_cut_frames", [])),
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
    report_embed: bool = False,
) -> dict[str, Path]:
    """Write the requested outputs of one video, all or nothing.

    Everything is written into a temporary folder inside ``output_dir`` and then renamed into
    place, so an error (or Ctrl-C) leaves no partial file, and a rerun replaces old outputs.
    The report is written last and links the others; ``report_embed`` inlines its video
    (:func:`socialav.io.report.write_report`).

    Returns:
        kind → final path, for the kinds written.

    Raises:
        OSError: the output folder cannot be created or written.
    """
    from socialav.io.annotate import write_annotated_video
    from socialav.io.plots import plot_timeline
    from socialav.io.report import browser_playable, video_href, write_report
    from socialav.io.writers import detection_record, write_ava_csv, write_json, write_rttm

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
        info = dict(result.run_info)
        info["timings_s"] = {k: round(v, 3) for k, v in result.timings_s.items()}
        record = None
        if "json" in tmp:  # after the others, so that it records the output timings too
            record = write_json(tmp["json"], video, tracks, scores, info)
        if "report" in tmp:  # last: it links the other outputs
            t = time.perf_counter()
            links = {k: video_href(final[k], output_dir) for k in tmp if k != "report"}
            embed = None
            if report_embed:
                playable = browser_playable(video.video_codec, video.path)
                embed = video.path if playable else tmp.get("video")
            write_report(
                tmp["report"],
                record or detection_record(video, tracks, scores, info),
                video_href=video_href(video.path, output_dir),
                fallback_video_href=links.get("video"),
                output_links=links,
                embed_video=embed,
                source_video=video.path,
            )
            result.timings_s["report"] = time.perf_counter() - t
        for kind, path in tmp.items():
            os.replace(path, final[kind])
        return {k: final[k] for k in kinds}
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
