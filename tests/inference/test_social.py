"""Ego4D-trained LAM/TTM checkpoints in ``socialav detect`` (issue 6).

The expected values are computed with the *training-side* code: the Ego4D sample builders
and datasets of :mod:`socialav.data.ego4d.samples` run on a 30 fps clip made by hand from the
25 fps track (model frame ``j`` shows track frame ``(5 j + 3) // 6``, track frame ``i`` is
represented by model frame ``(12 i + 5) // 10``: the nearest frames, in integer arithmetic),
then the models' own ``forward``. Models are random-init debug sizes (32/48 px crops).
"""

from __future__ import annotations

import hashlib
import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from socialav.checkpoints.format import CheckpointError, save_model_checkpoint
from socialav.data.ego4d.annotations import Ego4dClip, Ego4dPerson, Ego4dTrack, SocialSegment
from socialav.data.ego4d.samples import (
    InMemoryFrames,
    LamDataset,
    TtmAudioDataset,
    TtmSample,
    TtmVisualDataset,
    build_ttm_visual_windows,
    lam_samples,
    lam_track_boxes,
)
from socialav.inference.social import (
    lam_window_rows,
    load_social_checkpoint,
    load_trained_social_model,
    model_frame_of_rows,
    row_of_model_frames,
)
from socialav.models.gaze_lstm import GazeLSTM
from socialav.models.light_asd import LightASD
from socialav.models.quavf import QuavfAudioBranch, QuavfVisualBranch
from socialav.types import FaceTrack
from socialav.vision.crops import crop_face_box
from socialav.vision.quality import frame_quality

LAM_PX, TTM_PX = 32, 48
FEAT_LENGTH, FRAME_STRIDE = 5, 3
GAZE_CONFIG = {"img_feature_dim": 16, "base_width": 8}
VISUAL_CONFIG = {"dim": 16, "num_heads": 2, "feat_length": FEAT_LENGTH, "base_width": 8}
AUDIO_CONFIG = {"encoder_dim": 16, "dim": 16, "num_heads": 2}


def _j(i: int) -> int:
    """Model frame (30 fps) nearest to track frame ``i`` (25 fps): floor(1.2 i + 0.5)."""
    return (12 * i + 5) // 10


def _row(j: int, num_rows: int) -> int:
    """Track frame nearest to model frame ``j``: floor(j / 1.2 + 0.5), clipped."""
    return min((5 * j + 3) // 6, num_rows - 1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("social_ckpt")
    gaze = GazeLSTM(**GAZE_CONFIG)
    visual = QuavfVisualBranch(**VISUAL_CONFIG)
    audio = QuavfAudioBranch(**AUDIO_CONFIG)
    paths = {
        "lam": save_model_checkpoint(
            out / "lam.pt",
            gaze,
            architecture_config=GAZE_CONFIG,
            input_contract={"face_size_px": LAM_PX},
        ),
        "visual": save_model_checkpoint(
            out / "ttm_visual.pt",
            visual,
            architecture_config=VISUAL_CONFIG,
            input_contract={
                "face_size_px": TTM_PX,
                "feat_length": FEAT_LENGTH,
                "frame_stride": FRAME_STRIDE,
            },
        ),
        "audio": save_model_checkpoint(
            out / "ttm_audio.pt",
            audio,
            architecture_config=AUDIO_CONFIG,
            input_contract={"n_mels": 80},
        ),
        "asd": save_model_checkpoint(out / "asd.pt", LightASD()),
    }
    notes = out / "notes.pt"
    notes.write_text("not a checkpoint\n")
    paths["text"] = notes
    return paths


@pytest.fixture(scope="module")
def synthetic_track():
    """A 50-frame (2 s) face track over smooth random frames, its boxes on a 0.25 px grid
    (exact in float32 and through x, y, w, h), with varying detector confidence."""
    rng = np.random.default_rng(3)
    num = 50
    frames = np.stack(
        [
            cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (128, 96))
            for _ in range(num)
        ]
    )
    x1 = np.round((20 + np.cumsum(rng.normal(0, 0.7, num))) * 4) / 4
    y1 = np.round((15 + np.cumsum(rng.normal(0, 0.5, num))) * 4) / 4
    side = np.round((40 + rng.normal(0, 1.0, num)) * 4) / 4
    boxes = np.stack([x1, y1, x1 + side, y1 + side], 1).astype(np.float32)
    confidence = rng.uniform(0.75, 1.0, num).astype(np.float32)
    track = FaceTrack(
        0, np.arange(100, 100 + num), boxes, np.zeros((num, 3), np.float32), confidence=confidence
    )
    audio = (rng.normal(0, 1, num * 640) * 3000 * np.sin(np.arange(num * 640) / 900)).astype(
        np.int16
    )
    crops = {
        s: np.stack([crop_face_box(f, b, s) for f, b in zip(frames, boxes, strict=True)])
        for s in (32, 48)
    }
    quality = np.array(
        [
            frame_quality(f[max(int(b[1]), 0) : int(b[3]), max(int(b[0]), 0) : int(b[2])], b, c)
            for f, b, c in zip(frames, boxes, confidence, strict=True)
        ]
    )
    return {
        "frames": frames,
        "track": track,
        "audio": audio,
        "crops": crops,
        "quality": quality,
    }


