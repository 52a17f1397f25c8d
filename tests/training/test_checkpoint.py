"""Self-describing checkpoints, initial weights, freezing."""

from __future__ import annotations

import pytest
import torch

from socialav.checkpoints.asd_reference import load_light_asd
from socialav.checkpoints.format import (
    INPUT_CONTRACT,
    CheckpointError,
    load_model_checkpoint,
    save_model_checkpoint,
)
from socialav.models.light_asd import LightASD
from socialav.training.checkpoint import load_initial_model
from socialav.training.engine import apply_trainable
from socialav.training.tasks.asd import TrainingHeads, _set_train_mode

torch.set_num_threads(1)


def test_checkpoint_describes_itself_and_refuses_mismatch(tmp_path):
    torch.manual_seed(0)
    model = LightASD()
    path = save_model_checkpoint(
        tmp_path / "m.pt", model, training_data="GRID windows", metrics={"epoch": 2}
    )
    loaded, meta = load_model_checkpoint(path, "light-asd")
    assert meta["architecture"] == "light-asd"
    assert meta["input_contract"] == INPUT_CONTRACT
    assert meta["training_data"] == "GRID windows" and meta["metrics"]["epoch"] == 2
    assert meta["socialav_version"] and meta["torch_version"] == torch.__version__
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    with pytest.raises(CheckpointError, match="'light-asd' model, but a 'talknet'"):
        load_model_checkpoint(path, "talknet")
    obj = torch.load(path, weights_only=True)
    obj["input_contract"]["fps"] = 30.0
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="fps: expected 25.0, found 30.0"):
        load_model_checkpoint(tmp_path / "bad.pt")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a socialav checkpoint"):
        load_model_checkpoint(tmp_path / "plain.pt")


def test_initial_model_from_registry_and_original_file(weights_dir):
    from_registry = load_initial_model("light-asd-ava", "light-asd")
    direct = load_light_asd(weights_dir / "light-asd" / "pretrain_AVA_CVPR.model")
    for k, v in direct.state_dict().items():
        assert torch.equal(v, from_registry.state_dict()[k])
    with pytest.raises(FileNotFoundError, match="neither a file nor a registry name"):
        load_initial_model("no-such-weights", "light-asd")


def test_freezing_trains_only_chosen_parts():
    torch.manual_seed(0)
    model = LightASD()
    trainable = apply_trainable(model, ["audio_encoder", "backend", "av_head"])
    assert trainable and all(
        n.split(".")[0] in {"audio_encoder", "backend", "av_head"} for n in trainable
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _set_train_mode(model, ["audio_encoder", "backend", "av_head"], freeze_bn=True)
    assert not model.visual_encoder.block1.branch3.spatial.bn.training
    assert model.audio_encoder.block1.branch3.mfcc.bn.training
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    av, vis = TrainingHeads(model)(torch.rand(2, 6, 112, 112) * 255, torch.randn(2, 24, 13))[:2]
    (av.sum() + vis.sum()).backward()
    opt.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("visual_"))
    assert not torch.equal(before["av_head.weight"], after["av_head.weight"])
    with pytest.raises(ValueError, match="match no parameter"):
        apply_trainable(model, ["decoder"])


def test_first_format_checkpoint_starts_a_training_run(weights_dir, tmp_path):
    """A checkpoint of the first format (socialav-asd-checkpoint, as light-asd-sync shipped in
    session 1) still starts a training run; so does the shipped light-asd-sync."""
    from socialav.checkpoints.format import read_checkpoint
    from socialav.hub import resolve_weights
    from socialav.training.checkpoint import load_initial_model

    payload = torch.load(resolve_weights("light-asd-sync"), weights_only=True)
    payload["format"] = "socialav-asd-checkpoint"
    payload["format_version"] = 1
    old = tmp_path / "first_format.pt"
    torch.save(payload, old)
    assert read_checkpoint(old)["format"] == "socialav-asd-checkpoint"
    model = load_initial_model(str(old), "light-asd")
    assert type(model).__name__ == "LightASD"
    assert type(load_initial_model("light-asd-sync", "light-asd")).__name__ == "LightASD"
