"""Load original TalkNet checkpoints (``pretrain_AVA.model``, ``pretrain_TalkSet.model``).

The public TalkNet checkpoints (github.com/TaoRuijie/TalkNet-ASD) are the ``state_dict`` of the
reference training class ``talkNet``: the model under ``model.`` (``model.visualFrontend.*``,
``model.visualTCN.*``, ``model.visualConv1D.*``, ``model.audioEncoder.*``, ``model.crossA2V.*``,
``model.crossV2A.*``, ``model.selfAV.*``) and the three heads ``lossAV.FC.*``, ``lossA.FC.*``,
``lossV.FC.*``. Every reference *module* is mapped to one of ours
(:class:`socialav.models.talknet.TalkNet`) through the explicit table :data:`TALKNET_MODULE_MAP`;
a parameter keeps its leaf name (``weight``, ``running_mean``, ``in_proj_weight``, ``gamma``).

Loading is strict: ``torch.load(weights_only=True)``, every key must be in the table and fit
our model's shape, every parameter of our model must be present, then
``load_state_dict(strict=True)``; anything else raises
:class:`~socialav.checkpoints.asd_reference.CheckpointMismatchError` naming the keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from socialav.checkpoints.asd_reference import CheckpointMismatchError, read_state_dict
from socialav.models.talknet import TalkNet

logger = logging.getLogger(__name__)

__all__ = [
    "TALKNET_MODULE_MAP",
    "TALKNET_SIGNATURE_KEY",
    "load_talknet",
    "talknet_from_reference_state_dict",
    "talknet_to_reference_state_dict",
]

_RESNET_UNIT = {
    "conv1a": "conv1a",
    "bn1a": "bn1a",
    "conv2a": "conv2a",
    "downsample": "shortcut",
    "outbna": "out_bn_a",
    "conv1b": "conv1b",
    "bn1b": "bn1b",
    "conv2b": "conv2b",
    "outbnb": "out_bn_b",
}
# ``DSConv1d.net`` is ``Sequential(ReLU, BatchNorm1d, Conv1d, PReLU, GlobalLayerNorm, Conv1d)``.
_DSCONV = {"1": "bn", "2": "depthwise", "3": "prelu", "4": "norm", "5": "pointwise"}
_SE_BLOCK = {
    "conv1": "conv1",
    "bn1": "bn1",
    "conv2": "conv2",
    "bn2": "bn2",
    "se.fc.0": "se.fc1",
    "se.fc.2": "se.fc2",
    "downsample.0": "shortcut.0",
    "downsample.1": "shortcut.1",
}
_ATTENTION = {
    "self_attn": "attention",
    "self_attn.out_proj": "attention.out_proj",
    "linear1": "ff1",
    "linear2": "ff2",
    "norm1": "norm1",
    "norm2": "norm2",
}
_AUDIO_LAYERS = (3, 4, 6, 3)


def _build_table() -> dict[str, str]:
    table = {
        "model.visualFrontend.frontend3D.0": "visual_encoder.frontend.stem_conv",
        "model.visualFrontend.frontend3D.1": "visual_encoder.frontend.stem_bn",
        "model.visualConv1D.net.0": "visual_encoder.temporal.proj_conv1",
        "model.visualConv1D.net.1": "visual_encoder.temporal.proj_bn",
        "model.visualConv1D.net.3": "visual_encoder.temporal.proj_conv2",
        "model.audioEncoder.conv1": "audio_encoder.stem_conv",
        "model.audioEncoder.bn1": "audio_encoder.stem_bn",
        "lossAV.FC": "av_head",
        "lossA.FC": "audio_head",
        "lossV.FC": "visual_head",
    }
    for i in (1, 2, 3, 4):
        for ref, ours in _RESNET_UNIT.items():
            table[f"model.visualFrontend.resnet.layer{i}.{ref}"] = (
                f"visual_encoder.frontend.layer{i}.{ours}"
            )
    for k in range(5):
        for ref, ours in _DSCONV.items():
            table[f"model.visualTCN.net.{k}.net.{ref}"] = f"visual_encoder.temporal.tcn.{k}.{ours}"
    for stage, num_blocks in enumerate(_AUDIO_LAYERS):
        for block in range(num_blocks):
            for ref, ours in _SE_BLOCK.items():
                table[f"model.audioEncoder.layer{stage + 1}.{block}.{ref}"] = (
                    f"audio_encoder.stages.{stage}.{block}.{ours}"
                )
    for ref_layer, our_layer in (
        ("crossA2V", "cross_a2v"),
        ("crossV2A", "cross_v2a"),
        ("selfAV", "self_av"),
    ):
        for ref, ours in _ATTENTION.items():
            table[f"model.{ref_layer}.{ref}"] = f"{our_layer}.{ours}"
    return table


#: A key only original TalkNet checkpoints have (how :func:`~socialav.checkpoints.load.
#: load_pretrained` recognises them).
TALKNET_SIGNATURE_KEY = "model.visualTCN.net.0.net.2.weight"
#: Reference module name -> our module name (parameters keep their leaf names).
TALKNET_MODULE_MAP: dict[str, str] = _build_table()
_INVERSE_MAP: dict[str, str] = {ours: ref for ref, ours in TALKNET_MODULE_MAP.items()}


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    module, _, leaf = key.rpartition(".")
    return f"{table[module]}.{leaf}" if module in table else None


def talknet_to_reference_state_dict(model: TalkNet) -> dict[str, torch.Tensor]:
    """Our ``state_dict`` under the original TalkNet key names (the inverse of the table).

    Useful to hand weights trained here to the reference code, and to test the key map.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        ref = _rename(key, _INVERSE_MAP)
        if ref is None:
            raise KeyError(f"no reference name for {key!r}: TALKNET_MODULE_MAP is incomplete")
        out[ref] = tensor
    return out


