"""Per-frame visual quality of a face crop in [0, 1] (size, sharpness, detector confidence),
the weight of QuAVF's quality-aware fusion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["QualityConfig", "frame_quality"]


@dataclass(frozen=True)
class QualityConfig:
    """Per-frame visual quality in [0, 1] (our replacement for QuAVF's landmark confidence).

    ``q = confidence * size_term * sharpness_term`` for a frame with a face, 0 without, with
    ``size_term = min(1, sqrt(w h) / full_size_px)`` and
    ``sharpness_term = v / (v + blur_half_var)`` where ``v`` is the variance of the Laplacian
    of the grayscale crop (``cv2.Laplacian``, 3x3, float64; the common blur measure of Pech-
    Pacheco et al., ICPR 2000). A window's quality is the mean over its frames (0 for frames
    without a face), as QuAVF averages per-frame scores over ``fidSeg`` -- so it also carries
    the fraction of frames with a face.

    Attributes:
        full_size_px: face size (geometric mean of box sides) at which size stops mattering.
        blur_half_var: Laplacian variance at which the sharpness term is 0.5 (the usual
            "blurry below 100" threshold).
    """

    full_size_px: float = 64.0
    blur_half_var: float = 100.0


def frame_quality(
    crop_rgb: np.ndarray | None,
    box_xyxy_px: Sequence[float] | None,
    confidence: float = 1.0,
    config: QualityConfig | None = None,
) -> float:
    """Visual quality of one face frame (see :class:`QualityConfig`); 0 without a face.

    Args:
        crop_rgb: ``(H, W, 3)`` uint8 face crop (before resizing, or resized), or ``None``.
        box_xyxy_px: the face box in frame pixels (for the size term), or ``None``.
        confidence: detector confidence in [0, 1] (1 for annotated boxes).
    """
    if crop_rgb is None or box_xyxy_px is None or crop_rgb.size == 0:
        return 0.0
    cfg = config or QualityConfig()
    w = max(float(box_xyxy_px[2]) - float(box_xyxy_px[0]), 0.0)
    h = max(float(box_xyxy_px[3]) - float(box_xyxy_px[1]), 0.0)
    size_term = min(1.0, math.sqrt(w * h) / cfg.full_size_px)
    gray = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    var = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    sharp = var / (var + cfg.blur_half_var)
    return float(np.clip(confidence, 0.0, 1.0)) * size_term * sharp
