"""Losses of the reference ASD trainers.

Light-ASD / LR-ASD (``loss.py``, ``ASD.train_network``): each head is a 2-way linear layer; the
loss is ``nn.BCELoss`` on ``softmax(logits / r)[:, 1]`` against the 0/1 frame labels, with the
temperature ``r = 1.3 - 0.02 * (epoch - 1)`` for both the audio-visual and the visual-only
head, and ``loss = lossAV + 0.5 * lossV``.

TalkNet (``loss.py``, ``talkNet.train_network``): ``nn.CrossEntropyLoss`` on each head,
``loss = lossAV + 0.4 * lossA + 0.4 * lossV``. For two classes this is the same BCE with
``r = 1``, so both are :func:`softmax_bce` with different temperatures and weights.

``softmax(x / r)[:, 1] = sigmoid((x1 - x0) / r)``; we evaluate the BCE through ``logsigmoid``,
which equals ``nn.BCELoss`` on the softmax except where that clamps ``log`` at -100 (a logit
difference beyond about 100 r), and stays finite in bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from socialav.training.config import LossConfig

__all__ = [
    "temperature",
    "softmax_bce",
    "LossTerms",
    "asd_loss",
    "frame_accuracy",
    "SyncNegativePlan",
    "sync_negative_plan",
    "sync_negative_audio",
]


def temperature(epoch: int, start: float = 1.3, step: float = 0.02) -> float:
    """Light-ASD's temperature ``r = start - step * (epoch - 1)`` for 1-based ``epoch``.

    Raises:
        ValueError: ``epoch < 1`` or ``r <= 0``.
    """
    if epoch < 1:
        raise ValueError(f"epoch is 1-based, but got {epoch}")
    r = start - step * (epoch - 1)
    if r <= 0:
        raise ValueError(f"temperature {start} - {step} * ({epoch} - 1) = {r} is not positive")
    return r


def softmax_bce(logits: torch.Tensor, labels: torch.Tensor, r: float = 1.0) -> torch.Tensor:
    """Mean BCE of ``softmax(logits / r)[..., 1]`` against ``labels``.

    Args:
        logits: ``(..., 2)`` float logits (class 1 = speaking).
        labels: ``(...)`` 0/1 labels (any integer or float dtype).
        r: temperature (> 0).

    Returns:
        0-d float32 tensor.

    Raises:
        ValueError: shapes disagree or ``r <= 0``.
    """
    if logits.shape[-1] != 2 or logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits must be (..., 2) matching labels (...), but got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if r <= 0:
        raise ValueError(f"temperature r must be > 0, got {r}")
    diff = (logits[..., 1] - logits[..., 0]).float() / r
    y = labels.float()
    return -(y * F.logsigmoid(diff) + (1 - y) * F.logsigmoid(-diff)).mean()


def frame_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of frames where ``round(softmax(logits)[..., 1])`` equals the label (the
    reference's ``correctNum / index``)."""
    predicted = (logits[..., 1] > logits[..., 0]).long()
    return (predicted == labels.long()).float().mean()


@dataclass
class LossTerms:
    """Loss of one batch: ``total`` (to minimise) and its parts (0-d tensors)."""

    total: torch.Tensor
    av: torch.Tensor
    visual: torch.Tensor
    audio: torch.Tensor
    temperature: float
    sync: torch.Tensor | None = None


def asd_loss(
    av_logits: torch.Tensor,
    labels: torch.Tensor,
    visual_logits: torch.Tensor,
    audio_logits: torch.Tensor | None,
    config: LossConfig,
    epoch: int,
    sync_logits: torch.Tensor | None = None,
) -> LossTerms:
    """``softmax_bce(av, r) + visual_weight * softmax_bce(visual, r) + audio_weight *
    softmax_bce(audio, r)`` with ``r`` from :func:`temperature` (see the module docstring),
    plus ``sync_negatives_weight * softmax_bce(sync_logits, 0, r)`` when ``sync_logits``
    ``(N, T, 2)`` (the audio-visual logits of the synchrony negatives) is given.

    Args:
        av_logits, visual_logits, audio_logits: ``(B, T, 2)`` (``audio_logits`` may be
            ``None`` when ``config.audio_weight`` is 0).
        labels: ``(B, T)`` 0/1.
        config: weights and temperature schedule.
        epoch: 1-based epoch.

    Raises:
        ValueError: ``audio_weight > 0`` without audio logits; bad shapes; ``r <= 0``.
    """
    r = temperature(epoch, config.temperature_start, config.temperature_step)
    av = softmax_bce(av_logits, labels, r)
    visual = softmax_bce(visual_logits, labels, r)
    if audio_logits is None:
        if config.audio_weight > 0:
            raise ValueError("audio_weight > 0 needs a model with an audio head (TalkNet)")
        audio = torch.zeros((), dtype=av.dtype, device=av.device)
    else:
        audio = softmax_bce(audio_logits, labels, r)
    total = av + config.visual_weight * visual + config.audio_weight * audio
    sync = None
    if sync_logits is not None and sync_logits.shape[0] > 0:
        zeros = torch.zeros(sync_logits.shape[:-1], dtype=torch.int64, device=sync_logits.device)
        sync = softmax_bce(sync_logits, zeros, r)
        total = total + config.sync_negatives_weight * sync
    return LossTerms(total, av, visual, audio, r, sync)


