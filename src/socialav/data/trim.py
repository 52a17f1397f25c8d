"""Keep a subset of videos of a prepared split (UniTalk's sub-category evaluation sets).

Reference: ``trim_dataset.py`` of UniTalk-ASD (github.com/plnguyen2908/UniTalk-ASD), run as
``python trim_dataset.py --path ROOT --new_path NEW_ROOT --list sub_categories/test_<c>.csv``.
It reads ``ROOT/csv/val_orig.csv``, keeps the rows whose ``video_id`` is in the list, copies
``clips_audios/val/<video_id>/`` and ``clips_videos/val/<video_id>/`` of each listed video
that exists, and writes the kept rows to ``NEW_ROOT/csv/val_orig.csv``; ``NEW_ROOT`` is
deleted first if it exists.

We do the same for any split (``val`` by default), with these differences: an existing,
non-empty ``NEW_ROOT`` is refused unless ``overwrite=True`` (the reference deletes it
silently); the CSV is written without pandas' index column (the reference writes one, which
our reader ignores); listed videos that are absent from the CSV or from the clip folders are
reported; the preparation state of the kept entities is copied too, so ``socialav data
prepare`` sees them as complete.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from socialav.data.layout import DatasetLayout
from socialav.data.prepare import STATE_DIR
from socialav.io.ava_csv import read_ava_csv, read_video_id_list, write_ava_csv_frame

logger = logging.getLogger(__name__)

__all__ = ["TrimResult", "trim_dataset", "prepare_destination"]


@dataclass
class TrimResult:
    """What :func:`trim_dataset` kept.

    Attributes:
        videos_kept: listed videos copied (present in the CSV and in the clip folders).
        num_rows: CSV rows kept.
        not_in_csv: listed videos with no row in the CSV.
        missing_clips: listed videos in the CSV whose clip folders are absent.
    """

    videos_kept: list[str] = field(default_factory=list)
    num_rows: int = 0
    not_in_csv: list[str] = field(default_factory=list)
    missing_clips: list[str] = field(default_factory=list)


def prepare_destination(destination: Path, source: Path, overwrite: bool) -> None:
    """Make sure ``destination`` can be written: it must not be ``source`` or inside it, and
    must be absent or empty unless ``overwrite`` (then it is deleted).

    Raises:
        ValueError: ``destination`` is ``source`` or inside it.
        FileExistsError: ``destination`` exists, is not empty, and ``overwrite`` is False.
    """
    src, dst = source.resolve(), destination.resolve()
    if dst == src or src in dst.parents:
        raise ValueError(
            f"the destination {destination} must not be the source {source} or inside it"
        )
    if destination.exists():
        if destination.is_dir() and not any(destination.iterdir()):
            return
        if not overwrite:
            raise FileExistsError(
                f"{destination} exists and is not empty; choose another folder or pass --overwrite"
            )
        if destination.is_dir():
            shutil.rmtree(destination)
        else:
            destination.unlink()


def trim_dataset(
    root: str | Path,
    video_list: str | Path,
    destination: str | Path,
    split: str = "val",
    overwrite: bool = False,
) -> TrimResult:
    """Copy the listed videos of ``split`` from ``root`` to ``destination`` (see module doc).

    Args:
        root: prepared dataset root.
        video_list: one ``video_id`` per line (UniTalk ``sub_categories/test_<category>.csv``).
        destination: new dataset root.
        split: split to trim (UniTalk's script handles ``val`` only).
        overwrite: replace a non-empty ``destination``.

    Returns:
        :class:`TrimResult`.

    Raises:
        FileNotFoundError: ``root/csv/<split>_orig.csv`` or the list does not exist.
        FileExistsError, ValueError: see :func:`prepare_destination`.
        AvaCsvError: malformed CSV or empty list.
    """
    source = DatasetLayout(Path(root))
    target = DatasetLayout(Path(destination))
    csv_path = source.csv_path(split)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} not found: is {root} a prepared dataset root?")
    wanted = read_video_id_list(video_list)
    table = read_ava_csv(csv_path, "groundtruth")
    prepare_destination(target.root, source.root, overwrite)

    result = TrimResult()
    present = set(table["video_id"].unique())
    keep: list[str] = []
    for video_id in wanted:
        if video_id not in present:
            result.not_in_csv.append(video_id)
            continue
        keep.append(video_id)
    target.videos_dir(split).mkdir(parents=True, exist_ok=True)
    target.audios_dir(split).mkdir(parents=True, exist_ok=True)
    for video_id in keep:
        clips = source.videos_dir(split) / video_id
        audios = source.audios_dir(split) / video_id
        if not clips.is_dir() or not audios.is_dir():
            result.missing_clips.append(video_id)
            continue
        shutil.copytree(clips, target.videos_dir(split) / video_id)
        shutil.copytree(audios, target.audios_dir(split) / video_id)
        state = source.root / STATE_DIR / split / video_id
        if state.is_dir():
            shutil.copytree(state, target.root / STATE_DIR / split / video_id)
        result.videos_kept.append(video_id)
    rows = table[table["video_id"].isin(set(keep))]
    target.csv_path(split).parent.mkdir(parents=True, exist_ok=True)
    result.num_rows = write_ava_csv_frame(rows, target.csv_path(split), "groundtruth")
    if result.not_in_csv:
        logger.warning("%d listed videos have no row in %s", len(result.not_in_csv), csv_path)
    return result
