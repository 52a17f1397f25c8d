"""Losses vs hand computation, the temperature schedule, and the typed config."""

from __future__ import annotations

import json
import math

import pytest
import torch

from socialav.training.config import ConfigError, LossConfig, TrainConfig, load_config
from socialav.training.losses import asd_loss, frame_accuracy, softmax_bce, temperature


def test_temperature_schedule():
    assert temperature(1) == pytest.approx(1.3)
    assert temperature(2) == pytest.approx(1.28)
    assert temperature(30) == pytest.approx(0.72)
    with pytest.raises(ValueError, match="1-based"):
        temperature(0)
    with pytest.raises(ValueError, match="not positive"):
        temperature(70)


def test_softmax_bce_by_hand():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    labels = torch.tensor([1, 0, 1])
    r = 1.3
    # softmax(x / r)[1] = 1 / (1 + exp((x0 - x1) / r))
    p = [1 / (1 + math.exp(-1 / r)), 1 / (1 + math.exp(3 / r)), 0.5]
    expected = -(math.log(p[0]) + math.log(1 - p[1]) + math.log(p[2])) / 3
    assert softmax_bce(logits, labels, r).item() == pytest.approx(expected, rel=1e-6)
    # ...which is what the reference computes: BCELoss on softmax(x / r)[:, 1]
    ref = torch.nn.BCELoss()(torch.softmax(logits / r, -1)[:, 1], labels.float())
    assert softmax_bce(logits, labels, r).item() == pytest.approx(ref.item(), rel=1e-6)
    # r = 1 is TalkNet's cross-entropy
    ce = torch.nn.CrossEntropyLoss()(logits, labels)
    assert softmax_bce(logits, labels, 1.0).item() == pytest.approx(ce.item(), rel=1e-6)
    # the tie (0.5) rounds to 0 as torch.round does in the reference: 2 of 3 correct
    assert frame_accuracy(logits, labels).item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="matching labels"):
        softmax_bce(logits, labels[:2])


def test_asd_loss_weights():
    torch.manual_seed(0)
    av, vis, aud = torch.randn(2, 5, 2), torch.randn(2, 5, 2), torch.randn(2, 5, 2)
    labels = torch.randint(0, 2, (2, 5))
    terms = asd_loss(av, labels, vis, None, LossConfig(), epoch=3)
    r = 1.3 - 0.02 * 2
    assert terms.temperature == pytest.approx(r)
    want = softmax_bce(av, labels, r) + 0.5 * softmax_bce(vis, labels, r)
    assert terms.total.item() == pytest.approx(want.item(), rel=1e-6)
    talknet = TrainConfig.from_dict({"model": {"architecture": "talknet"}}).loss
    terms = asd_loss(av, labels, vis, aud, talknet, epoch=5)
    ce = torch.nn.CrossEntropyLoss()
    want = ce(av.reshape(-1, 2), labels.reshape(-1)) + 0.4 * (
        ce(aud.reshape(-1, 2), labels.reshape(-1)) + ce(vis.reshape(-1, 2), labels.reshape(-1))
    )
    assert terms.total.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match="audio head"):
        asd_loss(av, labels, vis, None, talknet, epoch=1)


def test_config_defaults_and_errors(tmp_path):
    light = TrainConfig.from_dict({"data": {"root": "x"}})
    assert (light.optim.lr, light.optim.lr_decay, light.loss.visual_weight) == (1e-3, 0.95, 0.5)
    talk = TrainConfig.from_dict({"model": {"architecture": "talknet"}})
    assert (talk.optim.lr, talk.loss.audio_weight, talk.loss.temperature_start) == (1e-4, 0.4, 1.0)
    with pytest.raises(ConfigError, match="unknown keys \\['lr_rate'\\]"):
        TrainConfig.from_dict({"optim": {"lr_rate": 1}})
    with pytest.raises(ConfigError, match="model.architecture"):
        TrainConfig.from_dict({"model": {"architecture": "resnet"}})
    with pytest.raises(ConfigError, match="reaches"):
        TrainConfig.from_dict({"epochs": 80})
    (tmp_path / "c.yaml").write_text("data:\n  root: /data\nepochs: 2\n")
    assert load_config(tmp_path / "c.yaml").epochs == 2
    (tmp_path / "c.json").write_text(json.dumps({"seed": 3}))
    assert load_config(tmp_path / "c.json", {"epochs": 4}).epochs == 4
