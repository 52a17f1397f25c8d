"""Tests for socialav.io.annotate: the annotated H.264 video with the source's audio."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from socialav.io.annotate import annotated_size, write_annotated_video
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


def scaled(x: float, scale: float) -> int:
    """Output pixel of source pixel ``x`` in a picture resized by ``scale`` (pixel centres
    aligned, as cv2.resize aligns them)."""
    return round((x + 0.5) * scale - 0.5)


def interleaving_lag_s(path: Path) -> float:
    """Largest lag, in file order, between the latest audio and the latest video packet
    (decoding times): small when the streams are interleaved, the whole duration when one
    stream is written after the other."""
    latest = {"audio": 0.0, "video": 0.0}
    lag = 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.dts is None:
                continue
            kind = packet.stream.type
            latest[kind] = max(latest[kind], float(packet.dts * packet.time_base))
            lag = max(lag, abs(latest["audio"] - latest["video"]))
    return lag


@pytest.mark.parametrize(
    ("width", "height", "cap", "expected"),
    [
        (1280, 720, 480, (854, 480)),  # 853.3 -> nearest even
        (1920, 1080, 480, (854, 480)),
        (3840, 2160, 480, (854, 480)),
        (720, 1280, 480, (480, 854)),  # portrait: the shorter side (the width) is capped
        (1080, 1920, 480, (480, 854)),  # a phone video
        (480, 1280, 480, (480, 1280)),  # shorter side at the cap: untouched
        (1280, 720, 481, (854, 480)),  # an odd cap: the even height below it
        (1281, 721, 480, (852, 480)),  # 852.8 / 2 = 426.4 -> 852
        (640, 480, 480, (640, 480)),  # at the cap: untouched
        (640, 360, 480, (640, 360)),  # below it: untouched
        (181, 321, 480, (182, 322)),  # below it and odd: padded as without a cap
        (1280, 720, 0, (1280, 720)),  # 0 and None: the source size
        (1281, 721, None, (1282, 722)),
    ],
)
def test_annotated_size(width, height, cap, expected) -> None:
    assert annotated_size(width, height, cap) == expected
    w, h = annotated_size(width, height, cap)
    if cap and min(width, height) > cap:  # aspect ratio kept within the rounding to even
        assert min(w, h) == cap - cap % 2
        assert abs(w - width * h / height) <= 1.0 or abs(h - height * w / width) <= 1.0


def test_annotated_size_refuses_a_negative_cap() -> None:
    with pytest.raises(ValueError, match=r"max_short_side_px must be >= 0.*got -1"):
        annotated_size(1280, 720, -1)


def test_capped_video_has_the_boxes_at_the_scaled_place(tmp_path: Path, videos_dir: Path) -> None:
    """720p decoded as 4:2:0, scaled to 854x480 plane by plane, drawn at 480 lines: the
    boxes sit where the faces are in the smaller picture, and the audio is the source's,
    interleaved and in sync."""
    from media_factory import cut_clip

    from socialav.io.media import iter_frames, probe_video

    src = cut_clip(videos_dir / INTERVIEW, tmp_path / "src.mp4", 30)
    video = probe_video(src)
    n = video.num_frames
    left_track, left_scores = constant_track(0, LEFT_FACE, n, 0.9)
    right_track, right_scores = constant_track(1, RIGHT_FACE, n, 0.1)
    out = tmp_path / "capped.mp4"
    result = write_annotated_video(
        out,
        src,
        video,
        [left_track, right_track],
        [left_scores, right_scores],
        max_short_side_px=480,
    )
    assert (result.width_px, result.height_px) == (854, 480)
    assert result.num_frames == n and result.has_audio and result.audio_copied
    info = probe(out)
    assert (info["video"]["width"], info["video"]["height"]) == (854, 480)
    assert info["audio"]["start_s"] == pytest.approx(info["video"]["start_s"], abs=1e-3)
    assert info["audio"]["duration_s"] == pytest.approx(n / 25, abs=0.05)
    assert interleaving_lag_s(out) < 0.5
    sx, sy = 854 / 1280, 480 / 720
    source = dict(iter_frames(src))
    for k in (0, n // 2, n - 1):
        frame = info["frames"][k]
        x1, y1, x2, y2 = LEFT_FACE
        ym = (y1 + y2) / 2
        assert is_green(frame[scaled(ym, sy), scaled(x1, sx)])  # left edge, scaled
        assert is_green(frame[scaled(y2, sy), scaled((x1 + x2) / 2, sx)])  # bottom edge
        assert not is_green(frame[round(ym), x1])  # where the unscaled edge would be: the face
        rx1, ry1, rx2, ry2 = RIGHT_FACE
        assert is_red(frame[scaled((ry1 + ry2) / 2, sy), scaled(rx2, sx)])
        # away from the overlays the picture is the source's, scaled
        small = cv2.resize(source[k], (854, 480), interpolation=cv2.INTER_AREA)
        corner = (slice(0, 60), slice(0, 100))
        assert np.abs(frame[corner].astype(int) - small[corner]).mean() < 6.0


def test_capped_rgb_frames_odd_portrait(tmp_path: Path, silent_portrait_odd: Path) -> None:
    """Caller-given RGB frames of an odd-sized portrait video are scaled the same way."""
    n = 4
    video = video_info(silent_portrait_odd, n)
    track, scores = constant_track(0, (40, 60, 140, 200), n, 0.95)
    result = write_annotated_video(
        tmp_path / "p.mp4",
        silent_portrait_odd,
        video,
        [track],
        [scores],
        frames=decode_frames(silent_portrait_odd, n),
        max_short_side_px=160,
    )
    assert (result.width_px, result.height_px) == (160, 284)  # 321 * 160 / 181 = 283.8
    info = probe(tmp_path / "p.mp4")
    assert (info["video"]["width"], info["video"]["height"]) == (160, 284)
    frame = info["frames"][2]
    sx, sy = 160 / 181, 284 / 321  # box (40, 60, 140, 200) -> (35.4, 53.1, 123.8, 176.9)
    assert is_green(frame[scaled(200, sy), scaled(90, sx)])  # bottom edge
    assert is_green(frame[scaled(130, sy), scaled(40, sx)])  # left edge
    assert not is_green(frame[scaled(130, sy), scaled(90, sx)])  # inside: grey
    assert not is_green(frame[200, 90])  # the unscaled bottom edge: below the box


def test_a_source_at_or_below_the_cap_is_not_scaled(tmp_path: Path, videos_dir: Path) -> None:
    from socialav.io.media import probe_video

    src = videos_dir / "grid_bbaf2n.mpg"  # 360x288
    video = probe_video(src)
    track, scores = constant_track(0, (120, 60, 240, 200), video.num_frames, 0.9)
    sizes, frames = [], []
    for cap in (288, 0):
        out = tmp_path / f"g{cap}.mp4"
        result = write_annotated_video(out, src, video, [track], [scores], max_short_side_px=cap)
        sizes.append((result.width_px, result.height_px))
        frames.append(probe(out)["frames"])
    assert sizes == [(360, 288), (360, 288)]
    assert len(frames[0]) == len(frames[1]) == video.num_frames
    assert all(np.array_equal(a, b) for a, b in zip(*frames, strict=True))


def test_capped_rotated_source_is_upright_with_the_boxes_in_place(
    tmp_path: Path, videos_dir: Path
) -> None:
    """A 1280x720 picture marked as turned a quarter (a phone's portrait video) is shown
    720x1280: the cap applies to the shorter side of that upright picture (480x854), the output is stored
    upright without a rotation, and boxes in upright pixels land in place."""
    from media_factory import cut_clip, rotate_display_90

    from socialav.io.media import iter_frames, probe_video

    src = rotate_display_90(cut_clip(videos_dir / INTERVIEW, tmp_path / "src.mp4", 10))
    video = probe_video(src)
    assert (video.width_px, video.height_px) == (720, 1280)
    box = (100, 300, 600, 900)  # upright pixels
    track, scores = constant_track(0, box, video.num_frames, 0.9)
    out = tmp_path / "upright.mp4"
    result = write_annotated_video(out, src, video, [track], [scores], max_short_side_px=480)
    assert (result.width_px, result.height_px) == (480, 854)
    info = probe(out)
    assert (info["video"]["width"], info["video"]["height"]) == (480, 854)
    with av.open(str(out)) as container:
        assert next(container.decode(video=0)).rotation == 0
    sx, sy = 480 / 720, 854 / 1280
    frame = info["frames"][5]
    x1, y1, x2, y2 = box
    assert is_green(frame[scaled((y1 + y2) / 2, sy), scaled(x1, sx)])  # left edge
    assert is_green(frame[scaled(y2, sy), scaled((x1 + x2) / 2, sx)])  # bottom edge
    upright = cv2.resize(dict(iter_frames(src))[5], (480, 854), interpolation=cv2.INTER_AREA)
    below = (slice(700, 854), slice(0, 480))  # under the box: the picture, upright
    assert np.abs(frame[below].astype(int) - upright[below]).mean() < 6.0
    turned = cv2.resize(np.rot90(upright, 2), (480, 854))  # upside down would not match
    assert np.abs(frame[below].astype(int) - turned[below]).mean() > 20.0


@pytest.mark.parametrize("near_edge", [False, True])
def test_the_painter_redraws_only_what_the_overlays_touch(videos_dir: Path, near_edge) -> None:
    """On a real 480p picture, two faces with a label, badges and the eye marker (near the
    picture's corner, chips pushed inside): every pixel that drawing on the whole RGB frame
    changes gets that drawing's 4:2:0 value, and the face inside each box keeps the
    decoder's bytes."""
    from socialav.io.annotate import _draw, _FaceOverlay, _I420Painter, _lay_out
    from socialav.io.media import iter_i420_frames, plane_view

    _, picture = next(iter_i420_frames(videos_dir / INTERVIEW, 854, 480))
    planes = tuple(plane_view(p) for p in picture.planes)
    original = picture.to_ndarray(format="yuv420p")
    shift = np.array([-160.0, -90.0, -160.0, -90.0]) if near_edge else 0.0
    faces = [
        _FaceOverlay(np.array([171.0, 97.0, 427.0, 336.0]) + shift, 3, 0.83, ["to me"], True),
        _FaceOverlay(np.array([467.3, 40.0, 733.0, 347.6]), 14, 0.12),
    ]
    _I420Painter(480, 854).draw(planes, faces, 0.5)  # type: ignore[arg-type]
    painted = picture.to_ndarray(format="yuv420p")

    rgb = cv2.cvtColor(original, cv2.COLOR_YUV2RGB_I420)
    drawn = rgb.copy()
    for face in faces:
        _draw(drawn, _lay_out(face, 0.5, 480, 854))
    expected = cv2.cvtColor(drawn, cv2.COLOR_RGB2YUV_I420)
    touched = (drawn != rgb).any(axis=2)
    assert touched.sum() > 5000  # boxes, chips, text, the eye
    luma = (slice(0, 480), slice(0, 854))
    np.testing.assert_array_equal(painted[luma][touched], expected[luma][touched])
    for face in faces:  # the middle of each box (away from chips and the eye): untouched
        x1, y1, x2, y2 = (int(v) for v in face.box_xyxy_px)
        cx, cy = (max(x1, 0) + x2) // 2, (max(y1, 0) + y2) // 2
        inside = (slice(cy - 30, cy + 30), slice(cx - 30, cx + 30))
        np.testing.assert_array_equal(painted[inside], original[inside])
