"""The PyTorch side of the ASD backends: :class:`TorchRunner`, the conv2d form of the visual
encoders, and the export of the three model stages to ONNX (cached with
:mod:`socialav.checkpoints.onnx_cache`). Imported only when a PyTorch model is loaded: a model
whose graphs are cached runs without it (:func:`socialav.inference.backends.load_asd_runner`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from socialav.checkpoints.onnx_cache import (
    ExportedGraphs,
    find_or_export,
    torch_onnx_writer,
    write_exported,
)
from socialav.models.light_asd import FACE_SIZE_PX, NUM_MFCC, AudioVisualASD, ConvBN
from socialav.types import ASD_ONNX_GRAPHS, ASD_ONNX_VERSION

__all__ = [
    "TorchRunner",
    "conv2d_visual_encoder",
    "export_asd_graphs",
    "export_onnx",
    "weights_sha256",
]

_EMBED_DIM = 128  # the width of both encoders' embeddings (every registered ASD model)


class TorchRunner:
    """Runs an :class:`~socialav.models.light_asd.AudioVisualASD` in PyTorch (eval mode,
    ``torch.inference_mode``) on ``device``.

    Args:
        model: the model (not modified).
        device: PyTorch device.
        conv2d_visual: compute the visual encoder with :func:`conv2d_visual_encoder` (same
            result up to float rounding, about 2.5x faster on CPU); False runs the model as is.
    """

    def __init__(
        self,
        model: AudioVisualASD,
        device: str | torch.device = "cpu",
        conv2d_visual: bool = True,
    ) -> None:
        self.device = torch.device(device)
        if conv2d_visual:
            model = conv2d_visual_encoder(model)
        self.model = model.to(self.device).eval()
        self.visual_receptive_field_frames = model.visual_receptive_field_frames

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def encode_visual(self, faces: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.encode_visual(self._tensor(faces)).float().cpu().numpy()

    def encode_audio(self, mfcc: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.encode_audio(self._tensor(mfcc)).float().cpu().numpy()

    def decode_logits(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = self.model.decode(self._tensor(audio_embed), self._tensor(visual_embed))
            return self.model.av_head(x).float().cpu().numpy()


class _FoldedConv3dAs2d(torch.nn.Module):
    """A ``ConvBN`` 3-D convolution with a spatial ``(1, k, k)``, temporal ``(k, 1, 1)`` or
    pointwise kernel, its eval-mode batch norm folded in, computed with ``conv2d`` on
    ``(B, C, T, H, W)`` tensors. Same result as the original up to float rounding; onnxruntime
    runs 2-D convolutions with its blocked (NCHWc) kernels, about 1.3x faster on one thread
    and scaling to two threads, where its 3-D convolution does not."""

    def __init__(self, unit: ConvBN) -> None:
        super().__init__()
        conv, bn = unit.conv, unit.bn
        if not isinstance(conv, torch.nn.Conv3d) or not isinstance(bn, torch.nn.BatchNorm3d):
            raise TypeError(f"expected a Conv3d + BatchNorm3d unit, but got {unit}")
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight * scale.view(-1, 1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        kt, kh, kw = conv.kernel_size
        self.spatial = kt == 1 and (kh, kw) != (1, 1)
        if not self.spatial and (kh, kw) != (1, 1):
            raise ValueError(f"kernel {conv.kernel_size} is neither spatial nor temporal")
        if self.spatial:
            self.conv = torch.nn.Conv2d(
                conv.in_channels, conv.out_channels, (kh, kw), conv.stride[1:], conv.padding[1:]
            )
            self.conv.weight.data = weight[:, :, 0].detach().clone()
        else:
            self.conv = torch.nn.Conv2d(
                conv.in_channels, conv.out_channels, (kt, 1), 1, (conv.padding[0], 0)
            )
            self.conv.weight.data = weight[..., 0].detach().clone()
        self.conv.bias.data = bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if self.spatial:  # frames as the batch: (B*T, C, H, W)
            y = self.conv(x.transpose(1, 2).reshape(b * t, c, h, w))
            return y.reshape(b, t, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)
        y = self.conv(x.reshape(b, c, t, h * w))  # time as the height: (B, C, T, H*W)
        return y.reshape(b, y.shape[1], t, h, w)


def conv2d_visual_encoder(model: AudioVisualASD) -> AudioVisualASD:
    """A copy of ``model`` (eval mode, same device) whose visual encoder computes every
    Conv3d + BatchNorm3d unit with :class:`_FoldedConv3dAs2d` (for inference only: the batch
    norm statistics are folded into the convolutions)."""
    model = copy.deepcopy(model).eval()
    for module in list(model.visual_encoder.modules()):
        if isinstance(module, ConvBN) and isinstance(module.conv, torch.nn.Conv3d):
            module.conv = _FoldedConv3dAs2d(module)
            module.bn = torch.nn.Identity()
    return model


class _StageGraph(torch.nn.Module):
    """One stage of an ASD model as a module of its own, for ``torch.onnx.export`` to trace:
    ``forward(*inputs) = stage(*inputs)``, ``stage`` a function of the wrapped ``model``."""

    def __init__(self, model: AudioVisualASD, stage: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.stage = stage

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.stage(*inputs)


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's class name and ``state_dict`` (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _onnx_writer(
    graph: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    input_names: tuple[str, ...],
    output_name: str,
) -> Callable[[Path], None]:
    axes = {name: {0: "batch", 1: "time"} for name in (*input_names, output_name)}
    return torch_onnx_writer(graph, examples, input_names, output_name, axes)


def export_asd_graphs(
    model: AudioVisualASD,
    key_sha256: str,
    record: Mapping[str, object],
    cache_dir: str | Path | None = None,
) -> ExportedGraphs:
    """Export the three stages of an ASD model to ONNX (fp32) into the cache entry
    ``key_sha256`` (:func:`socialav.checkpoints.onnx_cache.write_exported`, kind ``asd``).

    Graphs (B and T dynamic): ``visual`` (the conv2d form, :func:`conv2d_visual_encoder`):
    ``faces`` ``(B, T, 112, 112)`` float32 pixel values -> ``embedding`` ``(B, T, 128)``;
    ``audio``: ``mfcc`` ``(B, 4T, 13)`` -> ``embedding`` ``(B, T, 128)``; ``decoder`` (the
    back-end and ``av_head``): ``audio_embed``, ``visual_embed`` ``(B, T, 128)`` ->
    ``logits`` ``(B, T, 2)``. Needs the ``onnx`` package.

    Args:
        model: a loaded Light-ASD / LR-ASD / TalkNet model (not modified).
        key_sha256: the cache key: the checkpoint file's sha256, or :func:`weights_sha256`.
        record: what to remember about the model (``visual_receptive_field_frames`` is
            added).
        cache_dir: the cache folder (default ``onnx/`` of the user cache).
    """
    writers = _asd_graph_writers(model)
    full = _asd_record(model, record)
    return write_exported(key_sha256, "asd", ASD_ONNX_VERSION, writers, full, cache_dir)


def _asd_record(model: AudioVisualASD, record: Mapping[str, object]) -> dict[str, object]:
    return {**record, "visual_receptive_field_frames": int(model.visual_receptive_field_frames)}


def _asd_graph_writers(model: AudioVisualASD) -> dict[str, Callable[[Path], None]]:
    """The writers of :func:`export_asd_graphs`' three graphs (of a CPU copy of ``model``)."""
    cpu_model = copy.deepcopy(model).cpu().eval()  # export must not touch the caller's model
    visual_model = conv2d_visual_encoder(cpu_model)
    embed = torch.zeros(1, 8, _EMBED_DIM)

    def decode(audio_embed: torch.Tensor, visual_embed: torch.Tensor) -> torch.Tensor:
        return cpu_model.av_head(cpu_model.decode(audio_embed, visual_embed))

    stages = {  # graph -> (module, example inputs, input names, output name)
        "visual": (
            _StageGraph(visual_model, visual_model.encode_visual),
            (torch.zeros(1, 8, FACE_SIZE_PX, FACE_SIZE_PX),),
            ("faces",),
            "embedding",
        ),
        "audio": (
            _StageGraph(cpu_model, cpu_model.encode_audio),
            (torch.zeros(1, 32, NUM_MFCC),),
            ("mfcc",),
            "embedding",
        ),
        "decoder": (
            _StageGraph(cpu_model, decode),
            (embed, embed),
            ("audio_embed", "visual_embed"),
            "logits",
        ),
    }
    return {graph: _onnx_writer(*stages[graph]) for graph in ASD_ONNX_GRAPHS}


def export_onnx(model: AudioVisualASD, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Export ``model``'s three stages to ONNX once per weights, keyed by
    :func:`weights_sha256` (for models that did not come from a file; see
    :func:`export_asd_graphs` for the graphs).

    Returns:
        ``{"visual": path, "audio": path, "decoder": path}``.
    """
    found = find_or_export(
        weights_sha256(model),
        "asd",
        ASD_ONNX_VERSION,
        lambda: _asd_graph_writers(model),
        ASD_ONNX_GRAPHS,
        _asd_record(model, {"source": "state_dict"}),
        cache_dir,
    )
    return dict(found.graphs)
