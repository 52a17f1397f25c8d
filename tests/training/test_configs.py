"""Every shipped training config loads, with the reference defaults it cites."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialav.training.config import ConfigError, TrainConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_loads(path):
    config = load_config(path)
    assert config.epochs >= 1


def test_ego4d_reference_defaults():
    lam = TrainConfig.from_dict({"model": {"architecture": "gaze-lstm"}})
    assert (lam.optim.lr, lam.optim.lr_decay, lam.ego4d.batch_size) == (5e-4, 1.0, 64)
    assert lam.loss.class_weights == [0.136, 0.864]
    ttm = TrainConfig.from_dict({"model": {"architecture": "quavf-audio"}})
    assert (ttm.optim.lr, ttm.optim.grad_clip, ttm.loss.class_weights) == (1e-5, 1.0, "balanced")
    with pytest.raises(ConfigError, match="class_weights"):
        TrainConfig.from_dict(
            {"model": {"architecture": "gaze-lstm"}, "loss": {"class_weights": [1]}}
        )
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"ego4d": {"frame_dir": "x"}})
