import numpy as np
import pytest
from media_factory import make_video

from socialav.io import media
from socialav.io.media import (
    MediaError,
    NoAudioStreamError,
    iter_frames,
    iter_frames_at_times,
    probe_video,
    read_audio,
)


def test_interview_probe_frames_and_audio(videos_dir, interview_reference):
    path = videos_dir / "visualvoice_interview.mp4"
    info = probe_video(path)
    assert (info.width_px, info.height_px) == (1280, 720)
    assert info.num_frames == 438 and info.has_audio and info.video_codec == "h264"
    indices = [k for k, _ in iter_frames(path, pixel_format="gray")]
    assert indices == list(range(438))
    audio = read_audio(path)
    ref = interview_reference["track0_audio_s16"]  # ffmpeg -ac 1 -ar 16000 in the reference
    np.testing.assert_array_equal(audio[: len(ref)], ref)


def test_30fps_is_resampled_to_25fps_by_timestamp(tmp_path):
    path = make_video(tmp_path / "v30.mp4", num_frames=30, fps=30)
    frames = list(iter_frames(path))
    assert [k for k, _ in frames] == list(range(25))
    # output frame k at k/25 s shows the source frame nearest in time: round(k * 30 / 25)
    levels = [int(img[0, 0, 0]) for _, img in frames]
    expected = [(8 * int(np.floor(k * 30 / 25 + 0.5 - 1e-9))) % 256 for k in range(25)]
    assert np.max(np.abs(np.array(levels) - np.array(expected))) <= 3  # codec noise only


def test_hevc_and_portrait(tmp_path):
    path = make_video(tmp_path / "p.mp4", num_frames=10, size_wh=(128, 256), codec="libx265")
    info = probe_video(path)
    assert info.video_codec == "hevc" and (info.width_px, info.height_px) == (128, 256)
    _, img = next(iter_frames(path))
    assert img.shape == (256, 128, 3)


def test_audio_is_16k_mono_int16(tmp_path):
    path = make_video(tmp_path / "a.mp4", num_frames=25, sample_rate=44100)
    audio = read_audio(path)
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert abs(len(audio) - 16000) < 1200  # 1 s, give or take the AAC priming frame


def test_no_audio_stream(tmp_path):
    path = make_video(tmp_path / "silent.mp4", audio=False)
    assert not probe_video(path).has_audio
    with pytest.raises(NoAudioStreamError, match="expected an audio stream"):
        read_audio(path)


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(MediaError, match="expected a video file"):
        probe_video(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="directory"):
        probe_video(tmp_path)


def test_truncated_file(tmp_path, videos_dir):
    data = (videos_dir / "visualvoice_interview.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        probe_video(path)
        for _ in iter_frames(path):
            pass


def test_nearest_frame_on_a_30fps_video(tmp_path):
    path = make_video(tmp_path / "v.mp4", num_frames=30, fps=30, size_wh=(64, 48))
    times = np.array([0.0, 0.016, 0.017, 0.1, 0.5, 0.9667, 1.2])
    got = list(iter_frames_at_times(path, times, pixel_format="gray"))
    assert [i for i, _, _ in got] == list(range(len(times)))
    frame_index = [int(round(ft * 30)) for _, _, ft in got]
    # nearest frame (0.016 is before the midpoint 1/60, 0.017 after it); past the end: last
    assert frame_index == [0, 0, 1, 3, 15, 29, 29]
    for (_, img, _), k in zip(got, frame_index, strict=True):
        assert abs(float(img.mean()) - 8 * k) < 3  # frame k has gray level 8 k


def test_seeking_gives_the_same_frames_as_decoding_from_the_start(tmp_path, monkeypatch):
    path = make_video(tmp_path / "v.mp4", num_frames=75, fps=25, size_wh=(64, 48))
    times = np.array([1.6, 2.0, 2.44])
    plain = [img for _, img, _ in iter_frames_at_times(path, times, "gray")]
    monkeypatch.setattr(media, "SEEK_MIN_S", 0.5)
    monkeypatch.setattr(media, "SEEK_MARGIN_S", 0.3)
    sought = [img for _, img, _ in iter_frames_at_times(path, times, "gray")]
    for a, b in zip(plain, sought, strict=True):
        np.testing.assert_array_equal(a, b)


def test_i420_frames_follow_the_timeline_as_new_pictures(tmp_path):
    """A 10 fps source on the 25 fps timeline: the same indices and source frames as
    iter_frames, each index its own yuv420p picture at the asked size (drawing on one does
    not touch the next, though both show one source frame)."""
    path = make_video(tmp_path / "v10.mp4", num_frames=10, fps=10, size_wh=(64, 48))
    gray = dict(iter_frames(path, pixel_format="gray"))
    pictures = list(media.iter_i420_frames(path, 32, 24))
    assert [k for k, _ in pictures] == sorted(gray) == list(range(25))
    first, second = pictures[0][1], pictures[1][1]  # both the source's first frame
    assert (first.width, first.height, first.format.name) == (32, 24, "yuv420p")
    assert first is not second
    luma = media.plane_view(first.planes[0])
    assert luma.shape == (24, 32)
    luma[...] = 255
    assert int(media.plane_view(second.planes[0])[0, 0]) != 255
    for k, picture in pictures[1:]:  # the scaled luma is the source's level (flat frames)
        level = float(media.plane_view(picture.planes[0]).mean())
        assert abs(level - gray_to_luma(gray[k]).mean()) < 2.0


def gray_to_luma(gray: np.ndarray) -> np.ndarray:
    """Full-range gray (swscale's 'gray' output) as limited-range luma (16-235)."""
    return 16 + gray.astype(float) * 219 / 255


def test_i420_frames_unscaled_rotated_and_odd_sizes(tmp_path, videos_dir):
    from media_factory import cut_clip, rotate_display_90

    src = cut_clip(videos_dir / "visualvoice_interview.mp4", tmp_path / "src.mp4", 5)
    rgb = dict(iter_frames(src))
    # at the source size: a copy of the decoder's picture, the same pixels
    (k, picture), *_ = media.iter_i420_frames(src, 1280, 720)
    assert np.abs(picture.to_ndarray(format="rgb24").astype(int) - rgb[k]).mean() < 1.0
    turned = rotate_display_90(src)
    upright = dict(iter_frames(turned))
    for k, picture in media.iter_i420_frames(turned, 720, 1280):
        assert (picture.width, picture.height) == (720, 1280)
        assert np.abs(picture.to_ndarray(format="rgb24").astype(int) - upright[k]).mean() < 1.0
    with pytest.raises(ValueError, match="even sizes.*853x480"):
        next(media.iter_i420_frames(src, 853, 480))
