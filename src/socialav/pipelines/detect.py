"""``socialav detect``: video -> face tracks -> per-frame speaking probability (and LAM/TTM).

:class:`SpeakerDetector` loads the models once (:meth:`SpeakerDetector.from_pretrained`) and
runs videos: the streaming analysis pass (:mod:`socialav.pipelines.analysis`) yields finished
face tracks with their crops; their MFCC are cut from the soundtrack, the ASD model scores
them in batches (:mod:`socialav.inference.asd`; with ``--context`` the scene-context model's
per-frame term is added, :mod:`socialav.inference.context`), the probabilities are smoothed
into speaking segments (:mod:`socialav.inference.segments`), and the LAM/TTM scorer
(:mod:`socialav.inference.social`) adds its series. The result
(:class:`~socialav.pipelines.result.DetectResult`) is written by
:mod:`socialav.pipelines.outputs`. Pipeline design and defaults: README (*How it works*);
speed: ``docs/speed.md``.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from socialav import __version__
from socialav.audio.features import track_audio, track_mfcc
from socialav.checkpoints.load import load_face_detector, load_head_pose
from socialav.diarization.models import DiarizationModels, diarize_video
from socialav.diarization.records import DiarizationResult
from socialav.inference.asd import score_track_inputs
from socialav.inference.backends import configure_threads, load_asd_runner, make_runner
from socialav.inference.segments import smooth, speaking_probability, speaking_segments
from socialav.io.media import NoAudioStreamError, probe_video, read_audio
from socialav.pipelines.analysis import AnalysisSettings, StageTimer, VideoAnalysis
from socialav.pipelines.config import LOADING_FIELDS, DetectConfig
from socialav.pipelines.result import DetectResult, RunInfo
from socialav.types import (
    AnalysedTrack,
    FaceCropChunk,
    FaceEmbedding,
    FaceTrack,
    TrackInputs,
    TrackScores,
    VideoInfo,
)

if TYPE_CHECKING:  # PyTorch models, imported only when asked for (--context, LAM/TTM)
    from socialav.inference.context import SceneEmbeddingStream
    from socialav.inference.social import SocialScorer
    from socialav.models.scene_context import SceneContextASD

logger = logging.getLogger(__name__)

__all__ = ["Progress", "SpeakerDetector", "detect_speakers"]

#: ``progress(stage, done, total)``; ``total`` may be None when unknown.
Progress = Callable[[str, int, int | None], None]


def _release_freed_memory() -> None:
    """Hand memory freed after a scoring batch back to the OS (glibc keeps it otherwise, and
    the resident size of a long video would creep up batch after batch)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _versions() -> dict[str, str]:
    """Versions of socialav, Python and the libraries that shape the results (read from the
    installed packages' metadata: PyTorch is not imported for this)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"socialav": __version__, "python": platform.python_version()}
    for name, dist in (("torch", "torch"), ("onnxruntime", "onnxruntime"), ("av", "av")):
        try:
            found[name] = version(dist)
        except PackageNotFoundError:
            found[name] = "not installed"
    found["numpy"] = np.__version__
    return found


class SpeakerDetector:
    """Loaded models and parameters, reusable across videos (load once, run many).

    Build it with :meth:`from_pretrained` (or from a :class:`DetectConfig`), change tunable
    parameters with :meth:`instantiate`, call it on a video::

        detector = SpeakerDetector.from_pretrained("lr-asd-ava", device="cpu")
        result = detector("video.mp4", progress=callback)
        result.write("out/")

    Args:
        config: what to load and the parameters (defaults: README, *Choosing the defaults*).

    Raises:
        FileNotFoundError, socialav.hub.WeightsError, socialav.checkpoints.format.CheckpointError:
            weights that cannot be found or used (the message names them and what was
            expected).
    """

    def __init__(self, config: DetectConfig | None = None) -> None:
        config = config if config is not None else DetectConfig()
        self.config = config
        self.num_threads = config.num_threads or (os.cpu_count() or 1)
        cv2.setNumThreads(1)  # crops are small: OpenCV's pool only adds overhead here
        #: The scene-context model of ``config.context_weights`` (None without it).
        self.context_model: SceneContextASD | None = None
        #: The PyTorch ASD model; ``None`` when the ONNX graphs were loaded from the cache
        #: without PyTorch (:func:`~socialav.inference.backends.load_asd_runner`).
        self.model = None
        weights: dict[str, Any] = {}
        if config.context_weights is None:
            self.runner, info, self.model = load_asd_runner(
                config.asd_weights,
                backend=config.backend,
                device=config.device,
                num_threads=self.num_threads,
            )
            weights["asd"] = info.record()
        else:  # the scene-context model replaces the ASD model; its base scores the faces
            from socialav.checkpoints.load import load_pretrained
            from socialav.inference.context import context_weights_record

            model, info = load_pretrained(
                config.context_weights,
                "scene-context",
                device=config.device,
                what="context weights",
            )
            self.context_model = model  # type: ignore[assignment]
            self.model = self.context_model.base
            record = context_weights_record(self.context_model, info)
            weights["asd"] = {
                k: record[k] for k in ("name", "sha256", "architecture", "base_architecture")
            }
            self.runner = make_runner(
                self.model, config.backend, num_threads=self.num_threads, device=config.device
            )
        self.architecture = weights["asd"]["architecture"]
        self.detector, detector_info = load_face_detector(
            config.face_detector,
            score_threshold=config.detector_score_threshold,
            num_threads=self.num_threads,
        )
        weights["face_detector"] = {"name": detector_info.name, "sha256": detector_info.sha256}
        if self.context_model is not None:
            weights["context"] = record
        #: LAM/TTM (None when neither is asked for).
        self.social: SocialScorer | None = None
        if set(config.tasks) & {"lam", "ttm"}:
            from socialav.inference.social import make_social_scorer

            self.social = make_social_scorer(
                config.tasks, config.lam_weights, config.ttm_weights, config.device
            )
        self.head_pose = None
        if self.social is not None and self.social.needs_head_pose:
            self.head_pose, pose_infos = load_head_pose(num_threads=self.num_threads)
            weights["head_pose"] = [{"name": i.name, "sha256": i.sha256} for i in pose_infos]
        if self.social is not None:
            weights.update(self.social.weights_record())
        #: VAD, voice and face embedding models of the diarization (None when off).
        self.diarization: DiarizationModels | None = None
        if config.diarize:
            self.diarization = DiarizationModels.load(num_threads=self.num_threads)
            weights["diarization"] = self.diarization.weights_record()
        self.weights_info = weights
        if "torch" in sys.modules:  # some model above needed PyTorch: set its threads once
            configure_threads(self.num_threads)

    @classmethod
    def from_pretrained(
        cls,
        weights: str | Path = DetectConfig.asd_weights,
        *,
        device: str = "cpu",
        tasks: tuple[str, ...] = ("asd",),
        **loading: Any,
    ) -> SpeakerDetector:
        """Load a detector: ASD ``weights`` (a registry name or a checkpoint file) on
        ``device``, for ``tasks`` (``asd``, ``lam``, ``ttm``).

        Args:
            loading: the other loading fields of :class:`DetectConfig` (``backend``,
                ``face_detector``, ``lam_weights``, ``ttm_weights``, ``context_weights``,
                ``num_threads``); tunable parameters go to :meth:`instantiate`.

        Raises:
            ValueError: a keyword that is not a loading field, or a bad value.
        """
        unknown = set(loading) - LOADING_FIELDS
        if unknown:
            raise ValueError(
                f"from_pretrained takes the loading fields {sorted(LOADING_FIELDS)}; "
                f"{sorted(unknown)} are tunable parameters: pass them to instantiate()"
            )
        backend = loading.pop("backend", None)  # None: default_backend(weights, device)
        config = DetectConfig(
            asd_weights=str(weights), device=device, tasks=tuple(tasks), backend=backend, **loading
        )
        return cls(config)

    def instantiate(self, **params: Any) -> SpeakerDetector:
        """A detector with the same loaded models and other tunable parameters (``windows``,
        ``segments``, ``detect_every``, ``tracker``, ``shot_threshold``, ``crop_scale``, batch
        sizes; see :meth:`DetectConfig.tunable`); this one is unchanged.

        Raises:
            ValueError: a loading field (it needs :meth:`from_pretrained`) or a bad value.
        """
        loading = set(params) & LOADING_FIELDS
        if loading:
            raise ValueError(
                f"{sorted(loading)} choose what is loaded: use SpeakerDetector.from_pretrained"
            )
        if "detector_score_threshold" in params:
            raise ValueError("detector_score_threshold is fixed when the face detector loads")
        other = object.__new__(SpeakerDetector)
        other.__dict__.update(self.__dict__)
        other.config = replace(self.config, **params)
        return other

    def __call__(
        self, path: str | Path, progress: Progress | None = None, video_id: str | None = None
    ) -> DetectResult:
        """:meth:`run`."""
        return self.run(path, progress, video_id)

    # -- one video ------------------------------------------------------------------------

    def _analysis(
        self,
        path: str | Path,
        video,
        timer: StageTimer,
        progress: Progress | None,
        on_frame=None,
        face_sampler=None,
        chunk_frames: int | None = None,
    ) -> VideoAnalysis:
        cfg, social = self.config, self.social
        settings = AnalysisSettings(
            detect_every=cfg.detect_every,
            tracker=cfg.tracker,
            shot_threshold=cfg.shot_threshold,
            crop_scale=cfg.crop_scale,
            rgb_sizes_px=social.face_sizes_px if social is not None else (),
            rgb_quality=social.needs_quality if social is not None else False,
            chunk_frames=chunk_frames,
        )
        return VideoAnalysis(
            path,
            video,
            self.detector,
            settings,
            self.head_pose,
            timer,
            progress,
            on_frame,
            face_sampler,
        )

    def face_tracks(
        self, path: str | Path, video: VideoInfo | None = None, progress: Progress | None = None
    ) -> list[AnalysedTrack]:
        """The analysis pass alone: every face track of a video with its crops, by
        ``track_id`` (for benchmarks and tools; :meth:`run` streams them instead of keeping
        them all). ``video``: its :func:`~socialav.io.media.probe_video` record, if known."""
        video = video or probe_video(path, fps=self.config.windows.fps)
        return sorted(
            self._analysis(path, video, StageTimer(), progress), key=lambda a: a.track.track_id
        )

    def run(
        self, path: str | Path, progress: Progress | None = None, video_id: str | None = None
    ) -> DetectResult:
        """Detect faces and score who speaks (and looks / talks to the camera) in one video.

        Args:
            path: the video file.
            progress: ``progress(stage, done, total)`` callback.
            video_id: the id written in the outputs (``video_id`` column, entity ids, RTTM
                file id); default the file stem.

        Raises:
            socialav.io.media.MediaError: unreadable, truncated or corrupt video.
            socialav.io.media.NoAudioStreamError: the video has no audio stream.
        """
        cfg = self.config
        timer = StageTimer()
        t_start = time.perf_counter()
        video = probe_video(path, fps=cfg.windows.fps)
        if video_id is not None:
            video = replace(video, video_id=video_id)
        if not video.has_audio:
            raise NoAudioStreamError(
                f"{path}: expected an audio stream (active speaker detection needs the "
                "soundtrack), found only video"
            )
        soundtrack = _Soundtrack(path, timer)

        scene_stream = None
        if self.context_model is not None:
            from socialav.inference.context import SceneEmbeddingStream

            scene_stream = SceneEmbeddingStream(
                self.context_model, cfg.scene_batch_frames, device=cfg.device
            )
        sampler = self.diarization.sampler() if self.diarization is not None else None
        chunk_frames = self.chunk_frames()
        analysis = self._analysis(
            path,
            video,
            timer,
            progress,
            scene_stream.add if scene_stream is not None else None,
            sampler,
            chunk_frames,
        )
        face_embeddings: dict[int, FaceEmbedding] = {}
        tracks: list[FaceTrack] = []
        observed: dict[int, dict[str, np.ndarray]] = {}
        # what is scored: ("chunk", track_key, start_frame) or ("track", track_id, start_frame)
        pending: list[tuple[tuple, TrackInputs]] = []
        key_of: dict[int, int | None] = {}  # track_id -> track_key of its chunks
        scorer = _BackgroundScorer(
            partial(self._score_batch, scene_stream=scene_stream),
            overlap=cfg.overlap_model
            if cfg.overlap_model is not None
            else cfg.device.startswith("cuda") or self.num_threads >= 2,
            timer=timer,
        )

        def submit(item: tuple, ident: int, faces: np.ndarray, continued: bool) -> None:
            """Queue the crops of frames ``item[2] ..`` with their MFCC for scoring."""
            nonlocal pending
            t0 = time.perf_counter()
            start = item[2]
            mfcc = track_mfcc(
                soundtrack.samples(), start, start + len(faces) - 1, video.fps, continued=continued
            )
            timer.add("audio", t0)
            pending.append((item, TrackInputs(ident, faces, mfcc)))
            if sum(len(x.faces_gray112) for _, x in pending) >= cfg.score_batch_frames:
                scorer.submit(pending, tracks)
                pending = []

        with scorer:  # a failed analysis stops the scoring thread too
            for analysed in analysis:
                if isinstance(analysed, FaceCropChunk):
                    key = analysed.track_key
                    submit(
                        ("chunk", key, analysed.start_frame),
                        key,
                        analysed.faces_gray112,
                        continued=analysed.first_row > 0,
                    )
                    continue
                track = analysed.track
                key_of[track.track_id] = analysed.track_key
                if analysed.face_embedding is not None:
                    face_embeddings[track.track_id] = analysed.face_embedding
                if self.social is not None:  # trained LAM/TTM score now: the RGB crops are freed
                    t0 = time.perf_counter()
                    span = None
                    if self.social.needs_audio:
                        span = track_audio(
                            soundtrack.samples(), track.start_frame, track.end_frame, video.fps
                        )
                    observed[track.track_id] = self.social.observe(analysed, span, video.fps)
                    timer.add("social", t0)
                tracks.append(track)
                if len(analysed.faces_gray112):
                    start = track.start_frame + analysed.faces_first_row
                    submit(
                        ("track", track.track_id, start),
                        track.track_id,
                        analysed.faces_gray112,
                        continued=analysed.faces_first_row > 0,
                    )
            if pending:
                scorer.submit(pending, tracks)
            results = scorer.results()
        audio = soundtrack.samples()
        logits = _assemble_logits(tracks, key_of, results)

        t = time.perf_counter()
        tracks.sort(key=lambda tr: tr.track_id)
        scores = [self._track_scores(tr, logits[tr.track_id], observed, video.fps) for tr in tracks]
        timer.add("postprocess", t)
        persons = None
        if self.diarization is not None:
            if progress:
                progress("persons", 0, 1)
            persons = diarize_video(
                self.diarization,
                audio,
                video,
                tracks,
                scores,
                face_embeddings=face_embeddings,
                timings_s=timer.seconds,
            )
        timer.seconds["total"] = time.perf_counter() - t_start
        run_info = self._run_info(analysis, timer, persons)
        return DetectResult(video, tracks, scores, dict(timer.seconds), run_info, persons)

    def chunk_frames(self) -> int | None:
        """Face-frames per chunk in which long tracks are scored while they grow: the least
        common multiple of the window lengths, so that every window of a track lies inside
        one chunk and the chunked logits equal the whole track's (``window`` visual context);
        ``None`` (score whole tracks) for one full-track pass, the ``track`` visual context,
        or scene context (whose term is cut per whole track)."""
        windows = self.config.windows
        if self.context_model is not None or not windows.durations_s:
            return None
        if windows.visual_context != "window":
            return None
        return math.lcm(*windows.window_frames())

    def _score_batch(
        self,
        batch: list[tuple[tuple, TrackInputs]],
        tracks: list[FaceTrack],
        scene_stream: SceneEmbeddingStream | None = None,
    ) -> list[tuple[tuple, np.ndarray]]:
        """ASD logits ``(T, 2)`` of every item of ``batch`` (runs on the scoring thread)."""
        inputs = [x for _, x in batch]
        if scene_stream is not None:
            inputs = [self._with_context(scene_stream, x, tracks) for x in inputs]
        out = score_track_inputs(
            self.runner,
            inputs,
            self.config.windows,
            max_batch_frames=self.config.model_batch_frames,
        )
        _release_freed_memory()
        return [(item, lg) for (item, _), lg in zip(batch, out, strict=True)]

    def _with_context(
        self, stream: SceneEmbeddingStream, x: TrackInputs, tracks: list[FaceTrack]
    ) -> TrackInputs:
        """``x`` with the scene-context term of its frames (``--context``)."""
        import torch

        track = next(t for t in tracks if t.track_id == x.track_id)
        embed = torch.from_numpy(stream.embeddings(track.frame_indices))
        with torch.inference_mode():
            term = self.context_model.context_term(embed.to(self.config.device))
        return replace(x, context=term.float().cpu().numpy())

    def _track_scores(
        self,
        track: FaceTrack,
        logits: np.ndarray,
        observed: dict[int, dict[str, np.ndarray]],
        fps: float,
    ) -> TrackScores:
        cfg = self.config
        prob = smooth(speaking_probability(logits), cfg.segments.smooth_frames)
        extra = {}
        if self.social is not None:
            extra = self.social.finish(observed[track.track_id], prob, fps)
        return TrackScores(
            track_id=track.track_id,
            frame_indices=track.frame_indices,
            logits=logits[:, 1],
            probabilities=prob,
            segments=speaking_segments(prob, track.frame_indices, cfg.segments, fps),
            extra=extra,
        )

    def _run_info(
        self, analysis: VideoAnalysis, timer: StageTimer, persons: DiarizationResult | None
    ) -> RunInfo:
        cfg = self.config
        notes = self.social.notes() if self.social is not None else {"lam": None, "ttm": None}
        return RunInfo(
            tasks=list(cfg.tasks),
            model=self.architecture,
            weights=self.weights_info,
            backend=cfg.backend,
            windows_s=list(cfg.windows.durations_s or []),
            visual_context=cfg.windows.visual_context,
            probability="softmax of the 2-way head, class 1 (= sigmoid(l1 - l0))",
            logits="class-1 output of the 2-way head, mean over windows",
            segments=asdict(cfg.segments),
            lam=notes["lam"],
            ttm=notes["ttm"],
            scene_context="per-frame SceneViT embedding of the whole frame, projected and "
            "added to the visual embedding before the back-end (socialav.models.scene_context)"
            if self.context_model is not None
            else None,
            detect_every=cfg.detect_every,
            num_shot_cuts=analysis.num_shot_cuts,
            shot_cut_frames=list(analysis.shot_cut_frames),
            num_face_detections=analysis.num_face_detections,
            num_threads=self.num_threads,
            device=cfg.device,
            diarization=dict(persons.info) if persons is not None else None,
            settings=cfg.settings(),
            versions=_versions(),
        ).with_timings(timer.seconds)


class _Soundtrack:
    """The soundtrack (``read_audio``: 16 kHz mono int16), decoded on a helper thread while
    the video analysis starts; :meth:`samples` waits for it (and raises what the decoding
    raised). Its decoding seconds go to the timer's ``audio`` stage."""

    def __init__(self, path: str | Path, timer: StageTimer) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="socialav-audio")
        self._future = self._pool.submit(self._read, path, timer)
        self._pool.shutdown(wait=False)

    @staticmethod
    def _read(path: str | Path, timer: StageTimer) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return read_audio(path)
        finally:
            timer.add("audio", t0)

    def samples(self) -> np.ndarray:
        """``(N,)`` int16 samples of the whole soundtrack (blocks until decoded)."""
        return self._future.result()


