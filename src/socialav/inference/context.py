"""Scene context (TalkNet+DeiT style, ``socialav detect --context``): per-frame scene embeddings
computed while the video streams (:class:`SceneEmbeddingStream`), and the logits of face tracks
scored with them (:func:`predict_tracks_logits_with_context`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from socialav.checkpoints.load import WeightsInfo
from socialav.inference.asd import WindowConfig, predict_tracks_logits
from socialav.inference.backends import ASDRunner
from socialav.models.scene_context import SceneContextASD, scene_image, scene_input

__all__ = ["SceneEmbeddingStream", "context_weights_record", "predict_tracks_logits_with_context"]


def context_weights_record(model: SceneContextASD, info: WeightsInfo) -> dict[str, Any]:
    """What the outputs record of a scene-context checkpoint: ``name`` (as given), ``path``,
    ``sha256``, ``architecture`` (``scene-context``), ``base_architecture``, ``scene`` (the
    scene encoder's sizes) and ``training_data``."""
    config = model.architecture_config()
    return {
        "name": info.name,
        "path": str(info.path),
        "sha256": info.sha256,
        "architecture": "scene-context",
        "base_architecture": config["base"],
        "scene": config["scene"],
        "training_data": info.metadata.get("training_data", ""),
    }


class SceneEmbeddingStream:
    """Scene embeddings of every frame of a video, computed while the frames stream by.

    Frames are turned into scene images (:func:`~socialav.models.scene_context.scene_image`)
    as they arrive and encoded in batches of ``batch_frames``; only the ``(num_frames,
    D_scene)`` float32 embeddings are kept (about 0.8 kB per frame for DeiT-Tiny widths).

    Args:
        model: a :class:`~socialav.models.scene_context.SceneContextASD` (its
            ``scene_encoder`` is used in eval mode, not modified).
        batch_frames: frames per encoder call.
        device: PyTorch device of the encoder.

    Thread-safe: ``detect`` adds frames on the analysis thread while its ASD model, on a thread
    of its own (``DetectConfig.overlap_model``), asks for the embeddings of finished tracks.

    Attributes:
        seconds: wall-clock time spent in image resizing and encoding.
    """

    def __init__(self, model: SceneContextASD, batch_frames: int = 32, device: str = "cpu") -> None:
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be ≥ 1, but got {batch_frames}")
        self.encoder = model.scene_encoder.eval()
        self.size_px = int(model.scene_size_px)
        self.batch_frames = int(batch_frames)
        self.device = device
        self._pending: list[np.ndarray] = []
        self._store = np.empty((0, int(model.scene_dim)), np.float32)
        self.num_encoded = 0
        self.seconds = 0.0
        self._lock = threading.RLock()

    @property
    def num_frames(self) -> int:
        """Frames received so far."""
        return self.num_encoded + len(self._pending)

    def add(self, frame_index: int, frame_rgb: np.ndarray) -> None:
        """Take frame ``frame_index`` (``(H, W, 3)`` uint8 RGB); frames must arrive in order
        0, 1, 2, ...

        Raises:
            ValueError: a frame out of order, or not ``(H, W, 3)`` uint8.
        """
        with self._lock:
            if frame_index != self.num_frames:
                raise ValueError(
                    f"frames must arrive in order: expected frame {self.num_frames}, "
                    f"got {frame_index}"
                )
            t0 = time.perf_counter()
            self._pending.append(scene_image(frame_rgb, self.size_px))
            self.seconds += time.perf_counter() - t0
            if len(self._pending) >= self.batch_frames:
                self.flush()

    def flush(self) -> None:
        """Encode the frames received but not yet encoded."""
        with self._lock:
            if not self._pending:
                return
            import torch

            t0 = time.perf_counter()
            x = torch.from_numpy(scene_input(np.stack(self._pending))).to(self.device)
            with torch.inference_mode():
                emb = self.encoder(x).float().cpu().numpy()
            needed = self.num_encoded + len(emb)
            if needed > len(self._store):
                grown = np.empty((max(needed, 2 * len(self._store)), emb.shape[1]), np.float32)
                grown[: self.num_encoded] = self._store[: self.num_encoded]
                self._store = grown
            self._store[self.num_encoded : needed] = emb
            self.num_encoded = needed
            self._pending = []
            self.seconds += time.perf_counter() - t0

    def embeddings(self, frame_indices: np.ndarray) -> np.ndarray:
        """``(T, D_scene)`` float32 embeddings of the given frames (encodes pending frames
        first when needed).

        Raises:
            IndexError: a frame that has not been received.
        """
        idx = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
        with self._lock:
            if len(idx) and idx.max() >= self.num_encoded:
                self.flush()
            if len(idx) and (idx.min() < 0 or idx.max() >= self.num_encoded):
                raise IndexError(
                    f"scene embeddings exist for frames 0..{self.num_encoded - 1}, but frames "
                    f"{int(idx.min())}..{int(idx.max())} were asked for"
                )
            return self._store[idx].copy()


def predict_tracks_logits_with_context(
    runner: ASDRunner,
    tracks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    windows: WindowConfig | None = None,
    max_batch_frames: int = 32,
    chunk_frames: int = 150,
) -> list[np.ndarray]:
    """Audio-visual logits of face tracks scored by a scene-context model: the base ASD
    model (``runner``, from :func:`socialav.inference.asd.make_runner` on
    ``SceneContextASD.base``) with each frame's scene context added to its visual embedding
    before the back-end (``decode(audio, visual + W c)``,
    :meth:`~socialav.models.scene_context.SceneContextASD.forward_context`): windows,
    aggregation and NaN rows of :func:`socialav.inference.asd.predict_tracks_logits`, which does
    the work (``visual_offsets``).

    Args:
        runner: the base model's runner (any backend).
        tracks: per track ``(faces, mfcc, context)``: ``faces`` ``(T, 112, 112)`` uint8,
            ``mfcc`` ``(N, 13)`` float32 (4 per video frame), ``context`` ``(T, 128)``
            float32: ``SceneContextASD.context_term`` of the scene embeddings of the track's
            frames.
        windows: window durations and visual context (``None``: :class:`WindowConfig`
            defaults, the demo's 1-6 s).
        max_batch_frames, chunk_frames: as :func:`~socialav.inference.asd.predict_tracks_logits`.

    Returns:
        Per track, ``(T, 2)`` float32 logits; rows at and beyond ``usable_frames(T, N)`` NaN.

    Raises:
        ValueError: malformed inputs, naming the track and what was found.
    """
    return predict_tracks_logits(
        runner,
        [(faces, mfcc) for faces, mfcc, _ in tracks],
        windows or WindowConfig(),
        max_batch_frames=max_batch_frames,
        chunk_frames=chunk_frames,
        visual_offsets=[context for _, _, context in tracks],
    )
