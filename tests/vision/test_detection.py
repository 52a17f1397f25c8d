"""Face detection: NMS and IoU by hand, the ONNX clean-up, and the fixture's detector boxes."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.types import Detections
from socialav.vision.detection import (
    FaceDetector,
    UltraLightFaceDetector,
    box_iou_one_to_many,
    nms_xyxy,
    strip_initializer_inputs,
)


@pytest.mark.parametrize(
    ("box", "other", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),  # touching corners
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),  # contained
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # empty union
    ],
)
def test_box_iou_hand_values(box, other, expected):
    iou = box_iou_one_to_many(np.array(box, float), np.array([other], float))
    assert iou[0] == pytest.approx(expected)


def test_nms_keeps_best_and_drops_overlaps_above_threshold():
    boxes = np.array(
        [
            [0, 0, 10, 10],  # 0.6
            [1, 0, 11, 10],  # 0.9, IoU 9/11 with box 0
            [20, 20, 30, 30],  # 0.8, far away
            [5, 0, 15, 10],  # 0.7, IoU 1/3 with box 0, 6/14 with box 1
        ],
        dtype=np.float32,
    )
    scores = np.array([0.6, 0.9, 0.8, 0.7], dtype=np.float32)
    # IoU(1, 3) = 6/14 = 0.43 > 0.3: box 3 goes; box 0 goes (0.82); box 2 stays
    assert nms_xyxy(boxes, scores, 0.3).tolist() == [1, 2]
    # at 0.5 box 3 survives box 1 (0.43 <= 0.5)
    assert nms_xyxy(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert nms_xyxy(boxes, scores, 0.5, top_k=2).tolist() == [1, 2]
    assert nms_xyxy(np.zeros((0, 4)), np.zeros(0), 0.3).tolist() == []
    with pytest.raises(ValueError, match="one score per box"):
        nms_xyxy(boxes, scores[:2], 0.3)


def test_strip_initializer_inputs_keeps_the_computation(weights_dir):
    import onnxruntime as ort

    path = weights_dir / "ultra-light-face" / "version-slim-320.onnx"
    original = path.read_bytes()
    stripped = strip_initializer_inputs(original)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    before = ort.InferenceSession(original, options, providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(stripped, options, providers=["CPUExecutionProvider"])
    # every weight is also a graph input, so onnxruntime cannot fold or fuse it ...
    assert len(before.get_overridable_initializers()) > 100
    assert len(after.get_overridable_initializers()) == 0  # ... and no longer is
    assert [i.name for i in after.get_inputs()] == ["input"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32)
    for a, b in zip(before.run(None, {"input": x}), after.run(None, {"input": x}), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _onnx(weights_dir, name: str):
    return weights_dir / "ultra-light-face" / f"version-{name}.onnx"


@pytest.fixture(scope="module")
def rfb640(weights_dir):
    return UltraLightFaceDetector(_onnx(weights_dir, "RFB-640"))


def test_detector_reproduces_fixture_boxes(rfb640, interview_frames, interview_reference):
    """The fixture's tracks were detected with RFB-640 (stretch resize) on every frame."""
    assert isinstance(rfb640, FaceDetector)
    for frame_index in range(0, len(interview_frames), 4):
        dets = rfb640.detect(interview_frames[frame_index])
        assert isinstance(dets, Detections) and len(dets) == 2
        assert np.all(np.diff(dets.confidence) <= 0)
        for k in (0, 1):
            want = interview_reference[f"track{k}_boxes_xyxy_px"][frame_index]
            err = np.abs(dets.xyxy_px - want).max(axis=1).min()
            assert err < 1e-2, f"frame {frame_index} track {k}: off by {err} px"


def test_letterbox_and_mirror_give_the_same_faces(weights_dir, interview_frames):
    """Coordinate mapping: letterboxed and mirrored inputs find the same boxes (IoU > 0.75)."""
    frame = interview_frames[0]
    width = frame.shape[1]
    stretch = UltraLightFaceDetector(_onnx(weights_dir, "RFB-320")).detect(frame)
    letterbox = UltraLightFaceDetector(_onnx(weights_dir, "RFB-320"), resize_mode="letterbox")
    boxed = letterbox.detect(frame)
    mirrored = UltraLightFaceDetector(_onnx(weights_dir, "RFB-320")).detect(frame[:, ::-1].copy())
    unmirrored = mirrored.xyxy_px[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [width, 0, width, 0]
    assert len(stretch) == len(boxed) == len(mirrored) == 2
    for other in (boxed.xyxy_px, unmirrored):
        for box in stretch.xyxy_px:
            assert box_iou_one_to_many(box, other).max() > 0.75


def test_boxes_are_clipped_to_the_frame(rfb640, interview_frames):
    crop = np.ascontiguousarray(interview_frames[0][150:, 380:])  # cuts the left face
    dets = rfb640.detect(crop)
    assert len(dets) >= 1
    assert dets.xyxy_px.min() >= 0
    assert np.all(dets.xyxy_px[:, 2] <= crop.shape[1])
    assert np.all(dets.xyxy_px[:, 3] <= crop.shape[0])


def test_blank_frame_has_no_faces(rfb640):
    assert len(rfb640.detect(np.full((360, 640, 3), 127, np.uint8))) == 0
    assert len(rfb640.detect_batch([np.zeros((100, 100, 3), np.uint8)] * 2)) == 2


@pytest.mark.parametrize(
    ("frame", "error", "message"),
    [
        (np.zeros((10, 10), np.uint8), ValueError, r"shape \(H, W, 3\)"),
        (np.zeros((10, 10, 4), np.uint8), ValueError, r"shape \(H, W, 3\)"),
        (np.zeros((10, 10, 3), np.float32), TypeError, "uint8"),
        ([[0, 0, 0]], TypeError, "numpy array"),
    ],
)
def test_bad_frames_are_rejected(rfb640, frame, error, message):
    with pytest.raises(error, match=message):
        rfb640.detect(frame)


def test_bad_arguments_are_rejected(weights_dir, tmp_path):
    with pytest.raises(ValueError, match="model must be one of"):
        UltraLightFaceDetector("RFB-1280")
    with pytest.raises(FileNotFoundError, match="weights not found"):
        UltraLightFaceDetector(tmp_path / "version-RFB-640.onnx")
    with pytest.raises(ValueError, match="score_threshold"):
        UltraLightFaceDetector(_onnx(weights_dir, "RFB-640"), score_threshold=1.5)
    with pytest.raises(ValueError, match="resize_mode"):
        UltraLightFaceDetector(_onnx(weights_dir, "RFB-640"), resize_mode="pad")  # type: ignore[arg-type]
