"""Torch ``Dataset`` over the entities of a prepared AVA-ActiveSpeaker / UniTalk / TalkSet split.

Details and sources: ``docs/datasets.md`` (The training Dataset: sampling and augmentation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from scipy.io import wavfile
from torch.utils.data import Dataset, Sampler

from socialav.data.entity import entity_fps, entity_mfcc
from socialav.data.layout import DatasetLayout, read_scene_image
from socialav.io.ava_csv import AvaLabel, read_ava_csv
from socialav.models.scene_context import scene_input
from socialav.types import AUDIO_SAMPLE_RATE, MFCC_FRAMES_PER_VIDEO_FRAME

logger = logging.getLogger(__name__)

__all__ = [
    "AugmentConfig",
    "EntityRecord",
    "Chunk",
    "AsdEntityDataset",
    "LengthGroupedBatchSampler",
    "collate_chunks",
    "read_entities",
    "load_face",
    "entity_mfcc",
    "mix_noise",
]

#: Side of the faces given to the models (``H = 112`` in ``load_visual``).
FACE_PX = 112


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations of the reference ``dataLoader.py`` (all off = evaluation).

    Attributes:
        visual: per sample one of ``orig``, ``flip``, ``crop``, ``rotate`` with equal
            probability (``load_visual`` with ``visualAug=True``).
        crop_fraction_range: side of the random crop relative to 112 (``uniform(0.7, 1)``).
        rotation_deg: rotations are drawn from ``uniform(-rotation_deg, rotation_deg)`` (15).
        audio_noise: with probability 1/2 mix another entity's audio into the sample
            (``load_audio`` with ``audioAug=True``, ``overlap``).
        snr_db_range: SNR of that mixture in dB (``uniform(-5, 5)``).
    """

    visual: bool = False
    crop_fraction_range: tuple[float, float] = (0.7, 1.0)
    rotation_deg: float = 15.0
    audio_noise: bool = False
    snr_db_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        lo, hi = self.crop_fraction_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_fraction_range must satisfy 0 < lo <= hi <= 1, got {lo, hi}")
        if self.snr_db_range[0] > self.snr_db_range[1]:
            raise ValueError(f"snr_db_range must be (low, high), got {self.snr_db_range}")

    @classmethod
    def reference(cls) -> AugmentConfig:
        """Both augmentations on, as the reference ``train_loader``."""
        return cls(visual=True, audio_noise=True)


