"""socialav.io.report_data: rows, compact per-frame arrays and speech totals of the report."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from report_records import make_record, make_track, with_persons

from socialav.io.report_data import (
    BOX_TOLERANCE_PX,
    QUANT_LEVELS,
    ReportRow,
    box_keyframes,
    check_record,
    quantise,
    report_payload,
    report_rows,
    series_step,
    speech_totals,
)


def _decode(b64: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.dtype(dtype))


def _interp_like_the_page(kf: np.ndarray, boxes: np.ndarray, frames: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(frames, kf, boxes[:, j]) for j in range(4)], axis=1)


def test_tracker_boxes_need_only_the_detection_frames():
    track, _ = make_track(0, 0, 100, detect_every=3)
    key = box_keyframes(track.boxes_xyxy_px, track.detected)
    np.testing.assert_array_equal(key, np.flatnonzero(track.detected))
    assert key[0] == 0 and key[-1] == 99


def test_curved_motion_gets_keyframes_until_within_tolerance():
    t = np.arange(300)
    x = 200 + 150 * np.sin(t / 15)  # no detection flags: only the interpolation error decides
    boxes = np.stack([x, 50 + 0 * t, x + 80, 130 + 20 * np.cos(t / 7)], axis=1)
    key = box_keyframes(boxes, None)
    err = np.abs(_interp_like_the_page(key, boxes[key], t) - boxes).max()
    assert err <= BOX_TOLERANCE_PX
    assert 10 < len(key) < 150  # far fewer than the 300 frames


def test_quantisation_levels_missing_and_range():
    q = quantise([0.0, 0.5, 1.0, None, float("nan"), 0.25])
    np.testing.assert_array_equal(q, [0, 127, 254, 255, 255, round(0.25 * 254)])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        quantise([0.2, 1.5])


@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.9])
def test_quantised_values_keep_their_side_of_the_threshold(threshold):
    p = np.linspace(0, 1, 20001)
    q = quantise(p, threshold).astype(np.float64) / QUANT_LEVELS
    np.testing.assert_array_equal(q >= threshold, p >= threshold)
    assert np.abs(q - p).max() <= 1.5 / QUANT_LEVELS


def test_series_step_rule():
    assert series_step(375_000) == 1 and series_step(375_001) == 2
    assert series_step(1_000_000, 100_000) == 10 and series_step(0) == 1


def test_payload_rebuilds_boxes_and_series():
    record = make_record()
    rows = report_rows(record)
    payload = report_payload(record, rows)
    assert payload["step_frames"] == 1 and payload["cuts_s"] == [120 / 25]
    assert [s["key"] for s in payload["series"]] == ["p", "lam", "ttm"]
    for track, out in zip(record["tracks"], payload["tracks"], strict=True):
        frames = np.arange(track["start_frame"], track["end_frame"] + 1)
        kf = _decode(out["kf"], "<i4")
        boxes = _decode(out["box"], "<i2").reshape(-1, 4).astype(np.float64)
        err = np.abs(_interp_like_the_page(kf, boxes, frames) - np.array(track["boxes_xyxy_px"]))
        assert err.max() <= BOX_TOLERANCE_PX + 0.5  # + rounding to whole pixels
        p = _decode(out["s"]["p"], "u1") / QUANT_LEVELS
        np.testing.assert_allclose(p, track["probabilities"], atol=0.5 / QUANT_LEVELS + 1e-9)
        ttm = _decode(out["s"]["ttm"], "u1") / QUANT_LEVELS
        np.testing.assert_allclose(ttm, track["extra"]["ttm"], atol=0.5 / QUANT_LEVELS + 1e-6)
        assert out["row"] == track["track_id"] and out["label"] == f"track {track['track_id']}"


def test_decimated_series_are_bin_means():
    record = make_record()
    payload = report_payload(record, report_rows(record), max_face_frames=100)  # 400 face-frames
    assert payload["step_frames"] == 4
    p = np.array(record["tracks"][0]["probabilities"])  # 200 frames: 50 bins of 4
    stored = _decode(payload["tracks"][0]["s"]["p"], "u1") / QUANT_LEVELS
    np.testing.assert_allclose(stored, p.reshape(50, 4).mean(axis=1), atol=0.5 / QUANT_LEVELS)


def test_track_rows_sum_their_segments():
    record = make_record()
    rows = report_rows(record)
    assert [r.key for r in rows] == ["track:0", "track:1"]
    # track 0 speaks frames 10-59 and 100-149: 2 turns of 2 s
    assert rows[0].num_turns == 2 and rows[0].speaking_time_s == pytest.approx(4.0)
    assert rows[1].segments_s == ((80 / 25, 130 / 25),)


def test_person_rows_take_the_json_numbers():
    record = with_persons(make_record())
    record["persons"][0]["speaking_time_s"] = 3.25  # the diarization's own number wins
    rows = report_rows(record)
    assert [r.key for r in rows] == ["person:person_0", "person:person_1", "person:person_2"]
    assert rows[0].speaking_time_s == 3.25 and rows[0].track_ids == (0,)
    off = rows[2]
    assert not off.on_screen and off.track_ids == () and off.segments_s == ((8.0, 9.0),)
    payload = report_payload(record, rows)
    assert payload["rows"][2]["tracks"] == [] and payload["tracks"][1]["label"] == "person_1"


def test_speech_totals_by_hand():
    def row(key, *segs):
        return ReportRow(key, key, "track", (), tuple(segs), 0.0, len(segs), True)

    rows = [row("a", (0, 2), (3, 5)), row("b", (1, 4)), row("c", (4.5, 6))]
    totals = speech_totals(rows, duration_s=10)
    # anyone: [0, 6]; two at once: [1, 2] + [3, 4] (a, b) + [4.5, 5] (a, c)
    assert totals.anyone_s == pytest.approx(6.0)
    assert totals.overlap_s == pytest.approx(2.5)
    assert totals.nobody_s == pytest.approx(4.0)
    # one row's own overlapping turns are not overlap between rows
    assert speech_totals([row("a", (0, 2), (1, 3))], 5).overlap_s == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(schema="other"), "record.schema"),
        (
            lambda r: r["tracks"][0].update(boxes_xyxy_px=[[0, 0, 1, 1]]),
            r"boxes_xyxy_px: expected shape",
        ),
        (
            lambda r: r["tracks"][0]["segments"].append({"start_s": 3, "end_s": 2}),
            "end_s > start_s",
        ),
        (lambda r: r["tracks"][1].update(track_id=0), "unique track id"),
        (lambda r: r["video"].update(fps=0), "positive frame rate"),
    ],
)
def test_bad_records_name_the_field(edit, message):
    record = make_record()
    edit(record)
    with pytest.raises(ValueError, match=message):
        check_record(record)


def test_bad_persons_name_the_field():
    record = with_persons(make_record())
    record["persons"][1]["track_ids"] = [7]
    with pytest.raises(ValueError, match=r"persons\[1\]\.track_ids: expected ids of record.tracks"):
        check_record(record)
    record = with_persons(make_record())
    record["tracks"][0]["person_id"] = "person_1"
    with pytest.raises(ValueError, match=r"tracks\[0\]\.person_id"):
        check_record(record)
