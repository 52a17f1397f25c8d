"""Ego4D-trained Looking-at-Me (GazeLSTM) and Talking-to-Me (QuAVF) models on detect's tracks.

Details and sources: ``docs/social.md`` (Ego4D-trained LAM and TTM models in detect).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from socialav.audio.features import log_mel_spectrogram, ttm_audio_span
from socialav.checkpoints.load import (
    CheckpointError,
    CheckpointMismatchError,
    load_pretrained,
)
from socialav.inference.ego4d_windows import lam_window_sources, quavf_visual_windows
from socialav.inference.social_rules import (
    ZERO_SHOT_LAM_NOTE,
    ZERO_SHOT_TTM_NOTE,
    ZeroShotSocialScorer,
    social_series,
    talking_to_me_probability,
)
from socialav.models.gaze_lstm import GazeLSTM
from socialav.models.quavf import QuavfAudioBranch, QuavfVisualBranch, quality_aware_fusion
from socialav.models.registry import architecture_spec, architectures_for_task
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, AnalysedTrack, FaceTrack
from socialav.vision.crops import crops_to_tensor
from socialav.vision.quality import frame_quality

logger = logging.getLogger(__name__)

__all__ = [
    "LAM_WINDOW_FRAMES",
    "SOCIAL_ARCHITECTURES",
    "TTM_AUDIO_CHUNK_S",
    "SocialCheckpoint",
    "SocialScorer",
    "TrainedSocialScorer",
    "make_social_scorer",
    "TrainedSocialModel",
    "lam_window_rows",
    "load_social_checkpoint",
    "load_trained_social_model",
    "model_frame_of_rows",
    "quavf_window_rows",
    "row_of_model_frames",
]

#: LAM window ``t-3 .. t+3`` of the Ego4D baseline (``lam_samples`` ``window=7``).
LAM_WINDOW_FRAMES = 7
#: Longest audio chunk given to the QuAVF audio branch: the 150-frame (5 s at 30 fps) TTM
#: sub-clips of the baseline's ``make_dataset``.
TTM_AUDIO_CHUNK_S = 5.0
#: Architectures accepted per task (``--lam-weights``, ``--ttm-weights``): the registry's LAM
#: architectures, and its TTM visual and audio branches (fused by quality when both are given).
SOCIAL_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "lam": architectures_for_task("lam"),
    "ttm": architectures_for_task("ttm-visual") + architectures_for_task("ttm-audio"),
}
#: Defaults of the free contract fields (the reference sizes), used when a checkpoint lacks
#: them: 224 px crops (Ego4D LAM ``get_transform``, QuAVF), QuAVF ``feat_length`` and
#: ``frame_stride`` 15 (``common/config.py``), 80 mel bands (Whisper).
_CONTRACT_DEFAULTS: dict[str, int] = {
    "face_size_px": 224,
    "feat_length": 15,
    "frame_stride": 15,
    "n_mels": 80,
}


# ---------------------------------------------------------------------------- time mapping


def model_frame_of_rows(num_rows: int, fps: float, model_fps: float) -> np.ndarray:
    """The model frame nearest to each track frame: ``floor(i * model_fps / fps + 0.5)``.

    Args:
        num_rows: frames ``T`` of the track (rows ``0 .. T-1`` at ``i / fps`` s after its start).
        fps: the track's frame rate (25, the analysis timeline).
        model_fps: the model's frame rate (30, Ego4D).

    Returns:
        ``(T,)`` int64, non-decreasing. Example (hand check, 25 -> 30 fps): rows ``0..5`` ->
        ``[0, 1, 2, 4, 5, 6]``.
    """
    if fps <= 0 or model_fps <= 0:
        raise ValueError(f"fps and model_fps must be > 0, but got {fps} and {model_fps}")
    return np.floor(np.arange(num_rows) * (model_fps / fps) + 0.5).astype(np.int64)


def row_of_model_frames(
    frames: np.ndarray, num_rows: int, fps: float, model_fps: float
) -> np.ndarray:
    """The track frame nearest to each model frame: ``floor(j * fps / model_fps + 0.5)``,
    clipped to ``0 .. num_rows - 1``. Example (30 -> 25 fps): ``[0, 1, 2, 3, 4, 5, 6]`` ->
    ``[0, 1, 2, 3, 3, 4, 5]``."""
    rows = np.floor(np.asarray(frames, dtype=np.float64) * (fps / model_fps) + 0.5)
    return np.clip(rows, 0, num_rows - 1).astype(np.int64)


def lam_window_rows(
    num_rows: int, fps: float, model_fps: float, window: int = LAM_WINDOW_FRAMES
) -> np.ndarray:
    """Which track frame fills each slot of the LAM window of every track frame.

    Frame ``i``'s window is model frames ``j(i) - w//2 .. j(i) + w//2``
    (:func:`model_frame_of_rows`); a model frame outside the track (before 0 or after
    ``j(T - 1)``) is replaced as the baseline's ``pad_video`` does
    (:func:`~socialav.inference.ego4d_windows.lam_window_sources`); each model frame shows its
    nearest track frame (:func:`row_of_model_frames`).

    Returns:
        ``(T, window)`` int64 row indices into the track's crops.
    """
    centres = model_frame_of_rows(num_rows, fps, model_fps)
    last = int(centres[-1]) if num_rows else -1
    half = window // 2
    out = np.empty((num_rows, window), dtype=np.int64)
    for i, j in enumerate(centres):
        frames = np.arange(j - half, j + half + 1)
        chosen = frames[lam_window_sources((frames >= 0) & (frames <= last))]
        out[i] = row_of_model_frames(chosen, num_rows, fps, model_fps)
    return out


def quavf_window_rows(
    num_rows: int,
    fps: float,
    model_fps: float,
    quality: np.ndarray,
    feat_length: int,
    frame_stride: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The QuAVF visual window of every track frame, and its quality.

    On the track's model-frame timeline (every model frame ``0 .. j(T - 1)`` has the face of
    its nearest track frame and that frame's quality), the windows are those of
    :func:`~socialav.inference.ego4d_windows.quavf_visual_windows` in evaluation mode
    (``score_threshold=None``: one per face frame, padded with missing frames beyond the
    track); track frame ``i`` takes the window centred on ``j(i)``.

    Args:
        quality: ``(T,)`` per-frame quality of the track in [0, 1]
            (:func:`~socialav.vision.quality.frame_quality`).

    Returns:
        ``(rows (T, W) int64 -- the track frame per window slot, -1 for a missing frame --,
        window quality (T,) float64)``.
    """
    quality = np.asarray(quality, dtype=np.float64)
    if quality.shape != (num_rows,):
        raise ValueError(f"quality must have shape ({num_rows},), but got {quality.shape}")
    centres = model_frame_of_rows(num_rows, fps, model_fps)
    frames = np.arange(int(centres[-1]) + 1 if num_rows else 0)
    frame_rows = row_of_model_frames(frames, num_rows, fps, model_fps)
    windows = quavf_visual_windows(
        frames.tolist(),
        quality[frame_rows].tolist(),
        feat_length=feat_length,
        frame_stride=frame_stride,
        score_threshold=None,
    )
    width = len(windows[0][1]) if windows else feat_length
    rows = np.full((num_rows, width), -1, dtype=np.int64)
    window_quality = np.zeros(num_rows, dtype=np.float64)
    for i, j in enumerate(centres):
        centre, slots, q = windows[int(j)]
        if centre != j:  # every model frame has a face, so window j is centred on j
            raise RuntimeError(f"QuAVF window {j} is centred on {centre}")
        present = [f for f in slots if f is not None]
        rows[i, [k for k, f in enumerate(slots) if f is not None]] = row_of_model_frames(
            np.asarray(present), num_rows, fps, model_fps
        )
        window_quality[i] = q
    return rows, window_quality


