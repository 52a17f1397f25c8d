"""Ego4D av_*.json loader: the synthetic and the real-derived fixture, and malformed files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from socialav.data.ego4d.annotations import (
    Ego4dAnnotationError,
    interpolate_track,
    load_av_annotations,
    normalize_person_id,
    read_split_list,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_synthetic_file_is_read_into_typed_records(av_dict, tmp_path):
    path = tmp_path / "av_train.json"
    path.write_text(json.dumps(av_dict))
    clips = load_av_annotations(path, frame_size_px=(640, 480))
    assert [c.clip_uid for c in clips] == ["clip-1", "clip-2"]
    clip = clips[0]
    assert clip.video_uid == "video-1" and clip.fps == 30.0
    assert [p.person_id for p in clip.persons] == ["camera_wearer", "1", "2"]
    assert [p.is_camera_wearer for p in clip.persons] == [True, False, False]
    track = clip.person("1").tracks[0]
    assert track.track_id == "trk-a"
    np.testing.assert_array_equal(track.frames, [0, 1, 2, 5, 6])
    # frame 5: x = 100 + 5, y = 50, w = 80, h = 100 -> xyxy (105, 50, 185, 150)
    np.testing.assert_allclose(track.boxes_xyxy_px[3], [105, 50, 185, 150])
    # quotes removed from "'1'"; a null target is not talking to me
    assert [(s.person, s.target, s.talking_to_me) for s in clip.talking] == [
        ("1", "0", True),
        (None, None, False),
        ("2", None, False),
        ("2", "1", True),
    ]
    assert clip.talking[0].is_at_me is True and clip.talking[2].is_at_me is None
    assert clip.looking_frames("1") == {1, 2, 3, 4}
    assert clip.person("1").voice_segments[0].num_frames == 4
    # camera wearer given as person_id "0" without the flag
    assert clips[1].persons[0].is_camera_wearer


def test_dict_source_and_clip_selection(av_dict):
    clips = load_av_annotations(av_dict, clip_uids=["clip-2"])
    assert [c.clip_uid for c in clips] == ["clip-2"]
    with pytest.raises(Ego4dAnnotationError, match=r"requested clip_uid.*'nope'"):
        load_av_annotations(av_dict, clip_uids=["nope"])


def test_real_derived_clip(interview_ego4d, tmp_path):
    path = tmp_path / "av_val.json"
    path.write_text(json.dumps(interview_ego4d.av))
    (clip,) = load_av_annotations(path, frame_size_px=interview_ego4d.frame_size)
    assert [p.person_id for p in clip.persons] == ["camera_wearer", "1", "2"]
    t1 = clip.person("1").tracks[0]
    assert 20 not in t1.frames and len(t1) == 57  # 60 frames minus the 3-frame gap
    filled = interpolate_track(t1)
    np.testing.assert_array_equal(filled.frames, np.arange(60))
    # linear interpolation between frames 19 and 23 at frame 21 is their midpoint
    mid = (t1.boxes_xyxy_px[19] + t1.boxes_xyxy_px[20]) / 2  # rows of frames 19 and 23
    np.testing.assert_allclose(filled.boxes_xyxy_px[21], mid, atol=1e-9)


def test_interpolate_track_hand_values(av_dict):
    (clip, _) = load_av_annotations(av_dict)
    track = interpolate_track(clip.person("1").tracks[0])
    # frames 2 (x=102) and 5 (x=105): frame 3 -> 103, frame 4 -> 104; width stays 80
    np.testing.assert_array_equal(track.frames, np.arange(7))
    np.testing.assert_allclose(track.boxes_xywh_px[3], [103, 50, 80, 100])
    np.testing.assert_allclose(track.boxes_xywh_px[4], [104, 50, 80, 100])


def _clip(d):
    return d["videos"][0]["clips"][0]


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.pop("videos"), r"missing key 'videos'"),
        (lambda d: _clip(d).pop("clip_uid"), r"videos\[0\]\.clips\[0\]: missing key 'clip_uid'"),
        (
            lambda d: _clip(d)["persons"][1].pop("person_id"),
            r"clip_uid='clip-1'\)\.persons\[1\]: missing key 'person_id'",
        ),
        (
            lambda d: _clip(d)["persons"][1]["tracking_paths"][0]["track"][2].pop("width"),
            r"persons\[1\] \(person_id='1'\)\.tracking_paths\[0\] \(track_id='trk-a'\)\.track\[2\]"
            r": missing key 'width'",
        ),
        (
            lambda d: _clip(d)["persons"][1]["tracking_paths"][0]["track"][0].update(x="10"),
            r"track\[0\]\.x: expected int or float, but found str",
        ),
        (
            lambda d: _clip(d)["persons"][2]["tracking_paths"][0]["track"][0].update(x=600.0),
            r"person_id='2'.*track\[0\]: box partly outside the 640x480 frame at frame 10.*"
            r"x2=660",
        ),
        (
            lambda d: _clip(d)["persons"][2]["tracking_paths"][0]["track"][0].update(x=700.0),
            r"box entirely outside the 640x480 frame",
        ),
        (
            lambda d: _clip(d)["persons"][2]["tracking_paths"][0]["track"][0].update(height=0),
            r"expected a box with positive width and height, but found width=60.0, height=0",
        ),
        (
            lambda d: _clip(d)["persons"][2]["tracking_paths"][0].update(track=[]),
            r"track_id='trk-b'\)\.track: expected at least one box, but it is empty",
        ),
        (
            lambda d: _clip(d)["persons"][2]["tracking_paths"][0]["track"][1].update(frame=10),
            r"track\[1\]: expected strictly increasing frames, but frame 10 follows frame 10",
        ),
        (
            lambda d: _clip(d)["social_segments_talking"][2].update(end_frame=5),
            r"social_segments_talking\[2\]: empty segment: expected start_frame <= end_frame, "
            r"but found start_frame=10, end_frame=5",
        ),
        (
            lambda d: _clip(d)["social_segments_looking"][0].update(start_frame=-1),
            r"social_segments_looking\[0\]\.start_frame: expected a non-negative integer",
        ),
        (
            lambda d: _clip(d)["social_segments_talking"][0].pop("target"),
            r"social_segments_talking\[0\]: missing key 'target'",
        ),
        (
            lambda d: _clip(d).pop("social_segments_looking"),
            r"clip_uid='clip-1'\): missing key 'social_segments_looking'",
        ),
        (lambda d: d["videos"][0]["clips"].append(copy_clip(d)), r"duplicate clip_uid 'clip-1'"),
        (
            lambda d: _clip(d)["persons"].append({"person_id": "'1'"}),
            r"persons\[3\]: duplicate person_id '1'",
        ),
    ],
)
def test_malformed_annotations_name_the_place(av_dict, mutate, pattern):
    mutate(av_dict)
    with pytest.raises(Ego4dAnnotationError, match=pattern):
        load_av_annotations(av_dict, frame_size_px=(640, 480))


def copy_clip(d):
    import copy

    return copy.deepcopy(_clip(d))


def test_outside_boxes_can_be_clipped(av_dict):
    _clip(av_dict)["persons"][2]["tracking_paths"][0]["track"][0]["x"] = 600.0
    (clip, _) = load_av_annotations(av_dict, frame_size_px=(640, 480), outside="clip")
    # x1 600, x2 660 clipped to 640 -> width 40
    np.testing.assert_allclose(clip.person("2").tracks[0].boxes_xywh_px[0], [600, 60, 40, 60])


def test_invalid_json_and_missing_file(tmp_path):
    bad = tmp_path / "av.json"
    bad.write_text("{not json")
    with pytest.raises(Ego4dAnnotationError, match="not valid JSON"):
        load_av_annotations(bad)
    with pytest.raises(FileNotFoundError):
        load_av_annotations(tmp_path / "missing.json")


def test_person_ids_and_split_list(tmp_path):
    assert normalize_person_id("'12'") == "12" and normalize_person_id(3) == "3"
    assert normalize_person_id(None) is None
    split = tmp_path / "val.list"
    split.write_text("a\n\nb\n")
    assert read_split_list(split) == ["a", "b"]
    split.write_text("a\na\n")
    with pytest.raises(ValueError, match="'a' listed twice"):
        read_split_list(split)
