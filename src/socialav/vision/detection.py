"""Face detection: a detector protocol and the Ultra-Light-Fast-Generic-Face-Detector adapter.

The adapter runs the public ONNX exports of Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB
(MIT, ``models/onnx/version-{RFB-640,RFB-320,slim-320}.onnx``) with onnxruntime. Those graphs
already contain the SSD post-processing (``vision/ssd/ssd.py`` with ``is_test=True``): the
``scores`` output is the softmax over (background, face) and ``boxes`` are prior-decoded
corner-form boxes ``x1, y1, x2, y2`` normalised to the network input (checked empirically:
scores sum to 1 and ``x2 > x1`` for every prior). What is left to do here is the
pre-processing (RGB, ``(x - 127) / 128``, NCHW) and the greedy NMS of the repository's
``vision/utils/box_utils_numpy.py`` (``hard_nms``), written again below in NumPy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from socialav.runtime import ort_session_options
from socialav.types import Detections

logger = logging.getLogger(__name__)

ResizeMode = Literal["stretch", "letterbox"]


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces in one RGB frame.

    ``detect(frame_rgb)`` takes an ``(H, W, 3)`` uint8 RGB image and returns
    :class:`~socialav.types.Detections` with boxes in pixels of that image, clipped to it, in
    descending order of confidence.
    """

    def detect(self, frame_rgb: np.ndarray) -> Detections: ...


def check_frame_rgb(frame_rgb: np.ndarray) -> None:
    """Raise if ``frame_rgb`` is not an ``(H, W, 3)`` uint8 image.

    Raises:
        TypeError: not a numpy array, or not uint8.
        ValueError: wrong number of dimensions or channels, or an empty image.
    """
    if not isinstance(frame_rgb, np.ndarray):
        raise TypeError(f"frame_rgb must be a numpy array, but got {type(frame_rgb).__name__}")
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or 0 in frame_rgb.shape:
        raise ValueError(f"frame_rgb must have shape (H, W, 3), but got {frame_rgb.shape}")
    if frame_rgb.dtype != np.uint8:
        raise TypeError(f"frame_rgb must be uint8, but got {frame_rgb.dtype}")


