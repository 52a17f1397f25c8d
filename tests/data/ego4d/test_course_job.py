"""``socialav data ego4d-course`` (seed 000's preprocess.sh) and ``socialav data ego4d-asd``
(seed 002's conversion) on course- and Ego4D-format fixtures built from the interview clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ego4d_fixtures import write_clip_video
from scipy.io import wavfile
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data.ego4d.annotations import load_av_annotations
from socialav.data.ego4d.asd import asd_context_boxes
from socialav.data.ego4d.course import course_sample, read_course_video
from socialav.data.ego4d.samples import InMemoryFrames
from socialav.io.media import iter_frames

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def course_root(interview_ego4d, tmp_path_factory) -> Path:
    """``videos/interview.mp4`` and its ``_seg.csv`` / ``_bbox.csv`` in the course format:
    persons 1 and 2, boxes from the fixture's tracks (-1 where a track has no box)."""
    root = tmp_path_factory.mktemp("course")
    for sub in ("videos", "seg", "bbox", "test_seg"):
        (root / sub).mkdir()
    write_clip_video(
        root / "videos" / "interview.mp4", interview_ego4d.frames, interview_ego4d.audio
    )
    (clip,) = load_av_annotations(interview_ego4d.av)
    lines = ["person_id,frame_id,x1,y1,x2,y2"]
    for pid in ("1", "2"):
        boxes = clip.person_boxes_xyxy(pid)
        for f in range(60):
            b = boxes.get(f)
            lines.append(
                f"{pid},{f},-1,-1,-1,-1" if b is None else f"{pid},{f},{','.join(map(str, b))}"
            )
    (root / "bbox" / "interview_bbox.csv").write_text("\n".join(lines) + "\n")
    seg = ["person_id,start_frame,end_frame,ttm", "1,0,29,1", "2,10,24,0", "1,15,40,0", "2,50,59,1"]
    (root / "seg" / "interview_seg.csv").write_text("\n".join(seg) + "\n")
    test = ["person_id,start_frame,end_frame", "2,5,5", "1,40,70"]  # one frame; past the end
    (root / "test_seg" / "interview_seg.csv").write_text("\n".join(test) + "\n")
    return root


def _reference(root: Path, seg_dir: str, audio: np.ndarray):
    """The library's samples from random-access frames of the same decoded video."""
    frames = np.stack([img for _, img in iter_frames(root / "videos" / "interview.mp4", fps=30)])
    source = InMemoryFrames({"interview": frames})
    segments = read_course_video(
        root / seg_dir / "interview_seg.csv", root / "bbox" / "interview_bbox.csv"
    )
    return [course_sample(s, source, audio) for s in segments], segments


def test_course_cli_writes_the_library_samples_and_resumes(course_root, tmp_path):
    out = tmp_path / "out"
    args = ["data", "ego4d-course", "--videos", course_root / "videos", "--seg"]
    result = _run(*args, course_root / "seg", "--bbox", course_root / "bbox", "--out", out)
    assert result.exit_code == 0, result.output
    assert "4 samples in" in result.output and "samples/s" in result.output
    data = out / "dlcvchallenge1_train_data"
    assert sorted(p.name for p in data.iterdir()) == ["0.npz", "1.npz", "2.npz", "3.npz"]
    rate, audio = wavfile.read(out / "dlcvchallenge1_audios" / "interview.wav")
    assert rate == 16000 and audio.dtype == np.int16 and abs(len(audio) - 32000) < 1600
    expected, segments = _reference(course_root, "seg", audio)
    for i, (ref, seg) in enumerate(zip(expected, segments, strict=True)):
        with np.load(data / f"{i}.npz") as got:
            assert sorted(got.files) == ["audio", "image", "is_empty", "ttm"]
            for key in ("image", "audio", "ttm", "is_empty"):
                assert got[key].dtype == ref[key].dtype, key
                np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{i}.npz {key}")
            assert len(got["is_empty"]) == seg.end_frame - seg.start_frame + 1
            assert len(got["image"]) == int((got["is_empty"] == 0).sum())
    assert [int(np.load(data / f"{i}.npz")["ttm"]) for i in range(4)] == [1, 0, 0, 1]
    manifest = pd.read_csv(out / "dlcvchallenge1_train_samples.csv")
    assert manifest["name"].tolist() == [0, 1, 2, 3] and manifest["start_frame"].tolist() == [
        0,
        10,
        15,
        50,
    ]
    # a rerun keeps everything; a deleted sample is written again, identical
    before = (data / "2.npz").read_bytes()
    (data / "2.npz").unlink()
    result = _run(*args, course_root / "seg", "--bbox", course_root / "bbox", "--out", out)
    assert result.exit_code == 0, result.output
    assert "1 samples in" in result.output
    assert (data / "2.npz").read_bytes() == before
    # other segment files into the same folder are refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "interview_seg.csv").write_text("person_id,start_frame,end_frame,ttm\n1,0,9,1\n")
    result = _run(*args, other, "--bbox", course_root / "bbox", "--out", out)
    assert result.exit_code == 2 and "another preprocessing run" in result.output


