"""The pipeline cuts face crops while tracks are still open; they must equal the crops cut
from the finished track's geometry (what the reference demo does offline)."""

import numpy as np

from socialav.types import Detections
from socialav.vision.crops import crop_face
from socialav.vision.streaming import StreamingFaceCropper
from socialav.vision.tracking import FaceTracker, TrackerConfig


def _run(detect_every: int, seed: int, chunk_frames: int | None = None):
    rng = np.random.default_rng(seed)
    height, width, num_frames = 120, 160, 140
    frames = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
    tracker = FaceTracker(TrackerConfig(detect_every=detect_every))
    cropper = StreamingFaceCropper(kernel=13, crop_scale=0.4)
    centres = [np.array([50.0, 60.0]), np.array([110.0, 55.0])]
    spans = [(0, 90), (30, 139)]  # second face appears later, first leaves early
    got, tracks = {}, {}
    chunks: dict[int, list[tuple[int, np.ndarray]]] = {}  # key -> (first frame, crops)

    def close(key, track):
        first_row = cropper.handed_on.get(key, 0)
        tail = cropper.close(key, track)
        if track is None:
            return
        parts = chunks.pop(key, [])
        assert first_row == sum(len(c) for _, c in parts)
        starts = [f for f, _ in parts]
        assert starts == [track.start_frame + chunk_frames * i for i in range(len(parts))]
        got[track.track_id] = np.concatenate([c for _, c in parts] + [tail])
        tracks[track.track_id] = track

    for k in range(num_frames):
        dets = None
        if k % detect_every == 0:
            boxes = []
            for i, (a, b) in enumerate(spans):
                centres[i] = centres[i] + rng.normal(0, 1.5, 2)
                if a <= k <= b and rng.random() > 0.15:  # missed detections too
                    half = 20 + rng.normal(0, 1)
                    c = centres[i]
                    boxes.append([c[0] - half, c[1] - half, c[0] + half, c[1] + half])
            dets = Detections(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9))
        tracker.update(k, dets)
        cropper.add_frame(k, frames[k])
        for key, track in tracker.pop_closed():
            close(key, track)
        cropper.advance_open(tracker.open_tracks())
        cropper.prune(k)
        if chunk_frames:
            for key, _, first_frame, crops in cropper.take_chunks(chunk_frames):
                assert crops.shape == (chunk_frames, 112, 112)
                chunks.setdefault(key, []).append((first_frame, crops))
            # what an open track holds stays below a chunk plus the not yet final frames
            assert all(
                len(c) < chunk_frames + 13 + 2 * detect_every for c in cropper.crops.values()
            )
        assert len(cropper.frames) <= 13 + 10 + detect_every + 2  # bounded look-back
    tracker.finish()
    for key, track in tracker.pop_closed():
        close(key, track)
    return frames, got, tracks


def test_incremental_crops_equal_offline_crops():
    for detect_every in (1, 3):
        frames, got, tracks = _run(detect_every, seed=detect_every)
        assert len(tracks) >= 2
        for tid, track in tracks.items():
            offline = np.stack(
                [
                    crop_face(frames[t], *track.crop_size_cx_cy_px[i])
                    for i, t in enumerate(track.frame_indices)
                ]
            )
            np.testing.assert_array_equal(got[tid], offline)


def test_crops_handed_on_in_chunks_are_the_same_crops_once():
    for detect_every, chunk_frames in ((1, 7), (3, 25), (3, 200)):
        frames, whole, _ = _run(detect_every, seed=detect_every)
        _, chunked, tracks = _run(detect_every, seed=detect_every, chunk_frames=chunk_frames)
        assert sorted(chunked) == sorted(whole)
        for tid in whole:
            np.testing.assert_array_equal(chunked[tid], whole[tid])
            assert len(chunked[tid]) == len(tracks[tid])
