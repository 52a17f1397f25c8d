"""Persons from face tracks, ASD probabilities, speech regions and voice windows.

1. **Faces**: face tracks are clustered on their dlib embeddings
   (:func:`~socialav.diarization.clustering.cluster_embeddings`, ``face_threshold``); two tracks
   that share a frame cannot be one person. Each face cluster is an on-screen person.
2. **Voices**: voice windows (GE2E, 1.6 s) are clustered on their embeddings
   (``voice_threshold``); clusters with less than ``min_voice_cluster_s`` of speech join the
   nearest larger one.
3. **Links**: for each voice cluster ``v`` and face cluster ``f``, ``score(v, f)`` is the mean,
   over the windows of ``v``, of ``f``'s speaking probability during the window (its highest
   track probability in each frame, 0 where ``f`` is not on screen), and ``lift(v, f)`` that
   score minus the same mean over the other voices' windows. ``v`` is linked to the ``f`` of
   highest lift among those whose score reaches ``link_min_score`` (co-occurrence over the
   whole video: a two-shot where the local ASD hesitates is settled by the other shots of the
   same voice); an unlinked voice is an off-screen person.
4. **Speech**: every 25 fps frame inside a speech region belongs to the person of the voice
   window centred nearest to it; with ``asd_override`` a frame where a linked face speaks
   (probability ``>= asd_threshold``) goes to that face's person instead. Runs of frames
   become speaking segments (gaps ``< max_gap_s`` joined, segments ``< min_segment_s``
   dropped).

:func:`audio_only` (steps 2 and 4 without faces) and :func:`faces_only` (step 1 and the
tracks' own ASD segments) are the two one-modality baselines of the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from socialav.audio.vad import SpeechRegion
from socialav.audio.voice import VoiceWindows
from socialav.diarization.clustering import cluster_embeddings, cosine_distances
from socialav.diarization.records import DiarizationConfig, DiarizationResult, Person, TimeSpan
from socialav.types import FaceTrack, TrackScores, VideoInfo
from socialav.vision.face_embedding import FaceEmbedding

logger = logging.getLogger(__name__)

#: The configuration used when none is given.
DEFAULT_CONFIG = DiarizationConfig()

__all__ = [
    "audio_only",
    "cluster_face_tracks",
    "cluster_voice_windows",
    "diarize",
    "faces_only",
    "frames_to_segments",
    "link_voices_to_faces",
]


def _num_frames(video: VideoInfo, tracks: Sequence[FaceTrack], regions: Sequence[SpeechRegion]):
    ends = [video.num_frames]
    ends += [t.end_frame + 1 for t in tracks]
    ends += [int(np.ceil(r.end_s * video.fps)) for r in regions]
    return max(ends)


def cluster_face_tracks(
    tracks: Sequence[FaceTrack],
    embeddings: Mapping[int, FaceEmbedding],
    threshold: float,
) -> dict[int, int]:
    """Face cluster of every track: ``track_id -> cluster`` (0, 1, ... by first appearance).

    Tracks that overlap in time never share a cluster; a track without an embedding gets a
    cluster of its own.
    """
    ordered = sorted(tracks, key=lambda t: (t.start_frame, t.track_id))
    with_emb = [t for t in ordered if t.track_id in embeddings]
    labels: dict[int, int] = {}
    if with_emb:
        x = np.stack([embeddings[t.track_id].embedding for t in with_emb])
        start = np.array([t.start_frame for t in with_emb])
        end = np.array([t.end_frame for t in with_emb])
        overlap = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
        np.fill_diagonal(overlap, False)
        found = cluster_embeddings(x, threshold, cannot_link=overlap)
        labels = {t.track_id: int(c) for t, c in zip(with_emb, found, strict=True)}
    next_label = max(labels.values(), default=-1) + 1
    for t in ordered:
        if t.track_id not in labels:
            labels[t.track_id] = next_label
            next_label += 1
    # renumber by first appearance
    mapping: dict[int, int] = {}
    for t in ordered:
        mapping.setdefault(labels[t.track_id], len(mapping))
    return {tid: mapping[c] for tid, c in labels.items()}


def cluster_voice_windows(windows: VoiceWindows, config: DiarizationConfig) -> np.ndarray:
    """``(n,)`` voice cluster per window; clusters under ``min_voice_cluster_s`` are merged
    into the nearest (centroid cosine) cluster that has enough speech."""
    if len(windows) == 0:
        return np.zeros(0, dtype=np.int64)
    labels = cluster_embeddings(windows.embeddings, config.voice_threshold)
    # speech per cluster: each window stands for one hop of speech (its own span if shorter)
    hop = np.minimum(windows.end_s - windows.start_s, config.voice_step_s)
    amount = np.bincount(labels, weights=hop)
    big = np.flatnonzero(amount >= config.min_voice_cluster_s)
    if len(big) == 0 or len(big) == len(amount):
        return labels
    centroids = np.stack([windows.embeddings[labels == c].mean(axis=0) for c in range(len(amount))])
    nearest_big = big[np.argmin(cosine_distances(centroids, centroids[big]), axis=1)]
    merged = np.where(np.isin(labels, big), labels, nearest_big[labels])
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(c), len(mapping)) for c in merged], dtype=np.int64)


def _speaking_matrix(
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    cluster_of_track: Mapping[int, int],
    num_clusters: int,
    num_frames: int,
) -> np.ndarray:
    """``(num_clusters, num_frames)`` float32: each face cluster's highest speaking
    probability per frame (0 where none of its tracks is scored)."""
    matrix = np.zeros((num_clusters, num_frames), dtype=np.float32)
    known = {t.track_id for t in tracks}
    for score in scores:
        if score.track_id not in known:
            raise ValueError(f"TrackScores for track_id {score.track_id} has no FaceTrack")
        row = cluster_of_track[score.track_id]
        frames = score.frame_indices
        inside = (frames >= 0) & (frames < num_frames)
        f = frames[inside]
        matrix[row, f] = np.maximum(matrix[row, f], score.probabilities[inside])
    return matrix


def _window_frames(windows: VoiceWindows, fps: float, num_frames: int) -> list[np.ndarray]:
    out = []
    for a, b in zip(windows.start_s, windows.end_s, strict=True):
        lo = min(int(np.floor(a * fps)), num_frames - 1)
        hi = min(max(int(np.ceil(b * fps)), lo + 1), num_frames)
        out.append(np.arange(lo, hi))
    return out


def link_voices_to_faces(
    windows: VoiceWindows,
    voice_labels: np.ndarray,
    speaking: np.ndarray,
    fps: float,
    min_score: float,
) -> tuple[dict[int, int | None], np.ndarray, np.ndarray]:
    """Link every voice cluster to the face cluster that speaks while it is heard.

    ``score(v, f)``: mean over the windows of ``v`` of the mean speaking probability of ``f``
    in the window's frames. ``lift(v, f) = score(v, f) - `` the same mean over the windows of
    the other voices (0 when there are none): a face that "speaks" all the time (a noisy ASD)
    does not take every voice. ``v`` is linked to the face of highest lift among those with
    ``score >= min_score``.

    Args:
        windows: voice windows; ``voice_labels`` their ``(n,)`` clusters.
        speaking: ``(F, num_frames)`` per-face-cluster speaking probability per frame.
        fps: frame rate of ``speaking``.
        min_score: a link needs a mean co-occurrence of at least this.

    Returns:
        ``(voice cluster -> face cluster or None, score (V, F), lift (V, F))``.
    """
    num_voices = int(voice_labels.max()) + 1 if len(voice_labels) else 0
    num_faces, num_frames = speaking.shape
    score = np.zeros((num_voices, num_faces), dtype=np.float64)
    lift = np.zeros((num_voices, num_faces), dtype=np.float64)
    links: dict[int, int | None] = {v: None for v in range(num_voices)}
    if num_voices == 0 or num_faces == 0 or num_frames == 0:
        return links, score, lift
    per_window = np.stack(
        [speaking[:, f].mean(axis=1) for f in _window_frames(windows, fps, num_frames)]
    )
    for v in range(num_voices):
        mine = voice_labels == v
        score[v] = per_window[mine].mean(axis=0)
        lift[v] = score[v] - (per_window[~mine].mean(axis=0) if (~mine).any() else 0.0)
        eligible = np.flatnonzero(score[v] >= min_score)
        if len(eligible):
            links[v] = int(eligible[np.argmax(lift[v, eligible])])
    return links, score, lift


def _frame_voice_labels(
    regions: Sequence[SpeechRegion],
    windows: VoiceWindows,
    labels: np.ndarray,
    fps: float,
    num_frames: int,
) -> np.ndarray:
    """``(num_frames,)`` voice cluster of every frame inside speech (-1 outside)."""
    out = np.full(num_frames, -1, dtype=np.int64)
    centres = windows.centre_s
    for k, region in enumerate(regions):
        frames = np.arange(int(np.floor(region.start_s * fps)), int(np.ceil(region.end_s * fps)))
        frames = frames[(frames >= 0) & (frames < num_frames)]
        # a frame is speech if its centre lies inside the region
        times = (frames + 0.5) / fps
        frames = frames[(times >= region.start_s) & (times < region.end_s)]
        in_region = np.flatnonzero(windows.region_index == k)
        if len(frames) == 0 or len(in_region) == 0:
            continue
        times = (frames + 0.5) / fps
        nearest = in_region[np.argmin(np.abs(times[:, None] - centres[in_region][None, :]), axis=1)]
        out[frames] = labels[nearest]
    return out


def frames_to_segments(
    mask: np.ndarray, fps: float, max_gap_s: float, min_segment_s: float
) -> list[TimeSpan]:
    """Runs of True frames as time spans; gaps shorter than ``max_gap_s`` are joined first,
    then spans shorter than ``min_segment_s`` are dropped. Frame ``k`` spans
    ``[k / fps, (k + 1) / fps)``."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    runs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]
    joined = [runs[0]]
    for a, b in runs[1:]:
        if (a - joined[-1][1]) / fps < max_gap_s:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    return [TimeSpan(a / fps, b / fps) for a, b in joined if (b - a) / fps >= min_segment_s]


