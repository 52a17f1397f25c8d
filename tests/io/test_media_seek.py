"""socialav.io.media.read_frames_at / keyframe_times_s: single frames by seeking."""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import make_video

from socialav.io.media import MediaError, iter_frames, keyframe_times_s, read_frames_at


@pytest.mark.parametrize(
    "name",
    ["visualvoice_interview.mp4", "face_recognition_short_hamilton_clip.mp4", "grid_bbaf2n.mpg"],
)
def test_frames_at_equal_the_streamed_timeline(videos_dir, name):
    # the Hamilton clip is 29.97 fps (nearest frame by timestamp); GRID's MPEG program
    # stream lands after the target on a backward seek (the decoder must notice)
    path = videos_dir / name
    wanted = [0, 1, 2, 38, 37, 74, 60, 61, 100, 229, 150]
    streamed = {k: img for k, img in iter_frames(path) if k in wanted}
    wanted = [k for k in wanted if k in streamed]
    got = read_frames_at(path, [k / 25 for k in wanted])
    for k, img in zip(wanted, got, strict=True):
        np.testing.assert_array_equal(img, streamed[k], err_msg=f"{name} frame {k}")


def test_nearest_frame_of_a_30fps_source(tmp_path):
    path = make_video(tmp_path / "v30.mp4", num_frames=30, fps=30, size_wh=(32, 32))
    times = [0.0, 0.5, 0.51, 0.9, 0.2, 0.017, 5.0]  # 0.017 s: nearer to frame 1 (0.033) than 0
    got = read_frames_at(path, times)
    levels = [int(img[0, 0, 0]) for img in got]
    # frame i has level 8 i; nearest frame round(t * 30), ties to the earlier; past the end: last
    expected = [8 * min(int(np.floor(t * 30 + 0.5 - 1e-9)), 29) for t in times]
    assert np.max(np.abs(np.array(levels) - expected)) <= 3, (levels, expected)


def test_keyframes_of_the_interview(videos_dir):
    # the interview's H.264 stream has an IDR frame every 10 s (250 frames)
    np.testing.assert_allclose(keyframe_times_s(videos_dir / "visualvoice_interview.mp4"), [0, 10])


def test_no_times_and_bad_files(tmp_path):
    path = make_video(tmp_path / "v.mp4", num_frames=5)
    assert read_frames_at(path, []) == []
    with pytest.raises(MediaError, match="no such file"):
        read_frames_at(tmp_path / "missing.mp4", [0.0])
