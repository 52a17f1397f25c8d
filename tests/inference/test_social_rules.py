"""Zero-shot LAM calibration and TTM rule: hand-computed values and invariants."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.inference.social import load_trained_social_model
from socialav.inference.social_rules import (
    LookingConfig,
    TalkingToMeConfig,
    looking_probability,
    looking_probability_series,
    social_series,
    talking_to_me_probability,
)


def test_looking_probability_hand_values():
    # p = 1 / (1 + exp((d - 1) / 0.15)), d = hypot(yaw / 20, pitch / 25)
    assert looking_probability(20.0, 0.0) == pytest.approx(0.5, abs=1e-6)
    assert looking_probability(0.0, 25.0) == pytest.approx(0.5, abs=1e-6)
    assert looking_probability(0.0, 0.0) == pytest.approx(1 / (1 + np.exp(-1 / 0.15)), abs=1e-6)
    d = np.hypot(12 / 20, 15 / 25)
    assert looking_probability(12.0, -15.0) == pytest.approx(
        1 / (1 + np.exp((d - 1) / 0.15)), abs=1e-6
    )
    assert looking_probability(90.0, 0.0) < 1e-6


def test_looking_probability_is_symmetric_and_decreasing():
    yaw = np.linspace(0, 90, 91)
    p = looking_probability(yaw, np.zeros_like(yaw))
    assert np.all(np.diff(p) < 0)
    np.testing.assert_array_equal(p, looking_probability(-yaw, np.zeros_like(yaw)))
    np.testing.assert_array_equal(
        looking_probability(np.zeros_like(yaw), yaw), looking_probability(np.zeros_like(yaw), -yaw)
    )
    with pytest.raises(ValueError, match="same shape"):
        looking_probability(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="> 0"):
        LookingConfig(yaw_half_deg=0)


def test_looking_series_smooths_and_fills_gaps():
    angles = np.zeros((11, 3))
    angles[5, 0] = 80.0  # one outlier frame
    angles[7] = np.nan  # no head pose: interpolated
    lam = looking_probability_series(angles)
    assert lam.shape == (11,) and lam.dtype == np.float32
    # 7-frame moving average: the outlier costs at most 1/7 of the probability
    p0 = looking_probability(0.0, 0.0)
    assert lam[5] == pytest.approx(p0 * 6 / 7, abs=1e-5)
    assert lam[0] == pytest.approx(p0, abs=1e-6)
    assert np.all(np.isfinite(lam))
    assert np.all(looking_probability_series(np.full((4, 3), np.nan)) == 0)
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        looking_probability_series(np.zeros(5))


def test_ttm_rule_hand_values():
    fps = 10.0
    speak = np.array([0.0, 1.0, 1.0, 1.0, 0.5, 0.8])
    look = np.array([0.0, 0.0, 0.2, 0.4, 1.0, 0.0])
    # window 0.2 s at 10 fps -> +-1 frame, shrinking at the ends; gaze_share 0.4
    ttm = talking_to_me_probability(speak, look, fps=fps, window_s=0.2, gaze_share=0.4)
    means = np.array([0.0, 0.2 / 3, 0.6 / 3, 1.6 / 3, 1.4 / 3, 0.5])
    np.testing.assert_allclose(ttm, speak * np.minimum(1, means / 0.4), atol=1e-6)


def test_ttm_invariants():
    rng = np.random.default_rng(0)
    speak, look = rng.uniform(size=200), rng.uniform(size=200)
    ttm = talking_to_me_probability(speak, look)
    assert ttm.dtype == np.float32 and np.all(ttm >= 0) and np.all(ttm <= speak + 1e-7)
    # silent -> 0 whatever the gaze; speaking and looking throughout -> speaking probability
    assert np.all(talking_to_me_probability(np.zeros(50), np.ones(50)) == 0)
    np.testing.assert_allclose(talking_to_me_probability(speak, np.ones(200)), speak, atol=1e-6)
    # never looking -> 0
    assert np.all(talking_to_me_probability(speak, np.zeros(200)) == 0)
    # more looking never lowers TTM
    assert np.all(talking_to_me_probability(speak, np.minimum(1, look + 0.2)) >= ttm - 1e-7)


@pytest.mark.parametrize(
    "speak, look, match",
    [
        (np.zeros(3), np.zeros(4), "same length"),
        (np.full(3, 1.5), np.zeros(3), r"\[0, 1\]"),
        (np.array([0.1, np.nan, 0.2]), np.zeros(3), "finite"),
    ],
)
def test_ttm_rejects_bad_input(speak, look, match):
    with pytest.raises(ValueError, match=match):
        talking_to_me_probability(speak, look)


def test_ttm_rejects_bad_parameters():
    with pytest.raises(ValueError, match="window_s"):
        TalkingToMeConfig(window_s=0)
    with pytest.raises(ValueError, match="gaze_share"):
        talking_to_me_probability(np.zeros(3), np.zeros(3), gaze_share=0)


def test_social_series_gives_extra_columns():
    angles = np.zeros((30, 3))
    extra = social_series(angles, np.full(30, 0.9, np.float32))
    assert set(extra) == {"lam", "ttm"}
    assert all(v.shape == (30,) and v.dtype == np.float32 for v in extra.values())
    np.testing.assert_allclose(extra["ttm"], 0.9, atol=1e-5)


def test_trained_model_loader_says_what_is_missing(tmp_path):
    # the loader itself is tested in test_trained_social_models.py
    with pytest.raises(FileNotFoundError, match="lam.pt not found"):
        load_trained_social_model(tmp_path / "lam.pt")
