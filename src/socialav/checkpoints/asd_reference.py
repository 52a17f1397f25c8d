"""Load the original Light-ASD / LR-ASD checkpoints into our model classes.

The public checkpoints (``weight/*.model`` in github.com/Junhua-Liao/Light-ASD and
github.com/Junhua-Liao/LR-ASD) are the ``state_dict`` of the reference training class ``ASD``:
keys ``model.visualEncoder.*``, ``model.audioEncoder.*``, the backend (``model.GRU.*`` for
Light-ASD; ``model.fusion.*`` and ``model.detector.*`` for LR-ASD), and the two heads
``lossAV.FC.*`` and ``lossV.FC.*``. Every reference *module* is mapped to one of ours through the
explicit tables below (a parameter keeps its leaf name: ``weight``, ``running_mean``, ...).

Loading is strict: ``torch.load(weights_only=True)``, every key must be in the table, every
parameter of our model must be provided with the same shape, then
``load_state_dict(strict=True)``. Anything else raises :class:`CheckpointMismatchError` naming
the unexpected and missing keys and the shape mismatches (expected vs found).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from socialav.checkpoints.errors import CheckpointMismatchError
from socialav.checkpoints.format import read_torch_file
from socialav.models.light_asd import AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD
from socialav.models.registry import build_architecture

logger = logging.getLogger(__name__)

#: The original checkpoint layouts with a key map here (architecture names of the registry).
ReferenceLayout = Literal["light-asd", "lr-asd"]
REFERENCE_LAYOUTS: tuple[ReferenceLayout, ...] = ("light-asd", "lr-asd")

# --- Light-ASD: reference module name -> our module name --------------------------------------
# Inside one block of ``visual_encoder`` (``Visual_Block``).
_LIGHT_ASD_VISUAL_BLOCK = {
    "s_3": "branch3.spatial.conv",
    "bn_s_3": "branch3.spatial.bn",
    "t_3": "branch3.temporal.conv",
    "bn_t_3": "branch3.temporal.bn",
    "s_5": "branch5.spatial.conv",
    "bn_s_5": "branch5.spatial.bn",
    "t_5": "branch5.temporal.conv",
    "bn_t_5": "branch5.temporal.bn",
    "last": "fuse.conv",
    "bn_last": "fuse.bn",
}
# Inside one block of ``audio_encoder`` (``Audio_Block``).
_LIGHT_ASD_AUDIO_BLOCK = {
    "m_3": "branch3.mfcc.conv",
    "bn_m_3": "branch3.mfcc.bn",
    "t_3": "branch3.temporal.conv",
    "bn_t_3": "branch3.temporal.bn",
    "m_5": "branch5.mfcc.conv",
    "bn_m_5": "branch5.mfcc.bn",
    "t_5": "branch5.temporal.conv",
    "bn_t_5": "branch5.temporal.bn",
    "last": "fuse.conv",
    "bn_last": "fuse.bn",
}
_LIGHT_ASD_OTHER = {
    "model.GRU.gru_forward": "backend.gru_forward",
    "model.GRU.gru_backward": "backend.gru_backward",
    "lossAV.FC": "av_head",
    "lossV.FC": "visual_head",
}

# --- LR-ASD ------------------------------------------------------------------------------------
_LR_ASD_VISUAL_BLOCK = {
    "s_1": "spatial1.conv",
    "s_norm_1": "spatial1.bn",
    "s_2": "spatial2.conv",
    "s_norm_2": "spatial2.bn",
    "t_1": "temporal1.conv",
    "t_norm_1": "temporal1.bn",
    "t_2": "temporal2.conv",
    "t_norm_2": "temporal2.bn",
}
_LR_ASD_AUDIO_BLOCK = {
    "m_1": "mfcc1.conv",
    "m_norm_1": "mfcc1.bn",
    "m_2": "mfcc2.conv",
    "m_norm_2": "mfcc2.bn",
    "t_1": "temporal1.conv",
    "t_norm_1": "temporal1.bn",
    "t_2": "temporal2.conv",
    "t_norm_2": "temporal2.bn",
}
_LR_ASD_OTHER = {
    "model.fusion.attention": "av_fusion.gate.conv",
    "model.fusion.bn": "av_fusion.gate.bn",
    "model.detector.gru_forward": "backend.gru_forward",
    "model.detector.gru_backward": "backend.gru_backward",
    "model.detector.attention.attention": "backend.fusion.gate.conv",
    "model.detector.attention.bn": "backend.fusion.gate.bn",
    "lossAV.FC": "av_head",
    "lossV.FC": "visual_head",
}


def _encoder_table(
    visual_block: Mapping[str, str], audio_block: Mapping[str, str]
) -> dict[str, str]:
    table: dict[str, str] = {}
    for i in (1, 2, 3):
        for ref, ours in visual_block.items():
            table[f"model.visualEncoder.block{i}.{ref}"] = f"visual_encoder.block{i}.{ours}"
        for ref, ours in audio_block.items():
            table[f"model.audioEncoder.block{i}.{ref}"] = f"audio_encoder.block{i}.{ours}"
    return table


#: Reference module name -> our module name, per architecture.
MODULE_KEY_MAPS: dict[ReferenceLayout, dict[str, str]] = {
    "light-asd": {
        **_encoder_table(_LIGHT_ASD_VISUAL_BLOCK, _LIGHT_ASD_AUDIO_BLOCK),
        **_LIGHT_ASD_OTHER,
    },
    "lr-asd": {**_encoder_table(_LR_ASD_VISUAL_BLOCK, _LR_ASD_AUDIO_BLOCK), **_LR_ASD_OTHER},
}

#: Keys whose presence identifies a layout (see :func:`detect_architecture`).
REFERENCE_SIGNATURE_KEYS: dict[ReferenceLayout, str] = {
    "light-asd": "model.GRU.gru_forward.weight_ih_l0",
    "lr-asd": "model.detector.gru_forward.weight_ih_l0",
}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file as a ``state_dict`` with ``torch.load(weights_only=True)``.

    A leading ``module.`` (left by ``nn.DataParallel``) is removed from every key, as the
    reference ``ASD.loadParameters`` does.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file does not hold a mapping of names to tensors.
    """
    path = Path(path)
    obj = read_torch_file(path, "reference checkpoint (state_dict)")
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(
            f"{path} must hold a state_dict (a mapping of names to tensors), but holds "
            f"{type(obj).__name__}"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def detect_architecture(state_dict: Mapping[str, torch.Tensor]) -> ReferenceLayout | None:
    """Guess the architecture of a reference checkpoint from its keys, or ``None``."""
    found = [arch for arch, key in REFERENCE_SIGNATURE_KEYS.items() if key in state_dict]
    return found[0] if len(found) == 1 else None


def remap_state_dict(
    state_dict: Mapping[str, torch.Tensor], architecture: ReferenceLayout, model: nn.Module
) -> dict[str, torch.Tensor]:
    """Rename reference checkpoint keys to ours and check them against ``model``.

    Args:
        state_dict: reference keys (``model.visualEncoder.block1.s_3.weight``, ...).
        architecture: which table of :data:`MODULE_KEY_MAPS` to use.
        model: the target model, whose ``state_dict`` gives the expected keys and shapes.

    Returns:
        The same tensors under our key names.

    Raises:
        CheckpointMismatchError: on unexpected or missing keys or shape mismatches; the message
            names them (reference key names) with expected vs found shapes.
    """
    table = MODULE_KEY_MAPS[architecture]
    inverse = {ours: ref for ref, ours in table.items()}
    expected = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for key, tensor in state_dict.items():
        module, _, leaf = key.rpartition(".")
        ours = f"{table[module]}.{leaf}" if module in table else None
        if ours is None or ours not in expected:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[ours].shape):
            shape_mismatches.append((key, tuple(expected[ours].shape), tuple(tensor.shape)))
            continue
        mapped[ours] = tensor
    missing = []
    for ours in expected:
        module, _, leaf = ours.rpartition(".")
        ref = f"{inverse.get(module, module)}.{leaf}"
        if ours not in mapped and not any(m[0] == ref for m in shape_mismatches):
            missing.append(ref)
    if unexpected or missing or shape_mismatches:
        raise CheckpointMismatchError(
            _mismatch_message(architecture, state_dict, unexpected, missing, shape_mismatches),
            unexpected,
            missing,
            shape_mismatches,
        )
    return mapped


