"""socialav score: the reference evaluation loader's inputs and the key-based join."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import python_speech_features
from typer.testing import CliRunner

from socialav.cli import app
from socialav.io.ava_csv import GROUNDTRUTH_COLUMNS, write_ava_csv_frame
from socialav.pipelines.score_dataset import (
    EntityScores,
    entity_fps,
    entity_mfcc,
    load_entity_faces,
    predictions_frame,
)


def test_entity_fps_from_timestamps():
    assert entity_fps(np.arange(10) / 30.0) == pytest.approx(30.0)
    # AVA timestamps have two decimals at 29.97 fps: the span gives the rate, not the steps
    ts = np.round(900.0 + np.arange(300) / 29.97, 2)
    assert entity_fps(ts) == pytest.approx(29.97, rel=1e-3)  # 1 / median step: 33.3
    assert entity_fps(np.array([3.0])) == 25.0


def test_mfcc_matches_load_audio_with_wrap_padding():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000) * 3000).astype(np.int16)  # 1 s
    feats = entity_mfcc(audio, 26, 25.0)
    ref = python_speech_features.mfcc(audio, 16000, numcep=13, winlen=0.025, winstep=0.010)
    assert feats.shape == (104, 13) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, np.pad(ref, ((0, 104 - len(ref)), (0, 0)), "wrap")[:104],
                               rtol=1e-6, atol=1e-5)  # fmt: skip
    # at 30 fps the window and hop shrink by 25/30: still 4 frames per face
    ref30 = python_speech_features.mfcc(
        audio, 16000, numcep=13, winlen=0.025 * 25 / 30, winstep=0.010 * 25 / 30
    )
    ref30 = np.pad(ref30, ((0, 120 - len(ref30)), (0, 0)), "wrap")
    np.testing.assert_allclose(entity_mfcc(audio, 30, 30.0), ref30, rtol=1e-6, atol=1e-5)
    assert entity_mfcc(np.zeros(0, np.int16), 1, 25.0).shape == (4, 13)


def test_faces_are_gray_resized_to_112_without_centre_crop(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    path = tmp_path / "0.00.png"  # lossless, so the pixels can be compared exactly
    cv2.imwrite(str(path), image)
    faces = load_entity_faces([path])
    expected = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (112, 112))
    np.testing.assert_array_equal(faces[0], expected)
    with pytest.raises(FileNotFoundError, match="re-run socialav data prepare"):
        load_entity_faces([tmp_path / "missing.jpg"])


def test_predictions_join_by_key_not_row_order():
    gt = pd.DataFrame(
        {
            "video_id": ["v"] * 4,
            "frame_timestamp": [0.04, 0.0, 0.0, 0.04],
            "entity_box_x1": [0.1, 0.1, 0.5, 0.5],
            "entity_box_y1": [0.1] * 4,
            "entity_box_x2": [0.3, 0.3, 0.7, 0.7],
            "entity_box_y2": [0.4] * 4,
            "label": ["NOT_SPEAKING", "SPEAKING_AUDIBLE", "NOT_SPEAKING", "SPEAKING_NOT_AUDIBLE"],
            "entity_id": ["v:0", "v:0", "v:1", "v:1"],
        }
    )
    scores = [
        EntityScores("v:1", np.array([0.0, 0.04]), np.zeros((2, 2)), np.array([0.7, 0.8])),
        EntityScores("v:0", np.array([0.0, 0.04]), np.zeros((2, 2)), np.array([0.1, 0.2])),
    ]
    pred = predictions_frame(gt, scores)
    assert pred["score"].tolist() == [0.2, 0.1, 0.7, 0.8]
    assert (pred["label"] == "SPEAKING_AUDIBLE").all()
    pd.testing.assert_frame_equal(
        pred[["entity_box_x1", "entity_id"]], gt[["entity_box_x1", "entity_id"]]
    )
    # an entity without scores leaves its rows out (they are reported, never misattributed)
    assert predictions_frame(gt, scores[:1])["entity_id"].tolist() == ["v:1", "v:1"]


def test_cli_score_reports_unprepared_root(tmp_path):
    csv = tmp_path / "gt.csv"
    write_ava_csv_frame(
        pd.DataFrame(
            [["v", 0.0, 0.1, 0.1, 0.5, 0.5, "NOT_SPEAKING", "v:0"]],
            columns=list(GROUNDTRUTH_COLUMNS),
        ),
        csv,
        "groundtruth",
    )
    out = CliRunner().invoke(
        app,
        ["score", "--root", str(tmp_path / "root"), "--split", "val", "--csv", str(csv)]
        + ["--output", str(tmp_path / "p.csv")],
    )
    assert out.exit_code == 2 and "prepare the split first" in out.output
    out = CliRunner().invoke(
        app,
        ["score", "--root", str(tmp_path), "--split", "val", "--windows", "1,x"]
        + ["--output", str(tmp_path / "p.csv")],
    )
    assert out.exit_code == 2
