"""Atomic file writing, shared by every writer in the project.

A writer gets a temporary file in the destination directory, flushes and fsyncs it, and
moves it over the destination with :func:`os.replace`. A writer that fails midway leaves the
previous file (if any) untouched and no temporary file behind. :func:`atomic_write` yields a
file object; :func:`atomic_output_path` yields a path, for libraries that open the file
themselves (PyAV, matplotlib, ``np.save``, ``torch.save``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_directory", "atomic_output_path", "atomic_write"]


#: Longest file name most file systems take (ext4, APFS, NTFS: 255 bytes).
_MAX_NAME_BYTES = 255


def _temp_path_beside(path: Path) -> Path:
    # Keep the destination's suffix last so that libraries which infer the format from the
    # extension (matplotlib, np.save, PyAV) see the right one; shorten the rest so that a
    # destination whose own name fits never gets a temporary name that does not.
    tail = f".{secrets.token_hex(6)}.tmp{path.suffix}"
    room = _MAX_NAME_BYTES - 1 - len(tail.encode())
    head = path.name.encode()[:room].decode(errors="ignore")
    return path.with_name(f".{head}{tail}")


def _fsync_dir(directory: Path) -> None:
    # Best effort: makes the rename durable on POSIX; not supported on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    For libraries that open the output file themselves (PyAV, matplotlib, ``np.savez``).
    The temporary file is named ``.<name>.<random>.tmp<suffix>`` in the same directory (so
    :func:`os.replace` is an atomic rename on the same file system) and keeps the suffix of
    ``path``. After the ``with`` block the file is fsynced and renamed; if the block raises,
    or leaves no file behind, the temporary file is removed and ``path`` is left as it was.
    Missing parent directories are created.

    Raises:
        FileNotFoundError: the block finished without creating the temporary file.
        IsADirectoryError: ``path`` is an existing directory.
    """
    final = Path(path)
    if final.is_dir():
        raise IsADirectoryError(f"expected a file path to write, but {final} is a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path_beside(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(
                f"the writer for {final} finished without creating its temporary file {tmp}"
            )
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    fsync: bool = True,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success move it over ``path``.

    Args:
        path: destination file.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (ignored in binary mode).
        newline: passed to :func:`open` (use ``""`` for the :mod:`csv` module).
        fsync: flush the file and its folder to disk before and after the rename (False for
            many small files whose completeness another, fsynced, file records).

    Yields:
        The open file object. On leaving the block it is flushed, fsynced, closed and
        renamed to ``path`` with :func:`os.replace`. If the block raises, the temporary file
        is removed and an existing ``path`` is left untouched.

    Raises:
        ValueError: ``mode`` is not ``"w"`` or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', but got {mode!r}")
    final = Path(path)
    if final.is_dir():
        raise IsADirectoryError(f"expected a file path to write, but {final} is a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path_beside(final)
    # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide permissions
    # (mkstemp would create 0o600 files).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode == "wb":
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder).

    For outputs that are a folder of files (an Ego4D clip's frames): the folder appears
    complete or not at all. An existing ``path`` is removed just before the rename (the two
    steps are not one atomic operation: a crash between them leaves no folder, never a
    partial one). If the block raises, the temporary folder is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path_beside(final.with_suffix(""))
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------