@dataclass(frozen=True)
class EntityRecord:
    """The annotated frames of one entity (one face track) of a split.

    Attributes:
        video_id, entity_id: AVA ids.
        frame_timestamps_s: ``(T,)`` float64 increasing ``frame_timestamp`` values.
        labels: ``(T,)`` int64, 1 where the label is ``SPEAKING_AUDIBLE``.
        fps: frame rate used for the MFCC window (see :func:`entity_fps`).
    """

    video_id: str
    entity_id: str
    frame_timestamps_s: np.ndarray
    labels: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.frame_timestamps_s)


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of entity ``entity_index`` (an index into ``entities``)."""

    entity_index: int
    start: int
    stop: int

    @property
    def num_frames(self) -> int:
        return self.stop - self.start


def read_entities(
    layout: DatasetLayout, split: str, csv_path: str | Path | None = None
) -> list[EntityRecord]:
    """Entities of a split from its ground-truth CSV, sorted by ``(video_id, entity_id)``.

    Args:
        layout: the dataset root.
        split: ``train``, ``val``, ``test`` (any name with a ``csv/<split>_orig.csv``).
        csv_path: another annotation CSV for the split (AVA or UniTalk layout).

    Raises:
        FileNotFoundError: the CSV does not exist.
        AvaCsvError: the CSV is malformed (see :func:`socialav.io.ava_csv.read_ava_csv`).
        ValueError: an ``entity_id`` appears in two videos, or has duplicate timestamps.
    """
    path = Path(csv_path) if csv_path is not None else layout.csv_path(split)
    if not path.is_file():
        raise FileNotFoundError(f"annotation CSV {path} not found (expected csv/{split}_orig.csv)")
    table = read_ava_csv(path, "groundtruth")
    return entities_from_table(table, source=str(path))


def entities_from_table(table: pd.DataFrame, source: str = "table") -> list[EntityRecord]:
    """:func:`read_entities` on an already read ground-truth table."""
    entities: list[EntityRecord] = []
    for entity_id, rows in table.groupby("entity_id", sort=True):
        videos = rows["video_id"].unique()
        if len(videos) != 1:
            raise ValueError(
                f"{source}: entity_id {entity_id!r} appears in several videos {list(videos)}"
            )
        rows = rows.sort_values("frame_timestamp", kind="stable")
        ts = rows["frame_timestamp"].to_numpy(np.float64)
        if len(ts) > 1 and np.any(np.diff(ts) <= 0):
            raise ValueError(f"{source}: entity_id {entity_id!r} has duplicate frame_timestamp")
        labels = (rows["label"].to_numpy() == AvaLabel.SPEAKING_AUDIBLE.value).astype(np.int64)
        entities.append(EntityRecord(str(videos[0]), str(entity_id), ts, labels, entity_fps(ts)))
    entities.sort(key=lambda e: (e.video_id, e.entity_id))
    return entities


def load_face(path: Path) -> np.ndarray:
    """One face crop as ``(112, 112)`` uint8 gray (``imread`` colour -> ``BGR2GRAY`` -> resize).

    Raises:
        FileNotFoundError: the JPEG is missing or unreadable.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"face crop {path} is missing or not a readable image")
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if gray.shape != (FACE_PX, FACE_PX):
        gray = cv2.resize(gray, (FACE_PX, FACE_PX))
    return gray


def read_wav_int16(path: Path) -> np.ndarray:
    """A 16 kHz mono int16 WAV as ``(N,)`` int16.

    Raises:
        FileNotFoundError: missing file. ValueError: other rate, channels or sample type.
    """
    if not path.is_file():
        raise FileNotFoundError(f"entity audio {path} not found")
    rate, audio = wavfile.read(str(path))
    if rate != AUDIO_SAMPLE_RATE:
        raise ValueError(f"{path}: expected {AUDIO_SAMPLE_RATE} Hz audio, found {rate} Hz")
    if audio.ndim != 1 or audio.dtype != np.int16:
        raise ValueError(
            f"{path}: expected mono int16 samples, found shape {audio.shape} dtype {audio.dtype}"
        )
    return audio


def mix_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``audio`` at ``snr_db`` (TalkNet ``overlap``), int16 in and out.

    ``noise`` is wrap-padded or cut to ``len(audio)``; levels are
    ``10 log10(mean(x^2) + 1e-4)`` dB; the noise is scaled by
    ``sqrt(10 ** ((clean_db - noise_db - snr_db) / 10))``; the sum is clipped to int16.
    """
    clean = audio.astype(np.float64)
    other = noise.astype(np.float64)
    if len(clean) == 0:
        return audio.copy()
    if len(other) == 0:
        other = np.zeros_like(clean)
    if len(other) < len(clean):
        other = np.pad(other, (0, len(clean) - len(other)), mode="wrap")
    other = other[: len(clean)]
    noise_db = 10 * np.log10(np.mean(other**2) + 1e-4)
    clean_db = 10 * np.log10(np.mean(clean**2) + 1e-4)
    mixed = clean + np.sqrt(10 ** ((clean_db - noise_db - snr_db) / 10)) * other
    return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)


def augment_faces(faces: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Apply one of the reference's visual augmentations to ``(T, 112, 112)`` uint8 faces."""
    kind = ("orig", "flip", "crop", "rotate")[int(rng.integers(4))]
    if kind == "orig":
        return faces
    if kind == "flip":
        return np.ascontiguousarray(faces[:, :, ::-1])
    if kind == "crop":
        lo, hi = config.crop_fraction_range
        side = min(int(FACE_PX * rng.uniform(lo, hi)), FACE_PX - 1)
        x, y = (int(v) for v in rng.integers(0, FACE_PX - side, size=2))
        return np.stack(
            [cv2.resize(f[y : y + side, x : x + side], (FACE_PX, FACE_PX)) for f in faces]
        )
    angle = rng.uniform(-config.rotation_deg, config.rotation_deg)
    matrix = cv2.getRotationMatrix2D((FACE_PX / 2, FACE_PX / 2), angle, 1)
    return np.stack([cv2.warpAffine(f, matrix, (FACE_PX, FACE_PX)) for f in faces])


