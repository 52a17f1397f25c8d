"""Scene images for scene-context models: layout writer/reader, the Dataset's ``scenes``,
``socialav data talkset --scenes`` and ``socialav data prepare --scenes``."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from media_factory import make_video
from scipy.io import wavfile
from typer.testing import CliRunner

from socialav.data.dataset import AsdEntityDataset, collate_chunks
from socialav.data.layout import DatasetLayout, read_scene_image, write_scene_image
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame

torch.set_num_threads(1)


def test_scene_image_round_trip_keeps_rgb_order(tmp_path):
    layout = DatasetLayout(tmp_path)
    path = layout.scene_path("val", "vid", 1.24)
    assert path == tmp_path / "clips_scenes" / "val" / "vid" / "1.24.jpg"
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]  # red ramp
    image[..., 2] = 200  # constant blue
    write_scene_image(path, image)
    back = read_scene_image(path, 32)
    assert back.shape == (32, 32, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).mean() < 3  # JPEG quality 95
    assert abs(int(back[..., 2].mean()) - 200) < 4 and back[..., 1].mean() < 4
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file
    with pytest.raises(ValueError, match="expected 16x16 pixels, found 32x32"):
        read_scene_image(path, 16)
    with pytest.raises(FileNotFoundError, match="1.28.jpg.*--scenes"):
        read_scene_image(layout.scene_path("val", "vid", 1.28))
    with pytest.raises(ValueError, match=r"\(S, S, 3\) uint8"):
        write_scene_image(path, np.zeros((32, 40, 3), np.uint8))


@pytest.fixture
def tiny_set(tmp_path):
    """Two videos, one entity each (20 and 12 frames), faces, audio and scene images written
    by hand; scene k of video v has gray level 10 k + 100 v."""
    layout = DatasetLayout(tmp_path)
    rng = np.random.default_rng(0)
    rows = []
    for v, frames in enumerate((20, 12)):
        video, entity = f"v{v}", f"v{v}:0"
        stamps = (np.arange(frames) + 5) / 25.0
        for k, t in enumerate(stamps):
            face = layout.face_path("val", video, entity, t)
            face.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(face), rng.integers(0, 255, (112, 112, 3), dtype=np.uint8))
            write_scene_image(
                layout.scene_path("val", video, t), np.full((24, 24, 3), 10 * k + 100 * v, np.uint8)
            )
        wav = layout.audio_path("val", video, entity)
        wav.parent.mkdir(parents=True, exist_ok=True)
        wavfile.write(wav, 16000, (rng.normal(0, 300, 640 * frames)).astype(np.int16))
        rows.append(
            pd.DataFrame(
                {
                    "video_id": video,
                    "frame_timestamp": stamps,
                    "entity_box_x1": 0.1,
                    "entity_box_y1": 0.1,
                    "entity_box_x2": 0.5,
                    "entity_box_y2": 0.6,
                    "label": "NOT_SPEAKING",
                    "entity_id": entity,
                }
            )
        )
    write_ava_csv_frame(pd.concat(rows), layout.csv_path("val"), "groundtruth")
    return tmp_path


def test_dataset_reads_the_scene_of_every_frame(tiny_set):
    plain = AsdEntityDataset(tiny_set, "val", max_chunk_frames=12)
    assert "scenes" not in plain[0]
    ds = AsdEntityDataset(tiny_set, "val", max_chunk_frames=12, scenes=True, scene_size_px=24)
    assert list(ds.lengths) == [10, 10, 12]  # v0 in two chunks, v1 whole
    second = ds[1]  # frames 10..19 of v0
    assert second["scenes"].shape == (10, 3, 24, 24) and second["scenes"].dtype == torch.float32
    levels = second["scenes"].mean(dim=(1, 2, 3)).numpy() * 255
    np.testing.assert_allclose(levels, 10 * np.arange(10, 20), atol=1.5)
    batch = collate_chunks([ds[2], ds[1]])  # cut to the shorter (10 frames)
    assert batch["scenes"].shape == (2, 10, 3, 24, 24)
    np.testing.assert_allclose(
        batch["scenes"][0, :, 0, 0, 0].numpy() * 255, 100 + 10 * np.arange(10), atol=1.5
    )
    assert batch["faces"].shape == (2, 10, 112, 112)
    with pytest.raises(ValueError, match="1 of 2 samples have scenes"):
        collate_chunks([ds[0], plain[0]])


def test_missing_or_mismatched_scenes_are_clear_errors(tiny_set):
    layout = DatasetLayout(tiny_set)
    with pytest.raises(ValueError, match="expected 32x32 pixels, found 24x24"):
        AsdEntityDataset(tiny_set, "val", scenes=True, scene_size_px=32)[0]
    missing = layout.scene_path("val", "v0", 7 / 25)
    missing.unlink()
    ds = AsdEntityDataset(tiny_set, "val", max_chunk_frames=None, scenes=True)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        ds[0]
    assert ds[1]["scenes"].shape == (12, 3, 24, 24)  # the other video is complete
    for path in (layout.scenes_dir("val") / "v1").iterdir():
        path.unlink()
    (layout.scenes_dir("val") / "v1").rmdir()
    with pytest.raises(FileNotFoundError, match=r"video 'v1'.*clips_scenes/val/v1"):
        AsdEntityDataset(tiny_set, "val", scenes=True)


def test_talkset_cli_writes_scenes_of_every_entity_frame(tmp_path, videos_dir, weights_dir):
    from socialav.cli import app
    from socialav.io.media import iter_frames
    from socialav.models.scene_context import scene_image

    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("grid_bbaf2n.mpg", "grid_lbax4n.mpg"):
        os.symlink(videos_dir / name, folder / name)
    out = tmp_path / "ts"
    args = ["data", "talkset", "--videos", str(folder), "--out", str(out), "--seed", "1"]
    args += ["--min-window", "20", "--max-window", "30", "--detect-every", "5"]
    result = CliRunner().invoke(app, [*args, "--scenes", "--scene-size-px", "32"])
    assert result.exit_code == 0, result.output
    layout = DatasetLayout(out)
    frames = {i: f for i, f in iter_frames(videos_dir / "grid_bbaf2n.mpg")}
    checked = 0
    for split in ("train", "val"):
        table = read_ava_csv(layout.csv_path(split), "groundtruth")
        for video, t in zip(table["video_id"], table["frame_timestamp"], strict=True):
            path = layout.scene_path(split, video, t)
            assert path.is_file(), path  # every entity frame has its video's scene
            if video == "grid_bbaf2n" and checked < 5:
                got = read_scene_image(path, 32).astype(int)
                expected = scene_image(frames[int(round(t * 25))], 32)
                assert np.abs(got - expected).mean() < 3  # JPEG 95, 4:4:4
                checked += 1
        ds = AsdEntityDataset(out, split, scenes=True, scene_size_px=32)
        item = ds[0]
        assert item["scenes"].shape == (len(item["labels"]), 3, 32, 32)
        # every entity of a video (swapped / shifted audio included) shares its scenes
        video, _, stamps = ds.chunk_keys(0)
        np.testing.assert_allclose(
            item["scenes"][0].numpy(),
            read_scene_image(layout.scene_path(split, video, stamps[0])).transpose(2, 0, 1) / 255.0,
            atol=1e-6,
        )
    assert checked == 5
    manifest = json.loads((out / "talkset_manifest.json").read_text())
    assert manifest["config"]["scene_size_px"] == 32


def test_prepare_writes_scenes_and_resumes(tmp_path):
    from socialav.cli import app
    from socialav.data import prepare as prep

    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "syn.mp4", num_frames=30, fps=25, size_wh=(64, 48))
    times = np.arange(5, 20) / 25.0
    rows = [
        dict(
            video_id="syn",
            frame_timestamp=float(t),
            entity_box_x1=0.25,
            entity_box_y1=0.25,
            entity_box_x2=0.75,
            entity_box_y2=0.75,
            label="NOT_SPEAKING",
            entity_id="syn:0",
        )
        for t in times
    ]
    csv = tmp_path / "gt.csv"
    write_ava_csv_frame(pd.DataFrame(rows), csv, "groundtruth")
    root = tmp_path / "root"
    summary = prep.prepare_dataset(videos, csv, root, "val", scene_size_px=16)
    assert summary.entities_written == 1
    layout = DatasetLayout(root)
    for k in (5, 12, 19):  # frame k of the synthetic video has gray level 8 k
        scene = read_scene_image(layout.scene_path("val", "syn", k / 25), 16)
        assert abs(float(scene.mean()) - 8 * k) < 3
    again = prep.prepare_dataset(videos, csv, root, "val", scene_size_px=16)
    assert again.entities_already_complete == 1 and again.entities_written == 0
    layout.scene_path("val", "syn", 12 / 25).unlink()  # a lost scene redoes the entity
    result = CliRunner().invoke(
        app,
        ["data", "prepare", "--videos", str(videos), "--csv", str(csv), "--split", "val"]
        + ["--out", str(root), "--scenes", "--scene-size-px", "16"],
    )
    assert result.exit_code == 0, result.output
    assert layout.scene_path("val", "syn", 12 / 25).is_file()
    ds = AsdEntityDataset(root, "val", scenes=True, scene_size_px=16)
    assert ds[0]["scenes"].shape == (15, 3, 16, 16)
    plain = prep.prepare_dataset(videos, csv, tmp_path / "plain", "val")
    assert plain.entities_written == 1 and not (tmp_path / "plain" / "clips_scenes").exists()
