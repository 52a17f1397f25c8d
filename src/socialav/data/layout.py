"""The on-disk layout of a prepared AVA-ActiveSpeaker / UniTalk dataset (TalkNet layout).

::

    ROOT/
      csv/<split>_orig.csv                                   annotations (one row per face)
      clips_videos/<split>/<video_id>/<entity_id>/<frame_timestamp>.jpg   face crops
      clips_audios/<split>/<video_id>/<entity_id>.wav        16 kHz mono audio of the entity
      clips_scenes/<split>/<video_id>/<frame_timestamp>.jpg  optional: full-scene images

This is the layout written by TalkNet's ``utils/preprocess.py`` (``--dataPreprocess``), read
by the TalkNet / Light-ASD / LR-ASD ``dataLoader.py``, and shipped by UniTalk (seed 004).
Face crops are named by their ``frame_timestamp`` with two decimals (``"%.2f"``), and the
entity's audio spans its first to its last annotated frame (``[t_first, t_last]`` seconds of
the source video).

``clips_scenes`` is our addition for scene-context models (TalkNet+DeiT, seed 002;
:mod:`socialav.models.scene_context`): one image per video and annotated timestamp, shared by
every entity of that video: the whole frame resized to ``S x S`` (``cv2.INTER_AREA``, aspect
ratio not kept; :func:`socialav.models.scene_context.scene_image`), stored as a JPEG (quality
95 without chroma subsampling, 4:4:4: on 112-px GRID scenes the default 4:2:0 changes pixels by
2.1 levels on average, more than consecutive frames differ (0.9), 4:4:4 by 1.2, at 6.6 kB per
image; BGR channel order in the file as every OpenCV-written JPEG; :func:`write_scene_image`
and :func:`read_scene_image` give and take RGB).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from socialav.io.atomic import atomic_write

__all__ = [
    "DatasetLayout",
    "timestamp_name",
    "SCENE_JPEG_QUALITY",
    "write_scene_image",
    "read_scene_image",
]

#: JPEG quality of the scene images (OpenCV's default, as the face crops; stored 4:4:4).
SCENE_JPEG_QUALITY = 95


def timestamp_name(frame_timestamp: float) -> str:
    """File stem of a face crop: the timestamp with two decimals (``900.97``)."""
    return f"{float(frame_timestamp):.2f}"


@dataclass(frozen=True)
class DatasetLayout:
    """Paths inside a prepared dataset root (see the module docstring).

    Entity ids contain ``:`` (``video_id:track``); they are used as folder and file names
    unchanged, as in the reference layout.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def csv_path(self, split: str) -> Path:
        return self.root / "csv" / f"{split}_orig.csv"

    def videos_dir(self, split: str) -> Path:
        return self.root / "clips_videos" / split

    def audios_dir(self, split: str) -> Path:
        return self.root / "clips_audios" / split

    def entity_dir(self, split: str, video_id: str, entity_id: str) -> Path:
        """Folder of one entity's face crops."""
        return self.videos_dir(split) / video_id / entity_id

    def face_path(self, split: str, video_id: str, entity_id: str, frame_timestamp: float) -> Path:
        """One face crop (JPEG) of an entity."""
        return (
            self.entity_dir(split, video_id, entity_id) / f"{timestamp_name(frame_timestamp)}.jpg"
        )

    def audio_path(self, split: str, video_id: str, entity_id: str) -> Path:
        """One entity's audio (16 kHz mono WAV)."""
        return self.audios_dir(split) / video_id / f"{entity_id}.wav"

    def scenes_dir(self, split: str) -> Path:
        return self.root / "clips_scenes" / split

    def scene_path(self, split: str, video_id: str, frame_timestamp: float) -> Path:
        """The full-scene image (JPEG) of a video at one ``frame_timestamp``."""
        return self.scenes_dir(split) / video_id / f"{timestamp_name(frame_timestamp)}.jpg"


def write_scene_image(path: str | Path, image_rgb: np.ndarray) -> None:
    """Write one scene image ``(S, S, 3)`` uint8 RGB as a JPEG (quality 95, 4:4:4), atomically
    (temporary file beside ``path`` + rename); creates the parent folder.

    Raises:
        ValueError: not a square ``(S, S, 3)`` uint8 image.
        RuntimeError: JPEG encoding failed.
    """
    if (
        image_rgb.ndim != 3
        or image_rgb.shape[2] != 3
        or image_rgb.shape[0] != image_rgb.shape[1]
        or image_rgb.dtype != np.uint8
    ):
        raise ValueError(
            f"a scene image must be (S, S, 3) uint8 RGB, but got {image_rgb.shape} "
            f"{image_rgb.dtype}"
        )
    path = Path(path)
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    params = [
        int(cv2.IMWRITE_JPEG_QUALITY),
        SCENE_JPEG_QUALITY,
        int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR),
        int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
    ]
    ok, data = cv2.imencode(".jpg", bgr, params)
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        fh.write(data.tobytes())


def read_scene_image(path: str | Path, size_px: int | None = None) -> np.ndarray:
    """Read one scene image as ``(S, S, 3)`` uint8 RGB.

    Args:
        path: the JPEG (:meth:`DatasetLayout.scene_path`).
        size_px: the side the caller expects (``None``: any square image).

    Raises:
        FileNotFoundError: the file is missing or unreadable (names the path and how to make
            it).
        ValueError: the image is not square, or not ``size_px`` wide.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(
            f"scene image {path} is missing or not a readable image (write the scenes with "
            f"`socialav data talkset ... --scenes` or `socialav data prepare ... --scenes`)"
        )
    height, width = image.shape[:2]
    if height != width or (size_px is not None and height != size_px):
        want = f"{size_px}x{size_px}" if size_px is not None else "square"
        raise ValueError(f"scene image {path}: expected {want} pixels, found {width}x{height}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
