"""An AV-HuBERT-style audio-visual transformer with a segment-level Talking-to-Me head.

Architecture of AV-HuBERT (Shi, Hsu, Lakhotia and Mohamed, "Learning Audio-Visual Speech
Representation by Masked Multimodal Cluster Prediction", ICLR 2022; code
``facebookresearch/av_hubert``, ``avhubert/hubert.py`` ``AVHubertModel`` and
``avhubert/resnet.py`` ``ResEncoder``), as used for Ego4D Talking-to-Me by seed 000 (an
AV-HuBERT encoder fine-tuned with a binary head on face-track segments):

* lip stream: ``(B, T, 88, 88)`` grayscale lip/face crops at 25 fps, normalised as
  ``(x / 255 - 0.421) / 0.165``; a 3-D convolution stem (1 -> 64 channels, kernel 5x7x7,
  stride 1x2x2, batch norm, PReLU, 3x3 spatial max pool) then a 2-D ResNet-18 trunk applied
  per frame (four stages of two basic blocks, 64/128/256/512 channels, global average pool),
  then a linear projection to the model width (``feature_extractor_video``);
* audio stream: 26 log-mel filterbank energies at 100 Hz (:func:`log_mel_filterbank`,
  ``python_speech_features.logfbank`` semantics), 4 consecutive frames stacked into one 104-d
  vector at 25 Hz (:func:`stack_frames`), normalised per frame (``F.layer_norm`` without
  affine, AV-HuBERT's ``normalize: true``), then a linear projection
  (``feature_extractor_audio``);
* fusion: concatenation (audio first), LayerNorm over the 2D features, linear projection to
  D (``layer_norm``, ``post_extract_proj``);
* encoder: fairseq's wav2vec 2.0 ``TransformerEncoder``: a convolutional relative position
  embedding (grouped, weight-normalised Conv1d of kernel 128, the last output dropped for even
  kernels, GELU) added to the input, then post-norm (Base) or pre-norm (Large,
  ``layer_norm_first``) transformer layers;
* head (ours, seed 000's task): masked mean over time -> dropout -> linear -> one TTM logit
  per segment.

Sizes: :meth:`AVTransformerConfig.base` (768-d, 12 layers), ``large`` (1024, 24, pre-norm),
``debug`` (tiny, for tests). Checkpoint loading: :mod:`socialav.checkpoints.av_hubert_reference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LIP_PIXEL_MEAN",
    "LIP_PIXEL_STD",
    "AVTransformerConfig",
    "LipResNet",
    "AVHubertBackbone",
    "AVTransformerTTM",
    "build_av_transformer",
]

#: Grayscale pixel statistics of AV-HuBERT's lip crops (``image_mean``/``image_std`` in
#: ``avhubert/hubert_pretraining.py``, applied after dividing by 255).
LIP_PIXEL_MEAN: float = 0.421
LIP_PIXEL_STD: float = 0.165


# --- audio features ---------------------------------------------------------------------------


# --- architecture -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AVTransformerConfig:
    """Sizes of the AV transformer (defaults: AV-HuBERT Base, ``conf/pretrain/base_*.yaml``).

    Attributes:
        embed_dim, num_layers, num_heads, ffn_dim: transformer width, depth, heads, FFN width.
        layer_norm_first: pre-norm layers (AV-HuBERT Large) instead of post-norm (Base).
        resnet_channels: channels of the four ResNet-18 stages (the stem has the first).
        relu_type: ``"prelu"`` (AV-HuBERT's ``resnet_relu_type``) or ``"relu"``.
        audio_feat_dim: stacked filterbank size (26 x 4).
        conv_pos, conv_pos_groups: kernel and groups of the convolutional position embedding.
        dropout, attention_dropout, activation_dropout: fairseq's dropouts (0.1, 0.1, 0.0).
        head_dropout: dropout before the TTM head.
    """

    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    layer_norm_first: bool = False
    resnet_channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    relu_type: str = "prelu"
    audio_feat_dim: int = 104
    conv_pos: int = 128
    conv_pos_groups: int = 16
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    head_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by conv_pos_groups "
                f"({self.conv_pos_groups})"
            )
        if self.relu_type not in ("prelu", "relu"):
            raise ValueError(f"relu_type must be 'prelu' or 'relu', but got {self.relu_type!r}")
        if len(self.resnet_channels) != 4:
            raise ValueError(f"resnet_channels must have 4 entries, got {self.resnet_channels}")

    @classmethod
    def base(cls) -> AVTransformerConfig:
        """AV-HuBERT Base: 768-d, 12 layers, 12 heads, FFN 3072, post-norm (103 M params)."""
        return cls()

    @classmethod
    def large(cls) -> AVTransformerConfig:
        """AV-HuBERT Large: 1024-d, 24 layers, 16 heads, FFN 4096, pre-norm."""
        return cls(embed_dim=1024, num_layers=24, num_heads=16, ffn_dim=4096, layer_norm_first=True)

    @classmethod
    def debug(cls) -> AVTransformerConfig:
        """A tiny model for tests (32-d, 2 layers, ResNet widths 8/16/32/64)."""
        return cls(
            embed_dim=32,
            num_layers=2,
            num_heads=2,
            ffn_dim=64,
            resnet_channels=(8, 16, 32, 64),
            conv_pos=16,
            conv_pos_groups=4,
        )


def _activation(kind: str, channels: int) -> nn.Module:
    return nn.PReLU(num_parameters=channels) if kind == "prelu" else nn.ReLU()


class BasicBlock(nn.Module):
    """ResNet basic block (``avhubert/resnet.py`` ``BasicBlock``): conv3x3-BN-act-conv3x3-BN,
    plus the shortcut (1x1 conv + BN when the shape changes), then act. ``(N, C, H, W)``."""

    def __init__(self, in_channels: int, channels: int, stride: int, relu_type: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = _activation(relu_type, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = _activation(relu_type, channels)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module(
                "conv", nn.Conv2d(in_channels, channels, 1, stride, bias=False)
            )
            self.shortcut.add_module("bn", nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.act2(out + residual)


class LipResNet(nn.Module):
    """AV-HuBERT's visual front-end (``ResEncoder``): ``(B, 1, T, H, W)`` normalised crops ->
    ``(B, T, C4)`` per-frame features (``C4 = resnet_channels[-1]``, 512 for ResNet-18)."""

    def __init__(self, channels: tuple[int, int, int, int], relu_type: str = "prelu") -> None:
        super().__init__()
        c0 = channels[0]
        self.stem = nn.Sequential()
        self.stem.add_module(
            "conv", nn.Conv3d(1, c0, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False)
        )
        self.stem.add_module("bn", nn.BatchNorm3d(c0))
        self.stem.add_module("act", _activation(relu_type, c0))
        self.stem.add_module("pool", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        stages = []
        in_channels = c0
        for index, width in enumerate(channels):
            stride = 1 if index == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(in_channels, width, stride, relu_type),
                    BasicBlock(width, width, 1, relu_type),
                )
            )
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        x = self.stem(x)  # (B, C, T, H', W')
        steps = x.shape[2]
        x = x.transpose(1, 2).reshape(batch * steps, x.shape[1], x.shape[3], x.shape[4])
        for stage in self.stages:
            x = stage(x)
        x = x.mean(dim=(2, 3))
        return x.reshape(batch, steps, -1)


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight normalisation over all axes but the kernel axis
    (``torch.nn.utils.weight_norm(conv, dim=2)`` as fairseq's ``pos_conv``): the weight is
    ``weight_g * weight_v / ||weight_v||`` with the norm over the output and input channels
    for each kernel tap. Parameters ``weight_g (1, 1, K)``, ``weight_v (C, C/groups, K)``,
    ``bias (C,)``."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        std = math.sqrt(4.0 / (kernel_size * channels))  # fairseq's init (dropout 0)
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel_size) * std)
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class ConvPositionEmbedding(nn.Module):
    """fairseq wav2vec 2.0 ``pos_conv``: weight-normed grouped conv, drop the last output for
    even kernels (``SamePad``), GELU. ``(B, T, D)`` -> ``(B, T, D)``."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.conv = WeightNormConv1d(channels, kernel_size, groups)
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.remove:
            y = y[:, :, : -self.remove]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v/out projections (fairseq
    ``MultiheadAttention``: ``q`` scaled by ``head_dim ** -0.5``)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        batch, steps, dim = x.shape
        split = lambda t: t.view(batch, steps, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        mask = None if padding_mask is None else ~padding_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(batch, steps, dim))


class EncoderLayer(nn.Module):
    """fairseq ``TransformerSentenceEncoderLayer`` (GELU FFN), post- or pre-norm."""

    def __init__(self, cfg: AVTransformerConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg.embed_dim, cfg.num_heads, cfg.attention_dropout)
        self.attn_norm = nn.LayerNorm(cfg.embed_dim)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.ffn_norm = nn.LayerNorm(cfg.embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.activation_dropout = nn.Dropout(cfg.activation_dropout)
        self.pre_norm = cfg.layer_norm_first

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(F.gelu(self.fc1(x)))))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attn(self.attn_norm(x), padding_mask))
            return x + self._ffn(self.ffn_norm(x))
        x = self.attn_norm(x + self.dropout(self.attn(x, padding_mask)))
        return self.ffn_norm(x + self._ffn(x))


