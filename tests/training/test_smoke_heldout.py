"""From-scratch smoke run on real GRID clips: the loss falls and held-out AP beats chance.

A random network scores the held-out speaker near chance (checked); after six short epochs
the held-out AP is far above it. ``model.batchnorm_momentum`` is 0.3 for this short run (the
reference 0.01 keeps running statistics near their initial 0 / 1 for ~100 steps). The visual
encoder stays at its random initialisation (frozen, embeddings cached) to keep the test fast:
the audio encoder, GRU backend and head learn from scratch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from socialav.checkpoints.format import build_model
from socialav.data.dataset import AsdEntityDataset
from socialav.data.layout import DatasetLayout
from socialav.io.ava_csv import read_ava_csv
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.losses import sync_negative_pairs, sync_negative_plan, sync_offset_nce
from socialav.training.tasks.asd import validation_map
from socialav.training.train import train

torch.set_num_threads(1)
GRID = ["grid_bbaf2n.mpg", "grid_brbk7n.mpg", "grid_lbax4n.mpg", "grid_sbia1a.mpg"]


@pytest.fixture(scope="module")
def grid_root(tmp_path_factory, videos_dir: Path, weights_dir: Path) -> Path:
    """Matched windows of 25 frames from 4 GRID speakers (own audio; speaking where the
    energy VAD finds the voice, not in the room noise before and after); one speaker held out
    as ``val``."""
    from socialav.data.talkset import SourceClip, TalkSetConfig, generate_talkset

    root = tmp_path_factory.mktemp("grid_talkset")
    config = TalkSetConfig(
        seed=3,
        val_fraction=0.25,
        window_frames_range=(25, 25),
        detect_every=5,
        mix={"matched": 1.0},
    )
    generate_talkset([SourceClip(videos_dir / name) for name in GRID], root, config)
    return root


def _values(root: Path, out: Path, **model) -> dict:
    return {
        "model": {
            "architecture": "light-asd",
            "init_weights": None,
            "trainable": ["audio_encoder", "backend", "av_head"],
            "cache_visual_embeddings": True,
            **model,
        },
        "data": {
            "root": str(root),
            "max_frames_per_batch": 40,
            "max_chunk_frames": None,
            "augment_visual": False,
            "augment_audio_noise": False,
        },
        "loss": {"visual_weight": 0.0},
        "output_dir": str(out),
        "epochs": 6,
        "seed": 1,
        "device": "cpu",
        "num_threads": 1,
    }


def test_from_scratch_loss_falls_and_heldout_ap_beats_chance(grid_root, tmp_path):
    val = read_ava_csv(DatasetLayout(grid_root).csv_path("val"), "groundtruth")
    chance = 100 * float(np.mean(val["label_id"] == 1))
    assert 5 < chance < 95  # the held-out speaker has speech and silence frames
    config = TrainConfig.from_dict(_values(grid_root, tmp_path / "run", batchnorm_momentum=0.3))
    torch.manual_seed(config.seed)  # the initialisation train() starts from
    untrained, _ = validation_map(
        build_model("light-asd"), AsdEntityDataset(grid_root, "val", max_chunk_frames=None)
    )
    assert untrained < chance + 10  # the task is not solved by a random network
    result = train(config)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    best = max(row["val_map_percent"] for row in result.history)
    assert best > chance + 15 and best > untrained + 15, (best, untrained, chance)
    # the visual embeddings were computed once and reused from the data root's cache
    assert (grid_root / "cache" / "visual_train.pt").is_file()


def test_cache_visual_embeddings_needs_a_frozen_unaugmented_encoder(grid_root, tmp_path):
    values = _values(grid_root, tmp_path, trainable=None)
    with pytest.raises(ConfigError, match="model.trainable"):
        TrainConfig.from_dict(values)
    values = _values(grid_root, tmp_path)
    values["data"]["augment_visual"] = True
    with pytest.raises(ConfigError, match="augment_visual"):
        TrainConfig.from_dict(values)
    with pytest.raises(ConfigError, match="batchnorm_momentum"):
        TrainConfig.from_dict(_values(grid_root, tmp_path, batchnorm_momentum=0.0))


def test_sync_negatives_pair_faces_with_offset_or_other_audio_without_a_seam():
    labels = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    plan = sync_negative_plan(labels, (2, 3), torch.Generator().manual_seed(0))
    assert plan.rows.tolist() == [0, 2] and plan.swap and 2 <= abs(plan.shift_frames) <= 3
    audio = torch.arange(3 * 6, dtype=torch.float32).reshape(3, 6, 1)
    visual = 100 + audio
    (shift_a, shift_v), (swap_a, swap_v) = sync_negative_pairs(audio, visual, plan)
    k = plan.shift_frames
    # shifted: faces of frame t with the audio of frame t - k, contiguous (no wrap-around)
    assert shift_a.shape == (2, 6 - abs(k), 1)
    assert ((shift_v - 100) - shift_a == k).all()
    # swapped: faces of row r with the audio of row r + 1 (mod B)
    assert swap_a[:, :, 0].tolist() == [audio[1, :, 0].tolist(), audio[0, :, 0].tolist()]
    assert swap_v[:, :, 0].tolist() == [visual[0, :, 0].tolist(), visual[2, :, 0].tolist()]
    # no speaking row: no negatives
    quiet = sync_negative_plan(torch.zeros(2, 6, dtype=torch.int64), (2, 3))
    assert sync_negative_pairs(audio[:2], visual[:2], quiet) == []


def test_sync_offset_nce_is_low_for_aligned_and_high_for_offset_embeddings():
    gen = torch.Generator().manual_seed(0)
    visual = torch.randn(2, 40, 16, generator=gen)
    speech = torch.ones(2, 40, dtype=torch.bool)
    aligned = sync_offset_nce(visual.clone(), visual, speech, 5, 0.1)
    offset = sync_offset_nce(torch.roll(visual, 3, dims=1), visual, speech, 5, 0.1)
    assert aligned is not None and offset is not None
    assert float(aligned) < 0.01 and float(offset) > 5.0
    # no speaking frame far enough from the ends: no term
    assert sync_offset_nce(visual, visual, torch.zeros_like(speech), 5) is None
    assert sync_offset_nce(visual[:, :10], visual[:, :10], speech[:, :10], 5) is None
