import numpy as np
import pytest

from socialav.audio.features import mfcc, track_audio, track_mfcc


def test_mfcc_matches_reference_fixture(interview_reference):
    ref = interview_reference
    feats = mfcc(ref["track0_audio_s16"])
    # python_speech_features: 1 + ceil((280320 - 400) / 160) frames
    assert feats.shape == (1751, 13)
    np.testing.assert_allclose(feats[: len(ref["track0_mfcc"])], ref["track0_mfcc"], atol=1e-4)


def test_track_mfcc_is_four_frames_per_video_frame():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 3) * 1000).astype(np.int16)
    feats = track_mfcc(audio, start_frame=10, end_frame=59)
    assert feats.shape == (200, 13)
    # the track span starts at 10/25 s = 6400 samples
    np.testing.assert_array_equal(track_audio(audio, 10, 59), audio[6400:38400])
    # the first 4T-2 frames are those of the span alone (the reference's, whose frame
    # 4T-2 was zero-padded at the end of the span)
    np.testing.assert_allclose(feats[:198], mfcc(audio[6400:38400])[:198], atol=1e-5)


def test_track_audio_pads_short_audio():
    audio = np.ones(1000, np.int16)
    seg = track_audio(audio, 0, 1)  # 2 frames = 1280 samples
    assert len(seg) == 1280 and seg[999] == 1 and seg[1000:].max() == 0


@pytest.mark.parametrize("bad", [np.zeros((10, 2)), np.zeros(0)])
def test_mfcc_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        mfcc(bad)