class TransformerEncoder(nn.Module):
    """fairseq wav2vec 2.0 ``TransformerEncoder``: ``x + pos_conv(x)`` (padded steps zeroed
    first), LayerNorm before the layers (post-norm) or after them (pre-norm)."""

    def __init__(self, cfg: AVTransformerConfig) -> None:
        super().__init__()
        self.pos_conv = ConvPositionEmbedding(cfg.embed_dim, cfg.conv_pos, cfg.conv_pos_groups)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.pre_norm = cfg.layer_norm_first

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x)
        if not self.pre_norm:
            x = self.norm(x)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, padding_mask)
        return self.norm(x) if self.pre_norm else x


class AVHubertBackbone(nn.Module):
    """AV-HuBERT's encoder (``AVHubertModel.extract_finetune`` without masking): lip crops
    and stacked filterbanks -> ``(B, T, D)`` contextual features. Either modality may be
    missing (zeros in its place, as ``extract_finetune`` does)."""

    def __init__(self, cfg: AVTransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.lip_encoder = LipResNet(cfg.resnet_channels, cfg.relu_type)
        self.video_proj = nn.Linear(self.lip_encoder.out_channels, cfg.embed_dim)
        self.audio_proj = nn.Linear(cfg.audio_feat_dim, cfg.embed_dim)
        self.fusion_norm = nn.LayerNorm(2 * cfg.embed_dim)
        self.fusion_proj = nn.Linear(2 * cfg.embed_dim, cfg.embed_dim)
        self.encoder = TransformerEncoder(cfg)

    def forward(
        self,
        lips: torch.Tensor | None,
        audio: torch.Tensor | None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            lips: ``(B, T, H, W)`` grayscale crops, pixel values 0..255 (AV-HuBERT: 88x88),
                or None.
            audio: ``(B, T, 104)`` normalised stacked filterbanks
                (:func:`av_hubert_audio_features`), or None.
            padding_mask: ``(B, T)`` bool, True at padded steps.

        Returns:
            ``(B, T, D)`` float32.

        Raises:
            ValueError: both inputs missing, or their batch/length disagree.
        """
        if lips is None and audio is None:
            raise ValueError("give lips, audio or both; both were None")
        video_feat = audio_feat = None
        if lips is not None:
            if lips.ndim != 4:
                raise ValueError(f"lips must be (B, T, H, W), but got {tuple(lips.shape)}")
            x = (lips.to(torch.float32)[:, None] / 255.0 - LIP_PIXEL_MEAN) / LIP_PIXEL_STD
            video_feat = self.video_proj(self.lip_encoder(x))
        if audio is not None:
            if audio.ndim != 3 or audio.shape[-1] != self.config.audio_feat_dim:
                raise ValueError(
                    f"audio must be (B, T, {self.config.audio_feat_dim}), but got "
                    f"{tuple(audio.shape)}"
                )
            audio_feat = self.audio_proj(audio.to(torch.float32))
        if video_feat is None:
            video_feat = torch.zeros_like(audio_feat)
        if audio_feat is None:
            audio_feat = torch.zeros_like(video_feat)
        if audio_feat.shape[:2] != video_feat.shape[:2]:
            raise ValueError(
                "lips (B, T, H, W) and audio (B, T, 104) must have the same B and T, but got "
                f"{tuple(lips.shape)} and {tuple(audio.shape)}"
            )
        fused = self.fusion_proj(self.fusion_norm(torch.cat([audio_feat, video_feat], dim=-1)))
        return self.encoder(fused, padding_mask)


class AVTransformerTTM(nn.Module):
    """AV-HuBERT-style Talking-to-Me classifier: :class:`AVHubertBackbone` + masked mean over
    time + linear head -> one logit per segment (``sigmoid`` = P(talking to me)).

    Submodules: ``backbone`` (loadable from AV-HuBERT checkpoints) and ``head``
    (``Linear(D, 1)``, trained for TTM).
    """

    def __init__(self, config: AVTransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or AVTransformerConfig()
        self.backbone = AVHubertBackbone(self.config)
        self.head_dropout = nn.Dropout(self.config.head_dropout)
        self.head = nn.Linear(self.config.embed_dim, 1)

    def forward(
        self,
        lips: torch.Tensor | None,
        audio: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Segment logits ``(B,)`` for lips ``(B, T, H, W)`` (0..255) and audio ``(B, T, 104)``;
        ``lengths`` ``(B,)`` gives the valid frames of padded segments (default: all T).

        Raises:
            ValueError: bad shapes, or a length outside ``[1, T]``.
        """
        ref = lips if lips is not None else audio
        if ref is None:
            raise ValueError("give lips, audio or both; both were None")
        batch, steps = ref.shape[:2]
        padding_mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=ref.device)
            if lengths.shape != (batch,) or (lengths < 1).any() or (lengths > steps).any():
                raise ValueError(f"lengths must be (B,) = ({batch},) values in [1, {steps}]")
            padding_mask = torch.arange(steps, device=ref.device)[None, :] >= lengths[:, None]
        feats = self.backbone(lips, audio, padding_mask)
        if padding_mask is None:
            pooled = feats.mean(dim=1)
        else:
            keep = (~padding_mask).to(feats.dtype)[..., None]
            pooled = (feats * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(self.head_dropout(pooled)).squeeze(-1)


def build_av_transformer(**config: object) -> AVTransformerTTM:
    """An :class:`AVTransformerTTM` from :class:`AVTransformerConfig` fields (the
    ``av-transformer`` registry builder; ``{}`` gives AV-HuBERT Base sizes). A
    ``resnet_channels`` list (as JSON stores it) is accepted.

    Raises:
        TypeError: unknown fields. ValueError: values :class:`AVTransformerConfig` rejects.
    """
    fields = dict(config)
    if "resnet_channels" in fields:
        fields["resnet_channels"] = tuple(fields["resnet_channels"])  # type: ignore[arg-type]
    return AVTransformerTTM(AVTransformerConfig(**fields))  # type: ignore[arg-type]
