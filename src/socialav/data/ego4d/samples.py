"""Training/evaluation samples for Ego4D Talking-to-Me (TTM) and Looking-at-Me (LAM).

Sample construction reproduces the reference code (all frame numbers at 30 fps, spans
inclusive):

- **TTM (baseline)**, ``make_dataset`` of ``dataset/data_loader.py`` (EGO4D/social-interactions,
  branch ``ttm``): one sample per talking segment (person, segment); a segment of ``n`` frames
  is dropped when ``n <= 1`` or, in training, when ``n < 15``; a segment with ``n > 150`` is
  cut into ``n // 150`` sub-clips ``[start + 150 i, min(end, start + 150 i + 150)]`` (151
  frames each, one frame shared with the next; the remainder after the last full sub-clip is
  dropped), sub-clips shorter than 15 frames are dropped. The segment id is
  ``clip_uid:index`` with ``index`` the position of the segment among the clip's talking
  segments whose ``person`` is not null (``get_ttm_result.py`` drops the others first).
  Audio: samples ``int(start / 30 * sr)`` to ``int(end / 30 * sr)`` scaled to an RMS of 0.1
  (``normalize``).
- **LAM (baseline)**, ``make_dataset`` / ``ImagerLoader`` of ``dataset/data_loader.py``
  (branch ``lam``): one sample per (track, frame) of the linearly interpolated track (every
  ``stride``-th frame of a track); the input is the 7 face crops of frames ``t-3 .. t+3`` of the
  same track, a frame outside the track is replaced as ``pad_video`` does (missing frames
  removed, the rest edge-padded back to 7, see :func:`lam_window_sources`); crops are
  ``img[int(y1):int(y2), int(x1):int(x2)]`` resized to 224x224 RGB, normalised with the
  ImageNet mean/std (``get_transform``).
- **QuAVF** (Ego4D-QuAVF-TTM-CVPR23, ``dataset/visualDataset.py``, ``audioDataset.py``): the
  visual branch sees windows of ``feat_length`` frames taken every ``frame_stride`` frames
  around a centre frame, each with a quality score (mean of the per-frame quality over the
  window, 0 where there is no face); training windows below ``score_threshold`` are skipped
  (see :func:`quavf_visual_windows`). The audio branch sees the segment's audio as a log-mel
  spectrogram with one label per video frame.

The per-frame visual quality (:func:`frame_quality`) is ours: the reference scores each face
crop with the mean landmark confidence of the ``face_alignment`` network
(``data/faceScore.py``), which is not available here. We combine detector confidence, face
size and sharpness (variance of the Laplacian) instead -- see :class:`QualityConfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from socialav.audio.features import log_mel_spectrogram, ttm_audio_span
from socialav.data.ego4d.annotations import Ego4dClip, interpolate_track
from socialav.inference.ego4d_windows import lam_window_sources, quavf_visual_windows
from socialav.types import EGO4D_FPS
from socialav.vision.crops import crop_face_box, crops_to_tensor, face_box_pixels
from socialav.vision.quality import QualityConfig, frame_quality

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORE_INDEX",
    "FrameSource",
    "InMemoryFrames",
    "LamDataset",
    "LamSample",
    "TtmAudioDataset",
    "TtmSample",
    "TtmVisualDataset",
    "TtmVisualWindow",
    "build_ttm_visual_windows",
    "collate_ttm_audio",
    "lam_samples",
    "lam_track_boxes",
    "split_ttm_segment",
    "ttm_samples",
]

#: Label value ignored by the per-frame losses (``torch.nn.CrossEntropyLoss`` default).
IGNORE_INDEX = -100


# ------------------------------------------------------------------------------------ TTM


@dataclass(frozen=True)
class TtmSample:
    """One TTM sub-clip of one talking segment.

    Attributes:
        clip_uid: the clip.
        person_id: the (normalised) person whose face and speech this is.
        segment_index: position among the clip's talking segments with a non-null person.
        start_frame, end_frame: inclusive sub-clip span (30 fps).
        label: 1 talking to me (non-null ``target``), 0 otherwise.
        sub_index: 0-based sub-clip number within the segment.
    """

    clip_uid: str
    person_id: str
    segment_index: int
    start_frame: int
    end_frame: int
    label: int
    sub_index: int = 0

    @property
    def segment_id(self) -> str:
        """``clip_uid:segment_index``, the baseline's segment key (``PostProcessor``)."""
        return f"{self.clip_uid}:{self.segment_index}"

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def split_ttm_segment(
    start_frame: int,
    end_frame: int,
    *,
    train: bool,
    min_frames: int = 15,
    max_frames: int = 150,
) -> list[tuple[int, int]]:
    """Sub-clips of one talking segment, exactly as the TTM baseline's ``make_dataset``.

    Args:
        start_frame, end_frame: inclusive segment span.
        train: training split (segments shorter than ``min_frames`` are dropped).
        min_frames, max_frames: the baseline's 15 and 150.

    Returns:
        ``[(start, end), ...]`` inclusive spans; empty when the segment is dropped.

    Example (hand check): ``(0, 319)`` has 320 frames > 150, ``320 // 150 = 2`` sub-clips
    ``(0, 150)`` and ``(150, 300)``; frames 301..319 are dropped.
    """
    if end_frame < start_frame:
        raise ValueError(
            f"end_frame must be >= start_frame, but got start {start_frame}, end {end_frame}"
        )
    n = end_frame - start_frame + 1
    if (train and n < min_frames) or n <= 1:
        return []
    if n <= max_frames:
        return [(start_frame, end_frame)]
    spans = []
    for i in range(n // max_frames):
        sub_start = start_frame + i * max_frames
        sub_end = min(end_frame, sub_start + max_frames)
        if sub_end - sub_start + 1 < min_frames:
            continue
        spans.append((sub_start, sub_end))
    return spans


def ttm_samples(
    clips: Sequence[Ego4dClip],
    *,
    train: bool,
    min_frames: int = 15,
    max_frames: int = 150,
    skip_camera_wearer: bool = False,
) -> list[TtmSample]:
    """All TTM sub-clips of the clips' talking segments (see the module docstring).

    Args:
        clips: annotations from :func:`socialav.data.ego4d.annotations.load_av_annotations`.
        train: apply the training-only minimum length.
        min_frames, max_frames: see :func:`split_ttm_segment`.
        skip_camera_wearer: drop segments of the camera wearer (QuAVF drops ``person < 1``;
            the baseline keeps them, with an all-empty face input).

    Returns:
        Samples in clip order, then segment order, then sub-clip order.
    """
    out: list[TtmSample] = []
    for clip in clips:
        wearers = {p.person_id for p in clip.persons if p.is_camera_wearer}
        index = -1
        for seg in clip.talking:
            if seg.person is None:
                continue
            index += 1
            if skip_camera_wearer and (seg.person in wearers or seg.person == "0"):
                continue
            spans = split_ttm_segment(
                seg.start_frame,
                seg.end_frame,
                train=train,
                min_frames=min_frames,
                max_frames=max_frames,
            )
            for k, (start, end) in enumerate(spans):
                out.append(
                    TtmSample(
                        clip.clip_uid, seg.person, index, start, end, int(seg.talking_to_me), k
                    )
                )
    return out


# ------------------------------------------------------------------------------------ LAM


@dataclass(frozen=True)
class LamSample:
    """One LAM sample: a face of a track at a centre frame, with its 7-frame window.

    Attributes:
        clip_uid, person_id, track_id: which face.
        frame: the centre frame ``t`` (30 fps).
        label: 1 looking at the camera wearer at ``t``, else 0.
        box_xyxy_px: the (interpolated) box at ``t``.
        window_frames: ``t - half .. t + half``.
        window_valid: whether each window frame belongs to the track.
    """

    clip_uid: str
    person_id: str
    track_id: str
    frame: int
    label: int
    box_xyxy_px: tuple[float, float, float, float]
    window_frames: tuple[int, ...]
    window_valid: tuple[bool, ...]


def lam_samples(
    clips: Sequence[Ego4dClip],
    *,
    stride: int = 1,
    window: int = 7,
    interpolate: bool = True,
) -> list[LamSample]:
    """One LAM sample per (track, frame) of every non-wearer face track.

    Args:
        clips: annotations.
        stride: keep every ``stride``-th frame of each track (the baseline's
            ``train_stride``/``val_stride`` 13, ``test_stride`` 1).
        window: window length (7: ``t-3 .. t+3``).
        interpolate: fill track gaps (:func:`~socialav.data.ego4d.annotations.interpolate_track`), as
            the baseline does.

    Returns:
        Samples in clip, person, track, frame order.
    """
    if stride < 1 or window < 1 or window % 2 == 0:
        raise ValueError(f"stride must be >= 1 and window odd, but got {stride}, {window}")
    half = window // 2
    out: list[LamSample] = []
    for clip in clips:
        for person in clip.persons:
            if person.is_camera_wearer:
                continue
            positives = clip.looking_frames(person.person_id)
            for raw in person.tracks:
                track = interpolate_track(raw) if interpolate else raw
                in_track = set(track.frames.tolist())
                boxes = track.boxes_xyxy_px
                for idx, frame in enumerate(track.frames.tolist()):
                    if idx % stride:
                        continue
                    frames = tuple(range(frame - half, frame + half + 1))
                    out.append(
                        LamSample(
                            clip.clip_uid,
                            person.person_id,
                            track.track_id,
                            int(frame),
                            int(frame in positives),
                            tuple(float(v) for v in boxes[idx]),
                            frames,
                            tuple(f in in_track for f in frames),
                        )
                    )
    return out


# ------------------------------------------------------------------------------- pixels


class FrameSource(Protocol):
    """Gives the RGB image of a clip frame: ``(H, W, 3)`` uint8, or ``None`` if absent."""

    def frame(self, clip_uid: str, frame: int) -> np.ndarray | None: ...


class InMemoryFrames:
    """:class:`FrameSource` over decoded clips: ``clip_uid -> (N, H, W, 3)`` uint8 RGB.

    Decode a clip at 30 fps with ``socialav.io.media.iter_frames(path, fps=30)``.
    """

    def __init__(self, clips: Mapping[str, np.ndarray]) -> None:
        self._clips = {}
        for uid, arr in clips.items():
            arr = np.asarray(arr)
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                raise ValueError(
                    f"clip {uid!r}: frames must be (N, H, W, 3) uint8, but got "
                    f"{arr.shape} {arr.dtype}"
                )
            self._clips[uid] = arr

    def frame(self, clip_uid: str, frame: int) -> np.ndarray | None:
        frames = self._clips.get(clip_uid)
        if frames is None:
            raise KeyError(f"no frames for clip {clip_uid!r}; known: {sorted(self._clips)}")
        if 0 <= frame < len(frames):
            return frames[frame]
        return None


class LamDataset(Dataset):
    """LAM samples as tensors for GazeLSTM.

    ``dataset[i]`` is ``{"frames": (W, 3, S, S) float32, "label": int64 scalar}``;
    ``dataset.samples[i]`` is the :class:`LamSample` (clip, track, frame) behind it.
    """

    def __init__(
        self,
        samples: Sequence[LamSample],
        frames: FrameSource,
        boxes: Mapping[tuple[str, str], Mapping[int, np.ndarray]],
        size_px: int = 224,
        scale: float = 0.0,
    ) -> None:
        """
        Args:
            samples: from :func:`lam_samples`.
            frames: image source.
            boxes: ``(clip_uid, track_id) -> {frame: xyxy}`` for the window frames (see
                :func:`lam_track_boxes`).
            size_px: crop size (224 in the baseline).
            scale: box expansion ratio (0 in the baseline).
        """
        self.samples = list(samples)
        self.frames = frames
        self.boxes = boxes
        self.size_px = size_px
        self.scale = scale

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        track_boxes = self.boxes[(sample.clip_uid, sample.track_id)]
        valid = []
        crops = []
        for f, in_track in zip(sample.window_frames, sample.window_valid, strict=True):
            image = self.frames.frame(sample.clip_uid, f) if in_track else None
            if image is None:
                valid.append(False)
                crops.append(np.zeros((self.size_px, self.size_px, 3), np.uint8))
                continue
            valid.append(True)
            crops.append(crop_face_box(image, track_boxes[f], self.size_px, self.scale))
        stack = np.stack(crops)[lam_window_sources(valid)]
        return {"frames": crops_to_tensor(stack), "label": torch.tensor(sample.label)}


def lam_track_boxes(clips: Sequence[Ego4dClip]) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    """``(clip_uid, track_id) -> {frame: (4,) xyxy}`` of every interpolated non-wearer track."""
    out: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for clip in clips:
        for person in clip.persons:
            if person.is_camera_wearer:
                continue
            for raw in person.tracks:
                track = interpolate_track(raw)
                out[(clip.clip_uid, track.track_id)] = dict(
                    zip(track.frames.tolist(), track.boxes_xyxy_px, strict=True)
                )
    return out


# ------------------------------------------------------------------- QuAVF visual quality


@dataclass(frozen=True)
class TtmVisualWindow:
    """One QuAVF visual-branch sample.

    Attributes:
        clip_uid, person_id: whose face.
        center_frame: the frame the window stands for (``None`` only for padding).
        frames: the window's frames (``None`` where there is no face or beyond the segment).
        quality: window quality (mean of per-frame quality, 0 for ``None`` frames).
        label: the segment's TTM label.
        segment_index: as :attr:`TtmSample.segment_index`.
    """

    clip_uid: str
    person_id: str
    center_frame: int | None
    frames: tuple[int | None, ...]
    quality: float
    label: int
    segment_index: int


class TtmVisualDataset(Dataset):
    """QuAVF visual-branch windows as tensors.

    ``dataset[i]`` is ``{"frames": (L, 3, S, S) float32 (zeros where no face), "quality":
    float32 scalar, "label": int64 scalar}``; ``dataset.windows[i]`` is the
    :class:`TtmVisualWindow`.
    """

    def __init__(
        self,
        windows: Sequence[TtmVisualWindow],
        frames: FrameSource,
        boxes: Mapping[tuple[str, str], Mapping[int, np.ndarray]],
        size_px: int = 224,
    ) -> None:
        """
        Args:
            windows: from :func:`build_ttm_visual_windows`.
            frames: image source.
            boxes: ``(clip_uid, person_id) -> {frame: xyxy}`` (``Ego4dClip.person_boxes_xyxy``).
            size_px: crop size (224 in QuAVF).
        """
        self.windows = list(windows)
        self.frames = frames
        self.boxes = boxes
        self.size_px = size_px

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        w = self.windows[index]
        crops = []
        present = []
        for f in w.frames:
            image = None if f is None else self.frames.frame(w.clip_uid, f)
            box = None if f is None else self.boxes[(w.clip_uid, w.person_id)].get(f)
            if image is None or box is None:
                crops.append(np.zeros((self.size_px, self.size_px, 3), np.uint8))
                present.append(False)
            else:
                crops.append(crop_face_box(image, box, self.size_px))
                present.append(True)
        tensor = crops_to_tensor(np.stack(crops))
        tensor[~torch.tensor(present)] = 0.0  # QuAVF feeds torch.zeros for missing frames
        return {
            "frames": tensor,
            "quality": torch.tensor(w.quality, dtype=torch.float32),
            "label": torch.tensor(w.label),
        }


def build_ttm_visual_windows(
    clips: Sequence[Ego4dClip],
    frames: FrameSource,
    *,
    train: bool,
    feat_length: int = 15,
    frame_stride: int = 15,
    data_stride: int = 8,
    score_threshold: float = 0.3,
    quality: QualityConfig | None = None,
    confidence: Callable[[str, str, int], float] | None = None,
) -> list[TtmVisualWindow]:
    """QuAVF visual windows of every non-wearer talking segment (whole segments, not sub-clips).

    Per frame of a segment, the face is the person's box at that frame (any track); its
    quality is :func:`frame_quality` of the crop (``confidence(clip_uid, person_id, frame)``
    or 1). Training keeps windows with quality ``>= score_threshold``; evaluation
    (``train=False``) gives one window per face frame.
    """
    out: list[TtmVisualWindow] = []
    for clip in clips:
        wearers = {p.person_id for p in clip.persons if p.is_camera_wearer}
        index = -1
        for seg in clip.talking:
            if seg.person is None:
                continue
            index += 1
            if seg.person in wearers or seg.person == "0":
                continue
            try:
                boxes = clip.person_boxes_xyxy(seg.person)
            except KeyError:
                boxes = {}
            fids: list[int | None] = []
            qual: list[float] = []
            for f in range(seg.start_frame, seg.end_frame + 1):
                box = boxes.get(f)
                image = None if box is None else frames.frame(clip.clip_uid, f)
                if box is None or image is None:
                    fids.append(None)
                    qual.append(0.0)
                    continue
                crop = face_box_pixels(image, box)
                conf = 1.0 if confidence is None else confidence(clip.clip_uid, seg.person, f)
                fids.append(f)
                qual.append(frame_quality(crop, box, conf, quality))
            for center, window, q in quavf_visual_windows(
                fids,
                qual,
                feat_length=feat_length,
                frame_stride=frame_stride,
                data_stride=data_stride,
                score_threshold=score_threshold if train else None,
            ):
                out.append(
                    TtmVisualWindow(
                        clip.clip_uid, seg.person, center, window, q, int(seg.talking_to_me), index
                    )
                )
    return out


# ----------------------------------------------------------------------- QuAVF audio


class TtmAudioDataset(Dataset):
    """QuAVF audio-branch samples: one per TTM sample (sub-clip) of a talking segment.

    ``dataset[i]`` is ``{"mel": (n_mels, T_mel) float32, "num_frames": int, "label": int}``
    with ``num_frames = int(len(audio) / sample_rate * fps)`` video frames, every one carrying
    the segment's label (QuAVF ``collater``). Audio is cut with :func:`ttm_audio_span`.
    """

    def __init__(
        self,
        samples: Sequence[TtmSample],
        audio: Mapping[str, np.ndarray],
        sample_rate: int = 16000,
        n_mels: int = 80,
        fps: float = EGO4D_FPS,
        max_frames: int | None = 900,
    ) -> None:
        """
        Args:
            samples: from :func:`ttm_samples`.
            audio: ``clip_uid -> (N,)`` mono audio of the whole clip.
            max_frames: longer samples are cut to their first ``max_frames`` video frames
                (QuAVF reads at most 30 s = 900 frames; it picks a random start, we take
                the first, for reproducibility).
        """
        self.samples = list(samples)
        self.audio = audio
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.fps = fps
        self.max_frames = max_frames

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, object]:
        s = self.samples[index]
        if s.clip_uid not in self.audio:
            raise KeyError(f"no audio for clip {s.clip_uid!r}")
        onset, offset = ttm_audio_span(s.start_frame, s.end_frame, self.sample_rate, self.fps)
        if self.max_frames is not None:
            offset = min(offset, onset + int(self.max_frames / self.fps * self.sample_rate))
        chunk = np.asarray(self.audio[s.clip_uid])[onset:offset]
        num_frames = int(len(chunk) / self.sample_rate * self.fps)
        if num_frames < 1:
            raise ValueError(
                f"sample {s.segment_id} frames {s.start_frame}-{s.end_frame}: expected audio "
                f"for at least one frame, but found {len(chunk)} samples"
            )
        mel = log_mel_spectrogram(chunk, self.sample_rate, self.n_mels)
        return {"mel": torch.from_numpy(mel), "num_frames": num_frames, "label": s.label}


