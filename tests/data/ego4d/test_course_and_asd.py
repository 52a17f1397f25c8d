"""Seed 000's course CSV format and seed 002's active-speaker conversion, on the fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.data.ego4d.annotations import load_av_annotations
from socialav.data.ego4d.asd import (
    TrackResultError,
    asd_records_from_clips,
    asd_records_from_track_results,
    ava_groundtruth_from_clips,
    read_track_results,
    write_asd_layout,
)
from socialav.data.ego4d.course import (
    CourseFormatError,
    course_crop,
    course_sample,
    course_sample_name,
    find_course_videos,
    read_course_video,
    write_course_sample,
)
from socialav.data.ego4d.samples import InMemoryFrames
from socialav.evaluation.ava import evaluate_ava
from socialav.io.ava_csv import read_ava_csv, write_ava_csv_frame

pytestmark = pytest.mark.usefixtures("one_thread")


def _course_files(clip, folder, seg_lines=None, extra_bbox=()):
    """Course CSVs for the interview fixture: person 1's box per frame, -1 at frames 20-22."""
    (c,) = load_av_annotations(clip.av)
    boxes = c.person_boxes_xyxy("1")
    bbox = ["person_id,frame_id,x1,y1,x2,y2"]
    for f in range(30):
        b = boxes.get(f)
        bbox.append(f"1,{f},-1,-1,-1,-1" if b is None else f"1,{f},{b[0]},{b[1]},{b[2]},{b[3]}")
    bbox.extend(extra_bbox)
    seg = seg_lines or ["person_id,start_frame,end_frame,ttm", "1,0,29,1", "2,5,9,0"]
    (folder / "interview_seg.csv").write_text("\n".join(seg) + "\n")
    (folder / "interview_bbox.csv").write_text("\n".join(bbox) + "\n")
    return folder / "interview_seg.csv", folder / "interview_bbox.csv"


def test_course_format_to_samples(interview_ego4d, tmp_path):
    seg, bbox = _course_files(interview_ego4d, tmp_path)
    assert find_course_videos(tmp_path, tmp_path) == {"interview": (seg, bbox)}
    first, second = read_course_video(seg, bbox, frame_size_px=interview_ego4d.frame_size)
    assert (first.video_id, first.person_id, first.ttm) == ("interview", "1", 1)
    np.testing.assert_array_equal(np.flatnonzero(first.is_empty), [20, 21, 22])
    assert second.is_empty.all()  # person 2 has no rows in the bbox file
    frames = InMemoryFrames({"interview": interview_ego4d.frames})
    sample = course_sample(first, frames, interview_ego4d.audio, size_px=48)
    # one crop per frame with a face (27 of 30), channels first, in [-1, 1]
    assert sample["image"].shape == (27, 3, 48, 48) and sample["image"].dtype == np.float32
    assert sample["ttm"] == 1 and sample["ttm"].dtype == np.int64
    assert sample["is_empty"].dtype == np.int64 and sample["is_empty"].sum() == 3
    assert -1.0 <= sample["image"].min() and sample["image"].max() <= 1.0
    np.testing.assert_array_equal(
        sample["image"][3], course_crop(interview_ego4d.frames[3], first.boxes_xyxy_px[3], 48)
    )
    # frame 23 is the 21st crop: frames 20, 21, 22 have none
    np.testing.assert_array_equal(
        sample["image"][20], course_crop(interview_ego4d.frames[23], first.boxes_xyxy_px[23], 48)
    )
    # audio of frames 0..29: int(29 / 30 * 16000) = 15466 samples, int16 / 32768
    assert sample["audio"].shape == (15466,) and sample["audio"].dtype == np.float32
    np.testing.assert_array_equal(
        sample["audio"], interview_ego4d.audio[:15466].astype(np.float32) / 32768
    )
    name = course_sample_name(first)
    assert name == "interview_1_0_29"
    path = write_course_sample(sample, tmp_path / f"{name}.npz")
    with np.load(path) as data:
        assert sorted(data.files) == ["audio", "image", "is_empty", "ttm"]
        np.testing.assert_array_equal(data["is_empty"], sample["is_empty"])
    # test files have no ttm column
    seg2, bbox2 = _course_files(
        interview_ego4d, tmp_path, ["person_id,start_frame,end_frame", "1,0,9"]
    )
    (test_seg,) = read_course_video(seg2, bbox2)
    assert (
        test_seg.ttm is None and course_sample(test_seg, frames, interview_ego4d.audio)["ttm"] == -1
    )
    # a segment without any face: an empty image array, as the seed's np.array([])
    nothing = course_sample(second, frames, interview_ego4d.audio)
    assert nothing["image"].shape == (0,) and nothing["is_empty"].tolist() == [1] * 5


