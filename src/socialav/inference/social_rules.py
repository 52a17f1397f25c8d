"""Zero-shot Looking-at-Me (LAM) and Talking-to-Me (TTM) on any video, from head pose and ASD.

Details and sources: ``docs/social.md`` (Zero-shot Looking-at-Me and Talking-to-Me).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialav.inference.segments import smooth
from socialav.types import ANALYSIS_FPS, AnalysedTrack

logger = logging.getLogger(__name__)

__all__ = [
    "LookingConfig",
    "TalkingToMeConfig",
    "ZeroShotSocialScorer",
    "looking_deviation",
    "looking_probability",
    "looking_probability_series",
    "talking_to_me_probability",
    "social_series",
]


@dataclass(frozen=True)
class LookingConfig:
    """Calibration of the zero-shot Looking-at-Me probability (see the module docstring).

    Attributes:
        yaw_half_deg: yaw (pitch 0) at which P(looking) = 0.5, degrees (20).
        pitch_half_deg: pitch (yaw 0) at which P(looking) = 0.5, degrees (25).
        slope: logistic slope in units of the normalised deviation (0.15).
        smooth_frames: odd width of the centred moving average of the per-frame probability
            (7 frames: the Ego4D LAM baseline's context).
    """

    yaw_half_deg: float = 20.0
    pitch_half_deg: float = 25.0
    slope: float = 0.15
    smooth_frames: int = 7

    def __post_init__(self) -> None:
        if self.yaw_half_deg <= 0 or self.pitch_half_deg <= 0 or self.slope <= 0:
            raise ValueError(
                "yaw_half_deg, pitch_half_deg and slope must be > 0, but got "
                f"{self.yaw_half_deg}, {self.pitch_half_deg}, {self.slope}"
            )
        if self.smooth_frames < 1 or self.smooth_frames % 2 == 0:
            raise ValueError(f"smooth_frames must be odd and >= 1, but got {self.smooth_frames}")


@dataclass(frozen=True)
class TalkingToMeConfig:
    """The zero-shot Talking-to-Me rule (see the module docstring).

    Attributes:
        window_s: width of the centred window over which looking is averaged (2 s = +-1 s).
        gaze_share: fraction of the window a speaker must look at the camera to count as
            fully addressing it (0.4: speakers look at their listener ~41 % of the time,
            Argyle & Ingham 1972).
    """

    window_s: float = 2.0
    gaze_share: float = 0.4

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0, but got {self.window_s}")
        if not 0 < self.gaze_share <= 1:
            raise ValueError(f"gaze_share must be in (0, 1], but got {self.gaze_share}")


def _angles(yaw_deg: np.ndarray | float, pitch_deg: np.ndarray | float) -> tuple[np.ndarray, ...]:
    yaw = np.asarray(yaw_deg, dtype=np.float64)
    pitch = np.asarray(pitch_deg, dtype=np.float64)
    if yaw.shape != pitch.shape:
        raise ValueError(
            f"yaw_deg and pitch_deg must have the same shape, but got {yaw.shape} and {pitch.shape}"
        )
    return yaw, pitch


def looking_deviation(
    yaw_deg: np.ndarray | float,
    pitch_deg: np.ndarray | float,
    config: LookingConfig = LookingConfig(),
) -> np.ndarray:
    """Normalised elliptical deviation of the head from the camera line,
    ``sqrt((yaw / yaw_half_deg)^2 + (pitch / pitch_half_deg)^2)`` (1 = the 50 % contour)."""
    yaw, pitch = _angles(yaw_deg, pitch_deg)
    return np.hypot(yaw / config.yaw_half_deg, pitch / config.pitch_half_deg)


def looking_probability(
    yaw_deg: np.ndarray | float,
    pitch_deg: np.ndarray | float,
    config: LookingConfig = LookingConfig(),
) -> np.ndarray:
    """Per-frame zero-shot P(looking at the camera) from head yaw and pitch (no smoothing).

    Args:
        yaw_deg, pitch_deg: arrays of the same shape (or scalars), degrees (FSA-Net output;
            0, 0 = facing the camera). NaN (no head pose) gives NaN.
        config: the calibration (see the module docstring for its sources).

    Returns:
        float32 array of the input shape, values in ``(0, 1)``.

    Raises:
        ValueError: shapes differ.
    """
    d = looking_deviation(yaw_deg, pitch_deg, config)
    z = np.clip((d - 1.0) / config.slope, -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(z))).astype(np.float32)


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN entries of a 1-D series (held at the ends)."""
    good = np.isfinite(values)
    if good.all() or not good.any():
        return values
    idx = np.arange(len(values))
    return np.interp(idx, idx[good], values[good]).astype(values.dtype)


def looking_probability_series(
    angles_deg: np.ndarray, config: LookingConfig = LookingConfig()
) -> np.ndarray:
    """Smoothed P(looking at the camera) over one face track.

    Args:
        angles_deg: ``(T, 3)`` (or ``(T, 2)``) ``yaw, pitch[, roll]`` in degrees per frame of
            the track (e.g. :meth:`socialav.vision.head_pose.HeadPoseTracker.finish`). NaN
            rows (frames without head pose) are interpolated from their neighbours; a track
            without any head pose gets 0 (unknown is reported as not looking, with a warning).

    Returns:
        ``(T,)`` float32 in ``[0, 1]``: :func:`looking_probability` then a centred moving
        average over ``config.smooth_frames`` frames.

    Raises:
        ValueError: ``angles_deg`` is not ``(T, 2)`` or ``(T, 3)``.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.ndim != 2 or angles.shape[1] not in (2, 3):
        raise ValueError(f"angles_deg must have shape (T, 3) or (T, 2), but got {angles.shape}")
    if len(angles) and not np.isfinite(angles[:, :2]).any():
        logger.warning("no head pose for a face track of %d frames: LAM set to 0", len(angles))
        return np.zeros(len(angles), dtype=np.float32)
    prob = looking_probability(_fill_nan(angles[:, 0]), _fill_nan(angles[:, 1]), config)
    return np.clip(smooth(prob, config.smooth_frames), 0.0, 1.0)


def _window_mean(values: np.ndarray, half: int) -> np.ndarray:
    """Centred mean over ``2 * half + 1`` frames, shrinking at the ends."""
    return smooth(values, 2 * half + 1).astype(np.float64)


def talking_to_me_probability(
    speaking_prob: np.ndarray,
    looking_prob: np.ndarray,
    fps: float = ANALYSIS_FPS,
    window_s: float = TalkingToMeConfig.window_s,
    gaze_share: float = TalkingToMeConfig.gaze_share,
) -> np.ndarray:
    """Zero-shot P(talking to me) per frame of one face track.

    ``ttm_t = speak_t * min(1, mean_{|tau - t| <= window_s / 2} lam_tau / gaze_share)``
    (see the module docstring for the reasoning and sources).

    Args:
        speaking_prob: ``(T,)`` ASD speaking probability per frame in ``[0, 1]``
            (``TrackScores.probabilities``).
        looking_prob: ``(T,)`` P(looking at the camera) per frame in ``[0, 1]``
            (:func:`looking_probability_series`).
        fps: frame rate of the series (the 25 fps analysis timeline).
        window_s: width of the centred looking window in seconds (> 0).
        gaze_share: looking fraction that counts as fully addressing, in ``(0, 1]``.

    Returns:
        ``(T,)`` float32 in ``[0, 1]``.

    Raises:
        ValueError: lengths differ, values outside ``[0, 1]`` or NaN, bad parameters.
    """
    TalkingToMeConfig(window_s, gaze_share)  # validates
    if fps <= 0:
        raise ValueError(f"fps must be > 0, but got {fps}")
    speak = np.asarray(speaking_prob, dtype=np.float64)
    look = np.asarray(looking_prob, dtype=np.float64)
    if speak.ndim != 1 or speak.shape != look.shape:
        raise ValueError(
            "speaking_prob and looking_prob must be 1-D of the same length (one value per "
            f"frame), but got shapes {speak.shape} and {look.shape}"
        )
    for name, arr in (("speaking_prob", speak), ("looking_prob", look)):
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{name} must be finite probabilities in [0, 1]")
    half = int(round(window_s * fps / 2))
    addressed = np.minimum(1.0, _window_mean(look, half) / gaze_share)
    return (speak * addressed).astype(np.float32)


def social_series(
    angles_deg: np.ndarray,
    speaking_prob: np.ndarray,
    fps: float = ANALYSIS_FPS,
    looking: LookingConfig = LookingConfig(),
    talking: TalkingToMeConfig = TalkingToMeConfig(),
) -> dict[str, np.ndarray]:
    """The ``TrackScores.extra`` series of one face track: ``{"lam": (T,), "ttm": (T,)}``.

    Args:
        angles_deg: ``(T, 3)`` head pose per frame (``HeadPoseTracker.finish``).
        speaking_prob: ``(T,)`` ``TrackScores.probabilities`` of the same track.
        fps: the analysis frame rate.

    Returns:
        float32 ``lam`` (:func:`looking_probability_series`) and ``ttm``
        (:func:`talking_to_me_probability`), both ``(T,)`` in ``[0, 1]``.
    """
    lam = looking_probability_series(angles_deg, looking)
    ttm = talking_to_me_probability(speaking_prob, lam, fps, talking.window_s, talking.gaze_share)
    return {"lam": lam, "ttm": ttm}


#: What the JSON ``run_info`` says produced each zero-shot series.
ZERO_SHOT_LAM_NOTE = (
    "zero-shot: P(looking at camera) from FSA-Net yaw/pitch (socialav.inference.social_rules)"
)
ZERO_SHOT_TTM_NOTE = "zero-shot: P(speaking) x min(1, mean P(looking) over +-1 s / 0.4)"


class ZeroShotSocialScorer:
    """The zero-shot LAM/TTM rules above as a :class:`socialav.inference.social.SocialScorer`:
    LAM from FSA-Net head pose (sampled by the analysis pass), TTM from LAM and the ASD
    speaking probability.

    Args:
        tasks: some of ``("lam", "ttm")``; ``ttm`` computes ``lam`` too (it needs it) but only
            the requested series are returned.
        looking, talking: the rules' calibration.

    Raises:
        ValueError: an unknown task, or none.
    """

    face_sizes_px: tuple[int, ...] = ()
    needs_quality = False
    needs_audio = False
    needs_head_pose = True

    def __init__(
        self,
        tasks: Sequence[str],
        looking: LookingConfig = LookingConfig(),
        talking: TalkingToMeConfig = TalkingToMeConfig(),
    ) -> None:
        unknown = set(tasks) - {"lam", "ttm"}
        if unknown or not tasks:
            raise ValueError(f"tasks must be some of ['lam', 'ttm'], but got {list(tasks)}")
        self.tasks = tuple(t for t in ("lam", "ttm") if t in tasks)
        self.looking, self.talking = looking, talking

    def observe(
        self, analysed: AnalysedTrack, audio_s16: np.ndarray | None, fps: float = ANALYSIS_FPS
    ) -> dict[str, np.ndarray]:
        """Keep the track's head pose for :meth:`finish`.

        Raises:
            ValueError: the analysis pass cut no head pose for the track.
        """
        if analysed.head_pose_deg is None:
            raise ValueError(
                f"face track {analysed.track.track_id}: the zero-shot LAM needs head pose, but "
                "the analysis pass sampled none"
            )
        return {"head_pose_deg": analysed.head_pose_deg}

    def finish(
        self, observed: Mapping[str, np.ndarray], speaking_prob: np.ndarray, fps: float
    ) -> dict[str, np.ndarray]:
        """``{"lam": (T,), "ttm": (T,)}`` float32 (the requested ones) from the head pose kept
        by :meth:`observe` and the track's ``(T,)`` smoothed speaking probability."""
        series = social_series(
            observed["head_pose_deg"], speaking_prob, fps, self.looking, self.talking
        )
        return {t: series[t] for t in self.tasks}

    def weights_record(self) -> dict[str, Any]:
        """No weights of its own (the head-pose weights are the detector's)."""
        return {}

    def notes(self) -> dict[str, str | None]:
        """What produced each series, for the JSON ``run_info`` (``None``: not computed)."""
        return {
            "lam": ZERO_SHOT_LAM_NOTE if "lam" in self.tasks else None,
            "ttm": ZERO_SHOT_TTM_NOTE if "ttm" in self.tasks else None,
        }
