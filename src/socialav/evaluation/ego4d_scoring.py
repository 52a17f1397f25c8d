"""Ego4D LAM / TTM models in the baselines' evaluation mode over a split: the evaluation
samples, one forward pass over them, and the scores keyed the way the official metrics join
them. Training's validation (:mod:`socialav.training.tasks.ego4d`) and ``socialav predict``
(:mod:`socialav.pipelines.predict_ego4d`) both score through here, so the mAP a run records for
a checkpoint is the mAP of the file ``predict`` writes with it.

What is scored, per architecture (sources in :mod:`socialav.data.ego4d.samples`):

- ``gaze-lstm`` (LAM): one 7-frame window per (track, frame) of every ``lam_stride``-th frame of
  each interpolated non-wearer track; score ``softmax(logits)[1]``; key ``(clip_uid, frame,
  track_id)`` as the baseline's ``PostProcessor`` (branch ``lam``).
- ``quavf-visual`` (TTM): one QuAVF window per face frame of each non-wearer talking segment
  (``TTMTestDataset``); a segment's score is the mean of its windows' ``softmax[1]``, its
  quality the mean of their window qualities.
- ``quavf-audio`` (TTM): one sample per sub-clip; a sub-clip's logits are the mean of its
  frames' logits (frames past its length excluded), a segment's score ``softmax(mean of its
  sub-clips' logits)[1]`` (``PostProcessor._merge_output``, branch ``ttm``).
- ``av-transformer`` (TTM, seed 000): one sample per sub-clip, segment logit ``z``; a segment's
  score ``sigmoid(mean z)`` (the same merge on logits ``[0, z]``).

TTM keys are ``(clip_uid, segment_index)`` with the segment's annotated span; segments the
architecture gives no sample (a camera-wearer segment for the visual branch, a segment of one
frame) are absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from socialav.data.ego4d.annotations import Ego4dClip
from socialav.data.ego4d.avhubert import AvTransformerTtmDataset, collate_av_transformer
from socialav.data.ego4d.samples import (
    IGNORE_INDEX,
    FrameSource,
    LamDataset,
    TtmAudioDataset,
    TtmVisualDataset,
    build_ttm_visual_windows,
    collate_ttm_audio,
    lam_samples,
    lam_track_boxes,
    ttm_samples,
)
from socialav.evaluation.ego4d import social_map, ttm_segment_scores

logger = logging.getLogger(__name__)

__all__ = [
    "EGO4D_EVAL_ARCHITECTURES",
    "Ego4dEvalConfig",
    "Ego4dEvalSet",
    "LamScore",
    "TtmSegmentScore",
    "av_transformer_logits",
    "build_eval_set",
    "lam_logits",
    "person_boxes",
    "score_eval_set",
    "scores_map",
    "ttm_audio_frame_logits",
    "ttm_segment_spans",
    "ttm_visual_logits",
]

Batch = Mapping[str, torch.Tensor]

#: Architecture -> task of what it scores.
EGO4D_EVAL_ARCHITECTURES: dict[str, str] = {
    "gaze-lstm": "lam",
    "quavf-visual": "ttm",
    "quavf-audio": "ttm",
    "av-transformer": "ttm",
}


# ------------------------------------------------------------------- forward passes


def lam_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """GazeLSTM on ``batch["frames"]`` ``(N, 7, 3, S, S)``: ``(N, 2)`` logits."""
    return model(batch["frames"].to(device))


def ttm_visual_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """QuAVF visual branch on ``batch["frames"]`` ``(N, L, 3, S, S)`` and ``batch["quality"]``
    ``(N,)``: ``(N, 2)`` logits."""
    return model(batch["frames"].to(device), batch["quality"].to(device))


def ttm_audio_frame_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """QuAVF audio branch on ``batch["mel"]`` ``(N, n_mels, T_mel)``: per-video-frame logits
    ``(N, 2, T_v)`` with ``T_v = batch["labels"].shape[1]``
    (:func:`~socialav.data.ego4d.samples.collate_ttm_audio`)."""
    return model(batch["mel"].to(device), batch["labels"].shape[1])


def av_transformer_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """AV-HuBERT-style model on ``batch["lips"]``, ``batch["audio"]``, ``batch["lengths"]``
    (:func:`~socialav.data.ego4d.avhubert.collate_av_transformer`): ``(N, 2)`` logits
    ``[0, z]`` of the segment logit ``z`` (``softmax(.)[1] = sigmoid(z)``)."""
    z = model(batch["lips"].to(device), batch["audio"].to(device), batch["lengths"].to(device))
    return torch.stack([torch.zeros_like(z), z], dim=-1)


def _audio_sample_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """Per-sample ``(N, 2)`` logits of the audio branch: the mean over each sample's frames."""
    logits = ttm_audio_frame_logits(model, batch, device)
    valid = (batch["labels"].to(device) != IGNORE_INDEX).unsqueeze(1).float()
    return (logits * valid).sum(-1) / valid.sum(-1).clamp(min=1.0)


