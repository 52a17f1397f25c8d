"""``socialav detect``: who speaks when, in one or many videos."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from socialav.cli.app import app, parse_windows

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".mpg", ".mpeg", ".webm", ".m4v", ".ts", ".flv"}

logger = logging.getLogger("socialav.cli")


def _collect_videos(inputs: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the videos inside them (recursively, sorted)."""
    videos: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                typer.echo(f"warning: {item}: no video files found in this folder", err=True)
            videos.extend(found)
        else:
            videos.append(item)
    return videos


def _check_output_dir(output_dir: Path) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create output folder {output_dir}: {exc.strerror}"
        ) from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"output folder {output_dir} is not writable")


class _StageBars:
    """One rich progress bar per pipeline stage; the library's ``progress`` callback."""

    def __init__(self, console: Console, label: str) -> None:
        self.label = label
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _StageBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(f"{self.label}: {stage}", total=total)
        self.bars.update(self.tasks[stage], completed=done, total=total)


@app.command()
def detect(
    videos: Annotated[list[Path], typer.Argument(help="Video files or folders of videos.")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where outputs go.")
    ] = Path("socialav-out"),
    overwrite: Annotated[
        bool, typer.Option(help="Redo videos whose outputs already exist (default: skip them).")
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option(
            help="ASD weights: a name of `socialav weights list`, or a Light-ASD / LR-ASD "
            "checkpoint file (e.g. from `socialav train`)."
        ),
    ] = None,
    windows: Annotated[
        str | None,
        typer.Option(help="Window durations in s, e.g. '1,2,3,4,5,6', or 'full' (one pass)."),
    ] = None,
    backend: Annotated[str | None, typer.Option(help="torch, onnx or onnx-int8.")] = None,
    detect_every: Annotated[
        int | None, typer.Option(help="Run the face detector on every n-th frame.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Speaking threshold on the probability.")
    ] = None,
    tasks: Annotated[
        str,
        typer.Option(
            help="Comma-separated: asd (speaking), lam (looking at camera), ttm (talking to me)."
        ),
    ] = "asd",
    lam_weights: Annotated[
        Path | None,
        typer.Option(
            "--lam-weights",
            metavar="PATH",
            help="Ego4D-trained LAM checkpoint (socialav gaze-lstm file): replaces the "
            "zero-shot lam (implies --tasks lam).",
        ),
    ] = None,
    ttm_weights: Annotated[
        list[Path] | None,
        typer.Option(
            "--ttm-weights",
            metavar="PATH",
            help="Ego4D-trained TTM checkpoint (socialav quavf-visual or quavf-audio file; "
            "repeat for both, fused by visual quality): replaces the zero-shot ttm (implies "
            "--tasks ttm).",
        ),
    ] = None,
    outputs: Annotated[
        str, typer.Option(help="Comma-separated subset of csv,rttm,json,timeline,video,report.")
    ] = "csv,rttm,json,timeline,video,report",
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip the annotated video.")] = False,
    report_embed: Annotated[
        bool,
        typer.Option(
            "--report-embed",
            help="Inline the video in the HTML report (up to 25 MiB; a larger one is linked).",
        ),
    ] = False,
    diarize: Annotated[
        bool,
        typer.Option(
            "--diarize/--no-diarize",
            help="Who spoke when as persons: face tracks clustered into people, voices matched "
            "to faces, speech from off screen (the RTTM names persons).",
        ),
    ] = True,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: all cores).")] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks and debug logs.")] = False,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            metavar="WEIGHTS",
            help="Scene-context ASD checkpoint (socialav scene-context file or registry name): "
            "encodes every frame's full scene and replaces the ASD model of --weights.",
        ),
    ] = None,
) -> None:
    """Detect faces and, for each face and frame, the probability that it is speaking.

    Writes <stem>.ava.csv, <stem>.rttm, <stem>.json, <stem>.timeline.png,
    <stem>.annotated.mp4 and <stem>.report.html per video into the output folder.
    """
    from dataclasses import replace

    from socialav.inference.segments import SegmentConfig
    from socialav.io.media import MediaError, NoAudioStreamError, probe_video
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector
    from socialav.pipelines.outputs import OUTPUT_SUFFIXES, outputs_exist, write_outputs

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    console = Console(stderr=True)
    kinds = [k.strip() for k in outputs.split(",") if k.strip()]
    if no_video:
        kinds = [k for k in kinds if k != "video"]
    bad = sorted(set(kinds) - set(OUTPUT_SUFFIXES))
    if bad:
        raise typer.BadParameter(f"unknown outputs {bad}; expected some of {list(OUTPUT_SUFFIXES)}")
    _check_output_dir(output_dir)
    paths = _collect_videos(videos)
    if not paths:
        typer.echo("error: no videos given", err=True)
        raise typer.Exit(2)

    config = DetectConfig()
    changes: dict = {}
    if weights:
        changes["asd_weights"] = weights
    if windows is not None:
        changes["windows"] = replace(config.windows, durations_s=parse_windows(windows))
    if backend:
        changes["backend"] = backend
    if detect_every:
        changes["detect_every"] = detect_every
    if threshold is not None:
        changes["segments"] = SegmentConfig(**{**config.segments.__dict__, "threshold": threshold})
    if threads:
        changes["num_threads"] = threads
    if context:
        changes["context_weights"] = context
    changes["tasks"] = tuple(t.strip() for t in tasks.split(",") if t.strip())
    changes["diarize"] = diarize
    if lam_weights is not None:
        changes["lam_weights"] = str(lam_weights)
    if ttm_weights:
        changes["ttm_weights"] = tuple(str(p) for p in ttm_weights)
    try:
        config = replace(config, **changes)
    except ValueError as exc:  # bad option values: one line, no traceback
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    failures = 0
    todo = []
    for p in paths:
        if not overwrite and outputs_exist(p, output_dir, kinds):
            console.print(f"skip {p}: outputs exist in {output_dir} (use --overwrite)")
            continue
        try:  # cheap checks first, so bad files fail before the models load
            info = probe_video(p)
            if not info.has_audio:
                raise NoAudioStreamError(
                    f"{p}: expected an audio stream (active speaker detection needs the "
                    "soundtrack), found only video"
                )
        except MediaError as exc:
            if debug:
                raise
            failures += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        todo.append(p)
    try:
        detector = SpeakerDetector(config) if todo else None
    except Exception as exc:  # weights / model errors: one line, no traceback
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    summary = Table(title="socialav detect")
    for col in ("video", "duration s", "tracks", "speaking s per track", "real-time factor"):
        summary.add_column(col)
    for path in todo:
        try:
            with _StageBars(console, path.name) as progress:
                result = detector.run(path, progress)
                if not result.tracks:
                    typer.echo(f"warning: {path}: no face found; writing empty outputs", err=True)
                write_outputs(
                    result, output_dir, kinds, progress=progress, report_embed=report_embed
                )
        except (MediaError, OSError, ValueError, RuntimeError) as exc:
            if debug:
                raise
            failures += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        speaking = ", ".join(
            f"{s.track_id}: {sum(seg.duration_s for seg in s.segments):.1f}" for s in result.scores
        )
        total = sum(result.timings_s.get(k, 0.0) for k in ("total", "write", "video"))
        rtf = result.video.duration_s / total if total > 0 else float("inf")
        summary.add_row(
            path.name,
            f"{result.video.duration_s:.1f}",
            str(len(result.tracks)),
            speaking or "-",
            f"{rtf:.2f}x",
        )
    if summary.row_count:
        Console().print(summary)
    if failures:
        raise typer.Exit(1)
