"""The scene-context (TalkNet+DeiT) model trains through ``socialav train``'s engine."""

from __future__ import annotations

import math

import pytest
import torch

from socialav.checkpoints.format import load_model_checkpoint
from socialav.checkpoints.load import load_asd_model
from socialav.data.dataset import AsdEntityDataset
from socialav.models.scene_context import SceneContextASD, SceneViTConfig
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.tasks.asd import predict_dataset
from socialav.training.train import train

SCENE = {"image_size_px": 32, "patch_size_px": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def _config(root, out, **model) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {
                "architecture": "scene-context",
                "architecture_config": {"base": "light-asd", "scene": SCENE},
                "init_weights": "light-asd-ava",
                "trainable": ["scene_encoder", "context_proj", "context_head", "base.av_head"],
                **model,
            },
            "data": {
                "root": str(root),
                "max_frames_per_batch": 40,
                "max_chunk_frames": None,
                "augment_visual": False,
            },
            "optim": {"lr": 1e-3},
            "output_dir": str(out),
            "epochs": 2,
            "seed": 3,
            "num_threads": 1,
        }
    )


def test_scene_context_fine_tune_from_light_asd(tiny_scene_root, tmp_path, weights_dir):
    torch.set_num_threads(1)
    result = train(_config(tiny_scene_root, tmp_path / "run", cache_visual_embeddings=True))
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    assert all(r["train_loss_context"] > 0 for r in result.history)  # the auxiliary loss ran
    model, meta = load_model_checkpoint(result.best_checkpoint, "scene-context")
    assert isinstance(model, SceneContextASD)
    assert meta["architecture_config"] == {
        "base": "light-asd",
        "scene": {**SCENE, "mlp_ratio": 4.0, "dropout": 0.0},
    }
    assert meta["input_contract"]["scene_size_px"] == 32
    # the frozen parts are the published weights; the context branch has moved off zero
    published = load_asd_model(weights_dir / "light-asd" / "pretrain_AVA_CVPR.model", "light-asd")
    for name, tensor in published.visual_encoder.state_dict().items():
        assert torch.equal(tensor, model.base.visual_encoder.state_dict()[name]), name
    assert model.context_proj.weight.abs().sum() > 0
    # the scores of the trained model depend on the scene
    val = AsdEntityDataset(
        tiny_scene_root, "val", max_chunk_frames=None, scenes=True, scene_size_px=32
    )
    scores = predict_dataset(model, val)["score"].to_numpy()
    model.context_proj.weight.data.zero_()
    model.context_proj.bias.data.zero_()
    plain = predict_dataset(model, val)["score"].to_numpy()
    assert abs(scores - plain).max() > 1e-6


def test_untrained_scene_branch_scores_like_its_base(tiny_scene_root, weights_dir):
    from socialav.training.checkpoint import load_initial_model

    model = load_initial_model("light-asd-ava", "scene-context", {"scene": SCENE})
    base = load_initial_model("light-asd-ava", "light-asd")
    val = AsdEntityDataset(
        tiny_scene_root, "val", max_chunk_frames=None, scenes=True, scene_size_px=32
    )
    plain = AsdEntityDataset(tiny_scene_root, "val", max_chunk_frames=None)
    a = predict_dataset(model, val)["score"].to_numpy()
    b = predict_dataset(base, plain)["score"].to_numpy()
    assert a == pytest.approx(b, abs=1e-6)
    assert SceneViTConfig(**SCENE).image_size_px == model.scene_size_px


def test_scene_context_cache_rejects_a_trainable_visual_encoder(tiny_scene_root, tmp_path):
    with pytest.raises(ConfigError, match="visual_encoder"):
        _config(
            tiny_scene_root,
            tmp_path / "x",
            cache_visual_embeddings=True,
            trainable=["base.visual_encoder", "scene_encoder"],
        )
