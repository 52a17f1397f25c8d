"""The one way from a weights name or file to a ready model: :func:`load_pretrained` (PyTorch
models of every registered architecture) and its two ONNX siblings, :func:`load_face_detector`
and :func:`load_head_pose`. Each returns the model and a :class:`WeightsInfo` saying what was
loaded (for the outputs' ``run_info``).

A name is looked up in the weights registry (:mod:`socialav.hub`: verified, downloaded and cached
there); anything else must be a file. A file is either a self-describing socialav checkpoint
(:mod:`socialav.checkpoints.format`) or an original reference checkpoint whose layout is told
from its keys (Light-ASD, LR-ASD: :mod:`~socialav.checkpoints.asd_reference`; TalkNet:
:mod:`~socialav.checkpoints.talknet_reference`). The caller may demand an architecture or a
task; anything else is refused with what was expected and what was found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialav import hub
from socialav.checkpoints.errors import CheckpointError, CheckpointMismatchError

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "WeightsInfo",
    "load_asd_model",
    "load_face_detector",
    "load_face_embedder",
    "load_head_pose",
    "load_vad",
    "load_voice_encoder",
    "load_pretrained",
    "resolve_weights_file",
]

#: The FSA-Net pair whose mean is the head pose (the demo of omasaht/headpose-fsanet-pytorch
#: averages its 1x1 and var models).
FSANET_WEIGHTS: tuple[str, ...] = ("fsanet-1x1", "fsanet-var")

_LEGACY_FORMATS = ("socialav-asd-checkpoint",)
# (PyTorch and the model classes are imported by the functions that need them: resolving a
# file and the ONNX loaders below work without PyTorch, see socialav.checkpoints.onnx_cache)


@dataclass(frozen=True)
class WeightsInfo:
    """What :func:`load_pretrained` (or an ONNX loader) loaded.

    Attributes:
        name: the weights as given: a registry name, or the file path as a string.
        path: the resolved file.
        sha256: hex digest of the file (the registry's, verified, for registry names).
        architecture: the architecture name (:mod:`socialav.models.registry`; for ONNX files
            the registry entry's: ``ultra-light-face``, ``fsanet``).
        task: what the model predicts (``asd``, ``lam``, ``ttm-visual``, ``ttm-audio``, ``ttm``;
            ``face-detector``, ``head-pose`` for the ONNX files).
        format: ``socialav`` (self-describing checkpoint), ``reference`` (an original
            checkpoint) or ``onnx``.
        metadata: the socialav checkpoint's header without its weights (``input_contract``,
            ``architecture_config``, ``training_data``, ``metrics``, ...); empty otherwise.
    """

    name: str
    path: Path
    sha256: str
    architecture: str
    task: str
    format: str
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def from_registry(self) -> bool:
        """Whether :attr:`name` is a weights-registry name."""
        return self.name in hub.REGISTRY

    def record(self) -> dict[str, str]:
        """``{"name", "sha256", "architecture"}``: what the outputs record of the weights."""
        return {"name": self.name, "sha256": self.sha256, "architecture": self.architecture}


def resolve_weights_file(
    weights: str | Path,
    what: str = "weights",
    expected: str = "a checkpoint file",
    kind: str | None = None,
) -> tuple[Path, str]:
    """The file of a registry name (verified by :func:`socialav.hub.resolve_weights`) or of a
    path, and its sha256.

    Args:
        weights: a registry name or a path.
        what, expected: for the error message (``"context weights"``, ``"a socialav
            scene-context checkpoint file"``).
        kind: list only registry names of this kind (``asd``, ...) in the error message.

    Raises:
        FileNotFoundError: neither a registry name nor an existing file (the message lists the
            registry names).
        socialav.hub.WeightsError: a registry name whose file is missing or corrupt.
    """
    text = str(weights)
    if text in hub.REGISTRY:
        entry = hub.get_entry(text)
        return hub.resolve_weights(text), entry.sha256
    path = Path(weights)
    if not path.is_file():
        names = sorted(n for n, e in hub.REGISTRY.items() if kind in (None, e.kind))
        if names:
            raise FileNotFoundError(
                f"unknown {what} {text!r}: expected {expected} or one of: {', '.join(names)} "
                "(found neither a file nor a registry name)"
            )
        raise FileNotFoundError(f"{what} {text!r}: expected {expected}, found no such file")
    return path, hub.sha256_of(path)


def _reference_architecture(state: object) -> str | None:
    """The architecture whose original checkpoint has these keys (``module.`` prefixes of
    ``nn.DataParallel`` ignored), or ``None``."""
    from socialav.checkpoints.asd_reference import REFERENCE_SIGNATURE_KEYS
    from socialav.checkpoints.talknet_reference import TALKNET_SIGNATURE_KEY

    if not isinstance(state, Mapping):
        return None
    keys = {str(k).removeprefix("module.") for k in state}
    signatures = {**REFERENCE_SIGNATURE_KEYS, "talknet": TALKNET_SIGNATURE_KEY}
    found = [arch for arch, key in signatures.items() if key in keys]
    return found[0] if len(found) == 1 else None


def _allowed(architecture: str | None, task: str | None) -> tuple[str, ...] | None:
    from socialav.models.registry import architecture_spec, architectures_for_task

    if architecture is not None:
        architecture_spec(architecture)  # unknown names are an error
        return (architecture,)
    if task is not None:
        names = architectures_for_task(task)
        if not names:
            raise ValueError(f"no registered architecture predicts task {task!r}")
        return names
    return None


def load_pretrained(
    weights: str | Path,
    architecture: str | None = None,
    *,
    task: str | None = None,
    device: str | torch.device = "cpu",
    what: str = "weights",
) -> tuple[nn.Module, WeightsInfo]:
    """Load a model from a weights-registry name or a checkpoint file, in eval mode.

    Args:
        weights: a registry name (``socialav weights list``: ``lr-asd-ava``, ...), or the path
            of a socialav checkpoint (``socialav train`` / ``socialav calibrate`` output) or of
            an original Light-ASD / LR-ASD / TalkNet checkpoint.
        architecture: refuse anything but this registered architecture (``light-asd``, ...).
        task: refuse an architecture that does not predict this task (``asd``, ``lam``,
            ``ttm``, ``ttm-visual``, ``ttm-audio``; ``ttm`` admits every TTM architecture).
        device: where to put the model.
        what: what the weights are for, in error messages (``"context weights"``).

    Returns:
        ``(model, info)``.

    Raises:
        FileNotFoundError: neither a registry name nor an existing file.
        socialav.hub.WeightsError: a registry file that is missing or corrupt.
        CheckpointError: not a PyTorch file, not a checkpoint socialav can read, another
            architecture or task than demanded, another input contract, weights that do not
            fit (the message names the file and what was expected and found).
        CheckpointMismatchError: an original checkpoint whose keys do not fit (names them).
    """
    from socialav.checkpoints.asd_reference import REFERENCE_SIGNATURE_KEYS, load_reference_asd
    from socialav.checkpoints.format import (
        CHECKPOINT_FORMAT,
        load_model_checkpoint,
        read_torch_file,
    )
    from socialav.checkpoints.talknet_reference import TALKNET_SIGNATURE_KEY, load_talknet
    from socialav.models.registry import architecture_spec

    allowed = _allowed(architecture, task)
    entry = hub.get_entry(str(weights)) if str(weights) in hub.REGISTRY else None
    if entry is not None and entry.kind != "asd":
        raise CheckpointError(
            f"weights {entry.name!r} are a {entry.kind} model (ONNX), not a PyTorch checkpoint; "
            "load them with load_face_detector / load_head_pose"
        )
    wanted = " or ".join(allowed) if allowed else "model"
    expected = f"a socialav {architecture} checkpoint file" if architecture else "a checkpoint file"
    path, sha256 = resolve_weights_file(weights, what, expected, kind="asd")
    obj = read_torch_file(path, f"{wanted} checkpoint")
    if isinstance(obj, Mapping) and obj.get("format") in (CHECKPOINT_FORMAT, *_LEGACY_FORMATS):
        found = str(obj.get("architecture"))
        if allowed is not None and found not in allowed:
            task_of = _task_or_unknown(found)
            raise CheckpointError(
                f"{path}: expected a {wanted} checkpoint, but found a {found!r} model "
                f"(task {task_of})"
            )
        model, meta = load_model_checkpoint(path, None, device)
        fmt = "socialav"
    else:
        found = entry.architecture if entry is not None else _reference_architecture(obj)
        if found is None:
            raise CheckpointError(
                f"{path}: cannot tell which model this checkpoint holds: it is neither a "
                f"socialav checkpoint (format {CHECKPOINT_FORMAT!r}) nor an original Light-ASD / "
                f"LR-ASD / TalkNet state_dict (keys like "
                f"{sorted([*REFERENCE_SIGNATURE_KEYS.values(), TALKNET_SIGNATURE_KEY])})"
            )
        if allowed is not None and found not in allowed:
            raise CheckpointError(
                f"{path} is not a socialav checkpoint: expected a {wanted} checkpoint, but it is "
                f"an original {found} state_dict"
            )
        if found == "talknet":
            model = load_talknet(path, device)
        else:
            model = load_reference_asd(path, found, device)  # type: ignore[arg-type]
        meta, fmt = {}, "reference"
    info = WeightsInfo(
        name=str(weights),
        path=path,
        sha256=sha256,
        architecture=found,
        task=architecture_spec(found).task,
        format=fmt,
        metadata=meta,
    )
    logger.debug("loaded %s (%s, %s) from %s", info.name, found, fmt, path)
    return model, info


def _task_or_unknown(architecture: str) -> str:
    from socialav.models.registry import architecture_spec

    try:
        return architecture_spec(architecture).task
    except ValueError:
        return "unknown"


def load_asd_model(
    weights: str | Path, architecture: str | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """The ASD model of :func:`load_pretrained` (``task="asd"``) without its info."""
    return load_pretrained(weights, architecture, task="asd", device=device)[0]


def _onnx_info(name: str) -> WeightsInfo:
    entry = hub.get_entry(name)
    return WeightsInfo(
        name=entry.name,
        path=hub.resolve_weights(name),
        sha256=entry.sha256,
        architecture=entry.architecture,
        task=entry.kind,
        format="onnx",
    )


def load_face_detector(
    name: str = "ultra-light-face-rfb-320",
    *,
    score_threshold: float = 0.7,
    num_threads: int = 1,
    **kwargs: Any,
):
    """The Ultra-Light face detector of a registry entry (kind ``face-detector``).

    Args:
        name: ``ultra-light-face-rfb-320`` (default), ``-rfb-640`` or ``-slim-320``.
        score_threshold, num_threads, kwargs: see
            :class:`~socialav.vision.detection.UltraLightFaceDetector`.

    Returns:
        ``(detector, info)``.

    Raises:
        socialav.hub.WeightsError: unknown name, missing or corrupt file.
        ValueError: the entry is not a face detector.
    """
    from socialav.checkpoints.onnx_cache import find_or_export
    from socialav.vision.detection import UltraLightFaceDetector, strip_initializer_inputs

    info = _onnx_info(name)
    if info.task != "face-detector":
        raise ValueError(f"weights {name!r} are a {info.task} model, not a face detector")

    def write(path: Path) -> None:
        path.write_bytes(strip_initializer_inputs(info.path.read_bytes()))

    # the published graph without its weights listed as inputs, cached (stripping it needs
    # the onnx package, whose import costs about 0.4 s of every start)
    record = {"source": info.name, "task": info.task}
    found = find_or_export(
        info.sha256, "stripped", "1", lambda: {"model": write}, ("model",), record
    )
    detector = UltraLightFaceDetector(
        found.graphs["model"],
        score_threshold=score_threshold,
        intra_op_num_threads=num_threads,
        inputs_stripped=True,
        **kwargs,
    )
    return detector, info


def load_head_pose(names: Sequence[str] = FSANET_WEIGHTS, *, num_threads: int = 1, **kwargs: Any):
    """FSA-Net head pose from registry entries (kind ``head-pose``), averaged as its demo.

    Returns:
        ``(estimator, [info, ...])`` (:class:`~socialav.vision.head_pose.FSANetHeadPose`).

    Raises:
        socialav.hub.WeightsError: unknown name, missing or corrupt file.
        ValueError: an entry that is not a head-pose model, or no name.
    """
    from socialav.vision.head_pose import FSANetHeadPose

    infos = [_onnx_info(n) for n in names]
    for info in infos:
        if info.task != "head-pose":
            raise ValueError(f"weights {info.name!r} are a {info.task} model, not head pose")
    return FSANetHeadPose([i.path for i in infos], num_threads=num_threads, **kwargs), infos


def _entry_info(name: str, kind: str) -> WeightsInfo:
    info = _onnx_info(name)
    if info.task != kind:
        raise ValueError(f"weights {name!r} are a {info.task} model, not a {kind} model")
    return replace(info, format="onnx" if info.path.suffix == ".onnx" else "reference")


def load_vad(name: str = "silero-vad", *, num_threads: int = 1, **kwargs: Any):
    """Silero VAD (ONNX) of a registry entry (kind ``vad``; the file ships in the
    ``silero-vad`` wheel).

    Returns:
        ``(vad, info)`` (:class:`~socialav.audio.vad.SileroVAD`).

    Raises:
        socialav.hub.WeightsError: missing or corrupt file (the message names the wheel).
    """
    from socialav.audio.vad import SileroVAD

    info = _entry_info(name, "vad")
    return SileroVAD(info.path, num_threads=num_threads, **kwargs), info


#: Version of the exported GE2E graph (part of its cache file names).
GE2E_ONNX_VERSION = "1"


def load_voice_encoder(
    name: str = "resemblyzer-ge2e",
    *,
    num_threads: int | None = 1,
    backend: str = "onnx",
    cache_dir: str | Path | None = None,
):
    """The GE2E voice encoder of a registry entry (kind ``voice-embedding``; Resemblyzer's
    ``pretrained.pt`` in the ``resemblyzer`` wheel), wrapped with its mel front-end.

    With ``backend="onnx"`` (default) the network runs in onnxruntime from its ONNX export,
    cached under the file's sha256 (:mod:`socialav.checkpoints.onnx_cache`): once exported it
    loads without PyTorch. Embeddings equal the PyTorch model's to about 1e-6
    (``tests/audio/test_voice.py``).

    Args:
        name: the registry entry.
        num_threads: intra-op threads of the network.
        backend: ``"onnx"`` or ``"torch"``.
        cache_dir: the ONNX cache folder (default ``onnx/`` of the user cache).

    Returns:
        ``(encoder, info)`` (:class:`~socialav.audio.voice.GE2EVoiceEncoder`).

    Raises:
        ValueError: unknown backend.
        socialav.hub.WeightsError, CheckpointError, CheckpointMismatchError: missing,
            corrupt or mismatching weights.
    """
    from socialav.audio.voice import GE2EVoiceEncoder
    from socialav.checkpoints.onnx_cache import find_or_export, torch_onnx_writer

    if backend not in ("onnx", "torch"):
        raise ValueError(f"backend must be 'onnx' or 'torch', but got {backend!r}")
    info = _entry_info(name, "voice-embedding")

    def model():  # PyTorch: imported only for backend="torch" or to export
        from socialav.checkpoints.ge2e_reference import load_ge2e

        return load_ge2e(info.path).eval()

    if backend == "torch":
        return GE2EVoiceEncoder(model(), num_threads=num_threads), info

    def writers():
        import torch

        from socialav.models.ge2e import GE2E_MEL_CHANNELS

        axes = {"mels": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}}
        example = torch.zeros(2, 160, GE2E_MEL_CHANNELS)
        return {"encoder": torch_onnx_writer(model(), (example,), ("mels",), "embedding", axes)}

    record = {"architecture": "ge2e", "task": info.task, "format": info.format}
    exported = find_or_export(
        info.sha256, "ge2e", GE2E_ONNX_VERSION, writers, ("encoder",), record, cache_dir
    )
    return GE2EVoiceEncoder(exported.graphs["encoder"], num_threads=num_threads), info


def load_face_embedder(descriptor: str = "dlib-face-resnet", landmarks: str = "dlib-shape-5"):
    """dlib's face descriptor with its 5-point alignment, from registry entries (kinds
    ``face-embedding`` and ``face-landmarks``; both ship in the ``face-recognition-models``
    wheel).

    Returns:
        ``(embedder, [descriptor info, landmarks info])``
        (:class:`~socialav.vision.face_embedding.DlibFaceEmbedder`).

    Raises:
        socialav.hub.WeightsError: missing or corrupt files.
    """
    from socialav.vision.face_embedding import DlibFaceEmbedder

    infos = [_entry_info(descriptor, "face-embedding"), _entry_info(landmarks, "face-landmarks")]
    return DlibFaceEmbedder(infos[0].path, infos[1].path), infos
