"""The training engine behind ``socialav train``: one loop for every task.

A :class:`TrainingTask` says *what* is trained (the architecture, its batches, its loss, its
validation metric); the engine does the rest the same way for every task -- active speaker
detection (:mod:`socialav.training.tasks.asd`), Ego4D Looking-at-Me and Talking-to-Me
(:mod:`socialav.training.tasks.ego4d`):

- Adam over the trainable parameters (``optim.lr``, ``optim.weight_decay``), StepLR with
  ``gamma = optim.lr_decay`` stepped once per epoch (lr in epoch ``e`` is
  ``lr * lr_decay ** (e - 1)``, as Light-ASD's ``ASD.train_network``), optional gradient-norm
  clipping (``optim.grad_clip``; QuAVF's ``engine.py`` clips at 1);
- after every epoch the task's validation metric (mAP in percent), then, written atomically::

      OUTPUT_DIR/config.json                 the configuration used
      OUTPUT_DIR/metrics.csv                 one row per finished epoch (task's columns)
      OUTPUT_DIR/checkpoints/state_last.pt   resumable state (also every N steps if configured)
      OUTPUT_DIR/checkpoints/model_epoch0003.pt, model_best.pt   self-describing checkpoints

- resumption: when ``state_last.pt`` exists the run continues from it -- model, optimizer,
  scheduler, metrics, torch RNG state and the position inside the epoch. Tasks draw data order
  and augmentation from ``(seed, epoch, index)`` only and the torch RNG is reseeded at the start
  of each epoch, so a run that is killed and resumed ends in the same state as one that was not
  (bit for bit on CPU with a fixed thread count);
- the best checkpoint is the epoch with the highest validation mAP (the lowest training loss
  when the task has no validation data);
- under torchrun (``WORLD_SIZE > 1``) the task's training module is wrapped in
  ``DistributedDataParallel``, sums are all-reduced, rank 0 validates and writes the files.

The split follows pyannote-audio's Model / Task separation (``../shared/STYLE.md``): the model
class holds the architecture only; the task turns data into batches and a loss.
"""

from __future__ import annotations

import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from socialav.checkpoints.format import save_model_checkpoint
from socialav.io.atomic import atomic_write
from socialav.training.checkpoint import load_training_state, save_training_state
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ProgressEvent",
    "ProgressCallback",
    "StepResult",
    "TrainingTask",
    "TrainResult",
    "run_training",
]

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
    """Reported to the progress callback after every training batch and validation item.

    Attributes:
        stage: ``"train"`` or ``"val"``.
        epoch, epochs: 1-based epoch and the total.
        step, num_steps: batches (validation items for ``val``) done and in all, this epoch.
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
class StepResult:
    """What a task's :meth:`TrainingTask.step` returns for one batch.

    Attributes:
        loss: 0-d tensor to minimise.
        sums: per-batch sums of the task's running statistics (keys of
            :attr:`TrainingTask.sum_keys`, e.g. loss terms, correct predictions, items).
    """

    loss: torch.Tensor
    sums: dict[str, float]


class TrainingTask(ABC):
    """What one kind of training needs beyond the engine (see the module docstring).

    Attributes set by subclasses:
        model: the architecture trained (saved in checkpoints; unwrapped).
        train_module: the module whose ``forward`` a step calls (``model`` or a wrapper that
            computes all outputs in one call, so DDP sees one forward); the engine may wrap it
            in DDP and passes the wrapped one to :meth:`step`.
        architecture_config: constructor arguments of ``model`` (stored in checkpoints).
        input_contract: free input-contract fields (e.g. crop size) stored in checkpoints.
        metrics_columns: columns of ``metrics.csv``; must include ``epoch``, ``lr``,
            ``train_loss``, ``val_map_percent``, ``epoch_seconds``.
        sum_keys: keys of :attr:`StepResult.sums` (all-reduced across processes).
        has_validation: whether :meth:`validate` measures anything.
    """

    model: nn.Module
    train_module: nn.Module
    architecture_config: Mapping[str, Any] = {}
    input_contract: Mapping[str, Any] = {}
    metrics_columns: tuple[str, ...] = ()
    sum_keys: tuple[str, ...] = ()
    has_validation: bool = False

    @abstractmethod
    def num_steps(self) -> int:
        """Batches per epoch on this process."""

    @abstractmethod
    def batches(self, epoch: int, first_step: int) -> Iterable[Any]:
        """The batches of ``epoch`` (1-based) from batch ``first_step`` on (0: all); the order
        may depend only on the seed, the epoch and the rank."""

    def set_train_mode(self) -> None:
        """Put the model in training mode before each step (override to keep parts frozen)."""
        self.model.train()

    @abstractmethod
    def step(self, module: nn.Module, batch: Any, epoch: int) -> StepResult:
        """Forward ``batch`` through ``module`` (``train_module``, maybe DDP-wrapped) and
        return the loss and the batch's statistics."""

    @abstractmethod
    def epoch_metrics(self, epoch: int, totals: Mapping[str, float], seconds: float) -> dict:
        """Task-specific ``metrics.csv`` entries of a finished epoch from the summed
        statistics (all processes) and the epoch's training seconds."""

    def validate(self, epoch: int, progress: Callable[[int, int], None] | None) -> float:
        """Validation mAP in percent (NaN when not measurable); called on rank 0 only."""
        return math.nan

    def end_of_epoch(self, is_main: bool) -> None:  # noqa: B027 - optional hook
        """Called after every epoch (e.g. to save caches)."""


