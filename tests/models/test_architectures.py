"""Light-ASD / LR-ASD architectures: shapes, temporal receptive field, conv2d rewrite, parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from socialav.checkpoints.load import load_asd_model
from socialav.inference.torch_backend import conv2d_visual_encoder
from socialav.models.light_asd import AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD

ARCHS = {"light-asd": LightASD, "lr-asd": LRASD}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: the machine is shared, and oversubscription slows convs 3-4x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_eval_model(cls: type[AudioVisualASD], seed: int = 0) -> AudioVisualASD:
    """A model with random weights and random batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = cls()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_shapes(arch: str) -> None:
    model = _random_eval_model(ARCHS[arch])
    faces = torch.randint(0, 256, (2, 7, 112, 112)).float()
    mfcc = torch.randn(2, 28, 13)
    with torch.inference_mode():
        assert model.encode_visual(faces).shape == (2, 7, 128)
        assert model.encode_audio(mfcc).shape == (2, 7, 128)
        assert model(faces, mfcc).shape == (2, 7, 2)
        assert model.visual_logits(faces).shape == (2, 7, 2)
        with pytest.raises(ValueError, match="same span"):
            model(faces, torch.randn(2, 40, 13))
        with pytest.raises(ValueError, match=r"mfcc must have shape \(B, 4T, 13\)"):
            model(faces, torch.randn(2, 28, 12))
        with pytest.raises(ValueError, match="faces must have shape"):
            model(faces[0], mfcc)


def test_parameter_counts() -> None:
    # Light-ASD reports 1.0 M parameters (CVPR 2023, Table 1); LR-ASD is smaller.
    count = {a: sum(p.numel() for p in c().parameters()) for a, c in ARCHS.items()}
    assert count == {"light-asd": 1_021_636, "lr-asd": 837_156}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_visual_receptive_field_is_local_and_tight(arch: str) -> None:
    """A change in one frame moves visual embeddings exactly within +-R frames; the
    exact-window inference relies on this."""
    model = _random_eval_model(ARCHS[arch])
    r = model.visual_receptive_field_frames
    t, j = 2 * r + 9, r + 4
    gen = torch.Generator().manual_seed(1)
    faces = torch.randint(0, 256, (1, t, 112, 112), generator=gen).float()
    changed = faces.clone()
    changed[0, j] = torch.randint(0, 256, (112, 112), generator=gen).float()
    with torch.inference_mode():
        diff = (model.encode_visual(faces) - model.encode_visual(changed)).abs().amax(-1)[0]
    moved = torch.nonzero(diff > 1e-6).flatten().tolist()
    assert moved == list(range(j - r, j + r + 1))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_conv2d_rewrite_matches_conv3d(arch: str) -> None:
    model = _random_eval_model(ARCHS[arch])
    fast = conv2d_visual_encoder(model)
    faces = torch.randint(0, 256, (2, 9, 112, 112), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = model.encode_visual(faces.float())
        got = fast.encode_visual(faces.float())
    assert (ref - got).abs().max().item() < 1e-4 * max(1.0, ref.abs().max().item())
    # The original model is untouched.
    assert isinstance(model.visual_encoder.block1, torch.nn.Module)
    assert any(isinstance(m, torch.nn.Conv3d) for m in model.modules())


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_exported_visual_graph_lets_onnxruntime_fuse_and_chain_its_convolutions(
    arch: str, tmp_path: Path
) -> None:
    """The visual graph is 2-D convolutions only, each ReLU reads a convolution (onnxruntime
    fuses the pair), and a transpose only enters and leaves each block's temporal chain
    (two per block, one more at the input; docs/speed.md, ``bench_speed_levers.py
    visual-graph``)."""
    onnx = pytest.importorskip("onnx")
    from socialav.inference.torch_backend import export_asd_graphs

    graphs = export_asd_graphs(_random_eval_model(ARCHS[arch]), "0" * 64, {}, tmp_path).graphs
    nodes = onnx.load(graphs["visual"]).graph.node
    made_by = {out: n for n in nodes for out in n.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert convs and all(
        len(next(a.ints for a in n.attribute if a.name == "kernel_shape")) == 2 for n in convs
    )
    relus = [n for n in nodes if n.op_type == "Relu"]
    assert len(relus) == len(convs)
    assert all(made_by[n.input[0]].op_type == "Conv" for n in relus)
    branches = {"light-asd": 2, "lr-asd": 1}[arch]
    assert sum(n.op_type == "Transpose" for n in nodes) == 1 + 3 * (branches + 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rel"),
    # one file per architecture is enough here: tests/test_inference.py checks all four
    [("light_asd_ava", "light-asd/pretrain_AVA_CVPR.model")],
)
def test_plain_model_reproduces_reference_full_track(
    weights_dir: Path, interview_reference, name: str, rel: str
) -> None:
    """The model as written (Conv3d, batch norm, one forward over the track) reproduces the
    reference class-1 logits of the interview fixture."""
    model = load_asd_model(weights_dir / rel)
    faces = torch.from_numpy(interview_reference["track0_faces_gray112"]).float()[None]
    mfcc = torch.from_numpy(interview_reference["track0_mfcc"])[None]
    with torch.inference_mode():
        logits = model(faces, mfcc)[0, :, 1].numpy()
    err = np.abs(logits - interview_reference[f"track0_{name}_logit_full"]).max()
    assert err < 1e-4, err
