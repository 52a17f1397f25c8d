"""dlib face descriptors per face track, sampled while the video streams."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from socialav.checkpoints.load import load_face_detector, load_face_embedder
from socialav.io.media import iter_frames
from socialav.types import FaceEmbedding
from socialav.vision.detection import UltraLightFaceDetector
from socialav.vision.face_embedding import DlibFaceEmbedder, FaceEmbeddingSampler, face_quality
from socialav.vision.tracking import FaceTracker, TrackerConfig

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def embedder() -> DlibFaceEmbedder:
    return load_face_embedder()[0]


@pytest.fixture(scope="module")
def detector() -> UltraLightFaceDetector:
    return load_face_detector("ultra-light-face-rfb-320")[0]


def track_embeddings(path, detector, embedder, max_frames=100, **kwargs):
    """The analysis loop of socialav detect, reduced to detection, tracking and sampling."""
    sampler = FaceEmbeddingSampler(embedder, **kwargs)
    tracker = FaceTracker(TrackerConfig(detect_every=3))
    out: list[FaceEmbedding] = []

    def closed():
        for key, track in tracker.pop_closed():
            if track is None:
                sampler.discard(key)
            else:
                emb = sampler.finish(key)
                if emb is not None:
                    out.append(emb)

    for frame_index, frame in iter_frames(path):
        if frame_index >= max_frames:
            break
        dets = detector.detect(frame) if frame_index % 3 == 0 else None
        tracker.update(frame_index, dets)
        if dets is not None:
            sampler.update_open_tracks(frame_index, frame, tracker.open_tracks(), dets)
        closed()
    tracker.finish()
    closed()
    assert sampler.num_open == 0
    return out, sampler


def test_same_person_in_two_clips_is_closer_than_others(videos_dir, detector, embedder):
    more = videos_dir / "more"
    names = [
        "styletalk_feifeili_clip1_muxed.mp4",
        "styletalk_feifeili_clip3_muxed.mp4",
        "spectre_mead_M003_level_1_disgusted_015.mp4",
        "spectre_mead_M003_level_1_happy_024.mp4",
    ]
    emb = []
    for name in names:
        tracks, _ = track_embeddings(more / name, detector, embedder, max_frames=60)
        assert len(tracks) == 1
        emb.append(tracks[0].embedding)
        assert np.linalg.norm(tracks[0].embedding) == pytest.approx(1.0, abs=1e-5)
        assert 1 <= len(tracks[0].frame_indices) <= 4
        thumb = cv2.imdecode(np.frombuffer(tracks[0].thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert thumb is not None and max(thumb.shape[:2]) <= 96
    sims = np.stack(emb) @ np.stack(emb).T
    # measured: same person 0.98, different people 0.83-0.85
    assert sims[0, 1] > 0.93 and sims[2, 3] > 0.93
    assert sims[0, 2] < 0.93 and sims[1, 3] < 0.93 and sims[0, 3] < 0.93


def test_samples_are_spread_over_the_track_and_bounded(videos_dir, detector, embedder):
    tracks, sampler = track_embeddings(
        videos_dir / "more/styletalk_andrew_clip_1_muxed.mp4",
        detector,
        embedder,
        max_frames=200,
        max_candidates=6,
        num_samples=3,
    )
    assert len(tracks) == 1 and sampler.num_described == 3
    frames = tracks[0].frame_indices
    # six bins over 200 frames: the three best come from three different bins
    assert len(set(frames.tolist())) == 3 and np.ptp(frames) >= 200 / 6


def test_crowd_clip_in_bounded_time(videos_dir, detector, embedder):
    start = time.perf_counter()
    tracks, sampler = track_embeddings(
        videos_dir / "more/facenetpytorch_crowd_walking.mp4", detector, embedder, max_frames=105
    )
    assert len(tracks) >= 3
    # at most num_samples descriptors per track, whatever the track length
    assert sampler.num_described <= 4 * len(tracks)
    assert time.perf_counter() - start < 120  # a hang guard, not a speed claim


def test_quality_prefers_sharp_large_confident_faces():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (100, 80, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (15, 15), 5)
    assert face_quality(sharp, 100) > face_quality(blurred, 100)
    assert face_quality(sharp, 100) > face_quality(sharp, 40)
    assert face_quality(sharp, 100, confidence=0.5) == pytest.approx(0.5 * face_quality(sharp, 100))


def test_never_sampled_and_bad_input(embedder):
    sampler = FaceEmbeddingSampler(embedder)
    assert sampler.finish(7) is None
    with pytest.raises(ValueError, match="every_frames"):
        FaceEmbeddingSampler(embedder, every_frames=0)
    with pytest.raises(ValueError, match="L2-normalised"):
        FaceEmbedding(0, np.ones(128), [1], [0.5])
    with pytest.raises(FileNotFoundError, match="dlib model"):
        DlibFaceEmbedder("/nonexistent/model.dat", "/nonexistent/shape.dat")
    with pytest.raises((TypeError, ValueError)):
        sampler.update(0, np.zeros((10, 10), np.uint8), [])


def test_detector_confidence_enters_the_quality(videos_dir, embedder):
    from socialav.types import Detections

    frame = next(iter_frames(videos_dir / "grid_bbaf2n.mpg"))[1]
    box = np.array([130.0, 40.0, 230.0, 160.0], np.float32)
    dets = Detections(np.stack([box + 50, box]), np.array([0.9, 0.5]))
    with_conf, without = FaceEmbeddingSampler(embedder), FaceEmbeddingSampler(embedder)
    with_conf.update_open_tracks(0, frame, [(7, [0], [box])], dets)
    without.update_open_tracks(0, frame, [(7, [0], [box])])
    q_conf = with_conf.finish(7).quality[0]
    assert q_conf == pytest.approx(0.5 * without.finish(7).quality[0], rel=1e-5)


def test_only_faces_that_win_their_time_bin_are_cut(monkeypatch):
    """The kept faces are, per time bin of the final width, the best face offered in it (the
    first of equals), as when every face was cut; the crops of the others are never made."""
    import socialav.vision.face_embedding as face_embedding

    made: list[int] = []
    candidate = face_embedding._Candidate

    def counted_candidate(frame_index, *rest):
        made.append(frame_index)
        return candidate(frame_index, *rest)

    monkeypatch.setattr(face_embedding, "_Candidate", counted_candidate)

    class FirstPixelEmbedder:  # no dlib: describes a crop by its mean colour
        dim = 3

        def describe(self, image_rgb, box_xyxy_px):
            return image_rgb.reshape(-1, 3).mean(axis=0) + 1.0

    rng = np.random.default_rng(3)
    sharp = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    box = np.array([200.0, 80.0, 360.0, 280.0], np.float32)
    sampler = FaceEmbeddingSampler(FirstPixelEmbedder(), every_frames=1, max_candidates=5)
    qualities = {}
    for frame_index in range(0, 400, 3):
        sigma = float(rng.uniform(0.3, 6.0))  # blur: a different quality on every frame
        frame = cv2.GaussianBlur(sharp, (0, 0), sigma)
        qualities[frame_index] = face_quality(frame[80:280, 200:360], 200.0)
        sampler.update(frame_index, frame, [(1, box)])
    samples = sampler._tracks[1]
    expected: dict[int, int] = {}
    for frame_index, quality in qualities.items():  # the eager rule, by brute force
        b = frame_index // samples.bin_frames
        if b not in expected or qualities[expected[b]] < quality:
            expected[b] = frame_index
    assert {c.frame_index for c in samples.bins.values()} == set(expected.values())
    print("made", len(made), "of", len(qualities))
    assert len(made) < len(qualities) / 2  # most faces lose to a better one in their bin
    embedding = sampler.finish(1)
    assert embedding is not None and set(embedding.frame_indices) <= set(expected.values())
