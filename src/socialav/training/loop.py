"""The training loop behind ``socialav train``.

One epoch (1-based ``epoch``), as in Light-ASD ``ASD.train_network`` / TalkNet
``talkNet.train_network``: the learning rate is ``lr * lr_decay ** (epoch - 1)`` (StepLR stepped
after every epoch), every mini-batch runs the audio-visual head and the auxiliary heads, the loss
of :func:`socialav.training.losses.asd_loss` is minimised with Adam. After the epoch:
validation mAP on the validation split with the official AVA semantics
(:func:`socialav.evaluation.ava.evaluate_ava`, every entity scored alone as the reference
``val_loader`` does), then the files of the run directory are written atomically::

    OUTPUT_DIR/config.json                 the configuration used
    OUTPUT_DIR/metrics.csv                 one row per finished epoch
    OUTPUT_DIR/checkpoints/state_last.pt   resumable state (also every N steps if configured)
    OUTPUT_DIR/checkpoints/model_epoch0003.pt, model_best.pt   self-describing model checkpoints

Resuming: when ``state_last.pt`` exists, :func:`train` continues from it -- model, optimizer,
scheduler, metrics, torch RNG state, and the position inside the epoch. Data order and
augmentation depend only on ``(seed, epoch, index)`` and dropout is reseeded at the start of each
epoch, so a run that is killed and resumed ends in the same state as one that was not (bit for
bit on CPU with a fixed thread count).

The best checkpoint is the epoch with the highest validation mAP (the lowest training loss when
there is no validation split).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from socialav.data.ava_csv import GROUNDTRUTH_COLUMNS, AvaLabel
from socialav.data.dataset import (
    AsdEntityDataset,
    AugmentConfig,
    LengthGroupedBatchSampler,
    collate_chunks,
)
from socialav.data.layout import DatasetLayout
from socialav.evaluation.ava import AvaValidationError, evaluate_ava
from socialav.io.atomic import atomic_write
from socialav.models.light_asd import AudioVisualASD
from socialav.models.talknet import TalkNet
from socialav.training.checkpoint import (
    load_initial_model,
    load_training_state,
    save_model_checkpoint,
    save_training_state,
)
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    init_distributed,
    shutdown_distributed,
)
from socialav.training.losses import SyncNegativePlan, asd_loss, sync_negative_plan

logger = logging.getLogger(__name__)

__all__ = [
    "ProgressEvent",
    "TrainResult",
    "TrainingHeads",
    "VisualEmbeddingCache",
    "apply_trainable",
    "set_batchnorm_momentum",
    "predict_dataset",
    "validation_map",
    "train",
    "METRICS_COLUMNS",
]

#: Columns of ``metrics.csv``.
METRICS_COLUMNS: tuple[str, ...] = (
    "epoch",
    "lr",
    "temperature",
    "train_loss",
    "train_loss_av",
    "train_loss_visual",
    "train_loss_audio",
    "train_accuracy",
    "val_map_percent",
    "train_frames",
    "epoch_seconds",
    "train_frames_per_s",
)
# Config entries that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {
    "epochs",
    "num_threads",
    "output_dir",
    "checkpoint_every_steps",
    "keep_epoch_checkpoints",
    "device",
}


@dataclass(frozen=True)
class ProgressEvent:
    """Reported to the progress callback after every training batch and validation entity.

    Attributes:
        stage: ``"train"`` or ``"val"``.
        epoch, epochs: 1-based epoch and the total.
        step, num_steps: batches (entities for ``val``) done and in all, in this epoch.
        loss: running mean training loss of the epoch (``None`` for ``val``).
    """

    stage: str
    epoch: int
    epochs: int
    step: int
    num_steps: int
    loss: float | None = None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        output_dir: the run directory.
        history: one dict per finished epoch (the ``metrics.csv`` rows).
        best_epoch: epoch of ``model_best.pt`` (0 if no epoch finished).
        best_val_map_percent: its validation mAP (NaN without validation).
        best_checkpoint, last_state: paths.
        model: the trained model (last epoch) in memory, unwrapped from DDP.
    """

    output_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_map_percent: float = math.nan
    best_checkpoint: Path | None = None
    last_state: Path | None = None
    model: AudioVisualASD | None = None