def test_course_crop_is_the_seeds_pil_crop_in_bgr_order():
    # red left half, blue right half; the box covers the red half and 4 px past the frame
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20, 0] = 255
    image[:, 20:, 2] = 255
    crop = course_crop(image, np.array([0.0, 0.0, 20.9, 24.0]), 10)  # int(20.9) = 20
    assert crop.shape == (3, 10, 10)
    # channels are B, G, R: R = +1 where the frame is, the rows past the frame are zeros (-1)
    assert np.all(crop[2, :7] == 1.0) and np.all(crop[0] == -1.0) and np.all(crop[1] == -1.0)
    assert np.all(crop[2, 9] == -1.0)


@pytest.mark.parametrize(
    "seg_lines, extra_bbox, pattern",
    [
        (
            ["person_id,start,end", "1,0,2"],
            (),
            r"missing column\(s\) \['start_frame', "
            r"'end_frame'\]",
        ),
        (
            ["person_id,start_frame,end_frame", "1,9,3"],
            (),
            r"line 2: empty or negative segment: expected 0 <= start_frame <= end_frame, found "
            r"start_frame=9, end_frame=3",
        ),
        (["person_id,start_frame,end_frame,ttm", "1,0,3,2"], (), r"ttm must be 0 or 1"),
        (
            ["person_id,start_frame,end_frame", "1,zero,3"],
            (),
            r"column 'start_frame': expected an integer, found 'zero'",
        ),
        (
            None,
            ("1,40,50,50,40,60",),
            r"line 32 \(person_id='1', frame_id=40\): expected a box "
            r"with 0 <= x1 < x2",
        ),
        (
            None,
            ("1,41,300,10,330,40",),
            r"box \[300.0, 10.0, 330.0, 40.0\] extends outside the "
            r"320x180 frame",
        ),
        (None, ("1,3,1,1,5,5",), r"second row for person_id='1' frame_id=3"),
    ],
)
def test_malformed_course_files(interview_ego4d, tmp_path, seg_lines, extra_bbox, pattern):
    seg, bbox = _course_files(interview_ego4d, tmp_path, seg_lines, extra_bbox)
    with pytest.raises(CourseFormatError, match=pattern):
        read_course_video(seg, bbox, frame_size_px=interview_ego4d.frame_size)


def test_course_pairs_must_match(tmp_path):
    (tmp_path / "a_seg.csv").write_text("")
    with pytest.raises(CourseFormatError, match=r"without _bbox.csv \['a'\]"):
        find_course_videos(tmp_path, tmp_path)


