"""Person-level diarization end to end on real clips: the limits of issue 14."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from socialav.diarization.models import DiarizationModels, diarize_video
from socialav.diarization.outputs import (
    add_persons_to_record,
    write_ava_csv_with_persons,
    write_person_rttm,
)
from socialav.io.media import read_audio
from socialav.io.writers import detection_record
from socialav.pipelines.detect import DetectConfig, SpeakerDetector

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def detector() -> SpeakerDetector:
    return SpeakerDetector(DetectConfig(num_threads=1))


@pytest.fixture(scope="module")
def models() -> DiarizationModels:
    return DiarizationModels.load(num_threads=1)


def run(path, detector, models):
    result = detector.run(path)
    timings: dict[str, float] = {}
    persons = diarize_video(
        models,
        read_audio(path),
        result.video,
        result.tracks,
        result.scores,
        video_path=path,
        timings_s=timings,
    )
    return result, persons, timings


def test_one_person(videos_dir, detector, models, tmp_path):
    path = videos_dir / "grid_bbaf2n.mpg"
    result, persons, _ = run(path, detector, models)
    speaking = [p for p in persons.persons if p.speaking_segments]
    assert len(speaking) == 1 and speaking[0].on_screen
    # GRID: silence at both ends, about 1.5-2.5 s of speech in the middle
    seg = speaking[0].speaking_segments
    assert seg[0].start_s > 0.3 and seg[-1].end_s < 2.9
    assert 1.0 < speaking[0].speaking_time_s < 2.6
    assert set(persons.track_to_person) == {t.track_id for t in result.tracks}
    # outputs: RTTM names persons, CSV gains person_id, JSON gains persons
    rttm = tmp_path / "g.rttm"
    assert write_person_rttm(rttm, result.video.video_id, persons.persons) == len(seg)
    first = rttm.read_text().splitlines()[0].split()
    assert first[1] == "grid_bbaf2n" and first[7] == speaking[0].person_id and len(first) == 10
    csv_path = tmp_path / "g.csv"
    rows = write_ava_csv_with_persons(
        csv_path, result.video, result.tracks, result.scores, persons.track_to_person
    )
    lines = csv_path.read_text().splitlines()
    assert lines[0].endswith(",person_id") and len(lines) == rows + 1
    assert lines[1].split(",")[-1] == persons.track_to_person[result.tracks[0].track_id]
    record = add_persons_to_record(
        detection_record(result.video, result.tracks, result.scores), persons
    )
    entry = json.loads(json.dumps(record))["persons"][0]
    assert set(entry) == {
        "person_id",
        "on_screen",
        "track_ids",
        "thumbnail_jpeg_base64",
        "speaking_segments",
        "speaking_time_s",
        "num_turns",
    }
    assert record["tracks"][0]["person_id"] == persons.track_to_person[0]
    assert entry["thumbnail_jpeg_base64"]


def test_no_speech_gives_face_persons_and_an_empty_rttm(videos_dir, detector, models, tmp_path):
    path = videos_dir / "more/pyfeat_single_face_silent.mp4"
    result, persons, _ = run(path, detector, models)
    assert len(result.tracks) >= 1
    assert persons.persons and all(p.on_screen for p in persons.persons)
    assert all(p.speaking_segments == () for p in persons.persons)
    rttm = tmp_path / "s.rttm"
    assert write_person_rttm(rttm, result.video.video_id, persons.persons) == 0
    assert rttm.read_text() == ""


def test_music_is_not_speech(videos_dir, detector, models):
    path = videos_dir / "more/pyfeat_face_noface_music.mov"
    _, persons, _ = run(path, detector, models)
    assert all(p.speaking_time_s == 0 for p in persons.persons)
    assert not any(not p.on_screen for p in persons.persons)  # no off-screen "voice"


def test_shorter_than_one_voice_window(videos_dir, detector, models):
    path = videos_dir / "more/deeplipreading_demo_lrs2.mp4"  # 0.94 s < 1.6 s
    result, persons, _ = run(path, detector, models)
    assert result.video.duration_s < 1.6
    speaking = [p for p in persons.persons if p.speaking_segments]
    assert len(speaking) == 1 and speaking[0].speaking_time_s > 0.4


@pytest.mark.slow
def test_crowd_in_bounded_time(videos_dir, detector, models):
    path = videos_dir / "more/facenetpytorch_crowd_walking.mp4"
    result = detector.run(path)
    start = time.perf_counter()
    persons = diarize_video(
        models, read_audio(path), result.video, result.tracks, result.scores, video_path=path
    )
    elapsed = time.perf_counter() - start
    assert len(result.tracks) >= 5
    assert len(persons.persons) >= 3 and all(p.on_screen for p in persons.persons)
    # tracks on screen together are never one person
    for p in persons.persons:
        spans = sorted(
            (t.start_frame, t.end_frame) for t in result.tracks if t.track_id in p.track_ids
        )
        assert all(b[0] > a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert np.isfinite(elapsed) and elapsed < 120  # a hang guard, not a speed claim