def collate_ttm_audio(
    batch: Sequence[Mapping[str, object]], mel_rate_hz: float = 100.0, fps: float = EGO4D_FPS
) -> dict[str, torch.Tensor]:
    """Pad a batch of :class:`TtmAudioDataset` items.

    Returns ``{"mel": (B, n_mels, T_mel), "labels": (B, T_v) int64}`` where ``T_v =
    round(T_mel * fps / mel_rate_hz)`` and labels past a sample's ``num_frames`` are
    :data:`IGNORE_INDEX` (QuAVF pads to 30 s and labels beyond the length with -100).
    """
    mels = [item["mel"] for item in batch]
    t_mel = max(int(m.shape[-1]) for m in mels)  # type: ignore[union-attr]
    n_mels = int(mels[0].shape[0])  # type: ignore[union-attr]
    out = torch.zeros(len(batch), n_mels, t_mel)
    for i, m in enumerate(mels):
        out[i, :, : m.shape[-1]] = m  # type: ignore[union-attr]
    t_video = max(1, int(round(t_mel * fps / mel_rate_hz)))
    labels = torch.full((len(batch), t_video), IGNORE_INDEX, dtype=torch.int64)
    for i, item in enumerate(batch):
        n = min(int(item["num_frames"]), t_video)  # type: ignore[call-overload]
        labels[i, :n] = int(item["label"])  # type: ignore[call-overload]
    return {"mel": out, "labels": labels}
