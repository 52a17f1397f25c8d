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
same length (across durations and tracks). Backends (``make_runner``, ``load_asd_runner``):
``"torch"`` (the PyTorch model, :mod:`socialav.inference.torch_backend`), ``"onnx"`` (the
three stages exported once to ONNX and run with onnxruntime, fp32, the visual encoder's 3-D
convolutions rewritten as 2-D ones; weights whose graphs are cached load without PyTorch) and
``"onnx-int8"`` (the same with the visual encoder statically quantised to int8 with activation
ranges shipped for the weights, :mod:`socialav.inference.quantize`; about 1.7-1.8x faster on
the encoder, logits within 0.3 of fp32 (at most 0.25 measured), ``docs/speed.md``).
:func:`default_backend` picks ``onnx-int8`` on the CPU for weights whose ranges ship.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from socialav.checkpoints.load import WeightsInfo, load_pretrained, resolve_weights_file
from socialav.checkpoints.onnx_cache import default_cache_dir, find_exported
from socialav.runtime import ort_session_options
from socialav.types import ASD_BACKENDS, ASD_ONNX_GRAPHS, ASD_ONNX_VERSION

if TYPE_CHECKING:
    import torch

    from socialav.models.light_asd import AudioVisualASD

logger = logging.getLogger(__name__)

__all__ = [
    "ASDRunner",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "OnnxRunner",
    "configure_threads",
    "default_backend",
    "default_cache_dir",
    "load_asd_runner",
    "make_runner",
    "ort_session_options",
]


Backend = Literal["torch", "onnx", "onnx-int8"]


BACKENDS: tuple[Backend, ...] = ASD_BACKENDS  # type: ignore[assignment]


#: The fp32 backend of the CPU: the fastest whose logits reproduce the reference code's
#: within 1e-4 (``benchmarks/bench_parity.py``); what ``score`` and the tools that load a
#: model object use. ``detect`` asks :func:`default_backend`.
DEFAULT_BACKEND: Backend = "onnx"

#: Architectures whose three stages export to ONNX (the scene-context model wraps one).
ONNX_ARCHITECTURES: tuple[str, ...] = ("light-asd", "lr-asd", "talknet")


