"""Weights load from the ONNX cache without PyTorch: the first load exports the three stages
of an ASD model (and the GE2E voice encoder) under the checkpoint file's sha256, later loads
build onnxruntime sessions from the files and give the same logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from socialav.checkpoints.load import load_voice_encoder
from socialav.checkpoints.onnx_cache import find_exported, find_or_export, write_exported
from socialav.inference.asd import WindowConfig, predict_track_logits
from socialav.inference.backends import load_asd_runner
from socialav.types import ASD_ONNX_GRAPHS, ASD_ONNX_VERSION

TOLERANCE = 1e-4  # logits, as tests/inference/test_asd.py (measured about 2e-6)


def _track(num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (num_frames, 112, 112), dtype=np.uint8)
    return faces, rng.standard_normal((4 * num_frames, 13)).astype(np.float32)


def test_second_load_comes_from_the_cache_with_equal_logits(tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    runner, info, model = load_asd_runner("light-asd-ava", cache_dir=cache)
    assert model is not None  # first load: PyTorch model, exported
    entry = find_exported(info.sha256, "asd", ASD_ONNX_VERSION, ASD_ONNX_GRAPHS, cache)
    assert entry is not None and set(entry.graphs) == {"visual", "audio", "decoder"}
    assert entry.record["architecture"] == "light-asd"
    cached, info2, model2 = load_asd_runner("light-asd-ava", cache_dir=cache)
    assert model2 is None  # from the cache: no PyTorch model built
    assert info2.record() == info.record() and info2.task == "asd"
    assert cached.visual_receptive_field_frames == model.visual_receptive_field_frames
    faces, mfcc = _track(90, seed=1)
    windows = WindowConfig(durations_s=(1.0, 2.0))
    torch_runner = load_asd_runner("light-asd-ava", backend="torch")[0]
    want = predict_track_logits(torch_runner, faces, mfcc, windows)
    got = predict_track_logits(cached, faces, mfcc, windows)
    assert np.abs(got - want).max() < TOLERANCE
    # batches of several windows through the exported GRU back-end
    rng = np.random.default_rng(2)
    a, v = (rng.standard_normal((7, 33, 128)).astype(np.float32) for _ in range(2))
    assert np.abs(cached.decode_logits(a, v) - torch_runner.decode_logits(a, v)).max() < 1e-5


def test_a_damaged_entry_is_exported_again(tmp_path: Path, caplog) -> None:
    cache = tmp_path / "onnx"
    _, info, _ = load_asd_runner("light-asd-ava", cache_dir=cache)
    entry = find_exported(info.sha256, "asd", ASD_ONNX_VERSION, ASD_ONNX_GRAPHS, cache)
    entry.graphs["decoder"].write_bytes(b"not an onnx graph")
    runner, _, model = load_asd_runner("light-asd-ava", cache_dir=cache)
    assert model is not None and "exporting it again" in caplog.text
    faces, mfcc = _track(30, seed=3)
    assert np.isfinite(predict_track_logits(runner, faces, mfcc)).all()
    _, _, model3 = load_asd_runner("light-asd-ava", cache_dir=cache)
    assert model3 is None  # repaired


def test_cache_records_name_their_file(tmp_path: Path) -> None:
    sha = "ab" * 32
    entry = write_exported(sha, "x", "1", {"g": lambda p: p.write_bytes(b"g")}, {"k": 1}, tmp_path)
    assert json.loads((tmp_path / "x-abababababababab-v1.json").read_text())["sha256"] == sha
    assert find_exported(sha, "x", "1", ("g",), tmp_path).record["k"] == 1
    assert find_exported(sha, "x", "2", ("g",), tmp_path) is None  # another exporter version
    assert find_exported(sha, "x", "1", ("g", "h"), tmp_path) is None  # incomplete
    entry.graphs["g"].unlink()
    assert find_exported(sha, "x", "1", ("g",), tmp_path) is None
    with pytest.raises(ValueError, match="hex sha256"):
        find_exported("not-a-digest", "x", "1", ("g",), tmp_path)


def test_find_or_export_makes_writers_only_on_a_miss(tmp_path: Path) -> None:
    calls = []

    def writers():
        calls.append(1)
        return {"g": lambda p: p.write_bytes(b"g")}

    sha = "cd" * 32
    first = find_or_export(sha, "x", "1", writers, ("g",), {"k": 2}, tmp_path)
    again = find_or_export(sha, "x", "1", writers, ("g",), {"k": 3}, tmp_path)
    assert calls == [1] and again.graphs == first.graphs and again.record["k"] == 2
    with pytest.raises(ValueError, match="expected"):
        find_or_export("ef" * 32, "x", "1", writers, ("g", "h"), {}, tmp_path)


def test_voice_encoder_onnx_equals_torch(tmp_path: Path) -> None:
    onnx_encoder, info = load_voice_encoder(cache_dir=tmp_path)
    torch_encoder, _ = load_voice_encoder(backend="torch")
    assert "onnx" in repr(onnx_encoder) and "torch" in repr(torch_encoder)
    mels = np.random.default_rng(4).uniform(0, 3, (70, 160, 40)).astype(np.float32)
    np.testing.assert_allclose(
        onnx_encoder.embed_mels(mels), torch_encoder.embed_mels(mels), atol=1e-5
    )
    assert find_exported(info.sha256, "ge2e", "1", ("encoder",), tmp_path) is not None
    with pytest.raises(ValueError, match="backend"):
        load_voice_encoder(backend="tensorrt")


_CHILD = """
import sys
from socialav.pipelines.detect import SpeakerDetector
detector = SpeakerDetector()
assert detector.model is None and detector.diarization is not None
print(",".join(m for m in ("torch", "onnx", "scipy.signal") if m in sys.modules))
"""


def test_detect_loads_its_default_models_without_torch_once_cached(tmp_path: Path) -> None:
    """After one run has filled the cache, the default detector (ASD, face detector, VAD,
    voice and face embeddings) starts without importing PyTorch, onnx or scipy.signal."""
    import os

    env = {**os.environ, "SOCIALAV_CACHE_DIR": str(tmp_path)}
    warm = "from socialav.pipelines.detect import SpeakerDetector; SpeakerDetector()"
    subprocess.run([sys.executable, "-c", warm], env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, check=True, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "", f"imported {proc.stdout.strip()}"
