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
from socialav.evaluation.ego4d import Ego4dMetricError, social_map, ttm_segment_scores
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
    "predict",
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
    :func:`~socialav.data.ego4d.samples.collate_ttm_audio` builds them."""
    mel = batch["mel"].to(device)
    labels = batch["labels"].to(device).long()
    logits = model(mel, labels.shape[1])  # (N, 2, T_v)
    loss = F.cross_entropy(
        logits, labels, weight=_weights(class_weights, device), ignore_index=IGNORE_INDEX
    )
    flat = logits.detach().permute(0, 2, 1).reshape(-1, 2)
    keep = labels.reshape(-1) != IGNORE_INDEX
    return StepOutput(loss, flat[keep], labels.reshape(-1)[keep])


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
    z = model(batch["lips"].to(device), batch["audio"].to(device), batch["lengths"].to(device))
    weight = None
    if class_weights is not None:
        weight = torch.tensor(class_weights, dtype=torch.float32, device=device)[labels]
    loss = F.binary_cross_entropy_with_logits(z, labels.float(), weight=weight)
    logits = torch.stack([torch.zeros_like(z), z], dim=-1)
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


def _map_percent(scores: Sequence[float], labels: Sequence[int], what: str) -> float:
    """Official social mAP in percent, NaN (logged) when a class is missing."""
    try:
        return 100.0 * social_map(np.asarray(scores), np.asarray(labels))[0]
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


def _eval_batches(dataset: Dataset, batch_size: int, collate: Callable | None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def _over_batches(
    loader: DataLoader,
    per_batch: Callable[[Batch], torch.Tensor],
    progress: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """``per_batch(batch)`` for every batch of ``loader`` (reporting ``progress(done,
    total)``), concatenated on the CPU along the first axis."""
    parts = []
    for i, batch in enumerate(loader):
        parts.append(per_batch(batch).cpu())
        if progress is not None:
            progress(i + 1, len(loader))
    return torch.cat(parts) if parts else torch.zeros(0)


def _probabilities(
    model: nn.Module,
    step: StepFn,
    loader: DataLoader,
    device: torch.device,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    def class_one(batch: Batch) -> torch.Tensor:
        return torch.softmax(step(model, batch, device).logits.float(), dim=-1)[:, 1]

    return _over_batches(loader, class_one, progress).numpy()


def _segment_map(sample_logits: torch.Tensor, samples: Sequence[Any], what: str) -> float:
    """Segment mAP (percent) of per-sample 2-way logits ``(N, 2)`` of TTM sub-clips:
    ``softmax(mean of a segment's sub-clip logits)[1]`` (:func:`ttm_segment_scores`)."""
    seg = ttm_segment_scores([s.segment_id for s in samples], sample_logits.numpy())
    label_of = {s.segment_id: s.label for s in samples}
    return _map_percent(list(seg.values()), [label_of[k] for k in seg], what)


def _person_boxes(clips: Sequence[Ego4dClip]) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    """``(clip_uid, person_id) -> {frame: xyxy}`` of every non-wearer person."""
    return {
        (c.clip_uid, p.person_id): c.person_boxes_xyxy(p.person_id)
        for c in clips
        for p in c.persons
        if not p.is_camera_wearer
    }


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


def build_ego4d_task(config: TrainConfig, ctx: DistributedContext) -> Ego4dTrainingTask:
    """The :class:`Ego4dTrainingTask` of ``config.model.architecture`` (``gaze-lstm``,
    ``quavf-visual``, ``quavf-audio``) on the data of ``config.ego4d``.

    Raises:
        ConfigError: missing annotations / frames / audio settings, no training sample.
        FileNotFoundError: missing files. Ego4dAnnotationError: malformed annotations.
    """
    from socialav.training.engine import apply_trainable

    data = config.ego4d
    arch = config.model.architecture
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

    if arch in ("gaze-lstm", "quavf-visual"):
        if not data.frames_dir:
            raise ConfigError(
                f"ego4d.frames_dir must name the extracted frames for {arch} "
                "(<clip_uid>/img_00001.jpg ...; `socialav data ego4d-media`), but it is empty"
            )
        frames = JpegFolderFrames(data.frames_dir)

    if arch == "gaze-lstm":

        def lam_set(cs: Sequence[Ego4dClip]) -> LamDataset:
            return LamDataset(
                lam_samples(cs, stride=data.lam_stride), frames, lam_track_boxes(cs), size_px=size
            )

        train_set = lam_set(clips)
        validate_fn = None
        if val_clips is not None:
            val_set = lam_set(val_clips)

            def validate_fn(model: nn.Module, progress: Callable | None) -> float:
                loader = _eval_batches(val_set, data.batch_size, None)
                probs = _probabilities(model, lam_step, loader, ctx.device, progress)
                return _map_percent(probs, [s.label for s in val_set.samples], "LAM")

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

        def windows(cs: Sequence[Ego4dClip], train: bool) -> TtmVisualDataset:
            found = build_ttm_visual_windows(
                cs,
                frames,
                train=train,
                feat_length=data.ttm_feat_length,
                frame_stride=data.ttm_frame_stride,
                data_stride=data.ttm_data_stride,
                score_threshold=data.ttm_score_threshold,
            )
            return TtmVisualDataset(found, frames, _person_boxes(cs), size_px=size)

        train_set = windows(clips, True)
        validate_fn = None
        if val_clips is not None:
            val_set = windows(val_clips, False)

            def validate_fn(model: nn.Module, progress: Callable | None) -> float:
                loader = _eval_batches(val_set, data.batch_size, None)
                probs = _probabilities(model, ttm_visual_step, loader, ctx.device, progress)
                groups: dict[tuple[str, int], list[int]] = {}
                for i, w in enumerate(val_set.windows):
                    groups.setdefault((w.clip_uid, w.segment_index), []).append(i)
                scores = [float(np.mean(probs[idx])) for idx in groups.values()]
                labels = [val_set.windows[idx[0]].label for idx in groups.values()]
                return _map_percent(scores, labels, "TTM (visual)")

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
        if data.audio_dir is None and data.videos_dir is None:
            raise ConfigError("ego4d.audio_dir or ego4d.videos_dir must be set for quavf-audio")
        n_mels = int(arch_config.get("n_mels", 80))

        def audio_set(cs: Sequence[Ego4dClip], train: bool) -> TtmAudioDataset:
            audio = ClipAudio([c.clip_uid for c in cs], data.audio_dir, data.videos_dir)
            return TtmAudioDataset(
                ttm_samples(cs, train=train),
                audio,
                n_mels=n_mels,
                max_frames=data.ttm_max_audio_frames,
            )

        train_set = audio_set(clips, True)
        frame_labels = [
            s.label
            for s in train_set.samples
            for _ in range(min(s.num_frames, data.ttm_max_audio_frames))
        ]
        validate_fn = None
        if val_clips is not None:
            val_set = audio_set(val_clips, False)

            def validate_fn(model: nn.Module, progress: Callable | None) -> float:
                def sample_logits(batch: Batch) -> torch.Tensor:
                    labels = batch["labels"].to(ctx.device)
                    logits = model(batch["mel"].to(ctx.device), labels.shape[1])  # (B, 2, T)
                    valid = (labels != IGNORE_INDEX).unsqueeze(1).float()
                    return (logits * valid).sum(-1) / valid.sum(-1).clamp(min=1.0)

                loader = _eval_batches(val_set, data.batch_size, collate_ttm_audio)
                logits = _over_batches(loader, sample_logits, progress)
                return _segment_map(logits, val_set.samples, "TTM (audio)")

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
    if arch == "av-transformer":
        if not data.frames_dir:
            raise ConfigError(
                "ego4d.frames_dir must name the extracted frames for av-transformer, but it is "
                "empty"
            )
        if data.audio_dir is None and data.videos_dir is None:
            raise ConfigError("ego4d.audio_dir or ego4d.videos_dir must be set for av-transformer")
        frames = JpegFolderFrames(data.frames_dir)

        def av_set(cs: Sequence[Ego4dClip], train: bool) -> AvTransformerTtmDataset:
            boxes = _person_boxes(cs)
            audio = ClipAudio([c.clip_uid for c in cs], data.audio_dir, data.videos_dir)
            return AvTransformerTtmDataset(
                ttm_samples(cs, train=train), frames, boxes, audio, lip_size_px=data.lip_size_px
            )

        train_set = av_set(clips, True)
        validate_fn = None
        if val_clips is not None:
            val_set = av_set(val_clips, False)

            def validate_fn(model: nn.Module, progress: Callable | None) -> float:
                loader = _eval_batches(val_set, data.batch_size, collate_av_transformer)
                logits = _over_batches(
                    loader, lambda b: av_transformer_step(model, b, ctx.device).logits, progress
                )
                return _segment_map(logits, val_set.samples, "TTM (AV)")

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
    raise ConfigError(f"{arch!r} is not an Ego4D architecture ({EGO4D_ARCHITECTURES})")
