"""Ego4D social tasks for the training engine: GazeLSTM (LAM) and the QuAVF branches (TTM).

Each *step function* maps ``(model, batch, device)`` to a :class:`StepOutput` (loss, logits,
labels). :class:`Ego4dTrainingTask` wraps one in a :class:`~socialav.training.engine.
TrainingTask`, so ``socialav train`` trains these models with the same engine as the ASD
models (checkpoints every epoch, exact resumption, validation mAP, best checkpoint, metrics
log, DDP): ``model.architecture`` ``gaze-lstm``, ``quavf-visual`` or ``quavf-audio`` and an
``ego4d`` config section (:class:`~socialav.training.config.Ego4dDataConfig`).

Samples (:mod:`socialav.data.ego4d.samples`) and validation metrics
(:mod:`socialav.evaluation.ego4d`, official semantics):

- LAM: one 7-frame window per (track, frame) of ``lam_stride``; validation mAP over the
  (clip, frame, track) rows -- mean of AP(looking) and AP(not looking on 1 - score).
- TTM visual (QuAVF): quality-filtered windows of each talking segment for training; for
  validation one window per face frame, the segment's score the mean of its windows'
  probabilities, mAP over segments.
- TTM audio-visual (AV-HuBERT-style, seed 000): one sample per sub-clip (lip crops + stacked
  filterbanks, :mod:`socialav.data.ego4d.avhubert`), a segment logit; a segment's score
  ``sigmoid(mean of its sub-clips' logits)``, mAP over segments.
- TTM audio (QuAVF): one sample per sub-clip; per-frame loss; a sub-clip's logits are the
  mean over its frames, a segment's score ``softmax(mean of its sub-clips' logits)[1]``
  (:func:`~socialav.evaluation.ego4d.ttm_segment_scores`), mAP over segments.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from socialav.checkpoints.format import build_model, load_model_checkpoint
from socialav.data.ego4d.annotations import Ego4dClip, load_av_annotations, read_split_list
from socialav.data.ego4d.avhubert import AvTransformerTtmDataset, collate_av_transformer
from socialav.data.ego4d.media import ClipAudio, JpegFolderFrames
from socialav.data.ego4d.samples import (
    IGNORE_INDEX,
    LamDataset,
    TtmAudioDataset,
    TtmVisualDataset,
    build_ttm_visual_windows,
    collate_ttm_audio,
    lam_samples,
    lam_track_boxes,
    ttm_samples,
)
from socialav.evaluation.ego4d import Ego4dMetricError
from socialav.evaluation.ego4d_scoring import (
    Ego4dEvalConfig,
    Ego4dEvalSet,
    av_transformer_logits,
    build_eval_set,
    lam_logits,
    person_boxes,
    score_eval_set,
    scores_map,
    ttm_audio_frame_logits,
    ttm_visual_logits,
)
from socialav.training.config import EGO4D_ARCHITECTURES, ConfigError, TrainConfig
from socialav.training.distributed import DistributedContext
from socialav.training.engine import StepResult, TrainingTask

#: Frames of a LAM window (t - 3 .. t + 3, the baseline's ``seq_len``).
LAM_WINDOW_FRAMES = 7

logger = logging.getLogger(__name__)

__all__ = [
    "LAM_CLASS_WEIGHTS",
    "Ego4dTrainingTask",
    "StepOutput",
    "balanced_class_weights",
    "build_ego4d_task",
    "lam_step",
    "ttm_audio_step",
    "av_transformer_step",
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
    labels = batch["label"].to(device).long().view(-1)
    logits = lam_logits(model, batch, device)
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
    labels = batch["label"].to(device).long().view(-1)
    logits = ttm_visual_logits(model, batch, device)
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
    :func:`~socialav.data.ego4d.samples.collate_ttm_audio` builds them."""
    labels = batch["labels"].to(device).long()
    logits = ttm_audio_frame_logits(model, batch, device)  # (N, 2, T_v)
    loss = F.cross_entropy(
        logits, labels, weight=_weights(class_weights, device), ignore_index=IGNORE_INDEX
    )
    flat = logits.detach().permute(0, 2, 1).reshape(-1, 2)
    keep = labels.reshape(-1) != IGNORE_INDEX
    return StepOutput(loss, flat[keep], labels.reshape(-1)[keep])