def test_asd_records_chunking_and_layout(av_dict, tmp_path):
    # a 650-box track: chunks [0, 300), [300, 600), [600, 650) -> entities :0, :1, :2
    long_track = [
        {"frame": f, "x": 1.0, "y": 2.0, "width": 10.0, "height": 10.0} for f in range(650)
    ]
    person = av_dict["videos"][0]["clips"][0]["persons"][2]
    person["tracking_paths"].append({"track_id": "long", "track": long_track})
    person["tracking_paths"].append({"track_id": "visual_anchor_1", "track": long_track[:5]})
    person["voice_segments"] = [{"start_frame": 299, "end_frame": 300}]
    clips = load_av_annotations(av_dict)
    records, chunks = asd_records_from_clips(clips)
    entities = [r.entity for r in records]
    assert entities == [
        "clip-1:trk-a:0",
        "clip-1:trk-b:0",
        "clip-1:long:0",
        "clip-1:long:1",
        "clip-1:long:2",
    ]
    long0, long1 = records[2], records[3]
    assert (long0.num_boxes, long0.first_frame, long1.first_frame) == (300, 0, 300)
    assert long0.labels[299] == 1 and long1.labels[0] == 1 and sum(long0.labels) == 1
    trk_a = records[0]  # person 1 speaks at frames 2..5; boxes at 0, 1, 2, 5, 6
    assert trk_a.labels == [0, 0, 1, 1, 0]
    csv_path = write_asd_layout(records, tmp_path, "train", chunks)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "clip-1:trk-a:0\t5\t30.0\t[0, 0, 1, 1, 0]\t0"
    assert (tmp_path / "bbox" / "clip-1:long:2.json").is_file()
    assert len(lines) == 5


def test_track_results_split_into_local_tracks(tmp_path):
    # pid 7: frames 0..304 (a 305-box run: new track after 301 boxes), gap, frames 400..401
    lines = [f"{f} 7 1 2 30 40" for f in range(305)] + ["400 7 1 2 30 40", "401 7 1 2 30 40"]
    path = tmp_path / "0.txt"
    path.write_text("\n".join(lines) + "\n")
    records = asd_records_from_track_results(read_track_results(path), "vidA")
    # track_length > 300 starts a new track when the 302nd box arrives (index 301)
    assert [(r.entity, r.num_boxes, r.first_frame) for r in records] == [
        ("vidA:7:0", 301, 0),
        ("vidA:7:1", 4, 301),
        ("vidA:7:2", 2, 400),
    ]
    assert records[0].labels == [0]
    # TalkNet+DeiT's seven-column variant keeps the activity
    path.write_text("5 3 1 2 30 40 1\n6 3 1 2 30 40 0\n")
    assert [r["activity"] for r in read_track_results(path)] == [1, 0]
    path.write_text("0 7 1 2 30\n")
    with pytest.raises(
        TrackResultError, match=r"line 1: expected 'frameNumber pid x1 y1 x2 y2 \[activity\]'"
    ):
        read_track_results(path)


def test_ava_csv_from_annotations_runs_the_ava_evaluator(interview_ego4d, tmp_path):
    clips = load_av_annotations(interview_ego4d.av)
    gt = ava_groundtruth_from_clips(clips, interview_ego4d.frame_size)
    assert len(gt) == 57 + 60  # the raw (not interpolated) boxes of both faces
    assert gt["frame_timestamp"].iloc[1] == pytest.approx(1 / 30)
    speaking = gt[gt["label"] == "SPEAKING_AUDIBLE"]
    assert len(speaking) == 30 + 27  # voice_segments 0..29, person 1 misses frames 20..22
    gt_path = tmp_path / "ego4d_ava_gt.csv"
    write_ava_csv_frame(gt, gt_path, "groundtruth", header=False)
    assert len(read_ava_csv(gt_path, "groundtruth")) == len(gt)
    pred = gt.assign(
        score=np.where(gt["label"] == "SPEAKING_AUDIBLE", 0.9, 0.1), label="SPEAKING_AUDIBLE"
    )
    result = evaluate_ava(gt_path, pred)
    assert result.map_percent == pytest.approx(100.0)


@pytest.mark.parametrize("box", [(3.7, 2.2, 30.9, 17.5), (-4.0, 5.0, 12.0, 40.0), (30, 0, 50, 9)])
def test_course_crop_equals_pil_crop_of_the_whole_frame(box):
    from PIL import Image

    image = np.random.default_rng(7).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    bgr = Image.fromarray(np.ascontiguousarray(image[..., ::-1]))
    x1, y1, x2, y2 = (int(v) for v in box)
    ref = np.asarray(bgr.crop((x1, y1, x2, y2)).resize((12, 12), Image.BILINEAR), np.float32)
    expected = (ref.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    np.testing.assert_array_equal(course_crop(image, np.array(box, float), 12), expected)
