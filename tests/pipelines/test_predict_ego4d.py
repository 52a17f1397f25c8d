"""``socialav predict`` end to end on the Ego4D-format fixture built from the real interview clip:
``data ego4d-media`` -> ``train`` (debug-size model, few steps) -> ``predict`` -> ``evaluate``;
the mAP ``evaluate`` reports for the predicted file is the validation mAP ``train`` recorded
for that checkpoint, for LAM and for TTM. Also: the QuAVF fusion against a hand computation,
torchrun sharding, and one clear line for each malformed input."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ego4d_fixtures import write_clip_video
from typer.testing import CliRunner

from socialav.checkpoints.format import load_model_checkpoint
from socialav.cli import app
from socialav.pipelines.predict_ego4d import PredictConfig, fuse_ttm_scores, predict_ego4d

pytestmark = pytest.mark.usefixtures("one_thread")

LAM_ARCH = {"img_feature_dim": 32, "base_width": 8}
VISUAL_ARCH = {"dim": 32, "num_heads": 4, "feat_length": 5, "base_width": 8}
AUDIO_ARCH = {"encoder_dim": 32, "dim": 32, "num_heads": 4, "dropout": 0.0}


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _av_with_more_segments(av: dict) -> dict:
    """The fixture's annotations with six talking segments (three to the wearer), so the
    TTM segment mAP is not just 0, 50 or 100."""
    av = copy.deepcopy(av)
    clip = av["videos"][0]["clips"][0]
    clip["social_segments_talking"] = [
        {"person": "1", "target": "0", "start_frame": 0, "end_frame": 14},
        {"person": "1", "target": None, "start_frame": 15, "end_frame": 29},
        {"person": "2", "target": None, "start_frame": 20, "end_frame": 34},
        {"person": "2", "target": "0", "start_frame": 35, "end_frame": 49},
        {"person": "2", "target": None, "start_frame": 50, "end_frame": 59},
        {"person": "1", "target": "0", "start_frame": 30, "end_frame": 44},
    ]
    return av


@pytest.fixture(scope="module")
def ego4d_data(interview_ego4d, tmp_path_factory) -> Path:
    """``videos/interview.mp4`` -> ``socialav data ego4d-media`` -> frames/ and audio/."""
    root = tmp_path_factory.mktemp("ego4d_predict")
    (root / "videos").mkdir()
    clip = interview_ego4d
    write_clip_video(root / "videos" / "interview.mp4", clip.frames, clip.audio)
    result = _run(
        "data", "ego4d-media", "--videos", root / "videos", "--frames", root / "frames",
        "--audio", root / "audio",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((root / "frames" / "interview").glob("img_*.jpg"))) == 60
    (root / "av_val.json").write_text(json.dumps(_av_with_more_segments(clip.av)))
    return root


def _train(root: Path, out: Path, architecture: str, arch: dict, epochs: int, **ego4d) -> Path:
    config = {
        "model": {"architecture": architecture, "architecture_config": arch},
        "optim": {"lr": 1e-3},
        "ego4d": {
            "annotations": str(root / "av_val.json"),
            "val_annotations": str(root / "av_val.json"),
            "frames_dir": str(root / "frames"),
            "audio_dir": str(root / "audio"),
            "crop_size_px": 32,
            **ego4d,
        },
        "output_dir": str(out),
        "epochs": epochs,
        "device": "cpu",
        "num_threads": 1,
    }
    path = out.with_suffix(".json")
    path.write_text(json.dumps(config))
    result = _run("train", path, "--quiet")
    assert result.exit_code == 0, result.output
    return out / "checkpoints"


@pytest.fixture(scope="module")
def lam_checkpoint(ego4d_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lam") / "run"
    return _train(ego4d_data, out, "gaze-lstm", LAM_ARCH, 2, lam_stride=5, batch_size=8)
    # stride 5 in training and validation: 24 (clip, frame, track) rows


@pytest.fixture(scope="module")
def visual_checkpoint(ego4d_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("visual") / "run"
    return _train(
        ego4d_data, out, "quavf-visual", VISUAL_ARCH, 2, batch_size=16, ttm_feat_length=5,
        ttm_frame_stride=3, ttm_data_stride=4, ttm_score_threshold=0.05,
    )  # fmt: skip


@pytest.fixture(scope="module")
def audio_checkpoint(ego4d_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audio") / "run"
    return _train(ego4d_data, out, "quavf-audio", AUDIO_ARCH, 2, batch_size=8)


def _recorded_map(checkpoint: Path) -> float:
    _, meta = load_model_checkpoint(checkpoint)
    return float(meta["metrics"]["val_map_percent"])


def _evaluate(task: str, gt: Path, pred: Path, tmp_path: Path) -> tuple[float, str]:
    result = _run("evaluate", "--task", task, "-g", gt, "-p", pred, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "e.json").read_text())["map_percent"], result.output


@pytest.mark.parametrize("epoch", [1, 2])
def test_lam_predict_evaluates_to_the_recorded_validation_map(
    ego4d_data, lam_checkpoint, tmp_path, epoch
):
    checkpoint = lam_checkpoint / f"model_epoch{epoch:04d}.pt"
    pred, gt, sub = tmp_path / "pred.csv", tmp_path / "gt.csv", tmp_path / "pred.json"
    result = _run(
        "predict", "--task", "lam", "--weights", checkpoint, "--annotations",
        ego4d_data / "av_val.json", "--frames", ego4d_data / "frames", "--lam-stride", 5,
        "-o", pred, "--groundtruth", gt, "--json", sub,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 24 rows" in result.output
    rows = pd.read_csv(pred, header=None)
    assert rows.shape == (24, 5) and (rows[3] == 1).all()  # video_id,unique_id,track_id,1,score
    assert set(rows[2]) == {"face-1", "face-2"} and set(rows[0]) == {"interview"}
    payload = json.loads(sub.read_text())
    assert payload["challenge"] == "ego4d_looking_at_me" and len(payload["results"]) == 24
    got, printed = _evaluate("lam", gt, pred, tmp_path)
    expected = _recorded_map(checkpoint)
    assert got == pytest.approx(expected, abs=1e-6)
    assert f"mAP: {expected:.4f}" in printed
    # the baseline's validation layout (boxes) gives the same mAP
    result = _run(
        "predict", "--task", "lam", "--weights", checkpoint, "--annotations",
        ego4d_data / "av_val.json", "--frames", ego4d_data / "frames", "--lam-stride", 5,
        "-o", tmp_path / "boxes.csv", "--groundtruth", tmp_path / "boxes_gt.csv",
        "--layout", "boxes",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "boxes.csv", header=None).shape == (24, 9)
    got, _ = _evaluate("lam", tmp_path / "boxes_gt.csv", tmp_path / "boxes.csv", tmp_path)
    assert got == pytest.approx(expected, abs=1e-6)


def test_ttm_predict_evaluates_to_the_recorded_validation_map(
    ego4d_data, visual_checkpoint, tmp_path
):
    for epoch in (1, 2):
        checkpoint = visual_checkpoint / f"model_epoch{epoch:04d}.pt"
        pred, gt = tmp_path / f"seg{epoch}.csv", tmp_path / f"seg_gt{epoch}.csv"
        result = _run(
            "predict", "--task", "ttm", "--weights", checkpoint, "--annotations",
            ego4d_data / "av_val.json", "--frames", ego4d_data / "frames", "--layout",
            "segment", "-o", pred, "--groundtruth", gt,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        table = pd.read_csv(gt, header=None)
        # six segments of persons 1 and 2, labels as annotated
        assert table[1].tolist() == [0, 1, 2, 3, 4, 5]
        assert table[4].tolist() == [1, 0, 0, 1, 0, 1]
        got, _ = _evaluate("ttm", gt, pred, tmp_path)
        assert got == pytest.approx(_recorded_map(checkpoint), abs=1e-6)
    # the challenge layout: every frame of a segment carries the segment's score
    result = _run(
        "predict", "--task", "ttm", "--weights", checkpoint, "--annotations",
        ego4d_data / "av_val.json", "--frames", ego4d_data / "frames", "-o",
        tmp_path / "frames.csv", "--json", tmp_path / "frames.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = pd.read_csv(tmp_path / "frames.csv", header=None, names=["seg", "f", "l", "s"])
    segments = pd.read_csv(pred, header=None, names=["c", "i", "a", "b", "l", "s"])
    assert len(frames) == 15 + 15 + 15 + 15 + 10 + 15
    for _, seg in segments.iterrows():
        mine = frames[frames["seg"] == f"interview:{seg['i']}"]
        assert mine["f"].tolist() == list(range(seg["a"], seg["b"] + 1))
        assert (mine["s"] == seg["s"]).all()
    assert len(json.loads((tmp_path / "frames.json").read_text())["results"]) == len(frames)


def test_two_quavf_branches_are_fused_by_quality(ego4d_data, visual_checkpoint, audio_checkpoint):
    common = {
        "task": "ttm",
        "annotations": str(ego4d_data / "av_val.json"),
        "frames_dir": str(ego4d_data / "frames"),
        "audio_dir": str(ego4d_data / "audio"),
        "batch_size": 8,
    }
    v = str(visual_checkpoint / "model_best.pt")
    a = str(audio_checkpoint / "model_best.pt")
    fused = predict_ego4d(PredictConfig(weights=(v, a), **common))
    visual = predict_ego4d(PredictConfig(weights=(v,), **common)).scores
    audio = predict_ego4d(PredictConfig(weights=(a,), **common)).scores
    assert [s.score for s in fused.branches["quavf-visual"]] == [s.score for s in visual]
    assert [s.score for s in fused.branches["quavf-audio"]] == [s.score for s in audio]
    assert len(fused.scores) == 6 and len(visual) == 6 and len(audio) == 6
    for f, vs, au in zip(fused.scores, visual, audio, strict=True):
        assert 0.0 < vs.quality < 1.0
        assert f.score == pytest.approx((1 - vs.quality) * au.score + vs.quality * vs.score)
    # hand check of the rule, and a segment only the audio branch scores keeps its score
    one = visual[0].__class__("c", 0, 0, 9, "1", 0.2, 1, 0.25)
    two = visual[0].__class__("c", 0, 0, 9, "1", 0.8, 1, None)
    three = visual[0].__class__("c", 1, 10, 19, "0", 0.4, 0, None)
    out = fuse_ttm_scores([one], [two, three], ["c"])
    assert [s.score for s in out] == [pytest.approx(0.65), 0.4]


@pytest.mark.slow
def test_torchrun_shards_merge_into_the_same_file(ego4d_data, lam_checkpoint, tmp_path):
    args = [
        "predict", "--task", "lam", "--weights", str(lam_checkpoint / "model_best.pt"),
        "--annotations", str(ego4d_data / "two_clips.json"), "--frames",
        str(ego4d_data / "frames"), "--lam-stride", "5",
    ]  # fmt: skip
    # two clips (the second a renamed copy of the first), so each rank gets one
    av = json.loads((ego4d_data / "av_val.json").read_text())
    twin = copy.deepcopy(av["videos"][0]["clips"][0])
    twin["clip_uid"] = "twin"
    av["videos"][0]["clips"].append(twin)
    (ego4d_data / "two_clips.json").write_text(json.dumps(av))
    twin_frames = ego4d_data / "frames" / "twin"
    if not twin_frames.exists():
        twin_frames.symlink_to(ego4d_data / "frames" / "interview")
    single = _run(*args, "-o", tmp_path / "one.csv")
    assert single.exit_code == 0, single.output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29531", "-m", "socialav.cli", *args, "-o", str(tmp_path / "ddp.csv")],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    one = pd.read_csv(tmp_path / "one.csv", header=None)
    ddp = pd.read_csv(tmp_path / "ddp.csv", header=None)
    assert len(one) == 48 and one[0].tolist() == ddp[0].tolist()  # clip order kept
    np.testing.assert_allclose(ddp[4], one[4], atol=1e-6)


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("other_task", r"expected a quavf-visual or quavf-audio or av-transformer checkpoint, "
                       r"but found a 'gaze-lstm' model \(task lam\)"),
        ("no_media", r"none of the 1 annotated clips has its media: e.g. clip 'ghost': no frames"),
        ("unknown_clips", r"--split-list .* names 1 clip\(s\) that are not in .*: \['nowhere'\]"),
        ("two_visual", r"two --weights must be the two QuAVF branches"),
    ],
)  # fmt: skip
def test_malformed_inputs_get_one_clear_line(
    ego4d_data, lam_checkpoint, visual_checkpoint, tmp_path, case, pattern
):
    av = ego4d_data / "av_val.json"
    weights = ["--weights", lam_checkpoint / "model_best.pt"]
    task = "lam"
    extra: list = []
    if case == "other_task":
        task = "ttm"
    elif case == "no_media":
        ghost = json.loads(av.read_text())
        ghost["videos"][0]["clips"][0]["clip_uid"] = "ghost"
        av = tmp_path / "ghost.json"
        av.write_text(json.dumps(ghost))
    elif case == "unknown_clips":
        (tmp_path / "val.list").write_text("interview\nnowhere\n")
        extra = ["--split-list", tmp_path / "val.list"]
    else:
        task = "ttm"
        weights = ["--weights", visual_checkpoint / "model_best.pt"] * 2
    out = tmp_path / "pred.csv"
    result = _run(
        "predict", "--task", task, *weights, "--annotations", av, "--frames",
        ego4d_data / "frames", "-o", out, "--groundtruth", tmp_path / "gt.csv", *extra,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists() and not (tmp_path / "gt.csv").exists()


def test_clips_without_media_are_skipped_with_a_summary(ego4d_data, lam_checkpoint, tmp_path):
    av = json.loads((ego4d_data / "av_val.json").read_text())
    ghost = copy.deepcopy(av["videos"][0]["clips"][0])
    ghost["clip_uid"] = "ghost"
    av["videos"][0]["clips"].append(ghost)
    (tmp_path / "av.json").write_text(json.dumps(av))
    result = _run(
        "predict", "--task", "lam", "--weights", lam_checkpoint / "model_best.pt",
        "--annotations", tmp_path / "av.json", "--frames", ego4d_data / "frames",
        "--lam-stride", 5, "-o", tmp_path / "pred.csv",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "skipped ghost: no frames" in result.output
    assert "1 clips not scored (1 no frames)" in result.output
    assert set(pd.read_csv(tmp_path / "pred.csv", header=None)[0]) == {"interview"}
