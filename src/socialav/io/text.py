"""Reading a user's text input file (CSV, RTTM, YAML, JSON, lists): the one place a file
that is not UTF-8 text becomes an error naming the file and what it looks like instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["read_text"]

#: First bytes of files people pass by mistake, and what to call them.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "an MP4/MOV video"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (0, b"PK\x03\x04", "a zip archive (a PyTorch checkpoint?)"),
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"RIFF", "a RIFF (WAV/AVI) file"),
    (0, b"\x80", "a pickle"),
    (0, b"\x1f\x8b", "a gzip file"),
)


def read_text(
    path: str | os.PathLike[str],
    what: str,
    *,
    error: Callable[[str], Exception] = ValueError,
    encoding: str = "utf-8",
) -> str:
    """The text of ``path``, decoded as ``encoding`` (``"utf-8-sig"`` drops a BOM).

    Args:
        path: the file.
        what: what the caller expected, for the message (``"groundtruth CSV"``, ...).
        error: builds the exception raised for a file that is not text from its message
            (the caller's own error type, so its command prints it as one line).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        error: the bytes are not ``encoding`` text; the message names the file, the
            offset of the first bad byte and, for common binary formats, what it is.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        kind = next(
            (name for at, sig, name in _SIGNATURES if data[at : at + len(sig)] == sig), None
        )
        looks = f"it looks like {kind}" if kind else f"byte {exc.start} is 0x{data[exc.start]:02x}"
        raise error(f"{path}: expected a {what} as UTF-8 text, but {looks}") from None
