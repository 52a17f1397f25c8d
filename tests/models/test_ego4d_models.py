"""GazeLSTM and QuAVF architectures: shapes, reference parameter names, fusion formula."""

from __future__ import annotations

import pytest
import torch

from socialav.models.gaze_lstm import GazeLSTM, ResNet18, gaze_lstm_state_dict
from socialav.models.quavf import (
    QuavfAudioBranch,
    QuavfVisualBranch,
    TemporalAttention,
    quality_aware_fusion,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_resnet18_has_the_reference_size_and_names():
    net = ResNet18(num_outputs=3)  # Gaze360's resnet18: fc1 512->1000, fc2 1000->3
    state = net.state_dict()
    # torchvision ResNet-18 trunk (11,176,512 weights without fc) + fc1 + fc2
    trunk = sum(v.numel() for k, v in net.named_parameters() if not k.startswith("fc"))
    assert trunk == 11_176_512
    assert state["fc1.weight"].shape == (1000, 512) and state["fc2.weight"].shape == (3, 1000)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert "layer1.0.bn1.running_mean" in state and "layer1.0.downsample.0.weight" not in state


def test_gaze_lstm_shapes_and_reference_keys():
    torch.manual_seed(0)
    model = GazeLSTM().eval()
    keys = set(model.state_dict())
    assert {"base_model.fc2.weight", "lstm.weight_ih_l1_reverse", "last_layer.weight"} <= keys
    assert model.state_dict()["base_model.fc2.weight"].shape == (256, 1000)
    assert model.state_dict()["lstm.weight_ih_l1"].shape == (4 * 256, 512)
    with torch.no_grad():
        out = model(torch.randn(2, 7, 3, 64, 64))
    assert out.shape == (2, 2)
    baseline = GazeLSTM(head="baseline")
    assert {"last_layer1.weight", "last_layer2.weight"} <= set(baseline.state_dict())
    with pytest.raises(ValueError, match=r"\(N, T, 3, H, W\)"):
        model(torch.randn(2, 3, 64, 64))


def test_gaze_lstm_uses_the_centre_frame_output():
    torch.manual_seed(0)
    model = GazeLSTM(img_feature_dim=16, base_width=8).eval()
    x = torch.randn(1, 7, 3, 32, 32)
    with torch.no_grad():
        base = model.base_model(x[0]).view(1, 7, 16)
        lstm_out, _ = model.lstm(base)
        want = model.last_layer(lstm_out[:, 3])
        torch.testing.assert_close(model(x), want)


def test_reference_checkpoint_layout_loads_strictly(tmp_path):
    torch.manual_seed(0)
    source = GazeLSTM(img_feature_dim=16, base_width=8)
    # the reference saves {"epoch", "state_dict" (DDP: "module." prefix), "mAP"}
    ckpt = {
        "epoch": 3,
        "mAP": 0.78,
        "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
    }
    path = tmp_path / "epoch_3.pth"
    torch.save(ckpt, path)
    target = GazeLSTM(img_feature_dim=16, base_width=8)
    target.load_state_dict(gaze_lstm_state_dict(torch.load(path, weights_only=True)), strict=True)
    for k, v in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[k], v)
    broken = gaze_lstm_state_dict(ckpt)
    broken.pop("last_layer.bias")
    with pytest.raises(RuntimeError, match="Missing key.*last_layer.bias"):
        target.load_state_dict(broken, strict=True)


def test_temporal_attention_class_token_and_positions():
    torch.manual_seed(0)
    module = TemporalAttention(dim=8, num_heads=2, max_length=4)
    out = module(torch.randn(4, 3, 8))
    assert out.shape == (5, 3, 8)  # class token first
    with pytest.raises(ValueError, match="exceeds max_length 4"):
        module(torch.randn(5, 3, 8))


def test_quavf_branch_shapes_and_score_input():
    torch.manual_seed(0)
    visual = QuavfVisualBranch(dim=16, num_heads=4, feat_length=5, base_width=8).eval()
    frames = torch.randn(3, 5, 3, 32, 32)
    with torch.no_grad():
        low = visual(frames, torch.tensor([0.0, 0.0, 0.0]))
        high = visual(frames, torch.tensor([1.0, 1.0, 1.0]))
    assert low.shape == (3, 2)
    assert not torch.allclose(low, high)  # the quality score is an input feature
    # int(0.37 * 20) = 7: score bin 7 is used
    emb = visual.score_embed(torch.tensor([7]))
    with torch.no_grad():
        a = visual(frames[:1], torch.tensor([0.37]))
        b = visual(frames[:1], torch.tensor([0.399]))  # int(7.98) = 7: same bin
    torch.testing.assert_close(a, b)
    assert emb.shape == (1, 16)
    audio = QuavfAudioBranch(n_mels=80, encoder_dim=16, dim=16, num_heads=4).eval()
    with torch.no_grad():
        out = audio(torch.randn(2, 80, 300), num_frames=90)
    assert out.shape == (2, 2, 90)


def test_quality_aware_fusion_formula():
    # (1 - q) * p_a + q * p_v: 0.75 * 0.8 + 0.25 * 0.2 = 0.65; q = 1 -> visual; q = 0 -> audio
    pa = torch.tensor([0.8, 0.8, 0.8])
    pv = torch.tensor([0.2, 0.2, 0.2])
    q = torch.tensor([0.25, 1.0, 0.0])
    torch.testing.assert_close(quality_aware_fusion(pa, pv, q), torch.tensor([0.65, 0.2, 0.8]))