def _ego4d_clip(data):
    """The track as an annotated Ego4D clip on the 30 fps timeline (one frame per model
    frame, each showing its nearest track frame): what the training code consumes."""
    num = len(data["track"])
    n30 = _j(num - 1) + 1
    rows = [_row(j, num) for j in range(n30)]
    boxes = data["track"].boxes_xyxy_px.astype(np.float64)[rows]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    clip = Ego4dClip(
        "clip",
        "video",
        [
            Ego4dPerson("camera_wearer", True),
            Ego4dPerson("1", False, [Ego4dTrack("t1", np.arange(n30), xywh)]),
        ],
        [SocialSegment(0, "1", "0", 0, n30 - 1)],
        [],
    )
    frames = InMemoryFrames({"clip": data["frames"][rows]})
    confidence = data["track"].confidence

    def conf(clip_uid: str, person: str, frame: int) -> float:
        return float(confidence[_row(frame, num)])

    return clip, frames, conf, n30


# ------------------------------------------------------------------------ time mapping


def test_time_mapping_hand_values():
    np.testing.assert_array_equal(model_frame_of_rows(6, 25, 30), [0, 1, 2, 4, 5, 6])
    np.testing.assert_array_equal(
        row_of_model_frames(np.arange(8), 6, 25, 30), [0, 1, 2, 3, 3, 4, 5, 5]
    )
    assert [_j(i) for i in range(200)] == model_frame_of_rows(200, 25, 30).tolist()
    rows = lam_window_rows(10, 25, 30)
    # row 0: model frames -3..3, the 3 before the track are edge-padded (pad_video):
    # [0, 0, 0, 0, 1, 2, 3] -> track rows [0, 0, 0, 0, 1, 2, 3] (3 / 1.2 = 2.5 rounds up)
    np.testing.assert_array_equal(rows[0], [0, 0, 0, 0, 1, 2, 3])
    # row 5 = model frame 6: frames 3..9 / 1.2 = 2.5 3.33 4.17 5 5.83 6.67 7.5 -> rounded
    np.testing.assert_array_equal(rows[5], [3, 3, 4, 5, 6, 7, 8])
    # last row 9 = model frame 11 (the last): frames 8..11 kept, 3 after padded with 11
    np.testing.assert_array_equal(rows[9], [7, 8, 8, 9, 9, 9, 9])


# ------------------------------------------------------------- (a) LAM = training side


