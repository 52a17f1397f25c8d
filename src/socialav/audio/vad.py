"""Voice activity: Silero VAD on onnxruntime, with Silero's own post-processing.

The model is ``silero_vad.onnx`` from the ``silero-vad`` wheel (MIT, v6; resolved through
:mod:`socialav.hub` as ``silero-vad``). Like the package's ``OnnxWrapper`` it sees the audio in
consecutive 512-sample chunks (32 ms at 16 kHz), each prefixed with the last 64 samples of the
previous chunk (zeros for the first), with the recurrent ``state`` carried from chunk to chunk;
the last chunk is zero-padded. Speech regions follow ``get_speech_timestamps`` /
``get_speech_timestamps_from_probs`` of ``silero_vad/utils_vad.py`` (threshold with hysteresis,
minimum silence to end a region, minimum speech duration, padding), re-implemented on numpy
without ``max_speech_duration_s`` (regions are never split by length).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from socialav.runtime import ort_session_options
from socialav.types import AUDIO_SAMPLE_RATE

logger = logging.getLogger(__name__)

__all__ = [
    "SILERO_CHUNK_SAMPLES",
    "SILERO_CONTEXT_SAMPLES",
    "SpeechRegion",
    "VadConfig",
    "SileroVAD",
    "audio_float32",
    "speech_regions_from_probabilities",
]

#: Samples per Silero chunk at 16 kHz (``window_size_samples`` in ``get_speech_timestamps``).
SILERO_CHUNK_SAMPLES: int = 512
#: Samples of the previous chunk prefixed to each chunk (``context_size`` in ``OnnxWrapper``).
SILERO_CONTEXT_SAMPLES: int = 64


@dataclass(frozen=True)
class SpeechRegion:
    """A span of audio judged to hold speech.

    Attributes:
        start_s: start in seconds from the first audio sample (the first video frame when the
            audio comes from :func:`socialav.io.media.read_audio`).
        end_s: end in seconds (exclusive), ``> start_s``.
    """

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start_s) and np.isfinite(self.end_s)):
            raise ValueError(f"speech region times must be finite, but got {self}")
        if self.start_s < 0 or self.end_s <= self.start_s:
            raise ValueError(
                f"a speech region needs 0 <= start_s < end_s, but got start_s={self.start_s}, "
                f"end_s={self.end_s}"
            )

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class VadConfig:
    """Silero post-processing; defaults are ``get_speech_timestamps``'s own.

    Attributes:
        threshold: a chunk with probability ``>= threshold`` is speech.
        neg_threshold: inside speech, a chunk below this starts a silence (default
            ``max(threshold - 0.15, 0.01)``, as Silero).
        min_speech_duration_s: regions not longer than this are dropped (0.25 s).
        min_silence_duration_s: a silence must last this long to end a region (0.1 s).
        speech_pad_s: regions are widened by this on each side, by half the gap when two
            regions are closer than twice this (0.03 s).
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_s: float = 0.25
    min_silence_duration_s: float = 0.1
    speech_pad_s: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), but got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            raise ValueError(
                f"neg_threshold must be in (0, threshold={self.threshold}], but got "
                f"{self.neg_threshold}"
            )
        for name in ("min_speech_duration_s", "min_silence_duration_s", "speech_pad_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, but got {getattr(self, name)}")

    @property
    def exit_threshold(self) -> float:
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)


