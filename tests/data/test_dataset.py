"""The torch Dataset over a prepared split, on face crops of a real GRID clip."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import python_speech_features
import torch
from scipy.io import wavfile

from socialav.data.dataset import (
    AsdEntityDataset,
    AugmentConfig,
    LengthGroupedBatchSampler,
    collate_chunks,
    mix_noise,
)
from socialav.data.layout import DatasetLayout
from socialav.io.ava_csv import write_ava_csv_frame

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, videos_dir, weights_dir):
    """Two entities (frames 0-29 and 30-59) of grid_bbaf2n written by hand."""
    from socialav.checkpoints.load import load_face_detector
    from socialav.data.talkset import SourceClip, TalkSetConfig, extract_clip_faces

    clip = extract_clip_faces(
        SourceClip(videos_dir / "grid_bbaf2n.mpg"),
        load_face_detector("ultra-light-face-rfb-640")[0],
        TalkSetConfig(detect_every=5),
    )
    track, faces = clip.tracks[0]
    root = tmp_path_factory.mktemp("prepared")
    layout = DatasetLayout(root)
    rows = []
    for k, (a, b) in enumerate(((0, 30), (30, 60))):
        entity = f"grid_bbaf2n:{k}"
        stamps = track.frame_indices[a:b] / 25.0
        for face, t in zip(faces[a:b], stamps, strict=True):
            path = layout.face_path("val", "grid_bbaf2n", entity, t)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), face)
        wav = layout.audio_path("val", "grid_bbaf2n", entity)
        wav.parent.mkdir(parents=True, exist_ok=True)
        first = int(track.frame_indices[a])
        wavfile.write(wav, 16000, clip.audio[first * 640 : (first + b - a - 1) * 640])
        labels = (np.arange(a, b) % 7 < 3).astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "video_id": "grid_bbaf2n",
                    "frame_timestamp": stamps,
                    "entity_box_x1": 0.1,
                    "entity_box_y1": 0.1,
                    "entity_box_x2": 0.5,
                    "entity_box_y2": 0.6,
                    "label": np.where(labels == 1, "SPEAKING_AUDIBLE", "NOT_SPEAKING"),
                    "entity_id": entity,
                }
            )
        )
    write_ava_csv_frame(pd.concat(rows), layout.csv_path("val"), "groundtruth")
    return root


def test_item_matches_reference_preprocessing(prepared):
    ds = AsdEntityDataset(prepared, "val", max_chunk_frames=None)
    assert len(ds) == 2 and list(ds.lengths) == [30, 30]
    item = ds[1]
    assert item["faces"].shape == (30, 112, 112) and item["faces"].dtype == torch.uint8
    assert item["mfcc"].shape == (120, 13) and item["mfcc"].dtype == torch.float32
    video, entity, stamps = ds.chunk_keys(1)
    layout = DatasetLayout(prepared)
    jpeg = cv2.imread(str(layout.face_path("val", video, entity, stamps[4])))
    assert np.array_equal(item["faces"][4].numpy(), cv2.cvtColor(jpeg, cv2.COLOR_BGR2GRAY))
    _, audio = wavfile.read(layout.audio_path("val", video, entity))
    ref = python_speech_features.mfcc(audio, 16000, numcep=13, winlen=0.025, winstep=0.010)
    assert len(ref) == 4 * 29 - 1  # span [t_first, t_last]: the reference wrap-pads to 4T
    ref = np.pad(ref, ((0, 120 - len(ref)), (0, 0)), mode="wrap")
    np.testing.assert_allclose(item["mfcc"].numpy(), ref, rtol=1e-5, atol=1e-4)
    assert item["labels"].tolist() == [int(i % 7 < 3) for i in range(30, 60)]


def test_chunks_cover_the_entity(prepared):
    whole = AsdEntityDataset(prepared, "val", max_chunk_frames=None)
    chunked = AsdEntityDataset(prepared, "val", max_chunk_frames=12)
    assert list(chunked.lengths) == [10, 10, 10, 10, 10, 10]
    parts = [chunked[i] for i in range(3)]
    for key in ("faces", "mfcc", "labels"):
        assert torch.equal(torch.cat([p[key] for p in parts]), whole[0][key])


def test_augmentation_is_switchable_and_seeded(prepared):
    aug = AugmentConfig.reference()
    a = AsdEntityDataset(prepared, "val", augment=aug, seed=3)
    b = AsdEntityDataset(prepared, "val", augment=aug, seed=3)
    plain = AsdEntityDataset(prepared, "val")
    changed = 0
    for epoch in range(4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        x, y = a[0], b[0]
        assert torch.equal(x["faces"], y["faces"]) and torch.equal(x["mfcc"], y["mfcc"])
        assert x["faces"].shape == (30, 112, 112) and torch.equal(x["labels"], plain[0]["labels"])
        changed += not torch.equal(x["faces"], plain[0]["faces"])
        changed += not torch.equal(x["mfcc"], plain[0]["mfcc"])
    assert changed > 0


def test_mix_noise_snr():
    rng = np.random.default_rng(0)
    clean = (rng.normal(0, 1000, 16000)).astype(np.int16)
    noise = (rng.normal(0, 100, 8000)).astype(np.int16)
    mixed = mix_noise(clean, noise, snr_db=0.0).astype(np.float64)
    added = mixed - clean
    ratio_db = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(added**2))
    assert abs(ratio_db) < 0.1  # 0 dB: the noise has the clean signal's power


def test_length_grouped_batches_and_sharding():
    lengths = [10, 10, 10, 5, 5, 3]
    sampler = LengthGroupedBatchSampler(lengths, 20, shuffle=False)
    assert list(sampler) == [[0, 1], [2, 3], [4, 5]]
    samples = [
        {
            "faces": torch.zeros(n, 112, 112, dtype=torch.uint8),
            "mfcc": torch.zeros(4 * n, 13),
            "labels": torch.zeros(n, dtype=torch.long),
            "index": i,
        }
        for i, n in enumerate(lengths)
    ]
    batch = collate_chunks([samples[2], samples[3]])
    assert batch["faces"].shape == (2, 5, 112, 112) and batch["mfcc"].shape == (2, 20, 13)
    ranks = [LengthGroupedBatchSampler(lengths, 20, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    got = [list(s) for s in ranks]
    assert len(got[0]) == len(got[1]) == 2
    flat = sorted(i for batches in got for b in batches for i in b)
    assert set(flat) == set(range(6))
    ranks[0].set_epoch(3, start_batch=1)
    assert list(ranks[0]) == got[0][1:]


def test_missing_audio_is_reported(prepared, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    next((copy / "clips_audios" / "val").rglob("*.wav")).unlink()
    with pytest.raises(FileNotFoundError, match="no wav"):
        AsdEntityDataset(copy, "val")