class TrainingHeads(nn.Module):
    """All training outputs of an ASD model in one ``forward`` (so DDP sees one call).

    ``forward(faces (B, T, 112, 112), mfcc (B, 4T, 13))`` returns ``(av_logits, visual_logits,
    audio_logits | None)``, each ``(B, T, 2)``: for Light-ASD / LR-ASD the visual head acts on
    the visual encoder output (``ASD.train_network``), for TalkNet the auxiliary heads act on the
    cross-attended embeddings (:meth:`~socialav.models.talknet.TalkNet.forward_heads`).

    Light-ASD / LR-ASD only: ``visual_embed`` ``(B, T, 128)`` replaces the visual encoder
    (cached embeddings of a frozen encoder; ``faces`` is then ignored), and with a
    :class:`~socialav.training.losses.SyncNegativePlan` ``sync_plan`` a fourth output
    ``(M, 2)`` holds the audio-visual logits of all frames of the synchrony negatives (or
    ``None``) and a fifth the offset-contrastive loss (0-d, or ``None``).
    """

    def __init__(self, model: AudioVisualASD) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        faces: torch.Tensor,
        mfcc: torch.Tensor,
        visual_embed: torch.Tensor | None = None,
        sync_plan: SyncNegativePlan | None = None,
    ) -> tuple[torch.Tensor, ...]:
        from socialav.training.losses import sync_negative_pairs, sync_offset_nce

        if isinstance(self.model, TalkNet):
            if visual_embed is not None or sync_plan is not None:
                raise ValueError(
                    "cached visual embeddings and sync negatives need Light-ASD/LR-ASD"
                )
            av, audio, visual = self.model.forward_heads(faces, mfcc)
            return av, visual, audio
        audio_embed = self.model.encode_audio(mfcc)
        if visual_embed is None:
            visual_embed = self.model.encode_visual(faces)
        if audio_embed.shape[:2] != visual_embed.shape[:2]:
            raise ValueError(
                f"mfcc {tuple(mfcc.shape)} and faces {tuple(faces.shape)} describe different spans"
            )
        av = self.model.av_head(self.model.decode(audio_embed, visual_embed))
        if sync_plan is None:
            return av, self.model.visual_head(visual_embed), None
        negatives = [
            self.model.av_head(self.model.decode(a, v)).reshape(-1, 2)
            for a, v in sync_negative_pairs(audio_embed, visual_embed, sync_plan)
        ]
        nce = None
        if sync_plan.nce_max_offset_frames > 0:
            nce = sync_offset_nce(
                audio_embed,
                visual_embed,
                sync_plan.speech.to(audio_embed.device),
                sync_plan.nce_max_offset_frames,
                sync_plan.nce_temperature,
            )
        neg = torch.cat(negatives) if negatives else None
        return av, self.model.visual_head(visual_embed), None, neg, nce