def audio_float32(audio: np.ndarray, where: str = "audio") -> np.ndarray:
    """``(N,)`` mono audio as float32 in [-1, 1]: int16 is divided by 32768, floats are kept.

    Raises:
        ValueError: not one-dimensional, or non-finite values.
        TypeError: a dtype other than int16 / float32 / float64.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{where} must be mono with shape (N,), but got shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / np.float32(32768.0)
    if audio.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where} must be int16 or float32 samples, but got {audio.dtype}")
    out = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{where} contains NaN or infinite samples")
    return out


def speech_regions_from_probabilities(
    probabilities: np.ndarray,
    num_samples: int,
    config: VadConfig = VadConfig(),
    sample_rate: int = AUDIO_SAMPLE_RATE,
    chunk_samples: int = SILERO_CHUNK_SAMPLES,
) -> list[tuple[int, int]]:
    """Silero's ``get_speech_timestamps_from_probs`` (``max_speech_duration_s = inf``).

    Args:
        probabilities: ``(C,)`` speech probability per chunk; chunk ``i`` starts at sample
            ``i * chunk_samples``.
        num_samples: length of the audio in samples (regions end at most here).
        config: thresholds and durations.
        sample_rate: Hz.
        chunk_samples: samples per chunk.

    Returns:
        ``(start_sample, end_sample)`` per region, increasing, end exclusive.
    """
    probs = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    min_speech = sample_rate * config.min_speech_duration_s
    pad = sample_rate * config.speech_pad_s
    min_silence = sample_rate * config.min_silence_duration_s
    exit_threshold = config.exit_threshold
    regions: list[list[int]] = []
    triggered = False
    start = 0
    temp_end = 0
    for i, prob in enumerate(probs):
        sample = chunk_samples * i
        if prob >= config.threshold and temp_end:
            temp_end = 0
        if prob >= config.threshold and not triggered:
            triggered, start = True, sample
            continue
        if triggered and prob < exit_threshold:
            if not temp_end:
                temp_end = sample
            if sample - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                regions.append([start, temp_end])
            triggered, temp_end = False, 0
    if triggered and num_samples - start > min_speech:
        regions.append([start, num_samples])
    # padding, split evenly where two regions are closer than twice the pad (Silero's rule)
    for i, region in enumerate(regions):
        if i == 0:
            region[0] = int(max(0, region[0] - pad))
        if i != len(regions) - 1:
            gap = regions[i + 1][0] - region[1]
            if gap < 2 * pad:
                region[1] += int(gap // 2)
                regions[i + 1][0] = int(max(0, regions[i + 1][0] - gap // 2))
            else:
                region[1] = int(min(num_samples, region[1] + pad))
                regions[i + 1][0] = int(max(0, regions[i + 1][0] - pad))
        else:
            region[1] = int(min(num_samples, region[1] + pad))
    return [(int(a), int(b)) for a, b in regions]


class SileroVAD:
    """Silero VAD (ONNX, CPU) → per-chunk speech probabilities and speech regions.

    Args:
        model_path: the Silero ``.onnx`` file (the registry's ``silero-vad``, inside the
            installed ``silero-vad`` wheel: :func:`socialav.checkpoints.load.load_vad`).
        config: post-processing (:class:`VadConfig`).
        num_threads: onnxruntime intra-op threads.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a graph without Silero's ``input`` / ``state`` / ``sr`` inputs.
    """

    sample_rate: int = AUDIO_SAMPLE_RATE

    def __init__(
        self,
        model_path: str | Path,
        config: VadConfig = VadConfig(),
        num_threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"Silero VAD ONNX file not found: {self.model_path}")
        self.config = config
        options = ort_session_options(num_threads, log_severity_level=3)
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ValueError(
                f"{self.model_path}: expected a Silero VAD graph with inputs input, state, sr; "
                f"found {sorted(names)}"
            )

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of every 512-sample chunk.

        Args:
            audio: ``(N,)`` 16 kHz mono, float32 in [-1, 1] or int16.

        Returns:
            ``(ceil(N / 512),)`` float32 in [0, 1]; chunk ``i`` covers samples
            ``512 i .. 512 (i + 1)``.
        """
        wav = audio_float32(audio)
        n_chunks = -(-len(wav) // SILERO_CHUNK_SAMPLES)
        padded = np.zeros(n_chunks * SILERO_CHUNK_SAMPLES + SILERO_CONTEXT_SAMPLES, np.float32)
        padded[SILERO_CONTEXT_SAMPLES : SILERO_CONTEXT_SAMPLES + len(wav)] = wav
        state = np.zeros((2, 1, 128), dtype=np.float32)
        sr = np.array(self.sample_rate, dtype=np.int64)
        width = SILERO_CHUNK_SAMPLES + SILERO_CONTEXT_SAMPLES
        out = np.zeros(n_chunks, dtype=np.float32)
        for i in range(n_chunks):
            start = i * SILERO_CHUNK_SAMPLES
            chunk = padded[start : start + width].reshape(1, width)
            prob, state = self._session.run(None, {"input": chunk, "state": state, "sr": sr})
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out

    def regions_samples(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Speech regions as ``(start_sample, end_sample)`` (Silero's sample output)."""
        wav = audio_float32(audio)
        if len(wav) == 0:
            return []
        return speech_regions_from_probabilities(self.probabilities(wav), len(wav), self.config)

    def __call__(self, audio: np.ndarray) -> list[SpeechRegion]:
        """Speech regions of 16 kHz mono audio (see :meth:`probabilities` for the input).

        Returns:
            :class:`SpeechRegion` list in time order (empty for silence or empty audio).
        """
        return [
            SpeechRegion(a / self.sample_rate, b / self.sample_rate)
            for a, b in self.regions_samples(audio)
        ]

    def __repr__(self) -> str:
        return f"SileroVAD({self.model_path.name}, {self.config})"
