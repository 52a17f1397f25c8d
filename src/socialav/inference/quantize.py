"""The int8 visual encoder of the ``onnx-int8`` backend: ONNX Runtime's static quantisation of
the exported fp32 visual graph, with activation ranges calibrated once on real face crops
and shipped in the package (``socialav/weights/int8/``), cached like the fp32 graphs.

Hands on the path of the int8 graph (:func:`int8_visual_graph`); the audio encoder and the
back-end stay fp32. Why, what it costs in logits and AP, and how the ranges were made:
``docs/speed.md`` (the int8 rows) and ``benchmarks/bench_int8.py``.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import tempfile
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np

from socialav.checkpoints.onnx_cache import find_or_export
from socialav.io.atomic import atomic_output_path
from socialav.types import ASD_ONNX_VERSION

__all__ = [
    "INT8_RANGES_DIR",
    "calibrate_visual_ranges",
    "int8_ranges_path",
    "int8_visual_graph",
    "quantize_visual",
    "required_int8_ranges",
    "shipped_int8_ranges",
    "weights_with_int8_ranges",
]

#: Where the activation ranges ship: one ONNX Runtime calibration table (its
#: ``calibration_cache_path`` JSON: per tensor of the pre-processed visual graph its
#: MinMax ``lowest`` / ``highest``) per weights file and export version.
INT8_RANGES_DIR: Path = Path(__file__).resolve().parents[1] / "weights" / "int8"


def int8_ranges_path(sha256: str, folder: Path = INT8_RANGES_DIR) -> Path:
    """Where the ranges of the weights file with digest ``sha256`` belong:
    ``<folder>/asd-<sha256[:16]>-v<ASD_ONNX_VERSION>.json`` (the tensor names they hold are
    those of this export version's graph)."""
    return folder / f"asd-{sha256[:16].lower()}-v{ASD_ONNX_VERSION}.json"


def shipped_int8_ranges(sha256: str) -> Path | None:
    """The shipped activation ranges of the weights file with digest ``sha256`` (hex), or
    ``None`` when none ship (then the ``onnx-int8`` backend cannot run those weights)."""
    path = int8_ranges_path(sha256)
    return path if path.is_file() else None


def weights_with_int8_ranges() -> list[str]:
    """Registry names (``socialav weights list``) of the ASD weights whose ranges ship."""
    from socialav import hub

    return sorted(
        name
        for name, entry in hub.REGISTRY.items()
        if entry.kind == "asd" and shipped_int8_ranges(entry.sha256) is not None
    )


def required_int8_ranges(sha256: str, what: str) -> Path:
    """The shipped ranges of the weights file with digest ``sha256``.

    Args:
        what: the weights, in the error message (e.g. ``"ASD weights 'light-asd-ava'"``).

    Raises:
        ValueError: none ship for them (the message names the weights for which they do).
    """
    ranges = shipped_int8_ranges(sha256)
    if ranges is None:
        raise ValueError(
            f"backend 'onnx-int8' needs int8 activation ranges calibrated for {what}; "
            f"expected {int8_ranges_path(sha256)}, but none ship for them (they ship for "
            f"{', '.join(weights_with_int8_ranges())}): use backend 'onnx'"
        )
    return ranges


def _quantize_static():
    """ONNX Runtime's ``quantize_static`` and ``quant_pre_process``.

    Raises:
        ImportError: an onnxruntime whose ``quantize_static`` cannot take stored ranges
            (``calibration_cache_path``), or no ``onnx`` package.
    """
    try:
        from onnxruntime.quantization import quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        raise ImportError(
            f"the int8 visual encoder needs onnxruntime's quantization tools and the 'onnx' "
            f"package: pip install 'onnxruntime>=1.32' onnx ({err})"
        ) from err
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        import onnxruntime

        raise ImportError(
            "the int8 visual encoder needs an onnxruntime whose quantize_static takes "
            f"calibration_cache_path (1.32 has it); found onnxruntime {onnxruntime.__version__}"
        )
    return quantize_static, quant_pre_process


def _settings():
    """The quantisation: QDQ, int8 weights per output channel, uint8 activations (ONNX
    Runtime's recommendation for x86 CPUs, ``quantize_static``'s docstring), MinMax ranges."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "reduce_range": False,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "calibrate_method": CalibrationMethod.MinMax,
    }


def calibrate_visual_ranges(
    fp32_visual: str | Path, windows: Iterable[np.ndarray], out_path: str | Path
) -> Path:
    """Calibrate the activation ranges of a visual-encoder graph on face crops and write
    them (atomically) as ONNX Runtime's calibration table.

    Args:
        fp32_visual: the fp32 ``visual`` graph of the ONNX cache (input ``faces``).
        windows: face-crop windows ``(1, T, 112, 112)`` float32 pixel values, as the
            windowing code feeds the encoder.
        out_path: the table to write (for shipping: :func:`int8_ranges_path`).

    Raises:
        ImportError: see :func:`_quantize_static`.
        ValueError: no windows.
    """
    quantize_static, pre_process = _quantize_static()
    from onnxruntime.quantization import CalibrationDataReader

    feeds = [{"faces": np.ascontiguousarray(w, dtype=np.float32)} for w in windows]
    if not feeds:
        raise ValueError("expected at least one face-crop window to calibrate on, got none")

    class _Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(feeds)

        def get_next(self):
            return next(self.left, None)

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="socialav-int8-") as tmp:
        prepared, table = Path(tmp) / "visual_pre.onnx", Path(tmp) / "ranges.json"
        pre_process(str(fp32_visual), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(Path(tmp) / "visual_int8.onnx"),
            _Windows(),
            calibration_cache_path=str(table),
            **_settings(),
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output_path(out_path) as dest:
            shutil.copyfile(table, dest)
    return out_path


def quantize_visual(fp32_visual: str | Path, ranges: str | Path, out_path: str | Path) -> None:
    """Write the int8 (QDQ) copy of a visual-encoder graph, quantised with stored ranges.

    Args:
        fp32_visual: the fp32 ``visual`` graph of the ONNX cache.
        ranges: a calibration table of :func:`calibrate_visual_ranges` for that graph.
        out_path: the int8 graph to write.

    Raises:
        ImportError: see :func:`_quantize_static`.
        ValueError: the table lacks the ranges of some convolution's input (it was made for
            another graph: regenerate it with ``benchmarks/bench_int8.py --write-ranges``).
    """
    quantize_static, pre_process = _quantize_static()
    with tempfile.TemporaryDirectory(prefix="socialav-int8-") as tmp:
        prepared, table = Path(tmp) / "visual_pre.onnx", Path(tmp) / "ranges.json"
        pre_process(str(fp32_visual), str(prepared), skip_symbolic_shape=True)
        shutil.copyfile(ranges, table)  # ONNX Runtime may rewrite a table it cannot use
        try:
            quantize_static(
                str(prepared), str(out_path), None, calibration_cache_path=str(table), **_settings()
            )
        except ValueError as err:  # ONNX Runtime: a tensor without its range
            raise ValueError(
                f"{ranges}: {_ANOTHER_GRAPH.format(graph=fp32_visual)} ({err})"
            ) from err
    unquantized = _convs_without_int8_input(out_path)
    if unquantized:
        raise ValueError(
            f"{ranges}: {_ANOTHER_GRAPH.format(graph=fp32_visual)} ({len(unquantized)} "
            f"convolutions got no int8 input, e.g. {unquantized[:3]})"
        )


_ANOTHER_GRAPH = (
    "expected the activation ranges of every convolution input of {graph}, but some are "
    "missing: the table belongs to another graph; regenerate it with "
    "benchmarks/bench_int8.py --write-ranges"
)


def _convs_without_int8_input(path: str | Path) -> list[str]:
    """Names of the Conv nodes of a QDQ graph whose data input is not dequantised int8."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "Conv" and producer.get(node.input[0]) != "DequantizeLinear"
    ]


def int8_visual_graph(
    fp32_visual: str | Path, sha256: str, cache_dir: str | Path | None = None
) -> Path:
    """The int8 visual graph of the weights file with digest ``sha256``, from the ONNX cache
    (kind ``asd-int8``, keyed by the weights' digest, the export version and the ranges'
    digest), quantised from ``fp32_visual`` on a miss.

    Raises:
        ValueError: no ranges ship for these weights, or they do not fit the graph.
        ImportError: see :func:`_quantize_static` (only on a cache miss).
    """
    ranges = required_int8_ranges(sha256, f"the ASD weights with sha256 {sha256[:16]}…")
    digest = hashlib.sha256(ranges.read_bytes()).hexdigest()[:8]
    found = find_or_export(
        sha256,
        "asd-int8",
        f"{ASD_ONNX_VERSION}r{digest}",
        lambda: {"visual": partial(quantize_visual, fp32_visual, ranges)},
        ("visual",),
        {"ranges": ranges.name, "ranges_sha256_8": digest},
        cache_dir,
    )
    return Path(found.graphs["visual"])
