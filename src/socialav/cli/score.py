"""``socialav score``: an ASD model's scores for every ground-truth face of a prepared split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from socialav.cli.app import app, bounded, parse_windows
from socialav.types import ASD_BACKENDS


def _backend(value: str) -> str:
    if value not in ASD_BACKENDS:
        raise typer.BadParameter(f"got {value!r}; expected one of {', '.join(ASD_BACKENDS)}")
    return value


_backend.choices = ASD_BACKENDS  # type: ignore[attr-defined]


def _windows(value: str) -> str:
    parse_windows(value)
    return value


@app.command("score")
def score(
    root: Annotated[Path, typer.Option("--root", help="Dataset root (socialav data prepare).")],
    split: Annotated[str, typer.Option("--split", help="Split to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Prediction CSV to write.")],
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Ground-truth CSV (a path, or a name inside ROOT/csv; "
            "default ROOT/csv/<split>_orig.csv).",
        ),
    ] = None,
    weights: Annotated[
        str, typer.Option("--weights", help="ASD weights name (socialav weights list).")
    ] = "light-asd-ava",
    windows: Annotated[
        str,
        typer.Option(
            "--windows",
            callback=_windows,
            help="'full' (one pass per entity, as the reference AVA evaluation) or window "
            "durations in s such as '1,2,3,4,5,6' (as socialav detect).",
        ),
    ] = "full",
    backend: Annotated[
        str, typer.Option("--backend", callback=_backend, help="Runtime: torch, onnx or onnx-int8.")
    ] = "torch",
    threads: Annotated[
        int, typer.Option("--threads", callback=bounded(1), help="CPU threads per worker process.")
    ] = 1,
    workers: Annotated[
        int, typer.Option("--workers", callback=bounded(1), help="Local worker processes.")
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Dask scheduler address (tcp://host:8786) or local:N."),
    ] = None,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="Write the official headerless upload format.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Score every entity (face track) of the ground truth and write a prediction CSV.

    The CSV is keyed by (frame_timestamp, entity_id), label SPEAKING_AUDIBLE, score = speaking
    probability; evaluate it with socialav evaluate. Entities whose files are missing are
    listed and the command exits with code 1 (their rows are absent from the CSV).
    """
    from socialav.cli.data import video_progress
    from socialav.data.layout import DatasetLayout
    from socialav.inference.asd import WindowConfig
    from socialav.io.ava_csv import AvaCsvError
    from socialav.pipelines.score_dataset import ScoreConfig, score_dataset, write_predictions

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    console = Console(stderr=True)
    csv_path = csv
    if csv is not None and not csv.exists():
        inside = DatasetLayout(root).root / "csv" / csv
        if inside.exists():
            csv_path = inside
    try:
        config = ScoreConfig(
            weights=weights,
            windows=WindowConfig(durations_s=parse_windows(windows)),
            backend=backend,
            num_threads=threads,
        )
        with video_progress(console, f"score {split}") as bars:
            task = bars.add_task("videos", total=None)
            summary = score_dataset(
                root,
                split,
                csv_path,
                config,
                workers=workers,
                cluster=cluster,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
        rows = write_predictions(summary.predictions, output, header=not no_header)
    except (AvaCsvError, OSError, ValueError, ImportError, RuntimeError) as exc:
        if debug:
            raise
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    entities = sum(1 for _ in summary.predictions["entity_id"].unique())
    typer.echo(f"wrote {rows} prediction rows for {entities} entities to {output}")
    for issue in summary.issues[:5]:
        typer.echo(f"not scored {issue.entity_id}: {issue.reason}", err=True)
    if summary.issues:
        typer.echo(f"error: {len(summary.issues)} entities could not be scored", err=True)
        raise typer.Exit(1)
