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

from socialav.cli.app import app, bounded, exit_with_error, parse_choices, parse_windows
from socialav.pipelines.outputs import OUTPUT_SUFFIXES, is_output_file
from socialav.types import ASD_BACKENDS, DETECT_TASKS

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".mpg", ".mpeg", ".webm", ".m4v", ".ts", ".flv"}

logger = logging.getLogger("socialav.cli")


def _collect_videos(inputs: list[Path], output_dir: Path) -> tuple[list[Path], int]:
    """Files as given; folders expanded to the videos inside them (recursively, sorted),
    without socialav's own outputs (``*.annotated.mp4``) or anything under ``output_dir``.

    Returns:
        ``(videos, number of files skipped as outputs)``.
    """
    out = output_dir.resolve()
    videos: list[Path] = []
    skipped = 0
    for item in inputs:
        if item.is_dir():
            found = []
            for p in sorted(item.rglob("*")):
                if p.suffix.lower() not in VIDEO_SUFFIXES or not p.is_file():
                    continue
                if is_output_file(p) or out in p.resolve().parents:
                    skipped += 1
                    continue
                found.append(p)
            if not found:
                typer.echo(f"warning: {item}: no video files found in this folder", err=True)
            videos.extend(found)
        else:
            videos.append(item)
    return videos, skipped


def _check_output_dir(output_dir: Path) -> None:
    """The output folder can be created and written, without creating it (a rejected run
    leaves nothing behind).

    Raises:
        typer.BadParameter: it is a file, or its nearest existing folder is not writable.
    """
    import tempfile

    if output_dir.exists() and not output_dir.is_dir():
        raise typer.BadParameter(
            f"cannot create output folder {output_dir}: expected a folder, found a file"
        )
    existing = output_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise typer.BadParameter(
            f"cannot create output folder {output_dir}: {existing} is not a writable folder"
        )
    try:  # some folders say writable and are not (/proc): try, and leave nothing
        os.rmdir(tempfile.mkdtemp(prefix=".socialav-probe-", dir=existing))
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create output folder {output_dir}: {exc.strerror or exc}"
        ) from None


def _windows(value: str | None) -> str | None:
    if value is not None:
        parse_windows(value)
    return value


def _tasks(value: str) -> str:
    parse_choices(value, DETECT_TASKS, "--tasks")
    return value


def _backend(value: str | None) -> str | None:
    if value is not None and value not in ASD_BACKENDS:
        raise typer.BadParameter(f"got {value!r}; expected one of {', '.join(ASD_BACKENDS)}")
    return value


_backend.choices = ASD_BACKENDS  # type: ignore[attr-defined]


