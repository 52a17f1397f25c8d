"""AVA / UniTalk CSV reader and writer: header detection, column checks, exact round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from socialav.io.ava_csv import (
    GROUNDTRUTH_COLUMNS,
    PREDICTION_COLUMNS,
    AvaCsvError,
    AvaLabel,
    coerce_ava_frame,
    read_ava_csv,
    read_video_id_list,
    write_ava_csv_frame,
)

GT_LINES = [
    "vid_A,900.97,0.572,0.274,0.772,0.574,SPEAKING_AUDIBLE,vid_A_900_960:0",
    "vid_A,901.01,0.554,0.261,0.754,0.561,NOT_SPEAKING,vid_A_900_960:0",
    "0123,902.5,0.1,0.2,0.3,0.4,SPEAKING_NOT_AUDIBLE,0123:1",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _predictions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": ["v1", "v1", "007"],
            "frame_timestamp": [0.1 + 0.2, 902.5, 1e-7],
            "entity_box_x1": [0.1, 0.123456789012345, 0.0],
            "entity_box_y1": [0.2, 1 / 3, 0.5],
            "entity_box_x2": [0.3, 2 / 3, 1.0],
            "entity_box_y2": [0.4, 0.9999999999999999, 0.75],
            "label": ["SPEAKING_AUDIBLE"] * 3,
            "entity_id": ["v1:0", "v1:1", "007:0"],
            "score": [0.641437041, 1 / 7, 0.0],
        }
    )


def test_header_and_headerless_files_read_the_same(tmp_path: Path) -> None:
    with_header = read_ava_csv(
        _write(tmp_path / "h.csv", [",".join(GROUNDTRUTH_COLUMNS), *GT_LINES]), "groundtruth"
    )
    without = read_ava_csv(_write(tmp_path / "n.csv", GT_LINES), "groundtruth")
    pd.testing.assert_frame_equal(with_header, without)
    assert list(without.columns) == list(GROUNDTRUTH_COLUMNS)
    assert len(without) == 3
    # ids stay strings exactly as written (no int conversion of "0123")
    assert without["video_id"].tolist() == ["vid_A", "vid_A", "0123"]
    assert without["frame_timestamp"].dtype == np.float64
    assert without["frame_timestamp"].tolist() == [900.97, 901.01, 902.5]


def test_header_columns_in_any_order_and_extra_columns_dropped(tmp_path: Path) -> None:
    lines = [
        "score,entity_id,ttm_score,label,video_id,frame_timestamp,entity_box_x1,entity_box_y1,"
        "entity_box_x2,entity_box_y2",
        "0.25,v:0,0.9,SPEAKING_AUDIBLE,v,1.00,0.1,0.2,0.3,0.4",
    ]
    frame = read_ava_csv(_write(tmp_path / "p.csv", lines), "predictions")
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert frame.loc[0, "score"] == 0.25
    assert frame.loc[0, "frame_timestamp"] == 1.0  # "1.00" and "1.0" are the same key


def test_unitalk_orig_layout_with_index_column(tmp_path: Path) -> None:
    # trim_dataset.py writes df.to_csv(...) with the pandas index as an unnamed first column
    lines = [
        ",video_id,frame_timestamp,entity_box_x1,entity_box_y1,entity_box_x2,entity_box_y2,"
        "label,entity_id,label_id,instance_id",
        "17,abc,3.04,0.1,0.2,0.3,0.4,SPEAKING_AUDIBLE,abc:0,1,abc:0:0",
        "18,abc,3.08,0.1,0.2,0.3,0.4,NOT_SPEAKING,abc:0,0,abc:0:1",
    ]
    frame = read_ava_csv(_write(tmp_path / "val_orig.csv", lines), "groundtruth")
    assert list(frame.columns) == [*GROUNDTRUTH_COLUMNS, "label_id", "instance_id"]
    assert frame["label_id"].tolist() == [1, 0]
    assert frame["instance_id"].tolist() == ["abc:0:0", "abc:0:1"]
    headerless = read_ava_csv(
        _write(tmp_path / "n.csv", [ln.split(",", 1)[1] for ln in lines[1:]]), "groundtruth"
    )
    pd.testing.assert_frame_equal(frame, headerless)


def test_headerless_wrong_field_count_names_expected_columns(tmp_path: Path) -> None:
    with pytest.raises(AvaCsvError, match=r"9 fields.*'score'.*has 8"):
        read_ava_csv(_write(tmp_path / "p.csv", GT_LINES), "predictions")


def test_header_missing_column_lists_expected_and_found(tmp_path: Path) -> None:
    lines = ["video_id,frame_timestamp,label,entity_id", "v,1.0,SPEAKING_AUDIBLE,v:0"]
    with pytest.raises(AvaCsvError) as info:
        read_ava_csv(_write(tmp_path / "g.csv", lines), "groundtruth")
    message = str(info.value)
    assert (
        "missing column(s) ['entity_box_x1', 'entity_box_y1', 'entity_box_x2', 'entity_box_y2']"
        in message
    )
    assert (
        "expected columns" in message
        and "found ['video_id', 'frame_timestamp', 'label', 'entity_id']" in message
    )


@pytest.mark.parametrize(
    ("bad_line", "pattern"),
    [
        (
            "v,abc,0.1,0.2,0.3,0.4,NOT_SPEAKING,v:0",
            r"'frame_timestamp' must hold numbers.*row 1: 'abc'",
        ),
        ("v,1.5,0.1,,0.3,0.4,NOT_SPEAKING,v:0", r"'entity_box_y1' must hold finite numbers.*row 1"),
        ("v,inf,0.1,0.2,0.3,0.4,NOT_SPEAKING,v:0", r"'frame_timestamp' must hold finite numbers"),
        (",1.5,0.1,0.2,0.3,0.4,NOT_SPEAKING,v:0", r"'video_id' must not be empty.*row 1"),
    ],
)
def test_bad_values_name_the_row(tmp_path: Path, bad_line: str, pattern: str) -> None:
    with pytest.raises(AvaCsvError, match=pattern):
        read_ava_csv(_write(tmp_path / "g.csv", [GT_LINES[0], bad_line]), "groundtruth")


def test_empty_score_is_nan_for_the_evaluator(tmp_path: Path) -> None:
    line = GT_LINES[0] + ","
    frame = read_ava_csv(_write(tmp_path / "p.csv", [line]), "predictions")
    assert np.isnan(frame.loc[0, "score"])


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AvaCsvError, match="empty"):
        read_ava_csv(_write(tmp_path / "e.csv", [""]), "groundtruth")


@pytest.mark.parametrize("header", [True, False])
def test_round_trip_is_exact(tmp_path: Path, header: bool) -> None:
    frame = _predictions_frame()
    path = tmp_path / "pred.csv"
    assert write_ava_csv_frame(frame, path, "predictions", header=header) == 3
    back = read_ava_csv(path, "predictions")
    pd.testing.assert_frame_equal(back, coerce_ava_frame(frame, "predictions"), check_exact=True)
    first = path.read_bytes()
    assert first.startswith(b"video_id,") == header
    write_ava_csv_frame(back, path, "predictions", header=header)  # deterministic
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]  # no temp file left


def test_round_trip_unitalk_groundtruth(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "video_id": ["a", "a"],
            "frame_timestamp": ["3.04", "3.08"],
            "entity_box_x1": [0.1, 0.1],
            "entity_box_y1": [0.2, 0.2],
            "entity_box_x2": [0.3, 0.3],
            "entity_box_y2": [0.4, 0.4],
            "label": [AvaLabel.SPEAKING_AUDIBLE.value, AvaLabel.NOT_SPEAKING.value],
            "entity_id": ["a:0", "a:0"],
            "label_id": [1, 0],
            "instance_id": ["a:0:0", "a:0:1"],
        }
    )
    path = tmp_path / "val_orig.csv"
    write_ava_csv_frame(frame, path, "groundtruth", header=False)
    assert path.read_text().splitlines()[0] == "a,3.04,0.1,0.2,0.3,0.4,SPEAKING_AUDIBLE,a:0,1,a:0:0"
    pd.testing.assert_frame_equal(
        read_ava_csv(path, "groundtruth"), coerce_ava_frame(frame, "groundtruth")
    )


def test_fixture_files_read(fixtures_dir: Path) -> None:
    gt = read_ava_csv(fixtures_dir / "ava_metric" / "groundtruth.csv", "groundtruth")
    pred = read_ava_csv(fixtures_dir / "ava_metric" / "predictions.csv", "predictions")
    assert len(gt) == len(pred) == 670
    assert set(gt["label"]) == {label.value for label in AvaLabel}
    assert gt.loc[0, "video_id"] == "-5KQ66BBWC4" and gt.loc[0, "frame_timestamp"] == 900.97


def test_read_video_id_list_unitalk_layout(tmp_path: Path) -> None:
    path = tmp_path / "test_noise.csv"
    path.write_text("EEey6Pt0rqI\n9Zja_cIAwY8\n\nHyk-WhQBIq0\n9Zja_cIAwY8")  # no final newline
    assert read_video_id_list(path) == ["EEey6Pt0rqI", "9Zja_cIAwY8", "Hyk-WhQBIq0"]
    path.write_text("video_id\n-5KQ66BBWC4\n")
    assert read_video_id_list(path) == ["-5KQ66BBWC4"]
    path.write_text("\n\n")
    with pytest.raises(AvaCsvError, match="one video_id per line"):
        read_video_id_list(path)
