"""The self-describing socialav checkpoint: write, read, check, rebuild.

A socialav checkpoint is a ``torch.save`` of a plain dict, loadable with
``torch.load(weights_only=True)``::

    {"format": "socialav-checkpoint", "format_version": 1,
     "architecture": "light-asd", "architecture_config": {},
     "input_contract": {...},
     "socialav_version": "0.1.0", "torch_version": "2.13.0",
     "training_data": "free text", "metrics": {...}, "train_config": {...},
     "state_dict": {our parameter names -> tensors}}

``architecture`` names an entry of :mod:`socialav.models.registry`; ``architecture_config`` the
keyword arguments it was built with. Files of the first release say ``"format":
"socialav-asd-checkpoint"`` and are read the same way. A training state
(:mod:`socialav.training.checkpoint`) is the same dict plus optimizer, scheduler and progress.

:func:`load_model_checkpoint` checks the format, the architecture (when the caller names one)
and the fixed fields of the input contract, and refuses a mismatch with a message saying what
was expected and found; the model is rebuilt from the stored configuration and the weights
loaded with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from socialav import __version__
from socialav.checkpoints.errors import CheckpointError
from socialav.io.atomic import atomic_write
from socialav.models.registry import (
    ASD_INPUT_CONTRACT,
    UnknownArchitectureError,
    architecture_name_of,
    architecture_spec,
    build_architecture,
    contract_differences,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "INPUT_CONTRACT",
    "CheckpointError",
    "architecture_of",
    "build_model",
    "check_input_contract",
    "checkpoint_header",
    "cpu_state_dict",
    "is_socialav_checkpoint",
    "json_plain",
    "load_model_checkpoint",
    "read_checkpoint",
    "read_torch_file",
    "save_atomic",
    "save_model_checkpoint",
]

CHECKPOINT_FORMAT = "socialav-checkpoint"


CHECKPOINT_FORMAT_VERSION = 1


#: Format names of earlier releases, read as :data:`CHECKPOINT_FORMAT`.
_LEGACY_FORMATS = ("socialav-asd-checkpoint",)


#: What the ASD models take; stored in and checked against every ASD checkpoint.
INPUT_CONTRACT: dict[str, Any] = ASD_INPUT_CONTRACT


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


def read_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, the one place socialav
    reads a PyTorch file, with errors that name the file.

    Args:
        path: the file.
        what: what the caller expected, for the messages (``"ASD checkpoint"``, ...).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is not a PyTorch zip or pickle file (a text file, a video,
            a truncated download), or it holds objects ``weights_only`` loading refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        size = path.stat().st_size
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        looks = _not_a_torch_file(path) if size else "the file is empty"
        if looks is not None:
            reason = looks
        elif "weights_only" in str(err) or "Unsupported global" in str(err):
            reason = "it holds Python objects other than tensors and plain containers"
        else:
            reason = f"it is not a readable PyTorch zip/pickle file ({detail[:160]})"
        raise CheckpointError(
            f"{path}: expected a {what} (a PyTorch file loadable with weights_only=True), but "
            f"{reason}; is the file complete and the right one?"
        ) from None


def _not_a_torch_file(path: Path) -> str | None:
    """What a file that ``torch.load`` refused looks like, from its bytes; ``None`` when it
    looks like an intact PyTorch zip or pickle (the refusal is about its contents)."""
    import zipfile

    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip() is not None
        except (zipfile.BadZipFile, OSError, EOFError):
            damaged = True
        return (
            "it is a damaged or truncated zip archive (an incomplete download?)"
            if damaged
            else None
        )
    if head[4:8] == b"ftyp":
        return "it is an MP4/MOV video"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "it is a Matroska/WebM video"
    if head.startswith(b"\x80"):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "its first bytes are neither a zip archive nor a pickle"
    if all(c.isprintable() or c.isspace() for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"it is a text file (starting {first!r})"
    return "its first bytes are neither a zip archive nor a pickle"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` through a temporary file and a rename
    (:func:`socialav.io.atomic.atomic_write`): a crash leaves the old file or none."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path, "wb") as fh:
        fh.write(buffer.getvalue())


def json_plain(value: Any) -> Any:
    """JSON round trip: keeps only types ``weights_only`` loading accepts."""
    return json.loads(json.dumps(value, default=str))


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model.state_dict()`` (what a checkpoint stores)."""
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def checkpoint_header(
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
        "architecture_config": json_plain(dict(architecture_config or {})),
        "input_contract": json_plain(contract),
        "socialav_version": __version__,
        "torch_version": str(torch.__version__),
        "training_data": str(training_data),
        "train_config": json_plain(dict(train_config or {})),
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
        **checkpoint_header(
            model, training_data, train_config, architecture_config, input_contract
        ),
        "metrics": json_plain(dict(metrics or {})),
        "state_dict": cpu_state_dict(model),
    }
    save_atomic(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a socialav model checkpoint (``weights_only=True``) and check its format.

    Raises:
        FileNotFoundError: missing file.
        CheckpointError: not a socialav checkpoint (e.g. an original reference checkpoint,
            which :func:`~socialav.checkpoints.load.load_pretrained` accepts), or a newer format
            version.
    """
    path = Path(path)
    obj = read_torch_file(path)
    if not isinstance(obj, dict) or obj.get("format") not in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS):
        raise CheckpointError(
            f"{path} is not a socialav checkpoint (expected a dict with format="
            f"{CHECKPOINT_FORMAT!r}); original Light-ASD/LR-ASD/TalkNet checkpoints are loaded "
            f"with socialav.checkpoints.load.load_pretrained"
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


def is_socialav_checkpoint(path: str | Path) -> bool:
    """True when ``path`` holds a socialav checkpoint (a dict whose ``format`` is
    ``socialav-checkpoint``, or the older ``socialav-asd-checkpoint``) rather than an original
    ``state_dict``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: not a PyTorch file (:func:`read_torch_file`).
    """
    obj = read_torch_file(path)
    return isinstance(obj, Mapping) and obj.get("format") in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS)
