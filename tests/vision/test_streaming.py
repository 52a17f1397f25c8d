"""The pipeline cuts face crops while tracks are still open; they must equal the crops cut
from the finished track's geometry (what the reference demo does offline)."""

import numpy as np

from socialav.types import Detections
from socialav.vision.crops import crop_face
from socialav.vision.streaming import StreamingFaceCropper
from socialav.vision.tracking import FaceTracker, TrackerConfig


def _run(detect_every: int, seed: int):
    rng = np.random.default_rng(seed)
    height, width, num_frames = 120, 160, 140
    frames = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
    tracker = FaceTracker(TrackerConfig(detect_every=detect_every))
    cropper = StreamingFaceCropper(kernel=13, crop_scale=0.4)
    centres = [np.array([50.0, 60.0]), np.array([110.0, 55.0])]
    spans = [(0, 90), (30, 139)]  # second face appears later, first leaves early
    got, tracks = {}, {}
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
            crops = cropper.close(key, track)
            if track is not None:
                got[track.track_id], tracks[track.track_id] = crops, track
        cropper.advance_open(tracker.open_tracks())
        cropper.prune(k)
        assert len(cropper.frames) <= 13 + 10 + detect_every + 2  # bounded look-back
    tracker.finish()
    for key, track in tracker.pop_closed():
        crops = cropper.close(key, track)
        if track is not None:
            got[track.track_id], tracks[track.track_id] = crops, track
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
