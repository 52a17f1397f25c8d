"""Self-describing model checkpoints and resumable training state.

A **model checkpoint** written by socialav is a ``torch.save`` of a plain dict, loadable with
``torch.load(weights_only=True)``::

    {"format": "socialav-asd-checkpoint", "format_version": 1,
     "architecture": "light-asd", "architecture_config": {},
     "input_contract": {...INPUT_CONTRACT...},
     "socialav_version": "0.1.0", "torch_version": "2.13.0",
     "training_data": "free text", "metrics": {...}, "train_config": {...},
     "state_dict": {our parameter names -> tensors}}

:func:`load_model_checkpoint` checks the format, the architecture (when the caller names one)
and the input contract, and refuses a mismatch with a message saying what was expected and
found; the weights are then loaded with ``load_state_dict(strict=True)``.

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

from socialav import __version__
from socialav.io.atomic import atomic_write
from socialav.models.checkpoints import load_asd_model, read_state_dict
from socialav.models.light_asd import (
    FACE_PIXEL_MEAN,
    FACE_PIXEL_STD,
    FACE_SIZE_PX,
    NUM_MFCC,
    AudioVisualASD,
    LightASD,
)
from socialav.models.lr_asd import LRASD
from socialav.models.talknet import TalkNet
from socialav.models.talknet_checkpoint import load_talknet
from socialav.types import (
    ANALYSIS_FPS,
    AUDIO_SAMPLE_RATE,
    MFCC_FRAMES_PER_VIDEO_FRAME,
    MFCC_RATE_HZ,
)

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

CHECKPOINT_FORMAT = "socialav-asd-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1

#: What the models take (see ``socialav.models.light_asd``); stored in and checked against
#: every checkpoint.
INPUT_CONTRACT: dict[str, Any] = {
    "fps": ANALYSIS_FPS,
    "audio_sample_rate": AUDIO_SAMPLE_RATE,
    "audio_features": "mfcc",
    "mfcc_num_coefficients": NUM_MFCC,
    "mfcc_rate_hz": MFCC_RATE_HZ,
    "mfcc_frames_per_video_frame": MFCC_FRAMES_PER_VIDEO_FRAME,
    "mfcc_library": "python_speech_features (numcep=13, winlen=0.025, winstep=0.010)",
    "face_size_px": FACE_SIZE_PX,
    "face_channels": "gray",
    "face_normalisation": f"(x / 255 - {FACE_PIXEL_MEAN}) / {FACE_PIXEL_STD}",
}

MODEL_CLASSES: dict[str, type[AudioVisualASD]] = {
    "light-asd": LightASD,
    "lr-asd": LRASD,
    "talknet": TalkNet,
}


class CheckpointError(ValueError):
    """A socialav checkpoint is malformed or does not match what the caller expects."""


def build_model(architecture: str) -> AudioVisualASD:
    """A randomly initialised model of ``architecture`` (``light-asd``, ``lr-asd``, ``talknet``).

    Raises:
        ValueError: unknown architecture.
    """
    try:
        return MODEL_CLASSES[architecture]()
    except KeyError:
        raise ValueError(
            f"architecture must be one of {sorted(MODEL_CLASSES)}, but got {architecture!r}"
        ) from None


def architecture_of(model: AudioVisualASD) -> str:
    """The architecture name of a model instance."""
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise ValueError(f"unknown model class {type(model).__name__}")


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
    model: torch.nn.Module, training_data: object, train_config: dict | None
) -> dict[str, object]:
    """The fields every socialav checkpoint starts with: format, architecture, input contract,
    library versions, training-data note and training configuration."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "architecture": architecture_of(model),
        "architecture_config": {},
        "input_contract": dict(INPUT_CONTRACT),
        "socialav_version": __version__,
        "torch_version": str(torch.__version__),
        "training_data": str(training_data),
        "train_config": _plain(dict(train_config or {})),
    }


def save_model_checkpoint(
    path: str | Path,
    model: AudioVisualASD,
    *,
    training_data: str = "",
    metrics: Mapping[str, Any] | None = None,
    train_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a self-describing model checkpoint atomically (see the module docstring).

    Args:
        path: destination (``.pt``).
        model: a :class:`LightASD`, :class:`LRASD` or :class:`TalkNet` (unwrapped, not DDP).
        training_data: free-text note on the data the weights were trained on.
        metrics: e.g. ``{"epoch": 3, "val_map_percent": 91.2}``.
        train_config: the :class:`~socialav.training.config.TrainConfig` as a dict.

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    payload = {
        **_self_description(model, training_data, train_config),
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
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a socialav checkpoint (expected a dict with format="
            f"{CHECKPOINT_FORMAT!r}); original Light-ASD/LR-ASD/TalkNet checkpoints are loaded "
            f"with load_initial_model or socialav.models.checkpoints"
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


def check_input_contract(found: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Refuse a checkpoint whose input contract differs from :data:`INPUT_CONTRACT`.

    Raises:
        CheckpointError: listing every differing field with expected and found values.
    """
    diffs = [
        f"{key}: expected {INPUT_CONTRACT[key]!r}, found {found.get(key, '<missing>')!r}"
        for key in INPUT_CONTRACT
        if found.get(key) != INPUT_CONTRACT[key]
    ]
    if diffs:
        raise CheckpointError(
            f"{source} was trained for another input contract than this socialav provides; "
            f"its faces/audio would be fed wrongly:\n  " + "\n  ".join(diffs)
        )


def load_model_checkpoint(
    path: str | Path,
    architecture: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[AudioVisualASD, dict[str, Any]]:
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
    if found_arch not in MODEL_CLASSES:
        raise CheckpointError(
            f"{path}: unknown architecture {found_arch!r} (known: {sorted(MODEL_CLASSES)})"
        )
    check_input_contract(obj["input_contract"], str(path))
    model = build_model(found_arch)
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


def load_initial_model(spec: str | None, architecture: str) -> AudioVisualASD:
    """The model training starts from.

    Args:
        spec: ``None`` (random initialisation), a weights-registry name
            (:mod:`socialav.hub`), a path to an original Light-ASD / LR-ASD / TalkNet
            checkpoint, or a path to a socialav checkpoint.
        architecture: the architecture to train; the weights must be of this architecture.

    Raises:
        FileNotFoundError: a path that does not exist (and is not a registry name).
        CheckpointError / CheckpointMismatchError: weights of another architecture.
        WeightsError: registry name that cannot be resolved.
    """
    if spec is None:
        return build_model(architecture)
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
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        model, _ = load_model_checkpoint(path, architecture)
        return model
    if architecture == "talknet":
        return load_talknet(path)
    read_state_dict(path)  # clear error when the file is not a state_dict
    return load_asd_model(path, architecture)  # type: ignore[arg-type]


def save_training_state(
    path: str | Path,
    *,
    model: AudioVisualASD,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    step: int,
    epoch_sums: Mapping[str, float],
    history: list[dict[str, Any]],
    best: Mapping[str, Any],
    train_config: Mapping[str, Any],
    training_data: str = "",
) -> Path:
    """Write the resumable state atomically: a model checkpoint plus ``optimizer``,
    ``scheduler``, ``epoch`` (1-based, the epoch in progress or just finished), ``step``
    (batches of ``epoch`` done; ``-1`` when the epoch is complete), running sums of the epoch,
    the metrics ``history``, the ``best`` record and the torch RNG state."""
    path = Path(path)
    payload = {
        **_self_description(model, training_data, train_config),
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
    check_input_contract(obj["input_contract"], str(path))
    return obj