def av_transformer_step(
    model: nn.Module,
    batch: Batch,
    device: torch.device,
    class_weights: tuple[float, float] | None = None,
) -> StepOutput:
    """AV-HuBERT-style TTM model on ``batch["lips"]`` ``(N, T, S, S)``, ``batch["audio"]``
    ``(N, T, 104)`` and ``batch["lengths"]`` ``(N,)`` (:func:`~socialav.data.ego4d.avhubert.
    collate_av_transformer`): binary cross-entropy of the segment logit ``z`` on
    ``batch["label"]``, each sample weighted by its class weight. The returned logits are
    ``(N, 2) = [0, z]`` (``softmax(.)[1] = sigmoid(z)``), so the 2-way evaluation code applies."""
    labels = batch["label"].to(device).long().view(-1)
    logits = av_transformer_logits(model, batch, device)
    z = logits[:, 1]
    weight = None
    if class_weights is not None:
        weight = torch.tensor(class_weights, dtype=torch.float32, device=device)[labels]
    loss = F.binary_cross_entropy_with_logits(z, labels.float(), weight=weight)
    return StepOutput(loss, logits.detach(), labels)


# ----------------------------------------------------------------------------- the task

#: ``metrics.csv`` columns of an Ego4D run.
EGO4D_METRICS_COLUMNS: tuple[str, ...] = (
    "epoch",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_map_percent",
    "train_items",
    "epoch_seconds",
    "train_items_per_s",
)


def _validation_map(
    model: nn.Module,
    eval_set: Ego4dEvalSet,
    device: torch.device,
    progress: Callable[[int, int], None] | None,
    what: str,
) -> float:
    """Official social mAP (percent) of ``model`` on the validation samples, scored as
    ``socialav predict`` scores them (:func:`~socialav.evaluation.ego4d_scoring.
    score_eval_set`); NaN (logged) when a class is missing."""
    try:
        return 100.0 * scores_map(score_eval_set(model, eval_set, device, progress))[0]
    except Ego4dMetricError as err:
        logger.warning("validation %s: %s; mAP is NaN", what, err)
        return math.nan


class Ego4dTrainingTask(TrainingTask):
    """One Ego4D social model trained by the engine (see the module docstring).

    Args:
        model: the architecture (on its device, trainable parameters set).
        step: its step function.
        train_set: training samples (a ``Dataset`` whose items ``collate`` batches).
        labels: ``(N,)`` class of every training item, for ``"balanced"`` class weights and
            the log; per-frame items for the audio branch.
        collate: batch builder (``None``: torch's default).
        validate_fn: ``validate_fn(model, progress) -> mAP percent`` or ``None``.
        config: the run's configuration; ctx: the distributed context.
        architecture_config, input_contract: stored in every checkpoint.
    """

    metrics_columns = EGO4D_METRICS_COLUMNS
    sum_keys = ("correct", "items")

    def __init__(
        self,
        *,
        model: nn.Module,
        step: StepFn,
        train_set: Dataset,
        labels: Sequence[int],
        collate: Callable | None,
        validate_fn: Callable[[nn.Module, Callable[[int, int], None] | None], float] | None,
        config: TrainConfig,
        ctx: DistributedContext,
        architecture_config: Mapping[str, Any],
        input_contract: Mapping[str, Any],
    ) -> None:
        if len(train_set) == 0:
            raise ConfigError(
                f"no {config.model.architecture} training samples in "
                f"{config.ego4d.annotations!r} (check the annotations, clip_list and filters)"
            )
        self.model = model
        self.train_module = model
        self.config, self.ctx, self.device = config, ctx, ctx.device
        weights = config.loss.class_weights
        if weights == "balanced":
            weights = balanced_class_weights(labels)
        self.class_weights = None if weights is None else tuple(float(w) for w in weights)
        self._step = step
        self.train_set = train_set
        self.collate = collate
        self.validate_fn = validate_fn
        self.has_validation = validate_fn is not None
        self.architecture_config = dict(architecture_config)
        self.input_contract = dict(input_contract)
        per_rank = len(train_set) // ctx.world_size if ctx.world_size > 1 else len(train_set)
        self._per_rank = per_rank
        logger.info(
            "training %s: %d samples (%d positive items of %d), class weights %s, device %s",
            config.model.architecture,
            len(train_set),
            int(np.sum(np.asarray(labels) == 1)),
            len(labels),
            self.class_weights,
            self.device,
        )

    def num_steps(self) -> int:
        return math.ceil(self._per_rank / self.config.ego4d.batch_size)

    def batches(self, epoch: int, first_step: int) -> Iterable[Batch]:
        generator = torch.Generator().manual_seed(self.config.seed * 7919 + epoch)
        order = torch.randperm(len(self.train_set), generator=generator).tolist()
        if self.ctx.world_size > 1:
            order = order[self.ctx.rank :: self.ctx.world_size][: self._per_rank]
        size = self.config.ego4d.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        return DataLoader(
            self.train_set,
            batch_sampler=batches[first_step:],
            collate_fn=self.collate,
            num_workers=self.config.data.num_workers,
        )

    def step(self, module: nn.Module, batch: Batch, epoch: int) -> StepResult:
        out = self._step(module, batch, self.device, class_weights=self.class_weights)
        correct = (out.logits.argmax(dim=-1) == out.labels).sum()
        return StepResult(out.loss, {"correct": float(correct), "items": float(len(out.labels))})

    def epoch_metrics(self, epoch: int, totals: Mapping[str, float], seconds: float) -> dict:
        return {
            "train_accuracy": totals["correct"] / max(totals["items"], 1.0),
            "train_items": int(totals["items"]),
            "train_items_per_s": totals["items"] / max(seconds, 1e-9),
        }

    def validate(self, epoch: int, progress: Callable[[int, int], None] | None) -> float:
        if self.validate_fn is None:
            return math.nan
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return self.validate_fn(self.model, progress)
        finally:
            self.model.train(was_training)


