"""Active speaker detection training: the ASD task of the engine.

One epoch (1-based ``epoch``), as in Light-ASD ``ASD.train_network`` / TalkNet
``talkNet.train_network``: the learning rate is ``lr * lr_decay ** (epoch - 1)`` (StepLR stepped
after every epoch), every mini-batch runs the audio-visual head and the auxiliary heads, the loss
of :func:`socialav.training.losses.asd_loss` is minimised with Adam. After the epoch:
validation mAP on the validation split with the official AVA semantics
(:func:`socialav.evaluation.ava.evaluate_ava`, every entity scored alone as the reference
``val_loader`` does). Checkpointing, resumption, best-epoch selection and the distributed
path are the engine's (:mod:`socialav.training.engine`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from socialav.data.dataset import (
    AsdEntityDataset,
    AugmentConfig,
    LengthGroupedBatchSampler,
    collate_chunks,
)
from socialav.data.layout import DatasetLayout
from socialav.evaluation.ava import AvaValidationError, evaluate_ava
from socialav.io.atomic import atomic_write
from socialav.io.ava_csv import GROUNDTRUTH_COLUMNS, AvaLabel
from socialav.models.light_asd import AudioVisualASD
from socialav.models.scene_context import SceneContextASD
from socialav.models.talknet import TalkNet
from socialav.training.checkpoint import load_initial_model
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.distributed import (
    DistributedContext,
)
from socialav.training.engine import (
    StepResult,
    TrainingTask,
    apply_trainable,
    matches_prefix,
)
from socialav.training.losses import (
    CONTEXT_LOSS_WEIGHT,
    SyncNegativePlan,
    asd_loss,
    softmax_bce,
    sync_negative_plan,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AsdTrainingTask",
    "TrainingHeads",
    "VisualEmbeddingCache",
    "set_batchnorm_momentum",
    "predict_dataset",
    "validation_map",
    "METRICS_COLUMNS",
]

#: Columns of ``metrics.csv`` of an ASD run.
METRICS_COLUMNS: tuple[str, ...] = (
    "epoch",
    "lr",
    "temperature",
    "train_loss",
    "train_loss_av",
    "train_loss_visual",
    "train_loss_audio",
    "train_loss_context",
    "train_accuracy",
    "val_map_percent",
    "train_frames",
    "epoch_seconds",
    "train_frames_per_s",
)


class TrainingHeads(nn.Module):
    """All training outputs of an ASD model in one ``forward`` (so DDP sees one call).

    ``forward(faces (B, T, 112, 112), mfcc (B, 4T, 13))`` returns ``(av_logits, visual_logits,
    audio_logits | None)``, each ``(B, T, 2)``: for Light-ASD / LR-ASD the visual head acts on
    the visual encoder output (``ASD.train_network``), for TalkNet the auxiliary heads act on the
    cross-attended embeddings (:meth:`~socialav.models.talknet.TalkNet.forward_heads`).

    Light-ASD / LR-ASD and scene-context models on them: ``visual_embed`` ``(B, T, 128)``
    replaces the visual encoder (cached embeddings of a frozen encoder; ``faces`` is then
    ignored); with a :class:`~socialav.training.losses.SyncNegativePlan` ``sync_plan`` a
    fourth output ``(M, 2)`` holds the audio-visual logits of all frames of the synchrony
    negatives (or ``None``) and a fifth the offset-contrastive loss (0-d, or ``None``); a
    :class:`~socialav.models.scene_context.SceneContextASD` takes ``scenes`` ``(B, T, 3, S,
    S)``, adds its context term to the visual embeddings before the back-end (also for the
    synchrony negatives: same faces and scene, wrong audio) and returns the context head's
    logits ``(B, T, 2)`` sixth (``None`` for other models).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        faces: torch.Tensor,
        mfcc: torch.Tensor,
        visual_embed: torch.Tensor | None = None,
        sync_plan: SyncNegativePlan | None = None,
        scenes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, ...]:
        from socialav.training.losses import sync_negative_pairs, sync_offset_nce

        if isinstance(self.model, TalkNet):
            if visual_embed is not None or sync_plan is not None:
                raise ValueError(
                    "cached visual embeddings and sync negatives need Light-ASD/LR-ASD"
                )
            av, audio, visual = self.model.forward_heads(faces, mfcc)
            return av, visual, audio
        base, context_logits, context_term = self.model, None, None
        if isinstance(self.model, SceneContextASD):
            if scenes is None:
                raise ValueError("a scene-context model needs scenes (B, T, 3, S, S)")
            base = self.model.base
            context = self.model.encode_scene(scenes)
            context_term = self.model.context_term(context)
            context_logits = self.model.context_head(context)
        audio_embed = base.encode_audio(mfcc)
        if visual_embed is None:
            visual_embed = base.encode_visual(faces)
        if audio_embed.shape[:2] != visual_embed.shape[:2]:
            raise ValueError(
                f"mfcc {tuple(mfcc.shape)} and faces {tuple(faces.shape)} describe different spans"
            )
        fused = visual_embed if context_term is None else visual_embed + context_term
        av = base.av_head(base.decode(audio_embed, fused))
        visual = base.visual_head(visual_embed)
        if sync_plan is None:
            return av, visual, None, None, None, context_logits
        negatives = [
            base.av_head(base.decode(a, v)).reshape(-1, 2)
            for a, v in sync_negative_pairs(audio_embed, fused, sync_plan)
        ]
        nce = None
        if sync_plan.nce_max_offset_frames > 0:
            nce = sync_offset_nce(
                audio_embed,
                fused,
                sync_plan.speech.to(audio_embed.device),
                sync_plan.nce_max_offset_frames,
                sync_plan.nce_temperature,
            )
        neg = torch.cat(negatives) if negatives else None
        return av, visual, None, neg, nce, context_logits