# ----------------------------------------------------------------------- records


@dataclass(frozen=True)
class LamScore:
    """P(looking at me) of one face of one track at one frame.

    Attributes:
        clip_uid, track_id, person_id: which face; frame: the clip frame (30 fps).
        box_xyxy_px: the interpolated track box at ``frame``.
        score: ``softmax(logits)[1]`` in [0, 1]; label: 0/1 ground truth (0 where unknown).
    """

    clip_uid: str
    frame: int
    track_id: str
    person_id: str
    box_xyxy_px: tuple[float, float, float, float]
    score: float
    label: int


@dataclass(frozen=True)
class TtmSegmentScore:
    """P(talking to me) of one talking segment.

    Attributes:
        clip_uid, segment_index: the baseline's segment key (``segment_id`` =
            ``clip_uid:segment_index``); start_frame, end_frame: its annotated span (30 fps).
        person_id: who talks.
        score: in [0, 1]; label: 0/1 ground truth.
        quality: mean QuAVF window quality of the segment (visual branch only, else ``None``).
    """

    clip_uid: str
    segment_index: int
    start_frame: int
    end_frame: int
    person_id: str
    score: float
    label: int
    quality: float | None = None

    @property
    def segment_id(self) -> str:
        return f"{self.clip_uid}:{self.segment_index}"


@dataclass(frozen=True)
class Ego4dEvalConfig:
    """How the evaluation samples are built (the training config's ``ego4d`` section, or a
    checkpoint's input contract for ``predict``).

    Attributes:
        crop_size_px: face-crop side (``gaze-lstm``, ``quavf-visual``; 224 in both references).
        lam_stride: every ``lam_stride``-th track frame is scored (baseline val 13, test 1).
        feat_length, frame_stride: QuAVF visual windows (15, 15).
        n_mels: QuAVF audio mel bands (80).
        max_audio_frames: QuAVF audio: longest sample in video frames (900 = 30 s).
        lip_size_px: ``av-transformer`` lip crop side (88).
        batch_size: samples per forward pass. The audio branch sees zero-padded batches (as
            QuAVF's collater pads them), so its scores depend on the batch composition; the
            other models' do not (beyond float rounding).
    """

    crop_size_px: int = 224
    lam_stride: int = 1
    feat_length: int = 15
    frame_stride: int = 15
    n_mels: int = 80
    max_audio_frames: int | None = 900
    lip_size_px: int = 88
    batch_size: int = 64


@dataclass
class Ego4dEvalSet:
    """The evaluation samples of one architecture over some clips.

    Attributes:
        architecture: ``gaze-lstm``, ``quavf-visual``, ``quavf-audio`` or ``av-transformer``.
        dataset: the torch ``Dataset`` (``LamDataset`` ...); collate: its batch builder.
        spans: ``(clip_uid, segment_index) -> (start_frame, end_frame, person_id)`` (TTM).
        batch_size: samples per forward pass.
    """

    architecture: str
    dataset: Dataset
    collate: Callable | None
    batch_size: int
    spans: dict[tuple[str, int], tuple[int, int, str]] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return EGO4D_EVAL_ARCHITECTURES[self.architecture]

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


