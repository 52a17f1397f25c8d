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

from socialav.models.scene_context import SceneContextASD
from socialav.training.config import LossConfig

#: Weight of the auxiliary context loss in TalkNet+DeiT (``trainTalkNetDeiT.py``).
CONTEXT_LOSS_WEIGHT: float = 0.3

__all__ = [
    "temperature",
    "softmax_bce",
    "LossTerms",
    "asd_loss",
    "frame_accuracy",
    "SyncNegativePlan",
    "sync_negative_plan",
    "sync_negative_pairs",
    "sync_offset_nce",
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
    sync_nce: torch.Tensor | None = None


def asd_loss(
    av_logits: torch.Tensor,
    labels: torch.Tensor,
    visual_logits: torch.Tensor,
    audio_logits: torch.Tensor | None,
    config: LossConfig,
    epoch: int,
    sync_logits: torch.Tensor | None = None,
    sync_nce: torch.Tensor | None = None,
) -> LossTerms:
    """``softmax_bce(av, r) + visual_weight * softmax_bce(visual, r) + audio_weight *
    softmax_bce(audio, r)`` with ``r`` from :func:`temperature` (see the module docstring),
    plus ``sync_negatives_weight * softmax_bce(sync_logits, 0, r)`` when ``sync_logits``
    ``(..., 2)`` (the audio-visual logits of the synchrony negatives) is given, plus
    ``sync_nce_weight * sync_nce`` when the offset-contrastive loss
    (:func:`sync_offset_nce`) is given.

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
    if sync_nce is not None:
        total = total + config.sync_nce_weight * sync_nce
    return LossTerms(total, av, visual, audio, r, sync, sync_nce)


@dataclass
class SyncNegativePlan:
    """The synchrony negatives and offset-contrastive term of one batch (see
    :attr:`~socialav.training.config.LossConfig.sync_negatives_weight`).

    Attributes:
        rows: ``(N,)`` int64 batch rows with a speaking frame.
        shift_frames: signed offset ``k`` of the shifted negatives: the faces of frame
            ``t`` are paired with the audio of frame ``t - k`` over the ``T - |k|`` frames
            where both exist (a contiguous stretch of real audio: no seam a model could spot).
        swap: also pair every row's faces with the next row's audio (batches of 2+ rows).
        speech: ``(B, T)`` bool speaking frames (the positives of the offset-contrastive term).
        nce_max_offset_frames: ``K`` of the offset-contrastive term (0: off).
        nce_temperature: its softmax temperature.
    """

    rows: torch.Tensor
    shift_frames: int
    swap: bool
    speech: torch.Tensor
    nce_max_offset_frames: int = 0
    nce_temperature: float = 0.1

    def __len__(self) -> int:
        return int(self.rows.numel())


def sync_negative_plan(
    labels: torch.Tensor,
    shift_frames_range: tuple[int, int],
    generator: torch.Generator | None = None,
    *,
    nce_max_offset_frames: int = 0,
    nce_temperature: float = 0.1,
) -> SyncNegativePlan:
    """Plan the synchrony negatives of a batch: every batch row with a speaking frame gives a
    shifted negative (its faces with its own audio offset by ``k`` frames, ``|k|`` uniform in
    ``shift_frames_range`` and capped at ``T // 2``, sign uniform; one ``k`` per batch) and,
    in batches of two or more rows, a swapped negative (its faces with the next row's audio).

    Args:
        labels: ``(B, T)`` 0/1 frame labels of the batch.
        shift_frames_range: inclusive ``(lo, hi)``, ``1 <= lo <= hi``.
        generator: random source (default: torch's global one).
        nce_max_offset_frames, nce_temperature: see :func:`sync_offset_nce`.

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
    hi = min(hi, frames // 2)
    lo = min(lo, hi)
    shift = 0
    if hi >= 1:
        shift = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        shift *= int(torch.randint(0, 2, (1,), generator=generator)) * 2 - 1
    return SyncNegativePlan(
        rows, shift, batch >= 2, labels > 0, int(nce_max_offset_frames), float(nce_temperature)
    )


def sync_negative_pairs(
    audio_embed: torch.Tensor, visual_embed: torch.Tensor, plan: SyncNegativePlan
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(audio, visual)`` embedding pairs of a plan's negatives, each ``(N, T', C)``:
    the shifted pair (``T' = T - |k|``) and, with ``plan.swap``, the swapped pair
    (``T' = T``). Empty when no row speaks."""
    if len(plan) == 0:
        return []
    rows = plan.rows.to(audio_embed.device)
    audio, visual = audio_embed[rows], visual_embed[rows]
    k = plan.shift_frames
    pairs = []
    if k > 0:  # faces at t with the audio of t - k
        pairs.append((audio[:, :-k], visual[:, k:]))
    elif k < 0:
        pairs.append((audio[:, -k:], visual[:, :k]))
    if plan.swap:
        pairs.append((audio_embed[(rows + 1) % audio_embed.shape[0]], visual))
    return pairs


def sync_offset_nce(
    audio_embed: torch.Tensor,
    visual_embed: torch.Tensor,
    speech: torch.Tensor,
    max_offset_frames: int,
    temperature: float = 0.1,
) -> torch.Tensor | None:
    """Offset-contrastive synchrony loss (InfoNCE over temporal offsets, as SyncNet's
    offset search and TalkNCE's frame-level audio-visual contrast): for every speaking frame
    ``t`` at least ``K`` frames from both ends, the cosine similarities ``cos(v_t, a_{t+j})``,
    ``j = -K..K``, divided by ``temperature``, are a softmax over ``2K + 1`` candidates whose
    target is ``j = 0``. Candidates come from the same clip, so identity cannot solve it;
    only timing can.

    Args:
        audio_embed, visual_embed: ``(B, T, C)``.
        speech: ``(B, T)`` bool speaking frames.
        max_offset_frames: ``K >= 1``.
        temperature: ``> 0``.

    Returns:
        Mean cross-entropy over the used frames (0-d float32), or ``None`` when no frame
        qualifies (``T <= 2K`` or no speech).
    """
    k = int(max_offset_frames)
    frames = audio_embed.shape[1]
    if k < 1 or frames <= 2 * k:
        return None
    mask = speech[:, k : frames - k]
    if not bool(mask.any()):
        return None
    a = F.normalize(audio_embed.float(), dim=-1)
    v = F.normalize(visual_embed.float(), dim=-1)[:, k : frames - k]
    candidates = torch.stack([a[:, j : frames - 2 * k + j] for j in range(2 * k + 1)], dim=2)
    logits = torch.einsum("btc,btjc->btj", v, candidates) / temperature
    target = torch.full(logits.shape[:2], k, dtype=torch.int64, device=logits.device)
    return F.cross_entropy(logits[mask], target[mask])


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
    av, visual, ctx = model.forward_all(faces, mfcc, scenes)
    loss_av = softmax_bce(av, labels, r)
    loss_v = softmax_bce(visual, labels, r)
    loss_c = softmax_bce(ctx, labels, r)
    total = loss_av + 0.5 * loss_v + CONTEXT_LOSS_WEIGHT * loss_c
    return {"total": total, "av": loss_av, "visual": loss_v, "context": loss_c}
