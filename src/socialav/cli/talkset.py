"""``socialav data talkset``: TalkSet-style training entities from a folder of talking-head clips."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from socialav.cli.app import bounded

try:  # the ``data`` command group (``socialav data prepare``, ...)
    from socialav.cli.data import data_app
except ModuleNotFoundError as exc:  # pragma: no cover - the group module is not written yet
    if exc.name != "socialav.cli.data":
        raise
    from socialav.cli.app import app

    data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)
    app.add_typer(data_app, name="data")


@data_app.command("talkset")
def talkset_command(
    videos: Annotated[Path, typer.Option("--videos", help="Folder of clips.")],
    out: Annotated[Path, typer.Option("--out", help="Dataset root to write.")],
    seed: Annotated[int, typer.Option(callback=bounded(0), help="Random seed.")] = 0,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction",
            callback=bounded(0.0, 1.0),
            help="Fraction of clip groups held out as val.",
        ),
    ] = 0.2,
    min_window: Annotated[
        int, typer.Option(callback=bounded(1), help="Shortest entity (frames).")
    ] = 50,
    max_window: Annotated[
        int, typer.Option(callback=bounded(1), help="Longest entity (frames).")
    ] = 125,
    detect_every: Annotated[
        int, typer.Option(callback=bounded(1), help="Run the face detector every N frames.")
    ] = 1,
    negative: Annotated[
        list[str] | None, typer.Option(help="fnmatch pattern of negative clips (repeatable).")
    ] = None,
    untrusted: Annotated[
        list[str] | None,
        typer.Option(help="fnmatch pattern of clips whose sync is not guaranteed (repeatable)."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="fnmatch pattern of clips to skip (repeatable).")
    ] = None,
    group_regex: Annotated[
        str | None, typer.Option(help="Regex whose first group names a clip's person/group.")
    ] = None,
    scenes: Annotated[
        bool,
        typer.Option(
            "--scenes",
            help="Also write the full-scene image of every face-track frame (clips_scenes/), "
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
    """Build matched / swapped / shifted / silence / half / no-speech entities (TalkSet-style)
    in the prepared layout, with a train/val split by clip group. MANIFEST.md in the folder,
    when present, marks negatives (category neg) and untrusted clips (derived)."""
    from socialav.data.talkset import TalkSetConfig, clips_from_folder, generate_talkset

    console = Console(stderr=True)
    try:
        config = TalkSetConfig(
            seed=seed,
            val_fraction=val_fraction,
            window_frames_range=(min_window, max_window),
            detect_every=detect_every,
            group_regex=group_regex,
            scene_size_px=scene_size_px if scenes else None,
        )
        clips = clips_from_folder(
            videos,
            negative_patterns=negative or (),
            untrusted_patterns=untrusted or (),
            exclude_patterns=exclude or (),
            group_regex=group_regex,
        )
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with Progress(console=console) as bar:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        counts = generate_talkset(clips, out, config, progress=on_progress)
    for key in sorted(counts):
        console.print(f"{key}: {counts[key]} entities")
