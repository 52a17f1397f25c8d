"""Shot boundaries: real cuts in the Hamilton clip, none in the interview, synthetic cuts."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.vision.shots import ShotBoundaryDetector


def test_hamilton_clip_cuts(videos_dir, decode):
    """The clip (29.97 fps) cuts to the audience and back at about 0.67 s, 2.74 s and 7.04 s
    (PySceneDetect's own file-based ContentDetector finds these; checked by eye). Fed frame
    by frame at the source rate the detector must report the same three cuts."""
    frames = decode(videos_dir / "face_recognition_short_hamilton_clip.mp4")
    fps = 30000 / 1001
    shots = ShotBoundaryDetector(fps=fps)
    flags = [shots.update(i, frame) for i, frame in enumerate(frames)]
    cut_s = np.array(shots.cut_frames) / fps
    np.testing.assert_allclose(cut_s, [0.667, 2.736, 7.040], atol=0.05)
    assert np.flatnonzero(flags).tolist() == shots.cut_frames


def test_interview_has_no_cut(videos_dir, decode):
    frames = decode(videos_dir / "visualvoice_interview.mp4", max_frames=150)
    shots = ShotBoundaryDetector()
    assert not any(shots.update(i, frame) for i, frame in enumerate(frames))


def synthetic(num_frames: int, cut_at: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames, base = [], rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    for i in range(num_frames):
        if i in cut_at:
            base = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
        noise = rng.integers(-2, 3, base.shape)
        frames.append(np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8))
    return frames


def test_synthetic_cuts_and_min_shot_length():
    frames = synthetic(80, cut_at=[20, 30, 60])
    shots = ShotBoundaryDetector(min_shot_frames=15)
    flags = [shots.update(i, f) for i, f in enumerate(frames)]
    # the cut at 30 comes 10 frames after the one at 20 (< 15): suppressed, reported at once
    assert np.flatnonzero(flags).tolist() == [20, 60]
    shots = ShotBoundaryDetector(min_shot_frames=5)
    assert [i for i, f in enumerate(frames) if shots.update(i, f)] == [20, 30, 60]


def test_bad_input():
    shots = ShotBoundaryDetector()
    shots.update(3, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="must increase"):
        shots.update(3, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        shots.update(4, np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="positive"):
        ShotBoundaryDetector(threshold=0)


@pytest.mark.parametrize(
    ("width", "height", "factor"), [(1280, 720, 5), (700, 700, 2), (1001, 333, 3)]
)
def test_downscale_keeps_every_factor_th_pixel(width, height, factor):
    """As PySceneDetect 0.5/0.6 (``frame_im[::factor, ::factor]``), BGR order."""
    frame = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    small = ShotBoundaryDetector()._prepare(frame)
    want = frame[::factor, ::factor, ::-1]
    rows, cols = min(len(small), len(want)), min(small.shape[1], want.shape[1])
    assert abs(len(small) - len(want)) <= 1 and abs(small.shape[1] - want.shape[1]) <= 1
    np.testing.assert_array_equal(small[:rows, :cols], want[:rows, :cols])
