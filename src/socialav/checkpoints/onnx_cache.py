"""ONNX graphs exported from a checkpoint file, cached under the file's sha256 with a JSON
record of what the file holds, so that a model exported once loads later without PyTorch.

An entry is ``<kind>-<sha256[:16]>-v<version>-<graph>.onnx`` per graph plus
``<kind>-<sha256[:16]>-v<version>.json``; the record is written last, so its presence means
every graph is complete (each file is written atomically). Why and what it saves:
``docs/speed.md`` (start-up without PyTorch).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialav.hub import cache_dir
from socialav.io.atomic import atomic_output_path, atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "ExportedGraphs",
    "default_cache_dir",
    "find_exported",
    "find_or_export",
    "torch_onnx_writer",
    "write_exported",
]

#: The ONNX opset of every exported graph.
ONNX_OPSET = 17


def default_cache_dir() -> Path:
    """``onnx/`` in the user cache of :func:`socialav.hub.cache_dir` (``$SOCIALAV_CACHE_DIR``
    > ``$XDG_CACHE_HOME/socialav`` > ``~/.cache/socialav``)."""
    return cache_dir() / "onnx"


@dataclass(frozen=True)
class ExportedGraphs:
    """A complete cache entry.

    Attributes:
        graphs: graph name (``visual``, ``audio``, ``decoder``, ...) -> its ``.onnx`` file.
        record: what the exporter stored about the checkpoint (JSON object; for the ASD
            models ``architecture``, ``task``, ``format`` and ``visual_receptive_field_frames``).
    """

    graphs: Mapping[str, Path]
    record: Mapping[str, Any]


def _stem(sha256: str, kind: str, version: str) -> str:
    if len(sha256) < 16 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(f"expected a hex sha256 digest, but got {sha256!r}")
    return f"{kind}-{sha256[:16].lower()}-v{version}"


def _paths(
    folder: Path, sha256: str, kind: str, version: str, graph_names: Sequence[str]
) -> tuple[Path, dict[str, Path]]:
    stem = _stem(sha256, kind, version)
    return folder / f"{stem}.json", {g: folder / f"{stem}-{g}.onnx" for g in graph_names}


def find_exported(
    sha256: str,
    kind: str,
    version: str,
    graph_names: Sequence[str],
    cache_dir: str | Path | None = None,
) -> ExportedGraphs | None:
    """The cached graphs of the checkpoint file with digest ``sha256``, or ``None`` when the
    entry is missing, incomplete, or its record unreadable (then it is exported again).

    Args:
        sha256: hex sha256 of the checkpoint file.
        kind: what was exported (``asd``, ``ge2e``): part of the file names.
        version: the exporter's version; bump it when the exported graphs change.
        graph_names: the graphs the entry must have.
        cache_dir: the cache folder (default :func:`default_cache_dir`).

    Raises:
        ValueError: ``sha256`` is not a hex digest.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    record_path, graphs = _paths(folder, sha256, kind, version, graph_names)
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable ONNX cache record %s: %s", record_path, exc)
        return None
    if not isinstance(record, dict) or record.get("sha256") != sha256:
        logger.warning("ignoring ONNX cache record %s: it is for another file", record_path)
        return None
    if not all(p.is_file() for p in graphs.values()):
        return None
    return ExportedGraphs(graphs, record)


def write_exported(
    sha256: str,
    kind: str,
    version: str,
    writers: Mapping[str, Callable[[Path], None]],
    record: Mapping[str, Any],
    cache_dir: str | Path | None = None,
) -> ExportedGraphs:
    """Export the graphs of a checkpoint file into the cache (each file atomically, the
    record last) and return the entry.

    Args:
        sha256, kind, version, cache_dir: see :func:`find_exported`.
        writers: graph name -> a function that writes that graph to the path it is given.
        record: JSON-serialisable facts about the checkpoint (``sha256`` is added).

    Raises:
        ValueError: ``sha256`` is not a hex digest.
        OSError: the cache folder cannot be written.
        Whatever a writer raises (nothing of that graph is left behind).
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record_path, graphs = _paths(folder, sha256, kind, version, list(writers))
    for name, write in writers.items():
        logger.info("exporting the %s graph to %s", name, graphs[name])
        with atomic_output_path(graphs[name]) as tmp:
            write(tmp)
    full = {**record, "sha256": sha256, "graphs": sorted(graphs)}
    with atomic_write(record_path) as fh:
        json.dump(full, fh, indent=1, sort_keys=True)
    return ExportedGraphs(graphs, full)


def find_or_export(
    sha256: str,
    kind: str,
    version: str,
    make_writers: Callable[[], Mapping[str, Callable[[Path], None]]],
    graph_names: Sequence[str],
    record: Mapping[str, Any],
    cache_dir: str | Path | None = None,
) -> ExportedGraphs:
    """The cached entry (:func:`find_exported`), or a new one written with the writers that
    ``make_writers()`` returns (:func:`write_exported`); ``make_writers`` is called only on a
    miss, so whatever it needs (PyTorch, the onnx package) is imported only then.

    Raises:
        ValueError: ``sha256`` is not a hex digest, or the writers are not ``graph_names``.
        OSError, and what a writer raises: see :func:`write_exported`.
    """
    found = find_exported(sha256, kind, version, graph_names, cache_dir)
    if found is not None:
        return found
    writers = make_writers()
    if sorted(writers) != sorted(graph_names):
        raise ValueError(f"writers for {sorted(writers)}, expected {sorted(graph_names)}")
    return write_exported(sha256, kind, version, writers, record, cache_dir)


def torch_onnx_writer(
    module: Any,
    examples: Sequence[Any],
    input_names: Sequence[str],
    output_name: str,
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> Callable[[Path], None]:
    """A writer for :func:`write_exported` that exports a PyTorch ``module`` (eval mode) with
    ``torch.onnx.export`` (TorchScript tracer, opset :data:`ONNX_OPSET`, fp32) on the example
    inputs, with the given input / output names and dynamic axes.

    Raises (when called):
        ImportError: the ``onnx`` package (which the exporter needs) is missing.
    """

    def write(path: Path) -> None:
        import torch

        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError as err:
            raise ImportError(
                f"exporting {type(module).__name__} to ONNX needs the 'onnx' package: "
                "pip install onnx"
            ) from err
        with warnings.catch_warnings():
            # tracer warnings about shape checks, and the RNN batch-size notice: the RNNs
            # start from zero states, and batches of any size are tested against PyTorch
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size")
            torch.onnx.export(
                module,
                tuple(examples),
                str(path),
                dynamo=False,
                input_names=list(input_names),
                output_names=[output_name],
                dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                opset_version=ONNX_OPSET,
            )

    return write