def _mismatch_message(
    architecture: ReferenceLayout,
    state_dict: Mapping[str, torch.Tensor],
    unexpected: list[str],
    missing: list[str],
    shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    limit: int = 8,
) -> str:
    def listing(items: list[str]) -> str:
        more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    parts = [f"checkpoint does not fit the {architecture} architecture:"]
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {listing(unexpected)}")
    if missing:
        parts.append(f"{len(missing)} missing keys: {listing(missing)}")
    if shape_mismatches:
        shapes = [f"{k} expected {list(e)} found {list(f)}" for k, e, f in shape_mismatches]
        parts.append(f"{len(shape_mismatches)} shape mismatches: {listing(shapes)}")
    guess = detect_architecture(state_dict)
    if guess is not None and guess != architecture:
        parts.append(f"(the keys look like a {guess} checkpoint: load it as {guess!r})")
    return "\n  ".join(parts)


def load_reference_asd(
    path: str | Path,
    architecture: ReferenceLayout | None = None,
    device: str | torch.device = "cpu",
) -> AudioVisualASD:
    """Build a Light-ASD or LR-ASD model from an original checkpoint, in eval mode.

    (Self-describing socialav checkpoints and registry names go through
    :func:`socialav.checkpoints.load.load_pretrained`, which calls this for original files.)

    Args:
        path: a reference checkpoint (``pretrain_AVA_CVPR.model``, ``finetuning_TalkSet.model``
            of Light-ASD; ``pretrain_AVA.model``, ``finetuning_TalkSet.model`` of LR-ASD).
        architecture: ``"light-asd"`` or ``"lr-asd"``; ``None`` detects it from the keys.
        device: where to put the model.

    Returns:
        A :class:`~socialav.models.light_asd.LightASD` or :class:`~socialav.models.lr_asd.LRASD`.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_state_dict`; ``ValueError`` also when the
            architecture is unknown or cannot be detected.
        CheckpointMismatchError: when the checkpoint does not fit the architecture.
    """
    state_dict = read_state_dict(path)
    if architecture is None:
        architecture = detect_architecture(state_dict)
        if architecture is None:
            raise ValueError(
                f"cannot tell the architecture of {path} from its keys (expected one of "
                f"{sorted(REFERENCE_SIGNATURE_KEYS.values())}); pass architecture= one of "
                f"{REFERENCE_LAYOUTS}"
            )
    if architecture not in MODULE_KEY_MAPS:
        raise ValueError(
            f"architecture must be one of {REFERENCE_LAYOUTS}, but got {architecture!r}"
        )
    model = build_architecture(architecture)
    try:
        mapped = remap_state_dict(state_dict, architecture, model)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(
            f"{path}: {err}", err.unexpected, err.missing, err.shape_mismatches
        ) from None
    model.load_state_dict(mapped, strict=True)
    logger.debug("loaded %s weights from %s", architecture, path)
    return model.to(device).eval()


def load_light_asd(path: str | Path, device: str | torch.device = "cpu") -> LightASD:
    """Load a Light-ASD checkpoint (see :func:`load_reference_asd`); refuses other architectures."""
    model = load_reference_asd(path, "light-asd", device)
    assert isinstance(model, LightASD)
    return model


def load_lr_asd(path: str | Path, device: str | torch.device = "cpu") -> LRASD:
    """Load an LR-ASD checkpoint (see :func:`load_reference_asd`); refuses other architectures."""
    model = load_reference_asd(path, "lr-asd", device)
    assert isinstance(model, LRASD)
    return model
