"""onnxruntime session settings shared by every model socialav runs in ONNX Runtime (the ASD
stages, the face detector, the VAD, the voice encoder, the head-pose nets): one place that
decides threads and waiting (``docs/speed.md``)."""

from __future__ import annotations

from typing import Any

__all__ = ["ort_session_options"]


def ort_session_options(num_threads: int = 1, *, log_severity_level: int | None = None) -> Any:
    """onnxruntime ``SessionOptions`` with a fixed thread count: ``num_threads`` intra-op
    threads, sequential execution, one inter-op thread, full graph optimisation, no memory
    pattern, and no busy-waiting of idle worker threads.

    Busy-waiting workers keep spinning between the many short calls of a streaming pass (a
    face detection every third frame, a VAD chunk every 32 ms) and steal the cores from the
    decoder and the other stages: on the 3-minute benchmark video the analysis used about 20
    CPU-seconds more with the face detector's spinning worker than without it
    (``docs/speed.md``). Input shapes vary (track and window lengths): a memory pattern cached
    per shape would make the resident size grow with every new length on long videos.

    Args:
        num_threads: intra-op threads (>= 1).
        log_severity_level: onnxruntime's log level for the session (3: errors only), or
            ``None`` for its default.

    Raises:
        ValueError: ``num_threads`` < 1.
    """
    import onnxruntime as ort

    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, but got {num_threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(num_threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_mem_pattern = False
    if log_severity_level is not None:
        so.log_severity_level = int(log_severity_level)
    return so
