"""``socialav data prepare | trim | to-asc``: AVA-ActiveSpeaker / UniTalk dataset tools."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from socialav.cli.app import app, bounded

data_app = typer.Typer(
    name="data",
    help="Prepare, trim and convert AVA-ActiveSpeaker / UniTalk datasets.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

_MAX_EXAMPLES = 3


def _fail(exc: Exception, debug: bool) -> NoReturn:
    if debug:
        raise exc
    typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
    raise typer.Exit(2) from None


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def video_progress(console: Console, label: str) -> Progress:
    """A rich progress bar over videos (hidden when stderr is not a terminal)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@data_app.command("prepare")
def prepare(
    videos: Annotated[
        Path, typer.Option("--videos", help="Folder of raw videos named <video_id>.<ext>.")
    ],
    csv: Annotated[Path, typer.Option("--csv", help="Annotation CSV (AVA or UniTalk *_orig.csv).")],
    split: Annotated[str, typer.Option("--split", help="Split name: train, val, test ...")],
    out: Annotated[Path, typer.Option("--out", help="Dataset root to write.")],
    workers: Annotated[
        int,
        typer.Option(
            "--workers", callback=bounded(1), help="Local worker processes (parallel videos)."
        ),
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Dask scheduler address (tcp://host:8786) or local:N; one task per video.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
    scenes: Annotated[
        bool,
        typer.Option(
            "--scenes",
            help="Also write the full-scene image of every annotated frame (clips_scenes/), "
            "for scene-context models.",
        ),
    ] = False,
    scene_size_px: Annotated[
        int,
        typer.Option(
            "--scene-size-px", callback=bounded(8), help="Side of the scene images (pixels)."
        ),
    ] = 112,
) -> None:
    """Write face crops (clips_videos) and entity audio (clips_audios) from raw videos.

    Resumable: complete entities are skipped, half-written ones redone. Videos that are
    missing or unreadable are skipped and listed in the summary (exit code 1).
    """
    from socialav.data.prepare import prepare_dataset
    from socialav.io.ava_csv import AvaCsvError

    _setup_logging(debug)
    console = Console(stderr=True)
    try:
        with video_progress(console, f"prepare {split}") as bars:
            task = bars.add_task("videos", total=None)

            def progress(done: int, total: int) -> None:
                bars.update(task, completed=done, total=total)

            summary = prepare_dataset(
                videos,
                csv,
                out,
                split,
                workers=workers,
                cluster=cluster,
                progress=progress,
                scene_size_px=scene_size_px if scenes else None,
            )
    except (AvaCsvError, OSError, ValueError, ImportError) as exc:
        _fail(exc, debug)

    table = Table(title=f"socialav data prepare: {split} -> {out}")
    table.add_column("")
    table.add_column("entities", justify="right")
    table.add_row("annotated", str(summary.num_entities))
    table.add_row("written now", str(summary.entities_written))
    table.add_row("already complete (skipped)", str(summary.entities_already_complete))
    for reason, count in sorted(summary.skipped_by_reason().items()):
        table.add_row(f"skipped: {reason}", str(count))
    repaired = [i for i in summary.issues if not i.skipped]
    if repaired:
        table.add_row("written with a clipped empty box", str(len(repaired)))
    Console().print(table)
    shown: dict[str, int] = {}
    for issue in summary.issues:
        if not issue.skipped or shown.get(issue.reason, 0) >= _MAX_EXAMPLES:
            continue
        shown[issue.reason] = shown.get(issue.reason, 0) + 1
        where = issue.entity_id or issue.video_id
        typer.echo(f"skipped {where}: {issue.reason}: {issue.detail}", err=True)
    typer.echo(f"face crops written: {summary.frames_written}", err=True)
    if summary.entities_skipped:
        raise typer.Exit(1)


@data_app.command("trim")
def trim(
    root: Annotated[Path, typer.Option("--root", help="Prepared dataset root.")],
    video_list: Annotated[
        Path,
        typer.Option("--list", help="video_id per line (UniTalk sub_categories/test_<c>.csv)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="New dataset root.")],
    split: Annotated[str, typer.Option("--split", help="Split to trim.")] = "val",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Keep only the listed videos (UniTalk trim_dataset.py)."""
    from socialav.data.trim import trim_dataset
    from socialav.io.ava_csv import AvaCsvError

    _setup_logging(debug)
    try:
        result = trim_dataset(root, video_list, out, split=split, overwrite=overwrite)
    except (AvaCsvError, OSError, ValueError) as exc:
        _fail(exc, debug)
    typer.echo(f"kept {len(result.videos_kept)} videos, {result.num_rows} rows -> {out}", err=False)
    if result.not_in_csv:
        typer.echo(
            f"warning: {len(result.not_in_csv)} listed videos are not in the CSV: "
            f"{result.not_in_csv[:5]}",
            err=True,
        )
    if result.missing_clips:
        typer.echo(
            f"warning: {len(result.missing_clips)} listed videos have no clips: "
            f"{result.missing_clips[:5]}",
            err=True,
        )


@data_app.command("to-asc")
def to_asc(
    root: Annotated[Path, typer.Option("--root", help="Prepared dataset root.")],
    out: Annotated[Path, typer.Option("--out", help="Destination (ASC / ASDNet layout).")],
    splits: Annotated[
        str, typer.Option("--splits", help="Comma-separated splits to convert.")
    ] = "val",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Convert to the ASC layout (UniTalk convert_to_ASC.py): one folder per entity, gt/*.csv."""
    from socialav.data.asc import convert_to_asc
    from socialav.io.ava_csv import AvaCsvError

    _setup_logging(debug)
    chosen = tuple(s.strip() for s in splits.split(",") if s.strip())
    if not chosen:
        raise typer.BadParameter("--splits must name at least one split, e.g. 'val'")
    try:
        result = convert_to_asc(root, out, splits=chosen, overwrite=overwrite)
    except (AvaCsvError, OSError, ValueError) as exc:
        _fail(exc, debug)
    typer.echo(
        f"copied {result.entities} entity folders, {result.audios} WAVs, "
        f"wrote {result.gt_files} gt files -> {out}"
    )
