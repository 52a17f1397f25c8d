"""Loading the original Light-ASD / LR-ASD checkpoints: explicit key mapping, strict refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from socialav.checkpoints.asd_reference import (
    MODULE_KEY_MAPS,
    CheckpointMismatchError,
    detect_architecture,
    load_light_asd,
    load_lr_asd,
    read_state_dict,
    remap_state_dict,
)
from socialav.checkpoints.asd_reference import (
    load_reference_asd as load_asd_model,
)
from socialav.models.light_asd import LightASD
from socialav.models.lr_asd import LRASD

CHECKPOINTS = {
    "light-asd-ava": ("light-asd", "light-asd/pretrain_AVA_CVPR.model"),
    "light-asd-talkset": ("light-asd", "light-asd/finetuning_TalkSet.model"),
    "lr-asd-ava": ("lr-asd", "lr-asd/pretrain_AVA.model"),
    "lr-asd-talkset": ("lr-asd", "lr-asd/finetuning_TalkSet.model"),
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: the machine is shared, and oversubscription slows convs 3-4x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_every_key_is_mapped_one_to_one(weights_dir: Path, name: str) -> None:
    arch, rel = CHECKPOINTS[name]
    state = read_state_dict(weights_dir / rel)
    assert detect_architecture(state) == arch
    model = LightASD() if arch == "light-asd" else LRASD()
    mapped = remap_state_dict(state, arch, model)
    # Bijective: same number of tensors, every one of our keys provided, values untouched.
    assert len(mapped) == len(state) == len(model.state_dict())
    assert set(mapped) == set(model.state_dict())
    table = MODULE_KEY_MAPS[arch]
    assert len(set(table.values())) == len(table)
    for key, tensor in state.items():
        module, _, leaf = key.rpartition(".")
        assert mapped[f"{table[module]}.{leaf}"] is tensor


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_loaded_model_holds_checkpoint_values(weights_dir: Path, name: str) -> None:
    arch, rel = CHECKPOINTS[name]
    model = load_asd_model(weights_dir / rel)
    assert isinstance(model, LightASD if arch == "light-asd" else LRASD)
    assert not model.training
    state = read_state_dict(weights_dir / rel)
    ours = model.state_dict()
    if arch == "light-asd":
        pairs = {
            "model.visualEncoder.block2.bn_t_5.running_var": "visual_encoder.block2.branch5.temporal.bn.running_var",
            "model.audioEncoder.block3.m_3.weight": "audio_encoder.block3.branch3.mfcc.conv.weight",
            "model.GRU.gru_backward.weight_hh_l0": "backend.gru_backward.weight_hh_l0",
            "lossAV.FC.bias": "av_head.bias",
            "lossV.FC.weight": "visual_head.weight",
        }
    else:
        pairs = {
            "model.visualEncoder.block1.s_1.weight": "visual_encoder.block1.spatial1.conv.weight",
            "model.audioEncoder.block2.t_norm_2.running_mean": "audio_encoder.block2.temporal2.bn.running_mean",
            "model.fusion.attention.weight": "av_fusion.gate.conv.weight",
            "model.detector.attention.bn.bias": "backend.fusion.gate.bn.bias",
            "lossAV.FC.weight": "av_head.weight",
        }
    for ref, our in pairs.items():
        assert torch.equal(state[ref], ours[our]), (ref, our)


def test_lr_asd_checkpoint_refused_by_light_asd(weights_dir: Path) -> None:
    with pytest.raises(CheckpointMismatchError) as info:
        load_light_asd(weights_dir / "lr-asd/pretrain_AVA.model")
    err = info.value
    assert "model.visualEncoder.block1.s_1.weight" in err.unexpected
    assert "model.GRU.gru_forward.weight_ih_l0" in err.missing
    message = str(err)
    assert "unexpected keys" in message and "missing keys" in message
    assert "load it as 'lr-asd'" in message


def test_light_asd_checkpoint_refused_by_lr_asd(weights_dir: Path) -> None:
    with pytest.raises(CheckpointMismatchError, match="missing keys") as info:
        load_lr_asd(weights_dir / "light-asd/pretrain_AVA_CVPR.model")
    assert "model.fusion.attention.weight" in info.value.missing


def test_shape_mismatch_names_expected_and_found(weights_dir: Path) -> None:
    state = read_state_dict(weights_dir / "light-asd/pretrain_AVA_CVPR.model")
    state["lossAV.FC.weight"] = torch.zeros(3, 128)
    with pytest.raises(CheckpointMismatchError) as info:
        remap_state_dict(state, "light-asd", LightASD())
    assert info.value.shape_mismatches == [("lossAV.FC.weight", (2, 128), (3, 128))]
    assert info.value.missing == [] and info.value.unexpected == []
    assert "lossAV.FC.weight expected [2, 128] found [3, 128]" in str(info.value)


def test_missing_key_is_reported_under_reference_name(weights_dir: Path) -> None:
    state = read_state_dict(weights_dir / "lr-asd/pretrain_AVA.model")
    del state["model.detector.gru_backward.bias_hh_l0"]
    with pytest.raises(CheckpointMismatchError) as info:
        remap_state_dict(state, "lr-asd", LRASD())
    assert info.value.missing == ["model.detector.gru_backward.bias_hh_l0"]


def test_dataparallel_prefix_is_accepted(tmp_path: Path, weights_dir: Path) -> None:
    state = read_state_dict(weights_dir / "light-asd/pretrain_AVA_CVPR.model")
    path = tmp_path / "dp.model"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    model = load_asd_model(path)
    assert torch.equal(model.av_head.weight, state["lossAV.FC.weight"])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_asd_model(tmp_path / "nope.model")
    torch.save([torch.zeros(1)], tmp_path / "list.model")
    with pytest.raises(ValueError, match="must hold a state_dict"):
        load_asd_model(tmp_path / "list.model")
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "other.model")
    with pytest.raises(ValueError, match="cannot tell the architecture"):
        load_asd_model(tmp_path / "other.model")
    with pytest.raises(ValueError, match="architecture must be one of"):
        load_asd_model(tmp_path / "other.model", architecture="talknet")  # type: ignore[arg-type]
