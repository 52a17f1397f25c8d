"""``socialav evaluate``: AVA-ActiveSpeaker mAP, Ego4D Talking-to-Me / Looking-at-Me mAP and
accuracy of a prediction CSV against ground truth, or the diarization error rate (DER) of a
system RTTM against a reference RTTM."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from socialav.cli.app import app, bounded

_TASKS = ("ava", "ttm", "lam", "diarization")


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
    ctx: typer.Context,
    groundtruth: Annotated[
        Path,
        typer.Option(
            "--groundtruth",
            "-g",
            help="Ground-truth CSV (AVA or UniTalk layout, header optional); the reference "
            "RTTM with --task diarization.",
        ),
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            "-p",
            help="Prediction CSV: the AVA columns plus score (confidence of SPEAKING_AUDIBLE); "
            "the system RTTM (e.g. detect's <stem>.rttm) with --task diarization.",
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
            help="Benchmark: ava (AVA-ActiveSpeaker), ttm (Ego4D Talking-to-Me), lam "
            "(Ego4D Looking-at-Me) or diarization (who spoke when: DER of RTTM files).",
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
    collar_s: Annotated[
        float | None,
        typer.Option(
            "--collar",
            callback=bounded(0.0, 10.0),
            help="--task diarization: seconds not scored around each reference boundary, "
            "total width (pyannote.metrics semantics; NIST's 0.25 s each side is 0.5). "
            "[default: 0.25]",
        ),
    ] = None,
    skip_overlap: Annotated[
        bool,
        typer.Option(
            "--skip-overlap", help="--task diarization: do not score overlapped reference speech."
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

    With --task diarization: DER of the system RTTM against the reference RTTM
    (pyannote.metrics: missed + false alarm + confusion over reference speech, optimal
    speaker mapping), its parts, JER, purity and coverage; several file ids in the files are
    scored per recording and accumulated. Prints "DER: <percent>" then the tables.

    Invalid input (missing, extra or duplicate rows, bad labels, scores or boxes; malformed
    RTTM lines) prints one line on stderr and exits with code 2.
    """
    from socialav.evaluation.ava import AvaValidationError, evaluate_ava, write_evaluation_json
    from socialav.io.ava_csv import AvaCsvError, read_video_id_list

    if debug:
        logging.basicConfig(level=logging.DEBUG)
    _check_task_options(ctx, task, subset, allow_any_score, collar_s, skip_overlap)
    if task == "diarization":
        _evaluate_diarization(
            groundtruth, predictions, json_path, 0.25 if collar_s is None else collar_s,
            skip_overlap, debug,
        )  # fmt: skip
        return
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


def _check_task_options(
    ctx: typer.Context,
    task: str,
    subset: Path | None,
    allow_any_score: bool,
    collar_s: float | None,
    skip_overlap: bool,
) -> None:
    """Refuse options the chosen --task does not use (rather than ignore them)."""
    source = ctx.get_parameter_source("threshold")
    given_threshold = source is not None and source.name != "DEFAULT"
    unused: list[tuple[str, str]] = []
    if task != "ava":
        if subset is not None:
            unused.append(("--subset", "applies to --task ava only"))
        if allow_any_score:
            why = "applies to --task ava only"
            if task in ("ttm", "lam"):
                why += f"; --task {task} needs probabilities in [0, 1] (its class-0 AP ranks 1 - score)"
            unused.append(("--allow-any-score", why))
    if task == "diarization" and given_threshold:
        unused.append(("--threshold", "has no meaning for --task diarization (RTTM turns)"))
    if task != "diarization":
        if collar_s is not None:
            unused.append(("--collar", "applies to --task diarization only"))
        if skip_overlap:
            unused.append(("--skip-overlap", "applies to --task diarization only"))
    if unused:
        option, why = unused[0]
        typer.echo(f"error: {option} {why}; got --task {task}", err=True)
        raise typer.Exit(2)


def _evaluate_diarization(
    reference: Path,
    system: Path,
    json_path: Path | None,
    collar_s: float,
    skip_overlap: bool,
    debug: bool,
) -> None:
    """The ``--task diarization`` branch of :func:`evaluate`."""
    import json

    from socialav.evaluation.diarization import evaluate_diarization
    from socialav.io.atomic import atomic_write

    try:
        result = evaluate_diarization(
            reference, system, collar_s=collar_s, skip_overlap=skip_overlap
        )
    except (ValueError, OSError) as exc:
        _exit_with_error(exc, debug)

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}"

    console = Console(soft_wrap=True)
    console.print(f"DER: {pct(result['der'])}", highlight=False)
    table = Table(
        title=f"diarization (collar {collar_s:g} s total"
        f"{', overlap not scored' if skip_overlap else ''})",
        show_header=True,
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    total = result["total_s"]
    for name, key in (
        ("missed speech %", "missed_detection_s"),
        ("false alarm %", "false_alarm_s"),
        ("speaker confusion %", "confusion_s"),
    ):
        table.add_row(name, pct(result[key] / total) if total else "n/a")
    table.add_row("JER %", pct(result["jer"]))
    table.add_row("purity %", pct(result["purity"]))
    table.add_row("coverage %", pct(result["coverage"]))
    table.add_row("reference speech s", f"{total:.2f}")
    table.add_row("recordings", str(result["num_recordings"]))
    console.print(table)
    per = result["recordings"]
    if len(per) > 1:
        rows = Table(title="per recording (file id)", show_header=True)
        for name in ("file id", "DER %", "speech s", "speakers ref", "speakers sys"):
            rows.add_column(name, justify="left" if name == "file id" else "right")
        for file_id, m in per.items():
            rows.add_row(
                file_id,
                pct(m["der"]),
                f"{m['total_s']:.2f}",
                str(m["num_reference_speakers"]),
                str(m["num_system_speakers"]),
            )
        console.print(rows)
    if result["missing_in_system"]:
        missing = result["missing_in_system"]
        typer.echo(
            f"warning: the system RTTM has no turn for {len(missing)} reference recording(s) "
            f"{missing[:5]}: scored as all missed",
            err=True,
        )
    if json_path is not None:
        try:
            with atomic_write(json_path) as handle:
                handle.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
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
