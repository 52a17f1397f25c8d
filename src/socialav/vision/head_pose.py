"""Head pose (yaw, pitch, roll in degrees) of detected faces with FSA-Net on onnxruntime.

FSA-Net (Yang, Chen, Lin and Chuang, "FSA-Net: Learning Fine-Grained Structure Aggregation for
Head Pose Estimation from a Single Image", CVPR 2019) regresses Euler angles from a 64x64 colour
face crop. We run the ONNX exports of the PyTorch port ``omasaht/headpose-fsanet-pytorch``
(MIT; ``pretrained/fsanet-1x1-iter-688590.onnx`` and ``fsanet-var-iter-688590.onnx``, trained on
300W-LP "type 1" data, AFLW2000 MAE yaw/pitch/roll 4.64 / 6.10 / 4.79 degrees for the average
of the two models, per its README).

Pre-processing, as in the port's ``src/demo.py``: BGR channel order, ``cv2.resize`` to 64x64
(bilinear), ``(x - 127.5) / 128``, NCHW float32; the two models' outputs are averaged.

Crop. The port's demo feeds the bare box of its ResNet-10 SSD detector, but its networks were
trained on crops made by FSA-Net's ``data/type1/TYY_create_db_type1.py``: the 68-landmark box
enlarged by ``ad = 0.6`` of its width/height on every side, and the official FSA-Net demo
(``demo/demo_FSANET_ssd.py``) crops its SSD boxes with the same ``ad = 0.6``. We follow the
training data and the official demo (:data:`FSANET_MARGIN`): ``x1 - ad*w .. x2 + ad*w``
truncated to int and clipped to the frame, inclusive end. Measured on the shared real clips
(GRID, videoretalking, interview; Ultra-Light RFB-320 boxes): with no margin a crop and its
mirror image disagree on yaw by up to 16 degrees (should be 0), with ``ad = 0.6`` by 0.5-3
degrees; frontal faces give ``|yaw| < 16``. The official demo's extra min-max contrast
stretch (``cv2.normalize``) is not applied: the port was trained without it.

Graph fix-ups. The published files fix the batch size to 1 and list their weights as graph
inputs; :func:`prepare_fsanet_onnx` drops those inputs (see
:func:`socialav.vision.detection.strip_initializer_inputs`) and makes the batch axis dynamic
(every Reshape in the graphs takes its shape from ``Shape`` of its input, so any batch size
works: checked to give the same angles as one-by-one runs to 2e-5 degrees).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from socialav.runtime import ort_session_options
from socialav.types import FaceTrack
from socialav.vision.detection import (
    check_frame_rgb,
    strip_initializer_inputs,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FSANET_INPUT_SIZE_PX",
    "FSANET_MARGIN",
    "FSANetHeadPose",
    "HeadPoseTracker",
    "head_crop",
    "prepare_fsanet_onnx",
    "track_head_pose",
]

#: Side of the square FSA-Net input crop in pixels.
FSANET_INPUT_SIZE_PX: int = 64
#: Crop margin ``ad`` on each side, as a fraction of the box width/height (FSA-Net
#: ``TYY_create_db_type1.py --ad 0.6`` and ``demo_FSANET_ssd.py``).
FSANET_MARGIN: float = 0.6


def head_crop(
    frame_rgb: np.ndarray,
    box_xyxy_px: np.ndarray | Sequence[float],
    margin: float = FSANET_MARGIN,
    size_px: int = FSANET_INPUT_SIZE_PX,
) -> np.ndarray:
    """Cut the FSA-Net input crop of one face: the box enlarged by ``margin``, BGR, 64x64.

    The enlarged box is ``[int(x1 - margin*w), int(x2 + margin*w)]`` x the same in y, clipped
    to ``[0, W-1]`` x ``[0, H-1]``, end pixel included (``demo_FSANET_ssd.py``); it is resized
    to ``size_px`` with ``cv2.resize`` (bilinear) and converted RGB -> BGR.

    Args:
        frame_rgb: ``(H, W, 3)`` uint8 RGB frame.
        box_xyxy_px: ``(4,)`` face box ``x1, y1, x2, y2`` in pixels of ``frame_rgb``.
        margin: fraction of the box size added on each side (>= 0).
        size_px: output side.

    Returns:
        ``(size_px, size_px, 3)`` uint8 BGR crop.

    Raises:
        TypeError, ValueError: bad frame; a box that is not 4 finite numbers, or that lies
            outside the frame (empty crop); a negative margin.
    """
    check_frame_rgb(frame_rgb)
    box = np.asarray(box_xyxy_px, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"box_xyxy_px must be 4 finite numbers x1, y1, x2, y2, but got {box}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, but got {margin}")
    height, width = frame_rgb.shape[:2]
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left = max(int(x1 - margin * w), 0)
    top = max(int(y1 - margin * h), 0)
    right = min(int(x2 + margin * w), width - 1)
    bottom = min(int(y2 + margin * h), height - 1)
    if right < left or bottom < top:
        raise ValueError(
            f"face box {box.tolist()} lies outside the {width}x{height} frame: empty head crop"
        )
    roi = frame_rgb[top : bottom + 1, left : right + 1, ::-1]
    return cv2.resize(roi, (size_px, size_px), interpolation=cv2.INTER_LINEAR)


def prepare_fsanet_onnx(model_bytes: bytes, batch_dim: str = "batch") -> bytes:
    """Serialized FSA-Net ONNX graph with weights removed from its inputs and a dynamic batch.

    Drops graph inputs that are initializers (:func:`strip_initializer_inputs`), then names the
    first dimension of every remaining graph input and output ``batch_dim`` (the published
    files fix it to 1), with the ``onnx`` library. The computation is unchanged.

    Raises:
        ValueError: the bytes are not an ONNX model.
    """
    import onnx

    model = onnx.load_model_from_string(strip_initializer_inputs(model_bytes))
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = batch_dim  # replaces dim_value (a oneof)
    return model.SerializeToString()


class FSANetHeadPose:
    """FSA-Net head pose on onnxruntime (CPU): the mean of the 1x1 and var models.

    Args:
        model_paths: the FSA-Net ``.onnx`` files to average (the registry's ``fsanet-1x1`` and
            ``fsanet-var``: :func:`socialav.checkpoints.load.load_head_pose` resolves them).
        margin: head-crop margin (:func:`head_crop`), default :data:`FSANET_MARGIN`.
        num_threads: onnxruntime intra-op threads (explicit; 1 leaves other cores to decoding).
        max_batch: at most this many faces per onnxruntime run (bounds the memory of one run).

    Raises:
        FileNotFoundError: an ``.onnx`` path that does not exist.
        ValueError: a graph without the expected ``input`` (N, 3, 64, 64) / ``output`` (N, 3).
    """

    def __init__(
        self,
        model_paths: Sequence[str | Path],
        margin: float = FSANET_MARGIN,
        num_threads: int = 1,
        max_batch: int = 256,
    ) -> None:
        import onnxruntime as ort

        if len(model_paths) == 0:
            raise ValueError("weights must name at least one FSA-Net ONNX model, but got none")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, but got {margin}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, but got {max_batch}")
        self.margin = float(margin)
        self.max_batch = int(max_batch)
        self.num_threads = int(num_threads)
        self.model_paths = [self._resolve(w) for w in model_paths]
        options = ort_session_options(self.num_threads, log_severity_level=3)
        self._sessions = []
        for path in self.model_paths:
            session = ort.InferenceSession(
                prepare_fsanet_onnx(path.read_bytes()), options, providers=["CPUExecutionProvider"]
            )
            inputs, outputs = session.get_inputs(), session.get_outputs()
            if (
                len(inputs) != 1
                or list(inputs[0].shape[1:]) != [3, FSANET_INPUT_SIZE_PX, FSANET_INPUT_SIZE_PX]
                or len(outputs) != 1
                or outputs[0].shape[-1] != 3
            ):
                raise ValueError(
                    f"{path}: expected one input (N, 3, 64, 64) and one output (N, 3), found "
                    f"inputs {[(i.name, i.shape) for i in inputs]}, outputs "
                    f"{[(o.name, o.shape) for o in outputs]}"
                )
            self._sessions.append((session, inputs[0].name))

    @staticmethod
    def _resolve(weights: str | Path) -> Path:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"FSA-Net ONNX file not found: {path}")
        return path

    def predict_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """Head pose of ready-made crops.

        Args:
            crops_bgr: ``(N, 64, 64, 3)`` uint8 BGR head crops (:func:`head_crop`).

        Returns:
            ``(N, 3)`` float32 ``yaw, pitch, roll`` in degrees (FSA-Net's convention: yaw and
            roll change sign when the crop is mirrored left-right, pitch does not).

        Raises:
            ValueError, TypeError: wrong shape or dtype.
        """
        crops = np.asarray(crops_bgr)
        size = FSANET_INPUT_SIZE_PX
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(
                f"crops_bgr must have shape (N, {size}, {size}, 3), but got shape {crops.shape}"
            )
        if crops.dtype != np.uint8:
            raise TypeError(f"crops_bgr must be uint8, but got {crops.dtype}")
        out = np.zeros((len(crops), 3), dtype=np.float32)
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            blob = chunk.transpose(0, 3, 1, 2).astype(np.float32)
            blob -= np.float32(127.5)
            blob *= np.float32(1.0 / 128.0)
            total = np.zeros((len(chunk), 3), dtype=np.float32)
            for session, name in self._sessions:
                total += session.run(None, {name: blob})[0].reshape(len(chunk), 3)
            out[start : start + len(chunk)] = total / len(self._sessions)
        return out

    def estimate(self, frame_rgb: np.ndarray, boxes_xyxy_px: np.ndarray) -> np.ndarray:
        """Head pose of every face box in one RGB frame (one batched run).

        Args:
            frame_rgb: ``(H, W, 3)`` uint8 RGB.
            boxes_xyxy_px: ``(n, 4)`` face boxes in pixels (detector boxes, unenlarged).

        Returns:
            ``(n, 3)`` float32 ``yaw, pitch, roll`` in degrees.
        """
        boxes = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 3), dtype=np.float32)
        crops = np.stack([head_crop(frame_rgb, b, self.margin) for b in boxes])
        return self.predict_crops(crops)

    def __repr__(self) -> str:
        names = [p.name for p in self.model_paths]
        return f"FSANetHeadPose(models={names}, margin={self.margin}, threads={self.num_threads})"


class HeadPoseTracker:
    """Head pose of open face tracks, computed while the video streams, with no frame held.

    Feed each frame once, with the boxes of the faces visible in it; every ``every_frames``-th
    frame of each face (counted from its first) is sent to the estimator (all faces of a frame
    in one batch). When a track closes, :meth:`finish` returns its angles on all its frames,
    linearly interpolated between the sampled frames and held constant beyond the first/last.

    Typical use inside the detect loop (``tracker`` a :class:`~socialav.vision.tracking.
    FaceTracker`; its keys are the ones ``pop_closed`` returns)::

        head_pose = HeadPoseTracker(load_head_pose(num_threads=n)[0])
        ...
        tracker.update(frame_index, dets)
        head_pose.update_open_tracks(frame_index, frame, tracker.open_tracks())
        for key, track in tracker.pop_closed():
            if track is None:
                head_pose.discard(key)
            else:
                angles = head_pose.finish(key, track.frame_indices)   # (T, 3)

    ``update_open_tracks`` uses the tracks' detected boxes, so with the detector on every
    k-th frame the angles are sampled at most on those frames.

    Args:
        estimator: an :class:`FSANetHeadPose` (anything with ``estimate(frame, boxes)``).
        every_frames: sample each face at most every this many frames (>= 1).
    """

    def __init__(self, estimator: FSANetHeadPose, every_frames: int = 1) -> None:
        if every_frames < 1:
            raise ValueError(f"every_frames must be >= 1, but got {every_frames}")
        self.estimator = estimator
        self.every_frames = int(every_frames)
        self._frames: dict[int, list[int]] = {}
        self._angles: dict[int, list[np.ndarray]] = {}
        self.num_estimates = 0

    def update(
        self, frame_index: int, frame_rgb: np.ndarray, faces: Iterable[tuple[int, np.ndarray]]
    ) -> None:
        """Sample the faces of one frame.

        Args:
            frame_index: analysis-timeline index of ``frame_rgb``.
            frame_rgb: ``(H, W, 3)`` uint8 RGB frame (not kept).
            faces: ``(key, box_xyxy_px)`` per visible face; ``key`` identifies its track.
        """
        keys: list[int] = []
        boxes: list[np.ndarray] = []
        for key, box in faces:
            done = self._frames.get(key)
            if done and frame_index - done[-1] < self.every_frames:
                continue  # sampled recently (or this frame was already given)
            keys.append(key)
            boxes.append(np.asarray(box, dtype=np.float64).reshape(4))
        if not keys:
            return
        angles = self.estimator.estimate(frame_rgb, np.stack(boxes))
        self.num_estimates += len(keys)
        for key, row in zip(keys, angles, strict=True):
            self._frames.setdefault(key, []).append(int(frame_index))
            self._angles.setdefault(key, []).append(row)

    def update_open_tracks(
        self,
        frame_index: int,
        frame_rgb: np.ndarray,
        open_tracks: Iterable[tuple[int, Sequence[int], Sequence[np.ndarray]]],
    ) -> None:
        """:meth:`update` with the tracks detected in this frame, from
        ``FaceTracker.open_tracks()`` (``(key, detection frames, detected boxes)``)."""
        faces = [
            (key, boxes[-1])
            for key, frames, boxes in open_tracks
            if frames and frames[-1] == frame_index
        ]
        self.update(frame_index, frame_rgb, faces)

    def samples(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """The sampled ``(frames (n,) int64, angles (n, 3) float32)`` of one face so far."""
        frames = np.asarray(self._frames.get(key, []), dtype=np.int64)
        angles = np.asarray(self._angles.get(key, []), dtype=np.float32).reshape(-1, 3)
        return frames, angles

    def finish(self, key: int, frame_indices: np.ndarray) -> np.ndarray:
        """Angles of a closed track on its frames, and forget it.

        Args:
            key: the track's key.
            frame_indices: ``(T,)`` the track's frame indices.

        Returns:
            ``(T, 3)`` float32 ``yaw, pitch, roll`` degrees, interpolated between samples; all
            NaN when the face was never sampled (logged as a warning).
        """
        frames, angles = self.samples(key)
        self.discard(key)
        return interpolate_angles(frames, angles, np.asarray(frame_indices, dtype=np.int64))

    def discard(self, key: int) -> None:
        """Forget a face (a rejected track)."""
        self._frames.pop(key, None)
        self._angles.pop(key, None)


def interpolate_angles(
    sample_frames: np.ndarray, sample_angles: np.ndarray, frame_indices: np.ndarray
) -> np.ndarray:
    """Linear interpolation of ``(n, 3)`` angles sampled at ``(n,)`` increasing frames onto
    ``(T,)`` frames (held constant outside the sampled span) -> ``(T, 3)`` float32; all NaN if
    ``n == 0``. FSA-Net angles stay within +-90 degrees, so no wrap-around is needed."""
    out = np.full((len(frame_indices), 3), np.nan, dtype=np.float32)
    if len(sample_frames) == 0:
        logger.warning("no head-pose sample for a face track of %d frames", len(frame_indices))
        return out
    for j in range(3):
        out[:, j] = np.interp(frame_indices, sample_frames, sample_angles[:, j])
    return out


def track_head_pose(
    estimator: FSANetHeadPose,
    frames: Mapping[int, np.ndarray],
    track: FaceTrack,
    every_frames: int = 1,
) -> np.ndarray:
    """Head pose of one face track from decoded frames (offline form of
    :class:`HeadPoseTracker`, for tests and scripts).

    Args:
        estimator: the head-pose model.
        frames: frame index -> ``(H, W, 3)`` uint8 RGB frame; the track's frames that are
            present (e.g. a subsample) are used, every ``every_frames``-th of them.
        track: the face track (its interpolated ``boxes_xyxy_px``).
        every_frames: sample step over the track's frames.

    Returns:
        ``(T, 3)`` float32 ``yaw, pitch, roll`` per track frame, interpolated between samples.
    """
    if every_frames < 1:
        raise ValueError(f"every_frames must be >= 1, but got {every_frames}")
    rows = [r for r in range(0, len(track), every_frames) if int(track.frame_indices[r]) in frames]
    sample_frames = track.frame_indices[rows]
    angles = [
        estimator.estimate(frames[int(t)], track.boxes_xyxy_px[r : r + 1])[0]
        for t, r in zip(sample_frames, rows, strict=True)
    ]
    sample_angles = np.asarray(angles, dtype=np.float32).reshape(-1, 3)
    return interpolate_angles(sample_frames, sample_angles, track.frame_indices)
