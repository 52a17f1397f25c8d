"""A tiny TalkSet-style dataset built once per session from real GRID clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialav.data.layout import DatasetLayout
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame


def _tiny_talkset(root: Path, videos_dir: Path, **extra) -> Path:
    """TalkSet-style entities (10-frame windows) of two GRID speakers written to ``root``."""
    import torch

    from socialav.data.talkset import SourceClip, TalkSetConfig, generate_talkset

    torch.set_num_threads(1)
    clips = [SourceClip(videos_dir / "grid_bbaf2n.mpg"), SourceClip(videos_dir / "grid_lbax4n.mpg")]
    config = TalkSetConfig(
        seed=1,
        val_fraction=0.5,
        window_frames_range=(10, 10),
        detect_every=5,
        mix={"matched": 0.6, "swapped": 0.4},
        **extra,
    )
    generate_talkset(clips, root, config)
    return root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory, videos_dir: Path, weights_dir: Path) -> Path:
    """Train: 4 entities of 10 frames from one GRID speaker; val: 2 entities of another."""
    root = _tiny_talkset(tmp_path_factory.mktemp("tiny_talkset"), videos_dir)
    layout = DatasetLayout(root)
    for split, keep in (("train", 4), ("val", 2)):
        table = read_ava_csv(layout.csv_path(split), "groundtruth")
        # keep windows with speech, then others, deterministically
        speech = table.groupby("entity_id")["label_id"].sum().sort_values(ascending=False)
        chosen = sorted(speech.index[:keep])
        write_ava_csv_frame(
            table[table["entity_id"].isin(chosen)], layout.csv_path(split), "groundtruth"
        )
    return root


@pytest.fixture(scope="session")
def tiny_scene_root(tmp_path_factory, videos_dir: Path, weights_dir: Path) -> Path:
    """Like ``tiny_root`` (two GRID speakers, 10-frame windows) with 32-px scene images."""
    return _tiny_talkset(tmp_path_factory.mktemp("tiny_scenes"), videos_dir, scene_size_px=32)
