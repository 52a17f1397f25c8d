"""AVA mAP with tied scores: the official script's order of tied rows, and the AP range."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.evaluation.ava import average_precision_voc, evaluate_ava, rank_order, tie_report


def test_tied_fixture_matches_the_official_script(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ava_metric_ties"
    expected = json.loads((folder / "expected.json").read_text())
    result = evaluate_ava(folder / "groundtruth.csv", folder / "predictions.csv")
    assert result.map_percent == pytest.approx(expected["official_map_percent"], abs=1e-6)
    assert result.ties is not None
    assert result.ties.num_groups == expected["distinct_scores"]
    assert result.ties.num_rows == expected["rows"]
    assert result.ties.min_percent < result.map_percent < result.ties.max_percent
    # the stable order (the earlier behaviour) is not the official one on this file
    joined_stable = 100 * average_precision_voc(
        *_scores_labels_in_groundtruth_order(folder), tie_order="stable"
    )
    assert abs(joined_stable - expected["official_map_percent"]) > 1e-4


def _scores_labels_in_groundtruth_order(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    gt = pd.read_csv(folder / "groundtruth.csv")
    pred = pd.read_csv(folder / "predictions.csv")
    merged = gt.merge(pred, on=["frame_timestamp", "entity_id"], suffixes=("", "_p"))
    return merged["score"].to_numpy(), (merged["label"] == "SPEAKING_AUDIBLE").to_numpy()


def test_distinct_scores_have_no_ties(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ava_metric"
    result = evaluate_ava(folder / "groundtruth.csv", folder / "predictions.csv")
    assert result.ties is not None and result.ties.num_groups == 0
    assert result.ties.min_percent == result.ties.max_percent == pytest.approx(result.map_percent)


def test_ap_range_over_tie_orders_hand_computed() -> None:
    # ranks by score: 0.9 (pos), then a tie at 0.5 of one positive and one negative, then 0.1
    scores = [0.9, 0.5, 0.5, 0.1]
    labels = [1, 0, 1, 0]
    report = tie_report(scores, labels)
    assert (report.num_groups, report.num_rows) == (1, 2)
    # positives first: precision 1, 1 at both recalls -> AP 1
    assert report.max_percent == pytest.approx(100.0)
    # positives last: hits at ranks 1 and 3 -> 0.5 * 1 + 0.5 * 2/3
    assert report.min_percent == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))


def test_official_order_of_a_small_tie_hand_computed() -> None:
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.5])
    labels = np.array([0, 0, 1, 1, 1])
    # the script's steps: sort_values(by=["score"], ascending=False) of the merged rows
    steps = pd.DataFrame({"score": scores}).sort_values(by=["score"], ascending=False)
    assert rank_order(scores, tie_order="official").tolist() == steps.index.tolist()
    assert steps.index.tolist() == [3, 2, 1, 4, 0]  # what pandas does with this tie
    # hits in that order 1, 1, 0, 1, 0: precision 1, 1, 2/3, 3/4 at recall 1/3, 2/3, 2/3, 1
    official = 1 / 3 * 1 + 1 / 3 * 1 + 1 / 3 * 3 / 4
    assert average_precision_voc(scores, labels, "official") == pytest.approx(official)
    # input order for ties (stable): hits 1, 0, 1, 1, 0 -> envelope 1, 3/4, 3/4, 3/4
    stable = 1 / 3 * 1 + 1 / 3 * 3 / 4 + 1 / 3 * 3 / 4
    assert average_precision_voc(scores, labels, "stable") == pytest.approx(stable)
    assert rank_order(scores, labels, "positives_first").tolist() == [3, 2, 4, 1, 0]
    assert rank_order(scores, labels, "positives_last").tolist() == [3, 1, 2, 4, 0]
    report = tie_report(scores, labels)
    assert (report.num_groups, report.num_rows) == (1, 3)
    assert report.min_percent <= 100 * stable <= 100 * official <= report.max_percent


def test_official_order_is_pandas_descending_quicksort_on_many_ties() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(500), 1)  # 11 distinct values: large tie groups
    # the steps of the official script: merged frame -> sort_values(by=["score"],
    # ascending=False) -> reset_index(); the sweep goes in the new row order
    frame = pd.DataFrame({"uid": np.arange(500), "score": scores})
    expected = frame.sort_values(by=["score"], ascending=False).reset_index()["index"].to_numpy()
    assert rank_order(scores, tie_order="official").tolist() == expected.tolist()


def test_cli_says_when_ties_decide_the_order(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ava_metric_ties"
    result = CliRunner().invoke(
        app,
        ["evaluate", "-g", str(folder / "groundtruth.csv"), "-p", str(folder / "predictions.csv")],
    )
    assert result.exit_code == 0, result.output
    assert "mAP: 82.3019" in result.output
    assert "3995 rows share a score" in result.output and "99 groups" in result.output