def _thumbnail(track_ids: Sequence[int], embeddings: Mapping[int, FaceEmbedding]) -> bytes | None:
    best, best_q = None, -1.0
    for tid in track_ids:
        emb = embeddings.get(tid)
        if emb is not None and emb.thumbnail_jpeg and float(emb.quality.max()) > best_q:
            best, best_q = emb.thumbnail_jpeg, float(emb.quality.max())
    return best


def _build_persons(
    groups: Sequence[tuple[Sequence[int], np.ndarray, bytes | None, float]],
    fps: float,
    config: DiarizationConfig,
) -> DiarizationResult:
    """Persons from ``(track_ids, speaking frame mask, thumbnail, first_time_s)`` groups."""
    made = []
    for track_ids, mask, thumb, first_s in groups:
        segments = frames_to_segments(mask, fps, config.max_gap_s, config.min_segment_s)
        if not track_ids and not segments:
            continue  # a voice cluster that lost all its frames to faces
        start = segments[0].start_s if segments else np.inf
        made.append((min(first_s, start), list(track_ids), segments, thumb))
    made.sort(key=lambda m: (m[0], min(m[1], default=10**9)))
    persons = [
        Person(f"person_{k}", bool(tids), tuple(tids), tuple(segs), thumb)
        for k, (_, tids, segs, thumb) in enumerate(made)
    ]
    track_to_person = {t: p.person_id for p in persons for t in p.track_ids}
    return DiarizationResult(persons, track_to_person)


