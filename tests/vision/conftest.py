"""Fixtures for the vision tests: the first frames of the real interview clip, decoded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

#: Frames of visualvoice_interview.mp4 decoded for the tests (25 fps CFR: frame i = i-th frame).
NUM_INTERVIEW_FRAMES = 40


def iter_decoded(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``(H, W, 3)`` uint8 RGB frames decoded with PyAV (independent of socialav.io)."""
    import av

    with av.open(str(path)) as container:
        for count, frame in enumerate(container.decode(video=0)):
            if max_frames is not None and count >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def decode_frames(path: Path, max_frames: int | None = None) -> list[np.ndarray]:
    """All (or the first ``max_frames``) frames of a clip as a list."""
    return list(iter_decoded(path, max_frames))


@pytest.fixture(scope="session")
def decode():
    """The streaming PyAV decoding helper, for tests that decode other clips."""
    return iter_decoded


@pytest.fixture(scope="session")
def interview_frames(videos_dir: Path) -> list[np.ndarray]:
    path = videos_dir / "visualvoice_interview.mp4"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return decode_frames(path, NUM_INTERVIEW_FRAMES)
