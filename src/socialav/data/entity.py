"""Reading one prepared entity as the reference loaders do (TalkNet / Light-ASD
``dataLoader.py``: ``load_visual`` and ``load_audio``), shared by the training
:mod:`~socialav.data.dataset` and :mod:`socialav.pipelines.score_dataset`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import python_speech_features

from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, MFCC_FRAMES_PER_VIDEO_FRAME

__all__ = ["FACE_PX", "entity_fps", "entity_mfcc", "load_entity_faces"]

#: Side of the grayscale faces given to the models (the loaders' ``H = 112``).
FACE_PX = 112
#: Window length (s) and hop (s) of the MFCC at 25 fps (python_speech_features defaults used
#: by the reference loaders).
MFCC_WINLEN_S = 0.025
MFCC_WINSTEP_S = 0.010


def load_entity_faces(paths: list[Path]) -> np.ndarray:
    """Read face crops as the reference ``load_visual`` (no augmentation).

    Args:
        paths: JPEG files in frame order.

    Returns:
        ``(T, 112, 112)`` uint8 grayscale faces.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file is not a readable image.
    """
    faces = np.empty((len(paths), FACE_PX, FACE_PX), np.uint8)
    for i, path in enumerate(paths):
        if not Path(path).is_file():
            raise FileNotFoundError(f"face crop {path} is missing; re-run socialav data prepare")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"face crop {path} is not a readable image")
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        faces[i] = cv2.resize(gray, (FACE_PX, FACE_PX))
    return faces


def entity_fps(frame_timestamps_s: np.ndarray) -> float:
    """Frame rate of an entity from its timestamps: ``(T - 1) / (t_last - t_first)``;
    :data:`~socialav.types.ANALYSIS_FPS` for one frame or a zero span."""
    t = np.asarray(frame_timestamps_s, np.float64)
    if len(t) < 2 or t[-1] <= t[0]:
        return ANALYSIS_FPS
    return float((len(t) - 1) / (t[-1] - t[0]))


def entity_mfcc(
    samples: np.ndarray, num_frames: int, fps: float, sample_rate: int = AUDIO_SAMPLE_RATE
) -> np.ndarray:
    """MFCC of an entity's WAV aligned to its ``num_frames`` faces (reference ``load_audio``).

    13 coefficients with window ``0.025 * 25 / fps`` s and hop ``0.010 * 25 / fps`` s (so 4
    frames per face at any ``fps``), wrap-padded to ``4 * num_frames`` frames and cut there.
    An empty WAV (one-frame entity) is taken as one zero sample (the reference fails on it).

    Args:
        samples: ``(N,)`` int16 mono audio at ``sample_rate``.
        num_frames: number of faces ``T`` (>= 1).
        fps: the entity's frame rate.

    Returns:
        ``(4 T, 13)`` float32.

    Raises:
        ValueError: ``num_frames < 1``, ``fps <= 0`` or non-1-D samples.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, but got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, but got {fps}")
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), but got shape {samples.shape}")
    if samples.size == 0:
        samples = np.zeros(1, np.int16)
    scale = ANALYSIS_FPS / fps
    feats = python_speech_features.mfcc(
        samples,
        sample_rate,
        numcep=13,
        winlen=MFCC_WINLEN_S * scale,
        winstep=MFCC_WINSTEP_S * scale,
    )
    wanted = int(round(num_frames * MFCC_FRAMES_PER_VIDEO_FRAME))
    if feats.shape[0] < wanted:
        feats = np.pad(feats, ((0, wanted - feats.shape[0]), (0, 0)), "wrap")
    return np.ascontiguousarray(feats[:wanted], dtype=np.float32)