def make_chunks(entities: Sequence[EntityRecord], max_chunk_frames: int | None) -> list[Chunk]:
    """Cut each entity into ``ceil(T / max_chunk_frames)`` near-equal consecutive chunks
    (one chunk per entity when ``max_chunk_frames`` is ``None``)."""
    chunks: list[Chunk] = []
    for index, entity in enumerate(entities):
        total = entity.num_frames
        pieces = 1 if not max_chunk_frames else max(1, math.ceil(total / max_chunk_frames))
        bounds = np.linspace(0, total, pieces + 1).round().astype(int)
        chunks.extend(
            Chunk(index, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        )
    return chunks


class AsdEntityDataset(Dataset):
    """Chunks of the entities of one prepared split (see the module docstring).

    Args:
        root: dataset root (:class:`~socialav.data.layout.DatasetLayout`).
        split: split name (``train``, ``val``, ...).
        max_chunk_frames: longest chunk in frames (``None``: whole entities, as the
            reference); 250 = 10 s at 25 fps by default.
        augment: augmentations (default: none).
        seed: base seed of the per-sample random generators.
        csv_path: annotation CSV instead of ``csv/<split>_orig.csv``.
        scenes: also read the scene image of every frame (for scene-context models).
        scene_size_px: the scene side ``S`` the model takes (``None``: whatever the files
            have; they must then all be of one size for batches to stack).

    Items: dict with ``faces`` ``(T, 112, 112)`` uint8 tensor, ``mfcc`` ``(4T, 13)`` float32,
    ``labels`` ``(T,)`` int64, ``index`` (int, the chunk index); with ``scenes=True`` also
    ``scenes`` ``(T, 3, S, S)`` float32 RGB in [0, 1].

    Raises:
        FileNotFoundError: missing CSV, or an entity whose face folder or WAV is missing, or
            (``scenes=True``) a video without a scene folder; reading a sample whose scene
            image is missing raises it naming the file.
        ValueError: ``max_chunk_frames < 1`` or an empty split; a scene image of another
            size than ``scene_size_px``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        max_chunk_frames: int | None = 250,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        csv_path: str | Path | None = None,
        scenes: bool = False,
        scene_size_px: int | None = None,
    ) -> None:
        if max_chunk_frames is not None and max_chunk_frames < 1:
            raise ValueError(f"max_chunk_frames must be >= 1 or None, got {max_chunk_frames}")
        self.layout = DatasetLayout(Path(root))
        self.split = split
        self.augment = augment or AugmentConfig()
        self.seed = int(seed)
        self.epoch = 0
        path = Path(csv_path) if csv_path is not None else self.layout.csv_path(split)
        if not path.is_file():
            raise FileNotFoundError(
                f"annotation CSV {path} not found (expected csv/{split}_orig.csv)"
            )
        #: The split's ground-truth table (:func:`~socialav.io.ava_csv.read_ava_csv`).
        self.groundtruth = read_ava_csv(path, "groundtruth")
        self.entities = entities_from_table(self.groundtruth, source=str(path))
        if not self.entities:
            raise ValueError(f"split {split!r} of {root} has no annotated entities")
        for entity in self.entities:
            folder = self.layout.entity_dir(split, entity.video_id, entity.entity_id)
            wav = self.layout.audio_path(split, entity.video_id, entity.entity_id)
            if not folder.is_dir() or not wav.is_file():
                raise FileNotFoundError(
                    f"entity {entity.entity_id!r} of split {split!r}: expected face crops in "
                    f"{folder} and audio {wav}; found "
                    f"{'folder' if folder.is_dir() else 'no folder'} and "
                    f"{'wav' if wav.is_file() else 'no wav'} (run `socialav data prepare`)"
                )
        self.scenes = bool(scenes)
        self.scene_size_px = scene_size_px
        if self.scenes:
            for video_id in sorted({e.video_id for e in self.entities}):
                folder = self.layout.scenes_dir(split) / video_id
                if not folder.is_dir():
                    raise FileNotFoundError(
                        f"video {video_id!r} of split {split!r}: expected scene images in "
                        f"{folder}, found no folder (write them with `socialav data talkset "
                        f"... --scenes` or `socialav data prepare ... --scenes`)"
                    )
        self.chunks = make_chunks(self.entities, max_chunk_frames)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of an epoch (call before iterating)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def lengths(self) -> np.ndarray:
        """``(len(self),)`` int64 chunk lengths in frames."""
        return np.array([c.num_frames for c in self.chunks], dtype=np.int64)

    def chunk_keys(self, index: int) -> tuple[str, str, np.ndarray]:
        """``(video_id, entity_id, frame_timestamps_s)`` of chunk ``index``."""
        chunk = self.chunks[index]
        entity = self.entities[chunk.entity_index]
        return (
            entity.video_id,
            entity.entity_id,
            entity.frame_timestamps_s[chunk.start : chunk.stop],
        )

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def _audio(self, entity_index: int) -> np.ndarray:
        e = self.entities[entity_index]
        return read_wav_int16(self.layout.audio_path(self.split, e.video_id, e.entity_id))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not 0 <= index < len(self.chunks):
            raise IndexError(f"chunk index {index} out of range [0, {len(self.chunks)})")
        chunk = self.chunks[index]
        entity = self.entities[chunk.entity_index]
        rng = self._rng(index)
        audio = self._audio(chunk.entity_index)
        if self.augment.audio_noise and len(self.entities) > 1 and rng.integers(2) == 1:
            other = int(rng.integers(len(self.entities) - 1))
            other += other >= chunk.entity_index
            audio = mix_noise(audio, self._audio(other), rng.uniform(*self.augment.snr_db_range))
        mfcc = entity_mfcc(audio, entity.num_frames, entity.fps)
        a, b = chunk.start, chunk.stop
        mfcc = mfcc[MFCC_FRAMES_PER_VIDEO_FRAME * a : MFCC_FRAMES_PER_VIDEO_FRAME * b]
        faces = np.stack(
            [
                load_face(self.layout.face_path(self.split, entity.video_id, entity.entity_id, t))
                for t in entity.frame_timestamps_s[a:b]
            ]
        )
        if self.augment.visual:
            faces = augment_faces(faces, rng, self.augment)
        sample: dict[str, torch.Tensor | int] = {
            "faces": torch.from_numpy(np.ascontiguousarray(faces)),
            "mfcc": torch.from_numpy(mfcc),
            "labels": torch.from_numpy(entity.labels[a:b].copy()),
            "index": int(index),
        }
        if self.scenes:
            sample["scenes"] = torch.from_numpy(
                self.load_scenes(entity.video_id, entity.frame_timestamps_s[a:b])
            )
        return sample

    def load_scenes(self, video_id: str, frame_timestamps_s: np.ndarray) -> np.ndarray:
        """Scene images of ``video_id`` at the given timestamps as ``(T, 3, S, S)`` float32
        RGB in [0, 1].

        Raises:
            FileNotFoundError: a scene image is missing (names it).
            ValueError: images of another size than ``scene_size_px`` or of mixed sizes.
        """
        images = [
            read_scene_image(self.layout.scene_path(self.split, video_id, t), self.scene_size_px)
            for t in frame_timestamps_s
        ]
        sizes = {im.shape[0] for im in images}
        if len(sizes) > 1:
            raise ValueError(
                f"scene images of video {video_id!r} ({self.layout.scenes_dir(self.split)}) "
                f"have mixed sizes {sorted(sizes)}; expected one size"
            )
        return np.ascontiguousarray(scene_input(np.stack(images)))


def collate_chunks(samples: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Stack samples cut to the shortest (``T``): ``faces (B, T, 112, 112)`` uint8,
    ``mfcc (B, 4T, 13)``, ``labels (B, T)``, ``index (B,)``, and ``scenes (B, T, 3, S, S)``
    float32 when the samples have scenes.

    Raises:
        ValueError: an empty batch, or some samples with scenes and some without.
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    frames = min(int(s["labels"].shape[0]) for s in samples)
    audio = MFCC_FRAMES_PER_VIDEO_FRAME * frames
    batch = {
        "faces": torch.stack([s["faces"][:frames] for s in samples]),
        "mfcc": torch.stack([s["mfcc"][:audio] for s in samples]),
        "labels": torch.stack([s["labels"][:frames] for s in samples]),
        "index": torch.tensor([int(s["index"]) for s in samples], dtype=torch.int64),
    }
    with_scenes = sum("scenes" in s for s in samples)
    if with_scenes == len(samples):
        batch["scenes"] = torch.stack([s["scenes"][:frames] for s in samples])
    elif with_scenes:
        raise ValueError(
            f"{with_scenes} of {len(samples)} samples have scenes; expected all or none"
        )
    return batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Mini-batches of chunks of similar length (the reference ``train_loader`` grouping).

    Chunks are sorted by length (longest first; ties by index); from the first unbatched
    chunk of length ``L`` a batch takes ``max(max_frames_per_batch // L, 1)`` chunks. The
    batch list is fixed; its order is shuffled per epoch (``shuffle=True``) from
    ``(seed, epoch)``. For distributed training the list is padded by repetition to a multiple
    of ``world_size`` and rank ``r`` takes batches ``r, r + world_size, ...``.

    Args:
        lengths: ``(N,)`` chunk lengths in frames.
        max_frames_per_batch: frame budget of a batch (2000 in Light-ASD, 2500 in TalkNet).
        shuffle, seed: batch order.
        rank, world_size: this process's share.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        max_frames_per_batch: int = 2000,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if max_frames_per_batch < 1:
            raise ValueError(f"max_frames_per_batch must be >= 1, got {max_frames_per_batch}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got {rank}")
        if len(lengths) == 0:
            raise ValueError("no chunks to batch")
        order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
        batches: list[list[int]] = []
        start = 0
        while start < len(order):
            size = max(max_frames_per_batch // int(lengths[order[start]]), 1)
            batches.append(order[start : start + size])
            start += size
        self.batches = batches
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the batch order of ``epoch``; iteration starts at this rank's batch
        ``start_batch`` (to resume inside an epoch)."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def _epoch_batches(self) -> list[list[int]]:
        batches = list(self.batches)
        if self.shuffle:
            perm = np.random.default_rng((self.seed, self.epoch, 7)).permutation(len(batches))
            batches = [batches[i] for i in perm]
        pad = (-len(batches)) % self.world_size
        batches += [batches[i % len(batches)] for i in range(pad)]
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._epoch_batches()[self.start_batch :])

    def __len__(self) -> int:
        """Batches of this rank in a whole epoch (ignores ``start_batch``)."""
        return math.ceil(len(self.batches) / self.world_size)
