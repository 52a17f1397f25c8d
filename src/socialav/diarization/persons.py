"""Persons from face tracks, ASD probabilities, speech regions and voice windows.

1. **Faces**: face tracks are clustered on their dlib embeddings
   (:func:`~socialav.diarization.clustering.cluster_embeddings`, ``face_threshold``); two tracks
   that share a frame cannot be one person. Each face cluster is an on-screen person.
2. **Voices**: a voice window is *anchored* to the face cluster that clearly speaks during it
   (mean probability >= ``anchor_min_probability``, ``anchor_margin`` above any other face);
   each face cluster with anchors gets a voice profile (their mean GE2E embedding), and every
   other window goes to the nearest profile within ``voice_assign_threshold``. The windows
   left are clustered on their embeddings (``voice_threshold``; clusters with less than
   ``min_voice_cluster_s`` of speech join the nearest one).
3. **Links**: for each cluster ``v`` of the windows left and each face cluster ``f``,
   ``score(v, f)`` is the mean, over the windows of ``v``, of ``f``'s speaking probability
   during the window (its highest track probability in each frame, 0 where ``f`` is not on
   screen), and ``lift(v, f)`` that score minus the same mean over the other clusters'
   windows. ``v`` is linked to the ``f`` of
   highest lift among those whose score reaches ``link_min_score`` (co-occurrence over the
   whole video: a two-shot where the local ASD hesitates is settled by the other shots of the
   same voice); an unlinked voice is an off-screen person.
4. **Speech**: every 25 fps frame inside a speech region belongs to the person of the voice
   window centred nearest to it; with ``asd_override`` a frame where one face person clearly
   speaks (``>= asd_threshold``, ``anchor_margin`` above the others) and whose voice profile
   is within ``voice_assign_threshold`` of that window goes to that person instead (so a muted
   face whose lips move never takes another person's voice). Runs of frames become speaking
   segments (gaps ``< max_gap_s`` joined, segments ``< min_segment_s`` dropped).

:func:`audio_only` (voice clustering and step 4 without faces) and :func:`faces_only` (step 1 and the
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
from socialav.types import FaceEmbedding, FaceTrack, TrackScores, VideoInfo

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
    """``(n,)`` voice cluster per window (0, 1, ... by first occurrence).

    After the agglomerative clustering (``voice_threshold``), the cluster with the least
    speech is merged into the cluster of nearest centroid (cosine) while it has less than
    ``min_voice_cluster_s`` of speech and more than one cluster is left: one stray window is
    not a person. Each window stands for ``min(its length, voice_step_s)`` of speech.
    """
    if len(windows) == 0:
        return np.zeros(0, dtype=np.int64)
    labels = cluster_embeddings(windows.embeddings, config.voice_threshold)
    hop = np.minimum(windows.end_s - windows.start_s, config.voice_step_s)
    while True:
        present = np.unique(labels)
        if len(present) < 2:
            break
        amount = np.array([hop[labels == c].sum() for c in present])
        smallest = int(np.argmin(amount))
        if amount[smallest] >= config.min_voice_cluster_s:
            break
        centroids = np.stack([windows.embeddings[labels == c].mean(axis=0) for c in present])
        dist = cosine_distances(centroids[smallest : smallest + 1], centroids)[0]
        dist[smallest] = np.inf
        labels[labels == present[smallest]] = present[int(np.argmin(dist))]
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(c), len(mapping)) for c in labels], dtype=np.int64)


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
    n = len(windows)
    # 1. windows a face clearly speaks in -> that face; its voice profile from them
    per_window = np.zeros((n, num_faces))
    if n and num_faces:
        per_window = np.stack(
            [speaking[:, f].mean(axis=1) for f in _window_frames(windows, fps, num_frames)]
        )
    anchors = _anchors(per_window, config)
    profiles = {
        f: windows.embeddings[anchors == f].mean(axis=0) for f in np.unique(anchors[anchors >= 0])
    }
    profile_faces = sorted(int(f) for f in profiles)
    label = anchors.copy()  # face cluster per window, or -1
    distance = np.full((n, len(profile_faces)), np.inf)
    if profile_faces and n:
        distance = cosine_distances(
            windows.embeddings, np.stack([profiles[f] for f in profile_faces])
        )
        nearest = np.argmin(distance, axis=1)
        close = (distance[np.arange(n), nearest] < config.voice_assign_threshold) & (label < 0)
        label[close] = np.asarray(profile_faces)[nearest[close]]
    # 2. unclaimed windows: cluster; link each cluster by lift or make it an off-screen person
    free = np.flatnonzero(label < 0)
    offscreen_of_window = np.full(n, -1, dtype=np.int64)
    links: dict[int, int | None] = {}
    link_scores = link_lift = np.zeros((0, num_faces))
    if len(free):
        sub = VoiceWindows(
            windows.start_s[free], windows.end_s[free], windows.region_index[free],
            windows.embeddings[free],
        )  # fmt: skip
        sub_labels = cluster_voice_windows(sub, config)
        links, link_scores, link_lift = link_voices_to_faces(
            sub, sub_labels, speaking, fps, config.link_min_score
        )
        unlinked = [v for v in sorted(links) if links[v] is None]
        for i, v in zip(free, sub_labels, strict=True):
            if links[int(v)] is not None:
                label[i] = links[int(v)]
            else:
                offscreen_of_window[i] = unlinked.index(int(v))
        num_offscreen = len(unlinked)
    else:
        num_offscreen = 0
    # owner per window: face clusters 0..F-1, off-screen persons F..
    owner_of_window = np.where(label >= 0, label, num_faces + offscreen_of_window)
    owner = _frame_voice_labels(regions, windows, owner_of_window, fps, num_frames)
    nearest_window = _frame_voice_labels(regions, windows, np.arange(n), fps, num_frames)
    # 3. frame-accurate ASD where a face with a compatible voice profile clearly speaks
    if config.asd_override and profile_faces:
        sub = speaking[profile_faces]
        order = np.sort(sub, axis=0)
        best = np.argmax(sub, axis=0)
        second = order[-2] if len(profile_faces) > 1 else np.zeros(num_frames)
        top = order[-1]
        clear = (top >= config.asd_threshold) & (top - second >= config.anchor_margin)
        clear &= owner >= 0
        frames = np.flatnonzero(clear)
        compatible = distance[nearest_window[frames], best[frames]] < config.voice_assign_threshold
        frames = frames[compatible]
        owner[frames] = np.asarray(profile_faces)[best[frames]]
    groups = []
    for f in range(num_faces):
        tids = sorted(t for t, k in clusters.items() if k == f)
        first = min(t.start_frame for t in tracks if t.track_id in tids) / fps
        groups.append((tids, owner == f, _thumbnail(tids, face_embeddings), first))
    for i in range(num_offscreen):
        groups.append(((), owner == num_faces + i, None, np.inf))
    result = _build_persons(groups, fps, config)
    result.info = {
        "method": "audio_visual",
        "config": asdict(config),
        "num_face_clusters": num_faces,
        "faces_with_voice_profile": profile_faces,
        "num_anchored_windows": int((anchors >= 0).sum()),
        "num_unclaimed_windows": int(len(free)),
        "unclaimed_voice_to_face": {str(v): f for v, f in links.items()},
        "link_scores": np.round(link_scores, 4).tolist(),
        "link_lift": np.round(link_lift, 4).tolist(),
        "num_speech_regions": len(regions),
        "num_voice_windows": n,
    }
    return result


def _anchors(per_window: np.ndarray, config: DiarizationConfig) -> np.ndarray:
    """``(n,)`` face cluster that clearly speaks in each window (-1: none or ambiguous)."""
    n, num_faces = per_window.shape
    if n == 0 or num_faces == 0:
        return np.full(n, -1, dtype=np.int64)
    order = np.sort(per_window, axis=1)
    top = order[:, -1]
    second = order[:, -2] if num_faces > 1 else np.zeros(n)
    ok = (top >= config.anchor_min_probability) & (top - second >= config.anchor_margin)
    return np.where(ok, np.argmax(per_window, axis=1), -1).astype(np.int64)
