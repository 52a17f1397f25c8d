"""``python -m socialav.cli`` runs the command-line interface."""

from socialav.cli import app

app()
