"""FSA-Net head pose: crop geometry, ONNX graph fix-ups, mirror symmetry on real faces,
streaming sampler."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.vision.head_pose import (
    FSANET_MARGIN,
    HeadPoseTracker,
    head_crop,
    interpolate_angles,
    prepare_fsanet_onnx,
)


def test_head_crop_enlarges_box_by_margin_like_fsanet_demo():
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]  # R = x
    frame[:, :, 2] = np.arange(100, dtype=np.uint8)[:, None]  # B = y
    # box 40 wide, 20 high at (80, 40): margin 0.6 -> x 56..144, y 28..72 inclusive
    crop = head_crop(frame, [80, 40, 120, 60], margin=0.6, size_px=89)
    # resized 89 -> 89 columns (identity in x); rows 45 -> 89
    assert crop.shape == (89, 89, 3) and crop.dtype == np.uint8
    assert crop[0, 0, 2] == 56 and crop[0, -1, 2] == 144  # BGR: channel 2 is R = x
    assert crop[0, 0, 0] == 28 and crop[-1, 0, 0] == 72  # channel 0 is B = y


def test_head_crop_clips_to_frame_and_rejects_bad_boxes():
    frame = np.full((50, 60, 3), 7, dtype=np.uint8)
    crop = head_crop(frame, [-10, -10, 20, 20])
    assert crop.shape == (64, 64, 3) and np.all(crop == 7)
    with pytest.raises(ValueError, match="outside"):
        head_crop(frame, [100, 100, 120, 120])
    with pytest.raises(ValueError, match="4 finite"):
        head_crop(frame, [0, 0, np.nan, 10])
    with pytest.raises(ValueError, match="margin"):
        head_crop(frame, [0, 0, 10, 10], margin=-1)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        head_crop(frame[:, :, 0], [0, 0, 10, 10])


def test_prepared_graph_has_dynamic_batch_and_same_outputs(weights_dir):
    import onnxruntime as ort

    raw = (weights_dir / "fsanet-head-pose" / "fsanet-var-iter-688590.onnx").read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    original = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    assert original.get_inputs()[0].shape[0] == 1
    prepared = ort.InferenceSession(
        prepare_fsanet_onnx(raw), options, providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in prepared.get_inputs()] == ["input"]  # weights no longer inputs
    assert prepared.get_inputs()[0].shape[0] == "batch"
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    batched = prepared.run(None, {"input": x})[0]
    single = np.concatenate([original.run(None, {"input": x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(batched, single, atol=1e-3)


def test_predict_crops_validates_input(head_pose_model):
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        head_pose_model.predict_crops(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        head_pose_model.predict_crops(np.zeros((2, 64, 64, 3), np.float32))
    assert head_pose_model.estimate(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4))).shape == (
        0,
        3,
    )


@pytest.fixture(scope="module")
def real_face_crops(videos_dir, weights_dir, sample_frames):
    """Head crops of real frontal talking faces (GRID, videoretalking) at a few frames."""
    from socialav.vision.detection import UltraLightFaceDetector

    detector = UltraLightFaceDetector(weights_dir / "ultra-light-face" / "version-RFB-320.onnx")
    names = ["grid_bbaf2n.mpg", "grid_sbia1a.mpg"] + [
        f"videoretalking_face_{k}.mp4" for k in range(1, 6)
    ]
    crops = []
    for name in names:
        frames = sample_frames(videos_dir / name, every=25, stop=75)
        for frame in frames.values():
            dets = detector.detect(frame)
            assert len(dets) == 1, name
            crops.append(head_crop(frame, dets.xyxy_px[0], FSANET_MARGIN))
    return np.stack(crops)


def test_mirrored_face_gives_opposite_yaw_and_roll(head_pose_model, real_face_crops):
    angles = head_pose_model.predict_crops(real_face_crops)
    mirrored = head_pose_model.predict_crops(np.ascontiguousarray(real_face_crops[:, :, ::-1]))
    assert len(angles) == 21
    # frontal talking heads: small yaw
    assert np.all(np.abs(angles[:, 0]) < 20), angles[:, 0]
    # mirror image: yaw and roll change sign, pitch stays (FSA-Net MAE is ~5 degrees)
    np.testing.assert_array_less(np.abs(angles[:, 0] + mirrored[:, 0]), 5.0)
    np.testing.assert_array_less(np.abs(angles[:, 2] + mirrored[:, 2]), 5.0)
    np.testing.assert_array_less(np.abs(angles[:, 1] - mirrored[:, 1]), 5.0)


def test_mirror_of_turned_face_swaps_yaw_sign(head_pose_model, real_face_crops):
    """A face turned by rotating the crop content is not available, so use the sign change on
    faces whose yaw is clearly non-zero (videoretalking_face_1 looks ~15 degrees aside)."""
    angles = head_pose_model.predict_crops(real_face_crops)
    mirrored = head_pose_model.predict_crops(np.ascontiguousarray(real_face_crops[:, :, ::-1]))
    turned = np.abs(angles[:, 0]) > 8
    assert turned.any()
    assert np.all(np.sign(angles[turned, 0]) == -np.sign(mirrored[turned, 0]))


def test_batched_estimate_equals_one_by_one(head_pose_model, real_face_crops):
    batched = head_pose_model.predict_crops(real_face_crops[:6])
    single = np.concatenate(
        [head_pose_model.predict_crops(real_face_crops[i : i + 1]) for i in range(6)]
    )
    np.testing.assert_allclose(batched, single, atol=1e-3)


class _FakeEstimator:
    """Angles = (box x1, box y1, frame mean): lets the sampler be checked by hand."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def estimate(self, frame_rgb, boxes):
        self.calls.append(len(boxes))
        out = np.zeros((len(boxes), 3), np.float32)
        out[:, 0] = boxes[:, 0]
        out[:, 1] = boxes[:, 1]
        out[:, 2] = frame_rgb.mean()
        return out


