"""Fixtures for the head-pose / social tests: models loaded and real clips analysed once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def decoded_frames(path: Path, every: int, stop: int | None = None) -> dict[int, np.ndarray]:
    """Every ``every``-th frame of the 25 fps analysis timeline before ``stop`` (only those
    are kept)."""
    from socialav.io.media import iter_frames

    out = {}
    for i, frame in iter_frames(path):
        if stop is not None and i >= stop:
            break
        if i % every == 0:
            out[i] = frame
    return out


@pytest.fixture(scope="session")
def sample_frames():
    """:func:`decoded_frames` as a fixture."""
    return decoded_frames


@pytest.fixture(scope="session")
def head_pose_model(weights_dir: Path):
    from socialav.checkpoints.load import load_head_pose

    return load_head_pose(num_threads=1)[0]


@pytest.fixture(scope="session")
def speaker_detector(weights_dir: Path):
    """The detect pipeline with one full-track ASD pass (faster than the 1-6 s windows)."""
    from socialav.inference.asd import WindowConfig
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    torch.set_num_threads(1)
    return SpeakerDetector(DetectConfig(num_threads=1, windows=WindowConfig(durations_s=None)))


@pytest.fixture(scope="session")
def analyse_social(speaker_detector, head_pose_model):
    """``analyse(path, with_asd, every)`` -> list of ``(track, speaking_prob | None, angles,
    extra)``: detect pipeline face tracks (and ASD), head pose on every ``every``-th frame."""
    from socialav.inference.social_rules import looking_probability_series, social_series
    from socialav.io.media import probe_video
    from socialav.vision.head_pose import track_head_pose

    cache: dict[tuple[str, bool, int], list] = {}

    def analyse(path: Path, with_asd: bool = True, every: int = 5) -> list:
        key = (str(path), with_asd, every)
        if key in cache:
            return cache[key]
        if with_asd:
            result = speaker_detector.run(path)
            pairs = [
                (t, s.probabilities) for t, s in zip(result.tracks, result.scores, strict=True)
            ]
        else:
            video = probe_video(path)
            tracks = sorted(
                (a.track for a in speaker_detector.face_tracks(path, video)),
                key=lambda t: t.track_id,
            )
            pairs = [(t, None) for t in tracks]
        frames = decoded_frames(path, every)
        out = []
        for track, prob in pairs:
            angles = track_head_pose(head_pose_model, frames, track)
            if prob is None:
                extra = {"lam": looking_probability_series(angles)}
            else:
                extra = social_series(angles, prob)
            out.append((track, prob, angles, extra))
        cache[key] = out
        return out

    return analyse