def faces_only(
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    face_embeddings: Mapping[int, FaceEmbedding],
    config: DiarizationConfig = DEFAULT_CONFIG,
) -> DiarizationResult:
    """Persons = face clusters; a person speaks where one of its tracks has probability
    ``>= asd_threshold`` (no audio model; speech of off-screen people is missed)."""
    clusters = cluster_face_tracks(tracks, face_embeddings, config.face_threshold)
    num_clusters = max(clusters.values(), default=-1) + 1
    num_frames = _num_frames(video, tracks, [])
    speaking = _speaking_matrix(tracks, scores, clusters, num_clusters, num_frames)
    groups = []
    for c in range(num_clusters):
        tids = sorted(t for t, k in clusters.items() if k == c)
        first = min(t.start_frame for t in tracks if t.track_id in tids) / video.fps
        mask = speaking[c] >= config.asd_threshold
        groups.append((tids, mask, _thumbnail(tids, face_embeddings), first))
    result = _build_persons(groups, video.fps, config)
    result.info = {"method": "faces_only", "num_face_clusters": num_clusters}
    return result


def audio_only(
    video: VideoInfo,
    regions: Sequence[SpeechRegion],
    windows: VoiceWindows,
    config: DiarizationConfig = DEFAULT_CONFIG,
) -> DiarizationResult:
    """Persons = voice clusters (all off screen: no face is used)."""
    labels = cluster_voice_windows(windows, config)
    num_frames = _num_frames(video, [], regions)
    frame_voice = _frame_voice_labels(regions, windows, labels, video.fps, num_frames)
    num_voices = int(labels.max()) + 1 if len(labels) else 0
    groups = [((), frame_voice == v, None, np.inf) for v in range(num_voices)]
    result = _build_persons(groups, video.fps, config)
    result.info = {"method": "audio_only", "num_voice_clusters": num_voices}
    return result


