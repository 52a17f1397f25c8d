"""``socialav train CONFIG``: train or fine-tune a model (resumes an interrupted run).

ASD models (Light-ASD, LR-ASD, TalkNet) train on a prepared AVA-layout root (``data``), the
Ego4D models (GazeLSTM for LAM, the QuAVF branches for TTM) on Ego4D annotations and media
(``ego4d``); one engine (:mod:`socialav.training.engine`) runs them all.

Multi-GPU / multi-node: launch the same command through torchrun, e.g.
``torchrun --nproc-per-node 4 -m socialav.cli train CONFIG.yaml``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from socialav.cli.app import app, bounded, exit_with_error


@app.command("train")
def train_command(
    config_path: Annotated[Path, typer.Argument(help="Training config (YAML or JSON).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Override output_dir of the config.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(callback=bounded(1), help="Override the number of epochs.")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            callback=bounded(1), help="Torch threads per process (overrides num_threads)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Train as configured; a run whose output_dir holds checkpoints/state_last.pt resumes."""
    overrides: dict = {}
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    if epochs is not None:
        overrides["epochs"] = epochs
    if threads is not None:
        overrides["num_threads"] = threads
    from socialav.training.config import ConfigError, load_config

    console = Console(stderr=True)
    try:
        config = load_config(config_path, overrides)
    except (ConfigError, FileNotFoundError) as exc:
        exit_with_error(exc)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = _run(config, quiet, console)
    except (ConfigError, FileNotFoundError, ValueError) as exc:  # data, weights, checkpoints
        exit_with_error(exc)
    for row in result.history:
        val = row["val_map_percent"]
        val_text = (
            "-" if val is None or (isinstance(val, float) and math.isnan(val)) else f"{val:.2f}"
        )
        console.print(
            f"epoch {row['epoch']}: loss {row['train_loss']:.4f} acc "
            f"{100 * row['train_accuracy']:.1f}% val mAP {val_text}"
        )
    console.print(f"best epoch {result.best_epoch}: {result.best_checkpoint}")


def _run(config, quiet: bool, console: Console):
    """Train with a progress bar on ``console`` (none with ``quiet``)."""
    from socialav.training.engine import ProgressEvent
    from socialav.training.train import train

    if quiet:
        return train(config)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        tasks: dict[tuple[str, int], int] = {}

        def on_progress(event: ProgressEvent) -> None:
            key = (event.stage, event.epoch)
            if key not in tasks:
                tasks[key] = bar.add_task(
                    f"{event.stage} epoch {event.epoch}/{event.epochs}",
                    total=event.num_steps,
                    info="",
                )
            info = f"loss {event.loss:.4f}" if event.loss is not None else ""
            bar.update(tasks[key], completed=event.step, info=info)

        return train(config, progress=on_progress)
