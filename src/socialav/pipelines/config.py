"""What ``socialav detect`` can be told: :class:`DetectConfig` (the models to load and the
tunable parameters), with defaults chosen by the benchmarks (README: *Choosing the defaults*)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from socialav.inference.asd import WindowConfig
from socialav.inference.backends import BACKENDS, default_backend
from socialav.inference.segments import SegmentConfig
from socialav.types import DETECT_TASKS
from socialav.vision.crops import DEFAULT_CROP_SCALE
from socialav.vision.tracking import TrackerConfig

__all__ = ["LOADING_FIELDS", "TASKS", "DetectConfig"]

#: Questions ``detect`` can answer per face and frame.
TASKS: tuple[str, ...] = DETECT_TASKS

#: The :class:`DetectConfig` fields that choose what is loaded and where; changing one needs
#: a new :class:`~socialav.pipelines.detect.SpeakerDetector`.
LOADING_FIELDS: frozenset[str] = frozenset(
    {
        "asd_weights",
        "backend",
        "face_detector",
        "tasks",
        "lam_weights",
        "ttm_weights",
        "context_weights",
        "num_threads",
        "device",
        "diarize",
    }
)


#: Per weights option: (what, expected, registry kind) for the not-found message.
_WEIGHTS_SLOTS: dict[str, tuple[str, str, str]] = {
    "asd": ("weights", "an ASD checkpoint file", "asd"),
    "context": (
        "context weights",
        "a socialav scene-context checkpoint (a file from socialav train)",
        "scene-context",
    ),
    "lam": ("LAM weights", "a socialav gaze-lstm checkpoint (a file from socialav train)", "lam"),
    "ttm": ("TTM weights", "a socialav TTM checkpoint (a file from socialav train)", "ttm"),
}


@dataclass(frozen=True)
class DetectConfig:
    """Everything ``socialav detect`` can be told; defaults chosen by the benchmarks in
    ``benchmarks/`` (see README: *Choosing the defaults*).

    Attributes:
        asd_weights: registry name of the ASD weights (``socialav weights list``) or the path
            of a Light-ASD / LR-ASD checkpoint (socialav or original;
            :func:`socialav.checkpoints.load.load_pretrained`).
        windows: window durations and visual context for scoring (see
            :class:`socialav.inference.asd.WindowConfig`). Default: consecutive 6 s windows, each
            scored on its own (the longest window of the Light-ASD demo; one pass over each
            frame plus short recomputations at window edges). On the GRID benchmark the demo's
            1-6 s average gave the same natural AP (98.55 vs 98.54 for one pass) at about half
            the speed; a bounded window keeps long tracks within the clip lengths the models
            were trained on.
        backend: ``onnx-int8`` (ONNX Runtime, CPU, the visual encoder in int8), ``onnx``
            (ONNX Runtime, CPU, fp32: the reference's logits within 1e-4) or ``torch`` (see
            :mod:`socialav.inference.backends`); on a CUDA ``device`` only ``torch``.
            ``None`` (default): :func:`~socialav.inference.backends.default_backend`, i.e.
            ``onnx-int8`` on the CPU for registered weights whose int8 ranges ship
            (lr-asd-ava), else ``onnx``; ``torch`` on a GPU; ``onnx`` with
            ``context_weights``. The field holds the choice once the config is built.
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
        model_batch_frames: windows of equal length are batched into one visual-encoder call
            up to this many face-frames; a longer window (a 6 s window: 150) runs alone (the
            activations take about 2 MB per frame; 32 keeps the peak low at no measured cost
            in speed).
        tasks: what to answer per face and frame: ``asd`` (is this person speaking; always
            on), ``lam`` (looking at the camera: FSA-Net head pose, :mod:`socialav.inference.social_rules`),
            ``ttm`` (talking to the camera wearer: speaking × looking over ±1 s; implies
            ``lam``).
        lam_weights: a socialav ``gaze-lstm`` checkpoint (Ego4D-trained Looking-at-Me,
            :mod:`socialav.inference.social`) that replaces the zero-shot ``lam`` rule; implies
            the ``lam`` task. ``None``: zero-shot.
        ttm_weights: socialav ``quavf-visual`` and/or ``quavf-audio`` checkpoints
            (Ego4D-trained Talking-to-Me, fused by quality when both are given) that replace
            the zero-shot ``ttm`` rule; imply the ``ttm`` task. ``()``: zero-shot.
        context_weights: a socialav ``scene-context`` checkpoint (file path or weights-registry
            name) whose model replaces the ASD model of ``asd_weights`` (see the module
            docstring); ``None``: no scene context.
        scene_batch_frames: frames per scene-encoder call with ``context_weights``.
        device: where the PyTorch models run (``cpu``, ``cuda``, ``cuda:1``); the ONNX models
            (face detector, head pose, the ``onnx`` backend) run on the CPU.
        diarize: also answer *who spoke when* as persons (:mod:`socialav.diarization`: face
            tracks clustered into people, voices matched to faces, speech from off screen).
        overlap_model: run the ASD model on a second thread while the analysis pass decodes
            and detects (same results). ``None``: when the model runs on a GPU, or on the CPU
            with ``num_threads`` >= 2 (3-minute benchmark video, 2 cores: analysis 42-44
            instead of 49-50 s, ``benchmarks/bench_speed_levers.py overlap``; it paid once
            no onnxruntime session busy-waited, ``docs/speed.md``).
        video_max_short_side_px: the annotated video (``<stem>.annotated.mp4``) of a source
            whose shorter side exceeds this is scaled down so that its shorter side is this,
            aspect ratio kept (even sizes; 480p); 0: the source size. 480 (854x480 from 720p
            and 1080p, 480x854 from a portrait 1080x1920) took about 25 % less CPU
            time than a 720p copy and 40 % less than a 1080p one, files 37-60 % smaller
            (``benchmarks/bench_annotate.py``, ``docs/speed.md``); the analysis always sees
            the source frames.

    The fields of :data:`LOADING_FIELDS` say what to load and where; the others are tunable
    parameters that :meth:`socialav.pipelines.detect.SpeakerDetector.instantiate` changes
    without reloading anything.
    """

    asd_weights: str = "lr-asd-ava"
    windows: WindowConfig = field(default_factory=lambda: WindowConfig(durations_s=(6.0,)))
    backend: str | None = None
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
    device: str = "cpu"
    diarize: bool = True
    overlap_model: bool | None = None
    video_max_short_side_px: int = 480

    def __post_init__(self) -> None:
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', but got {self.device!r}")
        if self.backend is None:
            chosen = default_backend(self.asd_weights, self.device)
            if self.context_weights is not None and chosen == "onnx-int8":
                chosen = "onnx"  # the scene-context model's base has no shipped ranges
            object.__setattr__(self, "backend", chosen)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, but got {self.backend!r}")
        if self.context_weights is not None and self.backend == "onnx-int8":
            raise ValueError(
                "backend 'onnx-int8' quantises the ASD weights' visual encoder with their "
                "shipped ranges; with context_weights use 'onnx' or 'torch'"
            )
        if self.device != "cpu" and self.backend != "torch":
            raise ValueError(
                f"backend {self.backend!r} runs on the CPU; with device {self.device!r} use "
                "backend 'torch'"
            )
        if self.scene_batch_frames < 1:
            raise ValueError(f"scene_batch_frames must be ≥ 1, but got {self.scene_batch_frames}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(
                f"num_threads must be ≥ 1 (None: all cores), but got {self.num_threads}"
            )
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
        if self.video_max_short_side_px < 0:
            raise ValueError(
                "video_max_short_side_px must be ≥ 0 (0: the source size), but got "
                f"{self.video_max_short_side_px}"
            )
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be ≥ 1, but got {self.detect_every}")
        if self.tracker.detect_every != self.detect_every:
            object.__setattr__(
                self,
                "tracker",
                TrackerConfig(**{**asdict(self.tracker), "detect_every": self.detect_every}),
            )

    def settings(self) -> dict[str, Any]:
        """What decides the results, as plain JSON values: every field but ``num_threads`` and
        ``overlap_model``, the sha256 of each weights file (registry names: the registered
        digest) and the socialav version. Recorded in the outputs (``run_info.settings``) so
        that a later run can tell whether existing outputs were made the same way.

        Raises:
            FileNotFoundError: a weights path that does not exist (and is not a registry name).
        """
        from socialav import __version__, hub
        from socialav.checkpoints.load import resolve_weights_file

        def digest(weights: str | None, slot: str) -> str | None:
            if weights is None:
                return None
            if weights in hub.REGISTRY:
                return hub.get_entry(weights).sha256
            what, expected, kind = _WEIGHTS_SLOTS[slot]
            return resolve_weights_file(weights, what, expected, kind=kind)[1]

        values = json.loads(json.dumps(asdict(self), default=str))
        for how_not_what in ("num_threads", "overlap_model"):  # speed only, same results
            values.pop(how_not_what, None)
        return {
            "config": values,
            "weights_sha256": {
                "asd": digest(self.asd_weights, "asd") if self.context_weights is None else None,
                "context": digest(self.context_weights, "context"),
                "lam": digest(self.lam_weights, "lam"),
                "ttm": [digest(p, "ttm") for p in self.ttm_weights],
            },
            "socialav": __version__,
        }

    def tunable(self) -> dict[str, object]:
        """The tunable parameters (every field outside :data:`LOADING_FIELDS`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in LOADING_FIELDS}
