"""Long face tracks are scored while they grow (chunks of whole windows) on a second thread:
the logits must equal those of scoring each whole track at once, and a failure on the
scoring thread must reach the caller."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.types import FaceCropChunk


@pytest.fixture(scope="module")
def detector() -> SpeakerDetector:
    return SpeakerDetector(DetectConfig(diarize=False, num_threads=2))


@pytest.mark.parametrize("durations_s", [(6.0,), (1.0, 2.0)])
def test_chunked_overlapped_logits_equal_whole_track_logits(
    detector, videos_dir, monkeypatch, durations_s
):
    video = videos_dir / "visualvoice_interview.mp4"
    windows = replace(detector.config.windows, durations_s=durations_s)
    streamed = detector.instantiate(windows=windows, overlap_model=True)
    assert streamed.chunk_frames() == int(round(max(durations_s) * 25))
    chunks = []
    original = FaceCropChunk.__post_init__

    def spy(self):
        chunks.append((self.track_key, self.start_frame, len(self.faces_gray112)))
        original(self)

    monkeypatch.setattr(FaceCropChunk, "__post_init__", spy)
    got = streamed.run(video)
    monkeypatch.undo()
    assert len(chunks) >= 4  # 438-frame tracks: several chunks each before they end
    whole = streamed.instantiate(overlap_model=False)
    monkeypatch.setattr(SpeakerDetector, "chunk_frames", lambda self: None)
    want = whole.run(video)
    assert [s.track_id for s in got.scores] == [s.track_id for s in want.scores]
    for a, b in zip(got.scores, want.scores, strict=True):
        np.testing.assert_array_equal(a.frame_indices, b.frame_indices)
        np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_full_track_windows_and_scene_context_are_not_chunked(detector):
    full = detector.instantiate(windows=replace(detector.config.windows, durations_s=None))
    assert full.chunk_frames() is None
    track_context = detector.instantiate(
        windows=replace(detector.config.windows, visual_context="track")
    )
    assert track_context.chunk_frames() is None


@pytest.mark.parametrize("overlap", [True, False])
def test_an_error_of_the_model_reaches_the_caller(detector, videos_dir, monkeypatch, overlap):
    def broken(*args, **kwargs):
        raise RuntimeError("model failed")

    monkeypatch.setattr("socialav.pipelines.detect.score_track_inputs", broken)
    with pytest.raises(RuntimeError, match="model failed"):
        detector.instantiate(overlap_model=overlap).run(videos_dir / "grid_bbaf2n.mpg")
