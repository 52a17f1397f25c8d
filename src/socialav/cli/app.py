"""The Typer application object shared by the command modules (no commands here)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="socialav",
    help="Who speaks, who talks to me, who looks at me: frame by frame, on any video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def parse_windows(text: str) -> tuple[float, ...] | None:
    """``--windows`` value: ``full`` (one pass over each track) or seconds like ``1,2,3``."""
    if text.strip().lower() in ("full", "none", ""):
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected 'full' or comma-separated seconds like '1,2,3,4,5,6', got {text!r}"
        ) from None
