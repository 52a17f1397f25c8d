"""``socialav predict``: trained Ego4D LAM / TTM checkpoints over a split -> the challenge
file (see :mod:`socialav.pipelines.predict_ego4d`).

Multi-GPU / multi-node: ``torchrun --nproc-per-node 4 -m socialav.cli predict ...``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from socialav.cli.app import app, bounded

_MAX_EXAMPLES = 5


@app.command("predict")
def predict(
    task: Annotated[
        str, typer.Option("--task", help="lam (Looking-at-Me) or ttm (Talking-to-Me).")
    ],
    weights: Annotated[
        list[str],
        typer.Option(
            "--weights",
            help="Checkpoint from `socialav train` (repeat for the two QuAVF branches: "
            "quality-aware fusion).",
        ),
    ],
    annotations: Annotated[
        Path, typer.Option("--annotations", help="av_val.json / av_test_unannotated.json.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Prediction CSV to write.")],
    frames: Annotated[
        Path | None,
        typer.Option("--frames", help="<clip_uid>/img_%05d.jpg at 30 fps (data ego4d-media)."),
    ] = None,
    audio_dir: Annotated[
        Path | None, typer.Option("--audio-dir", help="<clip_uid>.wav (16 kHz mono).")
    ] = None,
    split_list: Annotated[
        Path | None, typer.Option("--split-list", help="Only these clip_uids (one per line).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the EvalAI JSON submission.")
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            help="lam: submission (default) or boxes; ttm: frame (default, the challenge's) "
            "or segment (the baseline's validation file, one row per segment).",
        ),
    ] = None,
    groundtruth: Annotated[
        Path | None,
        typer.Option(
            "--groundtruth",
            help="Also write the annotations' labels of the same rows (for socialav evaluate).",
        ),
    ] = None,
    lam_stride: Annotated[
        int,
        typer.Option(
            "--lam-stride", callback=bounded(1), help="Score every N-th track frame (LAM)."
        ),
    ] = 1,
    batch_size: Annotated[
        int, typer.Option("--batch-size", callback=bounded(1), help="Samples per pass.")
    ] = 64,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
    threads: Annotated[
        int, typer.Option("--threads", callback=bounded(1), help="Torch CPU threads.")
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", callback=bounded(1), help="Local worker processes (one clip per task)."
        ),
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Dask scheduler address (tcp://host:8786) or local:N."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Score every clip of ANNOTATIONS (or of --split-list) with the checkpoints, in the
    baselines' evaluation mode, and write OUTPUT in the challenge layout.

    Clips whose frames or audio are missing are skipped and listed (exit code 1); bad input
    prints one line and exits with code 2, writing nothing.
    """
    from socialav.checkpoints.format import CheckpointError
    from socialav.cli.data import video_progress
    from socialav.data.ego4d.annotations import Ego4dAnnotationError
    from socialav.io.ego4d_submission import SubmissionError
    from socialav.pipelines.predict_ego4d import (
        PredictConfig,
        predict_ego4d,
        write_prediction_files,
    )

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    console = Console(stderr=True)
    config = PredictConfig(
        task=task,
        weights=tuple(weights),
        annotations=str(annotations),
        frames_dir=None if frames is None else str(frames),
        audio_dir=None if audio_dir is None else str(audio_dir),
        split_list=None if split_list is None else str(split_list),
        lam_stride=lam_stride,
        batch_size=batch_size,
        device=device,
        num_threads=threads,
    )
    try:
        with video_progress(console, f"predict {task}") as bars:
            bar = bars.add_task("batches or clips", total=None)
            result = predict_ego4d(
                config,
                workers=workers,
                cluster=cluster,
                progress=lambda done, total: bars.update(bar, completed=done, total=total),
            )
        if not result.is_main:
            return
        rows = write_prediction_files(
            result, output, layout=layout, json_path=json_path, groundtruth=groundtruth
        )
    except (
        CheckpointError,
        Ego4dAnnotationError,
        SubmissionError,
        OSError,
        ValueError,
        ImportError,
    ) as exc:
        if debug:
            raise
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    archs = " + ".join(w["architecture"] for w in result.weights)
    typer.echo(
        f"wrote {rows} rows ({len(result.scores)} "
        f"{'faces' if task == 'lam' else 'segments'} of {len(result.clips)} clips, {archs}) "
        f"to {output}"
    )
    for path in (json_path, groundtruth):
        if path is not None:
            typer.echo(f"wrote {path}")
    for skip in result.skipped[:_MAX_EXAMPLES]:
        typer.echo(f"skipped {skip.clip_uid}: {skip.reason} ({skip.detail})", err=True)
    if result.skipped:
        reasons: dict[str, int] = {}
        for skip in result.skipped:
            reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
        summary = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        typer.echo(f"error: {len(result.skipped)} clips not scored ({summary})", err=True)
        raise typer.Exit(1)