class VisualEmbeddingCache:
    """Visual embeddings of a frozen visual encoder, computed once per ``(chunk, length)``.

    The encoder runs in eval mode in its convolution-folded form
    (:func:`socialav.inference.conv2d_visual_encoder`, equal to the model to about 1e-6), on
    the faces of the chunk as batched (cut to the batch's shortest chunk), so a cached
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

        from socialav.inference import conv2d_visual_encoder

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


def _matches(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def apply_trainable(model: nn.Module, prefixes: list[str] | None) -> list[str]:
    """Freeze every parameter outside the module-name ``prefixes`` (``None``: train all).

    Returns:
        Names of the trainable parameters.

    Raises:
        ConfigError: a prefix matches no parameter (the message lists the top-level modules).
    """
    names = [n for n, _ in model.named_parameters()]
    if prefixes is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return names
    unused = [p for p in prefixes if not any(_matches(n, [p]) for n in names)]
    if unused:
        tops = sorted({n.split(".")[0] for n in names})
        raise ConfigError(f"model.trainable prefixes {unused} match no parameter; modules: {tops}")
    trainable = []
    for name, param in model.named_parameters():
        keep = _matches(name, prefixes)
        param.requires_grad_(keep)
        if keep:
            trainable.append(name)
    return trainable


def _set_train_mode(model: nn.Module, prefixes: list[str] | None, freeze_bn: bool) -> None:
    model.train()
    if prefixes is None or not freeze_bn:
        return
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not _matches(name, prefixes):
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
    embeddings instead of running the encoder.

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
            if visual_cache is None:
                logits = model(faces, mfcc)[0].float()
            else:
                visual = visual_cache.get(torch.tensor([i]), faces)
                audio = model.encode_audio(mfcc)
                logits = model.av_head(model.decode(audio, visual))[0].float()
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


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(history, columns=list(METRICS_COLUMNS))
    with atomic_write(path, "w", newline="") as fh:
        frame.to_csv(fh, index=False)


def _check_resume_config(stored: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    diffs = []
    for section, value in current.items():
        if section in _RESUMABLE_CHANGES:
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                if section == "data" and key == "num_workers":
                    continue
                old = stored.get(section, {}).get(key)
                if old != item and not (isinstance(item, tuple) and list(item) == old):
                    diffs.append(f"{section}.{key}: checkpoint {old!r}, now {item!r}")
        elif stored.get(section) != value:
            diffs.append(f"{section}: checkpoint {stored.get(section)!r}, now {value!r}")
    if diffs:
        raise ConfigError(
            f"cannot resume from {path}: the configuration changed ("
            + "; ".join(diffs)
            + "); use a new output_dir or restore the old values"
        )


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off":
        return None
    if config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def train(config: TrainConfig, progress: ProgressCallback | None = None) -> TrainResult:
    """Train (or resume training) as configured; see the module docstring.

    Under torchrun (``WORLD_SIZE > 1``) every process calls this; rank 0 validates and writes
    the files.

    Raises:
        ConfigError: bad configuration, or a resumption whose configuration changed.
        FileNotFoundError: missing data or weights.
        CheckpointError: an unusable ``state_last.pt`` or initial checkpoint.
    """
    config.validate()
    context = init_distributed(config.device)
    try:
        return _train(config, context, progress)
    finally:
        shutdown_distributed(context)


def _train(
    config: TrainConfig, ctx: DistributedContext, progress: ProgressCallback | None
) -> TrainResult:
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out = Path(config.output_dir)
    ckpt_dir = out / "checkpoints"
    state_path = ckpt_dir / "state_last.pt"
    if not config.data.root:
        raise ConfigError("data.root must name a prepared dataset root, but it is empty")
    cfg_dict = config.to_dict()
    device = ctx.device
    amp_dtype = _autocast_dtype(config, device)

    torch.manual_seed(config.seed)
    model = load_initial_model(config.model.init_weights, config.model.architecture)
    if config.model.batchnorm_momentum is not None:
        set_batchnorm_momentum(model, config.model.batchnorm_momentum)
    prefixes = config.model.trainable
    trainable = apply_trainable(model, prefixes)
    model.to(device)
    heads: nn.Module = TrainingHeads(model)
    if ctx.distributed:
        heads = nn.parallel.DistributedDataParallel(
            heads, device_ids=[device.index] if device.type == "cuda" else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.optim.lr_decay)

    augment = AugmentConfig(
        visual=config.data.augment_visual, audio_noise=config.data.augment_audio_noise
    )
    train_set = AsdEntityDataset(
        config.data.root,
        config.data.train_split,
        max_chunk_frames=config.data.max_chunk_frames,
        augment=augment,
        seed=config.seed,
    )
    sampler = LengthGroupedBatchSampler(
        train_set.lengths,
        config.data.max_frames_per_batch,
        shuffle=True,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    train_cache = val_cache = None
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
            caches.append(
                VisualEmbeddingCache(model, cache_dir / f"visual_{split}.pt", dataset_key=key)
            )
        train_cache, val_cache = caches
    sync_range = tuple(config.loss.sync_shift_frames_range)
    val_set = None
    if config.data.val_split and ctx.is_main:
        val_set = AsdEntityDataset(
            config.data.root, config.data.val_split, max_chunk_frames=config.data.max_chunk_frames
        )

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "val_map_percent": math.nan, "train_loss": math.inf}
    start_epoch, start_step = 1, 0
    sums: dict[str, float] = {}
    if state_path.is_file():
        state = load_training_state(state_path)
        _check_resume_config(state["train_config"], cfg_dict, state_path)
        model.load_state_dict(state["state_dict"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best = list(state["history"]), dict(state["best"])
        start_epoch, start_step = int(state["epoch"]), int(state["step"])
        if start_step < 0:
            start_epoch, start_step = start_epoch + 1, 0
        else:
            sums = dict(state["epoch_sums"])
            torch.set_rng_state(state["torch_rng_state"])
        logger.info("resuming %s at epoch %d step %d", state_path, start_epoch, start_step)
    elif ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "config.json") as fh:
            import json

            json.dump(cfg_dict, fh, indent=2)
    logger.info(
        "training %s: %d trainable parameter tensors, %d train chunks in %d batches/rank, "
        "device %s, autocast %s",
        config.model.architecture,
        len(trainable),
        len(train_set),
        len(sampler),
        device,
        amp_dtype,
    )

    for epoch in range(start_epoch, config.epochs + 1):
        first_step = start_step if epoch == start_epoch else 0
        if first_step == 0:
            torch.manual_seed(config.seed * 1_000_003 + epoch * 1009 + ctx.rank)
            sums = {}
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch, first_step)
        loader = DataLoader(
            train_set,
            batch_sampler=sampler,
            collate_fn=collate_chunks,
            num_workers=config.data.num_workers,
            pin_memory=device.type == "cuda",
        )
        num_steps = len(sampler)
        for key in (
            "loss",
            "loss_av",
            "loss_visual",
            "loss_audio",
            "correct",
            "frames",
            "batches",
            "seconds",
        ):
            sums.setdefault(key, 0.0)
        lr = optimizer.param_groups[0]["lr"]
        tick = time.perf_counter()
        step = first_step
        r = float("nan")
        for step, batch in enumerate(loader, start=first_step + 1):
            _set_train_mode(model, prefixes, config.model.freeze_batchnorm)
            faces = batch["faces"].to(device, non_blocking=True)
            mfcc = batch["mfcc"].to(device, non_blocking=True)
            labels = batch["labels"].to(device, non_blocking=True)
            visual_embed = None
            if train_cache is not None:
                visual_embed = train_cache.get(batch["index"], faces)
            plan = None
            if config.loss.sync_negatives_weight > 0 or config.loss.sync_nce_weight > 0:
                plan = sync_negative_plan(
                    labels,
                    sync_range,  # type: ignore[arg-type]
                    nce_max_offset_frames=(
                        config.loss.sync_nce_max_offset_frames
                        if config.loss.sync_nce_weight > 0
                        else 0
                    ),
                    nce_temperature=config.loss.sync_nce_temperature,
                )
            with torch.autocast(
                device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
            ):
                outputs = heads(faces, mfcc, visual_embed, plan)
            av, visual, audio = outputs[:3]
            sync_logits = outputs[3] if len(outputs) > 3 else None
            sync_nce = outputs[4] if len(outputs) > 4 else None
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
            r = terms.temperature
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            sums["loss"] += float(terms.total.detach())
            sums["loss_av"] += float(terms.av.detach())
            sums["loss_visual"] += float(terms.visual.detach())
            sums["loss_audio"] += float(terms.audio.detach())
            sums["correct"] += float(((av[..., 1] > av[..., 0]).long() == labels).sum())
            sums["frames"] += float(labels.numel())
            sums["batches"] += 1
            if progress is not None:
                progress(
                    ProgressEvent(
                        "train",
                        epoch,
                        config.epochs,
                        step,
                        num_steps,
                        sums["loss"] / sums["batches"],
                    )
                )
            every = config.checkpoint_every_steps
            if every and step % every == 0 and step < num_steps and ctx.is_main:
                partial = dict(sums, seconds=sums["seconds"] + time.perf_counter() - tick)
                save_training_state(
                    state_path,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    epoch=epoch,
                    step=step,
                    epoch_sums=partial,
                    history=history,
                    best=best,
                    train_config=cfg_dict,
                    training_data=config.training_data,
                )
        sums["seconds"] += time.perf_counter() - tick
        if train_cache is not None and ctx.is_main:
            train_cache.save()
        keys = ("loss", "loss_av", "loss_visual", "loss_audio", "correct", "frames", "batches")
        totals = dict(zip(keys, all_reduce_sum([sums[k] for k in keys], ctx), strict=True))
        scheduler.step()
        broadcast_buffers(model, ctx)
        if math.isnan(r):
            r = config.loss.temperature_start - config.loss.temperature_step * (epoch - 1)

        val_map = math.nan
        if val_set is not None:

            def val_progress(done: int, total: int, _epoch: int = epoch) -> None:
                if progress is not None:
                    progress(ProgressEvent("val", _epoch, config.epochs, done, total))

            val_map, _ = validation_map(
                model,
                val_set,
                device,
                autocast_dtype=amp_dtype,
                progress=val_progress,
                visual_cache=val_cache,
            )
        if val_cache is not None:
            val_cache.save()
        batches = max(totals["batches"], 1.0)
        record = {
            "epoch": epoch,
            "lr": lr,
            "temperature": r,
            "train_loss": totals["loss"] / batches,
            "train_loss_av": totals["loss_av"] / batches,
            "train_loss_visual": totals["loss_visual"] / batches,
            "train_loss_audio": totals["loss_audio"] / batches,
            "train_accuracy": totals["correct"] / max(totals["frames"], 1.0),
            "val_map_percent": val_map,
            "train_frames": int(totals["frames"]),
            "epoch_seconds": sums["seconds"],
            "train_frames_per_s": totals["frames"] / max(sums["seconds"], 1e-9),
        }
        history.append(record)
        logger.info("epoch %d: %s", epoch, record)
        if ctx.is_main:
            improved = (
                (not math.isnan(val_map) and not val_map <= best.get("val_map_percent", -1.0))
                if config.data.val_split
                else record["train_loss"] < best.get("train_loss", math.inf)
            )
            if best["epoch"] == 0 or improved:
                best = {
                    "epoch": epoch,
                    "val_map_percent": val_map,
                    "train_loss": record["train_loss"],
                }
                save_model_checkpoint(
                    ckpt_dir / "model_best.pt",
                    model,
                    training_data=config.training_data,
                    metrics=record,
                    train_config=cfg_dict,
                )
            if config.keep_epoch_checkpoints:
                save_model_checkpoint(
                    ckpt_dir / f"model_epoch{epoch:04d}.pt",
                    model,
                    training_data=config.training_data,
                    metrics=record,
                    train_config=cfg_dict,
                )
            save_training_state(
                state_path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch,
                step=-1,
                epoch_sums={},
                history=history,
                best=best,
                train_config=cfg_dict,
                training_data=config.training_data,
            )
            _write_metrics(out / "metrics.csv", history)
        barrier(ctx)

    best_path = ckpt_dir / "model_best.pt"
    return TrainResult(
        output_dir=out,
        history=history,
        best_epoch=int(best.get("epoch", 0)),
        best_val_map_percent=float(best.get("val_map_percent", math.nan)),
        best_checkpoint=best_path if best_path.is_file() else None,
        last_state=state_path if state_path.is_file() else None,
        model=model,
    )
