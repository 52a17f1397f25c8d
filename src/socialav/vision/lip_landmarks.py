"""Lip landmarks on the ASD face crops, and identity-free lip-motion features from them.

The 20 mouth points (48-67 of the iBUG 300-W markup) of dlib's 68-point shape predictor
(Kazemi & Sullivan, CVPR 2014), placed on the ``112 x 112`` grayscale crops the ASD models
see (:mod:`socialav.vision.crops`), upsampled to 224 px. The face rectangle in crop
coordinates follows from the crop geometry; see docs/sync_finetuning.md ("Lip landmarks").
The features hand on lip *motion*, not lip shape: each track's median mouth shape is taken
off and distances are divided by its median mouth width. Used by the lip-sync experiment
(:mod:`socialav.models.lip_sync`), never by ``detect``: the 68-point model's training data
(iBUG 300-W) excludes commercial use.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from socialav.vision.crops import DEFAULT_CROP_SCALE, FACE_PX, RESIZE_PX

__all__ = ["MOUTH_POINTS", "LIP_FEATURE_DIM", "LipLandmarker", "lip_motion_features"]

#: Number of mouth points (iBUG 300-W points 48-67: 12 outer lip, 8 inner lip).
MOUTH_POINTS = 20
#: Width of :func:`lip_motion_features` rows.
LIP_FEATURE_DIM = 2 * MOUTH_POINTS + 7
#: The crops are upsampled by this factor before the shape predictor runs.
_UPSAMPLE = 2


def _face_rect_in_crop(crop_scale: float = DEFAULT_CROP_SCALE) -> tuple[int, int, int, int]:
    """The detector's face box in ``112``-crop pixels ``(left, top, right, bottom)``.

    The demo cuts ``2 s (1 + cs)`` pixels around a box of half-size ``s`` (rows from
    ``my - s``, columns centred), resizes the cut to 224 and keeps rows and columns 56:168,
    so the box spans rows ``-56 .. 2 s k - 56`` and columns centred on 56 with half-width
    ``s k``, where ``k = 224 / (2 s (1 + cs))``.
    """
    half_px = RESIZE_PX / (2 * (1 + crop_scale))  # s * k
    offset = (RESIZE_PX - FACE_PX) // 2
    left = FACE_PX / 2 - half_px
    return (
        int(round(left)),
        -offset,
        int(round(left + 2 * half_px)),
        int(round(2 * half_px - offset)),
    )


class LipLandmarker:
    """dlib's 68-point shape predictor on ASD face crops; keeps the 20 mouth points.

    Args:
        predictor_path: ``shape_predictor_68_face_landmarks.dat`` (registry entry
            ``dlib-shape-68``).

    Raises:
        FileNotFoundError: ``predictor_path`` does not exist.
    """

    def __init__(self, predictor_path: str | Path) -> None:
        import dlib

        path = Path(predictor_path)
        if not path.is_file():
            raise FileNotFoundError(f"dlib 68-point shape predictor not found: {path}")
        self._predictor = dlib.shape_predictor(str(path))
        left, top, right, bottom = (v * _UPSAMPLE for v in _face_rect_in_crop())
        self._rect = dlib.rectangle(left, top, right, bottom)

    def mouth_points(self, faces_gray112: np.ndarray) -> np.ndarray:
        """The mouth points of every crop of a face track.

        Args:
            faces_gray112: ``(T, 112, 112)`` uint8 grayscale ASD crops.

        Returns:
            ``(T, 20, 2)`` float32 ``(x, y)`` in crop pixels (points 48-67 in order).

        Raises:
            ValueError: ``faces_gray112`` is not ``(T, 112, 112)`` uint8.
        """
        faces = np.asarray(faces_gray112)
        if faces.ndim != 3 or faces.shape[1:] != (FACE_PX, FACE_PX) or faces.dtype != np.uint8:
            raise ValueError(
                f"faces_gray112 must be (T, {FACE_PX}, {FACE_PX}) uint8, but got "
                f"{faces.shape} {faces.dtype}"
            )
        side = FACE_PX * _UPSAMPLE
        out = np.empty((len(faces), MOUTH_POINTS, 2), np.float32)
        for t, face in enumerate(faces):
            big = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
            shape = self._predictor(big, self._rect)
            for k in range(MOUTH_POINTS):
                p = shape.part(48 + k)
                out[t, k] = (p.x / _UPSAMPLE, p.y / _UPSAMPLE)
        return out


def lip_motion_features(mouth_points: np.ndarray) -> np.ndarray:
    """Identity-free lip-motion features of one face track.

    Each frame's mouth is centred on its mean point; the track's median centred shape is
    subtracted (identity and resting shape) and everything is divided by the track's median
    mouth width (distance of the corners, points 48 and 54). Per frame: the 40 centred,
    scaled point deviations, then 7 scaled distances: inner-lip openings (61-67, 62-66,
    63-65), outer-lip openings (50-58, 51-57, 52-56) and the mouth width.

    Args:
        mouth_points: ``(T, 20, 2)`` points of :meth:`LipLandmarker.mouth_points`.

    Returns:
        ``(T, 47)`` float32.

    Raises:
        ValueError: not ``(T, 20, 2)`` with ``T >= 1``.
    """
    pts = np.asarray(mouth_points, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (MOUTH_POINTS, 2) or len(pts) == 0:
        raise ValueError(f"mouth_points must be (T, {MOUTH_POINTS}, 2), but got {pts.shape}")
    width = np.linalg.norm(pts[:, 6] - pts[:, 0], axis=1)
    scale = max(float(np.median(width)), 1e-3)
    centred = pts - pts.mean(axis=1, keepdims=True)
    deviation = (centred - np.median(centred, axis=0, keepdims=True)) / scale

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(pts[:, a - 48] - pts[:, b - 48], axis=1) / scale

    pairs = ((61, 67), (62, 66), (63, 65), (50, 58), (51, 57), (52, 56), (48, 54))
    distances = np.stack([dist(a, b) for a, b in pairs], axis=1)
    return np.concatenate([deviation.reshape(len(pts), -1), distances], axis=1).astype(np.float32)
