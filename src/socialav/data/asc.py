"""Convert a prepared dataset to the layout of ASC / ASDNet (one folder per entity).

Reference: ``convert_to_ASC.py`` of UniTalk-ASD (github.com/plnguyen2908/UniTalk-ASD),
``python convert_to_ASC.py --source ROOT --destination DEST``, which

- copies ``ROOT/csv/`` to ``DEST/csv/`` as it is;
- creates ``DEST/clips_audios/{train,val}/`` and ``DEST/clips_videos/{train,val}/``;
- for the ``val`` split only, copies every entity folder
  ``clips_videos/val/<video_id>/<entity_id>/`` to ``DEST/clips_videos/val/<entity_id>/`` and
  every ``clips_audios/val/<video_id>/<entity_id>.wav`` to
  ``DEST/clips_audios/val/<entity_id>.wav`` (the video level is dropped);
- writes one ground-truth file per video, ``DEST/gt/<video_id>.csv``: the rows of
  ``csv/val_orig.csv`` for that video, without header or index.

We do the same (``splits=("val",)`` by default; pass more to convert them too), except that an
existing non-empty ``DEST`` is refused unless ``overwrite=True`` (the reference deletes it),
and the per-video files hold the columns in canonical order (the 8 AVA columns, then UniTalk's
``label_id`` and ``instance_id`` when present) with floats written exactly.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from socialav.data.layout import DatasetLayout
from socialav.data.trim import prepare_destination
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame

logger = logging.getLogger(__name__)

__all__ = ["AscResult", "convert_to_asc"]

#: Splits whose (possibly empty) folders the reference script creates.
ASC_SPLIT_FOLDERS = ("train", "val")


@dataclass
class AscResult:
    """Counts of what :func:`convert_to_asc` copied."""

    entities: int = 0
    audios: int = 0
    gt_files: int = 0


def convert_to_asc(
    root: str | Path,
    destination: str | Path,
    splits: tuple[str, ...] = ("val",),
    overwrite: bool = False,
) -> AscResult:
    """Write the ASC layout of ``root`` to ``destination`` (see the module docstring).

    Raises:
        FileNotFoundError: ``root/csv`` or ``root/csv/val_orig.csv`` is missing.
        FileExistsError, ValueError: see :func:`socialav.data.trim.prepare_destination`.
        FileExistsError: two videos hold an entity of the same id (ASC has one folder per
            entity).
    """
    source = DatasetLayout(Path(root))
    dest = Path(destination)
    csv_dir = source.root / "csv"
    gt_csv = source.csv_path("val")
    if not csv_dir.is_dir() or not gt_csv.is_file():
        raise FileNotFoundError(f"{gt_csv} not found: is {root} a prepared dataset root?")
    prepare_destination(dest, source.root, overwrite)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(csv_dir, dest / "csv")
    result = AscResult()
    for split in sorted(set(ASC_SPLIT_FOLDERS) | set(splits)):
        (dest / "clips_audios" / split).mkdir(parents=True, exist_ok=True)
        (dest / "clips_videos" / split).mkdir(parents=True, exist_ok=True)
    for split in splits:
        videos = source.videos_dir(split)
        audios = source.audios_dir(split)
        if videos.is_dir():
            for video in sorted(p for p in videos.iterdir() if p.is_dir()):
                for entity in sorted(p for p in video.iterdir() if p.is_dir()):
                    target = dest / "clips_videos" / split / entity.name
                    if target.exists():
                        raise FileExistsError(
                            f"entity {entity.name!r} appears under two videos; the ASC layout "
                            "needs unique entity ids"
                        )
                    shutil.copytree(entity, target)
                    result.entities += 1
        if audios.is_dir():
            for video in sorted(p for p in audios.iterdir() if p.is_dir()):
                for wav in sorted(video.glob("*.wav")):
                    shutil.copy2(wav, dest / "clips_audios" / split / wav.name)
                    result.audios += 1
    table = read_ava_csv(gt_csv, "groundtruth")
    (dest / "gt").mkdir(exist_ok=True)
    for video_id, rows in table.groupby("video_id", sort=True):
        write_ava_csv_frame(rows, dest / "gt" / f"{video_id}.csv", "groundtruth", header=False)
        result.gt_files += 1
    return result
