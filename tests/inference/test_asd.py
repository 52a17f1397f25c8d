"""Windowed scoring of face tracks: demo semantics, exact-window shortcut, backends, parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from socialav.checkpoints.load import load_asd_model
from socialav.inference.asd import (
    WindowConfig,
    predict_track_logits,
    predict_tracks_logits,
    usable_frames,
    window_spans,
)
from socialav.inference.backends import make_runner
from socialav.inference.segments import speaking_probability
from socialav.inference.torch_backend import conv2d_visual_encoder, export_onnx, weights_sha256
from socialav.models.light_asd import AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD

WEIGHTS = {
    "light_asd_ava": "light-asd/pretrain_AVA_CVPR.model",
    "light_asd_talkset": "light-asd/finetuning_TalkSet.model",
    "lr_asd_ava": "lr-asd/pretrain_AVA.model",
    "lr_asd_talkset": "lr-asd/finetuning_TalkSet.model",
}
#: Max |logit - reference| accepted for every backend (the fixture's stated tolerance).
TOLERANCE = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: the machine is shared, and oversubscription slows convs 3-4x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def _random_eval_model(cls: type[AudioVisualASD], seed: int = 0) -> AudioVisualASD:
    torch.manual_seed(seed)
    model = cls()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _random_track(num_faces: int, num_mfcc: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (num_faces, 112, 112), dtype=np.uint8)
    mfcc = rng.normal(0, 5, (num_mfcc, 13)).astype(np.float32)
    return faces, mfcc


def _demo_windowed(model, faces, mfcc, durations_frames) -> np.ndarray:
    """The demo loop (Columbia_test.py evaluate_network), written out plainly (run with the
    conv2d visual encoder for speed; its equality with Conv3d is tested in tests/models)."""
    model = conv2d_visual_encoder(model)
    n = min(len(faces), len(mfcc) // 4)
    per_duration = []
    for w in durations_frames:
        chunks = []
        for i in range(int(np.ceil(n / w))):
            s, e = i * w, min((i + 1) * w, n)
            f = torch.from_numpy(faces[s:e]).float()[None]
            a = torch.from_numpy(mfcc[4 * s : 4 * e])[None]
            with torch.inference_mode():
                chunks.append(model(f, a)[0].numpy())
        per_duration.append(np.concatenate(chunks))
    return np.mean(per_duration, axis=0)


def test_window_spans_and_usable_frames() -> None:
    assert window_spans(60, 25) == [(0, 25), (25, 50), (50, 60)]
    assert window_spans(50, 25) == [(0, 25), (25, 50)]
    assert window_spans(7, None) == [(0, 7)]
    assert window_spans(0, 25) == []
    assert usable_frames(437, 1748) == 437
    assert usable_frames(437, 1747) == 436  # 1747 // 4
    assert usable_frames(10, 1748) == 10
    assert WindowConfig().window_frames() == (25, 50, 75, 100, 125, 150)
    assert WindowConfig(durations_s=None).window_frames() == ()


def test_window_config_validation() -> None:
    with pytest.raises(ValueError, match="whole number of frames"):
        WindowConfig(durations_s=(0.5, 1.01))
    with pytest.raises(ValueError, match="whole number of frames"):
        WindowConfig(durations_s=(-1.0,))
    with pytest.raises(ValueError, match="visual_context"):
        WindowConfig(visual_context="frame")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "durations_s", "sizes"),
    [
        # Light-ASD, R=6: 25-frame windows use edge passes, the 10-frame tail a direct pass.
        (LightASD, (1.0, 2.0), [(60, 240), (41, 170)]),
        # LR-ASD, R=9: 50-frame windows use edge passes, 25-frame ones direct passes.
        (LRASD, (1.0, 2.0), [(110, 440)]),
        # One duration: windows up to chunk + 2R = 34 frames run on their own ...
        (LRASD, (1.0,), [(60, 240), (20, 80)]),
        # ... longer ones come from the shared pass with edge passes.
        (LightASD, (2.0,), [(110, 440)]),
    ],
)
def test_exact_windows_equal_the_demo_loop(cls, durations_s, sizes) -> None:
    model = _random_eval_model(cls)
    tracks = [_random_track(f, a, seed=i) for i, (f, a) in enumerate(sizes)]
    windows = WindowConfig(durations_s=durations_s)
    runner = make_runner(model, "torch")
    # Small chunks and batches exercise the chunked full-track pass and batch splitting.
    got = predict_tracks_logits(runner, tracks, windows, max_batch_frames=40, chunk_frames=16)
    for (faces, mfcc), logits in zip(tracks, got, strict=True):
        want = _demo_windowed(model, faces, mfcc, windows.window_frames())
        n = min(len(faces), len(mfcc) // 4)
        assert logits.shape == (len(faces), 2) and logits.dtype == np.float32
        assert np.abs(logits[:n] - want).max() < 1e-4


def test_one_window_duration_runs_each_frame_through_the_visual_encoder_once() -> None:
    """With the default 6 s windows every window is run on its own: the visual encoder sees
    each usable frame once (the shared pass with edge passes would see about 1.2x as many)."""
    runner = make_runner(_random_eval_model(LRASD), "torch")
    seen: list[int] = []
    encode_visual = runner.encode_visual

    def counted(faces: np.ndarray) -> np.ndarray:
        seen.append(faces.shape[0] * faces.shape[1])
        return encode_visual(faces)

    runner.encode_visual = counted
    tracks = [_random_track(320, 1280, seed=1), _random_track(40, 160, seed=2)]
    predict_tracks_logits(runner, tracks, WindowConfig(durations_s=(6.0,)), max_batch_frames=32)
    assert sum(seen) == 320 + 40


def test_frames_without_audio_are_nan_and_contexts_agree_on_full_pass() -> None:
    model = _random_eval_model(LightASD)
    faces, mfcc = _random_track(30, 103, seed=3)  # 103 // 4 = 25 usable frames
    full = predict_track_logits(model, faces, mfcc, WindowConfig(durations_s=None))
    assert np.isnan(full[25:]).all() and np.isfinite(full[:25]).all()
    with torch.inference_mode():
        want = model(torch.from_numpy(faces[:25]).float()[None], torch.from_numpy(mfcc[:100])[None])
    assert np.abs(full[:25] - want[0].numpy()).max() < 1e-4
    shared = predict_track_logits(
        model, faces, mfcc, WindowConfig(durations_s=None, visual_context="track")
    )
    np.testing.assert_array_equal(np.isnan(shared), np.isnan(full))
    assert np.nanmax(np.abs(shared - full)) < 1e-5
    # More faces than audio frames the other way round: all frames usable.
    short = predict_track_logits(model, faces[:20], mfcc, WindowConfig(durations_s=(1.0,)))
    assert short.shape == (20, 2) and np.isfinite(short).all()


def test_bad_inputs_are_refused() -> None:
    model = _random_eval_model(LightASD)
    faces, mfcc = _random_track(10, 40, seed=4)
    with pytest.raises(ValueError, match="faces must be uint8"):
        predict_track_logits(model, faces.astype(np.float32), mfcc)
    with pytest.raises(ValueError, match=r"faces must be \(T, 112, 112\)"):
        predict_track_logits(model, faces[:, :100], mfcc)
    with pytest.raises(ValueError, match=r"mfcc must be \(4T, 13\)"):
        predict_track_logits(model, faces, mfcc[:, :12])
    with pytest.raises(ValueError, match="backend must be one of"):
        make_runner(model, "tensorrt")


def test_speaking_probability() -> None:
    logits = np.array([[0.0, 0.0], [1.0, 3.0], [np.nan, np.nan]], np.float32)
    p = speaking_probability(logits)
    np.testing.assert_allclose(p[:2], [0.5, 1 / (1 + np.exp(-2.0))], rtol=1e-6)
    assert np.isnan(p[2])


def test_onnx_backend_matches_torch_and_caches(onnx_cache: Path) -> None:
    model = _random_eval_model(LRASD, seed=5)
    faces, mfcc = _random_track(40, 160, seed=6)
    windows = WindowConfig(durations_s=(1.0,))
    onnx = make_runner(model, "onnx", cache_dir=onnx_cache)
    got = predict_track_logits(onnx, faces, mfcc, windows)
    want = predict_track_logits(make_runner(model, "torch"), faces, mfcc, windows)
    assert np.abs(got - want).max() < TOLERANCE
    # Cached by weights: a second export reuses the files, other weights get other files.
    paths = export_onnx(model, onnx_cache)
    mtimes = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    assert export_onnx(model, onnx_cache) == paths
    assert {k: p.stat().st_mtime_ns for k, p in paths.items()} == mtimes
    assert all(p.name.startswith(f"asd-{weights_sha256(model)[:16]}") for p in paths.values())
    assert set(paths) == {"visual", "audio", "decoder"}
    assert not list(onnx_cache.glob("*.tmp"))
    other = _random_eval_model(LRASD, seed=7)
    assert export_onnx(other, onnx_cache)["visual"] != paths["visual"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_reference_parity_on_interview_tracks(
    weights_dir: Path, interview_reference, onnx_cache: Path, name: str
) -> None:
    """All weights x {one full-track pass, demo windows 1..6 s} x both fixture tracks reproduce
    the public code's class-1 logits within TOLERANCE with the default backend (measured:
    about 2e-6). The torch backend's equality with it is checked above on random weights, the
    plain model's on the fixture in tests/models/test_architectures.py."""
    model = load_asd_model(weights_dir / WEIGHTS[name])
    runner = make_runner(model, cache_dir=onnx_cache)
    tracks = [
        (interview_reference[f"track{k}_faces_gray112"], interview_reference[f"track{k}_mfcc"])
        for k in (0, 1)
    ]
    modes = {
        "logit_full": WindowConfig(durations_s=None),
        "logit_windowed_1to6s_mean": WindowConfig(),
    }
    for key, windows in modes.items():
        results = predict_tracks_logits(runner, tracks, windows)
        for k, logits in enumerate(results):
            ref = interview_reference[f"track{k}_{name}_{key}"]
            err = np.abs(logits[:, 1] - ref).max()
            assert err < TOLERANCE, (name, key, k, err)
