"""Ego4D models trained by the shared engine (``socialav train``) on the real-derived fixture.

The interview fixture (``conftest.interview_ego4d``) is written in the baselines' layouts --
``av_train.json``, ``frames/<clip_uid>/img_%05d.jpg`` at 30 fps, ``audio/<clip_uid>.wav`` --
and GazeLSTM / the QuAVF branches (debug sizes, 32-px crops, one thread) are trained on it
through :func:`socialav.training.train.train`: the loss falls, validation mAP is computed with
the official semantics, checkpoints describe themselves and load back, an interrupted run
resumes to the same weights. Runs are deterministic (fixed seeds, CPU).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from media_factory import make_video
from scipy.io import wavfile
from typer.testing import CliRunner

from socialav.checkpoints.format import load_model_checkpoint
from socialav.cli import app
from socialav.data.ego4d.annotations import load_av_annotations
from socialav.data.ego4d.media import (
    ClipAudio,
    JpegFolderFrames,
    clip_frame_path,
    extract_clip_media,
    load_clip_audio,
)
from socialav.data.ego4d.samples import TtmAudioDataset, collate_ttm_audio, ttm_samples
from socialav.evaluation.ego4d import social_map, ttm_segment_scores
from socialav.training.config import ConfigError, TrainConfig
from socialav.training.tasks.ego4d import balanced_class_weights
from socialav.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ego4d_root(interview_ego4d, tmp_path_factory) -> Path:
    """The fixture clip on disk in the baselines' layouts."""
    root = tmp_path_factory.mktemp("ego4d")
    clip = interview_ego4d
    folder = root / "frames" / clip.clip_uid
    folder.mkdir(parents=True)
    for f, image in enumerate(clip.frames):
        cv2.imwrite(
            str(clip_frame_path(root / "frames", clip.clip_uid, f)),
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
    (root / "audio").mkdir()
    wavfile.write(str(root / "audio" / f"{clip.clip_uid}.wav"), 16000, clip.audio)
    (root / "av_train.json").write_text(json.dumps(clip.av))
    return root


def _config(root: Path, out: Path, architecture: str, arch_config: dict, **ego4d) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"architecture": architecture, "architecture_config": arch_config},
            "optim": {"lr": 1e-3},
            "ego4d": {
                "annotations": str(root / "av_train.json"),
                "val_annotations": str(root / "av_train.json"),
                "frames_dir": str(root / "frames"),
                "audio_dir": str(root / "audio"),
                "crop_size_px": 32,
                **ego4d,
            },
            "output_dir": str(out),
            "epochs": 1,
            "device": "cpu",
            "num_threads": 1,
            "training_data": "interview fixture",
        }
    )


LAM_ARCH = {"img_feature_dim": 32, "base_width": 8}


def _lam(root: Path, out: Path, epochs: int) -> TrainConfig:
    config = _config(root, out, "gaze-lstm", LAM_ARCH, lam_stride=5, batch_size=8)
    config.epochs = epochs
    return config


def test_gaze_lstm_trains_through_the_engine(ego4d_root, tmp_path):
    result = train(_lam(ego4d_root, tmp_path / "lam", 10))
    losses = [row["train_loss"] for row in result.history]
    assert sum(losses[-2:]) / 2 < 0.6 * losses[0], losses
    assert all(0 <= row["val_map_percent"] <= 100 for row in result.history)
    assert result.history[-1]["train_items"] == 24  # 24 windows of stride 5, 8 looking at me
    metrics = pd.read_csv(tmp_path / "lam" / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, 11))
    # the best checkpoint describes itself and reproduces the validation mAP it records
    model, meta = load_model_checkpoint(result.best_checkpoint)
    assert meta["architecture"] == "gaze-lstm"
    assert meta["architecture_config"] == LAM_ARCH
    assert meta["input_contract"]["face_size_px"] == 32
    assert meta["input_contract"]["face_channels"] == "rgb"
    best = max(r["val_map_percent"] for r in result.history)
    assert meta["metrics"]["val_map_percent"] == pytest.approx(best)
    assert best > 60.0  # it fits its training windows (chance is about 50)


def test_gaze_lstm_resumes_exactly(ego4d_root, tmp_path):
    straight = train(_lam(ego4d_root, tmp_path / "a", 3))
    config = _lam(ego4d_root, tmp_path / "b", 3)
    config.checkpoint_every_steps = 2

    class Stop(Exception):
        pass

    def stop_mid_epoch_two(event):
        if event.stage == "train" and event.epoch == 2 and event.step == 2:
            raise Stop

    with pytest.raises(Stop):
        train(config, progress=stop_mid_epoch_two)
    resumed = train(config)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert [r["train_loss"] for r in resumed.history] == pytest.approx(
        [r["train_loss"] for r in straight.history]
    )