def default_backend(weights: str | Path, device: str = "cpu") -> Backend:
    """The backend ``detect`` uses when none is named: ``torch`` on a GPU; on the CPU
    ``onnx-int8`` for registered weights (``socialav weights list``) whose int8 activation
    ranges ship with socialav (lr-asd-ava), else ``onnx`` (fp32; also for checkpoint files,
    which are not hashed for this choice). Cheap: reads no weights file.

    Why int8 by default: on the 3-minute benchmark video the analysis runs about 1.2-1.25x
    faster (``benchmarks/bench_speed.py``), natural / sync AP 98.80 / 61.94 against
    98.81 / 62.01, logits within 0.3 of fp32 (tested; at most 0.25 over ten held-out clips,
    where 0.5 % of the face-frames change their speaking decision;
    ``benchmarks/bench_int8.py``, ``docs/speed.md``).
    """
    if str(device) != "cpu":
        return "torch"
    from socialav import hub
    from socialav.inference.quantize import shipped_int8_ranges

    name = str(weights)
    if name in hub.REGISTRY and shipped_int8_ranges(hub.get_entry(name).sha256) is not None:
        return "onnx-int8"
    return "onnx"


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
    import torch

    torch.set_num_threads(num_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set before the first inter-op parallel work
        pass
    return torch.get_num_threads()


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


class OnnxRunner:
    """The three stages of an ASD model in onnxruntime (CPU), from exported graphs.

    The visual encoder is exported in its conv2d form
    (:func:`~socialav.inference.torch_backend.conv2d_visual_encoder`), the audio encoder and
    the back-end with ``av_head`` as they are; with the fp32 graphs logits reproduce the
    reference code's within 1.4e-5 (``benchmarks/bench_parity.py``; tests: 1e-4), with the
    int8 visual graph (:mod:`socialav.inference.quantize`) within 0.3 of fp32 (tested; 0.25
    measured at most).
    Building it needs no PyTorch.

    Args:
        graphs: ``{"visual", "audio", "decoder"}`` -> ``.onnx`` file
            (:func:`~socialav.inference.torch_backend.export_asd_graphs`; ``visual`` may be
            the int8 graph).
        visual_receptive_field_frames: the model's (stored in the cache record).
        num_threads: onnxruntime intra-op threads.

    Raises:
        KeyError: a graph is missing from ``graphs``.
        onnxruntime's errors: a graph file that cannot be loaded.
    """

    def __init__(
        self,
        graphs: Mapping[str, str | Path],
        visual_receptive_field_frames: int,
        num_threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        self.visual_receptive_field_frames = int(visual_receptive_field_frames)
        so = ort_session_options(num_threads)
        providers = ["CPUExecutionProvider"]
        self._visual, self._audio, self._decoder = (
            ort.InferenceSession(str(graphs[g]), so, providers=providers) for g in ASD_ONNX_GRAPHS
        )

    def encode_visual(self, faces: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(faces, dtype=np.float32)
        return self._visual.run(None, {"faces": x})[0]

    def encode_audio(self, mfcc: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(mfcc, dtype=np.float32)
        return self._audio.run(None, {"mfcc": x})[0]

    def decode_logits(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> np.ndarray:
        feeds = {
            "audio_embed": np.ascontiguousarray(audio_embed, dtype=np.float32),
            "visual_embed": np.ascontiguousarray(visual_embed, dtype=np.float32),
        }
        return self._decoder.run(None, feeds)[0]


def make_runner(
    model: AudioVisualASD,
    backend: Backend | str = DEFAULT_BACKEND,
    num_threads: int = 1,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> ASDRunner:
    """Wrap a loaded PyTorch ``model`` for :func:`predict_tracks_logits` with the chosen
    backend (to load weights by name or file, possibly without PyTorch, use
    :func:`load_asd_runner`).

    Args:
        model: a loaded Light-ASD / LR-ASD / TalkNet model
            (``socialav.checkpoints.asd_reference``).
        backend: ``"torch"`` or ``"onnx"`` (default; the fastest within 1e-4 of the torch
            logits, see ``benchmarks/bench_model_speed.py``); its graphs are exported once per
            weights (keyed by their :func:`weights_sha256`). ``"onnx-int8"`` needs
            :func:`load_asd_runner`.
        num_threads: CPU threads for onnxruntime; PyTorch threads are set by
            :func:`configure_threads`.
        device: PyTorch device for ``"torch"`` (the onnx backend runs on the CPU).
        cache_dir: the ONNX cache folder (default :func:`default_cache_dir`).

    Raises:
        ValueError: unknown backend, or ``"onnx-int8"``.
    """
    from socialav.inference import torch_backend

    if backend == "torch":
        return torch_backend.TorchRunner(model, device)
    if backend == "onnx":
        graphs = torch_backend.export_onnx(model, cache_dir)
        rf = model.visual_receptive_field_frames
        return OnnxRunner(graphs, rf, num_threads=num_threads)
    if backend == "onnx-int8":  # its ranges are keyed by the weights file's digest
        raise ValueError(
            "backend 'onnx-int8' needs the weights by name or file (load_asd_runner), not a "
            "model object; use 'onnx' here"
        )
    raise ValueError(f"backend must be one of {BACKENDS}, but got {backend!r}")


def _onnx_graphs(
    graphs: Mapping[str, Path], backend: str, sha256: str, cache_dir: str | Path | None
) -> dict[str, Path]:
    """The graphs a runner of ``backend`` loads: the fp32 ones, or with ``onnx-int8`` the
    int8 visual encoder in place of the fp32 one."""
    if backend != "onnx-int8":
        return dict(graphs)
    from socialav.inference.quantize import int8_visual_graph

    return {**graphs, "visual": int8_visual_graph(graphs["visual"], sha256, cache_dir)}


def _cached_onnx_runner(
    path: Path,
    sha256: str,
    weights: str | Path,
    backend: str,
    num_threads: int,
    cache_dir: str | Path | None,
) -> tuple[OnnxRunner, WeightsInfo] | None:
    found = find_exported(sha256, "asd", ASD_ONNX_VERSION, ASD_ONNX_GRAPHS, cache_dir)
    if found is None:
        return None
    record = found.record
    try:
        info = WeightsInfo(
            name=str(weights),
            path=path,
            sha256=sha256,
            architecture=str(record["architecture"]),
            task=str(record["task"]),
            format=str(record["format"]),
        )
        rf = int(record["visual_receptive_field_frames"])
    except (KeyError, TypeError, ValueError) as exc:  # a damaged record: export it again
        logger.warning("ONNX cache entry of %s unusable (%s): exporting it again", path, exc)
        return None
    graphs = _onnx_graphs(found.graphs, backend, sha256, cache_dir)  # int8: its own errors
    try:
        runner = OnnxRunner(graphs, rf, num_threads)
    except Exception as exc:  # a damaged graph: export it again from the checkpoint
        logger.warning("ONNX cache entry of %s unusable (%s): exporting it again", path, exc)
        return None
    return runner, info


def load_asd_runner(
    weights: str | Path,
    *,
    backend: Backend | str = DEFAULT_BACKEND,
    device: str | torch.device = "cpu",
    num_threads: int = 1,
    cache_dir: str | Path | None = None,
    what: str = "ASD weights",
) -> tuple[ASDRunner, WeightsInfo, AudioVisualASD | None]:
    """Load ASD weights (a registry name or a checkpoint file) ready to score.

    With the ``onnx`` and ``onnx-int8`` backends (CPU), weights whose graphs are already in
    the ONNX cache (:mod:`socialav.checkpoints.onnx_cache`, keyed by the file's sha256) load
    without importing PyTorch, which makes the start faster and the process smaller
    (``docs/speed.md``). Otherwise the PyTorch model is loaded
    (:func:`~socialav.checkpoints.load.load_pretrained`, ``task="asd"``) and, for the ONNX
    backends, its graphs are exported into the cache for next time (``onnx-int8`` then
    quantises the visual graph once, :func:`~socialav.inference.quantize.int8_visual_graph`).

    Args:
        weights: registry name (``lr-asd-ava``, ...) or checkpoint file.
        backend: ``"onnx"`` (default), ``"onnx-int8"`` (the int8 visual encoder,
            :mod:`socialav.inference.quantize`; registered weights with shipped ranges) or
            ``"torch"``.
        device: PyTorch device (the ONNX backends run on the CPU).
        num_threads: onnxruntime intra-op threads (PyTorch's: :func:`configure_threads`).
        cache_dir: the ONNX cache folder (default :func:`default_cache_dir`).
        what: what the weights are for, in error messages.

    Returns:
        ``(runner, info, model)``; ``model`` is the PyTorch model, or ``None`` when it was not
        needed (loaded from the cache).

    Raises:
        ValueError: unknown backend, an ONNX backend on a GPU, ``onnx-int8`` for weights
            without shipped ranges, or scene-context weights (they are ``context_weights``).
        ImportError: ``onnx-int8`` needs quantising and onnxruntime cannot
            (:mod:`socialav.inference.quantize`).
        FileNotFoundError, socialav.hub.WeightsError, CheckpointError: see
            :func:`~socialav.checkpoints.load.load_pretrained`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, but got {backend!r}")
    onnx = backend in ("onnx", "onnx-int8")
    if onnx and str(device) != "cpu":
        raise ValueError(f"backend {backend!r} runs on the CPU; with device {device!r} use 'torch'")
    if onnx:
        path, sha256 = resolve_weights_file(weights, what, "a checkpoint file", kind="asd")
        if backend == "onnx-int8":
            from socialav.inference.quantize import required_int8_ranges

            required_int8_ranges(sha256, f"{what} {str(weights)!r}")  # before loading anything
        cached = _cached_onnx_runner(path, sha256, weights, backend, num_threads, cache_dir)
        if cached is not None:
            return cached[0], cached[1], None
    model, info = load_pretrained(weights, task="asd", device=device, what=what)
    if info.architecture not in ONNX_ARCHITECTURES:
        raise ValueError(
            f"weights {str(weights)!r} are a {info.architecture} checkpoint: pass them as "
            "--context (context_weights)"
        )
    if backend == "torch":
        return make_runner(model, "torch", num_threads, device), info, model
    from socialav.inference.torch_backend import export_asd_graphs

    record = {"architecture": info.architecture, "task": info.task, "format": info.format}
    exported = export_asd_graphs(model, info.sha256, record, cache_dir)
    rf = model.visual_receptive_field_frames
    graphs = _onnx_graphs(exported.graphs, backend, info.sha256, cache_dir)
    return OnnxRunner(graphs, rf, num_threads=num_threads), info, model