def person_boxes(clips: Sequence[Ego4dClip]) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    """``(clip_uid, person_id) -> {frame: xyxy}`` of every non-wearer person."""
    return {
        (c.clip_uid, p.person_id): c.person_boxes_xyxy(p.person_id)
        for c in clips
        for p in c.persons
        if not p.is_camera_wearer
    }


def ttm_segment_spans(clips: Sequence[Ego4dClip]) -> dict[tuple[str, int], tuple[int, int, str]]:
    """``(clip_uid, segment_index) -> (start_frame, end_frame, person_id)`` of every talking
    segment with a person, indexed as :func:`~socialav.data.ego4d.samples.ttm_samples`."""
    out: dict[tuple[str, int], tuple[int, int, str]] = {}
    for clip in clips:
        index = -1
        for seg in clip.talking:
            if seg.person is None:
                continue
            index += 1
            out[(clip.clip_uid, index)] = (seg.start_frame, seg.end_frame, seg.person)
    return out


def build_eval_set(
    architecture: str,
    clips: Sequence[Ego4dClip],
    config: Ego4dEvalConfig,
    *,
    frames: FrameSource | None = None,
    audio: Mapping[str, np.ndarray] | None = None,
) -> Ego4dEvalSet:
    """The evaluation samples of ``architecture`` over ``clips`` (see the module docstring).

    Args:
        frames: the clips' frames (``gaze-lstm``, ``quavf-visual``, ``av-transformer``).
        audio: ``clip_uid -> (N,)`` 16 kHz audio (``quavf-audio``, ``av-transformer``).

    Raises:
        ValueError: an unknown architecture, or the frames / audio it needs not given.
    """
    if architecture not in EGO4D_EVAL_ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(EGO4D_EVAL_ARCHITECTURES)}, got {architecture!r}"
        )
    needs_frames = architecture in ("gaze-lstm", "quavf-visual", "av-transformer")
    needs_audio = architecture in ("quavf-audio", "av-transformer")
    if needs_frames and frames is None:
        raise ValueError(f"{architecture} needs the clips' frames, but frames is None")
    if needs_audio and audio is None:
        raise ValueError(f"{architecture} needs the clips' audio, but audio is None")
    spans = ttm_segment_spans(clips)
    size = config.crop_size_px
    if architecture == "gaze-lstm":
        dataset: Dataset = LamDataset(
            lam_samples(clips, stride=config.lam_stride),
            frames,  # type: ignore[arg-type]
            lam_track_boxes(clips),
            size_px=size,
        )
        return Ego4dEvalSet(architecture, dataset, None, config.batch_size)
    if architecture == "quavf-visual":
        windows = build_ttm_visual_windows(
            clips,
            frames,  # type: ignore[arg-type]
            train=False,
            feat_length=config.feat_length,
            frame_stride=config.frame_stride,
        )
        dataset = TtmVisualDataset(windows, frames, person_boxes(clips), size_px=size)  # type: ignore[arg-type]
        return Ego4dEvalSet(architecture, dataset, None, config.batch_size, spans)
    samples = ttm_samples(clips, train=False)
    if architecture == "quavf-audio":
        dataset = TtmAudioDataset(
            samples,
            audio,  # type: ignore[arg-type]
            n_mels=config.n_mels,
            max_frames=config.max_audio_frames,
        )
        return Ego4dEvalSet(architecture, dataset, collate_ttm_audio, config.batch_size, spans)
    dataset = AvTransformerTtmDataset(
        samples,
        frames,  # type: ignore[arg-type]
        person_boxes(clips),
        audio,  # type: ignore[arg-type]
        lip_size_px=config.lip_size_px,
    )
    return Ego4dEvalSet(architecture, dataset, collate_av_transformer, config.batch_size, spans)


