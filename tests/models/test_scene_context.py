"""Scene-context ASD (TalkNet+DeiT style): ViT shapes, zero-init fusion, training smoke test,
registry and checkpoints, inference with precomputed embeddings, `socialav detect --context`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from socialav.models.light_asd import LightASD
from socialav.models.scene_context import (
    SceneContextASD,
    SceneViT,
    SceneViTConfig,
    build_scene_context_asd,
    scene_context_from_asd,
    scene_frames,
    scene_image,
    scene_input,
)
from socialav.training.losses import context_losses


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_vit_shapes_and_parameter_count():
    vit = SceneViT(SceneViTConfig.deit_tiny())
    # DeiT-Tiny has 5.7 M parameters (Touvron et al. 2021, Table 1) incl. its 1000-way head
    # (192 * 1000 + 1000 = 193 k), which a scene encoder does not have
    count = sum(p.numel() for p in vit.parameters())
    assert abs(count - (5_717_416 - 193_000)) < 10_000, count
    small = SceneViT(SceneViTConfig.debug())
    out = small(torch.rand(5, 3, 32, 32))
    assert out.shape == (5, 32)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        small(torch.rand(5, 3, 64, 64))
    with pytest.raises(ValueError, match="divide"):
        SceneViTConfig(image_size_px=100, patch_size_px=16)


def test_vit_depends_on_patch_position():
    """Position embeddings: swapping two patches changes the class token."""
    vit = SceneViT(SceneViTConfig.debug()).eval()
    img = torch.rand(1, 3, 32, 32)
    swapped = img.clone()
    swapped[..., :8, :8], swapped[..., 8:16, :8] = img[..., 8:16, :8], img[..., :8, :8]
    with torch.no_grad():
        assert not torch.allclose(vit(img), vit(swapped), atol=1e-4)


def test_untrained_context_leaves_the_base_model_unchanged():
    torch.manual_seed(0)
    base = LightASD().eval()
    model = SceneContextASD(base, SceneViT(SceneViTConfig.debug())).eval()
    faces = torch.randint(0, 256, (2, 6, 32, 32)).float()
    mfcc = torch.randn(2, 24, 13)
    scenes = torch.rand(2, 6, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(faces, mfcc, scenes), base(faces, mfcc))
        model.context_proj.weight.normal_()
        assert not torch.allclose(model(faces, mfcc, scenes), base(faces, mfcc))
    with pytest.raises(ValueError, match="same span"):
        model(faces, mfcc, scenes[:, :5])


def test_scene_frames_resizes_whole_frame():
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[:, 80:] = 255  # right half white
    out = scene_frames([frame], size_px=16)
    assert out.shape == (1, 3, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, :, :8], 0)
    np.testing.assert_allclose(out[0, :, :, 8:], 1)
    with pytest.raises(ValueError, match="uint8"):
        scene_frames([frame.astype(np.float32)])


def test_training_smoke_loss_falls():
    """Tiny synthetic task where only the scene tells who speaks (bright scene = speaking):
    the total loss (AV + 0.5 visual + 0.3 context) falls with Adam."""
    torch.manual_seed(0)
    model = SceneContextASD(LightASD(), SceneViT(SceneViTConfig.debug()))
    batch, steps = 4, 6
    labels = torch.tensor([[1] * steps, [0] * steps, [1] * steps, [0] * steps])
    faces = torch.randint(0, 256, (batch, steps, 32, 32)).float()
    mfcc = torch.randn(batch, 4 * steps, 13)
    scenes = 0.1 + 0.8 * labels[:, :, None, None, None].float().expand(-1, -1, 3, 32, 32).clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        terms = context_losses(model, faces, mfcc, scenes, labels)
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["total"].detach()))
    assert losses[-1] < 0.6 * losses[0], losses


# ------------------------------------------------------------------------------------------
# Registry, checkpoints, precomputed embeddings
# ------------------------------------------------------------------------------------------
DEBUG_SCENE = {"image_size_px": 32, "patch_size_px": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def _inputs(steps=6, batch=2, side=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    faces = torch.randint(0, 256, (batch, steps, 112, 112), generator=g).float()
    mfcc = torch.randn(batch, 4 * steps, 13, generator=g)
    scenes = torch.rand(batch, steps, 3, side, side, generator=g)
    return faces, mfcc, scenes


def test_registry_builds_and_checkpoints_round_trip(tmp_path):
    from socialav.checkpoints.format import (
        CheckpointError,
        load_model_checkpoint,
        save_model_checkpoint,
    )
    from socialav.models.registry import architecture_spec, build_architecture

    spec = architecture_spec("scene-context")
    assert spec.task == "asd" and spec.model_class is SceneContextASD
    assert "scene_input" in spec.fixed_contract and spec.fixed_contract["fps"] == 25
    torch.manual_seed(1)
    model = build_architecture("scene-context", {"base": "lr-asd", "scene": DEBUG_SCENE})
    model.context_proj.weight.data.normal_(0, 0.1)  # a non-trivial branch must survive
    assert model.architecture_config() == {
        "base": "lr-asd",
        "scene": {**DEBUG_SCENE, "mlp_ratio": 4.0, "dropout": 0.0},
    }
    path = save_model_checkpoint(
        tmp_path / "sc.pt",
        model,
        architecture_config=model.architecture_config(),
        input_contract={"scene_size_px": 32},
    )
    loaded, meta = load_model_checkpoint(path, architecture="scene-context")
    assert type(loaded.base).__name__ == "LRASD" and loaded.scene_size_px == 32
    assert meta["input_contract"]["scene_size_px"] == 32
    faces, mfcc, scenes = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(faces, mfcc, scenes), model.eval()(faces, mfcc, scenes))
    with pytest.raises(CheckpointError, match="'scene-context' model, but a 'light-asd'"):
        load_model_checkpoint(path, architecture="light-asd")
    with pytest.raises(ValueError, match="unknown fields.*'width'"):
        build_architecture("scene-context", {"scene": {"width": 3}})
    with pytest.raises(ValueError, match="base must be one of"):
        build_architecture("scene-context", {"base": "gaze-lstm"})


def test_checkpoint_with_another_scene_contract_is_refused(tmp_path):
    from socialav.checkpoints.format import (
        CheckpointError,
        load_model_checkpoint,
        save_model_checkpoint,
    )

    model = build_scene_context_asd(scene=DEBUG_SCENE)
    path = save_model_checkpoint(
        tmp_path / "sc.pt",
        model,
        architecture_config=model.architecture_config(),
        input_contract={"scene_input": "center crop 224 px, BGR"},
    )
    with pytest.raises(CheckpointError, match="scene_input: expected"):
        load_model_checkpoint(path)


def test_scene_context_from_asd_wraps_the_given_model():
    torch.manual_seed(0)
    base = LightASD().eval()
    model = scene_context_from_asd(base, SceneViTConfig.debug()).eval()
    assert model.base is base and model.architecture_config()["base"] == "light-asd"
    assert not model.context_proj.weight.detach().any()
    assert not model.context_proj.bias.detach().any()
    faces, mfcc, scenes = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(faces, mfcc, scenes), base(faces, mfcc), rtol=0, atol=0)
    with pytest.raises(ValueError, match="asd_model must be one of"):
        scene_context_from_asd(SceneViT(SceneViTConfig.debug()))


def test_forward_context_equals_forward_with_the_same_embeddings():
    torch.manual_seed(0)
    model = build_scene_context_asd(scene=DEBUG_SCENE).eval()
    model.context_proj.weight.data.normal_(0, 0.5)
    faces, mfcc, scenes = _inputs()
    with torch.no_grad():
        embed = model.encode_scene(scenes)
        expected = model(faces, mfcc, scenes)
        torch.testing.assert_close(model.forward_context(faces, mfcc, embed), expected)
        assert not torch.allclose(expected, model.base(faces, mfcc), atol=1e-3)
        with pytest.raises(ValueError, match="scene width 32"):
            model.forward_context(faces, mfcc, embed[..., :16])
        with pytest.raises(ValueError, match="same span"):
            model.forward_context(faces, mfcc, embed[:, :5])


def test_scene_image_and_scene_input_compose_to_scene_frames():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 48, 80, 3), dtype=np.uint8)
    images = np.stack([scene_image(f, 16) for f in frames])
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(scene_input(images), scene_frames(frames, 16))
    with pytest.raises(ValueError, match=r"\(T, S, S, 3\) uint8"):
        scene_input(images.astype(np.float32))


# ------------------------------------------------------------------------------------------
# Inference with precomputed embeddings (socialav detect --context)
# ------------------------------------------------------------------------------------------
def test_scene_embedding_stream_encodes_each_frame_once_in_order():
    from socialav.inference.context import SceneEmbeddingStream

    torch.manual_seed(0)
    model = build_scene_context_asd(scene=DEBUG_SCENE).eval()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (7, 40, 60, 3), dtype=np.uint8)
    stream = SceneEmbeddingStream(model, batch_frames=3)
    for i, frame in enumerate(frames):
        stream.add(i, frame)
    assert stream.num_encoded == 6 and stream.num_frames == 7  # two batches of 3, one pending
    got = stream.embeddings(np.array([6, 0, 3]))  # frame 6 forces the pending batch
    with torch.no_grad():
        expected = model.scene_encoder(torch.from_numpy(scene_frames(frames, 32))).numpy()
    np.testing.assert_allclose(got, expected[[6, 0, 3]], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="expected frame 7, got 9"):
        stream.add(9, frames[0])
    with pytest.raises(IndexError, match="frames 0..6"):
        stream.embeddings(np.array([7]))


def test_scene_embedding_stream_serves_a_second_thread_while_frames_arrive():
    """detect adds frames on its analysis thread while the ASD model's thread reads the
    embeddings of finished tracks (which may flush pending frames): every embedding equals
    the encoder's, and every frame is encoded once."""
    import threading

    from socialav.inference.context import SceneEmbeddingStream

    torch.manual_seed(0)
    model = build_scene_context_asd(scene=DEBUG_SCENE).eval()
    frames = np.random.default_rng(2).integers(0, 256, (60, 40, 60, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model.scene_encoder(torch.from_numpy(scene_frames(frames, 32))).numpy()
    stream = SceneEmbeddingStream(model, batch_frames=4)
    added = threading.Semaphore(0)
    got, errors = {}, []

    def reader() -> None:
        try:
            for end in range(1, len(frames) + 1):
                added.acquire()  # frames 0 .. end-1 have arrived
                got[end] = stream.embeddings(np.arange(max(0, end - 5), end))
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i, frame in enumerate(frames):
            stream.add(i, frame)
            added.release()
    finally:  # an error here must not leave the reader waiting
        for _ in frames:
            added.release()
        thread.join()
    assert errors == [] and stream.num_encoded == len(frames)
    for end, emb in got.items():
        np.testing.assert_allclose(emb, expected[max(0, end - 5) : end], rtol=0, atol=1e-5)


@pytest.mark.parametrize("durations_s", [None, (1.0,)])
def test_windowed_context_scoring_equals_forward_context_per_window(durations_s):
    """predict_tracks_logits_with_context = forward_context on each window on its own."""
    from socialav.inference.asd import WindowConfig
    from socialav.inference.context import predict_tracks_logits_with_context
    from socialav.inference.torch_backend import TorchRunner

    torch.manual_seed(0)
    model = build_scene_context_asd(scene=DEBUG_SCENE).eval()
    model.context_proj.weight.data.normal_(0, 0.5)
    steps = 40
    faces, mfcc, scenes = _inputs(steps=steps, batch=1)
    with torch.no_grad():
        embed = model.encode_scene(scenes)
        context = model.context_term(embed)[0].numpy()
        spans = [(0, steps)] if durations_s is None else [(0, 25), (25, steps)]
        expected = torch.cat(
            [
                model.forward_context(faces[:, s:e], mfcc[:, 4 * s : 4 * e], embed[:, s:e])[0]
                for s, e in spans
            ]
        ).numpy()
    runner = TorchRunner(model.base, conv2d_visual=False)
    track = (faces[0].numpy().astype(np.uint8), mfcc[0].numpy(), context)
    # a short last MFCC frame: the last frame has no audio and must be NaN
    short = (track[0], track[1][:-1], context)
    got, cut = predict_tracks_logits_with_context(
        runner, [track, short], WindowConfig(durations_s=durations_s), chunk_frames=16
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert np.isnan(cut[-1]).all() and not np.isnan(cut[:-1]).any()
    with pytest.raises(ValueError, match="track 0: visual offset must be"):
        predict_tracks_logits_with_context(runner, [(track[0], track[1], context[:5])])


@pytest.fixture(scope="module")
def light_asd_scene_checkpoints(tmp_path_factory, weights_dir):
    """Debug-size scene-context checkpoints made from light-asd-ava: the untrained branch
    (zero context_proj) and one with a random non-zero context_proj."""
    from socialav import hub
    from socialav.checkpoints.format import save_model_checkpoint
    from socialav.checkpoints.load import load_asd_model

    folder = tmp_path_factory.mktemp("scene_ckpt")
    paths = {}
    for kind in ("zero", "random"):
        torch.manual_seed(3)
        base = load_asd_model(hub.resolve_weights("light-asd-ava"), "light-asd")
        model = scene_context_from_asd(base, SceneViTConfig.debug())
        if kind == "random":
            model.context_proj.weight.data.normal_(0, 1.0)
            model.context_proj.bias.data.normal_(0, 1.0)
        paths[kind] = save_model_checkpoint(
            folder / f"{kind}.pt",
            model,
            architecture_config=model.architecture_config(),
            input_contract={"scene_size_px": model.scene_size_px},
            training_data="test: light-asd-ava with an untrained debug scene branch",
        )
    return paths


def _detect_json(tmp_path, video, *options):
    import json

    from typer.testing import CliRunner

    from socialav.cli import app

    out = tmp_path / "out"
    args = ["detect", str(video), "-o", str(out), "--outputs", "json", "--overwrite"]
    args += ["--backend", "torch", "--threads", "1", "--windows", "1,2", *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / f"{video.stem}.json").read_text())


def test_detect_context_with_untrained_branch_equals_plain_detect(
    tmp_path, videos_dir, light_asd_scene_checkpoints
):
    from socialav import hub

    video = videos_dir / "grid_bbaf2n.mpg"
    plain = _detect_json(tmp_path / "plain", video, "--weights", "light-asd-ava")
    zero_path = light_asd_scene_checkpoints["zero"]
    zero = _detect_json(tmp_path / "zero", video, "--context", str(zero_path))
    assert len(plain["tracks"]) == len(zero["tracks"]) >= 1
    for a, b in zip(plain["tracks"], zero["tracks"], strict=True):
        assert a["frame_indices"] == b["frame_indices"]
        np.testing.assert_allclose(
            np.array(b["logits"], float), np.array(a["logits"], float), rtol=0, atol=1e-5
        )
    weights = zero["run_info"]["weights"]
    assert weights["context"]["sha256"] == hub.sha256_of(zero_path)
    assert weights["context"]["path"] == str(zero_path)
    assert weights["context"]["scene"]["image_size_px"] == 32
    assert weights["asd"]["architecture"] == "scene-context"
    assert "context" not in plain["run_info"]["weights"]
    assert plain["run_info"]["scene_context"] is None

    random = _detect_json(
        tmp_path / "random", video, "--context", str(light_asd_scene_checkpoints["random"])
    )
    for a, b in zip(plain["tracks"], random["tracks"], strict=True):
        diff = np.abs(np.array(b["logits"], float) - np.array(a["logits"], float))
        assert np.nanmax(diff) > 0.01


def test_detect_context_refuses_a_plain_asd_checkpoint(tmp_path, videos_dir, weights_dir):
    from typer.testing import CliRunner

    from socialav.cli import app

    result = CliRunner().invoke(
        app,
        ["detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(tmp_path), "--context", "nope"],
    )
    assert result.exit_code == 2
    assert "expected a socialav scene-context checkpoint" in result.output
    video = str(videos_dir / "grid_bbaf2n.mpg")
    result = CliRunner().invoke(
        app, ["detect", video, "-o", str(tmp_path), "--context", "light-asd-ava"]
    )
    assert result.exit_code == 2
    assert "is not a socialav checkpoint" in result.output