# ------------------------------------------------------------------------------ face inputs


# ------------------------------------------------------------------ models after the backbone


def _frame_features(
    backbone: nn.Module, crops: np.ndarray, batch_frames: int, device: torch.device
) -> torch.Tensor:
    """Backbone features of ``(T, S, S, 3)`` uint8 crops (ImageNet-normalised), ``(T, D)``."""
    parts = [
        backbone(crops_to_tensor(crops[a : a + batch_frames]).to(device))
        for a in range(0, len(crops), batch_frames)
    ]
    return torch.cat(parts)


# ------------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class SocialCheckpoint:
    """One loaded LAM/TTM checkpoint.

    Attributes:
        path: the file (resolved).
        sha256: its hex digest.
        architecture: ``gaze-lstm``, ``quavf-visual`` or ``quavf-audio``.
        task: ``lam``, ``ttm-visual`` or ``ttm-audio`` (registry task).
        model: the model, eval mode, on its device.
        input_contract: the checkpoint's input contract (fixed and free fields).
        model_fps: frame rate of the model's frames (contract ``fps``, 30).
        face_size_px: crop side (visual models), else ``None``.
        feat_length, frame_stride: QuAVF visual window (``quavf-visual`` only).
        n_mels: mel bands (``quavf-audio`` only).
    """

    path: Path
    sha256: str
    architecture: str
    task: str
    model: nn.Module = field(repr=False)
    input_contract: Mapping[str, Any] = field(repr=False)
    model_fps: float = 30.0
    face_size_px: int | None = None
    feat_length: int | None = None
    frame_stride: int | None = None
    n_mels: int | None = None

    def info(self) -> dict[str, Any]:
        """JSON-ready record for ``run_info["weights"]``: path, sha256, architecture, contract."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "architecture": self.architecture,
            "input_contract": dict(self.input_contract),
        }


def _free_int(contract: Mapping[str, Any], key: str, path: Path, default: int | None = None) -> int:
    """A free integer field of an input contract (``default``, else the reference value,
    when absent, with a warning)."""
    value = contract.get(key)
    if value is None:
        value = _CONTRACT_DEFAULTS[key] if default is None else default
        logger.warning("%s: input contract lacks %r; using %d", path, key, value)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise CheckpointError(
            f"{path}: input contract {key!r} must be an integer, but found {value!r}"
        )
    if int(value) < 1:
        raise CheckpointError(f"{path}: input contract {key!r} must be >= 1, but found {value!r}")
    return int(value)


def load_social_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", task: str | None = None
) -> SocialCheckpoint:
    """Load one Ego4D-trained LAM/TTM checkpoint written by ``save_model_checkpoint``.

    Args:
        path: a socialav checkpoint of architecture ``gaze-lstm``, ``quavf-visual`` or
            ``quavf-audio``.
        device: where the model runs.
        task: ``"lam"`` (only ``gaze-lstm`` accepted), ``"ttm"`` (only the QuAVF branches) or
            ``None`` (any of the three).

    Returns:
        A :class:`SocialCheckpoint`.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a socialav checkpoint (an original ASD checkpoint, a text file,
            ...), another architecture (expected vs found), another input contract, weights
            that do not fit (see :func:`~socialav.checkpoints.load.load_pretrained`), or QuAVF
            window parameters the model cannot take.
        ValueError: unknown ``task``.
    """
    if task is not None and task not in SOCIAL_ARCHITECTURES:
        raise ValueError(
            f"task must be one of {sorted(SOCIAL_ARCHITECTURES)} or None, got {task!r}"
        )
    allowed = SOCIAL_ARCHITECTURES[task] if task else sum(SOCIAL_ARCHITECTURES.values(), ())
    what = f"{task.upper()} " if task else "LAM/TTM "
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}checkpoint {path} not found")
    try:
        model, info = load_pretrained(path, device=device)
    except (CheckpointError, CheckpointMismatchError) as err:
        raise CheckpointError(
            f"{path} cannot be read as a socialav checkpoint of the expected kind: expected a "
            f"{' or '.join(allowed)} checkpoint ({what.strip()}), but: {err}"
        ) from None
    found = info.architecture
    if found not in allowed:
        raise CheckpointError(
            f"{path}: expected a {' or '.join(allowed)} checkpoint ({what.strip()}), but found "
            f"a {found!r} model (task {architecture_spec(found).task})"
        )
    meta = info.metadata
    contract = dict(meta.get("input_contract") or {})
    kwargs: dict[str, Any] = {}
    if found in ("gaze-lstm", "quavf-visual"):
        kwargs["face_size_px"] = _free_int(contract, "face_size_px", path)
    if found == "quavf-visual":
        # the position table has feat_length + 1 entries (class token first)
        positions = min(m.embed.num_embeddings - 1 for m in model.temporal)  # type: ignore[union-attr]
        feat_length = _free_int(contract, "feat_length", path, positions)
        frame_stride = _free_int(contract, "frame_stride", path)
        if feat_length % 2 != 1:
            raise CheckpointError(f"{path}: feat_length must be odd, but found {feat_length}")
        # the window slice of quavf_visual_windows: padded[idx : idx + span + 1 : frame_stride]
        width = len(range(0, (feat_length - 1) * frame_stride + 2, frame_stride))
        if width > positions:
            raise CheckpointError(
                f"{path}: QuAVF windows of feat_length {feat_length}, frame_stride "
                f"{frame_stride} hold {width} frames, but the model takes at most {positions}"
            )
        kwargs.update(feat_length=feat_length, frame_stride=frame_stride)
    if found == "quavf-audio":
        arch_mels = (meta.get("architecture_config") or {}).get("n_mels")
        kwargs["n_mels"] = _free_int(contract, "n_mels", path, arch_mels)
    return SocialCheckpoint(
        path=path.resolve(),
        sha256=info.sha256,
        architecture=found,
        task=architecture_spec(found).task,
        model=model,
        input_contract=contract,
        model_fps=float(contract.get("fps", 30.0)),
        **kwargs,
    )


# --------------------------------------------------------------------------------- the model


class TrainedSocialModel:
    """Ego4D-trained LAM and/or TTM on the detect pipeline's face tracks (a
    wrapped for the detect pipeline by :class:`TrainedSocialScorer`).

    Args:
        checkpoints: at most one ``gaze-lstm`` (LAM), one ``quavf-visual`` and one
            ``quavf-audio`` (TTM; fused when both are given).
        batch_frames: crops per backbone call (bounds the activation memory: about 3 MB
            per 224 px crop in the first ResNet stage).
        batch_windows: windows per temporal-model call.

    Attributes:
        tasks: ``("lam",)``, ``("ttm",)`` or ``("lam", "ttm")``.
        face_sizes_px: crop sides the visual models need (empty for audio-only TTM).
        needs_quality: whether :meth:`score_track` uses per-frame visual quality.

    Raises:
        ValueError: no checkpoint, or two of the same architecture.
    """

    def __init__(
        self,
        checkpoints: Sequence[SocialCheckpoint],
        batch_frames: int = 32,
        batch_windows: int = 256,
    ) -> None:
        by_arch: dict[str, SocialCheckpoint] = {}
        for ckpt in checkpoints:
            if ckpt.architecture in by_arch:
                raise ValueError(
                    f"expected at most one {ckpt.architecture} checkpoint, but got "
                    f"{by_arch[ckpt.architecture].path} and {ckpt.path}"
                )
            by_arch[ckpt.architecture] = ckpt
        if not by_arch:
            raise ValueError("expected at least one LAM/TTM checkpoint, but got none")
        if batch_frames < 1 or batch_windows < 1:
            raise ValueError(
                f"batch_frames and batch_windows must be >= 1, got {batch_frames}, {batch_windows}"
            )
        self.lam = by_arch.get("gaze-lstm")
        self.ttm_visual = by_arch.get("quavf-visual")
        self.ttm_audio = by_arch.get("quavf-audio")
        self.batch_frames = batch_frames
        self.batch_windows = batch_windows
        self.tasks: tuple[str, ...] = tuple(
            t
            for t, on in (("lam", self.lam), ("ttm", self.ttm_visual or self.ttm_audio))
            if on is not None
        )
        sizes = {c.face_size_px for c in (self.lam, self.ttm_visual) if c is not None}
        self.face_sizes_px: tuple[int, ...] = tuple(sorted(s for s in sizes if s is not None))
        self.needs_quality = self.ttm_visual is not None

    @property
    def checkpoints(self) -> list[SocialCheckpoint]:
        """The loaded checkpoints (LAM, TTM visual, TTM audio; those given)."""
        return [c for c in (self.lam, self.ttm_visual, self.ttm_audio) if c is not None]

    def describe(self) -> dict[str, Any]:
        """``{"lam": info, "ttm": [info, ...]}`` of the checkpoints (path, sha256, ...)."""
        out: dict[str, Any] = {}
        if self.lam is not None:
            out["lam"] = self.lam.info()
        ttm = [c.info() for c in (self.ttm_visual, self.ttm_audio) if c is not None]
        if ttm:
            out["ttm"] = ttm
        return out

    # -- per branch ---------------------------------------------------------------------

    @staticmethod
    def _device(ckpt: SocialCheckpoint) -> torch.device:
        return next(ckpt.model.parameters()).device

    def lam_probabilities(
        self, face_crops_rgb: np.ndarray, fps: float = ANALYSIS_FPS
    ) -> np.ndarray:
        """P(looking at me) per track frame from the GazeLSTM checkpoint.

        Args:
            face_crops_rgb: ``(T, S, S, 3)`` uint8 crops of the track's frames
                (:func:`~socialav.vision.crops.crop_face_box` at ``face_size_px``).
            fps: the track's frame rate.

        Returns:
            ``(T,)`` float32 in [0, 1].
        """
        ckpt = self._require(self.lam, "LAM")
        model: GazeLSTM = ckpt.model  # type: ignore[assignment]
        crops = self._check_crops(face_crops_rgb, ckpt)
        device = self._device(ckpt)
        rows = torch.from_numpy(lam_window_rows(len(crops), fps, ckpt.model_fps)).to(device)
        with torch.inference_mode():
            feats = _frame_features(model.base_model, crops, self.batch_frames, device)
            probs = [
                torch.softmax(model.forward_features(feats[rows[a : a + self.batch_windows]]), 1)[
                    :, 1
                ]
                for a in range(0, len(rows), self.batch_windows)
            ]
        return torch.cat(probs).float().cpu().numpy()

    def ttm_visual_probabilities(
        self, face_crops_rgb: np.ndarray, quality: np.ndarray, fps: float = ANALYSIS_FPS
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(talking to me) per track frame from the QuAVF visual branch, and the window
        quality ``q`` of each frame (what the fusion weighs it by).

        Args:
            face_crops_rgb: ``(T, S, S, 3)`` uint8 crops at the checkpoint's ``face_size_px``.
            quality: ``(T,)`` per-frame :func:`~socialav.vision.quality.frame_quality`.

        Returns:
            ``(p_visual (T,) float32, q (T,) float32)``, both in [0, 1].
        """
        ckpt = self._require(self.ttm_visual, "TTM visual")
        model: QuavfVisualBranch = ckpt.model  # type: ignore[assignment]
        crops = self._check_crops(face_crops_rgb, ckpt)
        device = self._device(ckpt)
        rows_np, q_np = quavf_window_rows(
            len(crops),
            fps,
            ckpt.model_fps,
            quality,
            ckpt.feat_length,
            ckpt.frame_stride,  # type: ignore[arg-type]
        )
        rows = torch.from_numpy(rows_np).to(device)
        window_q = torch.tensor(q_np, dtype=torch.float32, device=device)
        size = int(ckpt.face_size_px)  # type: ignore[arg-type]
        with torch.inference_mode():
            feats = _frame_features(model.backbone, crops, self.batch_frames, device)
            missing = model.backbone(torch.zeros(1, 3, size, size, device=device))
            table = torch.cat([feats, missing])  # row -1 -> the missing-frame features
            probs = []
            for a in range(0, len(rows), self.batch_windows):
                logits = model.forward_features(
                    table[rows[a : a + self.batch_windows]],
                    window_q[a : a + self.batch_windows],
                )
                probs.append(torch.softmax(logits, 1)[:, 1])
        return torch.cat(probs).float().cpu().numpy(), q_np.astype(np.float32)

    def ttm_audio_probabilities(
        self,
        audio_s16: np.ndarray,
        num_rows: int,
        fps: float = ANALYSIS_FPS,
        sample_rate: int = AUDIO_SAMPLE_RATE,
    ) -> np.ndarray:
        """P(talking to me) per track frame from the QuAVF audio branch (see the module
        docstring, *Audio chunks*).

        Args:
            audio_s16: ``(N,)`` int16 audio of the track's span ``[start / fps, (end + 1) /
                fps)`` (:func:`socialav.audio.features.track_audio`), ``N >= T / fps *
                sample_rate``.
            num_rows: frames ``T`` of the track.

        Returns:
            ``(T,)`` float32 in [0, 1].
        """
        ckpt = self._require(self.ttm_audio, "TTM audio")
        model: QuavfAudioBranch = ckpt.model  # type: ignore[assignment]
        audio = np.asarray(audio_s16)
        need = ttm_audio_span(0, num_rows, sample_rate, fps)[1]
        if audio.ndim != 1 or len(audio) < need:
            raise ValueError(
                f"audio_s16 must be the (N,) audio of the track's span, N >= {need} for "
                f"{num_rows} frames at {fps} fps, but got shape {audio.shape}"
            )
        device = self._device(ckpt)
        chunk_rows = max(1, int(TTM_AUDIO_CHUNK_S * fps))
        out = np.empty(num_rows, dtype=np.float32)
        with torch.inference_mode():
            for rows in np.array_split(np.arange(num_rows), math.ceil(num_rows / chunk_rows)):
                a, b = int(rows[0]), int(rows[-1]) + 1
                onset, offset = ttm_audio_span(a, b, sample_rate, fps)
                chunk = audio[onset:offset]
                num_frames = max(1, int(len(chunk) / sample_rate * ckpt.model_fps))
                mel = torch.from_numpy(log_mel_spectrogram(chunk, sample_rate, ckpt.n_mels))  # type: ignore[arg-type]
                logits = model(mel[None].to(device), num_frames)  # (1, 2, num_frames)
                prob = torch.softmax(logits[0], 0)[1].float().cpu().numpy()
                bins = np.minimum(model_frame_of_rows(b - a, fps, ckpt.model_fps), num_frames - 1)
                out[a:b] = prob[bins]
        return out

    # -- one track ---------------------------------------------------------------------

    def score_track(
        self,
        track: FaceTrack,
        face_crops_rgb: np.ndarray | Mapping[int, np.ndarray] | None,
        audio_s16: np.ndarray | None,
        fps: float = ANALYSIS_FPS,
        frame_quality_values: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-frame LAM/TTM probabilities of one face track.

        Args:
            track: the face track (``T`` frames on the ``fps`` timeline).
            face_crops_rgb: ``(T, S, S, 3)`` uint8 RGB crops
                (:func:`~socialav.vision.crops.crop_face_box` of the track's boxes),
                or ``{S: crops}`` when the checkpoints use several sizes
                (:attr:`face_sizes_px`); ``None`` for an audio-only model.
            audio_s16: ``(N,)`` int16 16 kHz audio of the track's span (``None`` without
                a TTM audio checkpoint).
            fps: the track's frame rate.
            frame_quality_values: ``(T,)`` :func:`~socialav.vision.quality.frame_quality`
                per frame (box pixels before resizing, times the detector confidence), as
                the pipeline computes while cutting crops; ``None`` computes it from the
                resized crops and ``track.confidence`` (close to, not equal to, the
                training-side value).

        Returns:
            ``{"lam": (T,), "ttm": (T,)}`` float32 in [0, 1], a key only for a task with a
            checkpoint.

        Raises:
            ValueError: crops, quality or audio of the wrong shape, size or dtype.
        """
        num_rows = len(track)
        out: dict[str, np.ndarray] = {}
        if self.lam is not None:
            out["lam"] = self.lam_probabilities(
                self._crops_of(face_crops_rgb, self.lam, num_rows), fps
            )
        p_visual = q = p_audio = None
        if self.ttm_visual is not None:
            crops = self._crops_of(face_crops_rgb, self.ttm_visual, num_rows)
            if frame_quality_values is None:
                conf = np.asarray(track.confidence, dtype=np.float64)
                frame_quality_values = np.array(
                    [
                        frame_quality(c, b, float(k))
                        for c, b, k in zip(crops, track.boxes_xyxy_px, conf, strict=True)
                    ]
                )
            quality = np.asarray(frame_quality_values, dtype=np.float64)
            if quality.shape != (num_rows,) or not np.all((quality >= 0) & (quality <= 1)):
                raise ValueError(
                    f"frame_quality_values must be ({num_rows},) values in [0, 1], but got "
                    f"shape {quality.shape}"
                )
            p_visual, q = self.ttm_visual_probabilities(crops, quality, fps)
        if self.ttm_audio is not None:
            if audio_s16 is None:
                raise ValueError("a TTM audio checkpoint needs audio_s16, but got None")
            p_audio = self.ttm_audio_probabilities(audio_s16, num_rows, fps)
        if p_visual is not None and p_audio is not None:
            fused = quality_aware_fusion(
                torch.from_numpy(p_audio), torch.from_numpy(p_visual), torch.from_numpy(q)
            )
            out["ttm"] = fused.numpy().astype(np.float32)
        elif p_visual is not None or p_audio is not None:
            out["ttm"] = p_visual if p_visual is not None else p_audio  # type: ignore[assignment]
        return out

    # -- checks --------------------------------------------------------------------------

    @staticmethod
    def _require(ckpt: SocialCheckpoint | None, what: str) -> SocialCheckpoint:
        if ckpt is None:
            raise ValueError(f"no {what} checkpoint was loaded")
        return ckpt

    @staticmethod
    def _check_crops(crops: np.ndarray, ckpt: SocialCheckpoint) -> np.ndarray:
        size = ckpt.face_size_px
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"{ckpt.architecture} ({ckpt.path.name}) takes (T, {size}, {size}, 3) uint8 RGB "
                f"face crops, but got {crops.shape} {crops.dtype}"
            )
        if len(crops) == 0:
            raise ValueError("expected the crops of at least one frame, but got 0")
        return crops

    @staticmethod
    def _crops_of(
        crops: np.ndarray | Mapping[int, np.ndarray] | None, ckpt: SocialCheckpoint, num_rows: int
    ) -> np.ndarray:
        size = int(ckpt.face_size_px)  # type: ignore[arg-type]
        if crops is None:
            raise ValueError(f"{ckpt.architecture} needs {size} px face crops, but got None")
        if isinstance(crops, Mapping):
            if size not in crops:
                raise ValueError(
                    f"{ckpt.architecture} needs {size} px face crops, but got sizes {sorted(crops)}"
                )
            crops = crops[size]
        if len(crops) != num_rows:
            raise ValueError(
                f"expected {num_rows} face crops (one per frame), but got {len(crops)}"
            )
        return crops


def load_trained_social_model(
    paths: str | Path | Sequence[str | Path],
    device: str | torch.device = "cpu",
    task: str | None = None,
) -> TrainedSocialModel:
    """Load Ego4D-trained LAM/TTM checkpoints as one :class:`TrainedSocialModel`.

    Args:
        paths: one or more socialav checkpoints: a ``gaze-lstm`` (LAM) and/or a
            ``quavf-visual`` and/or a ``quavf-audio`` (TTM, fused when both are given).
        device: where the models run.
        task: ``"lam"`` or ``"ttm"`` to accept only that task's architectures (the CLI's
            ``--lam-weights`` / ``--ttm-weights``), ``None`` for any.

    Raises:
        FileNotFoundError, CheckpointError: see :func:`load_social_checkpoint` (another
            architecture is refused with expected vs found).
        ValueError: no path, or two checkpoints of the same architecture.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    return TrainedSocialModel([load_social_checkpoint(p, device, task) for p in paths])


