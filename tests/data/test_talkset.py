"""TalkSet-style generator on real clips."""

from __future__ import annotations

import json

import numpy as np
from scipy.io import wavfile

from socialav.data.layout import DatasetLayout
from socialav.data.talkset import (
    SourceClip,
    TalkSetConfig,
    clips_from_folder,
    energy_vad,
    generate_talkset,
    split_groups,
)
from socialav.io.ava_csv import read_ava_csv


def test_energy_vad_on_silence_and_tone():
    t = np.arange(16000) / 16000
    audio = np.zeros(32000, dtype=np.int16)
    audio[8000:24000] = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    speech = energy_vad(audio, 50)
    # samples 8000..24000 are frames 12.5..37.5
    assert not speech[:12].any() and speech[13:37].all() and not speech[38:].any()


def test_split_by_group_is_disjoint_and_seeded(tmp_path):
    clips = [SourceClip(tmp_path / f"{p}_{i}.mp4", group=p) for p in "abcdef" for i in range(2)]
    clips.append(SourceClip(tmp_path / "n1.mp4", talking=False))
    clips.append(SourceClip(tmp_path / "n2.mp4", talking=False))
    split = split_groups(clips, 0.34, seed=4)
    assert split == split_groups(clips, 0.34, seed=4)
    assert sorted(split.values()).count("val") == 3 + 1  # ceil(0.34 * 6) talking, 1 negative


def test_manifest_marks_negatives_and_derived(videos_dir):
    clips = clips_from_folder(videos_dir / "more")
    assert len(clips) == 66
    assert sum(not c.talking for c in clips) == 16
    assert sum(not c.trusted_sync for c in clips) == 10


def test_generate_on_real_clips(tmp_path, videos_dir, weights_dir):
    clips = [
        SourceClip(videos_dir / "grid_bbaf2n.mpg"),
        SourceClip(videos_dir / "grid_lbax4n.mpg"),
        SourceClip(videos_dir / "grid_sbia1a.mpg", trusted_sync=False),
        SourceClip(videos_dir / "more" / "pyfeat_single_face_silent.mp4", talking=False),
    ]
    config = TalkSetConfig(seed=2, val_fraction=0.34, window_frames_range=(20, 30), detect_every=5)
    counts = generate_talkset(clips, tmp_path / "ts", config)
    layout = DatasetLayout(tmp_path / "ts")
    manifest = json.loads((tmp_path / "ts" / "talkset_manifest.json").read_text())
    entities = {e["entity_id"]: e for e in manifest["entities"]}
    assert sum(counts.values()) == len(entities)
    splits_of_clip: dict[str, set] = {}
    for split in ("train", "val"):
        table = read_ava_csv(layout.csv_path(split), "groundtruth")
        for entity_id, rows in table.groupby("entity_id"):
            e = entities[entity_id]
            splits_of_clip.setdefault(e["video_id"], set()).add(split)
            assert e["split"] == split and len(rows) == e["num_frames"]
            faces = list(layout.entity_dir(split, e["video_id"], entity_id).glob("*.jpg"))
            assert len(faces) == len(rows)
            rate, audio = wavfile.read(layout.audio_path(split, e["video_id"], entity_id))
            assert rate == 16000 and audio.dtype == np.int16
            assert len(audio) == 640 * len(rows) + 240
            positives = int(rows["label_id"].sum())
            if e["kind"] in ("swapped", "shifted", "silence", "nospeech"):
                assert positives == 0
            if e["kind"] == "shifted":
                assert 8 <= abs(e["shift_frames"]) <= 25
            if e["kind"] in ("swapped", "half"):
                assert e["donor"] and e["donor"] != e["video_id"]
                assert splits_of_clip.get(e["donor"], {split}) >= {split}
            if e["video_id"] == "grid_sbia1a":  # untrusted sync: no matched windows
                assert e["kind"] not in ("matched", "half")
            if e["video_id"] == "pyfeat_single_face_silent":
                assert e["kind"] == "nospeech"
    assert all(len(s) == 1 for s in splits_of_clip.values())  # a clip is in one split only
    assert any(e["kind"] == "matched" and e["num_speech_frames"] > 0 for e in entities.values())
    again = generate_talkset(clips, tmp_path / "ts2", config)
    assert again == counts
    assert (
        layout.csv_path("train").read_bytes()
        == DatasetLayout(tmp_path / "ts2").csv_path("train").read_bytes()
    )
