"""The output files of one detect result -- AVA CSV, RTTM, JSON, timeline PNG, annotated
video, HTML report -- written all or nothing (a temporary folder, then renames)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from socialav.pipelines.result import DetectResult

__all__ = ["OUTPUT_SUFFIXES", "output_paths", "outputs_exist", "write_outputs"]

#: ``progress(stage, done, total)``; ``total`` may be None when unknown.
Progress = Callable[[str, int, int | None], None]

#: Output kinds and their file suffixes (``<stem><suffix>`` in the output folder).
OUTPUT_SUFFIXES: dict[str, str] = {
    "csv": ".ava.csv",
    "rttm": ".rttm",
    "json": ".json",
    "timeline": ".timeline.png",
    "video": ".annotated.mp4",
    "report": ".report.html",
}


def output_paths(video_path: str | Path, output_dir: str | Path) -> dict[str, Path]:
    """Where each output of one video goes: ``<output_dir>/<stem><suffix>``."""
    stem = Path(video_path).stem
    return {kind: Path(output_dir) / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def outputs_exist(video_path: str | Path, output_dir: str | Path, kinds: Iterable[str]) -> bool:
    """True if every requested output of this video is already in ``output_dir``."""
    paths = output_paths(video_path, output_dir)
    return all(paths[k].is_file() for k in kinds)


def write_outputs(
    result: DetectResult,
    output_dir: str | Path,
    kinds: Iterable[str] = tuple(OUTPUT_SUFFIXES),
    threshold: float | None = None,
    progress: Progress | None = None,
    report_embed: bool = False,
) -> dict[str, Path]:
    """Write the requested outputs of one video, all or nothing.

    Everything is written into a temporary folder inside ``output_dir`` and then renamed into
    place, so an error (or Ctrl-C) leaves no partial file, and a rerun replaces old outputs.
    With persons (``result.persons``, the diarization), the RTTM names persons, the CSV gains a
    ``person_id`` column, the JSON a ``persons`` list and a ``person_id`` per track, and the
    timeline has one row per person. The JSON is written after the others (it records their
    timings); the report last (it links them; ``report_embed`` inlines its video, see
    :func:`socialav.io.report.write_report`).

    Returns:
        kind -> final path, for the kinds written.

    Raises:
        ValueError: an unknown output kind.
        OSError: the output folder cannot be created or written.
    """
    from socialav.diarization.outputs import (
        add_persons_to_record,
        write_ava_csv_with_persons,
        write_person_rttm,
        write_person_timeline,
    )
    from socialav.io.annotate import write_annotated_video
    from socialav.io.plots import plot_timeline
    from socialav.io.report import browser_playable, video_href, write_report
    from socialav.io.writers import detection_record, write_ava_csv, write_record, write_rttm

    kinds = list(kinds)
    unknown = set(kinds) - set(OUTPUT_SUFFIXES)
    if unknown:
        raise ValueError(
            f"unknown output kinds {sorted(unknown)}; expected {list(OUTPUT_SUFFIXES)}"
        )
    threshold = result.run_info.segments["threshold"] if threshold is None else threshold
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_paths(result.video.path, output_dir)
    video, tracks, scores, persons = result.video, result.tracks, result.scores, result.persons
    tmp_dir = Path(tempfile.mkdtemp(prefix=".socialav-", dir=output_dir))
    try:
        tmp = {k: tmp_dir / final[k].name for k in kinds}
        t = time.perf_counter()
        if "csv" in tmp:
            if persons is not None:
                write_ava_csv_with_persons(
                    tmp["csv"], video, tracks, scores, persons.track_to_person
                )
            else:
                write_ava_csv(tmp["csv"], video, tracks, scores)
        if "rttm" in tmp:
            if persons is not None:
                write_person_rttm(tmp["rttm"], video.video_id, persons.persons)
            else:
                write_rttm(tmp["rttm"], video, scores)
        if "timeline" in tmp:
            if persons is not None and persons.persons:
                write_person_timeline(tmp["timeline"], video, persons.persons)
            else:
                plot_timeline(tmp["timeline"], video, scores, threshold=threshold)
        result.timings_s["write"] = time.perf_counter() - t
        if "video" in tmp:
            t = time.perf_counter()
            cb = (lambda done, total: progress("video", done, total)) if progress else None
            write_annotated_video(
                tmp["video"], video.path, video, tracks, scores, threshold=threshold, progress=cb
            )
            result.timings_s["video"] = time.perf_counter() - t
        record = None
        if "json" in tmp or "report" in tmp:
            info = result.run_info.with_timings(result.timings_s)
            record = detection_record(video, tracks, scores, dict(info))
            if persons is not None:
                record = add_persons_to_record(record, persons, info=False)
        if "json" in tmp:
            write_record(tmp["json"], record)
        if "report" in tmp:  # last: it links the other outputs
            t = time.perf_counter()
            links = {k: video_href(final[k], output_dir) for k in tmp if k != "report"}
            embed = None
            if report_embed:
                playable = browser_playable(video.video_codec, video.path)
                embed = video.path if playable else tmp.get("video")
            write_report(
                tmp["report"],
                record,
                video_href=video_href(video.path, output_dir),
                fallback_video_href=links.get("video"),
                output_links=links,
                embed_video=embed,
                source_video=video.path,
            )
            result.timings_s["report"] = time.perf_counter() - t
        for kind, path in tmp.items():
            os.replace(path, final[kind])
        return {k: final[k] for k in kinds}
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
