"""Every option of every command is checked before any work, by construction.

The command tree is read from the Typer app itself, so a new command or option is covered
without editing this file: every int/float option must declare its range (typer ``min``/
``max`` or :func:`socialav.cli.app.bounded`), and each range and each fixed vocabulary
(a callback with ``.choices``) is tried with a value outside it: one clear error naming the
option and what is allowed, exit code 2, no traceback and nothing written.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from socialav.cli import app


def _commands(command=None, prefix=()):
    command = command or typer.main.get_command(app)
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*prefix, name))
    else:
        yield prefix, command


def _annotation(param) -> type | None:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    return annotation


def _bounds(param) -> tuple[float | None, float | None] | None:
    if getattr(param, "min", None) is not None or getattr(param, "max", None) is not None:
        return param.min, param.max
    return getattr(param.callback, "bounds", None)


def _placeholder(param, tmp_path: Path) -> str:
    annotation = _annotation(param)
    if annotation in (int, float):
        low, _ = _bounds(param) or (1, None)
        return str(int(low) + 1 if low is not None else 1)
    if annotation is Path:
        return str(tmp_path / "input.mp4")
    choices = getattr(param.callback, "choices", None)
    return choices[0] if choices else "x"


def _invoke(path, command, option, value, tmp_path):
    args = list(path)
    for param in command.params:
        if param.required and param is not option:
            if param.param_type_name == "argument":
                args.append(_placeholder(param, tmp_path))
            else:
                args += [param.opts[0], _placeholder(param, tmp_path)]
    args += [option.opts[0], value]
    return CliRunner().invoke(app, args, catch_exceptions=True)


NUMERIC = [
    (path, command, param)
    for path, command in _commands()
    for param in command.params
    if param.param_type_name == "option" and _annotation(param) in (int, float)
]
CHOICES = [
    (path, command, param)
    for path, command in _commands()
    for param in command.params
    if getattr(param.callback, "choices", None)
]


def test_the_command_tree_is_found():
    names = {" ".join(p) for p, _ in _commands()}
    assert {"detect", "evaluate", "score", "train", "calibrate", "data prepare"} <= names
    assert len(NUMERIC) >= 15 and len(CHOICES) >= 3


@pytest.mark.parametrize(
    ("path", "command", "param"),
    NUMERIC,
    ids=[f"{' '.join(p)} {q.opts[0]}" for p, _, q in NUMERIC],
)
def test_every_numeric_option_declares_its_range(path, command, param):
    assert _bounds(param) is not None, (
        f"{' '.join(path)} {param.opts[0]}: give the option a range (typer min/max or "
        "socialav.cli.app.bounded) so that 0 and negative values are refused before any work"
    )


def _outside(param) -> list[str]:
    low, high = _bounds(param) or (None, None)
    step = 1 if _annotation(param) is int else 0.5
    values = []
    if low is not None:
        values.append(str(int(low - 1)) if step == 1 else str(low - step))
    if high is not None:
        values.append(str(int(high + 1)) if step == 1 else str(high + step))
    return values


BAD_NUMBERS = [
    (path, command, param, value)
    for path, command, param in NUMERIC
    if _bounds(param) is not None
    for value in _outside(param)
]


@pytest.mark.parametrize(
    ("path", "command", "param", "value"),
    BAD_NUMBERS,
    ids=[f"{' '.join(p)} {q.opts[0]}={v}" for p, _, q, v in BAD_NUMBERS],
)
def test_out_of_range_values_are_one_clear_error(
    path, command, param, value, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = _invoke(path, command, param, value, tmp_path)
    assert result.exit_code == 2, result.output
    assert param.opts[0] in result.output and "expected" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a rejected run wrote files"


@pytest.mark.parametrize(
    ("path", "command", "param"),
    CHOICES,
    ids=[f"{' '.join(p)} {q.opts[0]}" for p, _, q in CHOICES],
)
def test_unknown_choices_are_one_clear_error(path, command, param, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(path, command, param, "no-such-value", tmp_path)
    assert result.exit_code == 2, result.output
    assert param.opts[0] in result.output and "no-such-value" in result.output
    assert all(c in result.output for c in param.callback.choices)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--windows", "0"], "positive seconds"),
        (["--windows", "0.03"], "whole 1/25 s frames"),
        (["--windows", "two"], "expected 'full'"),
        (["--tasks", "asd,talking"], "'talking' unknown"),
        (["--tasks", ","], "got nothing"),
        (["--outputs", "csv,video,pdf"], "'pdf' unknown"),
    ],
)
def test_detect_list_options_are_checked_before_work(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["detect", "x.mp4", *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split()).replace("│ ", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_version():
    from socialav import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"socialav {__version__}"
