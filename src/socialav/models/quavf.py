"""QuAVF: quality-aware audio-visual fusion for Ego4D Talking-to-Me (architecture only).

Source: Ego4D-QuAVF-TTM-CVPR23 (hsi-che-lin; CVPR 2023 Ego4D TTM challenge), ``model/
audioModel.py``, ``model/visualModel.py``, ``QuAVF.py``, defaults from ``common/config.py``.
Two branches trained separately, one modality each:

- **Audio branch** (``AudioBaseline``): a speech encoder over a log-mel spectrogram (the
  reference uses the frozen Whisper ``small`` encoder, 50 Hz output), ``inProj`` =
  ``Linear(enc_dim, dim)`` + ReLU, ``num_layers`` :class:`TemporalAttention` modules
  (learned positions, a class token, one multi-head self-attention; the class-token output
  is dropped after each), average pooling to the video frame rate (``AdaptiveAvgPool1d(900)``
  for 30 s at 30 fps) and ``Dropout`` + ``Linear(dim, 2)``: per-frame logits ``(B, 2, T_v)``.
  Whisper is not available here; :class:`ConvMelEncoder` (two 1-D convolutions with GELU,
  the second stride 2 -- the shape of Whisper's stem) stands in, and any module mapping
  ``(B, n_mels, T) -> (B, T', enc_dim)`` can be passed instead.
- **Visual branch** (``VisionBaseline``): an image backbone per face crop with
  ``dim`` outputs (reference: timm ``resnet50`` with ``num_classes=dim``; here our
  ResNet-18 of :mod:`socialav.models.gaze_lstm` by default), ``num_layers`` temporal attention
  modules whose class token summarises the ``feat_length`` frames, and -- with
  ``use_score`` -- the window's quality score as an input feature: ``int(score *
  score_bins)`` indexes an ``Embedding(score_bins + 1, dim)`` concatenated to the class
  token before ``Dropout`` + ``Linear(2 dim, 2)``. (The reference also builds an ``inProj``
  that its ``forward`` never uses; it is left out.)
- **Fusion** (``QuAVF.py``): ``p = (1 - q) p_audio + q p_visual`` per frame, ``q`` the
  window quality of that frame (:func:`quality_aware_fusion`).

Defaults (``common/config.py``): audio ``dim`` 768, 8 heads, 1 layer, dropout 0.25; visual
``dim`` 512, 8 heads, 1 layer, ``feat_length`` 15, ``score_bins`` 20, dropout 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from socialav.models.gaze_lstm import ResNet18

__all__ = [
    "ConvMelEncoder",
    "QuavfAudioBranch",
    "QuavfVisualBranch",
    "TemporalAttention",
    "quality_aware_fusion",
]


class TemporalAttention(nn.Module):
    """QuAVF ``TemporalModule``: learned positions, optional class token, one self-attention.

    With ``cls``: position 0 of ``Embedding(max_length + 1, dim)`` is the class token, frame
    ``t`` gets position ``t + 1`` added; the output is ``(T + 1, B, dim)`` (class token first).
    No residual connection, no feed-forward block (as the reference).

    Input ``(T, B, dim)`` (sequence first, as ``nn.MultiheadAttention``'s default).
    """

    def __init__(self, dim: int, num_heads: int, max_length: int, cls: bool = True) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads)
        self.embed = nn.Embedding(max_length + (1 if cls else 0), dim)
        self.dim = dim
        self.cls = cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.dim:
            raise ValueError(f"expected (T, B, {self.dim}), but got {tuple(x.shape)}")
        t, b, _ = x.shape
        if t + int(self.cls) > self.embed.num_embeddings:
            raise ValueError(
                f"sequence of {t} exceeds max_length {self.embed.num_embeddings - int(self.cls)}"
            )
        if self.cls:
            token = self.embed(torch.zeros(1, b, dtype=torch.long, device=x.device))
            pos = self.embed(torch.arange(1, t + 1, device=x.device)).unsqueeze(1)
            x = torch.cat([token, x + pos], dim=0)
        else:
            x = x + self.embed(torch.arange(t, device=x.device)).unsqueeze(1)
        out, _ = self.attn(x, x, x)
        return out


class ConvMelEncoder(nn.Module):
    """Stand-in for the Whisper encoder: ``(B, n_mels, T) -> (B, ceil(T / 2), dim)``.

    ``Conv1d(n_mels, dim, 3, pad 1)``, GELU, ``Conv1d(dim, dim, 3, stride 2, pad 1)``, GELU
    (Whisper's convolutional stem, without its transformer layers).
    """

    def __init__(self, n_mels: int = 80, dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.dim = dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel))))
        return x.transpose(1, 2)


class QuavfAudioBranch(nn.Module):
    """QuAVF audio branch: per-video-frame talking-to-me logits from a log-mel spectrogram.

    Args:
        encoder: ``(B, n_mels, T_mel) -> (B, T_enc, encoder_dim)``; ``None`` builds a
            :class:`ConvMelEncoder` (``n_mels``, ``encoder_dim``).
        encoder_dim: the encoder's feature size (Whisper small: 768).
        dim: branch width (768), num_heads (8), num_layers (1), dropout (0.25).
        max_length: longest encoder sequence (Whisper: 1500 for 30 s).

    ``forward(mel, num_frames)``: ``(B, n_mels, T_mel)`` -> ``(B, 2, num_frames)`` logits.
    """

    def __init__(
        self,
        encoder: nn.Module | None = None,
        *,
        n_mels: int = 80,
        encoder_dim: int = 256,
        dim: int = 768,
        num_heads: int = 8,
        num_layers: int = 1,
        dropout: float = 0.25,
        max_length: int = 1500,
    ) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else ConvMelEncoder(n_mels, encoder_dim)
        self.in_proj = nn.Sequential(nn.Linear(encoder_dim, dim), nn.ReLU())
        self.temporal = nn.ModuleList(
            [TemporalAttention(dim, num_heads, max_length) for _ in range(num_layers)]
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, 2))

    def forward(self, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        if mel.dim() != 3:
            raise ValueError(f"mel must be (B, n_mels, T), but got {tuple(mel.shape)}")
        x = self.in_proj(self.encoder(mel)).permute(1, 0, 2)  # (T, B, dim)
        for module in self.temporal:
            x = module(x)[1:]
        x = F.adaptive_avg_pool1d(x.permute(1, 2, 0), int(num_frames))  # (B, dim, T_v)
        return self.head(x.transpose(1, 2)).transpose(1, 2)  # (B, 2, T_v)


class QuavfVisualBranch(nn.Module):
    """QuAVF visual branch: one talking-to-me logit pair per window of face crops.

    Args:
        backbone: ``(B*L, 3, H, W) -> (B*L, dim)``; ``None`` builds our ResNet-18
            (:class:`~socialav.models.gaze_lstm.ResNet18` with ``dim`` outputs, width
            ``base_width``).
        dim (512), num_heads (8), num_layers (1), feat_length (15): as the reference.
        use_score: append the embedded quality score (True in the reference).
        score_bins: quality quantisation (20).
        dropout: before the head (0).

    ``forward(frames, quality)``: ``(B, L, 3, H, W)`` and ``(B,)`` scores in [0, 1] ->
    ``(B, 2)`` logits; ``L <= feat_length`` (the position table has ``feat_length + 1``
    entries, as the reference's, so QuAVF windows with ``frame_stride == 1``, which hold
    ``feat_length + 1`` frames, are rejected here as they crash there).
    """

    def __init__(
        self,
        backbone: nn.Module | None = None,
        *,
        dim: int = 512,
        num_heads: int = 8,
        num_layers: int = 1,
        feat_length: int = 15,
        use_score: bool = True,
        score_bins: int = 20,
        dropout: float = 0.0,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else ResNet18(dim, base_width)
        self.temporal = nn.ModuleList(
            [TemporalAttention(dim, num_heads, feat_length) for _ in range(num_layers)]
        )
        self.use_score = use_score
        self.score_bins = score_bins
        self.dim = dim
        if use_score:
            self.score_embed = nn.Embedding(score_bins + 1, dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * dim if use_score else dim, 2))

    def forward(self, frames: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        if frames.dim() != 5:
            raise ValueError(f"frames must be (B, L, 3, H, W), but got {tuple(frames.shape)}")
        b, length = frames.shape[:2]
        x = self.backbone(frames.reshape(b * length, *frames.shape[2:]))
        return self.forward_features(x.reshape(b, length, self.dim), quality)

    def forward_features(
        self, window_features: torch.Tensor, quality: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The branch after its backbone: ``(B, L, dim)`` per-frame features and ``(B,)``
        window quality -> ``(B, 2)`` logits (temporal attention, class token, quality
        embedding, head). Lets inference compute each frame's features once."""
        x = window_features.permute(1, 0, 2)
        cls = x[0]
        for module in self.temporal:
            out = module(x)
            x, cls = out[1:], out[0]
        if self.use_score:
            if quality is None:
                raise ValueError("quality is required when use_score is True")
            q = quality.to(window_features.device).float().clamp(0.0, 1.0)
            cls = torch.cat([cls, self.score_embed((q * self.score_bins).long())], dim=1)
        return self.head(cls)


def quality_aware_fusion(
    audio_probability: torch.Tensor, visual_probability: torch.Tensor, quality: torch.Tensor
) -> torch.Tensor:
    """QuAVF late fusion: ``(1 - q) * p_audio + q * p_visual`` (``QuAVF.py``), elementwise.

    All three tensors broadcast; ``q`` is clamped to [0, 1]. Example (hand check):
    ``p_a = 0.8, p_v = 0.2, q = 0.25`` -> ``0.75 * 0.8 + 0.25 * 0.2 = 0.65``.
    """
    q = quality.clamp(0.0, 1.0)
    return (1.0 - q) * audio_probability + q * visual_probability
