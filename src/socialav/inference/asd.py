"""Score face tracks with Light-ASD / LR-ASD: windows over a track and their aggregation
(the backends that run the model are :mod:`socialav.inference.backends`).

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
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from socialav.inference.backends import ASDRunner
from socialav.types import (
    ANALYSIS_FPS,
    MFCC_FRAMES_PER_VIDEO_FRAME,
    NUM_MFCC,
    TrackInputs,
)
from socialav.types import ASD_EMBED_DIM as EMBED_DIM

if TYPE_CHECKING:
    from socialav.models.light_asd import AudioVisualASD

logger = logging.getLogger(__name__)


__all__ = [
    "DEMO_DURATIONS_S",
    "WindowConfig",
    "predict_track_logits",
    "predict_tracks_logits",
    "score_track_inputs",
    "usable_frames",
    "window_spans",
]

#: Window durations of the Light-ASD / TalkNet demos (``Columbia_test.py``, ``durationSet``).
DEMO_DURATIONS_S: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


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
    chunk_frames: int = 150,
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
        max_batch_frames: equal-length windows are batched into one encoder call up to this
            many frames; a longer window runs alone (bounds memory: about 2 MB per frame for
            the visual encoder).
        chunk_frames: output frames per pass when computing full-track visual context;
            with one window duration, windows up to ``chunk_frames`` plus twice the
            visual receptive field are run on their own instead (6 s windows: 150 frames).
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
    if not hasattr(runner, "decode_logits"):  # a PyTorch model: run it as it is
        from socialav.inference.torch_backend import TorchRunner

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

    # 1. Visual embeddings per window: a window is run on its own when that is cheapest (short
    # windows; with one window duration, every window up to the longest context job, so the
    # memory per call stays within that of the shared pass); otherwise the interior of the
    # window comes from one pass over the whole track, in chunks of ``chunk_frames`` with
    # ``r`` frames of context, and its first and last ``r`` frames are recomputed on their own.
    visual: dict[tuple[int, int, int], np.ndarray] = {}
    direct_limit = 4 * r
    if len(lengths) == 1:
        direct_limit = max(direct_limit, chunk_frames + 2 * r)
    edge_jobs: dict[tuple[int, str, int], _VisualJob] = {}
    direct_jobs: dict[tuple[int, int, int], _VisualJob] = {}
    shared: set[int] = set()  # tracks that need the pass over the whole track
    if windows.visual_context == "track":
        shared = {k for k, n in enumerate(sizes) if n > 0}
    else:
        for k, _, s, e in spans:
            if e - s <= direct_limit:
                direct_jobs.setdefault((k, s, e), _VisualJob(k, s, e))
                continue
            shared.add(k)
            if s > 0:
                edge_jobs.setdefault((k, "left", s), _VisualJob(k, s, s + 2 * r))
            if e < sizes[k]:
                edge_jobs.setdefault((k, "right", e), _VisualJob(k, e - 2 * r, e))
    context_jobs = {k: _track_context_jobs(k, sizes[k], r, chunk_frames) for k in sorted(shared)}
    jobs: list[_VisualJob] = [j for js in context_jobs.values() for j in js]
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


def score_track_inputs(
    runner: ASDRunner | AudioVisualASD,
    inputs: Sequence[TrackInputs],
    windows: WindowConfig = WindowConfig(),
    max_batch_frames: int = 128,
    chunk_frames: int = 150,
) -> list[np.ndarray]:
    """Audio-visual logits of face tracks handed on as :class:`~socialav.types.TrackInputs`
    (with the scene-context term of each, where given), via :func:`predict_tracks_logits`.

    Returns:
        Per track, ``(T, 2)`` float32 logits; rows at and beyond ``usable_frames(T, N)`` NaN.

    Raises:
        ValueError: a mix of tracks with and without ``context``.
    """
    with_context = [x.context is not None for x in inputs]
    if any(with_context) and not all(with_context):
        raise ValueError("either every track has a scene-context term or none has")
    return predict_tracks_logits(
        runner,
        [(x.faces_gray112, x.mfcc) for x in inputs],
        windows,
        max_batch_frames=max_batch_frames,
        chunk_frames=chunk_frames,
        visual_offsets=[x.context for x in inputs] if any(with_context) else None,
    )
