"""Run the ASD models fast: PyTorch and ONNX Runtime runners of the three model stages
(visual encoder, audio encoder, back-end), the cached ONNX export, and thread settings.

Speed. The visual encoder dominates the cost (about 99 % of the multiply-adds). Its temporal
receptive field is local (``R`` = 6 frames each side for Light-ASD, 9 for LR-ASD), so the
embedding of a frame inside a window equals its embedding in a pass over the whole track,
except within ``R`` frames of a window edge, where the window's zero padding shows.
``WindowConfig.visual_context`` chooses:

- ``"window"`` (default): exactly the reference's per-window embeddings, computed as one pass
  over the track (in chunks with ``R`` frames of overlap) plus short ``2R``-frame passes at each
  distinct window edge; about 2x the frames of a single pass instead of 6x.
- ``"track"``: one pass over the track, shared by every window: about 1.1x the frames, but
  NOT a close approximation: on the interview fixture the logits move by up to 0.6-1.6 within
  ``R`` frames of window edges (measured in ``tests/inference/test_asd.py`` and
  ``benchmarks/bench_model_speed.py``). It removes the windows' edge artefacts rather than
  reproducing them; use it only where speed matters more than matching the reference.

Audio embeddings and the GRU backend are computed per window, batched across windows of the
same length (across durations and tracks). Backends (``make_runner``): ``"torch"`` (the
PyTorch model) and ``"onnx"`` (encoders exported to ONNX and run with onnxruntime, fp32, the
visual encoder's 3-D convolutions rewritten as 2-D ones; the default). Static int8
quantisation (onnxruntime QDQ, per-channel, calibrated on real crops) was tried and dropped:
on this AVX2-only CPU it was no faster than the fp32 conv2d graph and moved logits by
0.24-0.83.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from socialav.hub import cache_dir
from socialav.io.atomic import atomic_output_path
from socialav.models.light_asd import FACE_SIZE_PX, NUM_MFCC, AudioVisualASD, ConvBN
from socialav.types import ASD_BACKENDS

logger = logging.getLogger(__name__)

__all__ = [
    "ASDRunner",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "OnnxRunner",
    "TorchRunner",
    "configure_threads",
    "conv2d_visual_encoder",
    "default_cache_dir",
    "export_onnx",
    "make_runner",
    "ort_session_options",
    "weights_sha256",
]


Backend = Literal["torch", "onnx"]


BACKENDS: tuple[Backend, ...] = ASD_BACKENDS  # type: ignore[assignment]


#: Backend used when none is named: the fastest one whose logits stay within the tolerance
#: checked in ``tests/test_inference.py`` (see ``benchmarks/bench_model_speed.py``).
DEFAULT_BACKEND: Backend = "onnx"


# ----------------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------------
def configure_threads(num_threads: int) -> int:
    """Set the number of CPU threads PyTorch uses for intra-op work (and, if it is still
    possible, inter-op work) to ``num_threads``.

    Call it once, early. Oversubscription (several libraries each starting one thread per core,
    or more threads than cores) makes small sequential ops such as GRU steps many times slower.
    The onnxruntime sessions of :func:`make_runner` take their own ``num_threads``.

    Returns:
        The number of intra-op threads now set.

    Raises:
        ValueError: if ``num_threads < 1``.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, but got {num_threads}")
    torch.set_num_threads(num_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set before the first inter-op parallel work
        pass
    return torch.get_num_threads()


def ort_session_options(num_threads: int = 1):
    """onnxruntime ``SessionOptions`` with a fixed thread count: ``num_threads`` intra-op
    threads, sequential execution, one inter-op thread, full graph optimisation, and no
    busy-waiting of idle worker threads (they would steal the cores from the rest of the
    pipeline)."""
    import onnxruntime as ort

    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, but got {num_threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = num_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # input shapes vary (track and window lengths): a memory pattern cached per shape would
    # make the resident size grow with every new length on long videos
    so.enable_mem_pattern = False
    return so


# ----------------------------------------------------------------------------------------------
# Runners: the three model stages on numpy arrays, for one backend
# ----------------------------------------------------------------------------------------------
class ASDRunner(Protocol):
    """The three stages of an ASD model on numpy arrays (what the windowing code calls).

    Attributes:
        visual_receptive_field_frames: frames on each side a visual embedding depends on.
    """

    visual_receptive_field_frames: int

    def encode_visual(self, faces: np.ndarray) -> np.ndarray:
        """``(B, T, 112, 112)`` uint8 -> ``(B, T, 128)`` float32."""
        ...

    def encode_audio(self, mfcc: np.ndarray) -> np.ndarray:
        """``(B, 4T, 13)`` float32 -> ``(B, T, 128)`` float32."""
        ...

    def decode_logits(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> np.ndarray:
        """``(B, T, 128)`` twice -> audio-visual logits ``(B, T, 2)`` float32."""
        ...


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


class _VisualEncoderGraph(torch.nn.Module):
    def __init__(self, model: AudioVisualASD) -> None:
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.model.encode_visual(faces)


class _AudioEncoderGraph(torch.nn.Module):
    def __init__(self, model: AudioVisualASD) -> None:
        super().__init__()
        self.model = model

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(mfcc)


class OnnxRunner:
    """Visual and audio encoders in onnxruntime (CPU, fp32), the GRU backend in PyTorch.

    The visual encoder is exported in its conv2d form (:func:`conv2d_visual_encoder`), the
    audio encoder as is; the small sequential GRU backend stays in PyTorch (about 1 % of the
    time). Logits match the PyTorch model to about 2e-6.

    Args:
        model: the loaded PyTorch model (its encoders are exported once to ``cache_dir``).
        num_threads: onnxruntime intra-op threads (PyTorch threads: see
            :func:`configure_threads`).
        cache_dir: where exported graphs are kept (see :func:`export_onnx`).

    Raises:
        ImportError: if the ``onnx`` package (needed to export) is missing and the graphs are
            not in the cache yet.
    """

    def __init__(
        self,
        model: AudioVisualASD,
        num_threads: int = 1,
        cache_dir: str | Path | None = None,
    ) -> None:
        import onnxruntime as ort

        self.torch_runner = TorchRunner(model, "cpu", conv2d_visual=False)
        self.visual_receptive_field_frames = model.visual_receptive_field_frames
        paths = export_onnx(model, cache_dir)
        so = ort_session_options(num_threads)
        providers = ["CPUExecutionProvider"]
        self._visual = ort.InferenceSession(str(paths["visual"]), so, providers=providers)
        self._audio = ort.InferenceSession(str(paths["audio"]), so, providers=providers)

    def encode_visual(self, faces: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(faces, dtype=np.float32)
        return self._visual.run(None, {"faces": x})[0]

    def encode_audio(self, mfcc: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(mfcc, dtype=np.float32)
        return self._audio.run(None, {"mfcc": x})[0]

    def decode_logits(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> np.ndarray:
        return self.torch_runner.decode_logits(audio_embed, visual_embed)


def make_runner(
    model: AudioVisualASD,
    backend: Backend | str = DEFAULT_BACKEND,
    num_threads: int = 1,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> ASDRunner:
    """Wrap ``model`` for :func:`predict_tracks_logits` with the chosen backend.

    Args:
        model: a loaded Light-ASD / LR-ASD model (``socialav.checkpoints.asd_reference``).
        backend: ``"torch"`` or ``"onnx"`` (default; the fastest within 1e-4 of the torch
            logits, see ``benchmarks/bench_model_speed.py``).
        num_threads: CPU threads for onnxruntime; PyTorch threads are set by
            :func:`configure_threads`.
        device: PyTorch device for ``"torch"`` (the onnx backend runs on the CPU).
        cache_dir: see :func:`export_onnx`.

    Raises:
        ValueError: unknown backend.
    """
    if backend == "torch":
        return TorchRunner(model, device)
    if backend == "onnx":
        return OnnxRunner(model, num_threads=num_threads, cache_dir=cache_dir)
    raise ValueError(f"backend must be one of {BACKENDS}, but got {backend!r}")


# ----------------------------------------------------------------------------------------------
# ONNX export (cached, atomic)
# ----------------------------------------------------------------------------------------------
_EXPORT_VERSION = "3"  # bump when the exported graphs change


_ONNX_OPSET = 17


def default_cache_dir() -> Path:
    """``onnx/`` in the user cache of :func:`socialav.hub.cache_dir` (``$SOCIALAV_CACHE_DIR``
    > ``$XDG_CACHE_HOME/socialav`` > ``~/.cache/socialav``)."""
    return cache_dir() / "onnx"


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's class name and ``state_dict`` (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def export_onnx(model: AudioVisualASD, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Export the visual and audio encoders of ``model`` to ONNX (fp32), once per weights.

    Files ``<sha256[:16]>-v<version>-{visual,audio}.onnx`` in ``cache_dir`` (see
    :func:`default_cache_dir`), written atomically. Inputs: ``faces`` ``(B, T, 112, 112)``
    float32 pixel values / ``mfcc`` ``(B, 4T, 13)``; output ``(B, T, 128)``; B and T dynamic.
    Needs the ``onnx`` package.

    Returns:
        ``{"visual": path, "audio": path}``.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = f"{weights_sha256(model)[:16]}-v{_EXPORT_VERSION}"
    paths = {"visual": cache / f"{stem}-visual.onnx", "audio": cache / f"{stem}-audio.onnx"}
    cpu_model = copy.deepcopy(model).cpu().eval()  # export must not touch the caller's model
    graphs = {
        "visual": (
            _VisualEncoderGraph(conv2d_visual_encoder(cpu_model)),
            torch.zeros(1, 8, FACE_SIZE_PX, FACE_SIZE_PX),
            "faces",
        ),
        "audio": (_AudioEncoderGraph(cpu_model), torch.zeros(1, 32, NUM_MFCC), "mfcc"),
    }
    for kind, (graph, example, input_name) in graphs.items():
        if paths[kind].exists():
            continue
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError as err:
            raise ImportError(
                "exporting the ASD encoders to ONNX needs the 'onnx' package: pip install onnx, "
                "or use backend='torch'"
            ) from err
        logger.info("exporting the %s encoder to %s", kind, paths[kind])

        def write(tmp: Path, graph=graph, example=example, input_name=input_name) -> None:
            with warnings.catch_warnings():  # tracer warnings about shape checks
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    graph,
                    (example,),
                    str(tmp),
                    dynamo=False,
                    input_names=[input_name],
                    output_names=["embedding"],
                    dynamic_axes={
                        input_name: {0: "batch", 1: "time"},
                        "embedding": {0: "batch", 1: "time"},
                    },
                    opset_version=_ONNX_OPSET,
                )

        with atomic_output_path(paths[kind]) as tmp:
            write(tmp)
    return paths
