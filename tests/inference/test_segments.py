import numpy as np
import pytest

from socialav.inference.segments import (
    SegmentConfig,
    smooth,
    speaking_probability,
    speaking_segments,
)


def test_probability_is_softmax_class_one():
    logits = np.array([[0.0, 0.0], [1.0, 3.0], [2.0, -1.0]])
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(speaking_probability(logits), expected, rtol=1e-6)


def test_probability_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(T, 2\)"):
        speaking_probability(np.zeros(5))


def test_smooth_matches_windowed_mean_with_shrinking_edges():
    x = np.array([0, 0, 1, 1, 1, 0, 0], float)
    got = smooth(x, 3)
    expected = [np.mean(x[max(i - 1, 0) : i + 2]) for i in range(len(x))]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(smooth(x, 1), x)


def test_segments_close_gaps_and_drop_short_runs():
    fps = 25.0
    p = np.zeros(100, np.float32)
    p[10:30] = 0.9  # 20 frames
    p[32:40] = 0.9  # gap of 2 frames (< 5 frames = 0.2 s) → merged with the first
    p[60:63] = 0.9  # 3 frames < 5 frames → dropped
    p[80:100] = 0.9  # runs to the end
    segs = speaking_segments(p, np.arange(200, 300), SegmentConfig(), fps)
    assert [(s.start_frame, s.end_frame) for s in segs] == [(210, 239), (280, 299)]
    assert segs[0].start_s == pytest.approx(210 / 25) and segs[0].end_s == pytest.approx(240 / 25)


def test_segment_config_validation():
    with pytest.raises(ValueError, match="odd"):
        SegmentConfig(smooth_frames=4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SegmentConfig(threshold=2)
