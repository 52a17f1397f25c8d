"""Thin command-line interface over the library. Each command lives in its own module and
registers itself on :data:`socialav.cli.app.app`; only this package draws progress bars."""

from __future__ import annotations

import importlib

from socialav.cli.app import app

# Command modules: each registers its commands on ``app`` when imported.
for _name in (
    "data",
    "detect",
    "evaluate",
    "score",
    "calibrate",
    "weights",
    "train",
    "talkset",
    "ego4d_media",
    "predict",
    "ego4d_data",
    "download",
):
    try:
        importlib.import_module(f"socialav.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"socialav.cli.{_name}":
            raise

__all__ = ["app"]
