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
from torch.nn import functional as F

from socialav.checkpoints.onnx_cache import (
    ExportedGraphs,
    find_or_export,
    torch_onnx_writer,
    write_exported,
)
from socialav.models.light_asd import (
    FACE_SIZE_PX,
    NUM_MFCC,
    AudioVisualASD,
    ConvBN,
    LightASDVisualBlock,
    LightASDVisualEncoder,
)
from socialav.models.lr_asd import LRASDVisualBlock, LRASDVisualEncoder
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


class _Conv2dUnit(torch.nn.Module):
    """A ``ConvBN`` unit of a visual block (Conv3d with a spatial ``(1, k, k)``, temporal
    ``(k, 1, 1)`` or pointwise kernel, then BatchNorm3d) and the ReLU that follows it in both
    encoders, as one ``conv2d`` with the eval-mode batch norm folded in (for inference only).

    Spatial units take frames as the batch, ``(B*T, C, H, W)``; temporal and pointwise units
    take time as the height, ``(B, C, T, H*W)``. onnxruntime runs 2-D convolutions with its
    blocked (NCHWc) kernels and fuses the ReLU into them; its 3-D convolution has neither.

    Raises:
        TypeError: ``unit`` is not a Conv3d + BatchNorm3d unit.
        ValueError: its kernel is neither spatial nor temporal.
    """

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
        return F.relu(self.conv(x))


class _Conv2dVisualBlock(torch.nn.Module):
    """A Light-ASD or LR-ASD visual block as :class:`_Conv2dUnit` chains: each branch runs
    its spatial units on frames, ``(B*T, C, H, W)``, then its temporal units on
    ``(B, C, T, H*W)``; the branches are summed and, for Light-ASD, mixed by the pointwise
    unit. Consecutive units of one layout follow each other without a transpose between them,
    so onnxruntime keeps their activations in its blocked layout."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        if isinstance(block, LRASDVisualBlock):  # one chain: spatial1, spatial2, temporal1, 2
            chains = [[block.spatial1, block.spatial2, block.temporal1, block.temporal2]]
            fuse = None
        elif isinstance(block, LightASDVisualBlock):  # two (2+1)-D branches, then 1x1x1
            chains = [[b["spatial"], b["temporal"]] for b in (block.branch3, block.branch5)]
            fuse = block.fuse
        else:
            raise TypeError(f"expected a Light-ASD or LR-ASD visual block, but got {block}")
        self.spatial = torch.nn.ModuleList()
        self.temporal = torch.nn.ModuleList()
        for chain in chains:
            units = [_Conv2dUnit(u) for u in chain]
            self.spatial.append(torch.nn.Sequential(*[u for u in units if u.spatial]))
            self.temporal.append(torch.nn.Sequential(*[u for u in units if not u.spatial]))
        self.fuse = None if fuse is None else _Conv2dUnit(fuse)

    def forward(self, x: torch.Tensor, batch: int, time: int) -> torch.Tensor:
        """``(B*T, C, H, W)`` frames -> ``(B*T, C', H', W')`` frames."""
        out = None
        for spatial, temporal in zip(self.spatial, self.temporal, strict=True):
            y = spatial(x)
            _, c, h, w = y.shape
            y = temporal(y.reshape(batch, time, c, h * w).transpose(1, 2))
            out = y if out is None else out + y
        if self.fuse is not None:
            out = self.fuse(out)
        _, c, _, _ = out.shape
        return out.transpose(1, 2).reshape(batch * time, c, h, w)


class _Conv2dVisualEncoder(torch.nn.Module):
    """Light-ASD's or LR-ASD's visual encoder on 2-D convolutions (:class:`_Conv2dVisualBlock`):
    ``(B, 1, T, 112, 112)`` normalised faces -> ``(B, T, 128)``, equal to the original up to
    float rounding (about 1e-6; 3x3 stride-2 spatial max pooling after the first two blocks,
    then the global spatial max, as ``LRASDVisualEncoder`` / ``LightASDVisualEncoder``)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.receptive_field_frames = encoder.receptive_field_frames
        self.blocks = torch.nn.ModuleList(
            _Conv2dVisualBlock(b) for b in (encoder.block1, encoder.block2, encoder.block3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        for i, block in enumerate(self.blocks):
            x = block(x, b, t)
            if i < len(self.blocks) - 1:
                x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        return x.amax(dim=(2, 3)).reshape(b, t, -1)


def conv2d_visual_encoder(model: AudioVisualASD) -> AudioVisualASD:
    """A copy of ``model`` (eval mode, same device) whose visual encoder, when it is
    Light-ASD's or LR-ASD's, is computed on 2-D convolutions (:class:`_Conv2dVisualEncoder`;
    for inference only: the batch norm statistics are folded into the convolutions). Other
    encoders (TalkNet's) are kept as they are. ``python benchmarks/bench_speed_levers.py
    visual-graph`` times the exported graphs (``docs/speed.md``)."""
    model = copy.deepcopy(model).eval()
    if isinstance(model.visual_encoder, (LRASDVisualEncoder, LightASDVisualEncoder)):
        model.visual_encoder = _Conv2dVisualEncoder(model.visual_encoder)
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
