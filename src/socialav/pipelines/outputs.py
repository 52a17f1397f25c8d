"""The output files of one detect result -- AVA CSV, RTTM, JSON, timeline PNG, annotated
video, HTML report -- written all or nothing (a temporary folder, then renames)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socialav.pipelines.result import DetectResult

__all__ = [
    "OUTPUT_SUFFIXES",
    "TEMP_PREFIX",
    "is_output_file",
    "output_paths",
    "outputs_exist",
    "recorded_settings",
    "remove_stale_temporaries",
    "settings_differences",
    "unique_stems",
    "write_outputs",
]

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


#: Prefix of the temporary folder each video's outputs are written into before the renames;
#: the folder is named ``<prefix><pid>-<host tag>-<random>`` so that its owner is known from
#: the moment it exists (a run killed right after creating it is still recognised as dead).
TEMP_PREFIX = ".socialav-"
#: The owner record of temporary folders made by earlier versions (read, no longer written).
_OWNER_FILE = "owner.json"
#: A temporary folder whose owner cannot be checked counts as stale after this long.
STALE_AFTER_S = 6 * 3600.0


def output_paths(
    video_path: str | Path, output_dir: str | Path, stem: str | None = None
) -> dict[str, Path]:
    """Where each output of one video goes: ``<output_dir>/<stem><suffix>`` (``stem``
    defaults to the video's file stem; see :func:`unique_stems` for a batch)."""
    stem = Path(video_path).stem if stem is None else stem
    return {kind: Path(output_dir) / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def outputs_exist(
    video_path: str | Path, output_dir: str | Path, kinds: Iterable[str], stem: str | None = None
) -> bool:
    """True if every requested output of this video is already in ``output_dir``."""
    paths = output_paths(video_path, output_dir, stem)
    return all(paths[k].is_file() for k in kinds)


def is_output_file(path: str | Path) -> bool:
    """Whether a file name looks like a socialav output (``*.annotated.mp4``, ``*.ava.csv``
    ...): a folder run never takes those as input videos."""
    name = Path(path).name
    return any(name.endswith(suffix) for suffix in OUTPUT_SUFFIXES.values())


def unique_stems(videos: Sequence[str | Path]) -> dict[Path, str]:
    """An output stem per input video, unique within the batch.

    A video keeps its file stem unless another input has the same one; then the stems of
    the colliding videos are prefixed with as many parent folder names as it takes to tell
    them apart (``a/clip.mp4`` -> ``a__clip``, ``b/clip.mp4`` -> ``b__clip``), and videos
    that differ only by extension get it appended (``x.mp4`` -> ``x_mp4``, ``x.mkv`` ->
    ``x_mkv``). The same input listed twice is one video.

    Returns:
        resolved path -> stem.
    """
    paths = list(dict.fromkeys(Path(v).resolve() for v in videos))
    stems = {p: p.stem for p in paths}
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(p.stem, []).append(p)
    for stem, members in groups.items():
        if len(members) == 1:
            continue
        names = {p: stem for p in members}
        if len({p.parent for p in members}) > 1:  # different folders: prefix folder names
            for depth in range(1, max(len(p.parent.parts) for p in members) + 1):
                names = {
                    p: "__".join([*p.parent.parts[len(p.parent.parts) - depth :], stem])
                    for p in members
                }
                if len(set(names.values())) == len(members):
                    break
        if len(set(names.values())) < len(members):  # same folder: tell them by extension
            names = {p: f"{names[p]}_{p.suffix.lstrip('.').lower() or 'noext'}" for p in members}
        stems.update(names)
    return stems


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _host_tag() -> str:
    """8 hex digits of the sha256 of this host's name (part of the temporary folders' names)."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def _owner(folder: Path) -> tuple[int, bool] | None:
    """``(pid, on this host)`` of a temporary folder's owner: from its name, or from the
    owner file of an earlier version's folder; ``None`` when neither tells."""
    import json
    import re
    import socket

    named = re.match(rf"^{re.escape(TEMP_PREFIX)}(\d+)-([0-9a-f]{{8}})-", folder.name)
    if named:
        return int(named[1]), named[2] == _host_tag()
    try:
        owner = json.loads((folder / _OWNER_FILE).read_text())
        return int(owner["pid"]), owner.get("host") == socket.gethostname()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale_temporaries(output_dir: str | Path) -> list[Path]:
    """Remove the temporary folders (``.socialav-*``) of runs that died (killed, power
    loss): those whose owner process on this host no longer runs, or, when the owner cannot
    be checked (another host, an unknown name), those older than :data:`STALE_AFTER_S`.

    Returns:
        The folders removed.
    """
    removed = []
    root = Path(output_dir)
    if not root.is_dir():
        return removed
    now = time.time()
    for folder in root.glob(f"{TEMP_PREFIX}*"):
        if not folder.is_dir():
            continue
        owner = _owner(folder)
        try:
            if owner is not None and owner[1]:
                stale = not _pid_alive(owner[0])
            else:
                stale = now - folder.stat().st_mtime > STALE_AFTER_S
        except OSError:  # removed meanwhile
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _temporary_folder(output_dir: Path) -> Path:
    """A new temporary folder in ``output_dir`` whose name carries its owner (this process
    on this host), so that no moment exists at which a kill leaves it ownerless."""
    prefix = f"{TEMP_PREFIX}{os.getpid()}-{_host_tag()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=output_dir))


def recorded_settings(json_path: str | Path) -> dict[str, Any] | None:
    """``run_info.settings`` of an existing detect JSON, or ``None`` when it cannot be read
    (missing, older socialav, not a detect JSON)."""
    import json

    try:
        record = json.loads(Path(json_path).read_text(encoding="utf-8"))
        settings = record["run_info"]["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return settings if isinstance(settings, dict) else None


def settings_differences(recorded: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """Dotted names of the settings that differ (``config.segments.threshold: 0.5 -> 0.7``)."""

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix.rstrip("."): value}

    a, b = flat(recorded), flat(requested)
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def _recorded_video_max_short_side_px(result: DetectResult) -> int:
    """The annotated video's cap on the shorter side, of the run that made ``result``."""
    from socialav.pipelines.config import DetectConfig

    config = (result.run_info.settings or {}).get("config") or {}
    value = config.get("video_max_short_side_px")
    return DetectConfig.video_max_short_side_px if value is None else int(value)


def write_outputs(
    result: DetectResult,
    output_dir: str | Path,
    kinds: Iterable[str] = tuple(OUTPUT_SUFFIXES),
    threshold: float | None = None,
    progress: Progress | None = None,
    report_embed: bool = False,
    stem: str | None = None,
    video_max_short_side_px: int | None = None,
) -> dict[str, Path]:
    """Write the requested outputs of one video, all or nothing (named ``<stem><suffix>``;
    ``stem`` defaults to the video's file stem).

    The annotated video's shorter side is scaled down to ``video_max_short_side_px`` when the
    source's is longer (0: the source size; ``None``: the run's
    :attr:`~socialav.pipelines.config.DetectConfig.video_max_short_side_px`, as recorded in
    ``result.run_info.settings``, or that field's default when the run recorded none).

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
    final = output_paths(result.video.path, output_dir, stem)
    video, tracks, scores, persons = result.video, result.tracks, result.scores, result.persons
    remove_stale_temporaries(output_dir)
    tmp_dir = _temporary_folder(output_dir)
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
            if video_max_short_side_px is None:
                video_max_short_side_px = _recorded_video_max_short_side_px(result)
            write_annotated_video(
                tmp["video"],
                video.path,
                video,
                tracks,
                scores,
                threshold=threshold,
                max_short_side_px=video_max_short_side_px,
                progress=cb,
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
