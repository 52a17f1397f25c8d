"""TalkNet: long-term audio-visual active speaker detection (architecture only).

Re-implementation of Tao et al., "Is Someone Speaking? Exploring Long-term Temporal Features
for Audio-visual Active Speaker Detection", ACM MM 2021, following the public code
https://github.com/TaoRuijie/TalkNet-ASD (``model/talkNetModel.py``, ``model/visualEncoder.py``,
``model/audioEncoder.py``, ``model/attentionLayer.py`` and the linear heads of ``loss.py``).
Module names are our own; :mod:`socialav.checkpoints.talknet_reference` maps the original checkpoint
keys onto them through an explicit table.

Structure (about 15 M parameters):

- visual front-end: 3D convolution (5x7x7, 64 channels) + 2D ResNet-18 per frame -> 512-d;
- visual temporal network: 5 depthwise-separable residual 1D convolutions (V-TCN), then a
  1D convolution head 512 -> 256 -> 128;
- audio encoder: ResNet-34-style with squeeze-and-excitation blocks on the MFCC image
  (channels 16/32/64/128), mean over the MFCC axis -> 128-d at 25 Hz;
- audio-visual cross-attention (audio attends to video and video to audio, 128-d, 8 heads);
- self-attention backend over the concatenated 256-d features;
- heads: ``av_head`` Linear(256, 2) (``lossAV.FC``), ``audio_head`` Linear(128, 2)
  (``lossA.FC``), ``visual_head`` Linear(128, 2) (``lossV.FC``); the auxiliary heads act on the
  cross-attended embeddings, as in the reference ``talkNet.train_network``.

Input contract: as Light-ASD (``socialav.models.light_asd``): faces ``(B, T, 112, 112)`` gray
values 0..255 normalised inside as ``(x / 255 - 0.4161) / 0.1688``; MFCC ``(B, 4T, 13)``.

One deliberate difference: the reference visual front-end flattens the batch into a single
time axis before its 3D convolution (``visualFrontend.forward`` transposes ``(B*T, 1, 1, H, W)``
to ``(1, 1, B*T, H, W)``), so with ``B > 1`` the 5-frame temporal kernel mixes the last frames
of one sequence with the first of the next. Here each sequence is convolved on its own; for
``B = 1`` (the reference's evaluation and demo) both are identical.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from socialav.models.light_asd import EMBED_DIM, AudioVisualASD

__all__ = [
    "TalkNet",
    "TalkNetAudioEncoder",
    "TalkNetVisualFrontend",
    "TalkNetVisualTemporal",
    "TalkNetVisualEncoder",
    "AttentionLayer",
    "TalkNetOutputs",
]

# Batch-norm settings of the visual front-end (``visualEncoder.py``); the other norms use
# PyTorch's defaults, as in the reference.
_BN_MOMENTUM = 0.01
_BN_EPS = 0.001


class ResNetLayer(nn.Module):
    """Two residual units of the visual ResNet-18 (``ResNetLayer`` in ``visualEncoder.py``).

    ``conv-bn-relu -> conv -> (+ shortcut) -> bn-relu`` twice. ``shortcut`` (a bias-free 1x1
    convolution) is used only when ``stride != 1``; it exists for every layer because the
    reference creates it unconditionally and its checkpoints hold its weight.
    Input ``(N, C_in, H, W)`` -> ``(N, C_out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1a = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1a = nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.conv2a = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
        self.out_bn_a = nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.conv1b = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn1b = nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.conv2b = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.out_bn_b = nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2a(F.relu(self.bn1a(self.conv1a(x))))
        y = y + (x if self.stride == 1 else self.shortcut(x))
        mid = y
        y = F.relu(self.out_bn_a(y))
        y = self.conv2b(F.relu(self.bn1b(self.conv1b(y))))
        return F.relu(self.out_bn_b(y + mid))


class TalkNetVisualFrontend(nn.Module):
    """``(B, 1, T, 112, 112)`` normalised faces -> ``(B, T, 512)`` (``visualFrontend``).

    3D convolution 1->64, kernel (5, 7, 7), stride (1, 2, 2), batch norm, ReLU, 3x3/stride-2
    spatial max pooling (112 -> 28), then a 2D ResNet-18 per frame (28 -> 4) and a 4x4 average.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem_conv = nn.Conv3d(1, 64, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False)
        self.stem_bn = nn.BatchNorm3d(64, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.layer1 = ResNetLayer(64, 64, 1)
        self.layer2 = ResNetLayer(64, 128, 2)
        self.layer3 = ResNetLayer(128, 256, 2)
        self.layer4 = ResNetLayer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape[:3]
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        x = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))
        channels, height, width = x.shape[1], x.shape[3], x.shape[4]
        x = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        x = F.avg_pool2d(x, kernel_size=4, stride=1)
        return x.reshape(batch, frames, 512)


class GlobalLayerNorm(nn.Module):
    """Global layer norm over channels and time of ``(B, C, T)`` with per-channel gain and
    bias (``GlobalLayerNorm`` in ``visualEncoder.py``; variance epsilon 1e-8)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mean = y.mean(dim=1, keepdim=True).mean(dim=2, keepdim=True)
        var = (y - mean).pow(2).mean(dim=1, keepdim=True).mean(dim=2, keepdim=True)
        return self.gamma * (y - mean) / torch.pow(var + 1e-8, 0.5) + self.beta


class DSConvBlock(nn.Module):
    """Residual depthwise-separable 1D convolution (``DSConv1d``): ReLU, batch norm, depthwise
    conv (kernel 3), PReLU, global layer norm, pointwise conv; plus the input. ``(B, 512, T)``."""

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)
        self.depthwise = nn.Conv1d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.prelu = nn.PReLU()
        self.norm = GlobalLayerNorm(channels)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.bn(F.relu(x)))
        return self.pointwise(self.norm(self.prelu(y))) + x


