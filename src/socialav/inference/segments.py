"""From per-frame model logits to speaking probabilities and speaking segments.

* Probability: softmax of the 2-way head, class 1 — identical to ``sigmoid(l1 - l0)``; this
  is the score the Light-ASD/TalkNet training loss (``lossAV``) optimises and the one the AVA
  evaluation of those papers ranks.
* Smoothing: a centred moving average over ``smooth_frames`` frames (5 = ±2 frames, the
  window the TalkNet/Light-ASD demos average in ``visualization``), shrinking at track edges.
* Segments: frames with smoothed probability ≥ ``threshold``; gaps shorter than
  ``max_gap_s`` are closed, then segments shorter than ``min_duration_s`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socialav.types import ANALYSIS_FPS, SpeakingSegment

__all__ = ["SegmentConfig", "speaking_probability", "smooth", "speaking_segments"]


@dataclass(frozen=True)
class SegmentConfig:
    """How speaking probabilities become speaking segments.

    Attributes:
        threshold: a frame speaks when its smoothed probability is ≥ this.
        smooth_frames: odd width of the centred moving average (1 = none); default 5 frames
            (0.2 s) as in the TalkNet/Light-ASD demo visualisation.
        max_gap_s: non-speaking gaps shorter than this inside speech are closed (0.2 s).
        min_duration_s: speaking runs shorter than this are dropped (0.2 s).
    """

    threshold: float = 0.5
    smooth_frames: int = 5
    max_gap_s: float = 0.2
    min_duration_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], but got {self.threshold}")
        if self.smooth_frames < 1 or self.smooth_frames % 2 == 0:
            raise ValueError(f"smooth_frames must be odd and ≥ 1, but got {self.smooth_frames}")
        if self.max_gap_s < 0 or self.min_duration_s < 0:
            raise ValueError("max_gap_s and min_duration_s must be ≥ 0")


def speaking_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax class-1 probability of ``(T, 2)`` head logits, ``sigmoid(l1 - l0)`` -> ``(T,)``
    float32 in [0, 1]; a NaN row (a frame without audio) stays NaN.

    Raises:
        ValueError: logits not of shape ``(T, 2)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits must have shape (T, 2), but got {logits.shape}")
    diff = logits[:, 1] - logits[:, 0]
    return (1.0 / (1.0 + np.exp(-diff))).astype(np.float32)


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``(T,)`` values over ``width`` frames, shrinking at the edges."""
    values = np.asarray(values, dtype=np.float64)
    if width <= 1 or len(values) == 0:
        return values.astype(np.float32)
    half = width // 2
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(len(values))
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, len(values))
    return ((csum[hi] - csum[lo]) / (hi - lo)).astype(np.float32)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` positions of the True runs of a boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def speaking_segments(
    probabilities: np.ndarray,
    frame_indices: np.ndarray,
    config: SegmentConfig = SegmentConfig(),
    fps: float = ANALYSIS_FPS,
) -> list[SpeakingSegment]:
    """Speaking segments of one face track.

    Args:
        probabilities: ``(T,)`` smoothed speaking probabilities.
        frame_indices: ``(T,)`` consecutive frame indices of the track.
        config: thresholds and durations.
        fps: frame rate of the timeline (frame ``k`` starts at ``k / fps`` s).

    Returns:
        Segments sorted by time; ``end_s`` is exclusive (end of the last speaking frame).
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    frame_indices = np.asarray(frame_indices, dtype=np.int64)
    if len(probabilities) != len(frame_indices):
        raise ValueError(
            f"probabilities ({len(probabilities)}) and frame_indices ({len(frame_indices)}) "
            "must have the same length"
        )
    mask = probabilities >= config.threshold
    max_gap = int(round(config.max_gap_s * fps))
    for start, end in _runs(~mask):
        if start > 0 and end < len(mask) - 1 and end - start + 1 < max_gap:
            mask[start : end + 1] = True
    min_len = int(round(config.min_duration_s * fps))
    segments = []
    for start, end in _runs(mask):
        if end - start + 1 < min_len:
            continue
        f0, f1 = int(frame_indices[start]), int(frame_indices[end])
        segments.append(
            SpeakingSegment(
                start_s=f0 / fps,
                end_s=(f1 + 1) / fps,
                start_frame=f0,
                end_frame=f1,
                mean_score=float(probabilities[start : end + 1].mean()),
            )
        )
    return segments
