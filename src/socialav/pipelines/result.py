"""What ``socialav detect`` hands on for one video: :class:`DetectResult` (tracks, scores,
timings) and :class:`RunInfo` (how they were produced), which the outputs write."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from socialav.diarization.records import DiarizationResult
from socialav.types import FaceTrack, TrackScores, VideoInfo

__all__ = ["DetectResult", "RunInfo"]


@dataclass(frozen=True)
class RunInfo(Mapping[str, Any]):
    """How a result was produced: the JSON output's ``run_info`` (read it as a mapping, in
    this field order, or by attribute).

    Attributes:
        tasks: the questions answered (``asd`` and some of ``lam``, ``ttm``).
        model: the ASD architecture (``lr-asd``, ``light-asd``, ``scene-context`` ...).
        weights: per role (``asd``, ``face_detector``, ``head_pose``, ``context``, ``lam``,
            ``ttm``) what was loaded: name, sha256, architecture, ...
        backend: ``onnx`` or ``torch``.
        windows_s: window durations (``[]``: one pass over each track).
        visual_context: ``window`` or ``track`` (see :class:`~socialav.inference.asd.
            WindowConfig`).
        probability, logits: what the per-frame numbers are.
        segments: the :class:`~socialav.inference.segments.SegmentConfig` as a dict.
        lam, ttm: what produced those series (``None``: not computed).
        scene_context: what the scene context is, or ``None``.
        detect_every: face detector stride in frames.
        num_shot_cuts: shot cuts found.
        shot_cut_frames: the first frame of every new shot (on the analysis timeline).
        num_face_detections: faces the detector found (also in tracks too short to keep).
        num_threads: CPU threads used.
        device: where the PyTorch models ran.
        diarization: how the persons were found (thresholds, cluster counts), or ``None``.
        settings: :meth:`~socialav.pipelines.config.DetectConfig.settings` of the run (what
            decides the results: compared before an existing output is kept).
        timings_s: wall-clock seconds per stage, rounded to ms.
        versions: library versions.
    """

    tasks: list[str]
    model: str
    weights: dict[str, Any]
    backend: str
    windows_s: list[float]
    visual_context: str
    probability: str
    logits: str
    segments: dict[str, Any]
    lam: str | None
    ttm: str | None
    scene_context: str | None
    detect_every: int
    num_shot_cuts: int
    shot_cut_frames: list[int]
    num_face_detections: int
    num_threads: int
    device: str
    diarization: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def with_timings(self, timings_s: Mapping[str, float]) -> RunInfo:
        """A copy whose ``timings_s`` are these (rounded to ms)."""
        return replace(self, timings_s={k: round(float(v), 3) for k, v in timings_s.items()})


@dataclass
class DetectResult:
    """What :class:`~socialav.pipelines.detect.SpeakerDetector` found in one video.

    Attributes:
        video: decoder information.
        tracks: face tracks, ``track_id`` 0, 1, 2 ... in order of first appearance.
        scores: one :class:`~socialav.types.TrackScores` per track, same order.
        timings_s: wall-clock seconds per stage (``decode``, ``shots``, ``detect``, ``crop``,
            ``audio``, ``model``, ``total``; the outputs add ``write`` and ``video``).
        run_info: how it was produced (:class:`RunInfo`).
        persons: who spoke when (:class:`~socialav.diarization.records.DiarizationResult`), or
            ``None`` without diarization.
    """

    video: VideoInfo
    tracks: list[FaceTrack]
    scores: list[TrackScores]
    timings_s: dict[str, float]
    run_info: RunInfo
    persons: DiarizationResult | None = None

    def __post_init__(self) -> None:
        ids = [t.track_id for t in self.tracks]
        if ids != [s.track_id for s in self.scores]:
            raise ValueError(
                f"scores must follow the tracks one to one, but the tracks are {ids} and the "
                f"scores {[s.track_id for s in self.scores]}"
            )

    @property
    def real_time_factor(self) -> float:
        """Video seconds processed per wall-clock second (> 1 is faster than real time)."""
        total = self.timings_s.get("total", 0.0)
        return self.video.duration_s / total if total > 0 else float("inf")

    def write(
        self,
        output_dir: str | Path,
        kinds: Iterable[str] | None = None,
        threshold: float | None = None,
        progress=None,
        report_embed: bool = False,
        stem: str | None = None,
        video_max_short_side_px: int | None = None,
    ) -> dict[str, Path]:
        """Write the outputs of :func:`socialav.pipelines.outputs.write_outputs` (all kinds by
        default: the same files as ``socialav detect``); returns kind -> path."""
        from socialav.pipelines import outputs

        kinds = tuple(outputs.OUTPUT_SUFFIXES) if kinds is None else tuple(kinds)
        return outputs.write_outputs(
            self,
            output_dir,
            kinds,
            threshold,
            progress,
            report_embed,
            stem,
            video_max_short_side_px,
        )