class TalkNetVisualTemporal(nn.Module):
    """``(B, T, 512)`` -> ``(B, T, 128)``: V-TCN (5 :class:`DSConvBlock`, ``visualTCN``) then
    ``visualConv1D`` (conv 512->256 kernel 5, batch norm, ReLU, conv 256->128 kernel 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.tcn = nn.ModuleList(DSConvBlock(512) for _ in range(5))
        self.proj_conv1 = nn.Conv1d(512, 256, 5, 1, 2)
        self.proj_bn = nn.BatchNorm1d(256)
        self.proj_conv2 = nn.Conv1d(256, 128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        for block in self.tcn:
            x = block(x)
        x = self.proj_conv2(F.relu(self.proj_bn(self.proj_conv1(x))))
        return x.transpose(1, 2)


class TalkNetVisualEncoder(nn.Module):
    """``(B, 1, T, 112, 112)`` normalised faces -> ``(B, T, 128)``: :class:`TalkNetVisualFrontend`
    (``frontend``) then :class:`TalkNetVisualTemporal` (``temporal``)."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = TalkNetVisualFrontend()
        self.temporal = TalkNetVisualTemporal()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.frontend(x))


class SqueezeExcitation(nn.Module):
    """Channel gating (``SELayer``, reduction 8): global average, FC, ReLU, FC, sigmoid."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class SEBasicBlock(nn.Module):
    """Residual block of the audio encoder (``SEBasicBlock``): conv3x3 -> ReLU -> BN (ReLU
    before the norm, as in the reference) -> conv3x3 -> BN -> SE, plus a (1x1 conv + BN)
    shortcut when the shape changes, then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int] = (1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcitation(out_channels)
        self.shortcut: nn.Sequential | None = None
        if tuple(stride) != (1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(F.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + residual)


class TalkNetAudioEncoder(nn.Module):
    """``(B, 1, 13, 4T)`` MFCC image -> ``(B, T, 128)`` (``audioEncoder(layers=[3, 4, 6, 3],
    num_filters=[16, 32, 64, 128])``): 7x7 conv with stride (2, 1), BN, ReLU, four stages of
    :class:`SEBasicBlock` (strides 1, 2, 2, 1), mean over the MFCC axis."""

    def __init__(
        self,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        channels: tuple[int, ...] = (16, 32, 64, 128),
    ) -> None:
        super().__init__()
        self.stem_conv = nn.Conv2d(1, channels[0], 7, (2, 1), 3, bias=False)
        self.stem_bn = nn.BatchNorm2d(channels[0])
        strides = ((1, 1), (2, 2), (2, 2), (1, 1))
        stages = []
        in_channels = channels[0]
        for num_blocks, out_channels, stride in zip(layers, channels, strides, strict=True):
            blocks = [SEBasicBlock(in_channels, out_channels, stride)]
            blocks += [SEBasicBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)
        for module in self.modules():  # the reference's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=2).transpose(1, 2)


class AttentionLayer(nn.Module):
    """Transformer-style attention layer (``attentionLayer`` in ``attentionLayer.py``).

    ``forward(src, tar)`` with ``(B, T, C)`` inputs: multi-head attention with ``tar`` as the
    query and ``src`` as key and value, dropout, residual on ``src``, layer norm, then a
    ReLU feed-forward network (``4C`` hidden), dropout, residual, layer norm. Dropout 0.1.
    """

    def __init__(self, d_model: int, num_heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout)
        self.ff1 = nn.Linear(d_model, 4 * d_model)
        self.ff2 = nn.Linear(4 * d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, tar: torch.Tensor) -> torch.Tensor:
        src = src.transpose(0, 1)
        tar = tar.transpose(0, 1)
        attended = self.attention(tar, src, src, need_weights=False)[0]
        src = self.norm1(src + self.dropout1(attended))
        ff = self.ff2(self.dropout(F.relu(self.ff1(src))))
        src = self.norm2(src + self.dropout2(ff))
        return src.transpose(0, 1)


class TalkNetOutputs(tuple):
    """``(av_logits, audio_logits, visual_logits)``: ``(B, T, 2)`` each (see
    :meth:`TalkNet.forward_heads`)."""


class TalkNet(AudioVisualASD):
    """TalkNet (Tao et al., ACM MM 2021); see the module docstring.

    Submodules: ``visual_encoder`` (``frontend`` + ``temporal``), ``audio_encoder``, ``cross_a2v``,
    ``cross_v2a``, ``self_av``, ``av_head`` (256 -> 2), ``audio_head`` and ``visual_head``
    (128 -> 2). :meth:`forward` gives the ``(B, T, 2)`` audio-visual logits (class 1 =
    speaking) for faces ``(B, T, 112, 112)`` and MFCC ``(B, 4T, 13)``.
    """

    #: 3D conv (2) + V-TCN (5 x 1) + visualConv1D (2) frames on each side; the attention
    #: backend then sees the whole window.
    visual_receptive_field_frames = 9

    def __init__(self) -> None:
        super().__init__()
        self.visual_encoder = TalkNetVisualEncoder()
        self.audio_encoder = TalkNetAudioEncoder()
        self.cross_a2v = AttentionLayer(EMBED_DIM, 8)
        self.cross_v2a = AttentionLayer(EMBED_DIM, 8)
        self.self_av = AttentionLayer(2 * EMBED_DIM, 8)
        self.av_head = nn.Linear(2 * EMBED_DIM, 2)
        self.audio_head = nn.Linear(EMBED_DIM, 2)
        self.visual_head = nn.Linear(EMBED_DIM, 2)

    def cross_attend(
        self, audio_embed: torch.Tensor, visual_embed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention (``forward_cross_attention``): ``(B, T, 128)`` each -> the audio
        embedding attended by video and the visual embedding attended by audio."""
        audio_c = self.cross_a2v(src=audio_embed, tar=visual_embed)
        visual_c = self.cross_v2a(src=visual_embed, tar=audio_embed)
        return audio_c, visual_c

    def decode(self, audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        """Cross-attention, concatenation and self-attention: ``(B, T, 256)`` features."""
        audio_c, visual_c = self.cross_attend(audio_embed, visual_embed)
        fused = torch.cat((audio_c, visual_c), dim=2)
        return self.self_av(src=fused, tar=fused)

    def forward_heads(self, faces: torch.Tensor, mfcc: torch.Tensor) -> TalkNetOutputs:
        """All three training outputs in one pass, as ``talkNet.train_network`` computes them.

        Returns:
            ``(av_logits, audio_logits, visual_logits)``, each ``(B, T, 2)``; the audio and
            visual logits come from the cross-attended embeddings.

        Raises:
            ValueError: mismatched audio/video lengths (see :meth:`forward`).
        """
        audio_embed = self.encode_audio(mfcc)
        visual_embed = self.encode_visual(faces)
        if audio_embed.shape[:2] != visual_embed.shape[:2]:
            raise ValueError(
                f"mfcc (B, 4T, 13) and faces (B, T, 112, 112) must describe the same span, but "
                f"got mfcc {tuple(mfcc.shape)} and faces {tuple(faces.shape)}"
            )
        audio_c, visual_c = self.cross_attend(audio_embed, visual_embed)
        fused = torch.cat((audio_c, visual_c), dim=2)
        av = self.av_head(self.self_av(src=fused, tar=fused))
        return TalkNetOutputs((av, self.audio_head(audio_c), self.visual_head(visual_c)))
