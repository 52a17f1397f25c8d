"""The on-disk layout of a prepared AVA-ActiveSpeaker / UniTalk dataset (TalkNet layout).

::

    ROOT/
      csv/<split>_orig.csv                                   annotations (one row per face)
      clips_videos/<split>/<video_id>/<entity_id>/<frame_timestamp>.jpg   face crops
      clips_audios/<split>/<video_id>/<entity_id>.wav        16 kHz mono audio of the entity

This is the layout written by TalkNet's ``utils/preprocess.py`` (``--dataPreprocess``), read
by the TalkNet / Light-ASD / LR-ASD ``dataLoader.py``, and shipped by UniTalk (seed 004).
Face crops are named by their ``frame_timestamp`` with two decimals (``"%.2f"``), and the
entity's audio spans its first to its last annotated frame (``[t_first, t_last]`` seconds of
the source video).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DatasetLayout", "timestamp_name"]


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
