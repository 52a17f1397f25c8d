"""``socialav train``: the task of ``model.architecture`` -- the ASD task
(:mod:`socialav.training.tasks.asd`) or an Ego4D task (:mod:`socialav.training.tasks.ego4d`) --
run by the engine (:mod:`socialav.training.engine`)."""

from __future__ import annotations

import torch

from socialav.models.registry import ARCHITECTURES, architecture_spec
from socialav.training.config import EGO4D_ARCHITECTURES, ConfigError, TrainConfig
from socialav.training.distributed import (
    DistributedContext,
    init_distributed,
    shutdown_distributed,
)
from socialav.training.engine import ProgressCallback, TrainingTask, TrainResult, run_training
from socialav.training.tasks.asd import AsdTrainingTask

__all__ = ["build_task", "train"]


def build_task(config: TrainConfig, ctx: DistributedContext) -> TrainingTask:
    """The :class:`~socialav.training.engine.TrainingTask` of ``config.model.architecture``.

    Raises:
        ConfigError: an architecture without a training task.
    """
    arch = config.model.architecture
    if arch in EGO4D_ARCHITECTURES:
        from socialav.training.tasks.ego4d import build_ego4d_task

        return build_ego4d_task(config, ctx)
    if arch in ARCHITECTURES and architecture_spec(arch).task == "asd":
        return AsdTrainingTask(config, ctx)
    raise ConfigError(f"no training task for architecture {arch!r}")


def train(config: TrainConfig, progress: ProgressCallback | None = None) -> TrainResult:
    """Train (or resume training) as configured: the task of ``model.architecture`` run by
    :func:`~socialav.training.engine.run_training` (see both module docstrings).

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
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        task = build_task(config, context)
        return run_training(config, task, context, progress)
    finally:
        shutdown_distributed(context)
