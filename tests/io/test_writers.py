"""Tests for socialav.io.writers: atomic writes, AVA CSV, RTTM, JSON."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from socialav.io.atomic import atomic_output_path, atomic_write
from socialav.io.writers import (
    AVA_PREDICTION_COLUMNS,
    JSON_SCHEMA_VERSION,
    RttmTurn,
    format_rttm_line,
    read_rttm,
    rttm_safe,
    timestamp_decimals,
    write_ava_csv,
    write_json,
    write_rttm,
)
from socialav.types import FaceTrack, SpeakingSegment, TrackScores, VideoInfo

W, H, FPS = 640, 360, 25.0


def make_video(video_id: str = "clip", num_frames: int = 100) -> VideoInfo:
    return VideoInfo(
        path=f"/videos/{video_id}.mp4",
        video_id=video_id,
        width_px=W,
        height_px=H,
        source_fps=29.97,
        duration_s=num_frames / FPS,
        num_frames=num_frames,
    )


def make_track(track_id: int, start: int, n: int) -> FaceTrack:
    """Boxes encode their frame: x1 = frame index px, y1 = 100 + track_id px."""
    frames = np.arange(start, start + n)
    boxes = np.stack(
        [frames, np.full(n, 100 + track_id), frames + 50, np.full(n, 200 + track_id)], axis=1
    )
    return FaceTrack(track_id, frames, boxes, np.zeros((n, 3)))


def prob_of(track_id: int, frame: np.ndarray) -> np.ndarray:
    return (frame % 97) / 100 + track_id / 1000


def make_scores(track_id: int, frames: np.ndarray, extra: bool = False) -> TrackScores:
    p = prob_of(track_id, frames)
    ex = {"lam": 1 - p, "ttm": p / 2} if extra else {}
    return TrackScores(track_id, frames, logits=p * 10 - 5, probabilities=p, extra=ex)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


# ---------------------------------------------------------------------------- atomic


def test_atomic_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as handle:
        handle.write("new")
        assert target.read_text() == "old"  # not visible before the block ends
    assert target.read_text() == "new"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [True, False])
def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path: Path, existing: bool) -> None:
    target = tmp_path / "out.csv"
    if existing:
        target.write_text("old")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(target) as handle:
            handle.write("partial")
            raise RuntimeError("midway")
    assert (target.read_text() == "old") if existing else not target.exists()
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.csv"] if existing else [])


def test_atomic_write_binary_and_bad_mode(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_atomic_output_path_keeps_suffix_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "plot.png"
    with atomic_output_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png"
    with pytest.raises(ValueError):
        with atomic_output_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("boom")
    assert target.read_bytes() == b"png"
    assert leftovers(target.parent) == []


def test_ava_csv_writer_failure_keeps_previous_file(tmp_path: Path) -> None:
    video = make_video()
    target = tmp_path / "ava.csv"
    target.write_text("previous run")
    good = make_track(0, 0, 10)
    bad_scores = make_scores(0, np.arange(5, 15))  # frames 10..14 are outside the track
    with pytest.raises(ValueError, match="outside the face track"):
        write_ava_csv(target, video, [good], [bad_scores])
    assert target.read_text() == "previous run"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- AVA CSV


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_ava_csv_header_matches_official_prediction_fixture(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with open(fixtures_dir / "ava_metric" / "predictions.csv") as handle:
        official = handle.readline().strip().split(",")
    video = make_video()
    write_ava_csv(tmp_path / "a.csv", video, [make_track(0, 0, 3)], [make_scores(0, np.arange(3))])
    header, rows = read_rows(tmp_path / "a.csv")
    assert header == official == list(AVA_PREDICTION_COLUMNS)
    assert len(rows) == 3


def test_ava_csv_joins_scores_to_boxes_by_frame(tmp_path: Path) -> None:
    video = make_video("my clip")
    # Tracks with different spans; track 10 scored only on part of its frames; track ids
    # chosen so that string order (10 < 2) differs from numeric order.
    tracks = [make_track(10, 40, 30), make_track(2, 5, 20), make_track(3, 90, 10)]
    scores = [
        make_scores(10, np.arange(50, 70)),
        make_scores(2, np.arange(5, 25), extra=True),
        # given out of time order: the writer must sort by time, not trust positions
        make_scores(3, np.arange(99, 89, -1)),
    ]
    n = write_ava_csv(tmp_path / "a.csv", video, tracks, scores)
    header, rows = read_rows(tmp_path / "a.csv")
    assert n == len(rows) == 20 + 20 + 10
    assert header[-2:] == ["lam_score", "ttm_score"]
    entities = [r["entity_id"] for r in rows]
    assert entities == ["my clip:2"] * 20 + ["my clip:3"] * 10 + ["my clip:10"] * 20
    for row in rows:
        track_id = int(row["entity_id"].split(":")[1])
        ts = row["frame_timestamp"]
        assert len(ts.split(".")[1]) == 2  # AVA style: 2 decimals, exact at 25 fps
        frame = round(float(ts) * FPS)
        assert float(ts) == pytest.approx(frame / FPS, abs=1e-12)
        # the box of that very frame: x1 = frame px, y1 = 100 + track_id px
        assert float(row["entity_box_x1"]) == pytest.approx(min(frame / W, 1), abs=1e-4)
        assert float(row["entity_box_y1"]) == pytest.approx((100 + track_id) / H, abs=1e-4)
        assert float(row["score"]) == pytest.approx(prob_of(track_id, frame), abs=1e-7)
        assert row["label"] == "SPEAKING_AUDIBLE"
        assert row["video_id"] == "my clip"
        for col in ("entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2", "score"):
            assert 0.0 <= float(row[col]) <= 1.0
        if track_id == 2:
            assert float(row["lam_score"]) == pytest.approx(1 - prob_of(2, frame), abs=1e-7)
        else:
            assert row["lam_score"] == row["ttm_score"] == ""
    times = [float(r["frame_timestamp"]) for r in rows if r["entity_id"] == "my clip:3"]
    assert times == sorted(times) and times[0] == pytest.approx(3.6)
    # (frame_timestamp, entity_id) is a key: no duplicates
    assert len({(r["entity_id"], r["frame_timestamp"]) for r in rows}) == len(rows)


def test_ava_csv_clips_boxes_and_can_drop_extra(tmp_path: Path) -> None:
    video = make_video()
    track = FaceTrack(0, [0, 1], [[-20, -5, 700, 400], [10, 20, 30, 40]], np.zeros((2, 3)))
    scores = make_scores(0, np.array([0, 1]), extra=True)
    write_ava_csv(tmp_path / "a.csv", video, [track], [scores], include_extra=False)
    header, rows = read_rows(tmp_path / "a.csv")
    assert header == list(AVA_PREDICTION_COLUMNS)
    first = [float(rows[0][c]) for c in AVA_PREDICTION_COLUMNS[2:6]]
    assert first == [0.0, 0.0, 1.0, 1.0]
    assert float(rows[1]["entity_box_x2"]) == pytest.approx(30 / W, abs=1e-4)


@pytest.mark.parametrize(
    ("tracks", "scores", "message"),
    [
        ([make_track(0, 0, 5)], [make_scores(1, np.arange(5))], "has no FaceTrack"),
        ([make_track(0, 0, 5), make_track(0, 5, 5)], [], "must be unique"),
        (
            [make_track(0, 0, 5)],
            [make_scores(0, np.arange(5)), make_scores(0, np.arange(5))],
            "appears twice",
        ),
        ([make_track(0, 3, 5)], [make_scores(0, np.arange(2, 7))], "first missing frame 2"),
        (
            [make_track(0, 0, 2)],
            [TrackScores(0, [0, 1], [0, 0], [0, 0], extra={"bad name": np.zeros(2)})],
            "extra series names",
        ),
    ],
)
def test_ava_csv_rejects_bad_joins(tmp_path: Path, tracks, scores, message) -> None:
    with pytest.raises(ValueError, match=message):
        write_ava_csv(tmp_path / "a.csv", make_video(), tracks, scores)
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize(
    ("fps", "decimals"), [(25.0, 2), (50.0, 2), (10.0, 1), (1.0, 0), (30.0, 6)]
)
def test_timestamp_decimals(fps: float, decimals: int) -> None:
    assert timestamp_decimals(fps) == decimals


# ---------------------------------------------------------------------------- RTTM


def test_read_rttm_parses_pyannote_file_and_round_trips(shared_dir: Path) -> None:
    path = shared_dir / "audio" / "pyannote_sample.rttm"
    turns = read_rttm(path)
    assert len(turns) == 10
    assert turns[0] == RttmTurn("sample", "1", 6.69, 0.43, "speaker90")
    assert turns[-1] == RttmTurn("sample", "1", 27.85, 2.15, "speaker90")
    assert {t.speaker for t in turns} == {"speaker90", "speaker91"}
    # Our line formatter reproduces pyannote's file byte for byte.
    assert "\n".join(format_rttm_line(t) for t in turns) + "\n" == path.read_text()


def make_segment(start_frame: int, end_frame: int, mean: float = 0.8) -> SpeakingSegment:
    return SpeakingSegment(start_frame / FPS, (end_frame + 1) / FPS, start_frame, end_frame, mean)


def test_write_rttm_round_trip_and_format(tmp_path: Path, shared_dir: Path) -> None:
    video = make_video("team meeting 01")
    scores = [
        TrackScores(
            0,
            np.arange(0, 100),
            np.zeros(100),
            np.zeros(100),
            segments=[make_segment(50, 74), make_segment(3, 9)],
        ),
        TrackScores(
            7, np.arange(0, 100), np.zeros(100), np.zeros(100), segments=[make_segment(10, 60)]
        ),
        TrackScores(8, np.arange(0, 5), np.zeros(5), np.zeros(5)),
    ]
    n = write_rttm(tmp_path / "a.rttm", video, scores)
    lines = (tmp_path / "a.rttm").read_text().splitlines()
    assert n == len(lines) == 3
    # same field layout as pyannote's RTTM: 10 fields, <NA> in 6, 7, 9, 10
    reference = (shared_dir / "audio" / "pyannote_sample.rttm").read_text().splitlines()[0]
    for line in lines:
        fields, ref = line.split(" "), reference.split(" ")
        assert len(fields) == len(ref) == 10
        assert [fields[i] for i in (0, 2, 5, 6, 8, 9)] == [ref[i] for i in (0, 2, 5, 6, 8, 9)]
    assert lines[0] == (
        "SPEAKER team_meeting_01 1 0.120 0.280 <NA> <NA> team_meeting_01:0 <NA> <NA>"
    )
    turns = read_rttm(tmp_path / "a.rttm")
    assert [(t.speaker, t.onset_s, t.end_s) for t in turns] == [
        ("team_meeting_01:0", 0.12, pytest.approx(0.4)),
        ("team_meeting_01:7", 0.4, pytest.approx(2.44)),
        ("team_meeting_01:0", 2.0, pytest.approx(3.0)),
    ]


def test_rttm_safe_and_errors(tmp_path: Path) -> None:
    assert rttm_safe("a b\tc  d") == "a_b_c_d"
    assert rttm_safe("clip:3") == "clip:3"
    assert rttm_safe("  ") == "<NA>"
    with pytest.raises(ValueError, match=r"<lines>:2: .* at least 8"):
        read_rttm(["SPEAKER a 1 0.0 1.0 <NA> <NA> s <NA> <NA>", "SPEAKER a 1 0.0"])
    with pytest.raises(ValueError, match="numeric onset"):
        read_rttm(["SPEAKER a 1 x 1.0 <NA> <NA> s <NA> <NA>"])
    assert read_rttm([";; comment", "", "SPKR-INFO a 1 <NA> <NA> <NA> unknown s <NA> <NA>"]) == []
    bad = TrackScores(0, [0], [0], [0], segments=[SpeakingSegment(1.0, 1.0, 25, 24, 0.5)])
    with pytest.raises(ValueError, match="must end after it starts"):
        write_rttm(tmp_path / "x.rttm", make_video(), [bad])
    assert not (tmp_path / "x.rttm").exists()


# ---------------------------------------------------------------------------- JSON


def test_write_json_content(tmp_path: Path) -> None:
    video = make_video()
    track0 = make_track(0, 10, 6)
    track0.boxes_xyxy_px[0] = [1.26, 2.34, 3.0, 4.04]
    track0.detected[2] = False
    tracks = [track0, make_track(1, 0, 4)]
    partial = make_scores(0, np.arange(12, 16), extra=True)
    partial.logits[1] = np.nan
    partial.segments.append(make_segment(13, 15, 0.7))
    run_info = {
        "model": "light-asd",
        "weights": {"name": "pretrain_AVA_CVPR.model", "sha256": "ab" * 32},
        "threshold": np.float32(0.5),
        "window_s": (1, 2, 3),
        "output": tmp_path,
    }
    # track 1 has no scores (e.g. too short to score): kept, with null scores
    record = write_json(tmp_path / "r.json", video, tracks, [partial], run_info)
    with open(tmp_path / "r.json") as handle:
        text = handle.read()

    def no_nan(token: str):
        raise AssertionError(f"non-standard JSON constant {token}")

    loaded = json.loads(text, parse_constant=no_nan)
    assert loaded == json.loads(json.dumps(record))
    assert loaded["schema_version"] == JSON_SCHEMA_VERSION
    assert loaded["video"]["video_id"] == "clip" and loaded["video"]["width_px"] == W
    assert loaded["run_info"] == {
        "model": "light-asd",
        "weights": {"name": "pretrain_AVA_CVPR.model", "sha256": "ab" * 32},
        "threshold": 0.5,
        "window_s": [1, 2, 3],
        "output": str(tmp_path),
    }
    assert loaded["num_tracks"] == 2
    t0, t1 = loaded["tracks"]
    assert t0["entity_id"] == "clip:0" and t1["entity_id"] == "clip:1"
    assert t0["frame_indices"] == list(range(10, 16))
    assert t0["frame_timestamps_s"] == [0.4, 0.44, 0.48, 0.52, 0.56, 0.6]
    assert (t0["start_s"], t0["end_s"]) == (0.4, 0.64)
    assert t0["boxes_xyxy_px"][0] == [1.3, 2.3, 3.0, 4.0]  # rounded to 0.1 px
    assert t0["detected"] == [True, True, False, True, True, True]
    # scores for frames 12..15 land on positions 2..5 of the track grid
    expected = [None, None] + [round(float(v), 6) for v in prob_of(0, np.arange(12, 16))]
    assert t0["probabilities"][:2] == [None, None]
    assert t0["probabilities"][2:] == pytest.approx(expected[2:], abs=1e-6)
    assert t0["logits"][3] is None  # NaN logit written as null
    assert t0["extra"]["lam"][2] == pytest.approx(1 - prob_of(0, 12), abs=1e-6)
    assert t0["segments"] == [
        {"start_s": 0.52, "end_s": 0.64, "start_frame": 13, "end_frame": 15, "mean_score": 0.7}
    ]
    assert t1["probabilities"] is None and t1["segments"] == []
    # compact: numeric arrays on one line
    assert '"frame_indices": [10, 11, 12, 13, 14, 15]' in text


def test_write_json_rejects_unserialisable_run_info(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"run_info.model must be JSON-serialisable"):
        write_json(tmp_path / "r.json", make_video(), [], [], {"model": object()})
    assert not (tmp_path / "r.json").exists()


def test_write_json_no_tracks(tmp_path: Path) -> None:
    write_json(tmp_path / "r.json", make_video(), [], [], None)
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["tracks"] == [] and loaded["run_info"] == {}
    assert math.isclose(loaded["video"]["fps"], FPS)
