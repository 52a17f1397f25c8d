"""The three models of the diarization, loaded once, and the call that runs them all."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from socialav.audio.vad import SileroVAD
from socialav.audio.voice import GE2EVoiceEncoder, VoiceEncoder, embed_speech_windows
from socialav.diarization.persons import diarize
from socialav.diarization.records import DiarizationConfig, DiarizationResult
from socialav.types import FaceTrack, TrackScores, VideoInfo
from socialav.vision.face_embedding import (
    DlibFaceEmbedder,
    FaceEmbedding,
    FaceEmbeddingSampler,
    embed_face_tracks,
)

__all__ = ["DiarizationModels", "diarize_video"]


@dataclass
class DiarizationModels:
    """Silero VAD, a voice encoder and the dlib face embedder (CPU).

    Attributes:
        vad: :class:`~socialav.audio.vad.SileroVAD`.
        voice: any :class:`~socialav.audio.voice.VoiceEncoder` (GE2E by default).
        faces: :class:`~socialav.vision.face_embedding.DlibFaceEmbedder`.
        config: thresholds (:class:`DiarizationConfig`).
    """

    vad: SileroVAD
    voice: VoiceEncoder
    faces: DlibFaceEmbedder
    config: DiarizationConfig = field(default_factory=DiarizationConfig)

    @classmethod
    def load(
        cls, num_threads: int = 1, config: DiarizationConfig | None = None
    ) -> DiarizationModels:
        """Load the default models (weights through :mod:`socialav.hub`).

        Raises:
            socialav.hub.WeightsError: a weights file is missing (the message says which
                wheel ships it).
        """
        return cls(
            SileroVAD(num_threads=num_threads),
            GE2EVoiceEncoder(num_threads=num_threads),
            DlibFaceEmbedder(),
            config or DiarizationConfig(),
        )

    def sampler(self) -> FaceEmbeddingSampler:
        """A fresh streaming face sampler for one video."""
        return FaceEmbeddingSampler(self.faces)


def diarize_video(
    models: DiarizationModels,
    audio: np.ndarray,
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    face_embeddings: Mapping[int, FaceEmbedding] | None = None,
    video_path: str | Path | None = None,
    timings_s: dict[str, float] | None = None,
) -> DiarizationResult:
    """VAD, voice windows and (if not given) face embeddings, then :func:`diarize`.

    Args:
        models: the loaded models.
        audio: ``(N,)`` 16 kHz mono of the video (:func:`socialav.io.media.read_audio`).
        video, tracks, scores: what ``socialav detect`` found.
        face_embeddings: from the streaming :class:`FaceEmbeddingSampler`; when None they
            are computed by decoding ``video_path`` once more (:func:`embed_face_tracks`).
        video_path: needed only when ``face_embeddings`` is None.
        timings_s: if given, receives ``vad``, ``voice``, ``face_embedding`` (second pass
            only) and ``persons`` seconds.

    Raises:
        ValueError: neither ``face_embeddings`` nor ``video_path``.
    """
    timings = timings_s if timings_s is not None else {}
    if face_embeddings is None:
        if video_path is None:
            raise ValueError("give face_embeddings or the video_path to compute them from")
        t = time.perf_counter()
        face_embeddings = embed_face_tracks(video_path, tracks, models.sampler(), video.fps)
        timings["face_embedding"] = time.perf_counter() - t
    t = time.perf_counter()
    regions = models.vad(audio)
    timings["vad"] = time.perf_counter() - t
    t = time.perf_counter()
    windows = embed_speech_windows(audio, regions, models.voice, models.config.voice_step_s)
    timings["voice"] = time.perf_counter() - t
    t = time.perf_counter()
    result = diarize(video, tracks, scores, face_embeddings, regions, windows, models.config)
    timings["persons"] = time.perf_counter() - t
    return result
