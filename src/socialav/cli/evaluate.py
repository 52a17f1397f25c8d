"""``socialav evaluate``: AVA-ActiveSpeaker mAP, or Ego4D Talking-to-Me / Looking-at-Me mAP and
accuracy, of a prediction CSV against ground truth."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from socialav.cli.app import app

_TASKS = ("ava", "ttm", "lam")


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _exit_with_error(exc: Exception, debug: bool) -> NoReturn:
    """One line on stderr and exit code 2 (the traceback too with ``--debug``)."""
    if debug:
        raise exc
    message = " ".join(str(exc).split())  # one line, whatever the message holds
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2) from None


def _task(value: str) -> str:
    if value not in _TASKS:
        raise typer.BadParameter(f"got {value!r}; expected one of {list(_TASKS)}")
    return value


_task.choices = _TASKS  # type: ignore[attr-defined]


def _threshold(ctx: typer.Context, value: float) -> float:
    """In [0, 1] (a probability), any finite number with ``--allow-any-score`` (logits)."""
    if not math.isfinite(value):
        raise typer.BadParameter(f"got {value!r}; expected a finite number")
    if not ctx.params.get("allow_any_score") and not 0.0 <= value <= 1.0:
        raise typer.BadParameter(
            f"got {value!r}; expected a number between 0 and 1 (scores are probabilities; "
            "pass --allow-any-score for logits)"
        )
    return value


_threshold.bounds = (0.0, 1.0)  # type: ignore[attr-defined]


@app.command("evaluate")
def evaluate(
    groundtruth: Annotated[
        Path,
        typer.Option(
            "--groundtruth",
            "-g",
            help="Ground-truth CSV (AVA or UniTalk layout, header optional).",
        ),
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            "-p",
            help="Prediction CSV: the AVA columns plus score (confidence of SPEAKING_AUDIBLE).",
        ),
    ],
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the metrics and per-video breakdown to this JSON file."),
    ] = None,
    subset: Annotated[
        Path | None,
        typer.Option(
            "--subset",
            help="File with one video_id per line (UniTalk sub_categories/test_<category>.csv): "
            "evaluate only these videos.",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            callback=_threshold,
            help="Score at or above which a face counts as speaking (accuracy, F1); in [0, 1] "
            "unless --allow-any-score.",
        ),
    ] = 0.5,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            callback=_task,
            help="Benchmark: ava (AVA-ActiveSpeaker), ttm (Ego4D Talking-to-Me) or lam "
            "(Ego4D Looking-at-Me).",
        ),
    ] = "ava",
    allow_any_score: Annotated[
        bool,
        typer.Option(
            "--allow-any-score",
            is_eager=True,
            help="Accept any finite score (e.g. logits) instead of probabilities in [0, 1].",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logging.")
    ] = False,
) -> None:
    """AVA-ActiveSpeaker mAP (official get_ava_active_speaker_performance.py semantics).

    Prints "mAP: <percent>", then accuracy, F1 and ROC-AUC and a per-video_id table.

    With --task ttm or lam: Ego4D social mAP (mean of the AP of both classes, official
    EGO4D/social-interactions common/metrics.py semantics) and accuracy at --threshold;
    prints "mAP: <percent>" and "accuracy: <fraction>" then a table.

    Invalid input (missing, extra or duplicate rows, bad labels, scores or boxes) prints one
    line on stderr and exits with code 2.
    """
    from socialav.evaluation.ava import AvaValidationError, evaluate_ava, write_evaluation_json
    from socialav.io.ava_csv import AvaCsvError, read_video_id_list

    if debug:
        logging.basicConfig(level=logging.DEBUG)
    if task in ("ttm", "lam"):
        _evaluate_social(
            task, groundtruth, predictions, json_path, subset, threshold, allow_any_score, debug
        )
        return
    try:
        subset_ids = read_video_id_list(subset) if subset is not None else None
        result = evaluate_ava(
            groundtruth,
            predictions,
            subset=subset_ids,
            threshold=threshold,
            score_range=None if allow_any_score else (0.0, 1.0),
        )
    except (AvaCsvError, AvaValidationError, OSError) as exc:
        _exit_with_error(exc, debug)

    console = Console(soft_wrap=True)
    console.print(f"mAP: {result.map_percent:.4f}", highlight=False)
    summary = Table(title="AVA-ActiveSpeaker", show_header=True)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("rows", str(result.num_rows))
    summary.add_row("positives (SPEAKING_AUDIBLE)", str(result.num_positives))
    summary.add_row(f"accuracy @ {result.threshold:g}", _fmt(result.accuracy))
    summary.add_row(f"F1 @ {result.threshold:g}", _fmt(result.f1))
    summary.add_row("ROC-AUC", _fmt(result.roc_auc))
    console.print(summary)
    ties = result.ties
    if ties is not None and ties.num_groups:
        console.print(
            f"ties: {ties.num_rows} rows share a score with another row ({ties.num_groups} "
            f"groups); mAP over the orders of tied rows: {ties.min_percent:.4f} to "
            f"{ties.max_percent:.4f} (the mAP above orders them as the official script does)",
            highlight=False,
        )
    videos = Table(title="per video_id", show_header=True)
    for name, justify in (
        ("video_id", "left"),
        ("mAP %", "right"),
        ("rows", "right"),
        ("positives", "right"),
    ):
        videos.add_column(name, justify=justify)  # type: ignore[arg-type]
    for video_id, ap in result.per_video.items():
        videos.add_row(
            video_id,
            _fmt(ap),
            str(result.per_video_num_rows[video_id]),
            str(result.per_video_num_positives[video_id]),
        )
    console.print(videos)
    if json_path is not None:
        try:
            write_evaluation_json(result, json_path)
        except OSError as exc:
            _exit_with_error(exc, debug)
        console.print(f"wrote {json_path}", highlight=False)


def _evaluate_social(
    task: str,
    groundtruth: Path,
    predictions: Path,
    json_path: Path | None,
    subset: Path | None,
    threshold: float,
    allow_any_score: bool,
    debug: bool,
) -> None:
    """The ``--task ttm|lam`` branch of :func:`evaluate`."""
    from socialav.evaluation.ego4d import (
        Ego4dMetricError,
        evaluate_lam,
        evaluate_ttm,
        write_social_evaluation_json,
    )

    if subset is not None or allow_any_score:
        option = "--subset" if subset is not None else "--allow-any-score"
        typer.echo(
            f"error: {option} applies to --task ava only; --task {task} evaluates every row "
            "and needs probabilities in [0, 1] (its class-0 AP ranks 1 - score)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        evaluate_fn = evaluate_ttm if task == "ttm" else evaluate_lam
        result = evaluate_fn(groundtruth, predictions, threshold)
    except Ego4dMetricError as exc:
        if debug:
            raise
        hint = " (AVA-ActiveSpeaker CSV files: use --task ava)" if exc.problem == "layout" else ""
        _exit_with_error(Ego4dMetricError(exc.problem, f"--task {task}: {exc}{hint}"), debug)
    except OSError as exc:
        _exit_with_error(exc, debug)
    console = Console(soft_wrap=True)
    console.print(f"mAP: {result.map_percent:.4f}", highlight=False)
    console.print(f"accuracy: {result.accuracy:.6f}", highlight=False)
    title = {"ttm": "Ego4D Talking-to-Me", "lam": "Ego4D Looking-at-Me"}[task]
    table = Table(title=f"{title} ({result.layout} layout)", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", str(result.num_rows))
    table.add_row("positives (label 1)", str(result.num_positives))
    table.add_row("AP label 1 %", _fmt(result.ap_positive_percent))
    table.add_row("AP label 0 (1 - score) %", _fmt(result.ap_negative_percent))
    table.add_row(f"accuracy @ {result.threshold:g}", _fmt(result.accuracy))
    table.add_row("true positive rate", _fmt(result.true_positive_rate))
    table.add_row("true negative rate", _fmt(result.true_negative_rate))
    console.print(table)
    if json_path is not None:
        try:
            write_social_evaluation_json(result, json_path)
        except OSError as exc:
            _exit_with_error(exc, debug)
        console.print(f"wrote {json_path}", highlight=False)
