"""Audio features of every model: MFCC (ASD models), Whisper-style log-mel (QuAVF audio
branch), stacked log filterbanks (AV-HuBERT), and the sample spans of tracks and sub-clips.

MFCC. The TalkNet, Light-ASD and LR-ASD weights were trained on ``python_speech_features.mfcc``
(``numcep=13, winlen=0.025, winstep=0.010``, its other defaults: 26 mel filters, 512-point
FFT, pre-emphasis 0.97, ceplifter 22, log energy replacing c0) computed on the audio of each
face track's span (TalkNet ``dataLoader.py`` and Light-ASD ``Columbia_test.py``). We call that
library rather than re-deriving it, so the features are exactly the ones the weights expect.
"""

from __future__ import annotations

import numpy as np
import python_speech_features

from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, EGO4D_FPS, MFCC_FRAMES_PER_VIDEO_FRAME

__all__ = [
    "av_hubert_audio_features",
    "log_mel_filterbank",
    "log_mel_spectrogram",
    "mfcc",
    "normalize_rms",
    "stack_frames",
    "track_audio",
    "track_mfcc",
    "ttm_audio_span",
]


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
    continued: bool = False,
) -> np.ndarray:
    """MFCC of a face track's span: exactly 4 audio frames per video frame.

    On the span alone (``640 T`` samples) python_speech_features yields ``4 T - 1`` frames,
    and the reference demo then drops the track's last video frame to keep the 4:1 ratio.
    We read 15 ms more audio (window minus hop: 400 - 160 samples at 16 kHz) after the span,
    so the last 10 ms hop gets its own full window and every video frame gets 4 MFCC frames;
    frames ``0 .. 4T-3`` are identical to the reference's (its frame ``4T-2`` was zero-padded).

    With ``continued`` the span is a later part of a longer track (the frames from
    ``start_frame`` on, scored before the track ends): the MFCC are computed from one 10 ms
    hop earlier and that first frame dropped, so that the pre-emphasis of the span's first
    sample sees the sample before it, and the rows equal exactly the rows of the whole
    track's MFCC from ``start_frame`` on.

    Args:
        audio: ``(N,)`` int16 audio of the whole video, sample 0 at the first video frame.
        start_frame, end_frame: inclusive frame indices on the ``fps`` timeline.
        continued: the span continues a track that began before ``start_frame``.

    Returns:
        ``(4 * T, 13)`` float32 where ``T = end_frame - start_frame + 1``.

    Raises:
        ValueError: ``continued`` with a span starting at the first sample.
    """
    extra = int(round((0.025 - 0.010) * sample_rate))
    span = track_audio(audio, start_frame, end_frame, fps, sample_rate)
    stop = int(round((end_frame + 1) / fps * sample_rate))
    tail = audio[stop : stop + extra]
    tail = np.concatenate([tail, np.zeros(extra - len(tail), dtype=audio.dtype)])
    head = np.zeros(0, dtype=audio.dtype)
    if continued:
        hop = int(round(0.010 * sample_rate))
        start = int(round(start_frame / fps * sample_rate))
        if start < hop:
            raise ValueError(
                f"continued=True needs audio before the span, but it starts at sample {start}"
            )
        head = audio[start - hop : start]
        head = np.concatenate([np.zeros(hop - len(head), dtype=audio.dtype), head])
    feats = mfcc(np.concatenate([head, span, tail]), sample_rate)[1 if continued else 0 :]
    num = MFCC_FRAMES_PER_VIDEO_FRAME * (end_frame - start_frame + 1)
    if len(feats) < num:  # only for a non-standard fps / sample_rate contract
        feats = np.concatenate([feats, np.repeat(feats[-1:], num - len(feats), axis=0)])
    return feats[:num]


def ttm_audio_span(
    start_frame: int, end_frame: int, sample_rate: int, fps: float = EGO4D_FPS
) -> tuple[int, int]:
    """Audio sample range ``[onset, offset)`` of a sub-clip: ``int(frame / fps * sr)``.

    As ``_get_audio`` of the TTM baseline (the last frame's own audio is not included).
    """
    return int(start_frame / fps * sample_rate), int(end_frame / fps * sample_rate)


def normalize_rms(samples: np.ndarray, desired_rms: float = 0.1, eps: float = 1e-4) -> np.ndarray:
    """Scale to an RMS of ``desired_rms`` (the TTM baseline's ``normalize``), float64.

    ``rms = max(eps, sqrt(mean(x^2)))``; an empty input stays empty.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return x
    rms = max(eps, float(np.sqrt(np.mean(x**2))))
    return x * (desired_rms / rms)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters on the HTK mel scale, area-normalised."""
    bins_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(bins_hz)))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins_hz - lo) / (mid - lo)
        down = (hi - bins_hz) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return fb