def test_head_pose_tracker_samples_batches_and_interpolates():
    est = _FakeEstimator()
    sampler = HeadPoseTracker(est, every_frames=2)
    frame = np.zeros((4, 4, 3), np.uint8)
    for t in range(0, 7):
        faces = [(7, np.array([10.0 * t, 0, 1, 1]))]
        if t >= 3:
            faces.append((9, np.array([0, float(t), 1, 1])))
        sampler.update(t, frame, faces)
    # every 2nd frame of each face, counted from its own first frame
    assert sampler.samples(7)[0].tolist() == [0, 2, 4, 6]
    assert sampler.samples(9)[0].tolist() == [3, 5]
    assert est.calls == [1, 1, 1, 1, 1, 1]
    angles = sampler.finish(7, np.arange(0, 8))
    np.testing.assert_allclose(angles[:, 0], [0, 10, 20, 30, 40, 50, 60, 60])
    assert sampler.samples(7)[0].size == 0  # forgotten
    angles9 = sampler.finish(9, np.arange(2, 7))
    np.testing.assert_allclose(angles9[:, 1], [3, 3, 4, 5, 5])
    assert np.all(np.isnan(sampler.finish(11, np.arange(3))))


def test_update_open_tracks_uses_boxes_detected_in_this_frame():
    est = _FakeEstimator()
    sampler = HeadPoseTracker(est)
    frame = np.zeros((4, 4, 3), np.uint8)
    open_tracks = [
        (0, [3, 6], [np.array([1.0, 2, 3, 4]), np.array([5.0, 6, 7, 8])]),
        (1, [3], [np.array([9.0, 9, 9, 9])]),  # not detected at frame 6
    ]
    sampler.update_open_tracks(6, frame, open_tracks)
    assert est.calls == [1]
    frames, angles = sampler.samples(0)
    assert frames.tolist() == [6] and angles[0, 0] == 5.0
    assert sampler.samples(1)[0].size == 0


def test_interpolate_angles_holds_ends():
    out = interpolate_angles(
        np.array([2, 4]), np.array([[0, 0, 0], [2, 4, 6]], np.float32), np.arange(6)
    )
    np.testing.assert_allclose(out[:, 2], [0, 0, 0, 3, 6, 6])


def test_streaming_sampler_in_a_detect_loop_matches_offline(
    videos_dir, weights_dir, head_pose_model
):
    """The loop the detect pipeline runs: detector every 3rd frame, FaceTracker, and
    ``update_open_tracks`` per frame; the angles at detection frames equal those computed
    offline from the finished track's boxes there (no frame is held by the sampler)."""
    from socialav.io.media import iter_frames
    from socialav.vision.detection import UltraLightFaceDetector
    from socialav.vision.tracking import FaceTracker, TrackerConfig

    path = videos_dir / "grid_sbia1a.mpg"
    detector = UltraLightFaceDetector(weights_dir / "ultra-light-face" / "version-RFB-320.onnx")
    tracker = FaceTracker(TrackerConfig(detect_every=3))
    sampler = HeadPoseTracker(head_pose_model)
    frames, results = {}, []
    for index, frame in iter_frames(path):
        if index >= 30:
            break
        frames[index] = frame
        tracker.update(index, detector.detect(frame) if index % 3 == 0 else None)
        sampler.update_open_tracks(index, frame, tracker.open_tracks())
    tracker.finish()
    for key, track in tracker.pop_closed():
        assert track is not None
        results.append((track, sampler.finish(key, track.frame_indices)))
    assert len(results) == 1
    track, angles = results[0]
    assert angles.shape == (len(track), 3) and np.all(np.isfinite(angles))
    rows = np.flatnonzero(track.detected)
    offline = np.stack(
        [
            head_pose_model.estimate(
                frames[int(track.frame_indices[r])], track.boxes_xyxy_px[r : r + 1]
            )[0]
            for r in rows
        ]
    )
    np.testing.assert_allclose(angles[rows], offline, atol=1e-3)