def test_lam_equals_gaze_lstm_on_training_side_windows(checkpoints, synthetic_track):
    data = synthetic_track
    model = load_trained_social_model(checkpoints["lam"])
    assert model.tasks == ("lam",) and model.face_sizes_px == (LAM_PX,)
    out = model.score_track(data["track"], data["crops"][LAM_PX], None)
    assert set(out) == {"lam"}
    lam = out["lam"]
    assert lam.shape == (50,) and lam.dtype == np.float32
    assert np.all((lam >= 0) & (lam <= 1)) and lam.std() > 1e-4

    clip, frames, _, n30 = _ego4d_clip(data)
    samples = lam_samples([clip], stride=1)
    assert [s.frame for s in samples] == list(range(n30))
    dataset = LamDataset(samples, frames, lam_track_boxes([clip]), size_px=LAM_PX)
    gaze = model.lam.model
    for i in (0, 1, 2, 3, 17, 30, 47, 48, 49):
        with torch.no_grad():
            logits = gaze(dataset[_j(i)]["frames"][None])
        expected = torch.softmax(logits, 1)[0, 1].item()
        assert lam[i] == pytest.approx(expected, abs=1e-5), i


# ------------------------------------------------- (a)+(b) TTM visual, audio and fusion


def test_ttm_fusion_equals_training_side_branches(checkpoints, synthetic_track):
    data = synthetic_track
    track = data["track"]
    model = load_trained_social_model([checkpoints["visual"], checkpoints["audio"]], task="ttm")
    assert model.tasks == ("ttm",) and model.needs_quality and model.face_sizes_px == (TTM_PX,)
    out = model.score_track(track, data["crops"], data["audio"], 25.0, data["quality"])
    assert set(out) == {"ttm"}
    ttm = out["ttm"]
    assert ttm.shape == (50,) and ttm.dtype == np.float32 and np.all((ttm >= 0) & (ttm <= 1))

    # visual branch: the QuAVF evaluation windows and dataset of the training code
    clip, frames, conf, n30 = _ego4d_clip(data)
    windows = build_ttm_visual_windows(
        [clip],
        frames,
        train=False,
        feat_length=FEAT_LENGTH,
        frame_stride=FRAME_STRIDE,
        confidence=conf,
    )
    assert [w.center_frame for w in windows] == list(range(n30))
    dataset = TtmVisualDataset(
        windows, frames, {("clip", "1"): clip.person_boxes_xyxy("1")}, TTM_PX
    )
    # audio branch: the track's 2 s are the 30 fps sample [0, 60) (60 model frames)
    assert n30 == 60
    audio_item = TtmAudioDataset(
        [TtmSample("clip", "1", 0, 0, n30, 1)], {"clip": data["audio"]}, max_frames=900
    )[0]
    assert audio_item["num_frames"] == 60
    with torch.no_grad():
        audio_logits = model.ttm_audio.model(audio_item["mel"][None], audio_item["num_frames"])
    p_audio = torch.softmax(audio_logits[0], 0)[1].numpy()
    rows = [0, 1, 2, 3, 5, 11, 24, 25, 38, 46, 47, 48, 49]  # the ends, where windows pad
    qualities = []
    for i in rows:
        item = dataset[_j(i)]
        with torch.no_grad():
            logits = model.ttm_visual.model(item["frames"][None], item["quality"][None])
        p_visual = torch.softmax(logits, 1)[0, 1].item()
        q = float(item["quality"])
        qualities.append(q)
        expected = (1 - q) * p_audio[_j(i)] + q * p_visual  # QuAVF.py fusion, by hand
        assert ttm[i] == pytest.approx(expected, abs=2e-5), i
    assert 0.05 < min(qualities) and max(qualities) < 0.95  # the fusion weighs both branches
    # the per-branch methods give the parts
    p_v, q_v = model.ttm_visual_probabilities(data["crops"][TTM_PX], data["quality"])
    np.testing.assert_allclose(q_v[rows], qualities, atol=1e-6)
    p_a = model.ttm_audio_probabilities(data["audio"], 50)
    np.testing.assert_allclose(p_a, p_audio[[_j(i) for i in range(50)]], atol=1e-6)
    np.testing.assert_allclose(ttm, (1 - q_v) * p_a + q_v * p_v, atol=1e-6)


