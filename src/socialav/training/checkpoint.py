"""Resumable training state, and the model a training run starts from.

The **training state** (``state_last.pt``) is a socialav checkpoint
(:mod:`socialav.checkpoints.format`) plus the optimizer and scheduler state, the epoch and step
reached, the torch RNG state and the metrics history, so that an interrupted run resumes
exactly where its last save left it.

:func:`load_initial_model` builds the model training starts from: random weights, or weights
loaded by :func:`socialav.checkpoints.load.load_pretrained` (a registry name, an original
Light-ASD / LR-ASD / TalkNet checkpoint, or a socialav checkpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from socialav.checkpoints.format import (
    CheckpointError,
    build_model,
    check_input_contract,
    checkpoint_header,
    cpu_state_dict,
    json_plain,
    read_checkpoint,
    save_atomic,
)
from socialav.checkpoints.load import load_pretrained

__all__ = ["load_initial_model", "load_training_state", "save_training_state"]


def load_initial_model(
    spec: str | None, architecture: str, config: Mapping[str, Any] | None = None
) -> nn.Module:
    """The model training starts from.

    Args:
        spec: ``None`` (random initialisation), a weights-registry name
            (:mod:`socialav.hub`), a path to an original Light-ASD / LR-ASD / TalkNet
            checkpoint, or a path to a socialav checkpoint.
        architecture: the architecture to train; the weights must be of this architecture
            (a ``scene-context`` model may also start from the weights of its base ASD model,
            ``config["base"]``, with a new zero-fused scene branch).
        config: constructor arguments for a random initialisation (``spec=None``), and for
            ``scene-context`` the ``base`` and ``scene`` settings.

    Raises:
        FileNotFoundError: a path that does not exist (and is not a registry name).
        CheckpointError / CheckpointMismatchError: weights of another architecture.
        WeightsError: registry name that cannot be resolved.
    """
    if spec is None:
        return build_model(architecture, config)
    if architecture == "scene-context":
        return _initial_scene_context(spec, config or {})
    return load_pretrained(spec, architecture, what="init weights")[0]


def _initial_scene_context(spec: str, config: Mapping[str, Any]) -> nn.Module:
    """A scene-context model from a scene-context checkpoint, or from the weights of its base
    ASD model (``config["base"]``, default ``light-asd``) with a new zero-fused scene branch
    (:func:`~socialav.models.scene_context.scene_context_from_asd`)."""
    from socialav.models.scene_context import scene_context_from_asd

    try:
        return load_pretrained(spec, "scene-context", what="init weights")[0]
    except CheckpointError:  # not a scene-context checkpoint: start from its base model
        base = load_pretrained(spec, str(config.get("base", "light-asd")), what="init weights")[0]
    return scene_context_from_asd(base, config.get("scene"))  # type: ignore[arg-type]


def save_training_state(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    step: int,
    epoch_sums: Mapping[str, float],
    history: list[dict[str, Any]],
    best: Mapping[str, Any],
    train_config: Mapping[str, Any],
    training_data: str = "",
    architecture_config: Mapping[str, Any] | None = None,
    input_contract: Mapping[str, Any] | None = None,
) -> Path:
    """Write the resumable state atomically: a model checkpoint plus ``optimizer``,
    ``scheduler``, ``epoch`` (1-based, the epoch in progress or just finished), ``step``
    (batches of ``epoch`` done; ``-1`` when the epoch is complete), running sums of the epoch,
    the metrics ``history``, the ``best`` record and the torch RNG state."""
    path = Path(path)
    payload = {
        **checkpoint_header(
            model, training_data, train_config, architecture_config, input_contract
        ),
        "state_dict": cpu_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "epoch_sums": json_plain(dict(epoch_sums)),
        "history": json_plain(list(history)),
        "best": json_plain(dict(best)),
        "torch_rng_state": torch.get_rng_state(),
    }
    save_atomic(payload, path)
    return path


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_training_state` (``weights_only=True``).

    Raises:
        CheckpointError: not a training state, or another input contract.
    """
    obj = read_checkpoint(path)
    for key in ("optimizer", "scheduler", "epoch", "step", "torch_rng_state"):
        if key not in obj:
            raise CheckpointError(f"{path} is a model checkpoint, not a training state ({key})")
    check_input_contract(obj["input_contract"], str(path), obj["architecture"])
    return obj
