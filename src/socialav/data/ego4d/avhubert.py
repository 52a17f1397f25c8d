"""Ego4D Talking-to-Me samples for the AV-HuBERT-style model (seed 000's task).

One sample per TTM sub-clip (:func:`socialav.data.ego4d.samples.ttm_samples`, at most 150
frames = 5 s): the person's lip-region crops and the stacked filterbank of the span's audio,
both on AV-HuBERT's 25 fps timeline (:mod:`socialav.models.av_transformer`):

- time: the sub-clip's frames are at 30 fps (Ego4D); step ``k`` of the 25 fps timeline shows
  the 30 fps frame nearest to ``k / 25`` s, ``start_frame + floor(k * 30 / 25 + 0.5)``, and
  the sub-clip has ``T = floor(num_frames * 25 / 30)`` steps (at least 1);
- lips: AV-HuBERT crops 88x88 mouth regions found with facial landmarks; Ego4D gives face
  boxes only, so the lip region here is the lower half of the face box
  ``(x1, y1 + h / 2, x2, y2)``, cut with the baselines' :func:`~socialav.vision.crops.
  crop_face_box` (corners clamped at 0, bilinear resize), converted to gray;
  steps without a face box are zeros (as seed 000 feeds ``is_empty`` frames);
- audio: :func:`~socialav.audio.features.av_hubert_audio_features` of the span's audio
  (:func:`~socialav.audio.features.ttm_audio_span`), cut or padded to ``T`` steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from socialav.audio.features import av_hubert_audio_features, ttm_audio_span
from socialav.data.ego4d.samples import FrameSource, TtmSample
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, EGO4D_FPS
from socialav.vision.crops import crop_face_box

__all__ = [
    "AvTransformerTtmDataset",
    "collate_av_transformer",
    "lip_box",
    "steps_of_frames",
]


def steps_of_frames(num_frames: int, fps: float = EGO4D_FPS) -> np.ndarray:
    """Offsets (into the sub-clip's ``num_frames`` frames at ``fps``) shown at each step of
    the 25 fps timeline: ``floor(k * fps / 25 + 0.5)`` for ``k < max(1, floor(num_frames *
    25 / fps))``, clipped to the last frame. Example: 6 frames at 30 fps -> 5 steps
    ``[0, 1, 2, 4, 5]``."""
    steps = max(1, int(num_frames * ANALYSIS_FPS / fps))
    offsets = np.floor(np.arange(steps) * fps / ANALYSIS_FPS + 0.5).astype(np.int64)
    return np.minimum(offsets, num_frames - 1)


def lip_box(box_xyxy_px: Sequence[float]) -> tuple[float, float, float, float]:
    """The lower half of a face box, ``(x1, (y1 + y2) / 2, x2, y2)``: the lip region without
    landmarks."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy_px)
    return x1, (y1 + y2) / 2.0, x2, y2


class AvTransformerTtmDataset(Dataset):
    """TTM sub-clips as AV-HuBERT inputs (see the module docstring).

    ``dataset[i]`` is ``{"lips": (T, S, S) uint8, "audio": (T, 104) float32, "label": int}``.

    Args:
        samples: from :func:`~socialav.data.ego4d.samples.ttm_samples`.
        frames: image source of the clips.
        boxes: ``(clip_uid, person_id) -> {frame: xyxy}`` (``Ego4dClip.person_boxes_xyxy``).
        audio: ``clip_uid -> (N,)`` 16 kHz mono audio of the clip.
        lip_size_px: side of the lip crops (AV-HuBERT: 88).
        fps: frame rate of the samples' frame numbers (Ego4D: 30).
    """

    def __init__(
        self,
        samples: Sequence[TtmSample],
        frames: FrameSource,
        boxes: Mapping[tuple[str, str], Mapping[int, np.ndarray]],
        audio: Mapping[str, np.ndarray],
        lip_size_px: int = 88,
        fps: float = EGO4D_FPS,
    ) -> None:
        self.samples = list(samples)
        self.frames = frames
        self.boxes = boxes
        self.audio = audio
        self.lip_size_px = int(lip_size_px)
        self.fps = float(fps)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, object]:
        s = self.samples[index]
        offsets = steps_of_frames(s.num_frames, self.fps)
        person_boxes = self.boxes.get((s.clip_uid, s.person_id), {})
        size = self.lip_size_px
        lips = np.zeros((len(offsets), size, size), dtype=np.uint8)
        for k, off in enumerate(offsets.tolist()):
            frame = s.start_frame + off
            box = person_boxes.get(frame)
            image = None if box is None else self.frames.frame(s.clip_uid, frame)
            if image is None:
                continue
            crop = crop_face_box(image, lip_box(box), size)
            lips[k] = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        onset, offset = ttm_audio_span(s.start_frame, s.end_frame, AUDIO_SAMPLE_RATE, self.fps)
        wave = np.asarray(self.audio[s.clip_uid])[onset:offset]
        feats = av_hubert_audio_features(wave, num_frames=len(offsets))
        return {"lips": lips, "audio": feats, "label": s.label}


def collate_av_transformer(batch: Sequence[Mapping[str, object]]) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sample: ``{"lips": (B, T, S, S) float32 (0..255), "audio":
    (B, T, 104), "lengths": (B,) int64, "label": (B,) int64}`` (zeros past each length)."""
    lengths = [len(item["lips"]) for item in batch]  # type: ignore[arg-type]
    steps = max(lengths)
    size = batch[0]["lips"].shape[-1]  # type: ignore[union-attr]
    lips = torch.zeros(len(batch), steps, size, size)
    audio = torch.zeros(len(batch), steps, batch[0]["audio"].shape[-1])  # type: ignore[union-attr]
    for i, item in enumerate(batch):
        n = lengths[i]
        lips[i, :n] = torch.from_numpy(np.asarray(item["lips"], dtype=np.float32))
        audio[i, :n] = torch.from_numpy(np.asarray(item["audio"], dtype=np.float32))
    return {
        "lips": lips,
        "audio": audio,
        "lengths": torch.tensor(lengths, dtype=torch.int64),
        "label": torch.tensor([int(item["label"]) for item in batch], dtype=torch.int64),
    }
