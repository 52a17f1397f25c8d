"""TalkNet architecture: shapes, size, and the original checkpoint key layout."""

from __future__ import annotations

import pytest
import torch

from socialav.checkpoints.asd_reference import CheckpointMismatchError
from socialav.checkpoints.talknet_reference import (
    load_talknet,
    talknet_from_reference_state_dict,
    talknet_to_reference_state_dict,
)
from socialav.models.talknet import TalkNet

torch.set_num_threads(1)


def reference_keys() -> set[str]:
    """Key names of the original TalkNet checkpoints, written out from the module tree of
    TaoRuijie/TalkNet-ASD (model/visualEncoder.py, audioEncoder.py, attentionLayer.py,
    talkNetModel.py, loss.py), independently of our key map."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"model.visualFrontend.frontend3D.0.weight"}
    keys |= {f"model.visualFrontend.frontend3D.1.{p}" for p in bn}
    for i in (1, 2, 3, 4):
        pre = f"model.visualFrontend.resnet.layer{i}"
        for conv in ("conv1a", "conv2a", "downsample", "conv1b", "conv2b"):
            keys.add(f"{pre}.{conv}.weight")
        for norm in ("bn1a", "outbna", "bn1b", "outbnb"):
            keys |= {f"{pre}.{norm}.{p}" for p in bn}
    for k in range(5):
        pre = f"model.visualTCN.net.{k}.net"
        keys |= {f"{pre}.1.{p}" for p in bn}
        keys |= {f"{pre}.2.weight", f"{pre}.3.weight", f"{pre}.4.gamma", f"{pre}.4.beta"}
        keys.add(f"{pre}.5.weight")
    keys |= {"model.visualConv1D.net.0.weight", "model.visualConv1D.net.0.bias"}
    keys |= {f"model.visualConv1D.net.1.{p}" for p in bn}
    keys |= {"model.visualConv1D.net.3.weight", "model.visualConv1D.net.3.bias"}
    keys.add("model.audioEncoder.conv1.weight")
    keys |= {f"model.audioEncoder.bn1.{p}" for p in bn}
    for layer, blocks in zip((1, 2, 3, 4), (3, 4, 6, 3), strict=True):
        for j in range(blocks):
            pre = f"model.audioEncoder.layer{layer}.{j}"
            keys |= {f"{pre}.conv1.weight", f"{pre}.conv2.weight"}
            keys |= {f"{pre}.bn1.{p}" for p in bn} | {f"{pre}.bn2.{p}" for p in bn}
            keys |= {f"{pre}.se.fc.{m}.{p}" for m in (0, 2) for p in ("weight", "bias")}
            if j == 0 and layer > 1:  # stride or width change
                keys.add(f"{pre}.downsample.0.weight")
                keys |= {f"{pre}.downsample.1.{p}" for p in bn}
    for att in ("crossA2V", "crossV2A", "selfAV"):
        pre = f"model.{att}"
        keys |= {f"{pre}.self_attn.in_proj_weight", f"{pre}.self_attn.in_proj_bias"}
        keys |= {f"{pre}.self_attn.out_proj.weight", f"{pre}.self_attn.out_proj.bias"}
        for m in ("linear1", "linear2", "norm1", "norm2"):
            keys |= {f"{pre}.{m}.weight", f"{pre}.{m}.bias"}
    for head in ("lossAV", "lossA", "lossV"):
        keys |= {f"{head}.FC.weight", f"{head}.FC.bias"}
    return keys


def test_forward_shapes_and_size():
    model = TalkNet().eval()
    faces = torch.randint(0, 256, (2, 6, 112, 112)).float()
    mfcc = torch.randn(2, 24, 13)
    assert model(faces, mfcc).shape == (2, 6, 2)
    av, audio, visual = model.forward_heads(faces, mfcc)
    assert av.shape == audio.shape == visual.shape == (2, 6, 2)
    # The paper reports 15.01 M (the reference prints params / 1024 / 1024).
    num = sum(p.numel() for p in model.parameters())
    assert 15.0 < num / 1024 / 1024 < 15.1
    with pytest.raises(ValueError, match="same span"):
        model(faces, torch.randn(2, 20, 13))


def test_sequences_in_a_batch_are_independent():
    model = TalkNet().eval()
    faces = torch.randint(0, 256, (2, 5, 112, 112)).float()
    mfcc = torch.randn(2, 20, 13)
    with torch.no_grad():
        both = model(faces, mfcc)
        first = model(faces[:1], mfcc[:1])
    torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-4)


def test_reference_key_layout_matches_reference_code():
    ref = talknet_to_reference_state_dict(TalkNet())
    assert set(ref) == reference_keys()


def test_original_layout_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    source = TalkNet().eval()
    for m in source.modules():  # non-default running stats, so a wrong map would show
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    path = tmp_path / "pretrain_TalkSet.model"
    ref = talknet_to_reference_state_dict(source)
    torch.save({f"module.{k}": v for k, v in ref.items()}, path)  # DataParallel prefix too
    loaded = load_talknet(path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    faces = torch.randint(0, 256, (1, 4, 112, 112)).float()
    mfcc = torch.randn(1, 16, 13)
    with torch.no_grad():
        assert torch.equal(source(faces, mfcc), loaded(faces, mfcc))


def test_mismatch_names_keys():
    ref = talknet_to_reference_state_dict(TalkNet())
    ref.pop("lossA.FC.bias")
    ref["model.extra.weight"] = torch.zeros(1)
    ref["lossAV.FC.weight"] = torch.zeros(2, 128)
    with pytest.raises(CheckpointMismatchError) as info:
        talknet_from_reference_state_dict(ref)
    err = info.value
    assert err.missing == ["lossA.FC.bias"]
    assert err.unexpected == ["model.extra.weight"]
    assert err.shape_mismatches == [("lossAV.FC.weight", (2, 256), (2, 128))]
    assert "lossA.FC.bias" in str(err) and "model.extra.weight" in str(err)
