"""The errors of reading checkpoints, importable without PyTorch (the command line and the
ONNX fast path catch them before, or without, loading any PyTorch model)."""

from __future__ import annotations

__all__ = ["CheckpointError", "CheckpointMismatchError"]


class CheckpointError(ValueError):
    """A socialav checkpoint is malformed or does not match what the caller expects."""


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the requested architecture.

    Attributes:
        unexpected: checkpoint keys that the architecture does not have (reference names).
        missing: parameters of the architecture absent from the checkpoint (reference names).
        shape_mismatches: ``(reference key, expected shape, found shape)``.
    """

    def __init__(
        self,
        message: str,
        unexpected: list[str],
        missing: list[str],
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.unexpected = unexpected
        self.missing = missing
        self.shape_mismatches = shape_mismatches