def test_quavf_visual_branch_trains_through_the_engine(ego4d_root, tmp_path):
    config = _config(
        ego4d_root,
        tmp_path / "v",
        "quavf-visual",
        {"dim": 32, "num_heads": 4, "feat_length": 5, "base_width": 8},
        batch_size=4,
        ttm_feat_length=5,
        ttm_frame_stride=3,
        ttm_data_stride=4,
        ttm_score_threshold=0.05,
    )
    config.epochs = 6
    result = train(config)
    losses = [row["train_loss"] for row in result.history]
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
    # two segments (one talking to me): the segment mAP is defined and fitted
    assert result.history[-1]["val_map_percent"] == pytest.approx(100.0)
    _, meta = load_model_checkpoint(result.best_checkpoint, "quavf-visual")
    assert meta["input_contract"]["feat_length"] == 5


def test_quavf_audio_branch_trains_and_validates_like_a_hand_computation(ego4d_root, tmp_path):
    arch = {"encoder_dim": 32, "dim": 32, "num_heads": 4, "dropout": 0.0}
    config = _config(ego4d_root, tmp_path / "a", "quavf-audio", arch, batch_size=2)
    config.epochs = 15
    result = train(config)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))  # one full batch
    # the recorded validation mAP of the last epoch equals a hand computation
    clips = load_av_annotations(ego4d_root / "av_train.json")
    samples = ttm_samples(clips, train=False)
    ds = TtmAudioDataset(samples, ClipAudio(["interview"], ego4d_root / "audio"))
    batch = collate_ttm_audio([ds[i] for i in range(len(ds))])
    model = result.model.eval()
    with torch.no_grad():
        logits = model(batch["mel"], batch["labels"].shape[1])
    valid = (batch["labels"] != -100).unsqueeze(1).float()
    per_sample = ((logits * valid).sum(-1) / valid.sum(-1)).numpy()
    seg = ttm_segment_scores([s.segment_id for s in samples], per_sample)
    labels = {s.segment_id: s.label for s in samples}
    expected = 100 * social_map(list(seg.values()), [labels[k] for k in seg])[0]
    assert result.history[-1]["val_map_percent"] == pytest.approx(expected)
    # class weights were balanced over the training frames
    frames = [s.label for s in ttm_samples(clips, train=True) for _ in range(s.num_frames)]
    w0, w1 = balanced_class_weights(frames)
    assert w0 != w1


def test_socialav_train_cli_runs_an_ego4d_config(ego4d_root, tmp_path):
    config = {
        "model": {"architecture": "gaze-lstm", "architecture_config": LAM_ARCH},
        "ego4d": {
            "annotations": str(ego4d_root / "av_train.json"),
            "frames_dir": str(ego4d_root / "frames"),
            "crop_size_px": 32,
            "lam_stride": 10,
            "batch_size": 16,
        },
        "output_dir": str(tmp_path / "run"),
        "epochs": 1,
        "device": "cpu",
        "num_threads": 1,
    }
    path = tmp_path / "lam.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["train", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "epoch 1:" in result.output
    assert (tmp_path / "run" / "checkpoints" / "model_best.pt").is_file()


def test_missing_frames_and_annotations_are_clear_errors(ego4d_root, tmp_path):
    config = _lam(ego4d_root, tmp_path / "x", 1)
    config.ego4d.frames_dir = ""
    with pytest.raises(ConfigError, match="frames_dir"):
        train(config)
    config = _lam(ego4d_root, tmp_path / "y", 1)
    config.ego4d.frames_dir = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(config)
    config = _lam(ego4d_root, tmp_path / "z", 1)
    config.ego4d.annotations = ""
    with pytest.raises(ConfigError, match="annotations"):
        train(config)
    assert not (tmp_path / "z" / "checkpoints").exists()


def test_extract_clip_media_layout_and_sources(tmp_path):
    video = make_video(tmp_path / "clip-7.mp4", num_frames=15, fps=30, size_wh=(64, 48))
    count = extract_clip_media(video, tmp_path / "frames", tmp_path / "audio")
    assert count == 15
    names = sorted(p.name for p in (tmp_path / "frames" / "clip-7").iterdir())
    assert names[0] == "img_00001.jpg" and names[-1] == "img_00015.jpg" and len(names) == 15
    frames = JpegFolderFrames(tmp_path / "frames")
    # frame i has gray level 8 i (JPEG keeps flat images within a few levels)
    assert abs(float(frames.frame("clip-7", 4).mean()) - 32.0) < 3.0
    assert frames.frame("clip-7", 15) is None  # past the end
    with pytest.raises(FileNotFoundError, match="clip-8"):
        frames.frame("clip-8", 0)
    audio = load_clip_audio("clip-7", audio_dir=tmp_path / "audio")
    assert audio.dtype == np.int16 and abs(len(audio) - 8000) < 400  # 0.5 s at 16 kHz
    same = load_clip_audio("clip-7", videos_dir=tmp_path)
    assert np.array_equal(audio, same)
    with pytest.raises(FileNotFoundError, match="clip-9"):
        load_clip_audio("clip-9", audio_dir=tmp_path / "audio")
    assert not math.isnan(float(audio.std()))


