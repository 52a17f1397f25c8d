"""Score face tracks with Light-ASD / LR-ASD: windows over a track, aggregation, fast backends.

Windowing follows ``evaluate_network`` of the Light-ASD demo ``Columbia_test.py``
(github.com/Junhua-Liao/Light-ASD; TalkNet's demo does the same):

1. The usable length is ``T = min(num_faces, num_mfcc // 4)`` video frames (the demo computes
   ``length = (num_mfcc - num_mfcc % 4) / 100`` seconds and keeps ``round(length * 25)`` faces
   and ``round(length * 100)`` MFCC frames; it fails when there are fewer faces than that, which
   we handle by taking the minimum). Frames at and beyond ``T`` get NaN logits: the model has
   no audio for them.
2. For each window duration ``d`` (1, 2, 3, 4, 5, 6 s; the demo writes
   ``{1,1,1,2,2,2,3,3,4,5,6}``, a Python *set*, so each duration counts once) the track is cut
   into ``ceil(T / (25 d))`` non-overlapping windows of ``25 d`` frames (the last one shorter)
   and ``100 d`` MFCC frames, each window goes through the whole model on its own, and the
   per-window logits are concatenated.
3. The per-frame logits are averaged over the durations. (The demo then rounds the mean to
   one decimal; we do not.)

Both head logits are returned (class 0 and class 1 of ``lossAV.FC``); the demo's score is the
class-1 logit and the speaking probability is ``softmax(logits)[:, 1] = sigmoid(l1 - l0)``.

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
  ``R`` frames of window edges (measured in ``tests/test_inference.py`` and
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
import math
import os
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from socialav.models.light_asd import EMBED_DIM, FACE_SIZE_PX, NUM_MFCC, AudioVisualASD, ConvBN
from socialav.types import ANALYSIS_FPS, MFCC_FRAMES_PER_VIDEO_FRAME

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx")
#: Backend used when none is named: the fastest one whose logits stay within the tolerance
#: checked in ``tests/test_inference.py`` (see ``benchmarks/bench_model_speed.py``).
DEFAULT_BACKEND: Backend = "onnx"

#: Window durations of the Light-ASD / TalkNet demos (``Columbia_test.py``, ``durationSet``).
DEMO_DURATIONS_S: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


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
# Windows
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowConfig:
    """How a track is cut into windows before scoring.

    Attributes:
        durations_s: window durations in seconds; each must be a whole number of frames at
            ``fps``. Default: the demo's 1..6 s (``Columbia_test.py``). ``None`` or ``()``
            scores the whole track in one pass.
        visual_context: ``"window"`` (visual embeddings exactly as if each window were run on
            its own, like the reference) or ``"track"`` (one pass over the track shared by all
            windows; faster, differs from the reference within the visual receptive field of
            window edges). See the module docstring.
        fps: video frame rate of the faces (the models are trained at 25 fps).
    """

    durations_s: tuple[float, ...] | None = DEMO_DURATIONS_S
    visual_context: Literal["window", "track"] = "window"
    fps: float = ANALYSIS_FPS

    def __post_init__(self) -> None:
        if self.visual_context not in ("window", "track"):
            raise ValueError(
                f"visual_context must be 'window' or 'track', but got {self.visual_context!r}"
            )
        for d in self.durations_s or ():
            n = d * self.fps
            if d <= 0 or abs(n - round(n)) > 1e-6:
                raise ValueError(
                    f"each window duration must be a positive whole number of frames at "
                    f"{self.fps} fps, but got {d} s ({n} frames)"
                )

    def window_frames(self) -> tuple[int, ...]:
        """Window lengths in frames (empty for one full-track pass)."""
        return tuple(int(round(d * self.fps)) for d in self.durations_s or ())


def usable_frames(num_faces: int, num_mfcc: int) -> int:
    """Number of leading video frames that have both a face and their 4 MFCC frames:
    ``min(num_faces, num_mfcc // 4)`` (see the module docstring)."""
    return max(0, min(num_faces, num_mfcc // MFCC_FRAMES_PER_VIDEO_FRAME))


def window_spans(num_frames: int, window_frames: int | None) -> list[tuple[int, int]]:
    """Non-overlapping ``[start, stop)`` frame spans of ``window_frames`` frames covering
    ``num_frames`` (the last one shorter), or ``[(0, num_frames)]`` when ``window_frames`` is
    None. Empty when ``num_frames`` is 0."""
    if num_frames <= 0:
        return []
    if window_frames is None:
        return [(0, num_frames)]
    n = math.ceil(num_frames / window_frames)
    return [(i * window_frames, min((i + 1) * window_frames, num_frames)) for i in range(n)]


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
    """``$SOCIALAV_CACHE_DIR/onnx`` if set, else ``~/.cache/socialav/onnx``."""
    root = os.environ.get("SOCIALAV_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "socialav") / "onnx"


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's class name and ``state_dict`` (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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

        _atomic_write(paths[kind], write)
    return paths


# ----------------------------------------------------------------------------------------------
# Scoring tracks
# ----------------------------------------------------------------------------------------------
@dataclass
class _VisualJob:
    """Run the visual encoder on frames ``[start, stop)`` of track ``track``."""

    track: int
    start: int
    stop: int
    result: np.ndarray | None = field(default=None, repr=False)


def _track_context_jobs(track: int, num_frames: int, r: int, chunk: int) -> list[_VisualJob]:
    """Jobs giving full-track-context embeddings: chunks of ``chunk`` output frames, each run
    with ``r`` frames of context on both sides (exact, as the receptive field is ``r``)."""
    jobs = []
    for c0 in range(0, num_frames, chunk):
        jobs.append(_VisualJob(track, max(0, c0 - r), min(num_frames, c0 + chunk + r)))
    return jobs


def _track_context_embeddings(jobs: list[_VisualJob], num_frames: int, r: int, chunk: int):
    out = np.empty((num_frames, EMBED_DIM), np.float32)
    for job, c0 in zip(jobs, range(0, num_frames, chunk), strict=True):
        c1 = min(num_frames, c0 + chunk)
        out[c0:c1] = job.result[c0 - job.start : c1 - job.start]
    return out


def _run_visual_jobs(
    runner: ASDRunner, jobs: list[_VisualJob], faces: Sequence[np.ndarray], max_frames: int
) -> None:
    by_length: dict[int, list[_VisualJob]] = defaultdict(list)
    for job in jobs:
        by_length[job.stop - job.start].append(job)
    for length, group in by_length.items():
        per_batch = max(1, max_frames // length)
        for i in range(0, len(group), per_batch):
            batch = group[i : i + per_batch]
            x = np.stack([faces[j.track][j.start : j.stop] for j in batch])
            y = runner.encode_visual(x)
            for j, emb in zip(batch, y, strict=True):
                j.result = emb


def _check_track(k: int, faces: np.ndarray, mfcc: np.ndarray) -> None:
    if not isinstance(faces, np.ndarray) or faces.ndim != 3 or faces.shape[1:] != (112, 112):
        shape = getattr(faces, "shape", type(faces).__name__)
        raise ValueError(f"track {k}: faces must be (T, 112, 112) uint8, but got {shape}")
    if faces.dtype != np.uint8:
        raise ValueError(f"track {k}: faces must be uint8 pixel values, but got {faces.dtype}")
    if not isinstance(mfcc, np.ndarray) or mfcc.ndim != 2 or mfcc.shape[1] != NUM_MFCC:
        shape = getattr(mfcc, "shape", type(mfcc).__name__)
        raise ValueError(f"track {k}: mfcc must be (4T, {NUM_MFCC}) float32, but got {shape}")


def predict_tracks_logits(
    runner: ASDRunner | AudioVisualASD,
    tracks: Sequence[tuple[np.ndarray, np.ndarray]],
    windows: WindowConfig = WindowConfig(),
    max_batch_frames: int = 128,
    chunk_frames: int = 128,
    progress: Callable[[int, int], None] | None = None,
    visual_offsets: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Audio-visual logits for many face tracks, batching equal-length windows across tracks.

    Args:
        runner: from :func:`make_runner`, or a model (run with the ``"torch"`` backend).
        tracks: per track ``(faces, mfcc)``: ``faces`` ``(T, 112, 112)`` uint8 grayscale crops
            at ``windows.fps``, ``mfcc`` ``(N, 13)`` float32 at 4 frames per video frame,
            both starting at the track's first frame.
        windows: window durations and visual context (see :class:`WindowConfig`).
        max_batch_frames: at most this many frames per encoder call (bounds memory: about
            2 MB per frame for the visual encoder).
        chunk_frames: output frames per pass when computing full-track visual context.
        progress: called as ``progress(done, total)`` with counts of model stages.
        visual_offsets: optional per track ``(T, 128)`` float32 terms added to the visual
            embeddings before the back-end (``decode(audio, visual + offset)``): the scene
            context of :meth:`socialav.models.scene_context.SceneContextASD.context_term`.

    Returns:
        Per track, ``(T, 2)`` float32 logits averaged over the window durations; rows at and
        beyond ``usable_frames(T, N)`` are NaN (no audio for them).

    Raises:
        ValueError: malformed inputs (shape or dtype), naming the track and what was found.
    """
    if isinstance(runner, AudioVisualASD):
        runner = TorchRunner(runner, next(runner.parameters()).device)
    for k, (faces, mfcc) in enumerate(tracks):
        _check_track(k, faces, mfcc)
    if visual_offsets is not None:
        if len(visual_offsets) != len(tracks):
            raise ValueError(
                f"visual_offsets must hold one array per track ({len(tracks)}), but holds "
                f"{len(visual_offsets)}"
            )
        for k, ((faces, _), offset) in enumerate(zip(tracks, visual_offsets, strict=True)):
            if not isinstance(offset, np.ndarray) or offset.shape[:1] != faces.shape[:1]:
                raise ValueError(
                    f"track {k}: visual offset must be (T, 128) with T = {len(faces)} faces, "
                    f"but got {getattr(offset, 'shape', type(offset).__name__)}"
                )
    r = runner.visual_receptive_field_frames
    sizes = [usable_frames(len(f), len(m)) for f, m in tracks]
    lengths = windows.window_frames() or (None,)
    # All windows: (track, duration index, start, stop).
    spans = [
        (k, di, s, e)
        for k, n in enumerate(sizes)
        for di, w in enumerate(lengths)
        for s, e in window_spans(n, w)
    ]
    faces_list = [f for f, _ in tracks]
    total_stages, done = 3, 0

    # 1. Visual embeddings per window.
    visual: dict[tuple[int, int, int], np.ndarray] = {}
    context_jobs = {
        k: _track_context_jobs(k, n, r, chunk_frames) for k, n in enumerate(sizes) if n > 0
    }
    jobs: list[_VisualJob] = [j for js in context_jobs.values() for j in js]
    edge_jobs: dict[tuple[int, str, int], _VisualJob] = {}
    direct_jobs: dict[tuple[int, int, int], _VisualJob] = {}
    if windows.visual_context == "window":
        for k, _, s, e in spans:
            n = sizes[k]
            if (s, e) == (0, n):
                continue
            if e - s <= 4 * r:
                direct_jobs.setdefault((k, s, e), _VisualJob(k, s, e))
                continue
            if s > 0:
                edge_jobs.setdefault((k, "left", s), _VisualJob(k, s, s + 2 * r))
            if e < n:
                edge_jobs.setdefault((k, "right", e), _VisualJob(k, e - 2 * r, e))
        jobs += list(edge_jobs.values()) + list(direct_jobs.values())
    _run_visual_jobs(runner, jobs, faces_list, max_batch_frames)
    full = {
        k: _track_context_embeddings(js, sizes[k], r, chunk_frames)
        for k, js in context_jobs.items()
    }
    for k, _, s, e in spans:
        if (k, s, e) in visual:
            continue
        if (k, s, e) in direct_jobs:
            visual[(k, s, e)] = direct_jobs[(k, s, e)].result
            continue
        emb = full[k][s:e].copy()
        if (k, "left", s) in edge_jobs:
            emb[:r] = edge_jobs[(k, "left", s)].result[:r]
        if (k, "right", e) in edge_jobs:
            emb[-r:] = edge_jobs[(k, "right", e)].result[r:]
        visual[(k, s, e)] = emb
    done += 1
    if progress:
        progress(done, total_stages)

    # 2. Audio embeddings and 3. backend, batched over windows of equal length.
    mfcc_step = MFCC_FRAMES_PER_VIDEO_FRAME
    by_length: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for k, s, e in dict.fromkeys((k, s, e) for k, _, s, e in spans):
        by_length[e - s].append((k, s, e))
    logits: dict[tuple[int, int, int], np.ndarray] = {}
    for length, group in by_length.items():
        per_batch = max(1, max_batch_frames * 4 // length)
        for i in range(0, len(group), per_batch):
            batch = group[i : i + per_batch]
            a = np.stack([tracks[k][1][s * mfcc_step : e * mfcc_step] for k, s, e in batch])
            v = np.stack([visual[key] for key in batch])
            if visual_offsets is not None:
                v = v + np.stack([visual_offsets[k][s:e].astype(np.float32) for k, s, e in batch])
            out = runner.decode_logits(runner.encode_audio(a), v)
            for key, lg in zip(batch, out, strict=True):
                logits[key] = lg
    done += 2
    if progress:
        progress(done, total_stages)

    # Aggregate: mean over durations; NaN where there is no audio.
    acc = [np.zeros((len(lengths), n, 2), np.float64) for n in sizes]
    for k, di, s, e in spans:
        acc[k][di, s:e] = logits[(k, s, e)]
    results = []
    for k, (faces, _) in enumerate(tracks):
        out = np.full((len(faces), 2), np.nan, np.float32)
        out[: sizes[k]] = acc[k].mean(axis=0)
        results.append(out)
    return results


def predict_track_logits(
    runner: ASDRunner | AudioVisualASD,
    faces_gray112: np.ndarray,
    mfcc: np.ndarray,
    windows: WindowConfig = WindowConfig(),
    **kwargs,
) -> np.ndarray:
    """Audio-visual logits ``(T, 2)`` float32 of one face track (see
    :func:`predict_tracks_logits` for arguments, NaN rows and errors)."""
    return predict_tracks_logits(runner, [(faces_gray112, mfcc)], windows, **kwargs)[0]


def speaking_probability(logits: np.ndarray) -> np.ndarray:
    """``softmax(logits)[..., 1] = sigmoid(l1 - l0)`` for ``(..., 2)`` logits (NaN stays NaN)."""
    d = np.asarray(logits, np.float64)
    return (1.0 / (1.0 + np.exp(d[..., 0] - d[..., 1]))).astype(np.float32)
