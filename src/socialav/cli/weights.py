"""``socialav weights list|verify|download``: the pretrained weights registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from socialav import hub
from socialav.cli.app import app

weights_app = typer.Typer(
    help="List, verify and download pretrained weights.", no_args_is_help=True
)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def list_weights() -> None:
    """Show every registered weights file, its licence and whether a verified copy is here."""
    console = Console()
    table = Table(title="socialav weights")
    table.add_column("name", no_wrap=True)
    table.add_column("kind", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("licence", overflow="fold", ratio=1)
    paths = []
    for name, entry in sorted(hub.REGISTRY.items()):
        status, path = hub.weights_status(name)
        table.add_row(name, entry.kind, status, entry.licence)
        paths.append((name, path))
    console.print(table)
    for name, path in paths:
        console.print(f"{name}: {path or '-'}", highlight=False, soft_wrap=True)


@weights_app.command("verify")
def verify(
    names: Annotated[
        list[str] | None, typer.Argument(help="Names to verify (default: all).")
    ] = None,
) -> None:
    """Check the sha256 of local weights; exit 1 if any is missing or does not match."""
    bad = 0
    for name in names or sorted(hub.REGISTRY):
        try:
            entry = hub.get_entry(name)
        except hub.WeightsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        status, path = hub.weights_status(name)
        bad += status != "ok"
        typer.echo(f"{status:8s} {name:28s} {path or '-'} (expected sha256 {entry.sha256[:12]}…)")
    raise typer.Exit(1 if bad else 0)


@weights_app.command("download")
def download(
    names: Annotated[list[str], typer.Argument(help="Names to fetch into the cache.")],
) -> None:
    """Download weights into the user cache (verifying their sha256)."""
    for name in names:
        try:
            path = hub.resolve_weights(name)
        except hub.WeightsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"ok {name} {path}")
