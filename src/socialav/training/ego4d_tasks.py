"""Ego4D social tasks for training: losses and steps of GazeLSTM (LAM) and QuAVF (TTM).

Each *step function* maps ``(model, batch, device)`` to a :class:`StepOutput` (loss, logits,
labels); a training loop only has to call it, back-propagate ``loss`` and step its optimiser.
:func:`fit` is such a loop, minimal (Adam, gradient clipping, fixed epochs, seeded data order):
enough for smoke runs and small fine-tunes until the shared loop of
:mod:`socialav.training.loop` (built around the ASD models' datasets and heads) takes a
generic ``(model, step function, loaders)``.

Losses of the references:

- LAM (EGO4D/social-interactions branch ``lam``, ``run.py``, ``common/config.py``):
  ``CrossEntropyLoss(weight=[0.136, 0.864])`` on the 2-way logits, Adam lr 5e-4,
  batch 64, 40 epochs.
- QuAVF (Ego4D-QuAVF-TTM-CVPR23 ``common/engine.py``, ``common/config.py``): per branch
  ``CrossEntropyLoss(weight=lossWeight(train loader))`` -- per-frame for audio, with frames
  past a sample's length ignored (label -100) -- Adam lr 1e-5, gradient-norm clip 1. The
  reference's ``lossWeight`` is not in the stored sources; we use the usual balanced weights
  ``w_c = N / (2 N_c)`` (:func:`balanced_class_weights`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from socialav.data.ego4d_samples import IGNORE_INDEX

logger = logging.getLogger(__name__)

__all__ = [
    "LAM_CLASS_WEIGHTS",
    "Ego4dFitConfig",
    "StepOutput",
    "balanced_class_weights",
    "fit",
    "lam_step",
    "predict",
    "ttm_audio_step",
    "ttm_visual_step",
]

#: Class weights (not looking, looking) of the LAM baseline (``common/config.py``).
LAM_CLASS_WEIGHTS: tuple[float, float] = (0.136, 0.864)

Batch = Mapping[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch, torch.device], "StepOutput"]


@dataclass
class StepOutput:
    """What a step function returns.

    Attributes:
        loss: scalar loss to minimise.
        logits: ``(N, 2)`` logits of the scored items (frames or windows), detached.
        labels: ``(N,)`` int64 labels of those items.
    """

    loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


def balanced_class_weights(labels: Iterable[int]) -> tuple[float, float]:
    """``w_c = N / (2 N_c)`` for classes 0 and 1 (1.0 for an absent class).

    Example (hand check): labels ``[0, 0, 0, 1]`` -> ``(4/6, 4/2) = (0.667, 2.0)``.
    """
    values = [int(v) for v in labels if int(v) != IGNORE_INDEX]
    n = len(values)
    counts = [values.count(0), values.count(1)]
    return tuple(n / (2 * c) if c else 1.0 for c in counts)  # type: ignore[return-value]


def _weights(weights: tuple[float, float] | None, device: torch.device) -> torch.Tensor | None:
    return None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)


def lam_step(
    model: nn.Module,
    batch: Batch,
    device: torch.device,
    class_weights: tuple[float, float] | None = LAM_CLASS_WEIGHTS,
) -> StepOutput:
    """GazeLSTM on ``batch["frames"]`` ``(N, 7, 3, H, W)``; weighted cross-entropy on
    ``batch["label"]`` ``(N,)``."""
    frames = batch["frames"].to(device)
    labels = batch["label"].to(device).long().view(-1)
    logits = model(frames)
    loss = F.cross_entropy(logits, labels, weight=_weights(class_weights, device))
    return StepOutput(loss, logits.detach(), labels)


def ttm_visual_step(
    model: nn.Module,
    batch: Batch,
    device: torch.device,
    class_weights: tuple[float, float] | None = None,
) -> StepOutput:
    """QuAVF visual branch on ``batch["frames"]`` ``(N, L, 3, H, W)`` and
    ``batch["quality"]`` ``(N,)``; cross-entropy on ``batch["label"]``."""
    frames = batch["frames"].to(device)
    labels = batch["label"].to(device).long().view(-1)
    logits = model(frames, batch["quality"].to(device))
    loss = F.cross_entropy(logits, labels, weight=_weights(class_weights, device))
    return StepOutput(loss, logits.detach(), labels)


def ttm_audio_step(
    model: nn.Module,
    batch: Batch,
    device: torch.device,
    class_weights: tuple[float, float] | None = None,
) -> StepOutput:
    """QuAVF audio branch on ``batch["mel"]`` ``(N, n_mels, T_mel)``; per-frame cross-entropy
    on ``batch["labels"]`` ``(N, T_v)`` (``-100`` ignored), as
    :func:`~socialav.data.ego4d_samples.collate_ttm_audio` builds them."""
    mel = batch["mel"].to(device)
    labels = batch["labels"].to(device).long()
    logits = model(mel, labels.shape[1])  # (N, 2, T_v)
    loss = F.cross_entropy(
        logits, labels, weight=_weights(class_weights, device), ignore_index=IGNORE_INDEX
    )
    flat = logits.detach().permute(0, 2, 1).reshape(-1, 2)
    keep = labels.reshape(-1) != IGNORE_INDEX
    return StepOutput(loss, flat[keep], labels.reshape(-1)[keep])


@dataclass(frozen=True)
class Ego4dFitConfig:
    """Settings of :func:`fit`.

    Attributes:
        epochs: passes over the loader.
        lr: Adam learning rate (LAM baseline 5e-4; QuAVF 1e-5).
        weight_decay: Adam weight decay (0 in both references).
        grad_clip: max gradient norm, ``None`` for none (QuAVF: 1.0; LAM: none).
        seed: seeds ``torch`` before training (model init is the caller's).
    """

    epochs: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float | None = None
    seed: int = 0


def fit(
    model: nn.Module,
    step: StepFn,
    loader: Iterable[Batch],
    config: Ego4dFitConfig,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Minimal training loop: Adam over the trainable parameters, ``config.epochs`` passes.

    Args:
        model: the architecture (moved to ``device``).
        step: a step function of this module (or any with the same contract).
        loader: yields batches (e.g. a ``torch.utils.data.DataLoader``).
        progress: called as ``progress(epoch, batch_index, loss)`` after every batch.

    Returns:
        The mean loss of every epoch.

    Raises:
        FloatingPointError: the loss became NaN or infinite (names the epoch and batch).
    """
    dev = torch.device(device)
    torch.manual_seed(config.seed)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    history: list[float] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count = 0.0, 0
        for i, batch in enumerate(loader):
            out = step(model, batch, dev)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(f"loss is {float(out.loss)} at epoch {epoch} batch {i}")
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            total += float(out.loss.detach())
            count += 1
            if progress is not None:
                progress(epoch, i, float(out.loss.detach()))
        history.append(total / count if count else math.nan)
        logger.info("epoch %d: mean loss %.4f over %d batches", epoch, history[-1], count)
    return history


@torch.no_grad()
def predict(
    model: nn.Module, step: StepFn, loader: Iterable[Batch], device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation pass: ``(probabilities of class 1 (N,), labels (N,))`` over the loader, in
    loader order (model in ``eval`` mode)."""
    dev = torch.device(device)
    model.to(dev).eval()
    probs, labels = [], []
    for batch in loader:
        out = step(model, batch, dev)
        probs.append(torch.softmax(out.logits.float(), dim=-1)[:, 1].cpu())
        labels.append(out.labels.cpu())
    return torch.cat(probs), torch.cat(labels)
