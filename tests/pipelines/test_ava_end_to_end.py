"""End to end on real clips: an AVA-format dataset -> data prepare -> score -> evaluate.

The dataset is built from ../shared/videos: five GRID utterances and two talking heads
(first 3 s), face boxes from the Ultra-Light detector (normalised, on the source frames'
timestamps, so the 30 fps clip is off the 25 fps grid), labels from voice activity (energy
on the clip's own soundtrack; the GRID word alignment for one clip), plus TalkSet-style
negatives: a face remuxed with another clip's soundtrack, NOT_SPEAKING everywhere.
The mAP that ``socialav evaluate`` prints must equal an independent computation.
"""

from __future__ import annotations

import json
import re

import av
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from socialav.cli import app
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame
from socialav.io.media import read_audio
from socialav.vision.detection import UltraLightFaceDetector

MAX_S = 3.0
GRID = ["grid_bbaf2n", "grid_brbk7n", "grid_id2_vcd_swwp2s", "grid_lbax4n", "grid_sbia1a"]
HEADS = ["videoretalking_face_2", "videoretalking_face_4"]  # 25 fps and 30 fps
#: (face clip, audio clip) pairs for the negatives
SWAPS = [("grid_bbaf2n", "videoretalking_face_5"), ("videoretalking_face_2", "grid_sbia1a")]


def _source_frames(path, max_s=MAX_S):
    """Decoded frames on the source timeline: times (s from the first frame), RGB images."""
    times, images = [], []
    with av.open(str(path)) as container:
        origin = None
        for frame in container.decode(container.streams.video[0]):
            if frame.time is None:
                continue
            origin = frame.time if origin is None else origin
            t = float(frame.time - origin)
            if t > max_s:
                break
            times.append(t)
            images.append(frame.to_ndarray(format="rgb24"))
    return np.array(times), images


def _face_boxes(detector, images):
    """Normalised box of the most confident face, detected on every 2nd frame, interpolated."""
    h, w = images[0].shape[:2]
    idx, boxes = [], []
    for k in range(0, len(images), 2):
        det = detector.detect(images[k])
        if len(det):
            idx.append(k)
            boxes.append(det.xyxy_px[int(np.argmax(det.confidence))] / [w, h, w, h])
    assert len(idx) > len(images) // 4, "the detector should find the face"
    boxes = np.array(boxes)
    every = np.arange(len(images))
    return np.stack([np.interp(every, idx, boxes[:, j]) for j in range(4)], axis=1)


def _voice_activity(audio, times, sample_rate=16000):
    """Speech where the 40 ms energy around a frame is above the midpoint (in dB) of the
    clip's 10th and 90th percentile energies; a 5-frame median smooths it."""
    half = int(0.02 * sample_rate)
    x = audio.astype(np.float64)
    db = []
    for t in times:
        c = int(t * sample_rate)
        seg = x[max(0, c - half) : c + half]
        db.append(10 * np.log10(np.mean(seg**2) + 1.0) if len(seg) else 0.0)
    db = np.array(db)
    speech = db > 0.5 * (np.percentile(db, 10) + np.percentile(db, 90))
    padded = np.pad(speech.astype(int), 2, mode="edge")
    return np.array([np.median(padded[i : i + 5]) > 0.5 for i in range(len(speech))])


def _grid_alignment(path, times):
    spans = []
    for line in path.read_text().splitlines():
        start, end, word = line.split()
        if word != "sil":
            spans.append((int(start) / 1000 / 25, int(end) / 1000 / 25))
    return np.array([any(a <= t < b for a, b in spans) for t in times])


def _remux(face_clip, audio_clip, out):
    """A video with ``face_clip``'s picture and ``audio_clip``'s soundtrack (stream copy)."""
    with av.open(str(face_clip)) as a, av.open(str(audio_clip)) as b, av.open(str(out), "w") as o:
        vin, ain = a.streams.video[0], b.streams.audio[0]
        vout, aout = o.add_stream_from_template(vin), o.add_stream_from_template(ain)
        for packets, stream in ((a.demux(vin), vout), (b.demux(ain), aout)):
            for packet in packets:
                if packet.dts is None:
                    continue
                packet.stream = stream
                o.mux(packet)
    return out


def _rows(video_id, times, boxes, speaking):
    return [
        dict(
            video_id=video_id,
            frame_timestamp=float(t),
            entity_box_x1=b[0],
            entity_box_y1=b[1],
            entity_box_x2=b[2],
            entity_box_y2=b[3],
            label="SPEAKING_AUDIBLE" if s else "NOT_SPEAKING",
            entity_id=f"{video_id}:0",
        )
        for t, b, s in zip(times, boxes, speaking, strict=True)
    ]


