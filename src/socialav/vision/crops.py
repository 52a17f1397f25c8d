"""Face crops for the ASD models, with the geometry of the TalkNet/Light-ASD demos.

Reference: ``Columbia_test.py`` of Junhua-Liao/Light-ASD (same as TalkNet-ASD's
``demoTalkNet.py``). ``crop_video`` pads the BGR frame by ``bsi = int(s * (1 + 2 * cs))``
pixels of value 110 on each side, cuts rows ``int(my - s) : int(my + s * (1 + 2 * cs))`` and
columns ``int(mx - s * (1 + cs)) : int(mx + s * (1 + cs))`` (``my, mx`` = centre + ``bsi``,
``cs`` = ``--cropScale 0.40``), resizes the cut to 224x224 with ``cv2.resize`` (bilinear) and
writes it to a video; ``evaluate_network`` reads it back, converts it with
``cv2.COLOR_BGR2GRAY`` and keeps the central 112x112 pixels (rows and columns 56:168).

:func:`crop_face` gives the same pixels without padding the whole frame: only the cut window is
built (frame pixels where it overlaps the frame, 110 elsewhere), with Python slice semantics so
that windows running past the padded frame are shortened exactly as NumPy does in the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from socialav.types import IMAGENET_MEAN, IMAGENET_STD
from socialav.vision.detection import check_frame_rgb
from socialav.vision.quality import frame_quality

if TYPE_CHECKING:
    import torch

#: Value the demo pads frames with (``constant_values=(110, 110)``).
PAD_VALUE = 110
#: Side of the square the cut is resized to before the centre crop.
RESIZE_PX = 224
#: Side of the grayscale face given to the ASD models.
FACE_PX = 112
#: ``--cropScale`` of the demo.
DEFAULT_CROP_SCALE = 0.40


def crop_window(
    frame_height_px: int,
    frame_width_px: int,
    size_px: float,
    cx_px: float,
    cy_px: float,
    crop_scale: float = DEFAULT_CROP_SCALE,
) -> tuple[int, int, int, int, int]:
    """Pixel window the demo cuts from the padded frame.

    Args:
        frame_height_px, frame_width_px: size of the unpadded frame.
        size_px: smoothed half-size ``s`` of the face box.
        cx_px, cy_px: smoothed face-box centre.
        crop_scale: the demo's ``cropScale``.

    Returns:
        ``(pad_px, row0, row1, col0, col1)``: the padding ``bsi`` and the half-open window in
        padded-frame coordinates, after Python slice normalisation (so ``row1 - row0`` is the
        number of rows NumPy would return).

    Raises:
        ValueError: non-finite geometry, ``size_px <= 0``, or an empty window.
    """
    if not (np.isfinite(size_px) and np.isfinite(cx_px) and np.isfinite(cy_px)):
        raise ValueError(
            f"crop geometry must be finite, but got s={size_px}, cx={cx_px}, cy={cy_px}"
        )
    if size_px <= 0:
        raise ValueError(f"crop half-size must be positive, but got {size_px}")
    pad = int(size_px * (1 + 2 * crop_scale))
    my = cy_px + pad
    mx = cx_px + pad
    rows = slice(int(my - size_px), int(my + size_px * (1 + 2 * crop_scale)))
    cols = slice(int(mx - size_px * (1 + crop_scale)), int(mx + size_px * (1 + crop_scale)))
    row0, row1, _ = rows.indices(frame_height_px + 2 * pad)
    col0, col1, _ = cols.indices(frame_width_px + 2 * pad)
    if row1 <= row0 or col1 <= col0:
        raise ValueError(
            f"empty face crop for s={size_px}, cx={cx_px}, cy={cy_px} in a "
            f"{frame_width_px}x{frame_height_px} frame"
        )
    return pad, row0, row1, col0, col1


def crop_face(
    frame_rgb: np.ndarray,
    size_px: float,
    cx_px: float,
    cy_px: float,
    crop_scale: float = DEFAULT_CROP_SCALE,
) -> np.ndarray:
    """Cut one face as the ASD models expect it.

    Args:
        frame_rgb: ``(H, W, 3)`` uint8 RGB frame.
        size_px, cx_px, cy_px: crop geometry of this frame (``FaceTrack.crop_size_cx_cy_px``).
        crop_scale: the demo's ``cropScale`` (0.40).

    Returns:
        ``(112, 112)`` uint8 grayscale face (ITU-R BT.601 luma as ``cv2.COLOR_RGB2GRAY``, which
        equals the demo's ``COLOR_BGR2GRAY`` on the BGR frame).

    Raises:
        TypeError, ValueError: bad frame, or geometry giving an empty crop.
    """
    check_frame_rgb(frame_rgb)
    height, width = frame_rgb.shape[:2]
    pad, row0, row1, col0, col1 = crop_window(height, width, size_px, cx_px, cy_px, crop_scale)
    # window in frame coordinates; the part outside the frame is padding
    top, bottom, left, right = row0 - pad, row1 - pad, col0 - pad, col1 - pad
    in_top, in_bottom = max(top, 0), min(bottom, height)
    in_left, in_right = max(left, 0), min(right, width)
    if in_top == top and in_bottom == bottom and in_left == left and in_right == right:
        window = frame_rgb[top:bottom, left:right]
    else:
        window = np.full((bottom - top, right - left, 3), PAD_VALUE, dtype=np.uint8)
        if in_bottom > in_top and in_right > in_left:
            window[in_top - top : in_bottom - top, in_left - left : in_right - left] = frame_rgb[
                in_top:in_bottom, in_left:in_right
            ]
    resized = cv2.resize(window, (RESIZE_PX, RESIZE_PX), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    lo = (RESIZE_PX - FACE_PX) // 2
    return np.ascontiguousarray(gray[lo : lo + FACE_PX, lo : lo + FACE_PX])


def crop_face_reference(
    frame_rgb: np.ndarray,
    size_px: float,
    cx_px: float,
    cy_px: float,
    crop_scale: float = DEFAULT_CROP_SCALE,
) -> np.ndarray:
    """Straightforward transcription of the demo's steps (pads the whole frame; slow).

    Kept to check :func:`crop_face` against; same arguments and result.
    """
    check_frame_rgb(frame_rgb)
    bgr = np.ascontiguousarray(frame_rgb[:, :, ::-1])
    pad = int(size_px * (1 + 2 * crop_scale))
    padded = np.pad(bgr, ((pad, pad), (pad, pad), (0, 0)), "constant", constant_values=PAD_VALUE)
    my = cy_px + pad
    mx = cx_px + pad
    face = padded[
        int(my - size_px) : int(my + size_px * (1 + 2 * crop_scale)),
        int(mx - size_px * (1 + crop_scale)) : int(mx + size_px * (1 + crop_scale)),
    ]
    face = cv2.resize(face, (RESIZE_PX, RESIZE_PX))
    gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (RESIZE_PX, RESIZE_PX))
    half = FACE_PX / 2
    centre = RESIZE_PX / 2
    return gray[int(centre - half) : int(centre + half), int(centre - half) : int(centre + half)]


def crop_track_frame(
    frame_rgb: np.ndarray, crop_size_cx_cy_px: np.ndarray, crop_scale: float = DEFAULT_CROP_SCALE
) -> np.ndarray:
    """:func:`crop_face` with one row ``(s, cx, cy)`` of ``FaceTrack.crop_size_cx_cy_px``."""
    size_px, cx_px, cy_px = (float(v) for v in crop_size_cx_cy_px)
    return crop_face(frame_rgb, size_px, cx_px, cy_px, crop_scale)


def crop_face_box(
    image_rgb: np.ndarray, box_xyxy_px: Sequence[float], size_px: int = 224, scale: float = 0.0
) -> np.ndarray:
    """Face crop of the baselines: ``img[int(y1'):int(y2'), int(x1'):int(x2')]`` resized.

    ``x1' = (1 - scale) x1``, ``x2' = (1 + scale) x2`` (and the same for y) as the LAM
    ``_get_video``; corners are clamped at 0 (the baseline relies on ``check()`` having
    clipped ``x, y`` at 0). A crop with no pixels gives zeros (the baseline's "bad bbox").

    Returns:
        ``(size_px, size_px, 3)`` uint8 RGB (``cv2.resize``, bilinear).
    """
    x1 = max(int((1.0 - scale) * box_xyxy_px[0]), 0)
    y1 = max(int((1.0 - scale) * box_xyxy_px[1]), 0)
    x2 = max(int((1.0 + scale) * box_xyxy_px[2]), 0)
    y2 = max(int((1.0 + scale) * box_xyxy_px[3]), 0)
    face = image_rgb[y1:y2, x1:x2]
    if face.size == 0:
        return np.zeros((size_px, size_px, 3), dtype=np.uint8)
    return cv2.resize(face, (size_px, size_px))


def face_box_pixels(image_rgb: np.ndarray, box_xyxy_px: Sequence[float]) -> np.ndarray:
    """The box's pixels ``image[max(int(y1), 0):max(int(y2), 0), max(int(x1), 0):
    max(int(x2), 0)]``, not resized (a view, possibly empty): what the QuAVF visual quality
    (:func:`frame_quality`) is measured on."""
    x1, y1 = max(int(box_xyxy_px[0]), 0), max(int(box_xyxy_px[1]), 0)
    return image_rgb[y1 : max(int(box_xyxy_px[3]), 0), x1 : max(int(box_xyxy_px[2]), 0)]


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """``(T, S, S, 3)`` uint8 RGB crops -> ``(T, 3, S, S)`` float32 torch tensor,
    ImageNet-normalised (the Ego4D baselines' ``get_transform``)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def social_face_inputs(
    image_rgb: np.ndarray,
    box_xyxy_px: Sequence[float],
    sizes_px: Sequence[int],
    with_quality: bool = True,
) -> tuple[dict[int, np.ndarray], float | None]:
    """What the trained LAM/TTM models need of one face in one frame.

    Args:
        image_rgb: ``(H, W, 3)`` uint8 RGB frame.
        box_xyxy_px: the face box (the track's, interpolated) in frame pixels.
        sizes_px: crop sides wanted (the checkpoints' ``face_size_px``).
        with_quality: also compute the visual quality.

    Returns:
        ``({size: (size, size, 3) uint8 crop_face_box}, quality)`` where quality is
        :func:`~socialav.vision.quality.frame_quality` of the box pixels with confidence
        1 (multiply by the detector confidence), or ``None`` when not asked for.
    """
    box = [float(v) for v in box_xyxy_px]
    crops = {int(s): crop_face_box(image_rgb, box, int(s)) for s in sizes_px}
    quality = None
    if with_quality:
        quality = frame_quality(face_box_pixels(image_rgb, box), box, 1.0)
    return crops, quality
