"""The annotated video of write_outputs / DetectResult.write is capped in height by the
run's DetectConfig.video_max_short_side_px (recorded in run_info.settings) unless told
otherwise."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from media_factory import cut_clip

from socialav.io.media import probe_video
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.result import DetectResult, RunInfo


def _result(src: Path, settings: dict) -> DetectResult:
    """A result without faces (the video is written all the same)."""
    info = RunInfo(
        tasks=["asd"],
        model="lr-asd",
        weights={},
        backend="onnx",
        windows_s=[6.0],
        visual_context="window",
        probability="p",
        logits="l",
        segments={"threshold": 0.5},
        lam=None,
        ttm=None,
        scene_context=None,
        detect_every=3,
        num_shot_cuts=0,
        shot_cut_frames=[],
        num_face_detections=0,
        num_threads=1,
        device="cpu",
        settings=settings,
    )
    return DetectResult(probe_video(src), [], [], {}, info)


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.width, ctx.height


@pytest.fixture(scope="module")
def clip_720p(tmp_path_factory, videos_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("src")
    return cut_clip(videos_dir / "visualvoice_interview.mp4", folder / "clip.mp4", 8)


@pytest.mark.parametrize(
    ("settings", "argument", "expected"),
    [
        ({}, None, (854, 480)),  # nothing recorded: DetectConfig's default
        ({"config": {"video_max_short_side_px": 240}}, None, (426, 240)),  # the run's setting
        ({"config": {"video_max_short_side_px": 0}}, None, (1280, 720)),
        ({"config": {"video_max_short_side_px": 240}}, 0, (1280, 720)),  # told otherwise
        ({}, 360, (640, 360)),
    ],
)
def test_the_annotated_video_is_capped_by_the_run_setting(
    tmp_path, clip_720p, settings, argument, expected
):
    assert DetectConfig().video_max_short_side_px == 480
    result = _result(clip_720p, settings)
    paths = result.write(tmp_path, ["video"], video_max_short_side_px=argument)
    assert _size(paths["video"]) == expected


def test_a_negative_cap_is_refused():
    with pytest.raises(ValueError, match="video_max_short_side_px must be ≥ 0"):
        DetectConfig(video_max_short_side_px=-1)
