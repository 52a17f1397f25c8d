"""The Typer application object shared by the command modules, and the option parsers and
error reporting every command uses (no commands here)."""

from __future__ import annotations

from typing import NoReturn

import typer


def _version(value: bool) -> None:
    if value:
        from socialav import __version__

        typer.echo(f"socialav {__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    name="socialav",
    help="Who speaks, who talks to me, who looks at me: frame by frame, on any video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Who speaks, who talks to me, who looks at me: frame by frame, on any video."""


#: Frame rate window durations must be whole frames of (the ASD models' 25 fps timeline).
_WINDOW_FPS = 25.0


def bounded(minimum: float | None = None, maximum: float | None = None):
    """An option callback that refuses a number outside ``[minimum, maximum]`` (``None``: no
    bound; a ``None`` value, the option not given, passes), with a message giving the value
    and the range. The bounds are kept on the callback (``.bounds``) so that tests can find
    every numeric option and try values outside them.

    Raises (from the callback):
        typer.BadParameter: the value is outside the range.
    """

    def check(value):
        if value is None:
            return value
        for v in value if isinstance(value, list | tuple) else [value]:
            if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
                if minimum is not None and maximum is not None:
                    allowed = f"between {minimum:g} and {maximum:g}"
                elif minimum is not None:
                    allowed = f"at least {minimum:g}"
                else:
                    allowed = f"at most {maximum:g}"
                raise typer.BadParameter(f"got {v!r}; expected a number {allowed}")
        return value

    check.bounds = (minimum, maximum)  # type: ignore[attr-defined]
    return check


def parse_windows(text: str, option: str = "--windows") -> tuple[float, ...] | None:
    """``--windows`` value: ``full`` (one pass over each track) or positive durations in
    seconds, each a whole number of 25 fps frames, like ``1,2,3`` or ``6``.

    Raises:
        typer.BadParameter: anything else (the value and what is allowed; click adds the
            option's name).
    """
    if text.strip().lower() in ("full", "none"):
        return None
    allowed = (
        "'full' or comma-separated positive seconds in whole 1/25 s frames like '6' or '1,2,3'"
    )
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected {allowed}, got {text!r}") from None
    for v in values:
        frames = v * _WINDOW_FPS
        if not v > 0 or abs(frames - round(frames)) > 1e-6:
            raise typer.BadParameter(f"expected {allowed}, got {text!r} ({v:g} s)")
    return values


def parse_choices(
    text: str, allowed: tuple[str, ...], option: str, *, allow_empty: bool = False
) -> tuple[str, ...]:
    """A comma-separated subset of ``allowed`` (order kept, duplicates dropped).

    Raises:
        typer.BadParameter: an unknown name, or nothing given (unless ``allow_empty``).
    """
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise typer.BadParameter(
            f"got {text!r}: {', '.join(map(repr, unknown))} unknown; expected some of "
            f"{', '.join(allowed)} (comma-separated)",
            param_hint=option,
        )
    if not names and not allow_empty:
        raise typer.BadParameter(
            f"got nothing; expected some of {', '.join(allowed)}", param_hint=option
        )
    return names


def exit_with_error(exc: BaseException, debug: bool = False, code: int = 2) -> NoReturn:
    """One line on stderr (``error: ...``) and exit ``code``; the traceback with ``--debug``."""
    if debug:
        raise exc
    message = " ".join(str(exc).split()) or type(exc).__name__
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code) from None
