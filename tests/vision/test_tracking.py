"""Face tracking: the fixture's smoothing, the demo's greedy tracks, gaps, cuts, latency."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d

from socialav.types import Detections
from socialav.vision.tracking import (
    FaceTracker,
    TrackerConfig,
    smooth_crop_geometry,
    track_faces,
)


def dets(*boxes, conf=None) -> Detections:
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    confidence = np.ones(len(boxes)) if conf is None else conf
    return Detections(boxes, confidence)


def moving_box(frame: int, x0: float = 100.0, y0: float = 100.0) -> list[float]:
    return [x0 + frame, y0, x0 + frame + 80, y0 + 100]


# --- smoothing ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1])
def test_smoothing_reproduces_fixture(interview_reference, k):
    """(s, cx, cy) = medfilt13 of (max(w, h) / 2, box centre), as the demo's crop_video."""
    boxes = interview_reference[f"track{k}_boxes_xyxy_px"]
    want = interview_reference[f"track{k}_crop_size_cx_cy_px"]
    got = smooth_crop_geometry(boxes)
    assert got.shape == want.shape == (438, 3)
    np.testing.assert_allclose(got, want, atol=1e-3)
    # zero padding at the ends: the first value is the minimum of the first 7 raw half-sizes
    raw_s = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    assert got[0, 0] == pytest.approx(raw_s[:7].min(), abs=1e-4)