def log_mel_spectrogram(
    samples: np.ndarray, sample_rate: int = 16000, n_mels: int = 80
) -> np.ndarray:
    """Whisper-style log-mel features: ``(n_mels, frames)`` float32 at 100 Hz.

    25 ms Hann window (``n_fft = 400`` at 16 kHz), 10 ms hop, power spectrum, mel filters,
    ``log10(max(x, 1e-10))``, floored at ``max - 8``, then ``(x + 4) / 4`` -- the
    normalisation of ``whisper.log_mel_spectrogram`` (openai/whisper ``audio.py``), which
    QuAVF's audio branch uses; the filterbank here is HTK-style (Whisper uses librosa's
    Slaney filters), so values are close to, not equal to, Whisper's.

    Args:
        samples: ``(N,)`` mono audio, float in [-1, 1] or int16 (scaled by 1/32768).
    """
    import torch

    x = np.asarray(samples)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1)
    n_fft = int(round(0.025 * sample_rate))
    hop = int(round(0.010 * sample_rate))
    if len(x) < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - len(x)))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    power = spec[:, :-1].abs() ** 2
    fb = torch.from_numpy(_mel_filterbank(sample_rate, n_fft, n_mels)).float()
    mel = torch.clamp(fb @ power, min=1e-10).log10()
    mel = torch.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).numpy().astype(np.float32)


def log_mel_filterbank(
    samples: np.ndarray,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    num_filters: int = 26,
    win_length_s: float = 0.025,
    hop_s: float = 0.010,
    nfft: int = 512,
    preemphasis: float = 0.97,
) -> np.ndarray:
    """Log mel filterbank energies: ``python_speech_features.logfbank`` (its defaults are
    AV-HuBERT's audio features: ``avhubert/hubert_dataset.py`` ``load_feature``).

    Pre-emphasis 0.97, 25 ms rectangular frames every 10 ms (the last zero-padded),
    ``|rfft(frame, 512)|^2 / 512``, 26 triangular filters equally spaced on the HTK mel scale
    from 0 Hz to ``sr / 2``, zero energies replaced by float64 eps, natural log.

    Args:
        samples: ``(N,)`` mono audio (int16 scale, as read from a WAV file).
        sample_rate: Hz.

    Returns:
        ``(1 + ceil((N - 0.025 sr) / (0.010 sr)), num_filters)`` float32 (at least one
        frame), 100 frames per second by default.

    Raises:
        ValueError: ``samples`` is not 1-D or is empty.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"samples must be a non-empty 1-D (mono) array, but got shape {x.shape}")
    feats = python_speech_features.logfbank(
        x,
        sample_rate,
        winlen=win_length_s,
        winstep=hop_s,
        nfilt=num_filters,
        nfft=nfft,
        preemph=preemphasis,
    )
    return np.asarray(feats, dtype=np.float32).reshape(-1, num_filters)


def stack_frames(features: np.ndarray, stack: int = MFCC_FRAMES_PER_VIDEO_FRAME) -> np.ndarray:
    """Concatenate each ``stack`` consecutive feature frames into one (AV-HuBERT ``stacker``):
    ``(N, F)`` -> ``(ceil(N / stack), stack * F)``, zero-padding the last group; 100 Hz ->
    25 Hz for ``stack = 4``. Row ``k`` is ``[f_{4k}, f_{4k+1}, f_{4k+2}, f_{4k+3}]``."""
    feats = np.asarray(features)
    if feats.ndim != 2 or stack < 1:
        raise ValueError(f"features must be (N, F) and stack >= 1, got {feats.shape}, {stack}")
    rest = (-len(feats)) % stack
    if rest:
        feats = np.concatenate([feats, np.zeros((rest, feats.shape[1]), dtype=feats.dtype)])
    return feats.reshape(-1, stack * feats.shape[1])


def av_hubert_audio_features(
    samples: np.ndarray, num_frames: int | None = None, sample_rate: int = AUDIO_SAMPLE_RATE
) -> np.ndarray:
    """AV-HuBERT audio input for a clip: 26 log-mel at 100 Hz, stacked by 4 -> ``(T, 104)``
    float32 at 25 Hz, cut or zero-padded to ``num_frames`` video frames (``load_feature``),
    then normalised per frame to zero mean, unit variance (``F.layer_norm(x, x.shape[1:])``,
    eps 1e-5)."""
    feats = stack_frames(log_mel_filterbank(samples, sample_rate), MFCC_FRAMES_PER_VIDEO_FRAME)
    if num_frames is not None:
        if len(feats) < num_frames:
            pad = np.zeros((num_frames - len(feats), feats.shape[1]), dtype=feats.dtype)
            feats = np.concatenate([feats, pad])
        feats = feats[:num_frames]
    import torch
    from torch.nn import functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
    return F.layer_norm(tensor, tensor.shape[1:]).numpy()