def _cluster(value: str | None) -> str | None:
    if value is not None:
        from socialav.data.cluster import parse_cluster

        try:
            parse_cluster(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def _outputs(value: str) -> str:
    parse_choices(value, tuple(OUTPUT_SUFFIXES), "--outputs")
    return value


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
        typer.Option(
            callback=_windows,
            help="Window durations in s, e.g. '6' or '1,2,3,4,5,6', or 'full' (one pass).",
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            callback=_backend,
            help="Runtime of the ASD model: onnx-int8 (its visual encoder in int8), onnx (fp32, "
            "the reference's logits) or torch. Default: onnx-int8 on the CPU for weights whose "
            "int8 ranges ship (lr-asd-ava), else onnx; torch on CUDA.",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(help="Where the PyTorch models run: cpu, cuda or cuda:N."),
    ] = "cpu",
    detect_every: Annotated[
        int | None,
        typer.Option(callback=bounded(1), help="Run the face detector on every n-th frame."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(callback=bounded(0.0, 1.0), help="Speaking threshold on the probability."),
    ] = None,
    tasks: Annotated[
        str,
        typer.Option(
            callback=_tasks,
            help="Comma-separated: asd (speaking), lam (looking at camera), ttm (talking to me).",
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
        str,
        typer.Option(
            callback=_outputs,
            help="Comma-separated subset of csv,rttm,json,timeline,video,report.",
        ),
    ] = "csv,rttm,json,timeline,video,report",
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip the annotated video.")] = False,
    video_max_short_side: Annotated[
        int | None,
        typer.Option(
            "--video-max-short-side",
            metavar="PX",
            callback=bounded(0),
            help="Scale the annotated video down so that its shorter side is at most this "
            "(480: 854x480 from 720p, 480x854 from portrait 1080x1920; aspect ratio kept; the "
            "analysis always sees the source frames); 0: the source size. Default 480.",
        ),
    ] = None,
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
    threads: Annotated[
        int | None, typer.Option(callback=bounded(1), help="CPU threads (default: all cores).")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            callback=_cluster,
            help="Run one video per task on Dask distributed: a scheduler address "
            "(tcp://host:8786; inputs and output folder on a shared file system) or local:N "
            "(N worker processes here). Each worker loads the models once.",
        ),
    ] = None,
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
    <stem>.annotated.mp4 and <stem>.report.html per video into the output folder (videos with
    the same file stem get their parent folder's name in front: a__clip, b__clip).
    """

    from socialav.io.media import MediaError, NoAudioStreamError, probe_video
    from socialav.pipelines.outputs import (
        output_paths,
        outputs_exist,
        recorded_settings,
        settings_differences,
        unique_stems,
    )

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    console = Console(stderr=True)
    kinds = list(parse_choices(outputs, tuple(OUTPUT_SUFFIXES), "--outputs"))
    if no_video:
        kinds = [k for k in kinds if k != "video"]
    if not kinds:
        raise typer.BadParameter("nothing to write: --outputs without the video is empty")
    _check_output_dir(output_dir)
    paths, skipped_outputs = _collect_videos(videos, output_dir)
    if skipped_outputs:
        typer.echo(
            f"note: {skipped_outputs} file(s) in the input folders are socialav outputs or lie "
            f"under the output folder {output_dir}; not taken as input",
            err=True,
        )
    if not paths:
        typer.echo("error: no videos given", err=True)
        raise typer.Exit(2)
    try:
        config = _build_config(
            weights=weights,
            windows=windows,
            backend=backend,
            device=device,
            detect_every=detect_every,
            threshold=threshold,
            threads=threads,
            context=context,
            tasks=parse_choices(tasks, DETECT_TASKS, "--tasks"),
            diarize=diarize,
            lam_weights=lam_weights,
            ttm_weights=ttm_weights,
            cluster=cluster,
            video_max_short_side=video_max_short_side,
        )
        settings = config.settings()
    except (ValueError, FileNotFoundError) as exc:  # bad option values: one line
        exit_with_error(exc, debug)

    stems = unique_stems(paths)
    failures = 0
    todo = []
    for p in paths:
        stem = stems[p.resolve()]
        if stem != p.stem:
            console.print(f"note: {p}: outputs named {stem}.* (another input has the same name)")
        if not overwrite and outputs_exist(p, output_dir, kinds, stem):
            json_path = output_paths(p, output_dir, stem)["json"]
            recorded = recorded_settings(json_path)
            if recorded is None:
                console.print(
                    f"skip {p}: outputs exist in {output_dir} (their settings cannot be read "
                    f"from {json_path.name}; use --overwrite to redo)"
                )
            elif diffs := settings_differences(recorded, settings):
                console.print(
                    f"skip {p}: outputs exist in {output_dir} but were made with other settings "
                    f"({'; '.join(diffs[:4])}{' ...' if len(diffs) > 4 else ''}): pass "
                    "--overwrite to redo them with these"
                )
            else:
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
            typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
            continue
        todo.append((p, stem))
    from socialav.pipelines.detect_batch import VideoDetectTask

    jobs = [
        VideoDetectTask(str(p), stem, str(output_dir), tuple(kinds), config, report_embed)
        for p, stem in todo
    ]
    summary = Table(title="socialav detect")
    summary.add_column("video", overflow="fold")
    for col in ("duration s", "tracks", "speaking s per track", "real-time factor"):
        summary.add_column(col, overflow="fold")
    if cluster is not None:
        done = _run_on_cluster(jobs, cluster, console, debug)
    else:
        done = _run_here(jobs, console, debug)
    for job, result in done:
        if result.error is not None:
            failures += 1
            continue
        path = Path(job.video)
        speaking = ", ".join(f"{k}: {v:.1f}" for k, v in result.speaking_s.items())
        summary.add_row(
            str(path) if job.stem == path.stem else f"{path} ({job.stem})",
            f"{result.duration_s:.1f}",
            str(result.num_tracks),
            speaking or "-",
            f"{result.real_time_factor:.2f}x",
        )
    if summary.row_count:
        Console().print(summary)
    if failures:
        raise typer.Exit(1)


def _run_here(jobs, console: Console, debug: bool):
    """The videos one after another in this process, with progress bars; yields
    ``(task, summary)``."""
    from socialav.pipelines.detect import SpeakerDetector
    from socialav.pipelines.detect_batch import detect_video_task

    if not jobs:
        return
    try:
        detector = SpeakerDetector(jobs[0].config)
    except Exception as exc:  # weights / model errors: one line, no traceback
        exit_with_error(exc, debug)
    for job in jobs:
        with _StageBars(console, Path(job.video).name) as progress:
            result = detect_video_task(
                job,
                detector,
                progress,
                warn=lambda line: typer.echo(f"warning: {line}", err=True),
                reraise=debug,
            )
        if result.error is not None:
            typer.echo(f"error: {result.error}", err=True)
        yield job, result


def _run_on_cluster(jobs, cluster: str, console: Console, debug: bool):
    """The videos on Dask distributed, one task each; a line per finished video; yields
    ``(task, summary)`` as videos finish."""
    from socialav.pipelines.detect_batch import run_detect_tasks

    if not jobs:
        return
    if not debug:  # Dask logs every worker start and stop at INFO
        for name in ("distributed", "dask"):
            logging.getLogger(name).setLevel(logging.WARNING)
    by_video = {job.video: job for job in jobs}
    finished = 0
    try:
        for result in run_detect_tasks(jobs, cluster):
            finished += 1
            for line in result.warnings:
                typer.echo(f"warning: {line}", err=True)
            if result.error is not None:
                typer.echo(f"error: {result.error}", err=True)
                state = "failed"
            else:
                state = f"done in {result.seconds:.1f} s ({result.real_time_factor:.2f}x)"
            console.print(
                f"[{finished}/{len(jobs)}] {result.video}: {state} on {result.worker}",
                highlight=False,
                soft_wrap=True,
            )
            yield by_video[result.video], result
    except Exception as exc:  # no Dask, no scheduler, models that cannot load: one line
        exit_with_error(exc, debug)


def _build_config(
    *,
    weights: str | None,
    windows: str | None,
    backend: str | None,
    device: str,
    detect_every: int | None,
    threshold: float | None,
    threads: int | None,
    context: str | None,
    tasks: tuple[str, ...],
    diarize: bool,
    lam_weights: Path | None,
    ttm_weights: list[Path] | None,
    cluster: str | None = None,
    video_max_short_side: int | None = None,
):
    """The :class:`~socialav.pipelines.config.DetectConfig` of the options (every value
    checked; ``None`` means the option was not given, 0 is a value).

    Raises:
        ValueError: a value the configuration refuses.
    """
    from dataclasses import replace

    from socialav.data.cluster import parse_cluster
    from socialav.inference.segments import SegmentConfig
    from socialav.pipelines.config import DetectConfig

    config = DetectConfig()
    changes: dict = {"tasks": tuple(tasks), "diarize": diarize, "device": device}
    if weights is not None:
        changes["asd_weights"] = weights
    if windows is not None:
        changes["windows"] = replace(config.windows, durations_s=parse_windows(windows))
    changes["backend"] = backend  # None: chosen for the weights and device (default_backend)
    if detect_every is not None:
        changes["detect_every"] = detect_every
    if threshold is not None:
        changes["segments"] = SegmentConfig(**{**config.segments.__dict__, "threshold": threshold})
    if threads is not None:
        changes["num_threads"] = threads
    elif cluster is not None and (workers := parse_cluster(cluster).local_workers):
        changes["num_threads"] = max(1, (os.cpu_count() or 1) // workers)  # cores shared
    if context is not None:
        changes["context_weights"] = context
    if lam_weights is not None:
        changes["lam_weights"] = str(lam_weights)
    if ttm_weights:
        changes["ttm_weights"] = tuple(str(p) for p in ttm_weights)
    if video_max_short_side is not None:
        changes["video_max_short_side_px"] = video_max_short_side
    return replace(config, **changes)
