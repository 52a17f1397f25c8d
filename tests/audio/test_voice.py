"""GE2E voice encoder re-implementation against the resemblyzer package's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialav.audio.vad import SpeechRegion
from socialav.audio.voice import (
    GE2EVoiceEncoder,
    VoiceEncoder,
    VoiceWindows,
    embed_speech_windows,
    loudness_gain,
    mel_filterbank,
    partial_slices,
    power_mel_frames,
)
from socialav.checkpoints.format import CheckpointError
from socialav.checkpoints.ge2e_reference import CheckpointMismatchError, load_ge2e
from socialav.checkpoints.load import load_voice_encoder
from socialav.io.media import read_audio

REFERENCE = Path(__file__).with_name("data") / "resemblyzer_reference.npz"


@pytest.fixture(scope="module")
def encoder() -> GE2EVoiceEncoder:
    return load_voice_encoder()[0]


@pytest.fixture(scope="module")
def interview_audio(videos_dir) -> np.ndarray:
    return read_audio(videos_dir / "visualvoice_interview.mp4")


def test_mel_and_embeddings_match_the_package(encoder, interview_audio):
    reference = np.load(REFERENCE)
    for k, (a, b) in enumerate(reference["segments"]):
        wav = interview_audio[a:b].astype(np.float32) / 32768.0
        mel = reference[f"seg{k}_mel_first20"]
        np.testing.assert_allclose(power_mel_frames(wav)[:20], mel, rtol=1e-4, atol=1e-6)
        embedding, partials, _ = encoder.embed_utterance(wav)
        np.testing.assert_allclose(partials, reference[f"seg{k}_partials"], atol=1e-5)
        np.testing.assert_allclose(embedding, reference[f"seg{k}_embedding"], atol=1e-5)


def test_mel_filterbank_invariants():
    fb = mel_filterbank()
    assert fb.shape == (40, 201) and fb.min() >= 0
    # Slaney area normalisation: every triangle has area 2/(f_hi - f_lo) * (f_hi - f_lo)/2 = 1
    # in Hz; sampled at the 40 Hz bin spacing the sums are close to 1/40 each
    np.testing.assert_allclose(fb.sum(axis=1) * 40.0, 1.0, rtol=0.2)
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)  # centres increase with the channel


def test_partial_slices_like_resemblyzer():
    # 1 s: ceil(16001/160) = 101 frames, one partial (padded)
    assert partial_slices(16000, 1 / 1.3) == [(0, 160)]
    # 4 s: 401 frames, step round(100/1.3) = 77 -> starts 0, 77, 154, 231; the last covers
    # (64000 - 36960) / 25600 = 1.06 >= 0.75
    assert partial_slices(64000, 1 / 1.3) == [(0, 160), (77, 237), (154, 314), (231, 391)]
    with pytest.raises(ValueError, match="step_s"):
        partial_slices(16000, 3.0)


def test_windows_inside_regions(encoder, interview_audio):
    regions = [SpeechRegion(1.0, 4.0), SpeechRegion(5.0, 5.8)]
    windows = embed_speech_windows(interview_audio, regions, encoder, step_s=0.5)
    assert isinstance(encoder, VoiceEncoder)
    # region 0: starts 1.0, 1.5, 2.0 and the last aligned at 4.0 - 1.6 = 2.4
    np.testing.assert_allclose(windows.start_s[:4], [1.0, 1.5, 2.0, 2.4])
    np.testing.assert_allclose(windows.end_s[:4], [2.6, 3.1, 3.6, 4.0])
    # region 1 is shorter than a window: one window ending at the region's end
    np.testing.assert_allclose([windows.start_s[4], windows.end_s[4]], [5.0, 5.8])
    assert windows.region_index.tolist() == [0, 0, 0, 0, 1]
    np.testing.assert_allclose(np.linalg.norm(windows.embeddings, axis=1), 1.0, rtol=1e-5)


def test_same_speaker_is_closer_than_another(encoder, shared_dir):
    """pyannote_sample.wav: speaker turns from its RTTM; GE2E must separate the two voices."""
    from socialav.io.writers import read_rttm

    audio = read_audio(shared_dir / "audio/pyannote_sample.wav")
    turns = [t for t in read_rttm(shared_dir / "audio/pyannote_sample.rttm") if t.duration_s > 2]
    regions = [SpeechRegion(t.onset_s, t.end_s) for t in turns]
    windows = embed_speech_windows(audio, regions, encoder, step_s=0.8)
    speaker = np.array([turns[k].speaker for k in windows.region_index])
    assert len(set(speaker)) == 2
    sims = windows.embeddings @ windows.embeddings.T
    same = speaker[:, None] == speaker[None, :]
    off_diag = ~np.eye(len(speaker), dtype=bool)
    # GE2E embeddings are non-negative (ReLU), so all cosines are high; measured 0.78 vs 0.69
    assert sims[same & off_diag].mean() > sims[~same].mean() + 0.05


def test_short_audio_no_regions_and_bad_input(encoder):
    short = np.random.default_rng(0).normal(0, 0.05, 8000).astype(np.float32)  # 0.5 s
    windows = embed_speech_windows(short, [SpeechRegion(0.0, 0.5)], encoder)
    assert len(windows) == 1 and windows.end_s[0] == pytest.approx(0.5)
    assert len(embed_speech_windows(short, [], encoder)) == 0
    with pytest.raises(ValueError, match="outside"):
        embed_speech_windows(short, [SpeechRegion(3.0, 4.0)], encoder)
    with pytest.raises(ValueError, match="step_s"):
        embed_speech_windows(short, [SpeechRegion(0.0, 0.5)], encoder, step_s=0)
    with pytest.raises(ValueError, match=r"shape \(2, D\)"):
        VoiceWindows([0, 1], [1, 2], [0, 0], np.zeros((3, 4)))
    assert loudness_gain(np.zeros(100, np.float32)) == 1.0
    assert loudness_gain(np.full(100, 0.5, np.float32)) == 1.0  # loud: never lowered


def test_checkpoint_key_mismatch_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "bad.pt"
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(1024, 40)}}, path)
    with pytest.raises(CheckpointMismatchError, match="missing .*linear.weight"):
        load_ge2e(path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="model_state"):
        load_ge2e(path)
