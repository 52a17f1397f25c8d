"""The three models of the diarization, loaded once, and the call that runs them all."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from socialav import hub
from socialav.audio.vad import SileroVAD
from socialav.audio.voice import VoiceEncoder, embed_speech_windows
from socialav.checkpoints.load import load_face_embedder, load_vad, load_voice_encoder
from socialav.diarization.persons import diarize
from socialav.diarization.records import DiarizationConfig, DiarizationResult
from socialav.io.media import iter_frames
from socialav.types import ANALYSIS_FPS, FaceEmbedding, FaceTrack, TrackScores, VideoInfo
from socialav.vision.face_embedding import DlibFaceEmbedder, FaceEmbeddingSampler

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
        """Load the default models (:mod:`socialav.checkpoints.load`: ``silero-vad``,
        ``resemblyzer-ge2e``, ``dlib-face-resnet`` + ``dlib-shape-5``).

        Raises:
            socialav.hub.WeightsError: a weights file is missing (the message says which
                wheel ships it).
        """
        vad, _ = load_vad(num_threads=num_threads)
        voice, _ = load_voice_encoder(num_threads=num_threads)
        faces, _ = load_face_embedder()
        return cls(vad, voice, faces, config or DiarizationConfig())

    def weights_record(self) -> list[dict[str, str]]:
        """What the outputs record of the diarization weights (name, sha256)."""
        return [
            {"name": name, "sha256": hub.get_entry(name).sha256}
            for name in ("silero-vad", "resemblyzer-ge2e", "dlib-face-resnet", "dlib-shape-5")
        ]

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


def embed_face_tracks(
    video_path: str | Path,
    tracks: Sequence[FaceTrack],
    sampler: FaceEmbeddingSampler,
    fps: float = ANALYSIS_FPS,
) -> dict[int, FaceEmbedding]:
    """Face embeddings of finished tracks, by decoding the video once more.

    For callers that only have the tracks (e.g. a :class:`~socialav.types.FaceTrack` list
    from a JSON, or a pipeline without the streaming hook): every frame where some track was
    *detected* offers that face (its box and detector confidence) to ``sampler``; each track
    is finished as soon as the decoder passes its last frame. The decode stops after the last
    track ends.

    Returns:
        ``track_id -> FaceEmbedding`` (tracks that could not be described are absent).
    """
    by_frame: dict[int, list[tuple[int, np.ndarray, float]]] = {}
    ends: dict[int, list[int]] = {}
    for track in tracks:
        assert track.detected is not None and track.confidence is not None
        for row in np.flatnonzero(track.detected):
            frame = int(track.frame_indices[row])
            by_frame.setdefault(frame, []).append(
                (track.track_id, track.boxes_xyxy_px[row], float(track.confidence[row]))
            )
        ends.setdefault(track.end_frame, []).append(track.track_id)
    out: dict[int, FaceEmbedding] = {}
    last = max(ends, default=-1)
    if last < 0:
        return out
    for frame_index, frame in iter_frames(video_path, fps=fps):
        faces = by_frame.get(frame_index)
        if faces:
            sampler.update(frame_index, frame, faces)
        for track_id in ends.get(frame_index, []):
            emb = sampler.finish(track_id)
            if emb is not None:
                out[track_id] = emb
        if frame_index >= last:
            break
    for track_id in [t for f, ids in ends.items() if f > frame_index for t in ids]:
        emb = sampler.finish(track_id)  # the video ended early (short last frames)
        if emb is not None:
            out[track_id] = emb
    return out
