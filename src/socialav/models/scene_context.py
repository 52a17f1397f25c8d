"""Scene context for active speaker detection: a small ViT/DeiT over the full frame, fused
into an ASD model's back-end (TalkNet+DeiT, architecture only).

Details and sources: ``docs/models.md`` (Scene context (TalkNet+DeiT)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from socialav.models.light_asd import EMBED_DIM, AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD
from socialav.models.talknet import TalkNet
from socialav.types import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "SceneViTConfig",
    "SceneViT",
    "SceneContextASD",
    "SCENE_BASES",
    "DEFAULT_SCENE_SIZE_PX",
    "build_scene_context_asd",
    "scene_context_from_asd",
    "scene_image",
    "scene_input",
    "scene_frames",
]

#: Side of the scene image by default (:class:`SceneViTConfig`), pixels.
DEFAULT_SCENE_SIZE_PX: int = 112
#: ASD architectures a scene-context model can be built on: registry name -> class.
SCENE_BASES: dict[str, type[AudioVisualASD]] = {
    "light-asd": LightASD,
    "lr-asd": LRASD,
    "talknet": TalkNet,
}


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

    @property
    def scene_size_px(self) -> int:
        """Side ``S`` of the scene images the encoder takes."""
        return self.scene_encoder.config.image_size_px

    @property
    def scene_dim(self) -> int:
        """Width ``D_scene`` of the per-frame scene embedding."""
        return self.scene_encoder.config.embed_dim

    def architecture_config(self) -> dict[str, Any]:
        """The :func:`build_scene_context_asd` keyword arguments that rebuild this model
        (``{"base": "light-asd", "scene": {SceneViTConfig fields}}``), for
        ``save_model_checkpoint(..., architecture_config=...)``.

        Raises:
            ValueError: the base model is not one of :data:`SCENE_BASES`.
        """
        for name, cls in SCENE_BASES.items():
            if type(self.base) is cls:
                return {"base": name, "scene": asdict(self.scene_encoder.config)}
        raise ValueError(
            f"base model {type(self.base).__name__} is not one of {sorted(SCENE_BASES)}"
        )

    def encode_scene(self, scenes: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` RGB in [0, 1] -> ``(B, T, D_scene)`` per-frame embeddings."""
        if scenes.ndim != 5:
            raise ValueError(f"scenes must be (B, T, 3, S, S), but got {tuple(scenes.shape)}")
        batch, steps = scenes.shape[:2]
        return self.scene_encoder(scenes.flatten(0, 1)).view(batch, steps, -1)

    def context_term(self, context_embed: torch.Tensor) -> torch.Tensor:
        """``(..., D_scene)`` scene embeddings -> ``(..., 128)`` term added to the visual
        embeddings before the back-end (``W c + b``; zero for an untrained branch).

        Raises:
            ValueError: the last axis is not ``D_scene``.
        """
        if context_embed.shape[-1] != self.scene_dim:
            raise ValueError(
                f"context_embed must end with the scene width {self.scene_dim}, but got shape "
                f"{tuple(context_embed.shape)}"
            )
        return self.context_proj(context_embed.to(self.context_proj.weight.dtype))

    def _fused_logits(
        self,
        faces: torch.Tensor,
        mfcc: torch.Tensor,
        context: torch.Tensor,
        what: str,
        found: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(av_logits, visual_embed)`` with ``context`` ``(B, T, D_scene)``; ``what`` and
        ``found`` name the third input and its shape in the error message."""
        audio_embed = self.base.encode_audio(mfcc)
        visual_embed = self.base.encode_visual(faces)
        if not (audio_embed.shape[:2] == visual_embed.shape[:2] == context.shape[:2]):
            raise ValueError(
                f"faces (B, T, ...), mfcc (B, 4T, 13) and {what} must describe the same span, "
                f"but got {tuple(faces.shape)}, {tuple(mfcc.shape)} and {found}"
            )
        fused = self.base.decode(audio_embed, visual_embed + self.context_term(context))
        return self.base.av_head(fused), visual_embed

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
        context = self.encode_scene(scenes)
        av, visual_embed = self._fused_logits(
            faces, mfcc, context, "scenes (B, T, 3, S, S)", tuple(scenes.shape)
        )
        return av, self.base.visual_head(visual_embed), self.context_head(context)

    def forward(
        self, faces: torch.Tensor, mfcc: torch.Tensor, scenes: torch.Tensor
    ) -> torch.Tensor:
        """Audio-visual logits ``(B, T, 2)`` (class 1 = speaking)."""
        return self.forward_all(faces, mfcc, scenes)[0]

    def forward_context(
        self, faces: torch.Tensor, mfcc: torch.Tensor, context_embed: torch.Tensor
    ) -> torch.Tensor:
        """Audio-visual logits ``(B, T, 2)`` from precomputed scene embeddings: the same as
        :meth:`forward` when ``context_embed = encode_scene(scenes)``. For inference that
        encodes every video frame once and reuses the embeddings for every face of the frame.

        Args:
            faces: ``(B, T, 112, 112)`` gray face crops 0..255.
            mfcc: ``(B, 4T, 13)`` MFCC.
            context_embed: ``(B, T, D_scene)`` float32 scene embeddings of the same frames.

        Raises:
            ValueError: the inputs do not describe the same ``B`` and ``T``, or the embedding
                width is not ``D_scene``.
        """
        if context_embed.ndim != 3:
            raise ValueError(
                f"context_embed must be (B, T, {self.scene_dim}), but got "
                f"{tuple(context_embed.shape)}"
            )
        return self._fused_logits(
            faces, mfcc, context_embed, "context_embed (B, T, D)", tuple(context_embed.shape)
        )[0]


def build_scene_context_asd(
    base: str = "light-asd", scene: dict[str, Any] | None = None
) -> SceneContextASD:
    """A randomly initialised scene-context model (the ``scene-context`` registry builder).

    Args:
        base: ASD architecture of the base model, one of :data:`SCENE_BASES`.
        scene: :class:`SceneViTConfig` keyword arguments (``None``: DeiT-Tiny widths on
            112-px images).

    Raises:
        ValueError: unknown ``base``, or ``scene`` fields :class:`SceneViTConfig` does not
            have (named) or rejects.
    """
    if base not in SCENE_BASES:
        raise ValueError(f"base must be one of {sorted(SCENE_BASES)}, but got {base!r}")
    return SceneContextASD(SCENE_BASES[base](), SceneViT(_scene_config(scene)))


def _scene_config(scene: dict[str, Any] | SceneViTConfig | None) -> SceneViTConfig:
    if scene is None:
        return SceneViTConfig()
    if isinstance(scene, SceneViTConfig):
        return scene
    known = set(SceneViTConfig.__dataclass_fields__)
    unknown = sorted(set(scene) - known)
    if unknown:
        raise ValueError(
            f"scene config has unknown fields {unknown}; SceneViTConfig takes {sorted(known)}"
        )
    return SceneViTConfig(**scene)


def scene_context_from_asd(
    asd_model: AudioVisualASD, scene_config: SceneViTConfig | dict[str, Any] | None = None
) -> SceneContextASD:
    """Wrap a (pretrained) ASD model with a new scene-context branch: the starting point of
    fine-tuning from published weights (e.g. ``light-asd-ava``).

    The returned model holds ``asd_model`` itself (not a copy) as ``base``; the scene encoder
    and the context head are randomly initialised and ``context_proj`` is zero, so the model
    gives exactly the base model's logits until the branch is trained.

    Args:
        asd_model: a Light-ASD / LR-ASD / TalkNet model (:data:`SCENE_BASES`).
        scene_config: the scene encoder's sizes (:class:`SceneViTConfig` or its fields as a
            dict; ``None``: defaults).

    Raises:
        ValueError: ``asd_model`` is not of a supported class; bad ``scene_config``.
    """
    if type(asd_model) not in SCENE_BASES.values():
        raise ValueError(
            f"asd_model must be one of {[c.__name__ for c in SCENE_BASES.values()]}, but got "
            f"{type(asd_model).__name__}"
        )
    return SceneContextASD(asd_model, SceneViT(_scene_config(scene_config)))


def scene_image(frame_rgb: np.ndarray, size_px: int = DEFAULT_SCENE_SIZE_PX) -> np.ndarray:
    """One full frame -> the scene image: ``(H, W, 3)`` uint8 RGB resized to ``size_px`` x
    ``size_px`` with ``cv2.INTER_AREA`` (the whole scene is kept, the aspect ratio is not)
    -> ``(size_px, size_px, 3)`` uint8 RGB.

    Raises:
        ValueError: a frame that is not ``(H, W, 3)`` uint8.
    """
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise ValueError(
            f"frames must be (H, W, 3) uint8 RGB, but got {frame_rgb.shape} {frame_rgb.dtype}"
        )
    if frame_rgb.shape[:2] == (size_px, size_px):
        return np.ascontiguousarray(frame_rgb)
    return cv2.resize(frame_rgb, (size_px, size_px), interpolation=cv2.INTER_AREA)


def scene_input(images: np.ndarray) -> np.ndarray:
    """Scene images ``(T, S, S, 3)`` uint8 RGB -> the encoder input ``(T, 3, S, S)`` float32
    in [0, 1] (``x / 255``).

    Raises:
        ValueError: not ``(T, S, S, 3)`` uint8.
    """
    if (
        images.ndim != 4
        or images.shape[3] != 3
        or images.shape[1] != images.shape[2]
        or images.dtype != np.uint8
    ):
        raise ValueError(
            f"scene images must be (T, S, S, 3) uint8 RGB, but got {images.shape} {images.dtype}"
        )
    return images.transpose(0, 3, 1, 2) / np.float32(255.0)


def scene_frames(frames_rgb: list[np.ndarray] | np.ndarray, size_px: int = 112) -> np.ndarray:
    """Full frames -> the scene encoder's input: each ``(H, W, 3)`` uint8 RGB frame resized to
    ``size_px`` x ``size_px`` (``cv2.INTER_AREA``; the whole scene is kept, aspect ratio is
    not), scaled to [0, 1] -> ``(T, 3, size_px, size_px)`` float32.

    Raises:
        ValueError: a frame that is not ``(H, W, 3)`` uint8.
    """
    images = np.empty((len(frames_rgb), size_px, size_px, 3), dtype=np.uint8)
    for i, frame in enumerate(frames_rgb):
        try:
            images[i] = scene_image(frame, size_px)
        except ValueError:
            raise ValueError(
                f"frames must be (H, W, 3) uint8 RGB, but frame {i} is {frame.shape} {frame.dtype}"
            ) from None
    return scene_input(images)
