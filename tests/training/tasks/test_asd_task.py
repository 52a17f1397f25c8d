"""Training loop: a smoke run whose loss falls, kill-and-resume, and 2-process DDP (gloo)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from socialav.checkpoints.format import load_model_checkpoint
from socialav.training.checkpoint import load_training_state
from socialav.training.config import TrainConfig
from socialav.training.engine import ProgressEvent
from socialav.training.tasks.asd import METRICS_COLUMNS
from socialav.training.train import train

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


def _config(root: Path, out: Path, **extra) -> dict:
    values = {
        "data": {"root": str(root), "max_frames_per_batch": 20, "max_chunk_frames": None},
        "output_dir": str(out),
        "epochs": 3,
        "seed": 5,
        "num_threads": 1,
        "training_data": "tiny GRID TalkSet-style test set",
    }
    values.update(extra)
    return values


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_smoke_run_loss_falls(tiny_root, tmp_path):
    events: list[ProgressEvent] = []
    result = train(TrainConfig.from_dict(_config(tiny_root, tmp_path / "run")), events.append)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3, 9.5e-4, 9.025e-4])
    assert [row["temperature"] for row in result.history] == pytest.approx([1.3, 1.28, 1.26])
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics.columns) == list(METRICS_COLUMNS) and len(metrics) == 3
    assert all(0 <= v <= 100 or math.isnan(v) for v in metrics["val_map_percent"])
    assert {e.stage for e in events} == {"train", "val"}
    train_events = [e for e in events if e.stage == "train" and e.epoch == 1]
    assert [e.step for e in train_events] == [1, 2] and train_events[-1].num_steps == 2
    model, meta = load_model_checkpoint(result.best_checkpoint, "light-asd")
    assert meta["training_data"] == "tiny GRID TalkSet-style test set"
    assert meta["metrics"]["epoch"] == result.best_epoch
    assert (tmp_path / "run" / "checkpoints" / "model_epoch0003.pt").is_file()
    # a finished run resumes to "nothing to do" and keeps its history
    again = train(TrainConfig.from_dict(_config(tiny_root, tmp_path / "run")))
    assert [r["train_loss"] for r in again.history] == losses


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tiny_root, tmp_path):
    base = _config(tiny_root, tmp_path / "ref", epochs=2, checkpoint_every_steps=1)
    base["data"]["max_frames_per_batch"] = 10  # 4 steps per epoch
    base["data"]["val_split"] = None
    reference = train(TrainConfig.from_dict(base))

    killed = dict(base, output_dir=str(tmp_path / "killed"))
    cfg_path = tmp_path / "killed.json"
    cfg_path.write_text(json.dumps(killed))
    state = tmp_path / "killed" / "checkpoints" / "state_last.pt"
    epoch1 = tmp_path / "killed" / "metrics.csv"  # the last file written after epoch 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "socialav.cli", "train", str(cfg_path), "--quiet"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not epoch1.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        stamp = state.stat().st_mtime_ns if state.is_file() else 0
        while time.monotonic() < deadline and proc.poll() is None:  # first step of epoch 2
            if state.is_file() and state.stat().st_mtime_ns != stamp:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    saved = load_training_state(state)
    assert saved["epoch"] == 2 and saved["step"] >= 1  # killed inside epoch 2

    resumed = train(TrainConfig.from_dict(killed))
    final = resumed.model.state_dict()
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, final[key]), key
    assert [r["train_loss"] for r in resumed.history] == [
        r["train_loss"] for r in reference.history
    ]


SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from socialav.training.config import load_config
from socialav.training.train import train
result = train(load_config(sys.argv[1]))
import os
torch.save(result.model.state_dict(), sys.argv[2] + f"/rank{os.environ['RANK']}.pt")
"""


def test_ddp_two_processes_gloo_agree(tiny_root, tmp_path):
    values = _config(tiny_root, tmp_path / "ddp", epochs=1)
    values["data"]["val_split"] = None
    values["data"]["max_frames_per_batch"] = 10  # 4 batches: 2 per rank
    (tmp_path / "ddp.json").write_text(json.dumps(values))
    (tmp_path / "script.py").write_text(SCRIPT)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(tmp_path / "script.py"),
        str(tmp_path / "ddp.json"),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    history = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    assert history["train_frames"].iloc[0] == 40  # both ranks' frames were counted
