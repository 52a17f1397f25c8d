"""Silero VAD on onnxruntime against the silero-vad package's own get_speech_timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.audio.vad import (
    SileroVAD,
    SpeechRegion,
    VadConfig,
    audio_float32,
    speech_regions_from_probabilities,
)
from socialav.checkpoints.load import load_vad
from socialav.io.media import read_audio


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return load_vad()[0]


@pytest.mark.parametrize("clip", ["videos/visualvoice_interview.mp4", "audio/pyannote_sample.wav"])
def test_regions_equal_the_reference_implementation(vad, shared_dir, clip):
    torch = pytest.importorskip("torch")
    silero = pytest.importorskip("silero_vad")
    audio = audio_float32(read_audio(shared_dir / clip))
    reference = silero.get_speech_timestamps(
        torch.from_numpy(audio), silero.load_silero_vad(onnx=True)
    )
    expected = [(r["start"], r["end"]) for r in reference]
    assert len(expected) >= 3
    assert vad.regions_samples(audio) == expected
    regions = vad(audio)
    assert [(round(r.start_s * 16000), round(r.end_s * 16000)) for r in regions] == expected


def test_post_processing_by_hand():
    # 32 ms chunks: silence, 20 speech, 2-chunk dip (64 ms < 100 ms: kept), 10 speech, silence
    probs = np.array([0.0] * 5 + [0.9] * 20 + [0.1] * 2 + [0.9] * 10 + [0.0] * 10)
    regions = speech_regions_from_probabilities(probs, num_samples=len(probs) * 512)
    # start 5*512 = 2560, silence from 37*512 = 18944; padded by 0.03 s = 480 samples
    assert regions == [(2080, 19424)]
    # a 4-chunk dip is not enough: the silence is measured at chunk starts (3*512 < 1600)
    probs = np.array([0.0] * 5 + [0.9] * 20 + [0.1] * 4 + [0.9] * 10 + [0.0] * 10)
    assert speech_regions_from_probabilities(probs, len(probs) * 512) == [(2080, 20448)]
    # a 5-chunk dip splits at 25*512 = 12800; speech again at 30*512 = 15360 until 40*512;
    # the gap 2560 >= 2*480, so each side gets the full pad
    probs = np.array([0.0] * 5 + [0.9] * 20 + [0.1] * 5 + [0.9] * 10 + [0.0] * 10)
    assert speech_regions_from_probabilities(probs, len(probs) * 512) == [
        (2080, 13280),
        (14880, 20960),
    ]
    # too short (5 chunks = 2560 samples <= 4000 = 0.25 s) is dropped
    probs = np.array([0.0] * 5 + [0.9] * 5 + [0.0] * 10)
    assert speech_regions_from_probabilities(probs, len(probs) * 512) == []
    # speech to the end of the audio ends at num_samples
    probs = np.array([0.0] * 2 + [0.9] * 20)
    assert speech_regions_from_probabilities(probs, 11000) == [(544, 11000)]


def test_music_and_silence_have_no_speech(vad, shared_dir):
    music = read_audio(shared_dir / "videos/more/pyfeat_face_noface_music.mov")
    assert vad(music) == []  # int16 input is accepted as is
    assert vad(np.zeros(16000, np.float32)) == []
    assert vad(np.zeros(0, np.float32)) == []


def test_probabilities_shape_and_range(vad, shared_dir):
    audio = read_audio(shared_dir / "videos/grid_bbaf2n.mpg")
    probs = vad.probabilities(audio)
    assert probs.shape == (-(-len(audio) // 512),)
    assert probs.min() >= 0 and probs.max() <= 1
    # GRID: silence at both ends, speech in the middle
    assert probs[:5].max() < 0.5 and probs[len(probs) // 2] > 0.5


def test_bad_input_and_config():
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        audio_float32(np.zeros((2, 100), np.float32))
    with pytest.raises(TypeError, match="int16 or float32"):
        audio_float32(np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="NaN"):
        audio_float32(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="threshold"):
        VadConfig(threshold=1.5)
    with pytest.raises(ValueError, match="neg_threshold"):
        VadConfig(threshold=0.5, neg_threshold=0.7)
    with pytest.raises(ValueError, match="start_s < end_s"):
        SpeechRegion(2.0, 1.0)
    with pytest.raises(FileNotFoundError, match="Silero VAD ONNX"):
        SileroVAD("/nonexistent/vad.onnx")