@dataclass
class TrainResult:
    """What :func:`run_training` did.

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
    model: nn.Module | None = None


def _write_metrics(path: Path, history: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    frame = pd.DataFrame(history, columns=list(columns))
    with atomic_write(path, "w", newline="") as fh:
        frame.to_csv(fh, index=False)


def check_resume_config(stored: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume when settings other than :data:`_RESUMABLE_CHANGES` (and
    ``data.num_workers``) changed.

    Raises:
        ConfigError: listing every changed entry with the stored and current values.
    """
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


def run_training(
    config: TrainConfig,
    task: TrainingTask,
    ctx: DistributedContext,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``task`` as configured (or resume); see the module docstring.

    Args:
        config: the run's configuration (optimiser, epochs, seed, output directory ...).
        task: the task, built on ``ctx.device`` with ``config``.
        ctx: the process's distributed context (:func:`~socialav.training.distributed.
            init_distributed`).
        progress: called after every training batch and validation item.

    Raises:
        ConfigError: a resumption whose configuration changed, or no trainable parameter.
        CheckpointError: an unusable ``state_last.pt``.
        FloatingPointError: the loss became NaN or infinite (names epoch and step).
    """
    out = Path(config.output_dir)
    ckpt_dir = out / "checkpoints"
    state_path = ckpt_dir / "state_last.pt"
    cfg_dict = config.to_dict()
    device = ctx.device
    model = task.model
    module: nn.Module = task.train_module
    if ctx.distributed:
        module = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("no trainable parameter: check model.trainable")
    optimizer = torch.optim.Adam(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.optim.lr_decay)
    describe = {
        "training_data": config.training_data,
        "train_config": cfg_dict,
        "architecture_config": dict(task.architecture_config),
        "input_contract": dict(task.input_contract),
    }

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "val_map_percent": math.nan, "train_loss": math.inf}
    start_epoch, start_step = 1, 0
    sums: dict[str, float] = {}
    if state_path.is_file():
        state = load_training_state(state_path)
        check_resume_config(state["train_config"], cfg_dict, state_path)
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
            json.dump(cfg_dict, fh, indent=2)

    def save_state(epoch: int, step: int, epoch_sums: Mapping[str, float]) -> None:
        save_training_state(
            state_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            epoch=epoch,
            step=step,
            epoch_sums=epoch_sums,
            history=history,
            best=best,
            **describe,
        )

    keys = ("loss", "batches", *task.sum_keys)
    for epoch in range(start_epoch, config.epochs + 1):
        first_step = start_step if epoch == start_epoch else 0
        if first_step == 0:
            torch.manual_seed(config.seed * 1_000_003 + epoch * 1009 + ctx.rank)
            sums = {}
        for key in (*keys, "seconds"):
            sums.setdefault(key, 0.0)
        num_steps = task.num_steps()
        lr = optimizer.param_groups[0]["lr"]
        tick = time.perf_counter()
        for step, batch in enumerate(task.batches(epoch, first_step), start=first_step + 1):
            task.set_train_mode()
            result = task.step(module, batch, epoch)
            if not torch.isfinite(result.loss):
                raise FloatingPointError(
                    f"loss is {float(result.loss)} at epoch {epoch} step {step}; lower optim.lr "
                    "or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if config.optim.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
            optimizer.step()
            sums["loss"] += float(result.loss.detach())
            sums["batches"] += 1
            for key, value in result.sums.items():
                sums[key] += float(value)
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
                save_state(
                    epoch, step, dict(sums, seconds=sums["seconds"] + time.perf_counter() - tick)
                )
        sums["seconds"] += time.perf_counter() - tick
        totals = dict(zip(keys, all_reduce_sum([sums[k] for k in keys], ctx), strict=True))
        scheduler.step()
        broadcast_buffers(model, ctx)

        val_map = math.nan
        if task.has_validation and ctx.is_main:

            def val_progress(done: int, total: int, _epoch: int = epoch) -> None:
                if progress is not None:
                    progress(ProgressEvent("val", _epoch, config.epochs, done, total))

            val_map = task.validate(epoch, val_progress)
        task.end_of_epoch(ctx.is_main)
        record: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": totals["loss"] / max(totals["batches"], 1.0),
            "val_map_percent": val_map,
            "epoch_seconds": sums["seconds"],
        }
        record.update(task.epoch_metrics(epoch, totals, sums["seconds"]))
        record = {c: record.get(c) for c in task.metrics_columns}
        history.append(record)
        logger.info("epoch %d: %s", epoch, record)
        if ctx.is_main:
            improved = (
                (not math.isnan(val_map) and not val_map <= best.get("val_map_percent", -1.0))
                if task.has_validation
                else record["train_loss"] < best.get("train_loss", math.inf)
            )
            if best["epoch"] == 0 or improved:
                best = {
                    "epoch": epoch,
                    "val_map_percent": val_map,
                    "train_loss": record["train_loss"],
                }
                save_model_checkpoint(ckpt_dir / "model_best.pt", model, metrics=record, **describe)
            if config.keep_epoch_checkpoints:
                save_model_checkpoint(
                    ckpt_dir / f"model_epoch{epoch:04d}.pt", model, metrics=record, **describe
                )
            save_state(epoch, -1, {})
            _write_metrics(out / "metrics.csv", history, task.metrics_columns)
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


def matches_prefix(name: str, prefixes: list[str]) -> bool:
    """Whether a parameter or module ``name`` is one of ``prefixes`` or inside one of them."""
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
    unused = [p for p in prefixes if not any(matches_prefix(n, [p]) for n in names)]
    if unused:
        tops = sorted({n.split(".")[0] for n in names})
        raise ConfigError(f"model.trainable prefixes {unused} match no parameter; modules: {tops}")
    trainable = []
    for name, param in model.named_parameters():
        keep = matches_prefix(name, prefixes)
        param.requires_grad_(keep)
        if keep:
            trainable.append(name)
    return trainable
