"""``detect --weights`` takes a checkpoint file as well as a registry name."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from socialav import hub
from socialav.checkpoints.format import save_model_checkpoint
from socialav.checkpoints.load import load_pretrained
from socialav.cli import app
from socialav.models.lr_asd import LRASD
from socialav.training.checkpoint import load_initial_model


def test_socialav_and_original_checkpoints_load_like_the_registry_entry(tmp_path, weights_dir):
    reference, info = load_pretrained("lr-asd-ava", task="asd")
    assert info.name == "lr-asd-ava" and isinstance(reference, LRASD)
    ckpt = save_model_checkpoint(tmp_path / "mine.pt", load_initial_model("lr-asd-ava", "lr-asd"))
    original = hub.resolve_weights("lr-asd-ava")
    for path in (ckpt, original):
        model, found = load_pretrained(str(path), task="asd")
        assert isinstance(model, LRASD) and found.architecture == "lr-asd"
        assert found.sha256 == hub.sha256_of(path) and found.name == str(path)
        for name, tensor in reference.state_dict().items():
            assert torch.equal(tensor, model.state_dict()[name]), name


def test_unknown_weights_is_one_clear_line(tmp_path, videos_dir, weights_dir):
    args = ["detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--weights", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2
    assert (
        "checkpoint file" in result.output
        and "found neither a file nor a registry name" in result.output
    )
    assert "lr-asd-ava" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
