"""Self-describing model checkpoints and resumable training state.

A **model checkpoint** written by socialav is a ``torch.save`` of a plain dict, loadable with
``torch.load(weights_only=True)``::

    {"format": "socialav-checkpoint", "format_version": 1,
     "architecture": "light-asd", "architecture_config": {},
     "input_contract": {...},
     "socialav_version": "0.1.0", "torch_version": "2.13.0",
     "training_data": "free text", "metrics": {...}, "train_config": {...},
     "state_dict": {our parameter names -> tensors}}

``architecture`` is a name of :mod:`socialav.models.registry` (ASD models, GazeLSTM, the QuAVF
branches), ``architecture_config`` the keyword arguments it was built with. Files of the
first release say ``"format": "socialav-asd-checkpoint"`` and are read the same way.

:func:`load_model_checkpoint` checks the format, the architecture (when the caller names one)
and the fixed fields of the input contract, and refuses a mismatch with a message saying what
was expected and found; the model is rebuilt from the stored configuration and the weights
loaded with ``load_state_dict(strict=True)``.

The **training state** (``state_last.pt``) adds the optimizer and scheduler state, the epoch and
step reached, the torch RNG state and the metrics history, so that an interrupted run resumes
exactly where its last save left it.

:func:`load_initial_model` builds a model for training from a weights-registry name, an original
Light-ASD / LR-ASD / TalkNet checkpoint, or a socialav checkpoint.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from socialav import __version__
from socialav.checkpoints.asd_reference import load_asd_model, read_state_dict
from socialav.checkpoints.talknet_reference import load_talknet
from socialav.io.atomic import atomic_write
from socialav.models.light_asd import AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD
from socialav.models.registry import (
    ASD_INPUT_CONTRACT,
    UnknownArchitectureError,
    architecture_name_of,
    architecture_spec,
    build_architecture,
    contract_differences,
)
from socialav.models.talknet import TalkNet

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "INPUT_CONTRACT",
    "MODEL_CLASSES",
    "CheckpointError",
    "build_model",
    "save_model_checkpoint",
    "read_checkpoint",
    "load_model_checkpoint",
    "load_initial_model",
    "save_training_state",
    "load_training_state",
]

CHECKPOINT_FORMAT = "socialav-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
#: Format names of earlier releases, read as :data:`CHECKPOINT_FORMAT`.
_LEGACY_FORMATS = ("socialav-asd-checkpoint",)

#: What the ASD models take; stored in and checked against every ASD checkpoint.
INPUT_CONTRACT: dict[str, Any] = ASD_INPUT_CONTRACT

#: The ASD architectures ``socialav train`` fine-tunes from original checkpoints.
MODEL_CLASSES: dict[str, type[AudioVisualASD]] = {
    "light-asd": LightASD,
    "lr-asd": LRASD,
    "talknet": TalkNet,
}


class CheckpointError(ValueError):
    """A socialav checkpoint is malformed or does not match what the caller expects."""


def build_model(architecture: str, config: Mapping[str, Any] | None = None) -> nn.Module:
    """A randomly initialised model of a registered ``architecture`` (``light-asd``,
    ``lr-asd``, ``talknet``, ``gaze-lstm``, ``quavf-visual``, ``quavf-audio``) built with the
    ``config`` keyword arguments.

    Raises:
        ValueError: unknown architecture, or arguments the constructor does not take.
    """
    return build_architecture(architecture, config)


def architecture_of(model: nn.Module) -> str:
    """The architecture name of a model instance."""
    try:
        return architecture_name_of(model)
    except UnknownArchitectureError as err:
        raise ValueError(str(err)) from None


def _save_atomic(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path, "wb") as fh:
        fh.write(buffer.getvalue())


def _plain(value: Any) -> Any:
    """JSON round trip: keeps only types ``weights_only`` loading accepts."""
    return json.loads(json.dumps(value, default=str))


def _cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def _self_description(
    model: torch.nn.Module,
    training_data: object,
    train_config: Mapping[str, Any] | None,
    architecture_config: Mapping[str, Any] | None = None,
    input_contract: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    """The fields every socialav checkpoint starts with: format, architecture and its
    configuration, input contract (the architecture's fixed contract updated with
    ``input_contract``), library versions, training-data note and training configuration."""
    name = architecture_of(model)
    contract = dict(architecture_spec(name).fixed_contract)
    contract.update(input_contract or {})
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "architecture": name,
        "architecture_config": _plain(dict(architecture_config or {})),
        "input_contract": _plain(contract),
        "socialav_version": __version__,
        "torch_version": str(torch.__version__),
        "training_data": str(training_data),
        "train_config": _plain(dict(train_config or {})),
    }


def save_model_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    training_data: str = "",
    metrics: Mapping[str, Any] | None = None,
    train_config: Mapping[str, Any] | None = None,
    architecture_config: Mapping[str, Any] | None = None,
    input_contract: Mapping[str, Any] | None = None,
) -> Path:
    """Write a self-describing model checkpoint atomically (see the module docstring).

    Args:
        path: destination (``.pt``).
        model: a model of a registered architecture (unwrapped, not DDP).
        training_data: free-text note on the data the weights were trained on.
        metrics: e.g. ``{"epoch": 3, "val_map_percent": 91.2}``.
        train_config: the :class:`~socialav.training.config.TrainConfig` as a dict.
        architecture_config: the keyword arguments ``model`` was built with (``{}`` for the
            reference sizes); loading rebuilds the model from them.
        input_contract: free contract fields (e.g. ``{"face_size_px": 224}``) added to the
            architecture's fixed contract.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: ``model`` is not of a registered architecture.
    """
    path = Path(path)
    payload = {
        **_self_description(
            model, training_data, train_config, architecture_config, input_contract
        ),
        "metrics": _plain(dict(metrics or {})),
        "state_dict": _cpu_state_dict(model),
    }
    _save_atomic(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a socialav model checkpoint (``weights_only=True``) and check its format.

    Raises:
        FileNotFoundError: missing file.
        CheckpointError: not a socialav checkpoint (e.g. an original reference checkpoint,
            which :func:`load_initial_model` accepts), or a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") not in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS):
        raise CheckpointError(
            f"{path} is not a socialav checkpoint (expected a dict with format="
            f"{CHECKPOINT_FORMAT!r}); original Light-ASD/LR-ASD/TalkNet checkpoints are loaded "
            f"with load_initial_model or socialav.checkpoints.asd_reference"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r} is newer than this socialav "
            f"({__version__}) reads (<= {CHECKPOINT_FORMAT_VERSION}); upgrade socialav"
        )
    for key in ("architecture", "input_contract", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path}: checkpoint lacks the {key!r} entry")
    return obj


def check_input_contract(
    found: Mapping[str, Any], source: str = "checkpoint", architecture: str = "light-asd"
) -> None:
    """Refuse a checkpoint whose input contract differs from the fixed contract of its
    ``architecture`` (:data:`INPUT_CONTRACT` for the ASD models).

    Raises:
        CheckpointError: listing every differing field with expected and found values.
    """
    diffs = contract_differences(architecture, found)
    if diffs:
        raise CheckpointError(
            f"{source} was trained for another input contract than this socialav provides; "
            f"its faces/audio would be fed wrongly:\n  " + "\n  ".join(diffs)
        )


def load_model_checkpoint(
    path: str | Path,
    architecture: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a socialav model checkpoint, checking what it describes.

    Args:
        path: a file written by :func:`save_model_checkpoint` (or a training state).
        architecture: refuse the file unless it holds this architecture (``None``: any).
        device: where to put the model.

    Returns:
        ``(model in eval mode, metadata dict without the state_dict)``.

    Raises:
        FileNotFoundError, CheckpointError: see :func:`read_checkpoint`; also an architecture
            or input-contract mismatch, or weights that do not fit (missing/unexpected keys).
    """
    obj = read_checkpoint(path)
    found_arch = obj["architecture"]
    if architecture is not None and found_arch != architecture:
        raise CheckpointError(
            f"{path} holds a {found_arch!r} model, but a {architecture!r} model was requested"
        )
    try:
        architecture_spec(found_arch)
    except UnknownArchitectureError as err:
        raise CheckpointError(f"{path}: {err}") from None
    check_input_contract(obj["input_contract"], str(path), found_arch)
    try:
        model = build_model(found_arch, obj.get("architecture_config") or {})
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    expected = set(model.state_dict())
    given = set(obj["state_dict"])
    if expected != given:
        missing, unexpected = sorted(expected - given), sorted(given - expected)
        raise CheckpointError(
            f"{path}: weights do not fit {found_arch}: missing keys {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}"
        )
    model.load_state_dict(obj["state_dict"], strict=True)
    meta = {k: v for k, v in obj.items() if k not in ("state_dict", "optimizer", "scheduler")}
    return model.to(device).eval(), meta


