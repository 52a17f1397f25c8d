"""Light-ASD: a light-weight audio-visual active speaker detector (architecture only).

Re-implementation of Liao et al., "A Light Weight Model for Active Speaker Detection",
CVPR 2023, following the public code https://github.com/Junhua-Liao/Light-ASD
(``model/Encoder.py``, ``model/Classifier.py``, ``model/Model.py`` and the two linear heads of
``loss.py``). Module names here are our own; ``socialav.checkpoints.asd_reference`` maps the original
checkpoint keys onto them through an explicit table.

Inputs (the contract of the public demo ``Columbia_test.py``):

- ``faces``: ``(B, T, 112, 112)`` grayscale face crops, uint8 values (0..255) as any real dtype,
  at 25 fps. They are normalised inside the model as ``(x / 255 - 0.4161) / 0.1688``, exactly
  where the reference does it (``ASD_Model.forward_visual_frontend``).
- ``mfcc``: ``(B, 4T, 13)`` float32 MFCC at 100 Hz (``python_speech_features.mfcc`` with
  ``numcep=13, winlen=0.025, winstep=0.010`` on 16 kHz mono), 4 MFCC frames per video frame.

Output of :meth:`AudioVisualASD.forward`: ``(B, T, 2)`` float32 logits of the audio-visual head
(``lossAV.FC`` in the reference). The reference's per-frame score is the class-1 logit; the
speaking probability used in training is ``softmax(logits)[..., 1] = sigmoid(l1 - l0)``.

This module also holds the pieces shared with LR-ASD (``socialav.models.lr_asd``): the
conv + batch-norm unit and the common encoder/backend interface used by ``socialav.inference.asd``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from socialav import types

#: Pixel statistics of the grayscale face crops used for input normalisation
#: (``ASD_Model.forward_visual_frontend`` in Light-ASD and LR-ASD).
FACE_PIXEL_MEAN: float = 0.4161
FACE_PIXEL_STD: float = 0.1688
#: Side of the square face crop the models take (px), the number of MFCC coefficients of the
#: audio input, and the width of the audio-visual embedding fed to the 2-way heads.
FACE_SIZE_PX: int = types.FACE_SIZE_PX
NUM_MFCC: int = types.NUM_MFCC
EMBED_DIM: int = types.ASD_EMBED_DIM

# Batch-norm settings of every normalisation layer in both reference models.
_BN_MOMENTUM = 0.01
_BN_EPS = 0.001


class ConvBN(nn.Module):
    """A bias-free convolution followed by batch normalisation (no activation).

    Args:
        dims: 1, 2 or 3 (``nn.Conv1d``/``Conv2d``/``Conv3d`` with the matching batch norm).
        in_channels, out_channels: channel counts.
        kernel_size, stride: per-axis sizes; padding is ``kernel // 2`` on every axis
            ("same" for odd kernels), as in every convolution of the reference encoders.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        bn_cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
        if len(kernel_size) != dims:
            raise ValueError(f"kernel_size must have {dims} entries, but got {kernel_size}")
        self.conv = conv_cls(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride or (1,) * dims,
            padding=tuple(k // 2 for k in kernel_size),
            bias=False,
        )
        self.bn = bn_cls(out_channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def normalize_faces(faces: torch.Tensor) -> torch.Tensor:
    """Map ``(B, T, H, W)`` grayscale pixel values 0..255 to the ``(B, 1, T, H, W)`` float32
    input of the visual encoders: ``(x / 255 - 0.4161) / 0.1688`` (same operation order as the
    reference, so results match it bit for bit on the same backend).

    Raises:
        ValueError: if ``faces`` is not 4-D.
    """
    if faces.ndim != 4:
        raise ValueError(
            f"faces must have shape (B, T, {FACE_SIZE_PX}, {FACE_SIZE_PX}), "
            f"but got shape {tuple(faces.shape)}"
        )
    x = faces.to(torch.float32).unsqueeze(1)
    return (x / 255 - FACE_PIXEL_MEAN) / FACE_PIXEL_STD


def mfcc_to_image(mfcc: torch.Tensor) -> torch.Tensor:
    """Reshape ``(B, 4T, 13)`` MFCC to the ``(B, 1, 13, 4T)`` image the audio encoders take
    (coefficient axis first, time second), as ``forward_audio_frontend`` does.

    Raises:
        ValueError: if ``mfcc`` is not ``(B, N, 13)``.
    """
    if mfcc.ndim != 3 or mfcc.shape[-1] != NUM_MFCC:
        raise ValueError(
            f"mfcc must have shape (B, 4T, {NUM_MFCC}), but got shape {tuple(mfcc.shape)}"
        )
    return mfcc.to(torch.float32).unsqueeze(1).transpose(2, 3)


def spatial_max_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 max pooling with stride 2 over the two spatial axes of ``(B, C, T, H, W)``."""
    return F.max_pool3d(x, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


def time_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Max pooling of width 3 and stride 2 over the time axis of ``(B, C, 13, N)``: halves
    the MFCC frame rate (the reference's ``MaxPool3d((1, 1, 3), (1, 1, 2), (0, 0, 1))``)."""
    return F.max_pool2d(x, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))


class AudioVisualASD(nn.Module):
    """Interface shared by Light-ASD and LR-ASD, used by ``socialav.inference.asd``.

    Subclasses define ``visual_encoder``, ``audio_encoder``, :meth:`decode`, ``av_head`` and
    ``visual_head``, and set ``visual_receptive_field_frames`` (how many frames on each side
    of a video frame its visual embedding depends on).
    """

    #: Frames on each side of a frame that its visual embedding depends on (the temporal
    #: receptive field of the visual encoder). Windows that differ only further away than
    #: this from a frame give the same embedding for it.
    visual_receptive_field_frames: int = 0
    visual_encoder: nn.Module
    audio_encoder: nn.Module
    av_head: nn.Linear
    visual_head: nn.Linear

    def encode_visual(self, faces: torch.Tensor) -> torch.Tensor:
        """``(B, T, 112, 112)`` pixel values 0..255 -> ``(B, T, 128)`` visual embeddings."""
        return self.visual_encoder(normalize_faces(faces))

    def encode_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``(B, 4T, 13)`` MFCC -> ``(B, T, 128)`` audio embeddings."""
        return self.audio_encoder(mfcc_to_image(mfcc))

    def decode(self, audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        """Fuse ``(B, T, 128)`` audio and visual embeddings into ``(B, T, 128)`` features."""
        raise NotImplementedError

    def forward(self, faces: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """Audio-visual logits ``(B, T, 2)`` for faces ``(B, T, 112, 112)`` and MFCC
        ``(B, 4T, 13)``.

        Raises:
            ValueError: if the audio and video lengths do not give the same number of
                embedding frames (the MFCC length must be 4 times the number of faces).
        """
        audio_embed = self.encode_audio(mfcc)
        visual_embed = self.encode_visual(faces)
        if audio_embed.shape[:2] != visual_embed.shape[:2]:
            raise ValueError(
                f"mfcc (B, 4T, 13) and faces (B, T, 112, 112) must describe the same span, but "
                f"got mfcc {tuple(mfcc.shape)} and faces {tuple(faces.shape)}"
            )
        return self.av_head(self.decode(audio_embed, visual_embed))

    def visual_logits(self, faces: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, 2)`` of the visual-only head (``lossV.FC``, an auxiliary training
        head in the reference) for faces ``(B, T, 112, 112)``."""
        return self.visual_head(self.encode_visual(faces))


class LightASDVisualBlock(nn.Module):
    """One visual block: two (2+1)-D branches with 3x3 / 3-frame and 5x5 / 5-frame kernels,
    summed and mixed by a 1x1x1 convolution (``Visual_Block`` in ``model/Encoder.py``).

    Input/output ``(B, C, T, H, W)``; ``downsample`` halves H and W in the spatial convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False) -> None:
        super().__init__()
        s = 2 if downsample else 1
        self.branch3 = nn.ModuleDict(
            {
                "spatial": ConvBN(3, in_channels, out_channels, (1, 3, 3), (1, s, s)),
                "temporal": ConvBN(3, out_channels, out_channels, (3, 1, 1)),
            }
        )
        self.branch5 = nn.ModuleDict(
            {
                "spatial": ConvBN(3, in_channels, out_channels, (1, 5, 5), (1, s, s)),
                "temporal": ConvBN(3, out_channels, out_channels, (5, 1, 1)),
            }
        )
        self.fuse = ConvBN(3, out_channels, out_channels, (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for branch in (self.branch3, self.branch5):
            y = F.relu(branch["spatial"](x))
            out = out + F.relu(branch["temporal"](y))
        return F.relu(self.fuse(out))


class LightASDAudioBlock(nn.Module):
    """One audio block: two branches with 3-/5-wide kernels along the MFCC axis then along
    time, summed and mixed by a 1x1 convolution (``Audio_Block`` in ``model/Encoder.py``).

    Input/output ``(B, C, 13, N)`` (MFCC coefficient axis, MFCC frame axis).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch3 = nn.ModuleDict(
            {
                "mfcc": ConvBN(2, in_channels, out_channels, (3, 1)),
                "temporal": ConvBN(2, out_channels, out_channels, (1, 3)),
            }
        )
        self.branch5 = nn.ModuleDict(
            {
                "mfcc": ConvBN(2, in_channels, out_channels, (5, 1)),
                "temporal": ConvBN(2, out_channels, out_channels, (1, 5)),
            }
        )
        self.fuse = ConvBN(2, out_channels, out_channels, (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for branch in (self.branch3, self.branch5):
            y = F.relu(branch["mfcc"](x))
            out = out + F.relu(branch["temporal"](y))
        return F.relu(self.fuse(out))


class LightASDVisualEncoder(nn.Module):
    """``(B, 1, T, 112, 112)`` normalised faces -> ``(B, T, 128)`` (``visual_encoder``).

    Three visual blocks (1->32 with stride 2, 32->64, 64->128) with 3x3/stride-2 spatial max
    pooling after the first two, then a global spatial max. Temporal receptive field: 2 frames
    per block on each side, 6 in all.
    """

    receptive_field_frames = 6

    def __init__(self) -> None:
        super().__init__()
        self.block1 = LightASDVisualBlock(1, 32, downsample=True)
        self.block2 = LightASDVisualBlock(32, 64)
        self.block3 = LightASDVisualBlock(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = spatial_max_pool(self.block1(x))
        x = spatial_max_pool(self.block2(x))
        x = self.block3(x)
        return x.amax(dim=(3, 4)).transpose(1, 2)


class LightASDAudioEncoder(nn.Module):
    """``(B, 1, 13, 4T)`` MFCC image -> ``(B, T, 128)`` (``audio_encoder``).

    Three audio blocks (1->32, 32->64, 64->128) with time max pooling (stride 2) after the
    first two (100 Hz -> 25 Hz), then the mean over the MFCC axis.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block1 = LightASDAudioBlock(1, 32)
        self.block2 = LightASDAudioBlock(32, 64)
        self.block3 = LightASDAudioBlock(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = time_max_pool(self.block1(x))
        x = time_max_pool(self.block2(x))
        x = self.block3(x)
        return x.mean(dim=2).transpose(1, 2)


class LightASDBackend(nn.Module):
    """Bidirectional GRU backend (``BGRU`` in ``model/Classifier.py``).

    Sums the audio and visual embeddings, runs a forward GRU (128->128), GELU, then a second
    GRU over the time-reversed output of the first, reverses back and applies GELU. Note the
    two directions are stacked, not parallel as in ``nn.GRU(bidirectional=True)``.
    Input/output ``(B, T, 128)``.
    """

    def __init__(self, channels: int = EMBED_DIM) -> None:
        super().__init__()
        self.gru_forward = nn.GRU(channels, channels, num_layers=1, batch_first=True)
        self.gru_backward = nn.GRU(channels, channels, num_layers=1, batch_first=True)

    def forward(self, audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        x = audio_embed + visual_embed
        x = F.gelu(self.gru_forward(x)[0])
        x = torch.flip(self.gru_backward(torch.flip(x, dims=[1]))[0], dims=[1])
        return F.gelu(x)


class LightASD(AudioVisualASD):
    """Light-ASD (Liao et al., CVPR 2023): 1.0 M parameters.

    Submodules: ``visual_encoder`` (:class:`LightASDVisualEncoder`), ``audio_encoder``
    (:class:`LightASDAudioEncoder`), ``backend`` (:class:`LightASDBackend`), ``av_head``
    (``Linear(128, 2)``, the reference ``lossAV.FC``) and ``visual_head`` (``Linear(128, 2)``,
    ``lossV.FC``). See the module docstring for the input contract.
    """

    visual_receptive_field_frames = LightASDVisualEncoder.receptive_field_frames

    def __init__(self) -> None:
        super().__init__()
        self.visual_encoder = LightASDVisualEncoder()
        self.audio_encoder = LightASDAudioEncoder()
        self.backend = LightASDBackend(EMBED_DIM)
        self.av_head = nn.Linear(EMBED_DIM, 2)
        self.visual_head = nn.Linear(EMBED_DIM, 2)

    def decode(self, audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        return self.backend(audio_embed, visual_embed)