def _clip(videos_dir, name):
    return videos_dir / (f"{name}.mpg" if name.startswith("grid_") else f"{name}.mp4")


def _build_dataset(videos_dir, weights_dir, raw):
    detector = UltraLightFaceDetector(weights_dir / "ultra-light-face" / "version-RFB-320.onnx")
    rows = []
    for name in GRID + HEADS:
        path = _clip(videos_dir, name)
        (raw / path.name).symlink_to(path)
        times, images = _source_frames(path)
        if name == "grid_id2_vcd_swwp2s":
            speaking = _grid_alignment(videos_dir / f"{name}.align", times)
        else:
            speaking = _voice_activity(read_audio(path), times)
        rows += _rows(name, times, _face_boxes(detector, images), speaking)
    for face, voice in SWAPS:
        video_id = f"swap_{face}"
        out = _remux(_clip(videos_dir, face), _clip(videos_dir, voice), raw / f"{video_id}.mkv")
        times, images = _source_frames(out)
        rows += _rows(video_id, times, _face_boxes(detector, images), np.zeros(len(times), bool))
    return pd.DataFrame(rows)


def _voc_ap(scores, positives):
    """VOC interpolated AP written from the definition: precision at every rank, made
    non-increasing from the right, summed over the ranks where recall rises."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = fp = 0
    precision, recall = [], []
    total = sum(positives)
    for i in order:
        if positives[i]:
            tp += 1
        else:
            fp += 1
        precision.append(tp / (tp + fp))
        recall.append(tp / total)
    for k in range(len(precision) - 2, -1, -1):
        precision[k] = max(precision[k], precision[k + 1])
    ap, previous = 0.0, 0.0
    for p, r in zip(precision, recall, strict=True):
        ap += (r - previous) * p
        previous = r
    return ap


@pytest.mark.slow
def test_prepare_score_evaluate_on_real_clips(videos_dir, weights_dir, tmp_path):
    torch.set_num_threads(1)
    raw = tmp_path / "raw"
    raw.mkdir()
    table = _build_dataset(videos_dir, weights_dir, raw)
    gt_csv = tmp_path / "val_orig.csv"
    write_ava_csv_frame(table.sample(frac=1.0, random_state=1), gt_csv, "groundtruth")
    assert 0.2 < (table["label"] == "SPEAKING_AUDIBLE").mean() < 0.8
    root, pred_csv, report = tmp_path / "root", tmp_path / "pred.csv", tmp_path / "map.json"
    runner = CliRunner()

    out = runner.invoke(
        app,
        ["data", "prepare", "--videos", str(raw), "--csv", str(gt_csv), "--split", "val"]
        + ["--out", str(root), "--workers", "2"],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        app,
        ["score", "--root", str(root), "--split", "val", "--csv", "val_orig.csv"]
        + ["--weights", "light-asd-ava", "--output", str(pred_csv)],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        app,
        ["evaluate", "--groundtruth", str(gt_csv), "--predictions", str(pred_csv)]
        + ["--json", str(report)],
    )
    assert out.exit_code == 0, out.output
    printed = float(re.search(r"mAP: ([0-9.]+)", out.output).group(1))
    reported = json.loads(report.read_text())["map_percent"]

    # Independent: join the two files by (entity_id, frame_timestamp) in plain Python.
    gt = read_ava_csv(gt_csv, "groundtruth")
    pred = read_ava_csv(pred_csv, "predictions")
    score_of = {
        (e, t): s
        for e, t, s in zip(pred["entity_id"], pred["frame_timestamp"], pred["score"], strict=True)
    }
    assert len(score_of) == len(gt) == len(pred)
    keys = list(zip(gt["entity_id"], gt["frame_timestamp"], strict=True))
    scores = [score_of[k] for k in keys]
    positives = [label == "SPEAKING_AUDIBLE" for label in gt["label"]]
    expected = 100.0 * _voc_ap(scores, positives)
    assert reported == pytest.approx(expected, abs=1e-9)
    assert printed == pytest.approx(expected, abs=5e-5)
    chance = 100.0 * np.mean(positives)
    print(f"end-to-end: {len(gt)} faces, mAP {expected:.4f} %, chance {chance:.2f} %")
    assert expected > chance + 25, (expected, chance)
    # the swapped-audio negatives score lower than the clips' own speech
    swap = pred["video_id"].str.startswith("swap_").to_numpy()
    speech = (gt.set_index(["entity_id", "frame_timestamp"]).loc[
        list(zip(pred["entity_id"], pred["frame_timestamp"], strict=True)), "label"
    ] == "SPEAKING_AUDIBLE").to_numpy()  # fmt: skip
    assert pred["score"][swap].mean() < pred["score"][speech & ~swap].mean() - 0.2