def test_long_track_audio_is_scored_in_chunks_of_at_most_5_s(checkpoints):
    model = load_trained_social_model(checkpoints["audio"])
    rng = np.random.default_rng(1)
    num = 260  # 10.4 s -> 3 chunks of 87, 87, 86 frames
    audio = (rng.normal(0, 2000, num * 640)).astype(np.int16)
    whole = model.ttm_audio_probabilities(audio, num)
    chunks = np.array_split(np.arange(num), math.ceil(num / 125))
    assert [len(c) for c in chunks] == [87, 87, 86]
    for c in chunks:
        a, b = c[0], c[-1] + 1
        np.testing.assert_array_equal(
            whole[a:b], model.ttm_audio_probabilities(audio[640 * a : 640 * b], b - a)
        )


def test_inputs_are_checked(checkpoints, synthetic_track):
    data = synthetic_track
    model = load_trained_social_model([checkpoints["lam"], checkpoints["visual"]])
    assert model.face_sizes_px == (LAM_PX, TTM_PX)
    with pytest.raises(ValueError, match="48 px face crops, but got sizes \\[32\\]"):
        model.score_track(data["track"], {LAM_PX: data["crops"][LAM_PX]}, None)
    with pytest.raises(ValueError, match="expected 50 face crops"):
        model.score_track(data["track"], {s: c[:-1] for s, c in data["crops"].items()}, None)
    with pytest.raises(ValueError, match=r"takes \(T, 32, 32, 3\) uint8"):
        model.lam_probabilities(data["crops"][TTM_PX])
    both = model.score_track(data["track"], data["crops"], None)  # quality from the crops
    assert set(both) == {"lam", "ttm"}


# ---------------------------------------------------------------- (c) refused checkpoints


@pytest.mark.parametrize(
    ("key", "task", "match"),
    [
        ("asd", "lam", "expected a gaze-lstm checkpoint .*found a 'light-asd' model"),
        ("visual", "lam", "expected a gaze-lstm checkpoint .*found a 'quavf-visual'"),
        ("lam", "ttm", "expected a quavf-visual or quavf-audio checkpoint .*'gaze-lstm'"),
        ("asd", None, "found a 'light-asd' model \\(task asd\\)"),
        ("text", "lam", "cannot be read as a socialav checkpoint"),
    ],
)
def test_other_files_are_refused(checkpoints, key, task, match):
    with pytest.raises(CheckpointError, match=match):
        load_social_checkpoint(checkpoints[key], task=task)


def test_duplicate_and_unusable_checkpoints_are_refused(checkpoints, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_social_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="at most one quavf-audio"):
        load_trained_social_model([checkpoints["audio"], checkpoints["audio"]])
    stride1 = save_model_checkpoint(
        tmp_path / "stride1.pt",
        QuavfVisualBranch(**VISUAL_CONFIG),
        architecture_config=VISUAL_CONFIG,
        input_contract={"face_size_px": 32, "feat_length": FEAT_LENGTH, "frame_stride": 1},
    )
    with pytest.raises(CheckpointError, match="hold 6 frames, but the model takes at most 5"):
        load_social_checkpoint(stride1)


def test_weights_switch_their_task_on():
    from socialav.pipelines.config import DetectConfig

    assert DetectConfig(lam_weights="lam.pt").tasks == ("asd", "lam")
    config = DetectConfig(ttm_weights="a.pt")
    assert config.tasks == ("asd", "lam", "ttm") and config.ttm_weights == ("a.pt",)
    assert DetectConfig().tasks == ("asd",) and DetectConfig().ttm_weights == ()