def talknet_from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: TalkNet | None = None
) -> TalkNet:
    """Load a reference-layout ``state_dict`` into a :class:`TalkNet` (strict).

    Args:
        state_dict: keys as in the original checkpoints (a leading ``module.`` is not
            accepted here; :func:`load_talknet` strips it).
        model: the model to fill; a new one if ``None``.

    Returns:
        The model (same object as ``model`` when given).

    Raises:
        CheckpointMismatchError: unexpected keys, missing keys (both in reference names) or
            shape mismatches (expected vs found).
    """
    model = TalkNet() if model is None else model
    expected = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for key, tensor in state_dict.items():
        ours = _rename(key, TALKNET_MODULE_MAP)
        if ours is None or ours not in expected:
            unexpected.append(key)
        elif tuple(tensor.shape) != tuple(expected[ours].shape):
            shapes.append((key, tuple(expected[ours].shape), tuple(tensor.shape)))
        else:
            mapped[ours] = tensor
    shape_keys = {s[0] for s in shapes}
    missing = [
        _rename(k, _INVERSE_MAP) or k
        for k in expected
        if k not in mapped and (_rename(k, _INVERSE_MAP) or k) not in shape_keys
    ]
    if unexpected or missing or shapes:
        parts = ["checkpoint does not fit the talknet architecture:"]
        for label, items in (
            ("unexpected keys", unexpected),
            ("missing keys", missing),
            ("shape mismatches", [f"{k} expected {list(e)} found {list(f)}" for k, e, f in shapes]),
        ):
            if items:
                more = f" ... and {len(items) - 8} more" if len(items) > 8 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:8])}{more}")
        raise CheckpointMismatchError("\n  ".join(parts), unexpected, missing, shapes)
    model.load_state_dict(mapped, strict=True)
    return model


def load_talknet(path: str | Path, device: str | torch.device = "cpu") -> TalkNet:
    """Build a :class:`TalkNet` from an original TalkNet checkpoint, in eval mode.

    Args:
        path: ``pretrain_AVA.model`` / ``pretrain_TalkSet.model`` of TaoRuijie/TalkNet-ASD (read
            with ``torch.load(weights_only=True)``; ``module.`` prefixes are removed).
        device: where to put the model.

    Raises:
        FileNotFoundError, ValueError: see :func:`socialav.checkpoints.asd_reference.read_state_dict`.
        CheckpointMismatchError: the keys or shapes do not fit (the message names them).
    """
    state_dict = read_state_dict(path)
    try:
        model = talknet_from_reference_state_dict(state_dict)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(
            f"{path}: {err}", err.unexpected, err.missing, err.shape_mismatches
        ) from None
    logger.debug("loaded talknet weights from %s", path)
    return model.to(device).eval()
