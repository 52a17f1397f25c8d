"""Person logic on hand-made records: clustering, cannot-link, voice-face links, segments."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.audio.vad import SpeechRegion
from socialav.audio.voice import VoiceWindows
from socialav.diarization import (
    DiarizationConfig,
    DiarizationResult,
    Person,
    TimeSpan,
    audio_only,
    diarize,
    faces_only,
)
from socialav.diarization.clustering import cluster_embeddings
from socialav.diarization.persons import (
    cluster_face_tracks,
    cluster_voice_windows,
    frames_to_segments,
    link_voices_to_faces,
)
from socialav.types import FaceEmbedding, FaceTrack, TrackScores, VideoInfo

FPS = 25.0


def video(duration_s: float) -> VideoInfo:
    return VideoInfo("v.mp4", "v", 640, 360, 25.0, duration_s, int(duration_s * FPS))


def track(track_id: int, start: int, end: int) -> FaceTrack:
    n = end - start + 1
    boxes = np.tile([10.0, 10.0, 110.0, 110.0], (n, 1))
    return FaceTrack(track_id, np.arange(start, end + 1), boxes, np.tile([50.0, 60, 60], (n, 1)))


def scores(tr: FaceTrack, speaking: list[tuple[int, int]]) -> TrackScores:
    prob = np.full(len(tr), 0.05, np.float32)
    for a, b in speaking:
        prob[a - tr.start_frame : b - tr.start_frame + 1] = 0.95
    return TrackScores(tr.track_id, tr.frame_indices, np.zeros(len(tr)), prob)


def unit(*hot: float, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim)
    v[: len(hot)] = hot
    return v / np.linalg.norm(v)


def face(tid: int, vec: np.ndarray) -> FaceEmbedding:
    return FaceEmbedding(tid, vec, [0], [0.9], thumbnail_jpeg=b"jpg%d" % tid)


def windows(spans, vectors, regions) -> VoiceWindows:
    index = [next(k for k, r in enumerate(regions) if r.start_s <= a < r.end_s) for a, _ in spans]
    return VoiceWindows(
        [a for a, _ in spans], [b for _, b in spans], index, np.stack(vectors).astype(np.float32)
    )


@pytest.mark.parametrize("seed", range(12))
def test_cluster_embeddings_equal_scikit_learn(seed):
    """The SciPy tree cut gives scikit-learn's AgglomerativeClustering labels (average
    linkage, precomputed cosine distances, distance_threshold), with and without cannot-link
    pairs, also with distances exactly at the threshold."""
    from sklearn.cluster import AgglomerativeClustering

    from socialav.diarization.clustering import constrained_distances, cosine_distances

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    centres = rng.standard_normal((int(rng.integers(1, 6)), 16))
    x = centres[rng.integers(0, len(centres), n)] + 0.4 * rng.standard_normal((n, 16))
    threshold = float(rng.uniform(0.1, 0.9))
    cl = None
    if seed % 2:
        cl = np.zeros((n, n), bool)
        i, j = rng.integers(0, n, (2, n // 3))
        cl[i, j] = i != j
    if seed == 3:  # a threshold equal to one of the distances: not merged (strictly below)
        threshold = float(np.sort(cosine_distances(x)[np.triu_indices(n, 1)])[n // 2])
    dist = constrained_distances(x, cl)
    want = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    ).fit_predict(dist)
    mapping: dict[int, int] = {}
    want = [mapping.setdefault(int(v), len(mapping)) for v in want]
    got = cluster_embeddings(x, threshold, cannot_link=cl)
    if cl is None or not any(cl[a, b] for a in range(n) for b in range(n) if want[a] == want[b]):
        assert got.tolist() == want


def test_cluster_embeddings_threshold_and_cannot_link():
    x = np.stack([unit(1, 0), unit(1, 0.05), unit(0, 1), unit(1, 0.02)])
    assert cluster_embeddings(x, 0.05).tolist() == [0, 0, 1, 0]
    cl = np.zeros((4, 4), bool)
    cl[0, 3] = cl[3, 0] = True
    labels = cluster_embeddings(x, 0.05, cannot_link=cl)
    # 1 is nearer to 3 (0.03 rad) than to 0 (0.05 rad): it goes with 3; 0 may not
    assert labels[0] != labels[3] and labels[1] == labels[3] and labels[2] not in labels[[0, 3]]
    assert cluster_embeddings(np.zeros((0, 4)), 0.1).tolist() == []
    assert cluster_embeddings(x[:1], 0.1).tolist() == [0]
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        cluster_embeddings(np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="cannot_link must have shape"):
        cluster_embeddings(x, 0.1, cannot_link=np.zeros((2, 2), bool))


def test_cluster_embeddings_subsamples_large_inputs():
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    x = np.concatenate([c + 0.01 * rng.normal(size=(300, 4)) for c in centres])
    labels = cluster_embeddings(x, 0.3, max_items=200)  # 1200 items, 200 in the matrix
    assert len(set(labels.tolist())) == 4
    for k in range(4):
        assert len(set(labels[300 * k : 300 * (k + 1)].tolist())) == 1


def test_face_tracks_same_person_after_a_cut_but_never_two_at_once():
    tracks = [track(0, 0, 49), track(1, 0, 49), track(2, 60, 99), track(3, 60, 99)]
    emb = {0: face(0, unit(1, 0)), 1: face(1, unit(0, 1)), 2: face(2, unit(0, 1, 0.01))}
    emb[3] = face(3, unit(0, 1, 0.02))  # looks like 1 and 2, but 2 is on screen at once
    clusters = cluster_face_tracks(tracks, emb, threshold=0.07)
    assert clusters[1] in (clusters[2], clusters[3])
    assert clusters[2] != clusters[3] and clusters[0] != clusters[1]
    # a track without an embedding is a person of its own
    clusters = cluster_face_tracks(tracks + [track(4, 120, 140)], emb, 0.07)
    assert clusters[4] not in {clusters[t] for t in range(4)}


def test_small_voice_clusters_join_the_nearest_large_one():
    regions = [SpeechRegion(0.0, 10.0)]
    spans = [(0.5 * i, 0.5 * i + 1.6) for i in range(12)]
    vecs = [unit(1, 0)] * 11 + [unit(0.6, 0.8)]  # one stray window (0.5 s < 2 s)
    w = windows(spans, vecs, regions)
    labels = cluster_voice_windows(w, DiarizationConfig(voice_threshold=0.1))
    assert labels.tolist() == [0] * 12


def test_link_uses_lift_not_raw_co_occurrence():
    # face 0 "speaks" everywhere (noisy ASD), face 1 only while voice 1 is heard
    speaking = np.zeros((2, 100), np.float32)
    speaking[0, :] = 0.9
    speaking[1, 50:] = 0.9
    w = VoiceWindows([0.0, 1.0, 2.0, 3.0], [0.8, 1.8, 2.8, 3.8], [0] * 4, np.eye(4, 8))
    links, score, lift = link_voices_to_faces(w, np.array([0, 0, 1, 1]), speaking, FPS, 0.3)
    assert links == {0: 0, 1: 1}
    assert score[1, 0] == pytest.approx(0.9) and lift[1, 1] == pytest.approx(0.9)
    links, _, _ = link_voices_to_faces(w, np.array([0, 0, 1, 1]), speaking * 0.2, FPS, 0.3)
    assert links == {0: None, 1: None}


def test_frames_to_segments_by_hand():
    mask = np.zeros(100, bool)
    mask[10:20] = mask[24:30] = mask[60:62] = True
    # gap 20..24 = 0.16 s < 0.3 joins; 60..62 = 0.08 s < 0.2 is dropped
    assert frames_to_segments(mask, FPS, 0.3, 0.2) == [TimeSpan(0.4, 1.2)]
    assert frames_to_segments(mask, FPS, 0.1, 0.0) == [
        TimeSpan(0.4, 0.8),
        TimeSpan(0.96, 1.2),
        TimeSpan(2.4, 2.48),
    ]
    assert frames_to_segments(np.zeros(5, bool), FPS, 0.3, 0.2) == []


def scene():
    """Two on-screen people A (tracks 0, 2: back after a cut) and B (track 1), and an
    off-screen narrator C. A speaks 0-4 s and 8-10 s, B 4-6 s, C 12-15 s (nobody on screen)."""
    tracks = [track(0, 0, 99), track(1, 100, 149), track(2, 200, 249)]
    sc = [scores(tracks[0], [(0, 99)]), scores(tracks[1], [(100, 149)]), scores(tracks[2], [])]
    sc[2] = scores(tracks[2], [(200, 249)])
    emb = {0: face(0, unit(1, 0)), 1: face(1, unit(0, 1)), 2: face(2, unit(1, 0.03))}
    regions = [SpeechRegion(0.0, 6.0), SpeechRegion(8.0, 10.0), SpeechRegion(12.0, 15.0)]
    voice = {"A": unit(0, 0, 1), "B": unit(0, 0, 0, 1), "C": unit(0, 0, 0, 0, 1)}
    spans, vecs = [], []
    for a, who in [(0.0, "A"), (0.8, "A"), (1.6, "A"), (2.4, "A"), (4.0, "B"), (4.4, "B"),
                   (8.0, "A"), (8.4, "A"), (12.0, "C"), (12.8, "C"), (13.4, "C")]:  # fmt: skip
        spans.append((a, a + 1.6))
        vecs.append(voice[who])
    return video(16.0), tracks, sc, emb, regions, windows(spans, vecs, regions)


def test_fusion_finds_three_people_with_their_speech():
    vid, tracks, sc, emb, regions, w = scene()
    cfg = DiarizationConfig(min_voice_cluster_s=0.0)
    result = diarize(vid, tracks, sc, emb, regions, w, cfg)
    assert [p.person_id for p in result.persons] == ["person_0", "person_1", "person_2"]
    a, b, c = result.persons
    assert a.track_ids == (0, 2) and a.on_screen and b.track_ids == (1,)
    assert not c.on_screen and c.track_ids == () and c.thumbnail_jpeg is None
    assert result.track_to_person == {0: "person_0", 1: "person_1", 2: "person_0"}
    assert [(s.start_s, s.end_s) for s in a.speaking_segments] == [(0.0, 4.0), (8.0, 10.0)]
    assert [(s.start_s, s.end_s) for s in b.speaking_segments] == [(4.0, 6.0)]
    assert [(s.start_s, s.end_s) for s in c.speaking_segments] == [(12.0, 15.0)]
    assert a.speaking_time_s == pytest.approx(6.0) and a.num_turns == 2
    # A and B speak clearly in their own windows: both get voice profiles; the narrator's
    # windows are unclaimed, form one cluster, linked to no face
    assert result.info["faces_with_voice_profile"] == [0, 1]
    assert result.info["unclaimed_voice_to_face"] == {"0": None}


def test_one_modality_baselines():
    vid, tracks, sc, emb, regions, w = scene()
    cfg = DiarizationConfig(min_voice_cluster_s=0.0)
    faces = faces_only(vid, tracks, sc, emb, cfg)
    assert len(faces.persons) == 2  # the narrator is missed
    assert faces.persons[0].speaking_time_s == pytest.approx(6.0)
    audio = audio_only(vid, regions, w, cfg)
    assert len(audio.persons) == 3 and not any(p.on_screen for p in audio.persons)
    assert audio.track_to_person == {}


def test_no_speech_gives_face_persons_without_segments():
    vid, tracks, sc, emb, _, _ = scene()
    result = diarize(vid, tracks, sc, emb, [], VoiceWindows.empty(8))
    assert len(result.persons) == 2 and all(p.speaking_segments == () for p in result.persons)
    assert set(result.track_to_person) == {0, 1, 2}


def test_records_refuse_bad_values():
    with pytest.raises(ValueError, match="person_0"):
        Person("speaker_0", False)
    with pytest.raises(ValueError, match="on_screen"):
        Person("person_0", True, ())
    with pytest.raises(ValueError, match="overlap"):
        Person("person_0", False, (), (TimeSpan(0, 2), TimeSpan(1, 3)))
    with pytest.raises(ValueError, match="track_to_person"):
        DiarizationResult([Person("person_0", True, (1,))], {2: "person_0"})
    with pytest.raises(ValueError, match="face_threshold"):
        DiarizationConfig(face_threshold=0)
    vid, tracks, sc, emb, regions, w = scene()
    with pytest.raises(ValueError, match="only 1 regions"):
        diarize(vid, tracks, sc, emb, regions[:1], w)


def test_person_timeline_png(tmp_path):
    import cv2

    from socialav.diarization.outputs import write_person_timeline

    vid, tracks, sc, emb, regions, w = scene()
    _, jpeg = cv2.imencode(".jpg", np.full((40, 40, 3), 128, np.uint8))
    result = diarize(vid, tracks, sc, emb, regions, w, DiarizationConfig(min_voice_cluster_s=0))
    persons = [
        Person(p.person_id, p.on_screen, p.track_ids, p.speaking_segments, bytes(jpeg))
        if p.on_screen
        else p
        for p in result.persons
    ]
    png = tmp_path / "t.png"
    assert write_person_timeline(png, vid, persons) == 3
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 1200
    assert write_person_timeline(png, vid, []) == 0


def test_two_shot_with_one_voice_goes_to_the_voice_owner():
    """A and B side by side, both lips move (ASD 0.95 for both), only A's voice: A's solo shot
    gives A a voice profile; the ambiguous two-shot windows anchor nothing and join A."""
    tracks = [track(0, 0, 99), track(1, 0, 99), track(2, 100, 199)]
    sc = [scores(tracks[0], [(0, 99)]), scores(tracks[1], [(0, 99)])]
    sc.append(scores(tracks[2], [(100, 199)]))
    emb = {0: face(0, unit(1, 0)), 1: face(1, unit(0, 1)), 2: face(2, unit(1, 0.02))}
    regions = [SpeechRegion(0.0, 8.0)]
    spans = [(a, a + 1.6) for a in np.arange(0.0, 6.5, 0.5)]
    rng = np.random.default_rng(1)
    vecs = [unit(0, 0, 1, *(0.05 * rng.normal(size=5))) for _ in spans]
    w = windows(spans, vecs, regions)
    result = diarize(video(8.0), tracks, sc, emb, regions, w)
    a, b = result.persons
    assert a.track_ids == (0, 2) and b.track_ids == (1,)
    assert result.info["faces_with_voice_profile"] == [0]
    assert b.speaking_segments == ()
    assert [(s.start_s, s.end_s) for s in a.speaking_segments] == [(0.0, 8.0)]


def test_diarize_video_needs_embeddings_or_a_path():
    from socialav.diarization.models import DiarizationModels, diarize_video

    vid, tracks, sc, _, _, _ = scene()
    models = DiarizationModels(vad=None, voice=None, faces=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="video_path"):
        diarize_video(models, np.zeros(16000, np.int16), vid, tracks, sc)
