"""One seam for onnxruntime sessions: fixed threads and no busy-waiting, in every model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socialav.runtime import ort_session_options

SRC = Path(__file__).resolve().parents[1] / "src" / "socialav"


def test_session_options_fix_threads_and_do_not_spin() -> None:
    so = ort_session_options(2, log_severity_level=3)
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (2, 1)
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.log_severity_level == 3 and not so.enable_mem_pattern
    with pytest.raises(ValueError, match="num_threads must be >= 1, but got 0"):
        ort_session_options(0)


def test_every_session_is_built_from_the_shared_options() -> None:
    """No module builds its own ``SessionOptions``: a session made elsewhere would spin its
    idle workers (onnxruntime's default) and steal the decoder's core (docs/speed.md)."""
    own = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "runtime.py" and re.search(r"\bSessionOptions\(", path.read_text())
    ]
    assert own == []


def test_the_default_detector_models_run_without_spinning() -> None:
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    detector = SpeakerDetector(DetectConfig(num_threads=2))
    sessions = {
        "face detector": detector.detector._session,
        "vad": detector.diarization.vad._session,
        "voice": detector.diarization.voice._session,
        **{f"asd {g}": getattr(detector.runner, f"_{g}") for g in ("visual", "audio", "decoder")},
    }
    for name, session in sessions.items():
        options = session.get_session_options()
        assert options.intra_op_num_threads == 2, name
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0", name