def _load_clips(path: str, clip_list: str | None, what: str) -> list[Ego4dClip]:
    if not path:
        raise ConfigError(f"ego4d.{what} must name an av_*.json annotation file, but it is empty")
    clips = load_av_annotations(path)
    if clip_list:
        keep = set(read_split_list(clip_list))
        clips = [c for c in clips if c.clip_uid in keep]
    return clips


def _initial_model(config: TrainConfig) -> tuple[nn.Module, dict[str, Any]]:
    arch = config.model.architecture
    spec = config.model.init_weights
    if spec is None:
        return build_model(arch, config.model.architecture_config), dict(
            config.model.architecture_config
        )
    model, meta = load_model_checkpoint(spec, arch)
    return model, dict(meta.get("architecture_config") or {})


def _eval_config(config: TrainConfig, arch_config: Mapping[str, Any]) -> Ego4dEvalConfig:
    """How validation samples are built: the ``ego4d`` section (and the audio branch's
    ``n_mels``)."""
    data = config.ego4d
    return Ego4dEvalConfig(
        crop_size_px=data.crop_size_px,
        lam_stride=data.lam_stride,
        feat_length=data.ttm_feat_length,
        frame_stride=data.ttm_frame_stride,
        n_mels=int(arch_config.get("n_mels", 80)),
        max_audio_frames=data.ttm_max_audio_frames,
        lip_size_px=data.lip_size_px,
        batch_size=data.batch_size,
    )


