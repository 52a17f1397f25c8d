"""Scene context for active speaker detection: a small ViT/DeiT over the full frame, fused
into an ASD model's back-end (TalkNet+DeiT, architecture only).

Clarke, Gotoh and Goetze, "Improving Audiovisual Active Speaker Detection in Egocentric
Recordings with the Data-Efficient Image Transformer", ASRU 2023 (``jclarke98/TalkNet-DeiT``,
seed 002): a DeiT encodes the full-scene image of each frame and its embedding is injected
into TalkNet's back-end, with an auxiliary context loss (``--contextLossContribution``, 0.3
in ``trainTalkNetDeiT.py``), to compensate for the noise of egocentric recordings. The
repository's model file is published only as bytecode (``model/__pycache__``), so the fusion
below follows the paper's description, not its code.

Scene encoder (:class:`SceneViT`): a ViT (Dosovitskiy et al., ICLR 2021) in the DeiT
configuration (Touvron et al., ICML 2021, ``deit_tiny_patch16_224``: 192-d, 12 blocks,
3 heads, MLP ratio 4, pre-norm blocks, class token, learned position embeddings, LayerNorm
eps 1e-6), written in plain torch (timm needs torchvision, which is unusable here). Input:
``(B, T, 3, S, S)`` RGB in ``[0, 1]``, normalised inside with the ImageNet statistics DeiT
uses; output: the class token per frame, ``(B, T, embed_dim)``. The default image side is
112 px (49 patches) to keep it affordable on a CPU; ``SceneViTConfig.deit_tiny()`` gives the
224-px DeiT-Tiny.

Fusion (:class:`SceneContextASD`): the scene embedding is projected to the ASD embedding
width (128) and added to the visual embedding before the base model's back-end
(``decode(audio, visual + W c)``); ``W`` starts at zero, so an untrained context branch leaves a
pretrained Light-ASD/TalkNet exactly as it was and fine-tuning starts from it. The auxiliary
context head predicts speaking from the scene embedding alone (its BCE is the context loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from socialav.models.light_asd import EMBED_DIM, AudioVisualASD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SceneViTConfig",
    "SceneViT",
    "SceneContextASD",
    "scene_frames",
    "CONTEXT_LOSS_WEIGHT",
    "context_losses",
]

#: ImageNet RGB statistics used by DeiT's pre-processing.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Weight of the auxiliary context loss in TalkNet+DeiT (``trainTalkNetDeiT.py``).
CONTEXT_LOSS_WEIGHT: float = 0.3


@dataclass(frozen=True)
class SceneViTConfig:
    """ViT sizes (defaults: DeiT-Tiny widths on 112-px images).

    Attributes:
        image_size_px: side of the square input image.
        patch_size_px: side of a patch (must divide ``image_size_px``).
        embed_dim, depth, num_heads, mlp_ratio: transformer width, blocks, heads, MLP ratio.
        dropout: dropout on the embeddings and inside the MLP (DeiT: 0).
    """

    image_size_px: int = 112
    patch_size_px: int = 16
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.image_size_px % self.patch_size_px:
            raise ValueError(
                f"patch_size_px ({self.patch_size_px}) must divide image_size_px "
                f"({self.image_size_px})"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size_px // self.patch_size_px) ** 2

    @classmethod
    def deit_tiny(cls) -> SceneViTConfig:
        """DeiT-Tiny (``deit_tiny_patch16_224``): 224 px, 16-px patches, 192-d, 12 blocks."""
        return cls(image_size_px=224)

    @classmethod
    def debug(cls) -> SceneViTConfig:
        """A tiny ViT for tests: 32 px, 8-px patches, 32-d, 2 blocks, 2 heads."""
        return cls(image_size_px=32, patch_size_px=8, embed_dim=32, depth=2, num_heads=2)


class ViTBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, ``x + MLP(LN(x))`` (GELU MLP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.dropout(self.attn(y, y, y, need_weights=False)[0])
        return x + self.dropout(self.mlp(self.norm2(x)))


class SceneViT(nn.Module):
    """ViT/DeiT scene encoder: ``(N, 3, S, S)`` RGB in [0, 1] -> ``(N, embed_dim)`` class
    token after the final LayerNorm (see the module docstring)."""

    def __init__(self, config: SceneViTConfig | None = None) -> None:
        super().__init__()
        cfg = config or SceneViTConfig()
        self.config = cfg
        self.patch_embed = nn.Conv2d(
            3, cfg.embed_dim, kernel_size=cfg.patch_size_px, stride=cfg.patch_size_px
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, cfg.embed_dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            ViTBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.dropout)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size_px
        if images.ndim != 4 or images.shape[1:] != (3, size, size):
            raise ValueError(
                f"images must have shape (N, 3, {size}, {size}), but got {tuple(images.shape)}"
            )
        x = (images.to(torch.float32) - self.mean) / self.std
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, P, D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


class SceneContextASD(nn.Module):
    """An ASD model whose back-end also sees a full-scene embedding (TalkNet+DeiT fusion).

    Args:
        base: a Light-ASD / LR-ASD / TalkNet model (:class:`AudioVisualASD`), pretrained or not.
        scene: the scene encoder (default :class:`SceneViT` with :class:`SceneViTConfig`).

    Submodules: ``base``, ``scene_encoder``, ``context_proj`` (``Linear(D_scene, 128)``,
    zero-initialised) and ``context_head`` (``Linear(D_scene, 2)``, the auxiliary context
    head). :meth:`forward` returns ``(B, T, 2)`` audio-visual logits like the base model.
    """

    def __init__(self, base: AudioVisualASD, scene: SceneViT | None = None) -> None:
        super().__init__()
        self.base = base
        self.scene_encoder = scene or SceneViT()
        dim = self.scene_encoder.config.embed_dim
        self.context_proj = nn.Linear(dim, EMBED_DIM)
        nn.init.zeros_(self.context_proj.weight)
        nn.init.zeros_(self.context_proj.bias)
        self.context_head = nn.Linear(dim, 2)

    def encode_scene(self, scenes: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` RGB in [0, 1] -> ``(B, T, D_scene)`` per-frame embeddings."""
        if scenes.ndim != 5:
            raise ValueError(f"scenes must be (B, T, 3, S, S), but got {tuple(scenes.shape)}")
        batch, steps = scenes.shape[:2]
        return self.scene_encoder(scenes.flatten(0, 1)).view(batch, steps, -1)

    def forward_all(
        self, faces: torch.Tensor, mfcc: torch.Tensor, scenes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Audio-visual, visual-only and context logits, each ``(B, T, 2)``.

        Args:
            faces: ``(B, T, 112, 112)`` gray face crops 0..255.
            mfcc: ``(B, 4T, 13)`` MFCC.
            scenes: ``(B, T, 3, S, S)`` full frames in [0, 1] (:func:`scene_frames`).

        Raises:
            ValueError: the three inputs do not describe the same ``B`` and ``T``.
        """
        audio_embed = self.base.encode_audio(mfcc)
        visual_embed = self.base.encode_visual(faces)
        context = self.encode_scene(scenes)
        if not (audio_embed.shape[:2] == visual_embed.shape[:2] == context.shape[:2]):
            raise ValueError(
                "faces (B, T, ...), mfcc (B, 4T, 13) and scenes (B, T, 3, S, S) must describe "
                f"the same span, but got {tuple(faces.shape)}, {tuple(mfcc.shape)}, "
                f"{tuple(scenes.shape)}"
            )
        fused = self.base.decode(audio_embed, visual_embed + self.context_proj(context))
        return (
            self.base.av_head(fused),
            self.base.visual_head(visual_embed),
            self.context_head(context),
        )

    def forward(
        self, faces: torch.Tensor, mfcc: torch.Tensor, scenes: torch.Tensor
    ) -> torch.Tensor:
        """Audio-visual logits ``(B, T, 2)`` (class 1 = speaking)."""
        return self.forward_all(faces, mfcc, scenes)[0]


def scene_frames(frames_rgb: list[np.ndarray] | np.ndarray, size_px: int = 112) -> np.ndarray:
    """Full frames -> the scene encoder's input: each ``(H, W, 3)`` uint8 RGB frame resized to
    ``size_px`` x ``size_px`` (``cv2.INTER_AREA``; the whole scene is kept, aspect ratio is
    not), scaled to [0, 1] -> ``(T, 3, size_px, size_px)`` float32.

    Raises:
        ValueError: a frame that is not ``(H, W, 3)`` uint8.
    """
    out = np.empty((len(frames_rgb), 3, size_px, size_px), dtype=np.float32)
    for i, frame in enumerate(frames_rgb):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frames must be (H, W, 3) uint8 RGB, but frame {i} is {frame.shape} {frame.dtype}"
            )
        small = cv2.resize(frame, (size_px, size_px), interpolation=cv2.INTER_AREA)
        out[i] = small.transpose(2, 0, 1) / np.float32(255.0)
    return out


def context_losses(
    model: SceneContextASD,
    faces: torch.Tensor,
    mfcc: torch.Tensor,
    scenes: torch.Tensor,
    labels: torch.Tensor,
    r: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Training losses: Light-ASD's ``lossAV + 0.5 lossV`` (softmax BCE at temperature ``r``,
    :func:`socialav.training.losses.softmax_bce`) plus ``CONTEXT_LOSS_WEIGHT * lossC`` on the
    context head. Returns ``{"total", "av", "visual", "context"}`` 0-d tensors. This is the
    hook the shared training loop needs to train the scene-context model (its batches must
    then also carry ``scenes``)."""
    from socialav.training.losses import softmax_bce

    av, visual, ctx = model.forward_all(faces, mfcc, scenes)
    loss_av = softmax_bce(av, labels, r)
    loss_v = softmax_bce(visual, labels, r)
    loss_c = softmax_bce(ctx, labels, r)
    total = loss_av + 0.5 * loss_v + CONTEXT_LOSS_WEIGHT * loss_c
    return {"total": total, "av": loss_av, "visual": loss_v, "context": loss_c}
