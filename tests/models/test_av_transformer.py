"""AV-HuBERT-style TTM model: audio features, AV-HuBERT key layout, training smoke test."""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features
import torch

from socialav.audio.features import av_hubert_audio_features, log_mel_filterbank, stack_frames
from socialav.checkpoints.av_hubert_reference import (
    AVHubertCheckpointError,
    av_hubert_key_map,
    config_from_av_hubert_cfg,
    load_av_hubert_checkpoint,
    to_av_hubert_state_dict,
)
from socialav.models.av_transformer import AVTransformerConfig, AVTransformerTTM


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _speech_like(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 3000 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 300, n)
    return x.astype(np.int16)


@pytest.mark.parametrize("n", [16000, 12345, 400, 100])
def test_log_mel_filterbank_equals_python_speech_features(n):
    x = _speech_like(n)
    ours = log_mel_filterbank(x)
    ref = python_speech_features.logfbank(x, 16000)
    assert ours.shape == ref.shape == (max(1, 1 + int(np.ceil((n - 400) / 160))), 26)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)


def test_log_mel_filterbank_hand_computed_single_frame():
    """One 400-sample frame of a constant: pre-emphasis leaves x[0] then 0.03 x, so the
    spectrum is known in closed form: |rfft|^2 / 512 of that frame, filters from the mel
    formula (computed here independently with the mel/bin definitions)."""
    x = np.full(400, 1000.0)
    y = np.concatenate([[1000.0], np.full(399, 1000.0 * 0.03)])
    power = np.abs(np.fft.rfft(y, 512)) ** 2 / 512
    mel = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 28)
    bins = np.floor(513 * 700 * (10 ** (mel / 2595) - 1) / 16000)
    expected = []
    for j in range(26):
        w = np.zeros(257)
        for i in range(257):
            if bins[j] <= i < bins[j + 1]:
                w[i] = (i - bins[j]) / (bins[j + 1] - bins[j])
            elif bins[j + 1] <= i < bins[j + 2]:
                w[i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
        expected.append(np.log(max(power @ w, np.finfo(float).eps)))
    np.testing.assert_allclose(log_mel_filterbank(x)[0], expected, rtol=1e-5)


def test_stack_frames_and_audio_features():
    feats = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    stacked = stack_frames(feats, 4)
    assert stacked.shape == (3, 8)
    np.testing.assert_array_equal(stacked[0], [0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(stacked[2], [16, 17, 18, 19, 0, 0, 0, 0])
    audio = av_hubert_audio_features(_speech_like(16000), num_frames=30)
    assert audio.shape == (30, 104) and audio.dtype == np.float32
    np.testing.assert_allclose(audio[:20].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(audio[:20].std(axis=1), 1, atol=1e-3)
    assert av_hubert_audio_features(_speech_like(16000), num_frames=20).shape == (20, 104)


# --- key layout --------------------------------------------------------------------------------

#: The real AV-HuBERT parameter names of one basic block (``avhubert/resnet.py``), a
#: downsampling block, the stem, and one fairseq encoder layer, written out by hand.
_BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
_BLOCK = (
    ["conv1.weight"]
    + [f"bn1.{s}" for s in _BN]
    + ["relu1.weight", "conv2.weight"]
    + [f"bn2.{s}" for s in _BN]
    + ["relu2.weight"]
)
_DOWNSAMPLE = ["downsample.0.weight"] + [f"downsample.1.{s}" for s in _BN]
_LAYER = [f"self_attn.{p}_proj.{s}" for p in ("k", "v", "q", "out") for s in ("weight", "bias")] + [
    f"{m}.{s}"
    for m in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm")
    for s in ("weight", "bias")
]


def _real_av_hubert_keys(num_layers: int) -> set[str]:
    video = "feature_extractor_video.resnet."
    keys = {video + "frontend3D.0.weight", video + "frontend3D.2.weight"}
    keys |= {video + f"frontend3D.1.{s}" for s in _BN}
    for layer in (1, 2, 3, 4):
        for block in (0, 1):
            prefix = f"{video}trunk.layer{layer}.{block}."
            keys |= {prefix + s for s in _BLOCK}
            if layer > 1 and block == 0:
                keys |= {prefix + s for s in _DOWNSAMPLE}
    keys |= {
        "feature_extractor_video.proj.weight",
        "feature_extractor_video.proj.bias",
        "feature_extractor_audio.proj.weight",
        "feature_extractor_audio.proj.bias",
        "layer_norm.weight",
        "layer_norm.bias",
        "post_extract_proj.weight",
        "post_extract_proj.bias",
        "encoder.pos_conv.0.bias",
        "encoder.pos_conv.0.weight_g",
        "encoder.pos_conv.0.weight_v",
        "encoder.layer_norm.weight",
        "encoder.layer_norm.bias",
    }
    for n in range(num_layers):
        keys |= {f"encoder.layers.{n}.{s}" for s in _LAYER}
    return keys


def test_key_map_gives_the_real_av_hubert_names():
    model = AVTransformerTTM(AVTransformerConfig.debug())
    mapping = av_hubert_key_map(model.backbone)
    assert set(mapping.values()) == _real_av_hubert_keys(num_layers=2)
    assert len(mapping) == len(model.backbone.state_dict())


def test_base_size_matches_av_hubert_base_shapes():
    """Shapes of a few Base tensors as in AV-HuBERT Base (768-d, 104-d audio, 512-d ResNet)."""
    sd = to_av_hubert_state_dict(AVTransformerTTM(AVTransformerConfig.base()).backbone)
    assert set(sd) == _real_av_hubert_keys(num_layers=12)
    assert sd["feature_extractor_video.resnet.frontend3D.0.weight"].shape == (64, 1, 5, 7, 7)
    assert sd["feature_extractor_audio.proj.weight"].shape == (768, 104)
    assert sd["feature_extractor_video.proj.weight"].shape == (768, 512)
    assert sd["post_extract_proj.weight"].shape == (768, 1536)
    assert sd["encoder.pos_conv.0.weight_v"].shape == (768, 48, 128)
    assert sd["encoder.pos_conv.0.weight_g"].shape == (1, 1, 128)


def _inputs(batch=2, steps=12, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    lips = torch.randint(0, 256, (batch, steps, size, size), generator=g).float()
    audio = torch.randn(batch, steps, 104, generator=g)
    return lips, audio


def _save_av_hubert_layout(model, path, finetuned=False, extra=None):
    sd = to_av_hubert_state_dict(model.backbone)
    sd.update(mask_emb=torch.zeros(104), **{"final_proj.weight": torch.zeros(3, 32)})
    if finetuned:
        sd = {"encoder.w2v_model." + k: v for k, v in sd.items()}
        sd["decoder.embed_tokens.weight"] = torch.zeros(5, 32)
    sd.update(extra or {})
    cfg = {
        "model": {
            "encoder_embed_dim": 32,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_embed_dim": 64,
            "conv_pos": 16,
            "conv_pos_groups": 4,
        }
    }
    torch.save({"model": sd, "cfg": cfg}, path)


@pytest.mark.parametrize("finetuned", [False, True])
def test_checkpoint_round_trip_reproduces_outputs(tmp_path, finetuned):
    cfg = AVTransformerConfig.debug()
    torch.manual_seed(1)
    source = AVTransformerTTM(cfg).eval()
    # non-trivial batch-norm statistics and PReLU slopes
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
        if isinstance(module, torch.nn.PReLU):
            module.weight.data.uniform_(0.1, 0.4)
    path = tmp_path / "avhubert.pt"
    _save_av_hubert_layout(source, path, finetuned=finetuned)
    loaded = load_av_hubert_checkpoint(path, config=cfg).eval()
    loaded.head.load_state_dict(source.head.state_dict())  # the head is not in AV-HuBERT files
    lips, audio = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(lips, audio), source(lips, audio), rtol=0, atol=0)


def test_checkpoint_errors_name_missing_unexpected_and_shapes(tmp_path):
    cfg = AVTransformerConfig.debug()
    model = AVTransformerTTM(cfg)
    path = tmp_path / "bad.pt"
    _save_av_hubert_layout(model, path, extra={"encoder.layers.7.fc1.weight": torch.zeros(1)})
    with pytest.raises(AVHubertCheckpointError, match=r"unexpected keys \['encoder.layers.7"):
        load_av_hubert_checkpoint(path, config=cfg)
    sd = to_av_hubert_state_dict(model.backbone)
    del sd["encoder.layers.1.fc2.bias"]
    torch.save({"model": sd}, path)
    with pytest.raises(
        AVHubertCheckpointError, match=r"missing keys \['encoder.layers.1.fc2.bias'\]"
    ):
        load_av_hubert_checkpoint(path, config=cfg)
    with pytest.raises(AVHubertCheckpointError, match="shape mismatches"):
        _save_av_hubert_layout(model, path)
        load_av_hubert_checkpoint(
            path,
            config=AVTransformerConfig.debug().__class__(
                embed_dim=48,
                num_layers=2,
                num_heads=2,
                ffn_dim=64,
                resnet_channels=(8, 16, 32, 64),
                conv_pos=16,
                conv_pos_groups=4,
            ),
        )
    torch.save({"model": sd}, path)
    with pytest.raises(AVHubertCheckpointError, match="no 'cfg'"):
        load_av_hubert_checkpoint(path)


def test_config_from_cfg_reads_sizes_and_finetuned_nesting():
    cfg = config_from_av_hubert_cfg(
        {
            "model": {
                "w2v_args": {
                    "model": {
                        "encoder_embed_dim": 1024,
                        "encoder_layers": 24,
                        "encoder_attention_heads": 16,
                        "encoder_ffn_embed_dim": 4096,
                        "layer_norm_first": True,
                    }
                }
            }
        }
    )
    assert cfg == AVTransformerConfig.large()


# --- model behaviour and training ---------------------------------------------------------------


def test_padding_does_not_change_the_segment_logit():
    model = AVTransformerTTM(AVTransformerConfig.debug()).eval()
    lips, audio = _inputs(batch=1, steps=8)
    padded_lips = torch.cat([lips, torch.zeros(1, 4, 40, 40)], dim=1)
    padded_audio = torch.cat([audio, torch.zeros(1, 4, 104)], dim=1)
    with torch.no_grad():
        plain = model(lips, audio)
        padded = model(padded_lips, padded_audio, lengths=torch.tensor([8]))
    # the ResNet and the position convolution see the padding only beyond the valid steps'
    # receptive field in time (stem kernel 5, pos conv 16): compare with a tolerance
    torch.testing.assert_close(padded, plain, atol=0.5, rtol=0)
    with pytest.raises(ValueError, match="lengths"):
        model(lips, audio, lengths=torch.tensor([9]))
    with pytest.raises(ValueError, match="same B and T"):
        model(lips, audio[:, :5])
    with torch.no_grad():  # one modality missing: zeros in its place (extract_finetune)
        assert model(None, audio).shape == (1,) and model(lips, None).shape == (1,)


def test_training_smoke_loss_falls():
    """Tiny synthetic TTM task: the label is whether the audio carries a fixed pattern."""
    torch.manual_seed(0)
    model = AVTransformerTTM(AVTransformerConfig.debug())
    lips, audio = _inputs(batch=8, steps=10, size=32, seed=3)
    labels = torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0])
    audio = audio + labels[:, None, None] * 2.0
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(lips, audio), labels)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