def test_course_test_split_names_and_edges(course_root, tmp_path):
    out = tmp_path / "out"
    result = _run(
        "data", "ego4d-course", "--videos", course_root / "videos", "--seg",
        course_root / "test_seg", "--bbox", course_root / "bbox", "--out", out, "--split", "test",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = out / "dlcvchallenge1_test_data"
    assert sorted(p.name for p in data.iterdir()) == [
        "interview_1_40_70.npz",
        "interview_2_5_5.npz",
    ]
    _, audio = wavfile.read(out / "dlcvchallenge1_audios" / "interview.wav")
    (one, late), _ = _reference(course_root, "test_seg", audio)
    with np.load(data / "interview_2_5_5.npz") as got:
        assert got["audio"].shape == (0,)  # one-frame segment: no audio, as the seed
        assert int(got["ttm"]) == -1
        np.testing.assert_array_equal(got["image"], one["image"])
    with np.load(data / "interview_1_40_70.npz") as got:
        assert got["is_empty"][20:].tolist() == [1] * 11  # frames 60..70 are past the video
        np.testing.assert_array_equal(got["image"], late["image"])
    # a video that is missing is reported, the rest written
    (course_root / "test_seg" / "ghost_seg.csv").write_text(
        "person_id,start_frame,end_frame\n1,0,3\n"
    )
    (course_root / "bbox" / "ghost_bbox.csv").write_text("person_id,frame_id,x1,y1,x2,y2\n")
    try:
        result = _run(
            "data", "ego4d-course", "--videos", course_root / "videos", "--seg",
            course_root / "test_seg", "--bbox", course_root / "bbox", "--out", tmp_path / "o2",
            "--split", "test",
        )  # fmt: skip
    finally:
        (course_root / "test_seg" / "ghost_seg.csv").unlink()
        (course_root / "bbox" / "ghost_bbox.csv").unlink()
    assert result.exit_code == 1
    assert "not written: ghost (1 samples): video missing" in result.output


def test_ego4d_asd_cli_feeds_prepare_score_and_evaluate(interview_ego4d, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_clip_video(videos / "interview.mp4", interview_ego4d.frames, interview_ego4d.audio)
    (tmp_path / "av_val.json").write_text(json.dumps(interview_ego4d.av))
    out = tmp_path / "asd"
    result = _run(
        "data", "ego4d-asd", "--annotations", tmp_path / "av_val.json", "--out", out,
        "--videos", videos,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (out / "ego4d" / "csv" / "active_speaker_val.csv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["interview:face-1:0", "interview:face-2:0"]
    context = json.loads(
        (out / "ego4d" / "bboxes_per_track" / "interview:face-1:0.json").read_text()
    )
    # at frame 0 the other person (2) is the only context box; it speaks (voice 0..29)
    assert [b["pid"] for b in context["0"]] == [2] and context["0"][0]["label"] == 1
    ava = pd.read_csv(out / "ava" / "val_orig.csv")
    assert len(ava) == 57 + 60
    prepared = tmp_path / "prepared"
    result = _run(
        "data", "prepare", "--videos", videos, "--csv", out / "ava" / "val_orig.csv",
        "--split", "val", "--out", prepared,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = _run(
        "score", "--root", prepared, "--split", "val", "--csv", out / "ava" / "val_orig.csv",
        "--weights", "light-asd-ava", "-o", tmp_path / "pred.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = _run("evaluate", "-g", out / "ava" / "val_orig.csv", "-p", tmp_path / "pred.csv")
    assert result.exit_code == 0, result.output
    assert "mAP:" in result.output


def test_asd_context_boxes_hand_check(av_dict):
    boxes = asd_context_boxes(load_av_annotations(av_dict))
    # clip-1: trk-a (person 1, frames 0-6) and trk-b (person 2, frames 10-19) never overlap
    assert boxes["clip-1:trk-a:0"]["0"] == [] and sorted(boxes) == [
        "clip-1:trk-a:0",
        "clip-1:trk-b:0",
    ]
    av_dict["videos"][0]["clips"][0]["persons"][2]["tracking_paths"][0]["track"].append(
        {"frame": 20, "x": 1.5, "y": 2.0, "width": 3.0, "height": 4.0}
    )
    av_dict["videos"][0]["clips"][0]["persons"][1]["tracking_paths"][0]["track"].append(
        {"frame": 20, "x": 9.0, "y": 9.0, "width": 1.0, "height": 1.0}
    )
    boxes = asd_context_boxes(load_av_annotations(av_dict))
    assert boxes["clip-1:trk-a:0"]["20"] == [
        {"x1": "1.5", "y1": "2.0", "x2": "4.5", "y2": "6.0", "pid": 2, "label": 0}
    ]