class VisualEmbeddingCache:
    """Visual embeddings of a frozen visual encoder, computed once per ``(chunk, length)``.

    The encoder runs in eval mode in its convolution-folded form
    (:func:`socialav.inference.torch_backend.conv2d_visual_encoder`, equal to the model to about
    1e-6), on the faces of the chunk as batched (cut to the batch's shortest chunk), so a cached
    embedding is exactly what the frozen encoder gives for the same input.

    With a ``path``, :meth:`save` writes the embeddings there and a later cache of the same
    encoder weights (checked by the sha256 of the visual encoder's ``state_dict``) starts from
    them; a file of other weights or another dataset is ignored.

    Args:
        model: the model whose (frozen) visual encoder is cached; a folded copy is kept.
        path: optional file to reuse and save the embeddings (``torch.save`` of a dict).
        dataset_key: identifies the chunks (e.g. the split CSV's size and mtime); a file
            with another key is ignored.
    """

    def __init__(
        self, model: AudioVisualASD, path: str | Path | None = None, dataset_key: str = ""
    ) -> None:
        import hashlib

        from socialav.inference.torch_backend import conv2d_visual_encoder

        self._model = conv2d_visual_encoder(model)
        for param in self._model.parameters():
            param.requires_grad_(False)
        self._store: dict[tuple[int, int], torch.Tensor] = {}
        digest = hashlib.sha256(dataset_key.encode())
        for name, tensor in sorted(model.visual_encoder.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.fingerprint = digest.hexdigest()
        self.path = Path(path) if path is not None else None
        self._saved = 0
        if self.path is not None and self.path.is_file():
            obj = torch.load(self.path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and obj.get("fingerprint") == self.fingerprint:
                keys, values = obj["keys"].tolist(), obj["embeddings"]
                self._store = {(int(i), int(t)): v for (i, t), v in zip(keys, values, strict=True)}
                self._saved = len(self._store)
                logger.info("reusing %d cached visual embeddings from %s", self._saved, self.path)

    def save(self) -> None:
        """Write the embeddings to ``path`` atomically (no-op without a path or news)."""
        if self.path is None or len(self._store) == self._saved:
            return
        import io

        keys = sorted(self._store)
        buffer = io.BytesIO()
        torch.save(
            {
                "fingerprint": self.fingerprint,
                "keys": torch.tensor(keys, dtype=torch.int64),
                "embeddings": [self._store[k] for k in keys],
            },
            buffer,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "wb") as fh:
            fh.write(buffer.getvalue())
        self._saved = len(keys)

    def __len__(self) -> int:
        return len(self._store)

    @torch.no_grad()
    def get(self, indices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """``(B, T, 128)`` float32 embeddings of ``faces`` ``(B, T, 112, 112)`` whose chunk
        indices are ``indices`` ``(B,)``, on the device of ``faces``."""
        frames = int(faces.shape[1])
        rows = []
        for row, index in enumerate(indices.tolist()):
            key = (int(index), frames)
            if key not in self._store:
                device = next(self._model.parameters()).device
                embed = self._model.encode_visual(faces[row : row + 1].to(device))
                self._store[key] = embed[0].float().cpu()
            rows.append(self._store[key])
        return torch.stack(rows).to(faces.device)


def set_batchnorm_momentum(model: nn.Module, momentum: float) -> int:
    """Set the running-statistics momentum of every batch-norm layer of ``model``.

    Returns:
        The number of layers changed.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = float(momentum)
            changed += 1
    return changed


def _set_train_mode(model: nn.Module, prefixes: list[str] | None, freeze_bn: bool) -> None:
    model.train()
    if prefixes is None or not freeze_bn:
        return
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not matches_prefix(
            name, prefixes
        ):
            module.eval()


@torch.no_grad()
def predict_dataset(
    model: AudioVisualASD,
    dataset: AsdEntityDataset,
    device: torch.device | str = "cpu",
    *,
    autocast_dtype: torch.dtype | None = None,
    progress: Callable[[int, int], None] | None = None,
    visual_cache: VisualEmbeddingCache | None = None,
) -> pd.DataFrame:
    """Score every chunk of ``dataset`` alone (batch of 1, as the reference ``val_loader``).

    ``visual_cache`` (Light-ASD / LR-ASD with a frozen visual encoder) supplies the visual
    embeddings instead of running the encoder. A scene-context model reads the sample's
    ``scenes`` (a dataset built with ``scenes=True``).

    Returns:
        DataFrame with ``video_id``, ``entity_id``, ``frame_timestamp`` (s) and ``score``
        (``softmax(logits)[..., 1]``, the speaking probability), one row per annotated frame.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    rows: list[pd.DataFrame] = []
    for i in range(len(dataset)):
        sample = dataset[i]
        faces = sample["faces"][None].to(device)
        mfcc = sample["mfcc"][None].to(device)
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            base, term = model, None
            if isinstance(model, SceneContextASD):
                base = model.base
                term = model.context_term(model.encode_scene(sample["scenes"][None].to(device)))
            if visual_cache is None:
                visual = base.encode_visual(faces)
            else:
                visual = visual_cache.get(torch.tensor([i]), faces)
            if term is not None:
                visual = visual + term
            logits = base.av_head(base.decode(base.encode_audio(mfcc), visual))[0].float()
        score = torch.softmax(logits, dim=-1)[:, 1].cpu().numpy().astype(np.float64)
        video_id, entity_id, stamps = dataset.chunk_keys(i)
        rows.append(
            pd.DataFrame(
                {
                    "video_id": video_id,
                    "entity_id": entity_id,
                    "frame_timestamp": stamps,
                    "score": score,
                }
            )
        )
        if progress is not None:
            progress(i + 1, len(dataset))
    model.train(was_training)
    return pd.concat(rows, ignore_index=True)


def validation_map(
    model: AudioVisualASD,
    dataset: AsdEntityDataset,
    device: torch.device | str = "cpu",
    *,
    autocast_dtype: torch.dtype | None = None,
    progress: Callable[[int, int], None] | None = None,
    visual_cache: VisualEmbeddingCache | None = None,
) -> tuple[float, pd.DataFrame]:
    """AVA mAP (percent, official semantics) of ``model`` on ``dataset``.

    Predictions are joined to the split's ground truth on ``(entity_id, frame_timestamp)``
    (never by row order) and given to :func:`socialav.evaluation.ava.evaluate_ava`.

    Returns:
        ``(map_percent, prediction table in the AVA upload layout)``; mAP is NaN when the split
        has no ``SPEAKING_AUDIBLE`` frame.
    """
    scores = predict_dataset(
        model,
        dataset,
        device,
        autocast_dtype=autocast_dtype,
        progress=progress,
        visual_cache=visual_cache,
    )
    gt = dataset.groundtruth
    keyed = dict(
        zip(
            zip(scores["entity_id"], scores["frame_timestamp"], strict=True),
            scores["score"],
            strict=True,
        )
    )
    pred = gt[list(GROUNDTRUTH_COLUMNS)].copy()
    pred["label"] = AvaLabel.SPEAKING_AUDIBLE.value
    pred["score"] = [
        keyed.get((e, t), math.nan)
        for e, t in zip(gt["entity_id"], gt["frame_timestamp"], strict=True)
    ]
    try:
        result = evaluate_ava(gt, pred)
    except AvaValidationError as err:
        if err.problem == "no_positives":
            return math.nan, pred
        raise
    return result.map_percent, pred


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off":
        return None
    if config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class AsdTrainingTask(TrainingTask):
    """Training of Light-ASD / LR-ASD / TalkNet on a prepared AVA-layout root (``data``).

    Batches: :class:`~socialav.data.dataset.AsdEntityDataset` chunks grouped by length
    (``data.max_frames_per_batch`` frames per batch, shuffled by ``(seed, epoch)``, sharded by
    rank). Loss: :func:`~socialav.training.losses.asd_loss` (audio-visual + auxiliary heads,
    optional synchrony negatives and offset-contrastive term). Validation: AVA mAP of the
    validation split (:func:`validation_map`).

    Args:
        config: the run's configuration.
        ctx: the process's distributed context.

    Raises:
        ConfigError: ``data.root`` empty, or ``model.trainable`` naming no parameter.
        FileNotFoundError: missing data or weights.
    """

    metrics_columns = METRICS_COLUMNS
    sum_keys = ("loss_av", "loss_visual", "loss_audio", "loss_context", "correct", "frames")

    def __init__(self, config: TrainConfig, ctx: DistributedContext) -> None:
        if not config.data.root:
            raise ConfigError("data.root must name a prepared dataset root, but it is empty")
        self.config = config
        self.ctx = ctx
        device = ctx.device
        self.device = device
        self.amp_dtype = _autocast_dtype(config, device)
        torch.manual_seed(config.seed)
        model = load_initial_model(
            config.model.init_weights, config.model.architecture, config.model.architecture_config
        )
        self.scene_context = isinstance(model, SceneContextASD)
        if self.scene_context and isinstance(model.base, TalkNet):
            raise ConfigError(
                "scene-context training needs a Light-ASD or LR-ASD base "
                "(model.architecture_config.base), but got talknet"
            )
        if config.model.batchnorm_momentum is not None:
            set_batchnorm_momentum(model, config.model.batchnorm_momentum)
        self.prefixes = config.model.trainable
        self.trainable = apply_trainable(model, self.prefixes)
        self.model = model.to(device)
        self.train_module = TrainingHeads(self.model)
        self.architecture_config = model.architecture_config() if self.scene_context else {}
        self.input_contract = {"scene_size_px": model.scene_size_px} if self.scene_context else {}
        scene_args = (
            {"scenes": True, "scene_size_px": model.scene_size_px} if self.scene_context else {}
        )
        augment = AugmentConfig(
            visual=config.data.augment_visual, audio_noise=config.data.augment_audio_noise
        )
        self.train_set = AsdEntityDataset(
            config.data.root,
            config.data.train_split,
            max_chunk_frames=config.data.max_chunk_frames,
            augment=augment,
            seed=config.seed,
            **scene_args,
        )
        self.sampler = LengthGroupedBatchSampler(
            self.train_set.lengths,
            config.data.max_frames_per_batch,
            shuffle=True,
            seed=config.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        self.train_cache = self.val_cache = None
        if config.model.cache_visual_embeddings:
            cache_dir = Path(config.data.root) / "cache"
            caches = []
            for split in (config.data.train_split, config.data.val_split):
                csv = DatasetLayout(Path(config.data.root)).csv_path(split) if split else None
                key = (
                    f"{csv}:{csv.stat().st_size}:{csv.stat().st_mtime_ns}"
                    if csv and csv.is_file()
                    else ""
                )
                key += f":{config.data.max_chunk_frames}"
                encoder_owner = model.base if self.scene_context else model
                caches.append(
                    VisualEmbeddingCache(
                        encoder_owner, cache_dir / f"visual_{split}.pt", dataset_key=key
                    )
                )
            self.train_cache, self.val_cache = caches
        self.has_validation = bool(config.data.val_split)
        self.val_set = None
        if config.data.val_split and ctx.is_main:
            self.val_set = AsdEntityDataset(
                config.data.root,
                config.data.val_split,
                max_chunk_frames=config.data.max_chunk_frames,
                **scene_args,
            )
        logger.info(
            "training %s: %d trainable parameter tensors, %d train chunks in %d batches/rank, "
            "device %s, autocast %s",
            config.model.architecture,
            len(self.trainable),
            len(self.train_set),
            len(self.sampler),
            device,
            self.amp_dtype,
        )

    def num_steps(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int, first_step: int) -> Iterable[dict[str, torch.Tensor]]:
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch, first_step)
        return DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            collate_fn=collate_chunks,
            num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def set_train_mode(self) -> None:
        _set_train_mode(self.model, self.prefixes, self.config.model.freeze_batchnorm)

    def step(self, module: nn.Module, batch: dict[str, torch.Tensor], epoch: int) -> StepResult:
        config, device = self.config, self.device
        faces = batch["faces"].to(device, non_blocking=True)
        mfcc = batch["mfcc"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        visual_embed = None
        if self.train_cache is not None:
            visual_embed = self.train_cache.get(batch["index"], faces)
        plan = None
        if config.loss.sync_negatives_weight > 0 or config.loss.sync_nce_weight > 0:
            plan = sync_negative_plan(
                labels,
                tuple(config.loss.sync_shift_frames_range),  # type: ignore[arg-type]
                nce_max_offset_frames=(
                    config.loss.sync_nce_max_offset_frames if config.loss.sync_nce_weight > 0 else 0
                ),
                nce_temperature=config.loss.sync_nce_temperature,
            )
        scenes = batch["scenes"].to(device, non_blocking=True) if self.scene_context else None
        amp = self.amp_dtype
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            outputs = module(faces, mfcc, visual_embed, plan, scenes)
        av, visual, audio = outputs[:3]
        sync_logits = outputs[3] if len(outputs) > 3 else None
        sync_nce = outputs[4] if len(outputs) > 4 else None
        context_logits = outputs[5] if len(outputs) > 5 else None
        if sync_logits is not None and config.loss.sync_negatives_weight == 0:
            sync_logits = None
        terms = asd_loss(
            av.float(),
            labels,
            visual.float(),
            None if audio is None else audio.float(),
            config.loss,
            epoch,
            None if sync_logits is None else sync_logits.float(),
            sync_nce,
        )
        total, loss_context = terms.total, 0.0
        if context_logits is not None:  # TalkNet+DeiT's auxiliary context loss
            context = softmax_bce(context_logits.float(), labels, terms.temperature)
            total = total + CONTEXT_LOSS_WEIGHT * context
            loss_context = float(context.detach())
        return StepResult(
            total,
            {
                "loss_context": loss_context,
                "loss_av": float(terms.av.detach()),
                "loss_visual": float(terms.visual.detach()),
                "loss_audio": float(terms.audio.detach()),
                "correct": float(((av[..., 1] > av[..., 0]).long() == labels).sum()),
                "frames": float(labels.numel()),
            },
        )

    def epoch_metrics(self, epoch: int, totals: Mapping[str, float], seconds: float) -> dict:
        loss = self.config.loss
        batches = max(totals["batches"], 1.0)
        return {
            "temperature": loss.temperature_start - loss.temperature_step * (epoch - 1),
            "train_loss_av": totals["loss_av"] / batches,
            "train_loss_visual": totals["loss_visual"] / batches,
            "train_loss_audio": totals["loss_audio"] / batches,
            "train_loss_context": totals["loss_context"] / batches,
            "train_accuracy": totals["correct"] / max(totals["frames"], 1.0),
            "train_frames": int(totals["frames"]),
            "train_frames_per_s": totals["frames"] / max(seconds, 1e-9),
        }

    def validate(self, epoch: int, progress: Callable[[int, int], None] | None) -> float:
        if self.val_set is None:
            return math.nan
        val_map, _ = validation_map(
            self.model,
            self.val_set,
            self.device,
            autocast_dtype=self.amp_dtype,
            progress=progress,
            visual_cache=self.val_cache,
        )
        return val_map

    def end_of_epoch(self, is_main: bool) -> None:
        if not is_main:
            return
        for cache in (self.train_cache, self.val_cache):
            if cache is not None:
                cache.save()
