"""``socialav data ego4d-course`` (seed 000's preprocessing) and ``socialav data ego4d-asd``
(seed 002's annotation conversion)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from socialav.cli.app import bounded
from socialav.cli.data import _fail, _setup_logging, data_app, video_progress

_MAX_EXAMPLES = 5


@data_app.command("ego4d-course")
def ego4d_course(
    videos: Annotated[Path, typer.Option("--videos", help="Folder of <hash>.mp4 videos.")],
    seg: Annotated[Path, typer.Option("--seg", help="Folder of <hash>_seg.csv files.")],
    bbox: Annotated[Path, typer.Option("--bbox", help="Folder of <hash>_bbox.csv files.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (dlcvchallenge1_*).")],
    split: Annotated[str, typer.Option("--split", help="train (labelled) or test.")] = "train",
    size_px: Annotated[
        int, typer.Option("--size-px", callback=bounded(8), help="Face crop side (the seed's 96).")
    ] = 96,
    workers: Annotated[
        int, typer.Option("--workers", callback=bounded(1), help="Local worker processes.")
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Dask scheduler address (tcp://host:8786) or local:N."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Per-segment samples (image, audio, ttm, is_empty .npz) and the videos' audio, as seed
    000's preprocess.sh writes them: one decoding pass per video, parallel, resumable (a rerun
    keeps what is written). Videos that are missing or unreadable are listed (exit code 1)."""
    from socialav.data.ego4d.course import CourseFormatError
    from socialav.data.ego4d.course_job import prepare_course

    _setup_logging(debug)
    console = Console(stderr=True)
    try:
        with video_progress(console, f"ego4d-course {split}") as bars:
            task = bars.add_task("videos", total=None)
            summary = prepare_course(
                videos,
                seg,
                bbox,
                out,
                split,
                size_px=size_px,
                workers=workers,
                cluster=cluster,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
    except (CourseFormatError, OSError, ValueError, ImportError) as exc:
        _fail(exc, debug)
    table = Table(title=f"socialav data ego4d-course: {split} -> {out}")
    table.add_column("")
    table.add_column("samples", justify="right")
    table.add_row("segments", str(summary.num_samples))
    table.add_row("written now", str(summary.written))
    table.add_row("already there (kept)", str(summary.already_there))
    table.add_row("not written (see below)", str(summary.failed))
    Console().print(table)
    typer.echo(
        f"{summary.written} samples in {summary.seconds:.1f} s: {summary.samples_per_s:.2f} "
        f"samples/s ({summary.frames_decoded} frames decoded)"
    )
    for issue in summary.issues[:_MAX_EXAMPLES]:
        typer.echo(
            f"not written: {issue.video_id} ({issue.num_samples} samples): {issue.reason}: "
            f"{issue.detail}",
            err=True,
        )
    if summary.issues:
        raise typer.Exit(1)


def _frame_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(
            f"--frame-size must be WIDTHxHEIGHT, e.g. 1920x1080, got {text!r}"
        ) from None
    return w, h


@data_app.command("ego4d-asd")
def ego4d_asd(
    annotations: Annotated[Path, typer.Option("--annotations", help="av_<split>.json.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    split: Annotated[str, typer.Option("--split", help="Split name in the file names.")] = "val",
    track_results: Annotated[
        Path | None,
        typer.Option("--track-results", help="Folder of <clip_uid>.txt tracker results."),
    ] = None,
    split_list: Annotated[
        Path | None, typer.Option("--split-list", help="Only these clip_uids (one per line).")
    ] = None,
    videos: Annotated[
        Path | None, typer.Option("--videos", help="<clip_uid>.mp4 (for the frame sizes).")
    ] = None,
    frame_size: Annotated[
        str | None, typer.Option("--frame-size", help="WxH of every clip instead of --videos.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Ego4D active-speaker files: seed 002's active_speaker_<split>.csv, bbox/ and
    bboxes_per_track/ (TalkNet layout), and OUT/ava/<split>_orig.csv (AVA-ActiveSpeaker) for
    socialav data prepare / score / evaluate."""
    from socialav.data.ego4d.annotations import Ego4dAnnotationError
    from socialav.data.ego4d.asd import convert_ego4d_asd
    from socialav.io.ava_csv import AvaCsvError

    _setup_logging(debug)
    try:
        result = convert_ego4d_asd(
            annotations,
            out,
            split,
            track_results=track_results,
            clip_list=split_list,
            videos_dir=videos,
            frame_size_px=_frame_size(frame_size),
        )
    except (Ego4dAnnotationError, AvaCsvError, OSError, ValueError) as exc:
        _fail(exc, debug)
    typer.echo(
        f"wrote {result.seed_csv}: {result.num_records} tracks, {result.num_chunks} boxes files"
    )
    typer.echo(f"wrote {result.ava_csv}: {result.num_ava_rows} face rows")
    if result.missing_track_results:
        typer.echo(
            f"warning: no tracker results for {len(result.missing_track_results)} clips: "
            f"{result.missing_track_results[:_MAX_EXAMPLES]}",
            err=True,
        )