@dataclass
class SyncNegativePlan:
    """Which wrong audio every synchrony negative pairs with which faces (see
    :attr:`~socialav.training.config.LossConfig.sync_negatives_weight`).

    Attributes:
        face_index: ``(N,)`` int64 batch rows whose faces are used.
        audio_index: ``(N,)`` int64 batch rows whose audio embeddings are used.
        shift_frames: ``(N,)`` int64 circular shift applied to those audio embeddings
            (``torch.roll`` along time: frame ``t`` gets the audio of frame ``t - k``).
    """

    face_index: torch.Tensor
    audio_index: torch.Tensor
    shift_frames: torch.Tensor

    def __len__(self) -> int:
        return int(self.face_index.numel())


def sync_negative_plan(
    labels: torch.Tensor,
    shift_frames_range: tuple[int, int],
    generator: torch.Generator | None = None,
) -> SyncNegativePlan:
    """Two synchrony negatives per batch row that has a speaking frame: its faces with its own
    audio shifted by ``±k`` frames (``k`` uniform in ``shift_frames_range``, sign uniform),
    and (batches of two or more rows) its faces with the next row's audio, unshifted.

    Args:
        labels: ``(B, T)`` 0/1 frame labels of the batch.
        shift_frames_range: inclusive ``(lo, hi)``, ``1 <= lo <= hi``; ``hi`` is capped at
            ``T - 1`` so a shift never wraps to 0.
        generator: random source (default: torch's global one).

    Raises:
        ValueError: bad range or ``labels`` not 2-D.
    """
    lo, hi = int(shift_frames_range[0]), int(shift_frames_range[1])
    if labels.ndim != 2:
        raise ValueError(f"labels must be (B, T), but got shape {tuple(labels.shape)}")
    if not 1 <= lo <= hi:
        raise ValueError(f"shift_frames_range must satisfy 1 <= lo <= hi, got {(lo, hi)}")
    batch, frames = labels.shape
    rows = torch.nonzero(labels.sum(dim=1) > 0).flatten().cpu()
    hi = min(hi, frames - 1)
    lo = min(lo, hi)
    if rows.numel() == 0 or hi < 1:
        empty = torch.zeros(0, dtype=torch.int64)
        return SyncNegativePlan(empty, empty, empty)
    magnitude = torch.randint(lo, hi + 1, (rows.numel(),), generator=generator)
    sign = torch.randint(0, 2, (rows.numel(),), generator=generator) * 2 - 1
    face, audio, shift = [rows], [rows], [magnitude * sign]
    if batch >= 2:
        face.append(rows)
        audio.append((rows + 1) % batch)
        shift.append(torch.zeros_like(rows))
    return SyncNegativePlan(torch.cat(face), torch.cat(audio), torch.cat(shift))


def sync_negative_audio(audio_embed: torch.Tensor, plan: SyncNegativePlan) -> torch.Tensor:
    """The wrong audio of a plan: ``(N, T, C)`` from batch audio embeddings ``(B, T, C)``
    (row ``n`` is ``roll(audio_embed[audio_index[n]], shift_frames[n], time)``)."""
    frames = audio_embed.shape[1]
    picked = audio_embed[plan.audio_index.to(audio_embed.device)]
    if len(plan) == 0:
        return picked
    time = torch.arange(frames, device=audio_embed.device)
    source = (time[None, :] - plan.shift_frames.to(audio_embed.device)[:, None]) % frames
    return torch.gather(picked, 1, source[:, :, None].expand(-1, -1, picked.shape[2]))
