"""Tests for socialav.io.plots: the speaking timeline PNG."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread

from socialav.types import SpeakingSegment, TrackScores, VideoInfo

BACKEND_BEFORE = matplotlib.get_backend()

from socialav.io.plots import plot_timeline  # noqa: E402  (import after reading the backend)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_video(num_frames: int = 250) -> VideoInfo:
    return VideoInfo(
        path="v.mp4",
        video_id="v",
        width_px=640,
        height_px=360,
        source_fps=25.0,
        duration_s=num_frames / 25,
        num_frames=num_frames,
    )


def make_scores(track_id: int, start: int, n: int, speaking: bool, extra: bool = False):
    frames = np.arange(start, start + n)
    t = np.linspace(0, 6 * np.pi, n)
    p = 0.5 + 0.45 * np.sin(t)
    segments = []
    if speaking:
        a, b = start + n // 4, start + n // 2
        segments = [SpeakingSegment(a / 25, (b + 1) / 25, a, b, 0.8)]
    ex = {"lam": 1 - p, "ttm": p * 0.5} if extra else {}
    return TrackScores(track_id, frames, p * 4 - 2, p, segments, ex)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def shaded_pixels(path: Path) -> int:
    """Pixels of the light green speaking shading (tab:green at alpha 0.25)."""
    r, g, b = np.moveaxis(imread(path)[..., :3], -1, 0)
    return int(((g - r > 0.08) & (g - b > 0.08) & (g > 0.8)).sum())


def test_timeline_png_size_grows_with_tracks(tmp_path: Path) -> None:
    video = make_video()
    one = [make_scores(0, 0, 200, True)]
    three = one + [make_scores(1, 50, 100, False, extra=True), make_scores(2, 120, 130, True)]
    assert plot_timeline(tmp_path / "one.png", video, one) == 1
    assert plot_timeline(tmp_path / "three.png", video, three, threshold=0.6) == 3
    (w1, h1), (w3, h3) = png_size(tmp_path / "one.png"), png_size(tmp_path / "three.png")
    assert w1 == w3 == 1200
    assert 150 < h1 < 400 and h3 == pytest.approx(h1 + 200, abs=2)  # 1 inch per row
    assert imread(tmp_path / "three.png").shape[:2] == (h3, w3)  # decodes
    assert not list(tmp_path.glob(".*tmp*"))


def test_speaking_segments_are_shaded(tmp_path: Path) -> None:
    video = make_video()
    plot_timeline(tmp_path / "s.png", video, [make_scores(0, 0, 200, True)])
    plot_timeline(tmp_path / "n.png", video, [make_scores(0, 0, 200, False)])
    # The segment spans 2 s of 10 s over ~900 px of plot width and ~90 px of row height.
    assert shaded_pixels(tmp_path / "s.png") > 5000
    assert shaded_pixels(tmp_path / "n.png") < 500  # the legend's swatch only


def test_zero_tracks_gives_a_valid_png(tmp_path: Path) -> None:
    assert plot_timeline(tmp_path / "empty.png", make_video(), []) == 0
    width, height = png_size(tmp_path / "empty.png")
    assert width == 1200 and height > 100


def test_many_tracks_are_capped(tmp_path: Path) -> None:
    scores = [make_scores(i, i, 30 + i, i % 2 == 0) for i in range(25)]
    assert plot_timeline(tmp_path / "m.png", make_video(), scores, max_tracks=20) == 20
    _, height = png_size(tmp_path / "m.png")
    assert height == pytest.approx(100 * (0.9 + 0.6 + 20), abs=2)


def test_bad_arguments_and_backend_untouched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threshold must lie in"):
        plot_timeline(tmp_path / "x.png", make_video(), [], threshold=1.5)
    with pytest.raises(ValueError, match="max_tracks"):
        plot_timeline(tmp_path / "x.png", make_video(), [], max_tracks=0)
    assert not (tmp_path / "x.png").exists()
    assert matplotlib.rcParams._get_backend_or_none() == BACKEND_BEFORE  # noqa: SLF001


def test_title_in_a_script_the_default_font_lacks_draws_without_glyph_warnings(
    tmp_path: Path,
) -> None:
    """A CJK file name: drawn with an installed fallback font, or with '?' where no font
    has the characters -- never a 'Glyph ... missing' warning per character."""
    import dataclasses
    import warnings

    from socialav.io.plots import drawable_title

    text, families = drawable_title("会议 interview")
    if families is None:
        assert text == "?? interview"
    else:
        assert text == "会议 interview" and families[0] == "DejaVu Sans"
    video = dataclasses.replace(make_video(), video_id="会议_interview")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_timeline(tmp_path / "t.png", video, [make_scores(0, 0, 100, True)], threshold=0.5)
    assert png_size(tmp_path / "t.png")[0] > 0
    assert drawable_title("plain ascii") == ("plain ascii", None)
