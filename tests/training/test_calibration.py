"""Decision-threshold calibration against a reference model (socialav.training.calibration)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from socialav.checkpoints.format import (
    CheckpointError,
    load_model_checkpoint,
    save_model_checkpoint,
)
from socialav.cli import app
from socialav.models.light_asd import LightASD
from socialav.training.calibration import (
    calibrate_asd_checkpoint,
    held_out_margins,
    recall_matching_shift,
    shift_speaking_margin,
)

torch.set_num_threads(1)


def test_shift_reaches_the_reference_recall_hand_computed():
    labels = np.array([1, 1, 1, 1, 0, 0])
    candidate = np.array([-3.0, -2.0, -1.0, 0.5, -4.0, 1.0])
    reference = np.array([2.0, -1.0, 3.0, -0.5, 0.3, 0.2])  # recall 2 / 4
    shift, recall = recall_matching_shift(candidate, reference, labels)
    assert recall == 0.5
    # median of the positive margins (-3, -2, -1, 0.5) is -1.5
    assert shift == pytest.approx(1.5)
    assert ((candidate + shift)[labels == 1] > 0).mean() == 0.5


@pytest.mark.parametrize(
    "candidate, reference, labels, message",
    [
        ([0.0, 1.0], [0.0], [1, 0], "one length"),
        ([0.0, np.nan], [0.0, 1.0], [1, 0], "NaN"),
        ([0.0, 1.0], [0.0, 1.0], [0, 0], "labelled speaking"),
    ],
)
def test_bad_inputs_are_refused(candidate, reference, labels, message):
    with pytest.raises(ValueError, match=message):
        recall_matching_shift(np.array(candidate), np.array(reference), np.array(labels))


def test_margin_shift_moves_every_frame_by_the_same_constant():
    torch.manual_seed(0)
    model = LightASD().eval()
    faces = torch.randint(0, 256, (1, 12, 112, 112)).float()
    mfcc = torch.randn(1, 48, 13)
    with torch.inference_mode():
        before = model(faces, mfcc)[0]
    shift_speaking_margin(model, 1.25)
    with torch.inference_mode():
        after = model(faces, mfcc)[0]
    delta = (after[:, 1] - after[:, 0]) - (before[:, 1] - before[:, 0])
    torch.testing.assert_close(delta, torch.full_like(delta, 1.25), atol=1e-5, rtol=0)
    # the total logit mass is unchanged (the shift is split -d/2, +d/2)
    torch.testing.assert_close(after.sum(1), before.sum(1), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def candidate_checkpoint(tmp_path_factory, weights_dir):
    """light-asd-ava with its speaking margin pushed down by 3: a badly calibrated copy."""
    from socialav import hub
    from socialav.checkpoints.load import load_asd_model

    model = load_asd_model(hub.resolve_weights("light-asd-ava"), "light-asd")
    shift_speaking_margin(model, -3.0)
    path = tmp_path_factory.mktemp("calib") / "candidate.pt"
    return save_model_checkpoint(path, model, training_data="test: light-asd-ava shifted by -3")


def test_calibration_undoes_a_constant_shift_and_keeps_the_ranking(
    candidate_checkpoint, tiny_root, tmp_path
):
    out = tmp_path / "calibrated.pt"
    result = calibrate_asd_checkpoint(candidate_checkpoint, "light-asd-ava", tiny_root, out)
    assert result.output == out and out.is_file()
    assert result.num_positive_frames > 0
    assert result.target_recall == result.reference_recall
    assert result.recall_after == pytest.approx(result.reference_recall, abs=1 / 20)
    assert result.recall_before <= result.recall_after
    # the candidate is the reference minus 3, so the shift found is about +3
    assert 1.5 < result.shift < 4.5

    model, meta = load_model_checkpoint(out, "light-asd")
    assert meta["metrics"]["calibration_margin_shift"] == pytest.approx(result.shift)
    assert meta["metrics"]["calibration_reference"] == "light-asd-ava"
    assert meta["training_data"] == "test: light-asd-ava shifted by -3"
    before, labels = held_out_margins(load_model_checkpoint(candidate_checkpoint)[0], tiny_root)
    after, labels_after = held_out_margins(model, tiny_root)
    np.testing.assert_array_equal(labels, labels_after)
    np.testing.assert_allclose(after - before, result.shift, atol=1e-4)


def test_cli_writes_the_calibrated_checkpoint_and_refuses_other_architectures(
    candidate_checkpoint, tiny_root, tmp_path
):
    out = tmp_path / "cli.pt"
    res = CliRunner().invoke(
        app,
        ["calibrate", str(candidate_checkpoint), "--root", str(tiny_root), "-o", str(out),
         "--recall", "0.5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "target 0.500" in res.output and out.is_file()
    assert load_model_checkpoint(out)[1]["metrics"]["calibration_target_recall"] == 0.5

    from socialav.models.gaze_lstm import GazeLSTM

    other = save_model_checkpoint(
        tmp_path / "gaze.pt", GazeLSTM(base_width=8), architecture_config={"base_width": 8}
    )
    bad_out = tmp_path / "bad.pt"
    res = CliRunner().invoke(
        app, ["calibrate", str(other), "--root", str(tiny_root), "-o", str(bad_out)]
    )
    assert res.exit_code == 2
    assert "expected a light-asd or lr-asd checkpoint" in res.output
    assert not bad_out.exists()
    with pytest.raises(CheckpointError):
        calibrate_asd_checkpoint(other, "light-asd-ava", tiny_root, bad_out)
