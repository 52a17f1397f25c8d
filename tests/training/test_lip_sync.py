"""The lip-sync head learns synchrony on synthetic clips whose lips follow their audio."""

import numpy as np
import pytest
import torch

from socialav.evaluation.asd_benchmarks import BenchmarkClip
from socialav.models.lip_sync import LipSyncNet
from socialav.training.lip_sync import (
    LipSyncConfig,
    _Sampler,
    load_lip_sync,
    prepare_tracks,
    save_lip_sync,
    train_lip_sync,
)

FRAMES = 60


def _clip(name: str, speaker: str, rng: np.random.Generator) -> BenchmarkClip:
    """Syllable-like noise bursts; the mouth opens exactly while the audio is loud."""
    envelope = np.zeros(FRAMES)
    t = int(rng.integers(2, 6))
    while t < FRAMES - 3:
        length = int(rng.integers(2, 6))
        envelope[t : t + length] = rng.uniform(0.5, 1.0)
        t += length + int(rng.integers(2, 7))
    audio = rng.standard_normal(FRAMES * 640 + 400) * 200
    audio[: FRAMES * 640] += rng.standard_normal(FRAMES * 640) * 6000 * np.repeat(envelope, 640)
    angles = np.linspace(np.pi, -np.pi, 20, endpoint=False)
    base = np.stack([np.cos(angles) * 20, -np.sin(angles) * 3], 1)
    mouth = np.repeat(base[None], FRAMES, axis=0)
    mouth[:, :, 1] *= 1 + 4 * envelope[:, None]
    mouth += rng.normal(0, 0.2, mouth.shape) + [56, 80]
    faces = np.zeros((FRAMES, 112, 112), np.uint8)
    return BenchmarkClip(
        name,
        faces,
        audio.clip(-32768, 32767).astype(np.int16),
        envelope > 0,
        speaker=speaker,
        mouth_points=mouth.astype(np.float32),
    )


def test_network_shapes_and_input_checks():
    net = LipSyncNet(47, hidden=8).eval()
    out = net(torch.zeros(2, 30, 47), torch.zeros(2, 120, 13))
    assert out.shape == (2, 30)
    assert net.score(np.zeros((7, 47), np.float32), np.zeros((28, 13), np.float32)).shape == (7,)
    with pytest.raises(ValueError, match=r"\(B, 4T, 13\)"):
        net(torch.zeros(2, 30, 47), torch.zeros(2, 100, 13))
    with pytest.raises(ValueError, match=r"\(B, T, 47\)"):
        net(torch.zeros(2, 30, 40), torch.zeros(2, 120, 13))


def test_sampler_gives_each_kind_with_the_right_labels():
    rng = np.random.default_rng(0)
    clips = [_clip(f"a{i}", "a", rng) for i in range(3)] + [_clip("b0", "b", rng)]
    tracks = prepare_tracks(clips)
    assert tracks[0].lips.shape == (FRAMES, 47) and tracks[0].mfcc.shape == (4 * FRAMES, 13)
    cfg = LipSyncConfig(window_frames=30, kind_probabilities=(0.25, 0.25, 0.25, 0.25))
    sampler = _Sampler([tracks], cfg, seed=0)
    seen = set()
    for _ in range(200):
        lips, mfcc, labels, kind = sampler.window()
        assert lips.shape == (30, 47) and mfcc.shape == (120, 13)
        assert kind == "own" or labels.sum() == 0
        seen.add(kind)
    assert seen == {"own", "shifted", "other_sentence", "other_speaker"}
    with pytest.raises(ValueError, match="mouth_points"):
        prepare_tracks([BenchmarkClip("x", clips[0].faces, clips[0].audio, clips[0].speech)])


def test_training_learns_synchrony_and_the_checkpoint_round_trips(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    train = [_clip(f"{s}{i}", s, rng) for s in "abcd" for i in range(4)]
    val = [_clip(f"v{i}", "v", rng) for i in range(4)]
    cfg = LipSyncConfig(
        window_frames=30, batch_size=16, steps_per_epoch=40, epochs=3, hidden=16, seed=0
    )
    model, history = train_lip_sync([prepare_tracks(train)], prepare_tracks(val), cfg, log=None)
    first, last = history[0], history[-1]
    assert last["loss"] < first["loss"]
    # own audio vs the same lips with shifted / another clip's audio; chance is ~25-35 AP
    assert last["val_shifted"] > 80 and last["val_other_sentence"] > 80
    path = tmp_path / "lip_sync.pt"
    save_lip_sync(model, cfg, history, path)
    again = load_lip_sync(path)
    lips, mfcc = prepare_tracks(val)[0].lips, prepare_tracks(val)[0].mfcc
    np.testing.assert_allclose(again.score(lips, mfcc), model.score(lips, mfcc), atol=1e-6)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lip-sync checkpoint"):
        load_lip_sync(tmp_path / "other.pt")
