"""Tests for socialav.io.annotate: the annotated H.264 video with the source's audio."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from socialav.io.annotate import write_annotated_video
from socialav.types import FaceTrack, TrackScores, VideoInfo

INTERVIEW = "visualvoice_interview.mp4"
# Face boxes of the two people in the first seconds of the interview (x1, y1, x2, y2 px).
LEFT_FACE = (256, 146, 640, 504)
RIGHT_FACE = (700, 60, 1100, 520)


def decode_frames(path: Path, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """First ``n`` decoded frames as (index, RGB); stands in for socialav.io.media."""
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= n:
                break
            yield index, frame.to_ndarray(format="rgb24")


def video_info(path: Path, n: int) -> VideoInfo:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        has_audio = bool(container.streams.audio)
    return VideoInfo(
        path=str(path),
        video_id=path.stem,
        width_px=width,
        height_px=height,
        source_fps=25.0,
        duration_s=n / 25,
        num_frames=n,
        has_audio=has_audio,
    )


def constant_track(track_id: int, box: tuple[float, ...], n: int, prob: float, **extra):
    frames = np.arange(n)
    track = FaceTrack(track_id, frames, np.tile(box, (n, 1)), np.zeros((n, 3)))
    scores = TrackScores(
        track_id,
        frames,
        np.zeros(n),
        np.full(n, prob),
        extra={k: np.full(n, v, np.float32) for k, v in extra.items()},
    )
    return track, scores


def probe(path: Path) -> dict:
    """Streams of a written file: what a player would see."""
    out: dict = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            start = float(stream.start_time * stream.time_base)
            duration = float(stream.duration * stream.time_base) if stream.duration else None
            out[stream.type] = {
                "codec": stream.codec_context.name,
                "start_s": start,
                "duration_s": duration,
                "stream": stream,
            }
            if stream.type == "video":
                out["video"].update(
                    width=stream.codec_context.width,
                    height=stream.codec_context.height,
                    rate=stream.average_rate,
                )
        out["frames"] = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return out


def is_green(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return g > 150 and g > r + 80 and g > b + 80


def is_red(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return r > 150 and r > g + 80 and r > b + 80


def test_interview_boxes_audio_and_timing(tmp_path: Path, videos_dir: Path) -> None:
    src = videos_dir / INTERVIEW
    n = 30
    video = video_info(src, n)
    left_track, left_scores = constant_track(0, LEFT_FACE, n, 0.9, lam=0.8, ttm=0.1)
    right_track, right_scores = constant_track(1, RIGHT_FACE, n, 0.1)
    calls: list[tuple[int, int]] = []
    result = write_annotated_video(
        tmp_path / "annotated.mp4",
        src,
        video,
        [left_track, right_track],
        [left_scores, right_scores],
        frames=decode_frames(src, n),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (1, n) and calls[-1] == (n, n) and len(calls) == n
    assert result.num_frames == n and result.has_audio and result.audio_copied
    info = probe(tmp_path / "annotated.mp4")
    assert len(info["frames"]) == n
    assert (info["video"]["width"], info["video"]["height"]) == (1280, 720)
    assert info["video"]["codec"] == "h264"
    assert info["video"]["rate"] == Fraction(25)
    assert info["audio"]["codec"] == "aac"  # copied, not re-encoded
    # same start as the source (both 0 here) and cut at the end of the last frame
    assert info["audio"]["start_s"] == pytest.approx(info["video"]["start_s"], abs=1e-3)
    assert info["audio"]["duration_s"] == pytest.approx(n / 25, abs=0.05)
    frame = info["frames"][n // 2]
    x1, y1, x2, y2 = LEFT_FACE
    assert is_green(frame[(y1 + y2) // 2, x1])  # speaking: green edge (left side)
    assert is_green(frame[y2, (x1 + x2) // 2])  # bottom edge
    rx1, ry1, rx2, ry2 = RIGHT_FACE
    assert is_red(frame[(ry1 + ry2) // 2, rx2])  # not speaking: red
    assert not is_green(frame[(ry1 + ry2) // 2, rx2])


def test_audio_video_offset_of_source_is_kept(tmp_path: Path, videos_dir: Path) -> None:
    # This clip's video starts 33 ms after its audio; the output must keep that offset.
    src = videos_dir / "videoretalking_face_1.mp4"
    n = 20
    video = video_info(src, n)
    track, scores = constant_track(0, (100, 100, 400, 400), n, 0.7)
    write_annotated_video(
        tmp_path / "a.mp4", src, video, [track], [scores], frames=decode_frames(src, n)
    )
    source, out = probe(src), probe(tmp_path / "a.mp4")
    source_offset = source["video"]["start_s"] - source["audio"]["start_s"]
    assert source_offset == pytest.approx(0.033, abs=1e-3)
    assert out["video"]["start_s"] - out["audio"]["start_s"] == pytest.approx(
        source_offset, abs=1e-3
    )
    assert len(out["frames"]) == n


def test_mp2_audio_is_transcoded_to_aac(tmp_path: Path, videos_dir: Path) -> None:
    src = videos_dir / "grid_bbaf2n.mpg"  # MPEG-1 video with MP2 audio
    n = 25
    video = video_info(src, n)
    track, scores = constant_track(0, (120, 60, 240, 200), n, 0.2)
    result = write_annotated_video(
        tmp_path / "g.mp4", src, video, [track], [scores], frames=decode_frames(src, n)
    )
    assert result.has_audio and not result.audio_copied
    info = probe(tmp_path / "g.mp4")
    assert info["audio"]["codec"] == "aac"
    assert info["audio"]["start_s"] == pytest.approx(info["video"]["start_s"], abs=1e-3)
    assert info["audio"]["duration_s"] == pytest.approx(n / 25, abs=0.05)
    assert len(info["frames"]) == n
    assert is_red(info["frames"][10][130, 120])


@pytest.fixture(scope="module")
def silent_portrait_odd(tmp_path_factory) -> Path:
    """A 181x321 (odd, portrait) H.264 video without audio, 10 frames of mid grey."""
    path = tmp_path_factory.mktemp("src") / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 181, 321, "yuv444p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((321, 181, 3), 128, np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_odd_portrait_video_without_audio(tmp_path: Path, silent_portrait_odd: Path) -> None:
    n = 10
    video = video_info(silent_portrait_odd, n)
    assert (video.width_px, video.height_px) == (181, 321) and not video.has_audio
    box = (40, 60, 140, 200)
    track, scores = constant_track(0, box, n, 0.95)
    # A second face track on frames 6..9 only, scored as speaking on frames 8..9 only.
    late = FaceTrack(3, np.arange(6, 10), np.tile((20, 240, 160, 300), (4, 1)), np.zeros((4, 3)))
    late_scores = TrackScores(3, [9, 8], [0, 0], [0.9, 0.8])  # out of order on purpose
    result = write_annotated_video(
        tmp_path / "p.mp4",
        silent_portrait_odd,
        video,
        [late, track],
        [late_scores, scores],
        frames=decode_frames(silent_portrait_odd, n),
    )
    assert (result.width_px, result.height_px) == (182, 322) and not result.has_audio
    info = probe(tmp_path / "p.mp4")
    assert "audio" not in info
    assert (info["video"]["width"], info["video"]["height"]) == (182, 322)  # still portrait
    assert len(info["frames"]) == n
    assert is_green(info["frames"][5][200, 90])  # bottom edge of the box
    assert not is_green(info["frames"][5][130, 90])  # inside the box: untouched grey
    # the late track is drawn exactly on its scored frames
    assert [is_green(f[300, 90]) for f in info["frames"]] == [False] * 8 + [True] * 2


def test_include_audio_false(tmp_path: Path, videos_dir: Path) -> None:
    src = videos_dir / "grid_bbaf2n.mpg"
    video = video_info(src, 5)
    result = write_annotated_video(
        tmp_path / "q.mp4", src, video, [], [], frames=decode_frames(src, 5), include_audio=False
    )
    assert not result.has_audio
    assert "audio" not in probe(tmp_path / "q.mp4")


def test_bad_frames_leave_previous_output(tmp_path: Path, silent_portrait_odd: Path) -> None:
    video = video_info(silent_portrait_odd, 3)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous")

    def wrong_size():
        yield 0, np.zeros((321, 181, 3), np.uint8)
        yield 1, np.zeros((181, 321, 3), np.uint8)  # rotated: does not match VideoInfo

    with pytest.raises(ValueError, match=r"shape \(321, 181, 3\) uint8"):
        write_annotated_video(target, silent_portrait_odd, video, [], [], frames=wrong_size())
    frames = [(0, np.zeros((321, 181, 3), np.uint8))] * 2
    with pytest.raises(ValueError, match="frame indices must increase"):
        write_annotated_video(target, silent_portrait_odd, video, [], [], frames=frames)
    with pytest.raises(ValueError, match="at least one frame"):
        write_annotated_video(target, silent_portrait_odd, video, [], [], frames=[])
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_scores_without_track_are_rejected(tmp_path: Path, silent_portrait_odd: Path) -> None:
    video = video_info(silent_portrait_odd, 2)
    _, scores = constant_track(5, (0, 0, 10, 10), 2, 0.5)
    with pytest.raises(ValueError, match="track_id 5 has no FaceTrack"):
        write_annotated_video(
            tmp_path / "x.mp4",
            silent_portrait_odd,
            video,
            [],
            [scores],
            frames=decode_frames(silent_portrait_odd, 2),
        )


def test_default_frames_come_from_media_iter_frames(tmp_path: Path, videos_dir: Path) -> None:
    media = pytest.importorskip("socialav.io.media")
    src = videos_dir / "grid_bbaf2n.mpg"  # 3 s at 25 fps
    video = media.probe_video(src)
    track, scores = constant_track(0, (120, 60, 240, 200), video.num_frames, 0.9)
    result = write_annotated_video(tmp_path / "d.mp4", src, video, [track], [scores])
    info = probe(tmp_path / "d.mp4")
    assert result.num_frames == len(info["frames"]) == video.num_frames
    assert is_green(info["frames"][-1][130, 120])
    assert info["audio"]["duration_s"] == pytest.approx(video.num_frames / 25, abs=0.05)


def test_input_frames_are_not_drawn_on(tmp_path: Path, silent_portrait_odd: Path) -> None:
    # iter_frames may yield the same array for several timeline frames: it must stay clean.
    video = video_info(silent_portrait_odd, 2)
    image = np.full((321, 181, 3), 128, np.uint8)
    track, scores = constant_track(0, (40, 60, 140, 200), 2, 0.9)
    write_annotated_video(
        tmp_path / "c.mp4",
        silent_portrait_odd,
        video,
        [track],
        [scores],
        frames=[(0, image), (1, image)],
    )
    assert (image == 128).all()


def test_default_frames_are_drawn_on_their_4_2_0_planes(tmp_path: Path, videos_dir: Path) -> None:
    """Without ``frames`` the source is decoded as yuv420p and only the overlay regions go
    through RGB: the result looks like the RGB path's (same boxes, chips and badges) and the
    pixels away from the overlays are the decoder's own."""
    from media_factory import cut_clip

    from socialav.io.media import iter_frames, probe_video

    src = cut_clip(videos_dir / INTERVIEW, tmp_path / "src.mp4", 60)
    video = probe_video(src)
    n = video.num_frames
    left_track, left_scores = constant_track(0, LEFT_FACE, n, 0.9, lam=0.8, ttm=0.1)
    right_track, right_scores = constant_track(1, RIGHT_FACE, n, 0.1)
    tracks, scores = [left_track, right_track], [left_scores, right_scores]
    planes = tmp_path / "planes.mp4"
    rgb = tmp_path / "rgb.mp4"
    write_annotated_video(planes, src, video, tracks, scores)
    write_annotated_video(rgb, src, video, tracks, scores, frames=iter_frames(src))
    a = dict(iter_frames(planes))
    b = dict(iter_frames(rgb))
    source = dict(iter_frames(src))
    assert len(a) == len(b) == n
    for k in (0, n // 2, n - 1):
        frame = a[k]
        x1, y1, x2, y2 = LEFT_FACE
        assert is_green(frame[(y1 + y2) // 2, x1]) and is_green(frame[y2, (x1 + x2) // 2])
        rx1, ry1, rx2, ry2 = RIGHT_FACE
        assert is_red(frame[(ry1 + ry2) // 2, rx2])
        diff = np.abs(frame.astype(int) - b[k])
        assert diff.mean() < 4.0  # both are lossy encodings of the same drawing
        # the label chips match in place: the chip above the left box is green in both
        chip = (y1 - 10, x1 - 1)  # left of the text, inside the chip
        assert is_green(frame[chip]) and is_green(b[k][chip])
        # far from every overlay (top-left corner) this path is closer to the source
        corner = (slice(0, 100), slice(0, 200))
        err_planes = np.abs(frame[corner].astype(int) - source[k][corner]).mean()
        err_rgb = np.abs(b[k][corner].astype(int) - source[k][corner]).mean()
        assert err_planes <= err_rgb + 0.5