def _over_batches(
    eval_set: Ego4dEvalSet,
    per_batch: Callable[[Batch], torch.Tensor],
    progress: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """``per_batch(batch)`` over the set's batches in sample order (``progress(done,
    total)`` after each), concatenated on the CPU along the first axis."""
    loader = DataLoader(
        eval_set.dataset, batch_size=eval_set.batch_size, shuffle=False, collate_fn=eval_set.collate
    )
    parts = []
    for i, batch in enumerate(loader):
        parts.append(per_batch(batch).detach().float().cpu())
        if progress is not None:
            progress(i + 1, len(loader))
    return torch.cat(parts) if parts else torch.zeros(0, 2)


@torch.no_grad()
def score_eval_set(
    model: nn.Module,
    eval_set: Ego4dEvalSet,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[LamScore] | list[TtmSegmentScore]:
    """Score every sample of ``eval_set`` with ``model`` (put in ``eval`` mode) and merge the
    scores per key (see the module docstring).

    Returns:
        LAM: one :class:`LamScore` per sample, in sample order. TTM: one
        :class:`TtmSegmentScore` per segment, in order of first appearance.
    """
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        return _score(model, eval_set, dev, progress)
    finally:
        model.train(was_training)


def _score(
    model: nn.Module,
    eval_set: Ego4dEvalSet,
    device: torch.device,
    progress: Callable[[int, int], None] | None,
) -> list[LamScore] | list[TtmSegmentScore]:
    arch = eval_set.architecture
    if arch in ("gaze-lstm", "quavf-visual"):
        forward = lam_logits if arch == "gaze-lstm" else ttm_visual_logits
        logits = _over_batches(eval_set, lambda b: forward(model, b, device), progress)
        probs = torch.softmax(logits, dim=-1)[:, 1].numpy().astype(np.float64)
        if arch == "gaze-lstm":
            samples = eval_set.dataset.samples  # type: ignore[attr-defined]
            return [
                LamScore(
                    s.clip_uid, s.frame, s.track_id, s.person_id, s.box_xyxy_px, float(p), s.label
                )
                for s, p in zip(samples, probs, strict=True)
            ]
        windows = eval_set.dataset.windows  # type: ignore[attr-defined]
        groups: dict[tuple[str, int], list[int]] = {}
        for i, w in enumerate(windows):
            groups.setdefault((w.clip_uid, w.segment_index), []).append(i)
        out = []
        for key, idx in groups.items():
            start, end, person = eval_set.spans[key]
            first = windows[idx[0]]
            out.append(
                TtmSegmentScore(
                    key[0],
                    key[1],
                    start,
                    end,
                    person,
                    float(np.mean(probs[idx])),
                    first.label,
                    float(np.mean([windows[i].quality for i in idx])),
                )
            )
        return out
    forward = _audio_sample_logits if arch == "quavf-audio" else av_transformer_logits
    logits = _over_batches(eval_set, lambda b: forward(model, b, device), progress)
    samples = eval_set.dataset.samples  # type: ignore[attr-defined]
    merged = ttm_segment_scores([s.segment_id for s in samples], logits.numpy())
    labels = {s.segment_id: s.label for s in samples}
    keys = {s.segment_id: (s.clip_uid, s.segment_index) for s in samples}
    out = []
    for sid, score in merged.items():
        key = keys[sid]
        start, end, person = eval_set.spans[key]
        out.append(TtmSegmentScore(key[0], key[1], start, end, person, score, labels[sid]))
    return out


def scores_map(
    scores: Sequence[LamScore] | Sequence[TtmSegmentScore],
) -> tuple[float, float, float]:
    """``(mAP, AP class 1, AP class 0)`` (fractions) of scored rows, in their order: the
    official social mAP (:func:`~socialav.evaluation.ego4d.social_map`).

    Raises:
        socialav.evaluation.ego4d.Ego4dMetricError: no rows, or a single class.
    """
    return social_map([s.score for s in scores], [s.label for s in scores])
