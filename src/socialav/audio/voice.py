"""Voice embeddings: the GE2E speaker encoder of Resemblyzer, re-implemented (in PyTorch, or
its ONNX export in onnxruntime: the default, which needs no PyTorch once exported).

Model (Wan, Wang, Papir and Lopez Moreno, "Generalized End-to-End Loss for Speaker
Verification", ICASSP 2018; weights trained by Resemble AI and shipped as ``pretrained.pt`` in
the ``resemblyzer`` 0.1.4 wheel, Apache-2.0): a 3-layer LSTM (hidden 256) over 40-channel
*power* mel frames (25 ms Hann window, 10 ms hop, 16 kHz; no log), the last layer's final
hidden state through ``Linear(256, 256)`` and ReLU, L2-normalised (``voice_encoder.py``).
The mel front-end is ``librosa.feature.melspectrogram`` as ``resemblyzer/audio.py`` calls it
(librosa 0.11 defaults: centred frames with zero padding, periodic Hann, ``|STFT|^2``, Slaney
mel filters with Slaney area normalisation). Partial utterances are 160 frames (1.6 s), laid
as ``VoiceEncoder.compute_partial_slices`` does.

Why not the package: ``resemblyzer`` imports librosa (numba, llvmlite, soundfile, soxr:
~150 MB) and webrtcvad, which no longer imports without the deprecated ``pkg_resources``; we
use neither (Silero gives the speech regions, :mod:`socialav.audio.vad`). The weights are
read from the installed wheel (``pip install --no-deps resemblyzer==0.1.4``) by
:func:`socialav.checkpoints.load.load_voice_encoder` (registry ``resemblyzer-ge2e``; the
architecture is :class:`socialav.models.ge2e.GE2E`). ``tests/audio/test_voice.py`` checks the mel and the embeddings against
outputs of the package itself.

Other speaker encoders (ECAPA-TDNN, WeSpeaker ResNet ...) plug in through the
:class:`VoiceEncoder` protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from socialav.audio.vad import SpeechRegion, audio_float32
from socialav.runtime import ort_session_options
from socialav.types import AUDIO_SAMPLE_RATE

logger = logging.getLogger(__name__)

__all__ = [
    "GE2E_MEL_CHANNELS",
    "GE2E_PARTIAL_FRAMES",
    "VoiceEncoder",
    "VoiceWindows",
    "GE2EVoiceEncoder",
    "mel_filterbank",
    "power_mel_frames",
    "partial_slices",
    "loudness_gain",
    "normalize_volume",
    "embed_speech_windows",
]

#: Mel channels, window and hop of the GE2E front-end (``resemblyzer/hparams.py``).
GE2E_MEL_CHANNELS: int = 40
GE2E_WINDOW_SAMPLES: int = 400  # 25 ms at 16 kHz
GE2E_HOP_SAMPLES: int = 160  # 10 ms at 16 kHz
#: Mel frames in one partial utterance (1.6 s, ``partials_n_frames``).
GE2E_PARTIAL_FRAMES: int = 160
#: Loudness target of ``preprocess_wav`` (dBFS, increase only).
GE2E_TARGET_DBFS: float = -30.0


@runtime_checkable
class VoiceEncoder(Protocol):
    """What the diarization needs from a speaker encoder (GE2E here; ECAPA/WeSpeaker fit).

    Attributes:
        sample_rate: Hz of the audio it takes.
        window_s: duration of one embedding window in seconds.
        embedding_dim: length of one embedding.
    """

    sample_rate: int
    window_s: float
    embedding_dim: int

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """``(n, window_s * sample_rate)`` float32 audio → ``(n, embedding_dim)`` float32,
        each row L2-normalised."""
        ...


@dataclass
class VoiceWindows:
    """Voice embeddings of sliding windows inside speech regions.

    Attributes:
        start_s: ``(n,)`` float64 window starts in seconds.
        end_s: ``(n,)`` float64 window ends (exclusive), ``> start_s``; a window of a region
            shorter than the encoder's window ends at the region's end.
        region_index: ``(n,)`` int64 index of the speech region each window lies in.
        embeddings: ``(n, D)`` float32 L2-normalised embeddings.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    region_index: np.ndarray
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        self.start_s = np.asarray(self.start_s, dtype=np.float64).reshape(-1)
        self.end_s = np.asarray(self.end_s, dtype=np.float64).reshape(-1)
        self.region_index = np.asarray(self.region_index, dtype=np.int64).reshape(-1)
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        n = len(self.start_s)
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            raise ValueError(
                f"embeddings must have shape ({n}, D), but got shape {self.embeddings.shape}"
            )
        if len(self.end_s) != n or len(self.region_index) != n:
            raise ValueError(
                f"start_s, end_s and region_index must have {n} values each, but got "
                f"{len(self.start_s)}, {len(self.end_s)}, {len(self.region_index)}"
            )
        if n and not np.all(self.end_s > self.start_s):
            raise ValueError("every voice window must end after it starts")

    def __len__(self) -> int:
        return len(self.start_s)

    @property
    def centre_s(self) -> np.ndarray:
        return 0.5 * (self.start_s + self.end_s)

    @classmethod
    def empty(cls, dim: int) -> VoiceWindows:
        return cls(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, dim), np.float32))


