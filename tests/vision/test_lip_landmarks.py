import numpy as np
import pytest

from socialav import hub
from socialav.vision.lip_landmarks import (
    LIP_FEATURE_DIM,
    LipLandmarker,
    _face_rect_in_crop,
    lip_motion_features,
)


def _mouth(opening: float, width: float = 40.0) -> np.ndarray:
    """A synthetic 20-point mouth (iBUG order) centred at (56, 80)."""
    angles = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    outer = np.stack([np.cos(angles) * width / 2, -np.sin(angles) * (opening + 6) / 2], 1)
    inner_angles = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    inner = np.stack([np.cos(inner_angles) * width / 3, -np.sin(inner_angles) * opening / 2], 1)
    return (np.concatenate([outer, inner]) + [56.0, 80.0]).astype(np.float32)


def test_face_rect_follows_the_demo_crop_geometry():
    # cs = 0.4: a box of half-size s becomes 80 px (224 / 2.8) half-size after the resize;
    # the cut starts at the box top; the 112 crop keeps rows and columns 56:168 of 224
    assert _face_rect_in_crop() == (-24, -56, 136, 104)


def test_lip_features_ignore_position_and_scale_but_see_opening():
    track = np.stack([_mouth(o) for o in (0, 4, 8, 12, 4)])
    feats = lip_motion_features(track)
    assert feats.shape == (5, LIP_FEATURE_DIM) and feats.dtype == np.float32
    moved = track * 1.7 + np.array([13.0, -9.0], np.float32)
    np.testing.assert_allclose(lip_motion_features(moved), feats, atol=1e-5)
    inner_opening = feats[:, 40 + 1]  # points 62-66
    assert np.all(np.diff(inner_opening[:4]) > 0)
    assert feats[:, 46] == pytest.approx(1.0)  # mouth width / median width


def test_lip_features_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(T, 20, 2\)"):
        lip_motion_features(np.zeros((5, 68, 2)))
    with pytest.raises(ValueError, match=r"\(T, 20, 2\)"):
        lip_motion_features(np.zeros((0, 20, 2)))


def test_lip_landmarks_on_a_real_grid_face_open_with_speech(videos_dir):
    from socialav.evaluation.asd_benchmarks import align_to_frames, read_grid_align
    from socialav.io.media import probe_video
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    path = videos_dir / "grid_id2_vcd_swwp2s.mpg"
    detector = SpeakerDetector(DetectConfig(num_threads=1))
    track = max(detector.face_tracks(path, probe_video(path)), key=lambda a: len(a.track))
    landmarker = LipLandmarker(hub.resolve_weights("dlib-shape-68"))
    points = landmarker.mouth_points(track.faces_gray112)
    assert points.shape == (len(track.track), 20, 2)
    centre = points.reshape(-1, 2).mean(axis=0)
    assert 40 < centre[0] < 72 and 60 < centre[1] < 105  # lower middle of the crop
    speech = align_to_frames(read_grid_align(path.with_suffix(".align")), 75)
    speech = speech[track.track.start_frame : track.track.end_frame + 1]
    feats = lip_motion_features(points)
    opening = feats[:, 44]  # outer lip, points 51-57 (measured: 0.434 speaking, 0.397 silent)
    assert opening[speech].mean() > opening[~speech].mean() + 0.02
    motion = np.abs(np.diff(feats[:, :40], axis=0)).mean(axis=1)  # measured: 0.011 / 0.008
    assert motion[speech[1:]].mean() > 1.2 * motion[~speech[1:]].mean()
    with pytest.raises(ValueError, match="uint8"):
        landmarker.mouth_points(track.faces_gray112.astype(np.float32))


def test_lip_landmarker_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.dat"):
        LipLandmarker(tmp_path / "nothere.dat")
