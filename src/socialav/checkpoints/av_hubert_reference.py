"""Load AV-HuBERT checkpoints into :class:`~socialav.models.av_transformer.AVHubertBackbone`.

AV-HuBERT checkpoints (fairseq, ``facebookresearch/av_hubert``) are dicts with the model's
state dict under ``"model"`` and the configuration under ``"cfg"`` (``cfg["model"]`` holds
``encoder_embed_dim``, ``encoder_layers``, ...). Pre-trained models store ``AVHubertModel``
keys directly; fine-tuned ones (``AVHubertSeq2Seq``) store them under ``encoder.w2v_model.``
next to a ``decoder.*``. Key names come from ``avhubert/hubert.py`` (``AVHubertModel``,
``SubModel``), ``avhubert/resnet.py`` (``ResEncoder``, ``ResNet``, ``BasicBlock``) and
fairseq's ``wav2vec2.TransformerEncoder`` / ``TransformerSentenceEncoderLayer``:

=====================================================  ============================================
ours (``AVHubertBackbone``)                            AV-HuBERT
=====================================================  ============================================
``lip_encoder.stem.{conv,bn,act}``                     ``feature_extractor_video.resnet.frontend3D.{0,1,2}``
``lip_encoder.stages.{i}.{j}.{conv,bn}{1,2}``          ``feature_extractor_video.resnet.trunk.layer{i+1}.{j}.{conv,bn}{1,2}``
``lip_encoder.stages.{i}.{j}.act{1,2}``                ``... .relu{1,2}`` (PReLU weights)
``lip_encoder.stages.{i}.{j}.shortcut.{conv,bn}``      ``... .downsample.{0,1}``
``video_proj`` / ``audio_proj``                        ``feature_extractor_{video,audio}.proj``
``fusion_norm`` / ``fusion_proj``                      ``layer_norm`` / ``post_extract_proj``
``encoder.pos_conv.conv.{weight_g,weight_v,bias}``     ``encoder.pos_conv.0.{weight_g,weight_v,bias}``
``encoder.layers.{n}.attn.{q,k,v,out}_proj``           ``encoder.layers.{n}.self_attn.{q,k,v,out}_proj``
``encoder.layers.{n}.attn_norm`` / ``ffn_norm``        ``... .self_attn_layer_norm`` / ``final_layer_norm``
``encoder.layers.{n}.fc{1,2}``                         ``... .fc{1,2}``
``encoder.norm``                                       ``encoder.layer_norm``
=====================================================  ============================================

Keys used only by pre-training or decoding (``mask_emb``, ``label_embs_concat``,
``final_proj.*``, ``decoder.*``) are listed in :data:`IGNORED_KEYS` and skipped by name;
anything else that is not in the map is an error, as is any backbone key the file lacks.
Loading uses ``torch.load(weights_only=True)``; fairseq checkpoints whose ``extra_state``
holds Python objects must first be reduced to ``{"model": ..., "cfg": ...}`` in a trusted
environment (the error says so).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from socialav.models.av_transformer import (
    AVHubertBackbone,
    AVTransformerConfig,
    AVTransformerTTM,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORED_KEYS",
    "AVHubertCheckpointError",
    "av_hubert_key_map",
    "to_av_hubert_state_dict",
    "from_av_hubert_state_dict",
    "config_from_av_hubert_cfg",
    "load_av_hubert_checkpoint",
]

#: Prefix of the AV-HuBERT encoder inside fine-tuned (seq2seq) checkpoints.
FINETUNED_PREFIX = "encoder.w2v_model."
#: Patterns of checkpoint keys that have no counterpart here (pre-training / decoder only).
IGNORED_KEYS: tuple[str, ...] = (
    r"mask_emb",
    r"label_embs_concat",
    r"final_proj\.(weight|bias)",
    r"decoder\..*",
)

# (our key pattern, AV-HuBERT key template); the first matching rule wins.
_RULES: list[tuple[str, str]] = [
    (r"lip_encoder\.stem\.conv\.(.+)", r"feature_extractor_video.resnet.frontend3D.0.\1"),
    (r"lip_encoder\.stem\.bn\.(.+)", r"feature_extractor_video.resnet.frontend3D.1.\1"),
    (r"lip_encoder\.stem\.act\.(.+)", r"feature_extractor_video.resnet.frontend3D.2.\1"),
    (
        r"lip_encoder\.stages\.(\d+)\.(\d+)\.shortcut\.conv\.(.+)",
        r"feature_extractor_video.resnet.trunk.layer{\1+1}.\2.downsample.0.\3",
    ),
    (
        r"lip_encoder\.stages\.(\d+)\.(\d+)\.shortcut\.bn\.(.+)",
        r"feature_extractor_video.resnet.trunk.layer{\1+1}.\2.downsample.1.\3",
    ),
    (
        r"lip_encoder\.stages\.(\d+)\.(\d+)\.act(\d)\.(.+)",
        r"feature_extractor_video.resnet.trunk.layer{\1+1}.\2.relu\3.\4",
    ),
    (
        r"lip_encoder\.stages\.(\d+)\.(\d+)\.((conv|bn)\d)\.(.+)",
        r"feature_extractor_video.resnet.trunk.layer{\1+1}.\2.\3.\5",
    ),
    (r"video_proj\.(.+)", r"feature_extractor_video.proj.\1"),
    (r"audio_proj\.(.+)", r"feature_extractor_audio.proj.\1"),
    (r"fusion_norm\.(.+)", r"layer_norm.\1"),
    (r"fusion_proj\.(.+)", r"post_extract_proj.\1"),
    (r"encoder\.pos_conv\.conv\.(.+)", r"encoder.pos_conv.0.\1"),
    (r"encoder\.layers\.(\d+)\.attn\.(.+)", r"encoder.layers.\1.self_attn.\2"),
    (r"encoder\.layers\.(\d+)\.attn_norm\.(.+)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.ffn_norm\.(.+)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.(fc\d)\.(.+)", r"encoder.layers.\1.\2.\3"),
    (r"encoder\.norm\.(.+)", r"encoder.layer_norm.\1"),
]


class AVHubertCheckpointError(ValueError):
    """A checkpoint does not fit the AV-HuBERT layout or the configured model size."""


def _translate(key: str) -> str | None:
    """AV-HuBERT name of one of our keys; ``{\\N+1}`` in a template is group N plus one
    (our 0-based ResNet stages are AV-HuBERT's ``layer1..layer4``)."""
    for pattern, template in _RULES:
        match = re.fullmatch(pattern, key)
        if match is None:
            continue
        groups = match.groups()
        template = re.sub(
            r"\{\\(\d)\+1\}", lambda m, g=groups: str(int(g[int(m.group(1)) - 1]) + 1), template
        )
        return match.expand(template)
    return None


def av_hubert_key_map(backbone: AVHubertBackbone) -> dict[str, str]:
    """Our backbone state-dict key -> AV-HuBERT key, for every key of ``backbone``.

    Raises:
        AVHubertCheckpointError: a key of ours has no rule (a bug: the table is incomplete).
    """
    mapping = {}
    for key in backbone.state_dict():
        theirs = _translate(key)
        if theirs is None:
            raise AVHubertCheckpointError(f"no AV-HuBERT name for backbone key {key!r}")
        mapping[key] = theirs
    if len(set(mapping.values())) != len(mapping):
        raise AVHubertCheckpointError("the key map is not one-to-one")
    return mapping


def to_av_hubert_state_dict(backbone: AVHubertBackbone) -> dict[str, torch.Tensor]:
    """Our backbone's state dict renamed to AV-HuBERT's layout (the inverse map; for tests and
    for exporting)."""
    mapping = av_hubert_key_map(backbone)
    return {mapping[k]: v for k, v in backbone.state_dict().items()}


def _ignored(key: str) -> bool:
    return any(re.fullmatch(p, key) for p in IGNORED_KEYS)


def from_av_hubert_state_dict(
    backbone: AVHubertBackbone, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename an AV-HuBERT state dict (pre-trained, or fine-tuned with the
    ``encoder.w2v_model.`` prefix) to our backbone's keys and check it is complete.

    Raises:
        AVHubertCheckpointError: keys missing from the file, unexpected keys (neither mapped
            nor in :data:`IGNORED_KEYS`), or tensors whose shapes differ from the model's
            (the model size does not match the checkpoint); the message lists them.
    """
    if any(k.startswith(FINETUNED_PREFIX) for k in state_dict):
        state_dict = {
            (k[len(FINETUNED_PREFIX) :] if k.startswith(FINETUNED_PREFIX) else k): v
            for k, v in state_dict.items()
        }
    mapping = av_hubert_key_map(backbone)
    inverse = {theirs: ours for ours, theirs in mapping.items()}
    own = backbone.state_dict()
    missing = sorted(theirs for theirs in inverse if theirs not in state_dict)
    unexpected = sorted(k for k in state_dict if k not in inverse and not _ignored(k))
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[inverse[k]].shape)}"
        for k in inverse
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[inverse[k]].shape)
    ]
    if missing or unexpected or mismatched:
        raise AVHubertCheckpointError(
            "checkpoint does not fit the AV-HuBERT backbone: "
            f"{len(missing)} missing keys {missing[:10]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:10]}, {len(mismatched)} shape mismatches {mismatched[:5]}"
        )
    return {inverse[k]: v for k, v in state_dict.items() if k in inverse}


def config_from_av_hubert_cfg(cfg: Mapping[str, Any]) -> AVTransformerConfig:
    """Model sizes from a checkpoint's ``cfg`` (its ``"model"`` section, or fine-tuned
    checkpoints' ``model.w2v_args.model``); keys AV-HuBERT leaves at their defaults take
    AV-HuBERT's defaults (``AVHubertConfig``).

    Raises:
        AVHubertCheckpointError: no model section.
    """
    model_cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    if not isinstance(model_cfg, Mapping):
        raise AVHubertCheckpointError("checkpoint cfg has no 'model' section")
    w2v = model_cfg.get("w2v_args")
    if isinstance(w2v, Mapping) and isinstance(w2v.get("model"), Mapping):
        model_cfg = w2v["model"]
    base = AVTransformerConfig()
    return AVTransformerConfig(
        embed_dim=int(model_cfg.get("encoder_embed_dim", base.embed_dim)),
        num_layers=int(model_cfg.get("encoder_layers", base.num_layers)),
        num_heads=int(model_cfg.get("encoder_attention_heads", base.num_heads)),
        ffn_dim=int(model_cfg.get("encoder_ffn_embed_dim", base.ffn_dim)),
        layer_norm_first=bool(model_cfg.get("layer_norm_first", base.layer_norm_first)),
        relu_type=str(model_cfg.get("resnet_relu_type", base.relu_type)),
        audio_feat_dim=int(model_cfg.get("audio_feat_dim", base.audio_feat_dim)),
        conv_pos=int(model_cfg.get("conv_pos", base.conv_pos)),
        conv_pos_groups=int(model_cfg.get("conv_pos_groups", base.conv_pos_groups)),
    )


def load_av_hubert_checkpoint(
    path: str | Path,
    config: AVTransformerConfig | None = None,
    device: str | torch.device = "cpu",
) -> AVTransformerTTM:
    """Build an :class:`AVTransformerTTM` whose backbone holds an AV-HuBERT checkpoint.

    The TTM head is freshly initialised (it is not part of AV-HuBERT); fine-tune it.

    Args:
        path: a ``.pt`` file: ``{"model": state_dict, "cfg": {...}}`` (fairseq layout) or a
            bare state dict.
        config: model sizes; default read from the file's ``cfg``.
        device: where to put the model.

    Raises:
        FileNotFoundError: no such file.
        AVHubertCheckpointError: unreadable with ``weights_only=True``, no config given nor
            stored, or keys/shapes that do not fit (see :func:`from_av_hubert_state_dict`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AV-HuBERT checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError and friends
        raise AVHubertCheckpointError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({exc}); fairseq "
            "checkpoints may hold Python objects in 'extra_state': in a trusted environment "
            "save {'model': ckpt['model'], 'cfg': ckpt['cfg']} to a new file and load that"
        ) from exc
    if not isinstance(blob, Mapping):
        raise AVHubertCheckpointError(f"{path}: expected a dict, found {type(blob).__name__}")
    state_dict = blob.get("model", blob)
    if not isinstance(state_dict, Mapping):
        raise AVHubertCheckpointError(f"{path}: 'model' is not a state dict")
    if config is None:
        if "cfg" not in blob:
            raise AVHubertCheckpointError(
                f"{path}: no 'cfg' stored; pass config=AVTransformerConfig(...) with its sizes"
            )
        config = config_from_av_hubert_cfg(blob["cfg"])
    model = AVTransformerTTM(config)
    renamed = from_av_hubert_state_dict(model.backbone, state_dict)
    model.backbone.load_state_dict(renamed, strict=True)
    logger.info("loaded AV-HuBERT backbone from %s (%d tensors)", path, len(renamed))
    return model.to(device)
