"""``socialav data download unitalk``: UniTalk-ASD in the prepared layout (see
:mod:`socialav.data.unitalk_download`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from socialav.cli.app import bounded
from socialav.cli.data import _fail, _setup_logging, data_app

download_app = typer.Typer(
    name="download", help="Download datasets in the prepared layout.", no_args_is_help=True
)
data_app.add_typer(download_app, name="download")


@download_app.command("unitalk")
def unitalk(
    save_path: Annotated[Path, typer.Option("--save-path", help="Dataset root (created).")],
    split: Annotated[str, typer.Option("--split", help="train, val or train,val.")] = "train,val",
    workers: Annotated[
        int, typer.Option("--workers", callback=bounded(1), help="Videos at once.")
    ] = 4,
    video_list: Annotated[
        Path | None,
        typer.Option(
            "--video-list",
            help="UniTalk's video_list/ folder (train.csv, val.csv) or one split's CSV; "
            "default: fetched from the UniTalk code repository.",
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", help="Hugging Face Hub address (default HF_ENDPOINT or the Hub)."
        ),
    ] = None,
    revision: Annotated[str, typer.Option("--revision", help="Dataset revision.")] = "main",
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Per-video zips of face crops and audio from the UniTalk-ASD dataset repository,
    unzipped into clips_videos/ and clips_audios/, and the per-video CSVs merged into
    csv/<split>_orig.csv, as UniTalk's download_dataset.py; parallel, resumable (rerun the
    same command), every file checked against the size and hash the server gives. Failed
    videos are listed (exit code 1); their split's merged CSV is written once all are there."""
    from socialav.data.unitalk_download import (
        DownloadConfig,
        DownloadEvent,
        UnitalkDownloadError,
        download_unitalk,
    )

    _setup_logging(debug)
    splits = tuple(s.strip() for s in split.split(",") if s.strip())
    config = DownloadConfig(
        save_path=str(save_path),
        splits=splits,
        workers=workers,
        video_list=None if video_list is None else str(video_list),
        endpoint=endpoint,
        revision=revision,
    )
    console = Console(stderr=True)
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, int] = {}

    def on_event(event: DownloadEvent) -> None:
        if event.status == "retry":
            console.print(f"retry: {event.detail}", highlight=False, soft_wrap=True)
            return
        if event.status == "failed":
            console.print(
                f"error: {event.split}/{event.video}: {event.detail}",
                highlight=False,
                soft_wrap=True,
            )
        if event.split not in tasks:
            tasks[event.split] = bars.add_task(f"unitalk {event.split}", total=event.total)
        bars.update(tasks[event.split], completed=event.done, total=event.total)

    try:
        with bars:
            summary = download_unitalk(config, progress=on_event)
    except (UnitalkDownloadError, OSError, ValueError, ImportError) as exc:
        _fail(exc, debug)
    table = Table(title=f"socialav data download unitalk -> {save_path}")
    for column in ("split", "videos", "downloaded", "already there", "failed"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name in splits:
        failed = sum(1 for f in summary.failures if f.split == name)
        table.add_row(
            name,
            str(summary.videos[name]),
            str(summary.downloaded[name]),
            str(summary.already_there[name]),
            str(failed),
        )
    Console().print(table)
    for path in summary.merged_csvs:
        typer.echo(f"wrote {path}")
    if summary.retried:
        typer.echo(f"{len(summary.retried)} files failed a check and were fetched again", err=True)
    for failure in summary.failures:
        typer.echo(f"failed {failure.split}/{failure.video}: {failure.reason}", err=True)
    if summary.failures:
        typer.echo(
            f"error: {len(summary.failures)} videos failed; their split's <split>_orig.csv is "
            "not written: rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(1)
