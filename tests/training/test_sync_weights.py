"""The shipped ``light-asd-sync`` weights check audio-visual synchrony on a real held-out clip.

GRID clips were never used to train them. One GRID face track with its own audio must be
scored speaking during its words; the same face with another GRID speaker's audio (the
swapped-audio probe of TalkNet's TalkSet) and with its own audio delayed by 10 frames must be
scored clearly lower (relative to the own-voice score). The published AVA weights fail these
checks, which is what the fine-tuning improved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from socialav import hub
from socialav.audio.features import track_mfcc
from socialav.evaluation.asd_benchmarks import align_to_frames, read_grid_align
from socialav.io.media import probe_video, read_audio
from socialav.models.checkpoints import load_asd_model
from socialav.models.light_asd import LightASD
from socialav.training.checkpoint import load_model_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def grid_pair(videos_dir: Path, weights_dir: Path):
    """Face crops, audio and word-aligned speech of ``grid_id2_vcd_swwp2s``, and the audio of
    ``grid_bbaf2n`` (another speaker)."""
    from socialav.pipelines.detect import DetectConfig, SpeakerDetector

    detector = SpeakerDetector(DetectConfig(num_threads=1))
    path = videos_dir / "grid_id2_vcd_swwp2s.mpg"
    video = probe_video(path)
    analysed = max(detector.face_tracks(path, video), key=lambda a: len(a.track))
    track, faces = analysed.track, analysed.crops
    audio = read_audio(path)[track.start_frame * 640 :]
    speech = align_to_frames(read_grid_align(path.with_suffix(".align")), video.num_frames)
    speech = speech[track.start_frame : track.end_frame + 1]
    other = read_audio(videos_dir / "grid_bbaf2n.mpg")
    return faces, audio, speech, other


def _p_speaking(model, faces: np.ndarray, audio: np.ndarray) -> np.ndarray:
    mfcc = track_mfcc(audio, 0, len(faces) - 1)
    with torch.inference_mode():
        logits = model(torch.from_numpy(faces)[None].float(), torch.from_numpy(mfcc)[None])
    return torch.softmax(logits[0], dim=-1)[:, 1].numpy()


def test_registry_entry_resolves_to_a_self_describing_light_asd_checkpoint(weights_dir):
    entry = hub.get_entry("light-asd-sync")
    assert (entry.kind, entry.architecture, entry.url) == ("asd", "light_asd", None)
    path = hub.resolve_weights("light-asd-sync")  # checks the sha256
    assert path == hub.PACKAGE_WEIGHTS_DIR / entry.relative_path
    assert path.stat().st_size < 10_000_000
    model, meta = load_model_checkpoint(path, "light-asd")
    assert isinstance(model, LightASD)
    assert "videos/more" in meta["training_data"]
    assert meta["train_config"]["model"]["init_weights"] == "light-asd-ava"


def test_own_audio_scores_far_above_swapped_and_delayed_audio(grid_pair):
    faces, audio, speech, other = grid_pair
    model = load_asd_model(hub.resolve_weights("light-asd-sync"), "light-asd")
    own = _p_speaking(model, faces, audio)
    swapped = _p_speaking(model, faces, other[: len(audio)])
    delayed = _p_speaking(model, faces, np.concatenate([np.zeros(6400, np.int16), audio]))
    words = speech.astype(bool)
    assert words.sum() > 20
    # speaking during the words with its own voice, not in the silence around them
    assert own[words].mean() > 0.5
    assert own[~words].mean() < 0.15
    # the same face with another speaker's voice, or its own voice 10 frames late: much lower
    # (measured: own 0.61, swapped 0.32, delayed 0.39; the published AVA weights give 0.93,
    # 0.69 and 0.71, failing both)
    assert swapped[words].mean() < 0.6 * own[words].mean()
    assert delayed[words].mean() < 0.7 * own[words].mean()
