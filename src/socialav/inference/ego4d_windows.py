"""The input windows of the Ego4D LAM and TTM baselines over a face's frames: the LAM
baseline's edge padding and QuAVF's visual windows. Training samples
(:mod:`socialav.data.ego4d.samples`) and inference (:mod:`socialav.inference.social`) both
build their windows here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["lam_window_sources", "quavf_visual_windows"]


def lam_window_sources(valid: Sequence[bool]) -> np.ndarray:
    """Which window frame fills each of the slots, as ``pad_video`` of the LAM baseline.

    The centre slot always counts as valid; invalid frames are removed and the remaining
    frames are edge-padded at the front by the number of invalid frames before the centre
    and at the back by the number after it.

    Args:
        valid: ``(W,)`` booleans, ``W`` odd.

    Returns:
        ``(W,)`` int64 indices into the window. Example (hand check): valid
        ``[F, T, F, T, T, T, F]`` -> kept ``[1, 3, 4, 5]``, 2 invalid before the centre and
        1 after -> ``[1, 1, 1, 3, 4, 5, 5]``.
    """
    flags = np.asarray(valid, dtype=bool).copy()
    if flags.ndim != 1 or len(flags) % 2 == 0:
        raise ValueError(f"valid must be 1-D with an odd length, but got shape {flags.shape}")
    mid = len(flags) // 2
    flags[mid] = True
    kept = np.flatnonzero(flags)
    before = int((~flags[:mid]).sum())
    after = int((~flags[mid + 1 :]).sum())
    return np.concatenate([np.full(before, kept[0]), kept, np.full(after, kept[-1])]).astype(
        np.int64
    )


def quavf_visual_windows(
    face_frames: Sequence[int | None],
    frame_quality_values: Sequence[float],
    *,
    feat_length: int = 15,
    frame_stride: int = 15,
    data_stride: int = 8,
    score_threshold: float | None = 0.3,
) -> list[tuple[int | None, tuple[int | None, ...], float]]:
    """Windows over one segment, as QuAVF's ``TTMDataset._getData`` (training) or
    ``TTMTestDataset._getData`` (``score_threshold=None``: one window per face frame).

    With ``span = (feat_length - 1) * frame_stride + 1`` and ``half = (span - 1) // 2``, the
    frame list is padded with ``half`` empty frames on each side; training walks ``idx`` from
    0 while ``idx < len(padded) - span - 1``: the window is ``padded[idx : idx + span + 1 :
    frame_stride]``, its quality the mean of the per-frame values over it; a window with
    quality ``>= score_threshold`` is kept and ``idx`` advances by ``data_stride``, otherwise
    by 1. (The slice holds ``feat_length`` frames when ``frame_stride >= 2`` and one more
    when it is 1, as in the reference.) Defaults: ``common/config.py`` (15, 15, 8, 0.3).

    Args:
        face_frames: per frame of the segment, its frame index when a face is there, else
            ``None``.
        frame_quality_values: per-frame quality (0 where there is no face).

    Returns:
        ``[(center_frame, window_frames, quality), ...]``.
    """
    if len(face_frames) != len(frame_quality_values):
        raise ValueError(
            f"face_frames and frame_quality_values must have the same length, but got "
            f"{len(face_frames)} and {len(frame_quality_values)}"
        )
    if feat_length % 2 != 1:
        raise ValueError(f"feat_length must be odd (QuAVF asserts it), but got {feat_length}")
    span = (feat_length - 1) * frame_stride + 1
    half = (span - 1) // 2
    fids: list[int | None] = [None] * half + list(face_frames) + [None] * half
    scores = [0.0] * half + [float(q) for q in frame_quality_values] + [0.0] * half
    out: list[tuple[int | None, tuple[int | None, ...], float]] = []
    if score_threshold is None:
        for idx, fid in enumerate(face_frames):
            if fid is None:
                continue
            end = idx + span + 1
            seg = tuple(fids[idx:end:frame_stride])
            out.append((fid, seg, sum(scores[idx:end:frame_stride]) / len(seg)))
        return out
    idx = 0
    while idx < len(fids) - span - 1:
        end = idx + span + 1
        seg = tuple(fids[idx:end:frame_stride])
        quality = sum(scores[idx:end:frame_stride]) / len(seg)
        if quality >= score_threshold:
            out.append((fids[idx + half], seg, quality))
            idx += data_stride
        else:
            idx += 1
    return out
