"""LR-ASD: lightweight and robust active speaker detection (architecture only).

Re-implementation of Liao et al., "LR-ASD: Lightweight and Robust Network for Active Speaker
Detection", IJCV 2025, following the public code https://github.com/Junhua-Liao/LR-ASD
(``model/Encoder.py``, ``model/Classifier.py``, ``model/Model.py``, heads of ``loss.py``).
Module names here are our own; ``socialav.checkpoints.asd_reference`` maps the original keys.

Same input/output contract as Light-ASD (see ``socialav.models.light_asd``): faces
``(B, T, 112, 112)`` pixel values 0..255, MFCC ``(B, 4T, 13)``, audio-visual logits
``(B, T, 2)`` from ``av_head`` (the reference ``lossAV.FC``).

Differences from Light-ASD: each encoder block is a single chain of two spatial (or MFCC-axis)
convolutions followed by two temporal ones (kernels 5 then 3, the first spatial one halving
the channels); audio and visual embeddings are concatenated and re-weighted by a sigmoid gate
(``Fusion``) instead of summed; the backend runs two parallel 64-unit GRUs (forward and
time-reversed) and gates their concatenation again.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from socialav.models.light_asd import (
    EMBED_DIM,
    AudioVisualASD,
    ConvBN,
    spatial_max_pool,
    time_max_pool,
)


class LRASDVisualBlock(nn.Module):
    """Spatial ``k1 x k1`` (in -> out/2, optional stride 2), spatial ``k2 x k2`` (-> out),
    temporal ``k1`` and temporal ``k2`` convolutions, each with batch norm and ReLU
    (``Visual_Block`` in LR-ASD ``model/Encoder.py``). Input/output ``(B, C, T, H, W)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_1: int = 5,
        kernel_2: int = 3,
        downsample: bool = False,
    ) -> None:
        super().__init__()
        s = 2 if downsample else 1
        half = out_channels // 2
        self.spatial1 = ConvBN(3, in_channels, half, (1, kernel_1, kernel_1), (1, s, s))
        self.spatial2 = ConvBN(3, half, out_channels, (1, kernel_2, kernel_2))
        self.temporal1 = ConvBN(3, out_channels, out_channels, (kernel_1, 1, 1))
        self.temporal2 = ConvBN(3, out_channels, out_channels, (kernel_2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.spatial1, self.spatial2, self.temporal1, self.temporal2):
            x = F.relu(layer(x))
        return x


class LRASDAudioBlock(nn.Module):
    """MFCC-axis ``k1`` (in -> out/2), MFCC-axis ``k2`` (-> out), time ``k1`` and time ``k2``
    convolutions with batch norm and ReLU (``Audio_Block`` in LR-ASD ``model/Encoder.py``).
    Input/output ``(B, C, 13, N)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_1: int = 5, kernel_2: int = 3
    ) -> None:
        super().__init__()
        half = out_channels // 2
        self.mfcc1 = ConvBN(2, in_channels, half, (kernel_1, 1))
        self.mfcc2 = ConvBN(2, half, out_channels, (kernel_2, 1))
        self.temporal1 = ConvBN(2, out_channels, out_channels, (1, kernel_1))
        self.temporal2 = ConvBN(2, out_channels, out_channels, (1, kernel_2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.mfcc1, self.mfcc2, self.temporal1, self.temporal2):
            x = F.relu(layer(x))
        return x


class LRASDVisualEncoder(nn.Module):
    """``(B, 1, T, 112, 112)`` normalised faces -> ``(B, T, 128)``: three visual blocks
    (1->32 stride 2, 32->64, 64->128), spatial max pooling after the first two, global spatial
    max. Temporal receptive field: 2 + 1 frames per block on each side, 9 in all."""

    receptive_field_frames = 9

    def __init__(self) -> None:
        super().__init__()
        self.block1 = LRASDVisualBlock(1, 32, downsample=True)
        self.block2 = LRASDVisualBlock(32, 64)
        self.block3 = LRASDVisualBlock(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = spatial_max_pool(self.block1(x))
        x = spatial_max_pool(self.block2(x))
        x = self.block3(x)
        return x.amax(dim=(3, 4)).transpose(1, 2)


class LRASDAudioEncoder(nn.Module):
    """``(B, 1, 13, 4T)`` MFCC image -> ``(B, T, 128)``: three audio blocks (1->32, 32->64,
    64->128), time max pooling (stride 2) after the first two, mean over the MFCC axis."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = LRASDAudioBlock(1, 32)
        self.block2 = LRASDAudioBlock(32, 64)
        self.block3 = LRASDAudioBlock(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = time_max_pool(self.block1(x))
        x = time_max_pool(self.block2(x))
        x = self.block3(x)
        return x.mean(dim=2).transpose(1, 2)


class GatedFusion(nn.Module):
    """Concatenate two ``(B, T, C/2)`` sequences and re-weight each channel by
    ``sigmoid(BN(Conv1x1(x)))`` (``Fusion`` in LR-ASD ``model/Classifier.py``).
    Output ``(B, T, C)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = ConvBN(1, channels, channels, (1,))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        x = torch.cat((first, second), dim=2).transpose(1, 2)
        return (x * torch.sigmoid(self.gate(x))).transpose(1, 2)


class LRASDBackend(nn.Module):
    """Two parallel GRUs (``C -> C/4``; one over time, one over reversed time, reversed back)
    whose outputs are concatenated and gated by :class:`GatedFusion` (``Detector`` in LR-ASD
    ``model/Classifier.py``). Dropout 0.5 on the GRU inputs acts in training mode only.
    Input ``(B, T, C)``, output ``(B, T, C/2)``."""

    def __init__(self, channels: int = 2 * EMBED_DIM) -> None:
        super().__init__()
        self.gru_forward = nn.GRU(channels, channels // 4, num_layers=1, batch_first=True)
        self.gru_backward = nn.GRU(channels, channels // 4, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(0.5)
        self.fusion = GatedFusion(channels // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        forward_out = self.gru_forward(self.dropout(x))[0]
        reversed_in = self.dropout(torch.flip(x, dims=[1]))
        backward_out = torch.flip(self.gru_backward(reversed_in)[0], dims=[1])
        return self.fusion(forward_out, backward_out)


class LRASD(AudioVisualASD):
    """LR-ASD (Liao et al., IJCV 2025).

    Submodules: ``visual_encoder``, ``audio_encoder``, ``av_fusion`` (gated fusion of the
    concatenated audio then visual embeddings, 256 channels), ``backend``
    (:class:`LRASDBackend`, 256 -> 128), ``av_head`` (``Linear(128, 2)``, ``lossAV.FC``) and
    ``visual_head`` (``Linear(128, 2)``, ``lossV.FC``).
    """

    visual_receptive_field_frames = LRASDVisualEncoder.receptive_field_frames

    def __init__(self) -> None:
        super().__init__()
        self.visual_encoder = LRASDVisualEncoder()
        self.audio_encoder = LRASDAudioEncoder()
        self.av_fusion = GatedFusion(2 * EMBED_DIM)
        self.backend = LRASDBackend(2 * EMBED_DIM)
        self.av_head = nn.Linear(EMBED_DIM, 2)
        self.visual_head = nn.Linear(EMBED_DIM, 2)

    def decode(self, audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        # Order matters: the reference concatenates audio first, then visual.
        return self.backend(self.av_fusion(audio_embed, visual_embed))
