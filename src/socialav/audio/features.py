"""Audio features for the ASD models: 13 MFCC at 100 Hz from 16 kHz mono.

The TalkNet, Light-ASD and LR-ASD weights were trained on ``python_speech_features.mfcc``
(``numcep=13, winlen=0.025, winstep=0.010``, its other defaults: 26 mel filters, 512-point
FFT, pre-emphasis 0.97, ceplifter 22, log energy replacing c0) computed on the audio of each
face track's span (TalkNet ``dataLoader.py`` and Light-ASD ``Columbia_test.py``). We call that
library rather than re-deriving it, so the features are exactly the ones the weights expect.
"""

from __future__ import annotations

import numpy as np
import python_speech_features

from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, MFCC_FRAMES_PER_VIDEO_FRAME

__all__ = ["mfcc", "track_audio", "track_mfcc"]


def mfcc(samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """13 MFCC every 10 ms over 25 ms windows (python_speech_features semantics).

    Args:
        samples: ``(N,)`` mono audio, int16 (or float in int16 scale, as the reference reads
            WAV files with ``scipy.io.wavfile``).
        sample_rate: Hz; the models expect 16000.

    Returns:
        ``(1 + ceil((N - 0.025 * sample_rate) / (0.010 * sample_rate)), 13)`` float32; the last
        window is zero-padded as in python_speech_features.

    Raises:
        ValueError: ``samples`` is not 1-D or is empty.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), but got shape {samples.shape}")
    if samples.size == 0:
        raise ValueError("samples is empty: no audio to compute MFCC on")
    feats = python_speech_features.mfcc(
        samples, sample_rate, numcep=13, winlen=0.025, winstep=0.010
    )
    return feats.astype(np.float32)


def track_audio(
    audio: np.ndarray,
    start_frame: int,
    end_frame: int,
    fps: float = ANALYSIS_FPS,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> np.ndarray:
    """The audio of a face track's span ``[start_frame / fps, (end_frame + 1) / fps)``.

    Args:
        audio: ``(N,)`` int16 audio of the whole video, sample 0 at the first video frame.
        start_frame, end_frame: inclusive frame indices on the ``fps`` timeline.

    Returns:
        ``(M,)`` int16, zero-padded at the end where the audio stream is shorter than the video.
    """
    start = int(round(start_frame / fps * sample_rate))
    stop = int(round((end_frame + 1) / fps * sample_rate))
    seg = audio[start:stop]
    if len(seg) < stop - start:
        seg = np.concatenate([seg, np.zeros(stop - start - len(seg), dtype=audio.dtype)])
    return seg


def track_mfcc(
    audio: np.ndarray,
    start_frame: int,
    end_frame: int,
    fps: float = ANALYSIS_FPS,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> np.ndarray:
    """MFCC of a face track's span: exactly 4 audio frames per video frame.

    On the span alone (``640 T`` samples) python_speech_features yields ``4 T - 1`` frames,
    and the reference demo then drops the track's last video frame to keep the 4:1 ratio.
    We read 15 ms more audio (window minus hop: 400 - 160 samples at 16 kHz) after the span,
    so the last 10 ms hop gets its own full window and every video frame gets 4 MFCC frames;
    frames ``0 .. 4T-3`` are identical to the reference's (its frame ``4T-2`` was zero-padded).

    Args:
        audio: ``(N,)`` int16 audio of the whole video, sample 0 at the first video frame.
        start_frame, end_frame: inclusive frame indices on the ``fps`` timeline.

    Returns:
        ``(4 * T, 13)`` float32 where ``T = end_frame - start_frame + 1``.
    """
    extra = int(round((0.025 - 0.010) * sample_rate))
    span = track_audio(audio, start_frame, end_frame, fps, sample_rate)
    stop = int(round((end_frame + 1) / fps * sample_rate))
    tail = audio[stop : stop + extra]
    tail = np.concatenate([tail, np.zeros(extra - len(tail), dtype=audio.dtype)])
    feats = mfcc(np.concatenate([span, tail]), sample_rate)
    num = MFCC_FRAMES_PER_VIDEO_FRAME * (end_frame - start_frame + 1)
    if len(feats) < num:  # only for a non-standard fps / sample_rate contract
        feats = np.concatenate([feats, np.repeat(feats[-1:], num - len(feats), axis=0)])
    return feats[:num]