# ------------------------------------------------------------------------ the detect seam


class SocialScorer(Protocol):
    """Looking-at-Me / Talking-to-Me for the detect pipeline, in two steps per face track.

    The analysis pass cuts what :attr:`needs_head_pose`, :attr:`face_sizes_px` and
    :attr:`needs_quality` ask for (:class:`~socialav.types.AnalysedTrack`); when a track closes
    the pipeline calls :meth:`observe` (models that need only the face and the audio run
    here, so the RGB crops can be freed), and once the track's ASD speaking probability is
    known, :meth:`finish`, which returns the ``TrackScores.extra`` series. Implementations:
    :class:`~socialav.inference.social_rules.ZeroShotSocialScorer` and
    :class:`TrainedSocialScorer`; :func:`make_social_scorer` picks one.

    Attributes:
        tasks: the series returned, some of ``("lam", "ttm")``.
        needs_head_pose: FSA-Net head pose must be sampled for every track.
        face_sizes_px: sides of the RGB face crops to cut (empty: none).
        needs_quality: per-frame visual quality must be computed.
        needs_audio: :meth:`observe` takes the track's audio span.
    """

    tasks: tuple[str, ...]
    needs_head_pose: bool
    face_sizes_px: tuple[int, ...]
    needs_quality: bool
    needs_audio: bool

    def observe(
        self, analysed: AnalysedTrack, audio_s16: np.ndarray | None, fps: float = ANALYSIS_FPS
    ) -> dict[str, np.ndarray]: ...

    def finish(
        self, observed: Mapping[str, np.ndarray], speaking_prob: np.ndarray, fps: float
    ) -> dict[str, np.ndarray]: ...

    def weights_record(self) -> dict[str, Any]: ...

    def notes(self) -> dict[str, str | None]: ...


