"""``socialav data ego4d-media``: extract Ego4D clips' frames and audio in the baselines' layout."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from socialav.cli.data import data_app


@data_app.command("ego4d-media")
def ego4d_media(
    videos: Annotated[Path, typer.Option("--videos", help="Folder of clips <clip_uid>.mp4.")],
    frames_out: Annotated[
        Path, typer.Option("--frames", help="Receives <clip_uid>/img_%05d.jpg at 30 fps.")
    ],
    audio_out: Annotated[
        Path | None, typer.Option("--audio", help="Receives <clip_uid>.wav (16 kHz mono).")
    ] = None,
    clip_list: Annotated[
        Path | None, typer.Option("--clips", help="Split list: only these clip_uids.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Re-extract clips already done.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Write the frames (and audio) the Ego4D LAM/TTM training reads (``ego4d.frames_dir``,
    ``ego4d.audio_dir`` of a ``socialav train`` config), as the baselines'
    ``scripts/extract_frame.sh`` / ``extract_wave.sh`` do with ffmpeg."""
    from socialav.cli.app import exit_with_error
    from socialav.data.ego4d.annotations import read_split_list
    from socialav.data.ego4d.media import extract_clip_media
    from socialav.io.media import MediaError

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    console = Console(stderr=True)
    if not videos.is_dir():
        exit_with_error(NotADirectoryError(f"--videos {videos}: expected a folder of clips"))
    paths = sorted(videos.glob("*.mp4"))
    if clip_list is not None:
        try:
            keep = set(read_split_list(clip_list))
        except (OSError, ValueError) as exc:
            exit_with_error(exc, debug)
        paths = [p for p in paths if p.stem in keep]
    done = failed = skipped = 0
    for path in paths:
        complete = (frames_out / path.stem).is_dir() and (
            audio_out is None or (audio_out / f"{path.stem}.wav").is_file()
        )
        if complete and not overwrite:
            skipped += 1
            continue
        try:
            count = extract_clip_media(path, frames_out, audio_out)
        except (MediaError, ValueError) as exc:
            if debug:
                raise
            console.print(f"[red]{path.name}: {' '.join(str(exc).split())}[/red]")
            failed += 1
            continue
        console.print(f"{path.stem}: {count} frames")
        done += 1
    console.print(f"{done} clips extracted, {skipped} already there, {failed} failed")
    if failed:
        raise typer.Exit(1)