def diarize(
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    face_embeddings: Mapping[int, FaceEmbedding],
    regions: Sequence[SpeechRegion],
    windows: VoiceWindows,
    config: DiarizationConfig = DEFAULT_CONFIG,
) -> DiarizationResult:
    """Who spoke when, as people: the audio-visual fusion of the module docstring.

    Args:
        video: the analysed video (``fps``, ``num_frames``).
        tracks: its face tracks; ``scores`` their ASD output (joined on ``track_id``).
        face_embeddings: ``track_id -> FaceEmbedding`` (tracks without one get a person each).
        regions: speech regions (:class:`~socialav.audio.vad.SileroVAD`).
        windows: voice windows inside ``regions``
            (:func:`~socialav.audio.voice.embed_speech_windows`).
        config: thresholds.

    Returns:
        :class:`DiarizationResult`: every face track belongs to exactly one on-screen
        person; voices linked to no face are off-screen persons; with no speech at all the
        persons are the face clusters, with no speaking segments.

    Raises:
        ValueError: scores of an unknown track, or windows pointing at a missing region.
    """
    if len(windows) and (windows.region_index.max() >= len(regions)):
        raise ValueError(
            f"voice windows refer to speech region {int(windows.region_index.max())}, but "
            f"only {len(regions)} regions were given"
        )
    fps = video.fps
    clusters = cluster_face_tracks(tracks, face_embeddings, config.face_threshold)
    num_faces = max(clusters.values(), default=-1) + 1
    num_frames = _num_frames(video, tracks, regions)
    speaking = _speaking_matrix(tracks, scores, clusters, num_faces, num_frames)
    voice_labels = cluster_voice_windows(windows, config)
    links, link_scores, link_lift = link_voices_to_faces(
        windows, voice_labels, speaking, fps, config.link_min_score
    )
    frame_voice = _frame_voice_labels(regions, windows, voice_labels, fps, num_frames)
    num_voices = len(links)
    # owner of each frame: face clusters 0..F-1, off-screen voices F.. (-1: nobody)
    offscreen = [v for v in range(num_voices) if links[v] is None]
    owner_of_voice = np.array(
        [links[v] if links[v] is not None else num_faces + offscreen.index(v) for v in links]
        + [-1],
        dtype=np.int64,
    )
    owner = owner_of_voice[frame_voice]  # frame_voice == -1 picks the trailing -1
    if config.asd_override and num_faces:
        linked = sorted({f for f in links.values() if f is not None})
        if linked:
            sub = speaking[linked]
            best = np.argmax(sub, axis=0)
            strong = sub[best, np.arange(num_frames)] >= config.asd_threshold
            override = strong & (owner >= 0)
            owner[override] = np.asarray(linked)[best[override]]
    groups = []
    for f in range(num_faces):
        tids = sorted(t for t, k in clusters.items() if k == f)
        first = min(t.start_frame for t in tracks if t.track_id in tids) / fps
        groups.append((tids, owner == f, _thumbnail(tids, face_embeddings), first))
    for i, _ in enumerate(offscreen):
        groups.append(((), owner == num_faces + i, None, np.inf))
    result = _build_persons(groups, fps, config)
    result.info = {
        "method": "audio_visual",
        "config": asdict(config),
        "num_face_clusters": num_faces,
        "num_voice_clusters": num_voices,
        "voice_to_face": {str(v): f for v, f in links.items()},
        "link_scores": np.round(link_scores, 4).tolist(),
        "link_lift": np.round(link_lift, 4).tolist(),
        "num_speech_regions": len(regions),
        "num_voice_windows": len(windows),
    }
    return result
