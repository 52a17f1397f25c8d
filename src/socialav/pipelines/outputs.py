"""The output files of one detect result -- AVA CSV, RTTM, JSON, timeline PNG, annotated
video -- written all or nothing (a temporary folder, then renames)."""

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
) -> dict[str, Path]:
    """Write the requested outputs of one video, all or nothing.

    Everything is written into a temporary folder inside ``output_dir`` and then renamed into
    place, so an error (or Ctrl-C) leaves no partial file, and a rerun replaces old outputs.

    Returns:
        kind → final path, for the kinds written.

    Raises:
        OSError: the output folder cannot be created or written.
    """
    from socialav.io.annotate import write_annotated_video
    from socialav.io.plots import plot_timeline
    from socialav.io.writers import write_ava_csv, write_json, write_rttm

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
    video, tracks, scores = result.video, result.tracks, result.scores
    tmp_dir = Path(tempfile.mkdtemp(prefix=".socialav-", dir=output_dir))
    try:
        tmp = {k: tmp_dir / final[k].name for k in kinds}
        t = time.perf_counter()
        if "csv" in tmp:
            write_ava_csv(tmp["csv"], video, tracks, scores)
        if "rttm" in tmp:
            write_rttm(tmp["rttm"], video, scores)
        if "timeline" in tmp:
            plot_timeline(tmp["timeline"], video, scores, threshold=threshold)
        result.timings_s["write"] = time.perf_counter() - t
        if "video" in tmp:
            t = time.perf_counter()
            cb = (lambda done, total: progress("video", done, total)) if progress else None
            write_annotated_video(
                tmp["video"], video.path, video, tracks, scores, threshold=threshold, progress=cb
            )
            result.timings_s["video"] = time.perf_counter() - t
        if "json" in tmp:  # last, so that it records the output timings too
            info = result.run_info.with_timings(result.timings_s)
            write_json(tmp["json"], video, tracks, scores, dict(info))
        for kind, path in tmp.items():
            os.replace(path, final[kind])
        return {k: final[k] for k in kinds}
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