def load_initial_model(
    spec: str | None, architecture: str, config: Mapping[str, Any] | None = None
) -> nn.Module:
    """The model training starts from.

    Args:
        spec: ``None`` (random initialisation), a weights-registry name
            (:mod:`socialav.hub`), a path to an original Light-ASD / LR-ASD / TalkNet
            checkpoint, or a path to a socialav checkpoint.
        architecture: the architecture to train; the weights must be of this architecture.
        config: constructor arguments for a random initialisation (``spec=None``).

    Raises:
        FileNotFoundError: a path that does not exist (and is not a registry name).
        CheckpointError / CheckpointMismatchError: weights of another architecture.
        WeightsError: registry name that cannot be resolved.
    """
    if spec is None:
        return build_model(architecture, config)
    if architecture == "scene-context":
        return _initial_scene_context(spec, config or {})
    path = Path(spec)
    if not path.is_file():
        from socialav.hub import REGISTRY, resolve_weights

        if spec not in REGISTRY:
            raise FileNotFoundError(
                f"init weights {spec!r} is neither a file nor a registry name "
                f"({', '.join(sorted(REGISTRY))})"
            )
        path = resolve_weights(spec)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and obj.get("format") in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS):
        model, _ = load_model_checkpoint(path, architecture)
        return model
    if architecture not in MODEL_CLASSES:
        raise CheckpointError(
            f"{path} is not a socialav checkpoint; a {architecture} model starts from a "
            f"socialav checkpoint or from random weights (init_weights: null)"
        )
    if architecture == "talknet":
        return load_talknet(path)
    read_state_dict(path)  # clear error when the file is not a state_dict
    return load_asd_model(path, architecture)  # type: ignore[arg-type]


def _initial_scene_context(spec: str, config: Mapping[str, Any]) -> nn.Module:
    """A scene-context model from a scene-context checkpoint, or from the weights of its base
    ASD model (``config["base"]``, default ``light-asd``) with a new zero-fused scene branch
    (:func:`~socialav.models.scene_context.scene_context_from_asd`)."""
    from socialav.models.scene_context import scene_context_from_asd

    path = Path(spec)
    if path.is_file():
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if (
            isinstance(obj, dict)
            and obj.get("format") in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS)
            and obj.get("architecture") == "scene-context"
        ):
            model, _ = load_model_checkpoint(path, "scene-context")
            return model
    base = load_initial_model(spec, str(config.get("base", "light-asd")))
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
        **_self_description(
            model, training_data, train_config, architecture_config, input_contract
        ),
        "state_dict": _cpu_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "epoch_sums": _plain(dict(epoch_sums)),
        "history": _plain(list(history)),
        "best": _plain(dict(best)),
        "torch_rng_state": torch.get_rng_state(),
    }
    _save_atomic(payload, path)
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