class _BackgroundScorer:
    """Scores batches of :class:`TrackInputs` while the analysis pass goes on: on one worker
    thread (the ONNX Runtime and PyTorch calls release the GIL, so decoding and detection
    use the other core meanwhile), at most ``max_waiting`` batches queued, so the crops
    held stay bounded; inline without ``overlap``. Use as a context manager: leaving it
    (also by an error) stops the thread.

    Args:
        score: ``score(batch, tracks) -> [(item, logits)]``.
        overlap: score on the worker thread (else in the caller's thread).
        timer: its ``model`` stage accumulates the scoring seconds (with ``overlap`` these
            overlap the analysis stages' seconds).
    """

    def __init__(self, score, overlap: bool, timer: StageTimer, max_waiting: int = 2) -> None:
        self.score, self.timer, self.max_waiting = score, timer, max_waiting
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="socialav-asd") if overlap else None
        self.futures: deque = deque()
        self.done: list[tuple[tuple, np.ndarray]] = []

    def _timed(self, batch, tracks):
        t0 = time.perf_counter()
        try:
            return self.score(batch, tracks)
        finally:
            self.timer.add("model", t0)

    def submit(self, batch: list[tuple[tuple, TrackInputs]], tracks: list[FaceTrack]) -> None:
        """Score ``batch`` (now, or on the thread once fewer than ``max_waiting`` wait)."""
        if self.pool is None:
            self.done.extend(self._timed(batch, tracks))
            return
        while len(self.futures) >= self.max_waiting:
            self.done.extend(self.futures.popleft().result())
        self.futures.append(self.pool.submit(self._timed, list(batch), tracks))

    def results(self) -> list[tuple[tuple, np.ndarray]]:
        """Wait for every batch; ``(item, logits)`` of everything submitted.

        Raises:
            Exception: what a scoring call raised.
        """
        while self.futures:
            self.done.extend(self.futures.popleft().result())
        return self.done

    def __enter__(self) -> _BackgroundScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _assemble_logits(
    tracks: list[FaceTrack],
    key_of: dict[int, int | None],
    results: list[tuple[tuple, np.ndarray]],
) -> dict[int, np.ndarray]:
    """Per ``track_id`` the ``(T, 2)`` logits of its chunks (by ``track_key``) and its tail,
    in frame order.

    Raises:
        RuntimeError: the pieces do not cover a track's frames exactly once.
    """
    pieces: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}
    for (kind, ident, start), lg in results:
        pieces.setdefault((kind, ident), []).append((start, lg))
    logits = {}
    for track in tracks:
        parts = pieces.get(("track", track.track_id), [])
        key = key_of.get(track.track_id)
        if key is not None:
            parts = pieces.get(("chunk", key), []) + parts
        parts.sort(key=lambda p: p[0])
        starts = [p[0] for p in parts]
        ends = list(accumulate((len(p[1]) for p in parts), initial=track.start_frame))
        expected, total = ends[:-1], ends[-1] - track.start_frame
        if starts != expected or total != len(track):
            raise RuntimeError(
                f"face track {track.track_id}: scored spans start at {starts} with "
                f"{total} frames in all, expected {len(track)} frames from {track.start_frame}"
            )
        logits[track.track_id] = np.concatenate([p[1] for p in parts]).astype(np.float32)
    return logits


def detect_speakers(
    path: str | Path, config: DetectConfig | None = None, progress: Progress | None = None
) -> DetectResult:
    """One-call form of :class:`SpeakerDetector` (loads the models each time)."""
    return SpeakerDetector(config).run(path, progress)