def build_ego4d_task(config: TrainConfig, ctx: DistributedContext) -> Ego4dTrainingTask:
    """The :class:`Ego4dTrainingTask` of ``config.model.architecture`` (``gaze-lstm``,
    ``quavf-visual``, ``quavf-audio``, ``av-transformer``) on the data of ``config.ego4d``.

    Validation scores the ``val_annotations`` clips with
    :mod:`socialav.evaluation.ego4d_scoring`, the code ``socialav predict`` runs.

    Raises:
        ConfigError: missing annotations / frames / audio settings, no training sample.
        FileNotFoundError: missing files. Ego4dAnnotationError: malformed annotations.
    """
    from socialav.training.engine import apply_trainable

    data = config.ego4d
    arch = config.model.architecture
    if arch not in EGO4D_ARCHITECTURES:
        raise ConfigError(f"{arch!r} is not an Ego4D architecture ({EGO4D_ARCHITECTURES})")
    torch.manual_seed(config.seed)
    model, arch_config = _initial_model(config)
    apply_trainable(model, config.model.trainable)
    model.to(ctx.device)
    clips = _load_clips(data.annotations, data.clip_list, "annotations")
    val_clips = (
        _load_clips(data.val_annotations, data.val_clip_list, "val_annotations")
        if data.val_annotations and ctx.is_main
        else None
    )
    common = {"config": config, "ctx": ctx, "architecture_config": arch_config}
    size = data.crop_size_px
    needs_frames = arch in ("gaze-lstm", "quavf-visual", "av-transformer")
    needs_audio = arch in ("quavf-audio", "av-transformer")
    if needs_frames and not data.frames_dir:
        raise ConfigError(
            f"ego4d.frames_dir must name the extracted frames for {arch} "
            "(<clip_uid>/img_00001.jpg ...; `socialav data ego4d-media`), but it is empty"
        )
    if needs_audio and data.audio_dir is None and data.videos_dir is None:
        raise ConfigError(f"ego4d.audio_dir or ego4d.videos_dir must be set for {arch}")
    frames = JpegFolderFrames(data.frames_dir) if needs_frames else None

    def audio_of(cs: Sequence[Ego4dClip]) -> ClipAudio | None:
        if not needs_audio:
            return None
        return ClipAudio([c.clip_uid for c in cs], data.audio_dir, data.videos_dir)

    validate_fn = None
    if val_clips is not None:
        what = {"gaze-lstm": "LAM", "quavf-visual": "TTM (visual)"}.get(arch, "TTM")
        val_set = build_eval_set(
            arch,
            val_clips,
            _eval_config(config, arch_config),
            frames=frames,
            audio=audio_of(val_clips),
        )

        def validate_fn(model: nn.Module, progress: Callable | None) -> float:
            return _validation_map(model, val_set, ctx.device, progress, what)

    if arch == "gaze-lstm":
        train_set = LamDataset(
            lam_samples(clips, stride=data.lam_stride),
            frames,  # type: ignore[arg-type]
            lam_track_boxes(clips),
            size_px=size,
        )
        return Ego4dTrainingTask(
            model=model,
            step=lam_step,
            train_set=train_set,
            labels=[s.label for s in train_set.samples],
            collate=None,
            validate_fn=validate_fn,
            input_contract={"face_size_px": size, "window_frames": LAM_WINDOW_FRAMES},
            **common,
        )

    if arch == "quavf-visual":
        feat_length = int(arch_config.get("feat_length", 15))
        if data.ttm_feat_length != feat_length:
            raise ConfigError(
                f"ego4d.ttm_feat_length ({data.ttm_feat_length}) must equal the model's "
                f"feat_length ({feat_length})"
            )
        found = build_ttm_visual_windows(
            clips,
            frames,  # type: ignore[arg-type]
            train=True,
            feat_length=data.ttm_feat_length,
            frame_stride=data.ttm_frame_stride,
            data_stride=data.ttm_data_stride,
            score_threshold=data.ttm_score_threshold,
        )
        train_set = TtmVisualDataset(found, frames, person_boxes(clips), size_px=size)  # type: ignore[arg-type]
        return Ego4dTrainingTask(
            model=model,
            step=ttm_visual_step,
            train_set=train_set,
            labels=[w.label for w in train_set.windows],
            collate=None,
            validate_fn=validate_fn,
            input_contract={
                "face_size_px": size,
                "feat_length": data.ttm_feat_length,
                "frame_stride": data.ttm_frame_stride,
            },
            **common,
        )

    if arch == "quavf-audio":
        n_mels = int(arch_config.get("n_mels", 80))
        train_set = TtmAudioDataset(
            ttm_samples(clips, train=True),
            audio_of(clips),  # type: ignore[arg-type]
            n_mels=n_mels,
            max_frames=data.ttm_max_audio_frames,
        )
        frame_labels = [
            s.label
            for s in train_set.samples
            for _ in range(min(s.num_frames, data.ttm_max_audio_frames))
        ]
        return Ego4dTrainingTask(
            model=model,
            step=ttm_audio_step,
            train_set=train_set,
            labels=frame_labels,
            collate=collate_ttm_audio,
            validate_fn=validate_fn,
            input_contract={"n_mels": n_mels},
            **common,
        )

    train_set = AvTransformerTtmDataset(
        ttm_samples(clips, train=True),
        frames,  # type: ignore[arg-type]
        person_boxes(clips),
        audio_of(clips),  # type: ignore[arg-type]
        lip_size_px=data.lip_size_px,
    )
    return Ego4dTrainingTask(
        model=model,
        step=av_transformer_step,
        train_set=train_set,
        labels=[s.label for s in train_set.samples],
        collate=collate_av_transformer,
        validate_fn=validate_fn,
        input_contract={"lip_size_px": data.lip_size_px},
        **common,
    )
