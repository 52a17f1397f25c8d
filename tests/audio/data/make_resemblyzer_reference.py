"""Write ``resemblyzer_reference.npz``: the resemblyzer package's own outputs on real audio.

Run in a scratch venv that has the package and its dependencies (they are not socialav's)::

    python3 -m venv /work/venvs/resem && . /work/venvs/resem/bin/activate
    pip install torch==2.13.0 && pip install resemblyzer==0.1.4 "setuptools<81" av
    python tests/audio/data/make_resemblyzer_reference.py ../shared/videos/visualvoice_interview.mp4

The audio is decoded as socialav does (PyAV, mono 16 kHz s16, ``socialav.io.media.read_audio``
semantics without the video-origin shift: the interview's streams both start at 0), and the
same sample ranges are re-read by the test, so no audio is stored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import torch
from resemblyzer import VoiceEncoder, audio

#: (start_sample, end_sample) of the test segments: a 4 s stretch of the interview (one
#: speaker), a 1.0 s piece (shorter than one partial) and a 9 s stretch (many partials).
SEGMENTS = [(2 * 16000, 6 * 16000), (7 * 16000, 8 * 16000), (8 * 16000, 17 * 16000)]


def read_s16_mono(path: str) -> np.ndarray:
    with av.open(path) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


def main(clip: str) -> None:
    torch.set_num_threads(1)
    samples = read_s16_mono(clip)
    encoder = VoiceEncoder("cpu", verbose=False)
    out: dict[str, np.ndarray] = {"segments": np.array(SEGMENTS, dtype=np.int64)}
    for k, (a, b) in enumerate(SEGMENTS):
        wav = samples[a:b].astype(np.float32) / 32768.0
        out[f"seg{k}_mel_first20"] = audio.wav_to_mel_spectrogram(wav)[:20]
        embed, partials, _ = encoder.embed_utterance(wav, return_partials=True)
        out[f"seg{k}_partials"] = partials
        out[f"seg{k}_embedding"] = embed
    dest = Path(__file__).with_name("resemblyzer_reference.npz")
    np.savez_compressed(dest, **out)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main(sys.argv[1])