def box_iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` xyxy box with ``(n, 4)`` xyxy boxes -> ``(n,)`` float.

    Areas are ``(x2 - x1) * (y2 - y1)`` with no ``+1`` (as ``box_utils_numpy.iou_of`` and the
    TalkNet/Light-ASD ``bb_intersection_over_union``); an empty union gives IoU 0.
    """
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def nms_xyxy(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int = -1
) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices in descending score order.

    Same rule as ``hard_nms`` in Ultra-Light's ``vision/utils/box_utils_numpy.py``: take the
    highest-scoring remaining box, drop every remaining box whose IoU with it is greater than
    ``iou_threshold``, repeat.

    Args:
        boxes: ``(n, 4)`` float xyxy boxes (any unit).
        scores: ``(n,)`` float scores.
        iou_threshold: boxes overlapping a kept box by more than this are suppressed.
        top_k: keep at most this many boxes (``<= 0``: no limit).

    Returns:
        ``(m,)`` int64 indices into ``boxes``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms needs one score per box ({len(boxes)}), but got {len(scores)}")
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if 0 < top_k <= len(keep) or order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


# --- ONNX graph clean-up ---------------------------------------------------------------------
# The published Ultra-Light (and FSA-Net) ONNX files list every weight both as an initializer
# and as a graph input. onnxruntime then treats the weights as overridable inputs and skips
# constant folding and Conv+BatchNorm fusion, which makes the graphs 2-3x slower on a CPU
# (measured: RFB-640 39 -> 16 ms per frame on one thread, identical outputs).


def strip_initializer_inputs(model_bytes: bytes) -> bytes:
    """Return a serialized ONNX model without graph inputs that are also initializers.

    The computation is unchanged; onnxruntime can then fold constants and fuse
    BatchNorm into Conv (the fix of onnxruntime's ``remove_initializer_from_input.py``),
    done with the ``onnx`` library.

    Raises:
        ValueError: the bytes are not an ONNX model.
    """
    model = _load_onnx(model_bytes)
    initializers = {init.name for init in model.graph.initializer}
    keep = [value for value in model.graph.input if value.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model.SerializeToString()


def _load_onnx(model_bytes: bytes):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load_model_from_string(model_bytes)
    except (DecodeError, ValueError) as err:
        raise ValueError(f"expected a serialized ONNX model, but parsing failed ({err})") from None


class UltraLightFaceDetector:
    """Ultra-Light-Fast-Generic-Face-Detector-1MB (Linzaer, MIT) on onnxruntime (CPU).

    Pre-processing as the repository's ``run_video_face_detect_onnx.py``: the RGB frame is
    resized to the network input (``cv2.resize``, bilinear), normalised as ``(x - 127) / 128``
    and laid out NCHW float32. ``resize_mode="stretch"`` resizes without keeping the aspect
    ratio (as the reference demo); ``"letterbox"`` keeps it and pads with 127 (0 after
    normalisation) at the bottom/right. Faces with face probability above ``score_threshold``
    are kept after greedy NMS at ``iou_threshold``, then mapped back to frame pixels and
    clipped to the frame.

    Args:
        model_path: an ``.onnx`` file of the family (``version-RFB-640.onnx``, input 640x480;
            ``version-RFB-320.onnx`` or ``version-slim-320.onnx``, 320x240; the input size is
            read from the graph). Registry names (``ultra-light-face-rfb-320``, ...) are
            resolved by :func:`socialav.checkpoints.load.load_face_detector`.
        score_threshold: minimum face probability; 0.7 as the reference demo
            (``run_video_face_detect_onnx.py``: ``threshold = 0.7``).
        iou_threshold: NMS IoU threshold; 0.3 as the repository's image demos
            (``detect_imgs_onnx.py``); its video demo's ``predict`` defaults to 0.5.
        resize_mode: ``"stretch"`` (default, as the reference) or ``"letterbox"``.
        top_k: keep at most this many faces per frame (``<= 0``: all).
        intra_op_num_threads: onnxruntime threads inside an operator (>= 1; 1 leaves the
            second core to decoding; :func:`socialav.runtime.ort_session_options`).
        inputs_stripped: the file went through :func:`strip_initializer_inputs` already (as
            :func:`~socialav.checkpoints.load.load_face_detector` caches it), so the ``onnx``
            package need not be imported to do it again.

    Raises:
        FileNotFoundError: the ONNX file is not found.
        ValueError: not an ``.onnx`` path, or a threshold outside ``[0, 1]``.

    The fixture ``interview_light_asd_reference.npz`` was produced with ``RFB-640``, stretch
    resize: this adapter reproduces its detector boxes to float32 precision.
    """

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = 0.7,
        iou_threshold: float = 0.3,
        resize_mode: ResizeMode = "stretch",
        top_k: int = -1,
        intra_op_num_threads: int = 1,
        inputs_stripped: bool = False,
    ) -> None:
        import onnxruntime as ort

        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must lie in [0, 1], but got {score_threshold}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], but got {iou_threshold}")
        if resize_mode not in ("stretch", "letterbox"):
            raise ValueError(
                f"resize_mode must be 'stretch' or 'letterbox', but got {resize_mode!r}"
            )
        self.model_path = self._resolve(model_path)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.resize_mode: ResizeMode = resize_mode
        self.top_k = int(top_k)

        # log level 3: the published graphs trigger warnings we fix below
        options = ort_session_options(intra_op_num_threads, log_severity_level=3)
        model_bytes = self.model_path.read_bytes()
        if not inputs_stripped:
            model_bytes = strip_initializer_inputs(model_bytes)
        self._session = ort.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(
                f"{self.model_path}: expected one NCHW input, found "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        self._input_name = inputs[0].name
        _, channels, height, width = inputs[0].shape
        if channels != 3 or not isinstance(height, int) or not isinstance(width, int):
            raise ValueError(f"{self.model_path}: expected input 1x3xHxW, found {inputs[0].shape}")
        self.input_width_px, self.input_height_px = int(width), int(height)
        outputs = [o.name for o in self._session.get_outputs()]
        if outputs != ["scores", "boxes"]:
            raise ValueError(
                f"{self.model_path}: expected outputs [scores, boxes], found {outputs}"
            )

    @staticmethod
    def _resolve(model_path: str | Path) -> Path:
        path = Path(model_path)
        if path.suffix != ".onnx":
            raise ValueError(
                "model must be one of the family's .onnx files (version-RFB-640.onnx, "
                f"version-RFB-320.onnx, version-slim-320.onnx), but got {str(model_path)!r} "
                "(registry names are resolved by socialav.checkpoints.load.load_face_detector)"
            )
        if not path.is_file():
            raise FileNotFoundError(f"Ultra-Light face detector weights not found: {path}")
        return path

    def _preprocess(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Return the network input ``(1, 3, h, w)`` float32 and the px-per-unit scales."""
        height, width = frame_rgb.shape[:2]
        in_w, in_h = self.input_width_px, self.input_height_px
        if self.resize_mode == "stretch":
            resized = cv2.resize(frame_rgb, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
            scale_x, scale_y = float(width), float(height)
        else:
            ratio = min(in_w / width, in_h / height)
            new_w = max(1, min(in_w, round(width * ratio)))
            new_h = max(1, min(in_h, round(height * ratio)))
            resized = np.full((in_h, in_w, 3), 127, dtype=np.uint8)
            resized[:new_h, :new_w] = cv2.resize(
                frame_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR
            )
            # normalised box coordinates are relative to the padded input
            scale_x, scale_y = in_w * width / new_w, in_h * height / new_h
        blob = np.empty((1, 3, in_h, in_w), dtype=np.float32)
        for channel in range(3):
            np.subtract(resized[:, :, channel], np.float32(127.0), out=blob[0, channel])
        blob *= np.float32(1.0 / 128.0)
        return blob, scale_x, scale_y

    def detect(self, frame_rgb: np.ndarray) -> Detections:
        """Detect faces in one ``(H, W, 3)`` uint8 RGB frame.

        Returns:
            :class:`Detections` with ``xyxy_px`` in pixels of ``frame_rgb`` (clipped to
            ``[0, W] x [0, H]``), in descending order of ``confidence`` (face probability).

        Raises:
            TypeError, ValueError: ``frame_rgb`` is not an ``(H, W, 3)`` uint8 array.
        """
        check_frame_rgb(frame_rgb)
        height, width = frame_rgb.shape[:2]
        blob, scale_x, scale_y = self._preprocess(frame_rgb)
        scores, boxes = self._session.run(None, {self._input_name: blob})
        face_prob = scores[0, :, 1]
        mask = face_prob > self.score_threshold
        if not mask.any():
            return Detections.empty()
        cand_boxes = boxes[0][mask]
        cand_scores = face_prob[mask]
        keep = nms_xyxy(cand_boxes, cand_scores, self.iou_threshold, self.top_k)
        xyxy = cand_boxes[keep].astype(np.float32)
        xyxy *= np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)
        np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
        return Detections(xyxy_px=xyxy, confidence=cand_scores[keep])

    def detect_batch(self, frames_rgb: Sequence[np.ndarray]) -> list[Detections]:
        """Detect faces in several frames (the ONNX graphs have batch size 1: one run each)."""
        return [self.detect(frame) for frame in frames_rgb]

    def __repr__(self) -> str:
        return (
            f"UltraLightFaceDetector(model={self.model_path.name!r}, "
            f"input={self.input_width_px}x{self.input_height_px}, "
            f"score_threshold={self.score_threshold}, iou_threshold={self.iou_threshold}, "
            f"resize_mode={self.resize_mode!r})"
        )
