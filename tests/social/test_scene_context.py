"""Scene-context ASD (TalkNet+DeiT style): ViT shapes, zero-init fusion, training smoke test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from socialav.models.light_asd import LightASD
from socialav.models.scene_context import (
    SceneContextASD,
    SceneViT,
    SceneViTConfig,
    context_losses,
    scene_frames,
)


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
