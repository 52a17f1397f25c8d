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


def test_a_continued_span_has_the_rows_of_the_whole_track():
    rng = np.random.default_rng(3)
    audio = (rng.normal(0, 3000, 16000 * 4)).astype(np.int16)
    whole = track_mfcc(audio, 10, 80)
    for start, end in ((40, 80), (40, 59), (11, 12)):
        part = track_mfcc(audio, start, end, continued=True)
        rows = slice(4 * (start - 10), 4 * (end - 10 + 1))
        np.testing.assert_array_equal(part, whole[rows])
    # without `continued` the first row differs (pre-emphasis starts afresh at the span)
    assert not np.array_equal(track_mfcc(audio, 40, 80)[0], whole[4 * 30])
    with pytest.raises(ValueError, match="audio before the span"):
        track_mfcc(audio, 0, 10, continued=True)