def mel_filterbank(
    sample_rate: int = AUDIO_SAMPLE_RATE,
    n_fft: int = GE2E_WINDOW_SAMPLES,
    n_mels: int = GE2E_MEL_CHANNELS,
) -> np.ndarray:
    """Slaney-style mel filters with Slaney area normalisation, ``fmin = 0``, ``fmax = sr/2``.

    The construction of ``librosa.filters.mel(htk=False, norm="slaney")``: the Slaney mel
    scale (linear below 1 kHz at 200/3 Hz per mel, logarithmic above with step
    ``ln(6.4)/27``; Slaney, *Auditory Toolbox*, 1998), ``n_mels + 2`` points evenly spaced in
    mel, triangles on the rFFT bin frequencies, each scaled by ``2 / (f[i+2] - f[i])``.

    Returns:
        ``(n_mels, n_fft // 2 + 1)`` float64 weights.
    """
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        hz = np.asarray(hz, dtype=np.float64)
        mel = hz / f_sp
        high = hz >= min_log_hz
        mel[high] = min_log_mel + np.log(hz[high] / min_log_hz) / logstep
        return mel

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        hz = f_sp * mel
        high = mel >= min_log_mel
        hz[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
        return hz

    fft_hz = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_edges = np.linspace(*hz_to_mel(np.array([0.0, sample_rate / 2.0])), n_mels + 2)
    mel_hz = mel_to_hz(mel_edges)
    spacing = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / spacing[:-1, None]
    upper = ramps[2:] / spacing[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


_MEL_BASIS = mel_filterbank()


def power_mel_frames(wav: np.ndarray) -> np.ndarray:
    """40-channel power mel frames of 16 kHz audio (``resemblyzer.audio.wav_to_mel_spectrogram``).

    Frames are centred on samples ``160 k`` (the signal is zero-padded by 200 samples on each
    side), Hann-windowed (periodic, 400 samples), ``|rFFT|^2``, times :func:`mel_filterbank`.

    Args:
        wav: ``(N,)`` float32 16 kHz mono in [-1, 1].

    Returns:
        ``(1 + N // 160, 40)`` float32.
    """
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    half = GE2E_WINDOW_SAMPLES // 2
    padded = np.pad(wav, (half, half))
    n_frames = 1 + len(wav) // GE2E_HOP_SAMPLES
    frames = np.lib.stride_tricks.sliding_window_view(padded, GE2E_WINDOW_SAMPLES)[
        ::GE2E_HOP_SAMPLES
    ][:n_frames]
    n = np.arange(GE2E_WINDOW_SAMPLES)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / GE2E_WINDOW_SAMPLES)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (spectrum @ _MEL_BASIS.T).astype(np.float32)


def partial_slices(
    num_samples: int, step_s: float, min_coverage: float = 0.75
) -> list[tuple[int, int]]:
    """Mel-frame ranges of the partial utterances of one utterance.

    ``VoiceEncoder.compute_partial_slices`` with ``rate = 1 / step_s``: 160-frame windows every
    ``round(step_s * 100)`` frames over ``ceil((num_samples + 1) / 160)`` frames; the last one
    is dropped if it covers less than ``min_coverage`` of its samples (but one always stays).

    Returns:
        ``(start_frame, end_frame)`` per partial; sample range is ``160 x`` those.

    Raises:
        ValueError: a step that gives 0 frames or more than one partial's length.
    """
    frame_step = int(np.round(step_s * AUDIO_SAMPLE_RATE / GE2E_HOP_SAMPLES))
    if not 0 < frame_step <= GE2E_PARTIAL_FRAMES:
        raise ValueError(
            f"step_s must give 1..{GE2E_PARTIAL_FRAMES} frames of 10 ms, but {step_s} gives "
            f"{frame_step}"
        )
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage must be in (0, 1], but got {min_coverage}")
    n_frames = int(np.ceil((num_samples + 1) / GE2E_HOP_SAMPLES))
    steps = max(1, n_frames - GE2E_PARTIAL_FRAMES + frame_step + 1)
    slices = [(i, i + GE2E_PARTIAL_FRAMES) for i in range(0, steps, frame_step)]
    start, stop = slices[-1][0] * GE2E_HOP_SAMPLES, slices[-1][1] * GE2E_HOP_SAMPLES
    coverage = (num_samples - start) / (stop - start)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices


def loudness_gain(wav: np.ndarray, target_dbfs: float = GE2E_TARGET_DBFS) -> float:
    """Gain that raises the RMS level of ``wav`` to ``target_dbfs``, never below 1.

    ``preprocess_wav``'s ``normalize_volume(increase_only=True)``; 1 for silent input.
    """
    wav = np.asarray(wav, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 0.0:
        return 1.0
    change_db = target_dbfs - 20.0 * np.log10(rms)
    return float(10 ** (change_db / 20.0)) if change_db > 0 else 1.0


def normalize_volume(wav: np.ndarray, target_dbfs: float = GE2E_TARGET_DBFS) -> np.ndarray:
    """``wav`` times :func:`loudness_gain` (raised to ``target_dbfs``, never lowered)."""
    wav = np.asarray(wav, dtype=np.float32)
    return (wav * np.float32(loudness_gain(wav, target_dbfs))).astype(np.float32)


class GE2EVoiceEncoder:
    """Resemblyzer's GE2E encoder on the CPU (see the module docstring).

    Args:
        model: a :class:`socialav.models.ge2e.GE2E` with its weights, run in PyTorch, or the
            path of its ONNX export (input ``mels`` ``(B, frames, 40)`` float32, output
            ``embedding`` ``(B, 256)``), run in onnxruntime;
            :func:`socialav.checkpoints.load.load_voice_encoder` gives the Resemblyzer one.
        num_threads: intra-op threads for the forward pass (None: leave PyTorch's, one for
            onnxruntime: :func:`socialav.runtime.ort_session_options`).
        batch_windows: windows per network call.

    Raises:
        onnxruntime's errors: an ONNX file that cannot be loaded.
    """

    sample_rate: int = AUDIO_SAMPLE_RATE
    window_s: float = GE2E_PARTIAL_FRAMES * GE2E_HOP_SAMPLES / AUDIO_SAMPLE_RATE
    embedding_dim: int = 256

    def __init__(self, model, num_threads: int | None = 1, batch_windows: int = 64) -> None:
        self.num_threads = num_threads
        self.batch_windows = int(batch_windows)
        self._session = None
        self._torch = None
        self.model = None
        if isinstance(model, (str, os.PathLike)):
            import onnxruntime as ort

            options = ort_session_options(num_threads or 1)
            self._session = ort.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )
        else:
            import torch

            self.model = model.eval()
            self._torch = torch

    def _run_torch(self, mels: np.ndarray, out: np.ndarray) -> None:
        torch = self._torch
        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                for i in range(0, len(mels), self.batch_windows):
                    chunk = torch.from_numpy(mels[i : i + self.batch_windows])
                    out[i : i + len(chunk)] = self.model(chunk).numpy()
        finally:
            torch.set_num_threads(previous)

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """``(n, frames, 40)`` float32 power mel → ``(n, 256)`` float32 L2-normed embeddings."""
        mels = np.ascontiguousarray(mels, dtype=np.float32)
        if mels.ndim != 3 or mels.shape[2] != GE2E_MEL_CHANNELS:
            raise ValueError(f"mels must have shape (n, frames, 40), but got shape {mels.shape}")
        out = np.zeros((len(mels), self.embedding_dim), dtype=np.float32)
        if self._session is None:
            self._run_torch(mels, out)
            return out
        for i in range(0, len(mels), self.batch_windows):
            chunk = mels[i : i + self.batch_windows]
            out[i : i + len(chunk)] = self._session.run(None, {"mels": chunk})[0]
        return out

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of ``(n, 25600)`` float32 windows of 1.6 s (:class:`VoiceEncoder`)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(f"windows must have shape (n, samples), but got {windows.shape}")
        if len(windows) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        # mel of a 160 x 160-sample window has 161 frames; the model sees the first 160
        mels = np.stack([power_mel_frames(w)[:GE2E_PARTIAL_FRAMES] for w in windows])
        return self.embed_mels(mels)

    def embed_utterance(
        self, wav: np.ndarray, step_s: float = 1 / 1.3, min_coverage: float = 0.75
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """``VoiceEncoder.embed_utterance``: partial embeddings and their normalised mean.

        Args:
            wav: ``(N,)`` float32 16 kHz audio (already normalised if wanted).
            step_s: partial spacing (``1 / rate``; Resemblyzer's default rate 1.3 per second).
            min_coverage: see :func:`partial_slices`.

        Returns:
            ``(embedding (256,), partial embeddings (n, 256), mel-frame slices)``.
        """
        wav = audio_float32(wav, "wav")
        slices = partial_slices(len(wav), step_s, min_coverage)
        needed = slices[-1][1] * GE2E_HOP_SAMPLES
        if needed >= len(wav):
            wav = np.pad(wav, (0, needed - len(wav)))
        mel = power_mel_frames(wav)
        partials = self.embed_mels(np.stack([mel[a:b] for a, b in slices]))
        mean = partials.mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32), partials, slices

    def __repr__(self) -> str:
        runtime = "torch" if self._session is None else "onnx"
        return f"GE2EVoiceEncoder({runtime}, threads={self.num_threads})"


#: Voice windows whose audio is cut and embedded at a time (bounds the memory of long videos).
_WINDOWS_PER_BATCH = 128


def embed_speech_windows(
    audio: np.ndarray,
    regions: Sequence[SpeechRegion],
    encoder: VoiceEncoder,
    step_s: float = 0.5,
    normalize_dbfs: float | None = GE2E_TARGET_DBFS,
) -> VoiceWindows:
    """Embed sliding windows laid inside each speech region.

    Windows of ``encoder.window_s`` start every ``step_s`` inside a region, the last one
    aligned with the region's end; a region shorter than one window gets one window: its
    audio, zero-padded to the window length (as Resemblyzer pads a short utterance). The
    whole recording's speech is raised to ``normalize_dbfs`` first (:func:`normalize_volume`
    on the concatenated regions, one gain for the video), as ``preprocess_wav`` does.

    Args:
        audio: ``(N,)`` 16 kHz mono, int16 or float32.
        regions: speech regions (:class:`~socialav.audio.vad.SileroVAD`).
        encoder: any :class:`VoiceEncoder`.
        step_s: hop between window starts (> 0).
        normalize_dbfs: loudness target, or None to keep the audio as it is.

    Returns:
        :class:`VoiceWindows` in time order (empty when there is no region).

    Raises:
        ValueError: ``step_s <= 0``, or a region that starts past the end of the audio.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0, but got {step_s}")
    wav = audio_float32(audio)
    sr = encoder.sample_rate
    width = int(round(encoder.window_s * sr))
    if not regions:
        return VoiceWindows.empty(encoder.embedding_dim)
    spans = []
    for k, region in enumerate(regions):
        a, b = int(round(region.start_s * sr)), min(int(round(region.end_s * sr)), len(wav))
        if a >= b:
            raise ValueError(
                f"speech region {k} ({region.start_s:.3f}-{region.end_s:.3f} s) lies outside "
                f"the {len(wav) / sr:.3f} s of audio"
            )
        spans.append((a, b))
    if normalize_dbfs is not None:
        speech = np.concatenate([wav[a:b] for a, b in spans])
        wav = wav * np.float32(loudness_gain(speech, normalize_dbfs))
    hop = int(round(step_s * sr))
    cuts: list[tuple[int, int, int]] = []  # (first sample, end sample, region)
    for k, (a, b) in enumerate(spans):
        offsets = [a] if b - a <= width else [*range(a, b - width, hop), b - width]
        cuts.extend((o, min(o + width, b), k) for o in offsets)
    # the windows' audio is cut batch by batch: all of a long video's windows at once would
    # hold 100 kB per window twice (a 10-minute interview: about 1,000 windows)
    embeddings = np.zeros((len(cuts), encoder.embedding_dim), dtype=np.float32)
    for i in range(0, len(cuts), _WINDOWS_PER_BATCH):
        batch = cuts[i : i + _WINDOWS_PER_BATCH]
        chunks = np.zeros((len(batch), width), dtype=np.float32)
        for row, (o, e, _) in enumerate(batch):
            chunks[row, : e - o] = wav[o:e]
        embeddings[i : i + len(batch)] = encoder.embed_windows(chunks)
    starts = np.array([o / sr for o, _, _ in cuts])
    ends = np.array([e / sr for _, e, _ in cuts])
    index = np.array([k for _, _, k in cuts])
    return VoiceWindows(starts, ends, index, embeddings)