def test_balanced_class_weights():
    assert balanced_class_weights([0, 0, 0, 1]) == (4 / 6, 2.0)
    # only class 1 (the -100 padding is ignored): w1 = 2 / (2 * 2), absent class 0 -> 1.0
    assert balanced_class_weights([1, 1, -100]) == (1.0, 0.5)


def test_ego4d_media_cli(tmp_path):
    (tmp_path / "clips").mkdir()
    make_video(tmp_path / "clips" / "c1.mp4", num_frames=6, fps=30)
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"not a video")
    args = ["data", "ego4d-media", "--videos", str(tmp_path / "clips")]
    args += ["--frames", str(tmp_path / "f"), "--audio", str(tmp_path / "a")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1  # one clip failed, named in the output
    assert "broken.mp4" in result.output
    assert len(list((tmp_path / "f" / "c1").glob("img_*.jpg"))) == 6
    assert (tmp_path / "a" / "c1.wav").is_file()
    assert not (tmp_path / "f" / "broken").exists()
    assert not [p for p in (tmp_path / "f").iterdir() if p.name.startswith(".")]  # no temp left


AV_ARCH = {
    "embed_dim": 32,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_dim": 64,
    "resnet_channels": [8, 16, 32, 64],
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "head_dropout": 0.0,
}


def test_av_transformer_samples_on_the_25_fps_timeline(ego4d_root, interview_ego4d):
    from socialav.audio.features import av_hubert_audio_features
    from socialav.data.ego4d.avhubert import AvTransformerTtmDataset, lip_box, steps_of_frames

    assert steps_of_frames(6).tolist() == [0, 1, 2, 4, 5]  # floor(k * 1.2 + 0.5)
    assert steps_of_frames(1).tolist() == [0]
    assert lip_box((10, 20, 30, 60)) == (10.0, 40.0, 30.0, 60.0)
    clips = load_av_annotations(ego4d_root / "av_train.json")
    samples = ttm_samples(clips, train=False)
    boxes = {("interview", p): clips[0].person_boxes_xyxy(p) for p in ("1", "2")}
    ds = AvTransformerTtmDataset(
        samples,
        JpegFolderFrames(ego4d_root / "frames"),
        boxes,
        ClipAudio(["interview"], ego4d_root / "audio"),
        lip_size_px=24,
    )
    item = ds[0]  # person 1, frames 0..29: 25 steps
    assert item["lips"].shape == (25, 24, 24) and item["audio"].shape == (25, 104)
    # step 7 shows 30 fps frame floor(7 * 1.2 + 0.5) = 8: the lower half of its face box
    box = boxes[("interview", "1")][8]
    frame = JpegFolderFrames(ego4d_root / "frames").frame("interview", 8)
    expected = cv2.cvtColor(
        cv2.resize(frame[int(lip_box(box)[1]) : int(box[3]), int(box[0]) : int(box[2])], (24, 24)),
        cv2.COLOR_RGB2GRAY,
    )
    assert np.array_equal(item["lips"][7], expected)
    from socialav.audio.features import ttm_audio_span

    onset, offset = ttm_audio_span(0, 29, 16000)
    wave = interview_ego4d.audio[onset:offset]
    np.testing.assert_allclose(item["audio"], av_hubert_audio_features(wave, 25), atol=1e-5)


def test_av_transformer_trains_through_the_engine(ego4d_root, tmp_path):
    config = _config(
        ego4d_root, tmp_path / "av", "av-transformer", AV_ARCH, batch_size=2, lip_size_px=24
    )
    config.epochs = 12
    result = train(config)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.history[-1]["val_map_percent"] == pytest.approx(100.0)  # fits 2 segments
    model, meta = load_model_checkpoint(result.best_checkpoint, "av-transformer")
    assert meta["input_contract"]["lip_size_px"] == 24
    assert meta["architecture_config"]["resnet_channels"] == [8, 16, 32, 64]
    assert model.config.embed_dim == 32