class TrainedSocialScorer:
    """Ego4D-trained LAM/TTM models (:class:`TrainedSocialModel`) as a :class:`SocialScorer`.

    A task without a trained model falls back to the zero-shot rules: LAM from head pose
    (:class:`~socialav.inference.social_rules.ZeroShotSocialScorer`), TTM from the (trained or
    zero-shot) LAM and the speaking probability
    (:func:`~socialav.inference.social_rules.talking_to_me_probability`).

    Args:
        model: the loaded checkpoints.
        tasks: the series wanted, some of ``("lam", "ttm")``.
    """

    def __init__(self, model: TrainedSocialModel, tasks: Sequence[str]) -> None:
        self.model = model
        self.tasks = tuple(t for t in ("lam", "ttm") if t in tasks)
        lam_from_rules = "lam" not in model.tasks and bool(self.tasks)
        self.fallback = ZeroShotSocialScorer(self.tasks) if lam_from_rules else None
        self.needs_head_pose = self.fallback is not None
        self.face_sizes_px = model.face_sizes_px
        self.needs_quality = model.needs_quality
        self.needs_audio = model.ttm_audio is not None

    def observe(
        self, analysed: AnalysedTrack, audio_s16: np.ndarray | None, fps: float = ANALYSIS_FPS
    ) -> dict[str, np.ndarray]:
        """The trained models' series of a just-closed track (and what the fallback keeps)."""
        crops = analysed.rgb_crops or None
        out = self.model.score_track(analysed.track, crops, audio_s16, fps, analysed.frame_quality)
        if self.fallback is not None:
            out.update(self.fallback.observe(analysed, audio_s16, fps))
        return out

    def finish(
        self, observed: Mapping[str, np.ndarray], speaking_prob: np.ndarray, fps: float
    ) -> dict[str, np.ndarray]:
        """The requested series: trained where a model exists, else the zero-shot rules."""
        if "lam" in observed:
            lam, rule_ttm = observed["lam"], None
        else:
            assert self.fallback is not None
            series = social_series(observed["head_pose_deg"], speaking_prob, fps)
            lam, rule_ttm = series["lam"], series["ttm"]
        out = {"lam": lam} if "lam" in self.tasks else {}
        if "ttm" in self.tasks:
            if "ttm" in observed:
                out["ttm"] = observed["ttm"]
            elif rule_ttm is not None:
                out["ttm"] = rule_ttm
            else:
                out["ttm"] = talking_to_me_probability(speaking_prob, lam, fps)
        return out

    def weights_record(self) -> dict[str, Any]:
        """``{"lam": info, "ttm": [info, ...]}`` of the checkpoints (path, sha256, ...)."""
        return self.model.describe()

    def notes(self) -> dict[str, str | None]:
        """What produced each series, for the JSON ``run_info``."""
        model, trained = self.model, self.model.tasks
        lam = ttm = None
        if "lam" in self.tasks:
            lam = (
                "Ego4D-trained GazeLSTM (weights.lam): softmax class 1 of 7-frame windows of "
                "RGB face crops on a 30 fps timeline (socialav.inference.social)"
                if "lam" in trained
                else ZERO_SHOT_LAM_NOTE
            )
        if "ttm" in self.tasks and "ttm" in trained:
            if model.ttm_visual is not None and model.ttm_audio is not None:
                ttm = "Ego4D-trained QuAVF (weights.ttm): (1 - q) p_audio + q p_visual"
            elif model.ttm_visual is not None:
                ttm = "Ego4D-trained QuAVF visual branch (weights.ttm)"
            else:
                ttm = "Ego4D-trained QuAVF audio branch (weights.ttm)"
        elif "ttm" in self.tasks:
            ttm = ZERO_SHOT_TTM_NOTE + (
                ", P(looking) from the trained LAM model" if "lam" in trained else ""
            )
        return {"lam": lam, "ttm": ttm}


def make_social_scorer(
    tasks: Sequence[str],
    lam_weights: str | Path | None = None,
    ttm_weights: Sequence[str | Path] = (),
    device: str | torch.device = "cpu",
) -> SocialScorer | None:
    """The LAM/TTM scorer of a detect configuration: trained models where checkpoints are
    given (``--lam-weights`` must be a ``gaze-lstm``, ``--ttm-weights`` QuAVF branches;
    anything else is refused with expected vs found), the zero-shot rules otherwise; ``None``
    when neither ``lam`` nor ``ttm`` is asked for.

    Raises:
        FileNotFoundError, CheckpointError: see :func:`load_social_checkpoint`.
    """
    social = tuple(t for t in ("lam", "ttm") if t in tasks)
    if not social:
        return None
    checkpoints = []
    if lam_weights is not None:
        checkpoints.append(load_social_checkpoint(lam_weights, device, task="lam"))
    checkpoints += [load_social_checkpoint(p, device, task="ttm") for p in ttm_weights]
    if not checkpoints:
        return ZeroShotSocialScorer(social)
    return TrainedSocialScorer(TrainedSocialModel(checkpoints), social)