@pytest.mark.parametrize("length", [1, 6, 12, 13, 14, 40, 1001])
def test_smoothing_equals_scipy_signal_medfilt(length):
    """The median filter is scipy.signal.medfilt's (the demo's), value for value, also for
    tracks shorter than the kernel."""
    import warnings

    from scipy.signal import medfilt

    rng = np.random.default_rng(length)
    xy = rng.uniform(0, 1200, (length, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 300, (length, 2))], axis=1)
    got = smooth_crop_geometry(boxes, kernel_size=13)
    raw = np.stack(
        [
            np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2,
            (boxes[:, 0] + boxes[:, 2]) / 2,
            (boxes[:, 1] + boxes[:, 3]) / 2,
        ],
        axis=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kernel longer than a short track
        want = np.stack([medfilt(raw[:, j], kernel_size=13) for j in range(3)], axis=1)
    np.testing.assert_array_equal(got, want)


def test_smoothing_hand_values():
    boxes = np.array([[0, 0, 10, 20], [0, 0, 30, 10], [10, 10, 14, 12]], float)
    got = smooth_crop_geometry(boxes, kernel_size=1)
    np.testing.assert_allclose(got, [[10, 5, 10], [15, 15, 5], [2, 12, 11]])
    got3 = smooth_crop_geometry(boxes, kernel_size=3)
    np.testing.assert_allclose(got3[:, 0], [10, 10, 2])  # medians of (0,10,15) (10,15,2) (15,2,0)
    with pytest.raises(ValueError, match=r"shape \(T, 4\)"):
        smooth_crop_geometry(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="odd"):
        smooth_crop_geometry(boxes, kernel_size=4)


# --- the demo's greedy tracker, transcribed plainly, as an oracle ---------------------------


def oracle_track_shot(shot_faces, num_failed_det=10, min_track=10, iou_thres=0.5):
    """track_shot of Columbia_test.py: whole-shot greedy tracks (frames must not have two
    faces matching the same track, as in the synthetic data below)."""

    def iou(a, b):
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    remaining = [list(faces) for faces in shot_faces]
    tracks = []
    while True:
        track = []
        for faces in remaining:
            for face in list(faces):
                if not track:
                    track.append(face)
                    faces[:] = [other for other in faces if other is not face]
                elif face[0] - track[-1][0] <= num_failed_det:
                    if iou(face[1], track[-1][1]) > iou_thres:
                        track.append(face)
                        faces[:] = [other for other in faces if other is not face]
                        break
                else:
                    break
        if not track:
            return tracks
        if len(track) > min_track:
            frames = np.array([f for f, _ in track])
            boxes = np.array([b for _, b in track])
            all_frames = np.arange(frames[0], frames[-1] + 1)
            interp = np.stack([interp1d(frames, boxes[:, j])(all_frames) for j in range(4)], 1)
            tracks.append((all_frames, interp))


def random_scene(rng, num_frames=120, num_faces=4):
    """Faces on a grid that drift, appear, vanish and get missed, plus one overlapping face."""
    per_frame = [[] for _ in range(num_frames)]
    for face in range(num_faces):
        x0, y0 = 200.0 * (face % 3), 250.0 * (face // 3)
        start = int(rng.integers(0, num_frames // 2))
        end = int(rng.integers(start + 1, num_frames + 1))
        for f in range(start, end):
            if rng.random() < 0.3:  # missed detection
                continue
            if rng.random() < 0.02:  # long dropout starting here
                continue
            jitter = rng.normal(0, 2, 4)
            box = np.array([x0 + 0.5 * f, y0, x0 + 0.5 * f + 90, y0 + 110]) + jitter
            per_frame[f].append((f, box))
    # a second, overlapping face (IoU ~0.7 with face 0's area) for a stretch of frames: two
    # tracks then compete for the same detections, and the older track must pick first
    ghost_start = int(rng.integers(0, num_frames - 30))
    for f in range(ghost_start, ghost_start + int(rng.integers(12, 30))):
        if rng.random() < 0.9:
            box = np.array([12 + 0.5 * f, 0, 12 + 0.5 * f + 90, 110]) + rng.normal(0, 2, 4)
            per_frame[f].append((f, box))
    for faces in per_frame:
        rng.shuffle(faces)
    return per_frame


@pytest.mark.parametrize("seed", range(20))
def test_streaming_tracker_equals_demo_tracks(seed):
    rng = np.random.default_rng(seed)
    scene = random_scene(rng)
    want = oracle_track_shot(scene)
    stream = [
        (f, dets(*[b for _, b in faces]) if faces else Detections.empty())
        for f, faces in enumerate(scene)
    ]
    got = track_faces(stream)
    # the demo lists tracks by construction order; compare as sets keyed by first frame/box
    key = lambda frames, boxes: (int(frames[0]), round(float(boxes[0, 0]), 2))  # noqa: E731
    want_by_key = {key(f, b): (f, b) for f, b in want}
    got_by_key = {key(t.frame_indices, t.boxes_xyxy_px): t for t in got}
    assert set(got_by_key) == set(want_by_key)
    for k, (frames, boxes) in want_by_key.items():
        track = got_by_key[k]
        np.testing.assert_array_equal(track.frame_indices, frames)
        np.testing.assert_allclose(track.boxes_xyxy_px, boxes, atol=1e-3)
        np.testing.assert_allclose(track.crop_size_cx_cy_px, smooth_crop_geometry(boxes), atol=1e-3)
    assert [t.track_id for t in got] == sorted(t.track_id for t in got)


def test_fixture_boxes_give_the_fixture_tracks(interview_reference):
    """Both fixture tracks, detections in changing order, come back as two tracks."""
    b0 = interview_reference["track0_boxes_xyxy_px"]
    b1 = interview_reference["track1_boxes_xyxy_px"]
    stream = []
    for f in range(len(b0)):
        pair = (b0[f], b1[f]) if f % 2 else (b1[f], b0[f])
        stream.append((f, dets(*pair, conf=np.array([0.9, 0.8]))))
    tracks = track_faces(stream)
    assert len(tracks) == 2
    by_x = sorted(tracks, key=lambda t: t.boxes_xyxy_px[0, 0])
    for k, track in enumerate(by_x):
        np.testing.assert_array_equal(
            track.frame_indices, interview_reference[f"track{k}_frame_indices"]
        )
        np.testing.assert_allclose(
            track.crop_size_cx_cy_px, interview_reference[f"track{k}_crop_size_cx_cy_px"], atol=1e-3
        )
        assert track.detected.all()


@pytest.mark.parametrize(("missing", "num_tracks"), [(9, 1), (10, 2)])
def test_gap_of_max_gap_frames_is_bridged(missing, num_tracks):
    """Detections 10 frames apart (9 missing) stay one track; 11 apart (10 missing) split."""
    frames = list(range(0, 15)) + list(range(15 + missing, 30 + missing))
    stream = [(f, dets(moving_box(f)) if f in frames else Detections.empty()) for f in range(45)]
    tracks = track_faces(stream)
    assert len(tracks) == num_tracks
    if num_tracks == 1:
        track = tracks[0]
        assert len(track) == 30 + missing
        gap = slice(15, 15 + missing)
        assert not track.detected[gap].any() and track.detected.sum() == 30
        # linear interpolation of a box moving 1 px per frame is exact
        np.testing.assert_allclose(track.boxes_xyxy_px[:, 0], 100 + np.arange(30 + missing))


@pytest.mark.parametrize(("num_detections", "kept"), [(10, False), (11, True)])
def test_min_track_length(num_detections, kept):
    stream = [(f, dets(moving_box(f))) for f in range(num_detections)]
    tracker = FaceTracker()
    for f, d in stream:
        tracker.update(f, d)
    tracker.finish()
    assert len(tracker.pop_finished()) == int(kept)
    assert tracker.num_rejected == int(not kept)


def test_tiny_faces_are_dropped():
    stream = [(f, dets([10, 10, 10.5, 10.5])) for f in range(20)]
    assert track_faces(stream) == []
    assert len(track_faces(stream, config=TrackerConfig(min_face_size_px=0.1))) == 1


def test_tracks_never_cross_a_cut():
    stream = [(f, dets(moving_box(f))) for f in range(40)]
    tracks = track_faces(stream, cut_frames=[20])
    assert [(t.start_frame, t.end_frame) for t in tracks] == [(0, 19), (20, 39)]
    assert [t.track_id for t in tracks] == [0, 1]


def test_track_is_emitted_max_gap_plus_one_frames_after_last_detection():
    tracker = FaceTracker()
    for f in range(31):
        tracker.update(f, dets(moving_box(f)) if f < 20 else Detections.empty())
        finished = tracker.pop_finished()
        if f < 19 + 11:
            assert finished == [] and tracker.num_active == 1
            assert tracker.oldest_active_frame() == 0
    assert tracker.num_active == 0 and tracker.oldest_active_frame() is None
    assert len(finished) == 1 and finished[0].end_frame == 19


def test_every_kth_frame_interpolates_and_holds_the_tail():
    """Detector on frames 0, 3, 6, ...: boxes interpolated; last box held to the shot end."""
    k = 3
    stream = [(f, dets(moving_box(2 * f)) if f % k == 0 else None) for f in range(32)]
    tracks = track_faces(stream, config=TrackerConfig(detect_every=k))
    assert len(tracks) == 1
    track = tracks[0]
    assert (track.start_frame, track.end_frame) == (0, 31)  # last detection at 30, held to 31
    np.testing.assert_allclose(track.boxes_xyxy_px[:31, 0], 100 + 2 * np.arange(31))
    assert track.boxes_xyxy_px[31, 0] == track.boxes_xyxy_px[30, 0]
    np.testing.assert_array_equal(np.flatnonzero(track.detected), np.arange(0, 31, 3))
    # 4 detections * k = 12 frames > min_track_frames: kept; 3 detections * 3 = 9: dropped
    short = [(f, dets(moving_box(f)) if f % k == 0 else None) for f in range(9)]
    assert track_faces(short, config=TrackerConfig(detect_every=k)) == []


def test_tail_is_not_held_over_an_analysed_frame_without_the_face():
    stream = [(0, dets(moving_box(0)))]
    stream += [(f, dets(moving_box(f)) if f % 2 == 0 else None) for f in range(1, 24)]
    stream += [(24, Detections.empty()), (25, None)]
    tracks = track_faces(stream, config=TrackerConfig(detect_every=2))
    assert tracks[0].end_frame == 23


def test_bad_calls_are_rejected():
    tracker = FaceTracker()
    tracker.update(5, None)
    with pytest.raises(ValueError, match="must increase"):
        tracker.update(5, None)
    with pytest.raises(TypeError, match="Detections or None"):
        tracker.update(6, np.zeros((1, 4)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detect_every"):
        TrackerConfig(detect_every=11)
    with pytest.raises(ValueError, match="odd"):
        TrackerConfig(smoothing_kernel=12)
