"""``socialav calibrate``: match a fine-tuned ASD checkpoint's decision threshold to a
reference model (see :mod:`socialav.training.calibration`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from socialav.cli.app import app, bounded


@app.command("calibrate")
def calibrate(
    checkpoint: Annotated[
        str, typer.Argument(help="socialav light-asd / lr-asd checkpoint file or registry name.")
    ],
    root: Annotated[
        Path, typer.Option("--root", help="Prepared dataset (socialav data talkset / prepare).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Calibrated checkpoint.")],
    reference: Annotated[
        str,
        typer.Option(
            "--reference", help="Weights whose recall to match (registry name or checkpoint)."
        ),
    ] = "light-asd-ava",
    split: Annotated[
        str, typer.Option("--split", help="Held-out split of ROOT (never the training split).")
    ] = "val",
    recall: Annotated[
        float | None,
        typer.Option(
            "--recall",
            callback=bounded(0.0, 1.0),
            help="Recall to reach instead of the reference's.",
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", callback=bounded(1), help="Torch CPU threads.")
    ] = 1,
) -> None:
    """Shift the speaking-logit margin of CHECKPOINT so that, on the held-out frames where a
    face speaks, it has the recall at P(speaking) = 0.5 that REFERENCE has (or --recall;
    frame ranking, and so every AP, unchanged); write the result to OUTPUT."""
    from socialav.inference.backends import configure_threads
    from socialav.training.calibration import calibrate_asd_checkpoint

    logging.basicConfig(level=logging.WARNING)
    configure_threads(threads)
    try:
        r = calibrate_asd_checkpoint(checkpoint, reference, root, output, split, recall)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote {r.output}: margin shift {r.shift:+.3f} on {r.num_positive_frames} speaking / "
        f"{r.num_negative_frames} not-speaking frames of {root}:{split}\n"
        f"recall at 0.5: {r.recall_before:.3f} -> {r.recall_after:.3f} "
        f"(target {r.target_recall:.3f}, reference {r.reference_recall:.3f}); "
        f"false-positive rate: "
        f"{r.false_positive_rate_before:.3f} -> {r.false_positive_rate_after:.3f} "
        f"(reference {r.reference_false_positive_rate:.3f})"
    )
