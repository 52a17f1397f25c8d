"""The ``onnx-int8`` backend: the visual encoder quantised with the shipped activation ranges
stays within a stated tolerance of fp32 on a clip the ranges were not calibrated on, every
convolution runs in int8, and the backend is chosen only where ranges ship."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from socialav import hub
from socialav.audio.features import track_mfcc
from socialav.checkpoints.onnx_cache import find_exported
from socialav.inference.asd import WindowConfig, predict_tracks_logits
from socialav.inference.backends import default_backend, load_asd_runner, make_runner
from socialav.inference.quantize import (
    _convs_without_int8_input,
    int8_ranges_path,
    quantize_visual,
    shipped_int8_ranges,
)
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.pipelines.sync_clips import extract_sync_clip
from socialav.types import ASD_ONNX_GRAPHS, ASD_ONNX_VERSION

#: |int8 - fp32| logit tolerance. Measured (``benchmarks/bench_int8.py``, ``docs/speed.md``):
#: at most 0.156 over the GRID benchmark items, 0.254 over ten held-out clips of ``detect``
#: (0.042 on this test's clip).
INT8_TOLERANCE = 0.3
#: Not among the clips the shipped ranges were calibrated on (``bench_int8.CALIBRATION``).
HELD_OUT_CLIP = "more/styletalk_KristiNoem_muxed.mp4"


def test_ranges_ship_for_the_default_weights_and_this_export_version() -> None:
    sha = hub.get_entry("lr-asd-ava").sha256
    ranges = shipped_int8_ranges(sha)
    assert ranges == int8_ranges_path(sha) and ranges.name.endswith(f"-v{ASD_ONNX_VERSION}.json")
    table = json.loads(ranges.read_text())
    assert table["CLS"] == "TensorsData" and len(table["data"]) > 20
    assert shipped_int8_ranges(hub.get_entry("light-asd-ava").sha256) is None


def test_default_backend_is_int8_only_where_ranges_ship(tmp_path: Path) -> None:
    assert default_backend("lr-asd-ava") == "onnx-int8"
    assert default_backend("light-asd-ava") == "onnx"  # no ranges ship (its sync AP fell)
    assert default_backend(tmp_path / "my.ckpt") == "onnx"  # files are not hashed for this
    assert default_backend("lr-asd-ava", "cuda") == "torch"
    assert DetectConfig().backend == "onnx-int8"
    assert DetectConfig(asd_weights="light-asd-ava").backend == "onnx"
    assert DetectConfig(device="cuda").backend == "torch"
    assert DetectConfig(backend="onnx").backend == "onnx"  # named: kept
    with pytest.raises(ValueError, match="with context_weights use 'onnx'"):
        DetectConfig(backend="onnx-int8", context_weights="x.ckpt")
    assert DetectConfig(context_weights="x.ckpt").backend == "onnx"


def test_int8_needs_shipped_ranges_and_weights_by_name() -> None:
    with pytest.raises(ValueError, match=r"none ship for them \(they ship for lr-asd-ava\)"):
        load_asd_runner("light-asd-ava", backend="onnx-int8")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_asd_runner("lr-asd-ava", backend="onnx-int8", device="cuda")
    with pytest.raises(ValueError, match="not a model object"):
        make_runner(object(), "onnx-int8")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def held_out_track(videos_dir: Path):
    detector = SpeakerDetector(DetectConfig(num_threads=2, backend="onnx", diarize=False))
    clip = extract_sync_clip(detector, videos_dir / HELD_OUT_CLIP)
    assert clip is not None and len(clip.faces) >= 150
    return clip.faces, track_mfcc(clip.audio, 0, len(clip.faces) - 1)


def test_int8_logits_stay_within_the_tolerance_of_fp32(tmp_path: Path, held_out_track) -> None:
    cache = tmp_path / "onnx"
    fp32, info, _ = load_asd_runner("lr-asd-ava", backend="onnx", num_threads=2, cache_dir=cache)
    int8, info8, model = load_asd_runner(
        "lr-asd-ava", backend="onnx-int8", num_threads=2, cache_dir=cache
    )
    assert model is None and info8.record() == info.record()  # fp32 graphs from the cache
    windows = WindowConfig(durations_s=(6.0,))
    want, got = (predict_tracks_logits(r, [held_out_track], windows)[0] for r in (fp32, int8))
    diff = np.abs(got - want)
    assert diff.max() < INT8_TOLERANCE
    assert diff.max() > 1e-3  # it did run in int8
    # the int8 graph is cached beside the fp32 ones, every convolution fed int8
    fp32_entry = find_exported(info.sha256, "asd", ASD_ONNX_VERSION, ASD_ONNX_GRAPHS, cache)
    int8_graphs = sorted(cache.glob("asd-int8-*-visual.onnx"))
    assert fp32_entry is not None and len(int8_graphs) == 1
    assert _convs_without_int8_input(int8_graphs[0]) == []
    assert _convs_without_int8_input(fp32_entry.graphs["visual"]) != []


def test_ranges_of_another_graph_are_refused(tmp_path: Path) -> None:
    _, info, _ = load_asd_runner("lr-asd-ava", backend="onnx", cache_dir=tmp_path / "onnx")
    entry = find_exported(info.sha256, "asd", ASD_ONNX_VERSION, ASD_ONNX_GRAPHS, tmp_path / "onnx")
    table = json.loads(shipped_int8_ranges(info.sha256).read_text())
    table["data"] = {f"/renamed{k}": v for k, v in table["data"].items()}
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(table))
    with pytest.raises(ValueError, match="regenerate it with benchmarks/bench_int8.py"):
        quantize_visual(entry.graphs["visual"], wrong, tmp_path / "int8.onnx")


def test_an_onnxruntime_that_cannot_take_stored_ranges_is_named(monkeypatch) -> None:
    import onnxruntime.quantization as ort_quantization

    from socialav.inference.quantize import _quantize_static

    def old_quantize_static(model_input, model_output, calibration_data_reader=None):
        raise AssertionError("not to be called")

    monkeypatch.setattr(ort_quantization, "quantize_static", old_quantize_static)
    with pytest.raises(ImportError, match="takes calibration_cache_path .1.32 has it.; found"):
        _quantize_static()
