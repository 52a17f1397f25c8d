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
