"""--cluster: the same files and scores on a local two-worker Dask cluster as in-process."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from media_factory import make_video
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data.cluster import ClusterSpec, parse_cluster
from socialav.data.prepare import prepare_dataset
from socialav.io.ava_csv import write_ava_csv_frame
from socialav.pipelines.score_dataset import score_dataset

distributed = pytest.importorskip("distributed")


def test_parse_cluster():
    assert parse_cluster("local:2") == ClusterSpec(None, 2)
    assert parse_cluster("tcp://10.0.0.1:8786") == ClusterSpec("tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "host:8786"):
        with pytest.raises(ValueError, match="local:N"):
            parse_cluster(bad)


@pytest.fixture
def raw(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    rows = []
    for v in range(4):
        make_video(
            vids / f"vid{v}.mp4", num_frames=20, fps=25, size_wh=(96, 64), tone_hz=300 + 100 * v
        )
        for e in range(2):
            for k in range(5 + 3 * e, 15):
                rows.append([f"vid{v}", k / 25, 0.1 * e, 0.1, 0.5 + 0.1 * e, 0.9,
                             "SPEAKING_AUDIBLE" if k % 3 else "NOT_SPEAKING", f"vid{v}:{e}"])  # fmt: skip
    columns = ["video_id", "frame_timestamp", "entity_box_x1", "entity_box_y1", "entity_box_x2",
               "entity_box_y2", "label", "entity_id"]  # fmt: skip
    csv = tmp_path / "gt.csv"
    write_ava_csv_frame(pd.DataFrame(rows, columns=columns), csv, "groundtruth")
    return vids, csv


@pytest.mark.slow
def test_prepare_and_score_on_a_two_worker_cluster(raw, tmp_path):
    vids, csv = raw
    inline = prepare_dataset(vids, csv, tmp_path / "inline", "val")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        remote = prepare_dataset(vids, csv, tmp_path / "remote", "val", cluster=address)
        workers = {v.worker for v in remote.videos}
        scored = score_dataset(tmp_path / "remote", "val", cluster=address)
    assert remote.entities_written == inline.entities_written == 8
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)  # ran in the workers
    assert len(workers) == 2, workers
    files = sorted(p.relative_to(tmp_path / "inline") for p in (tmp_path / "inline").rglob("*.*"))
    files = [f for f in files if f.parts[0] != ".socialav-prepare"]
    assert len(files) == 4 * (10 + 7) + 8 + 1  # crops + WAVs + CSV
    for f in files:
        assert (tmp_path / "remote" / f).read_bytes() == (tmp_path / "inline" / f).read_bytes()
    local = score_dataset(tmp_path / "inline", "val")
    assert len({v.worker for v in scored.videos}) == 2
    pd.testing.assert_frame_equal(scored.predictions, local.predictions)
    assert np.isfinite(scored.predictions["score"]).all()


@pytest.mark.slow
def test_cli_local_cluster(raw, tmp_path):
    vids, csv = raw
    out = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(vids), "--csv", str(csv), "--split", "val"]
        + ["--out", str(tmp_path / "root"), "--cluster", "local:2"],
    )
    assert out.exit_code == 0, out.output
    assert len(list((tmp_path / "root" / "clips_audios" / "val").rglob("*.wav"))) == 8
    out = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(vids), "--csv", str(csv), "--split", "val"]
        + ["--out", str(tmp_path / "root"), "--cluster", "nohost"],
    )
    assert out.exit_code == 2 and "tcp://host:8786" in out.output
