"""Decision-threshold calibration of a fine-tuned ASD model against a reference model.

AP only ranks frames; ``socialav detect`` marks a face as speaking where ``P(speaking)``
(softmax class 1) crosses 0.5. A fine-tune can keep (or improve) the ranking and still move
every probability far below 0.5 on real speech: ``light-asd-sync``, trained with about five
negatives per positive, marked 0.0 s / 0.4 s of the two-person interview where the published
weights mark 10.3 s / 15.5 s (``docs/sync_finetuning.md``).

The remedy here is the smallest one that keeps the ranking: a constant added to the logit
margin ``z = logit_1 - logit_0`` (bias calibration; with one constant, the per-frame ranking
and so every AP is unchanged), chosen so that the calibrated model has the **same recall at
0.5 as the reference model** (the weights it was fine-tuned from) on held-out frames where
the face speaks with its own voice. That keeps the reference's operating point, which was
set on a large labelled set (AVA), instead of inventing a new one from a few held-out
entities. The constant is folded into the audio-visual head's bias (``av_head.bias``), so the
result is an ordinary checkpoint of the same architecture that every backend (torch, ONNX)
runs unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from socialav.models.light_asd import AudioVisualASD

logger = logging.getLogger(__name__)

__all__ = [
    "CalibrationResult",
    "recall_matching_shift",
    "shift_speaking_margin",
    "held_out_margins",
    "calibrate_asd_checkpoint",
]


def recall_matching_shift(
    candidate_margins: np.ndarray,
    reference_margins: np.ndarray,
    labels: np.ndarray,
    target_recall: float | None = None,
) -> tuple[float, float]:
    """The constant ``d`` such that ``candidate_margins + d > 0`` on the positive frames has the
    recall ``reference_margins > 0`` has there.

    With ``r`` the reference's recall over the ``P`` positive frames, ``d`` is minus the
    ``(1 - r)`` quantile of the candidate's positive margins (``numpy.quantile``, linear
    interpolation), so about ``r P`` of them end above 0.

    Args:
        candidate_margins, reference_margins: ``(N,)`` float logit margins
            ``logit_speaking - logit_not_speaking`` of the same frames.
        labels: ``(N,)`` 0/1 ground truth (1 = speaking).
        target_recall: a recall in (0, 1) to reach instead of the reference's.

    Returns:
        ``(shift, recall aimed at)``.

    Raises:
        ValueError: arrays of different lengths, NaN margins, no positive frame, or a
            ``target_recall`` outside (0, 1).
    """
    if target_recall is not None and not 0.0 < target_recall < 1.0:
        raise ValueError(f"target_recall must be in (0, 1), got {target_recall}")
    cand = np.asarray(candidate_margins, np.float64)
    ref = np.asarray(reference_margins, np.float64)
    y = np.asarray(labels).astype(bool)
    if not cand.shape == ref.shape == y.shape or cand.ndim != 1:
        raise ValueError(
            "candidate_margins, reference_margins and labels must be 1-D of one length, but got "
            f"{cand.shape}, {ref.shape} and {y.shape}"
        )
    if np.isnan(cand).any() or np.isnan(ref).any():
        raise ValueError("margins must not contain NaN (drop frames without audio first)")
    if not y.any():
        raise ValueError("calibration needs frames labelled speaking (labels == 1); found none")
    recall = float((ref[y] > 0).mean()) if target_recall is None else float(target_recall)
    shift = -float(np.quantile(cand[y], 1.0 - recall))
    return shift, recall


def shift_speaking_margin(model: AudioVisualASD, shift: float) -> None:
    """Add ``shift`` to the audio-visual logit margin of ``model`` in place: ``av_head.bias``
    gets ``-shift / 2`` on class 0 and ``+shift / 2`` on class 1, so
    ``logit_1 - logit_0`` grows by ``shift`` on every frame and the frame ranking is kept.

    Raises:
        ValueError: the model's ``av_head`` is not a 2-class linear layer with a bias.
    """
    head = model.av_head
    if head.bias is None or head.bias.shape != (2,):
        raise ValueError(
            "expected av_head to be a 2-class linear layer with a bias, but got bias "
            f"{None if head.bias is None else tuple(head.bias.shape)}"
        )
    with torch.no_grad():
        head.bias += torch.tensor([-shift / 2, shift / 2], dtype=head.bias.dtype)


def held_out_margins(
    model: AudioVisualASD, dataset_root: str | Path, split: str = "val"
) -> tuple[np.ndarray, np.ndarray]:
    """Logit margins of ``model`` on every frame of a prepared split (whole entities, one
    window each, as ``detect --windows full``; frames without audio dropped).

    Returns:
        ``(margins, labels)``: ``(N,)`` float64 and ``(N,)`` int64.

    Raises:
        FileNotFoundError, ValueError: as :class:`~socialav.data.dataset.AsdEntityDataset`.
    """
    tracks, labels = _held_out_tracks(dataset_root, split)
    return _track_margins(model, tracks, labels)


def _held_out_tracks(
    dataset_root: str | Path, split: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """Every entity of a prepared split as ``(faces, mfcc)`` and its ``(T,)`` labels."""
    from socialav.data.dataset import AsdEntityDataset

    data = AsdEntityDataset(dataset_root, split, max_chunk_frames=None)
    items = [data[i] for i in range(len(data))]
    tracks = [(it["faces"].numpy(), it["mfcc"].numpy()) for it in items]
    return tracks, [it["labels"].numpy() for it in items]


def _track_margins(
    model: AudioVisualASD,
    tracks: list[tuple[np.ndarray, np.ndarray]],
    labels: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`held_out_margins` of already-read tracks."""
    from socialav.inference.asd import WindowConfig, predict_tracks_logits

    model.eval()
    logits = predict_tracks_logits(model, tracks, WindowConfig(durations_s=None))
    margins, kept = [], []
    for lab, lg in zip(labels, logits, strict=True):
        ok = ~np.isnan(lg).any(axis=1)
        margins.append((lg[ok, 1] - lg[ok, 0]).astype(np.float64))
        kept.append(lab[ok])
    return np.concatenate(margins), np.concatenate(kept)


@dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate_asd_checkpoint` did.

    Attributes:
        output: the calibrated checkpoint.
        shift: constant added to the logit margin.
        target_recall: the recall aimed at: the reference's recall at 0.5 on the positive
            frames, or ``target_recall`` when given.
        reference_recall: the reference's recall at 0.5 on the positive frames.
        recall_before, recall_after: the candidate's recall there before / after.
        false_positive_rate_before, false_positive_rate_after: the candidate's share of
            negative frames above 0.5 before / after.
        reference_false_positive_rate: the reference's share of negative frames above 0.5
            (at its own recall ``reference_recall``).
        num_positive_frames, num_negative_frames: frames used.
    """

    output: Path
    shift: float
    target_recall: float
    reference_recall: float
    recall_before: float
    recall_after: float
    false_positive_rate_before: float
    false_positive_rate_after: float
    reference_false_positive_rate: float
    num_positive_frames: int
    num_negative_frames: int


def calibrate_asd_checkpoint(
    checkpoint: str | Path,
    reference: str,
    dataset_root: str | Path,
    output: str | Path,
    split: str = "val",
    target_recall: float | None = None,
) -> CalibrationResult:
    """Write a copy of a socialav ASD checkpoint whose logit margin is shifted to match the
    recall of ``reference`` on the held-out split (see the module docstring).

    Args:
        checkpoint: a socialav ``light-asd`` / ``lr-asd`` checkpoint (e.g. a ``socialav
            train`` output), as a file or a weights-registry name.
        reference: weights-registry name or checkpoint file of the reference model (the
            weights the candidate was fine-tuned from, e.g. ``light-asd-ava``).
        dataset_root: a prepared dataset (``socialav data talkset`` / ``data prepare``).
        output: the calibrated checkpoint (written atomically).
        split: the held-out split (never the training split).
        target_recall: a recall in (0, 1) to reach instead of the reference's (the reference
            is then still scored, for the false-positive comparison).

    Returns:
        :class:`CalibrationResult`; the checkpoint's ``metrics`` also record the shift, the
        reference and the split.

    Raises:
        CheckpointError: ``checkpoint`` is not a socialav checkpoint of an ASD architecture.
        FileNotFoundError, ValueError: as :func:`held_out_margins` and
            :func:`recall_matching_shift`.
    """
    from socialav.checkpoints.format import CheckpointError, save_model_checkpoint
    from socialav.checkpoints.load import load_pretrained

    model, info = load_pretrained(checkpoint, what="checkpoint to calibrate")
    if info.format != "socialav" or info.architecture not in ("light-asd", "lr-asd"):
        kind = "an original" if info.format != "socialav" else "a socialav"
        raise CheckpointError(
            f"{checkpoint}: expected a light-asd or lr-asd checkpoint written by socialav "
            f"(socialav train), found {kind} {info.architecture!r} checkpoint"
        )
    payload = info.metadata
    ref_model = load_pretrained(reference, task="asd", what="reference weights")[0]
    tracks, frame_labels = _held_out_tracks(dataset_root, split)
    cand, labels = _track_margins(model, tracks, frame_labels)
    ref, _ = _track_margins(ref_model, tracks, frame_labels)
    shift, target = recall_matching_shift(cand, ref, labels, target_recall)
    pos, neg = labels == 1, labels == 0

    def rate(margins: np.ndarray, mask: np.ndarray) -> float:
        return float((margins[mask] > 0).mean()) if mask.any() else float("nan")

    shift_speaking_margin(model, shift)
    metrics = {
        **payload.get("metrics", {}),
        "calibration_margin_shift": shift,
        "calibration_reference": str(reference),
        "calibration_split": f"{dataset_root}:{split}",
        "calibration_target_recall": target,
    }
    out = save_model_checkpoint(
        output,
        model,
        training_data=payload.get("training_data", ""),
        metrics=metrics,
        train_config=payload.get("train_config"),
        architecture_config=payload.get("architecture_config"),
        input_contract=payload.get("input_contract"),
    )
    result = CalibrationResult(
        output=out,
        shift=shift,
        target_recall=target,
        reference_recall=rate(ref, pos),
        recall_before=rate(cand, pos),
        recall_after=rate(cand + shift, pos),
        false_positive_rate_before=rate(cand, neg),
        false_positive_rate_after=rate(cand + shift, neg),
        reference_false_positive_rate=rate(ref, neg),
        num_positive_frames=int(pos.sum()),
        num_negative_frames=int(neg.sum()),
    )
    logger.info("calibrated %s -> %s: %s", checkpoint, out, result)
    return result