@pytest.mark.parametrize(
    ("option", "key", "expect"),
    [
        ("--lam-weights", "asd", "expected a gaze-lstm checkpoint"),
        ("--lam-weights", "text", "cannot be read as a socialav checkpoint"),
        ("--ttm-weights", "lam", "expected a quavf-visual or quavf-audio checkpoint"),
    ],
)
def test_cli_refuses_wrong_weights_cleanly(checkpoints, videos_dir, tmp_path, option, key, expect):
    from socialav.cli import app

    out = tmp_path / "out"
    args = ["detect", str(videos_dir / "grid_bbaf2n.mpg"), "-o", str(out), "--threads", "1"]
    result = CliRunner().invoke(app, [*args, option, str(checkpoints[key])])
    assert result.exit_code == 2, result.output
    assert expect in result.output and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


# ----------------------------------------------------------------- the streaming cropper


def test_streaming_social_crops_equal_offline_crops():
    """The pipeline cuts RGB crops and quality while tracks are open; they must equal
    crop_face_box / frame_quality x confidence of the finished track's boxes."""
    from socialav.types import Detections
    from socialav.vision.streaming import StreamingRgbCropper
    from socialav.vision.tracking import FaceTracker, TrackerConfig

    rng = np.random.default_rng(7)
    num_frames = 90
    frames = np.stack(
        [
            cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120))
            for _ in range(num_frames)
        ]
    )
    for detect_every in (1, 3):
        tracker = FaceTracker(TrackerConfig(detect_every=detect_every))
        cropper = StreamingRgbCropper((24, 40), with_quality=True)
        centres = [np.array([50.0, 60.0]), np.array([110.0, 55.0])]
        spans = [(0, 60), (20, 89)]
        got, tracks = {}, {}

        def collect(tracker=tracker, cropper=cropper, got=got, tracks=tracks):
            for key, track in tracker.pop_closed():
                cropper.close(key, track)
                if track is not None:
                    got[track.track_id] = cropper.pop(track.track_id)
                    tracks[track.track_id] = track

        for k in range(num_frames):
            dets = None
            if k % detect_every == 0:
                boxes, conf = [], []
                for i, (a, b) in enumerate(spans):
                    centres[i] = centres[i] + rng.normal(0, 1.5, 2)
                    if a <= k <= b and rng.random() > 0.15:
                        half = 20 + rng.normal(0, 1)
                        c = centres[i]
                        boxes.append([c[0] - half, c[1] - half, c[0] + half, c[1] + half])
                        conf.append(rng.uniform(0.7, 1.0))
                dets = Detections(np.array(boxes).reshape(-1, 4), np.array(conf))
            tracker.update(k, dets)
            cropper.add_frame(k, frames[k])
            collect()
            cropper.advance_open(tracker.open_tracks())
            cropper.prune(k)
            # only the frames since the oldest open track's last detection are held
            assert len(cropper.frames) <= TrackerConfig().max_gap_frames + detect_every + 1
        tracker.finish()
        collect()
        assert len(tracks) >= 2 and not cropper.done
        for tid, track in tracks.items():
            crops, quality = got[tid]
            assert sorted(crops) == [24, 40]
            for size in (24, 40):
                offline = np.stack(
                    [
                        crop_face_box(frames[t], b, size)
                        for t, b in zip(track.frame_indices, track.boxes_xyxy_px, strict=True)
                    ]
                )
                np.testing.assert_array_equal(crops[size], offline)
            expected = [
                frame_quality(
                    frames[t][
                        max(int(b[1]), 0) : max(int(b[3]), 0), max(int(b[0]), 0) : max(int(b[2]), 0)
                    ],
                    b,
                    float(c),
                )
                for t, b, c in zip(
                    track.frame_indices, track.boxes_xyxy_px, track.confidence, strict=True
                )
            ]
            np.testing.assert_allclose(quality, expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------- (d) end to end


@pytest.fixture(scope="module")
def trained_run(checkpoints, videos_dir):
    from socialav.inference.asd import WindowConfig
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    torch.set_num_threads(1)
    config = DetectConfig(
        num_threads=1,
        windows=WindowConfig(durations_s=None),
        tasks=("asd", "lam", "ttm"),
        lam_weights=str(checkpoints["lam"]),
        ttm_weights=(str(checkpoints["visual"]), str(checkpoints["audio"])),
    )
    detector = SpeakerDetector(config)
    path = videos_dir / "grid_bbaf2n.mpg"
    return detector, path, detector.run(path)


def test_detect_uses_the_trained_models(trained_run, head_pose_model, sample_frames):
    from socialav.audio.features import track_audio
    from socialav.inference.social_rules import social_series
    from socialav.io.media import iter_frames, read_audio
    from socialav.vision.head_pose import track_head_pose

    detector, path, result = trained_run
    assert len(result.tracks) == 1
    track, score = result.tracks[0], result.scores[0]
    assert set(score.extra) == {"lam", "ttm"}
    assert detector.head_pose is None  # no zero-shot LAM needed: no FSA-Net
    # the model, on crops cut offline from the decoded frames
    wanted = set(track.frame_indices.tolist())
    frames = {i: f for i, f in iter_frames(path) if i in wanted}
    rows = [frames[int(t)] for t in track.frame_indices]
    crops = {
        s: np.stack(
            [crop_face_box(f, b, s) for f, b in zip(rows, track.boxes_xyxy_px, strict=True)]
        )
        for s in (LAM_PX, TTM_PX)
    }
    quality = np.array(
        [
            frame_quality(
                f[max(int(b[1]), 0) : int(b[3]), max(int(b[0]), 0) : int(b[2])], b, float(c)
            )
            for f, b, c in zip(rows, track.boxes_xyxy_px, track.confidence, strict=True)
        ]
    )
    audio = track_audio(read_audio(path), track.start_frame, track.end_frame)
    expected = detector.social.model.score_track(track, crops, audio, 25.0, quality)
    for task in ("lam", "ttm"):
        np.testing.assert_allclose(score.extra[task], expected[task], atol=1e-6)
    # and not the zero-shot rules
    angles = track_head_pose(head_pose_model, sample_frames(path, every=3), track)
    zero_shot = social_series(angles, score.probabilities)
    assert zero_shot["lam"].mean() > 0.9  # the GRID speaker faces the camera
    for task in ("lam", "ttm"):
        assert np.abs(score.extra[task] - zero_shot[task]).max() > 0.05
    info = result.run_info
    assert info["lam"].startswith("Ego4D-trained GazeLSTM")
    assert info["ttm"].startswith("Ego4D-trained QuAVF (weights.ttm): (1 - q)")
    assert "timings_s" in info and info["timings_s"]["social"] > 0


def test_cli_writes_trained_columns_and_records_the_weights(trained_run, checkpoints, tmp_path):
    from socialav.cli import app

    _, path, result = trained_run
    out = tmp_path / "out"
    args = ["detect", str(path), "-o", str(out), "--no-video", "--outputs", "csv,json"]
    args += ["--windows", "full", "--threads", "1", "--tasks", "asd,lam,ttm"]
    args += ["--lam-weights", str(checkpoints["lam"])]
    args += [
        "--ttm-weights",
        str(checkpoints["visual"]),
        "--ttm-weights",
        str(checkpoints["audio"]),
    ]
    cli = CliRunner().invoke(app, args)
    assert cli.exit_code == 0, cli.output
    csv = pd.read_csv(out / f"{path.stem}.ava.csv")
    score = result.scores[0]
    np.testing.assert_allclose(csv.lam_score, score.extra["lam"], atol=1e-8)
    np.testing.assert_allclose(csv.ttm_score, score.extra["ttm"], atol=1e-8)
    weights = json.loads((out / f"{path.stem}.json").read_text())["run_info"]["weights"]
    for record, key in [
        (weights["lam"], "lam"),
        *zip(weights["ttm"], ("visual", "audio"), strict=True),
    ]:
        file = checkpoints[key]
        assert record["path"] == str(file.resolve())
        assert record["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert weights["lam"]["architecture"] == "gaze-lstm"
    assert [r["architecture"] for r in weights["ttm"]] == ["quavf-visual", "quavf-audio"]
