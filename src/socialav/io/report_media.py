"""Which video the HTML report plays, and the face thumbnails it shows (cut from the video).

Browsers decode few codecs (:func:`browser_playable`); the page links the video by a URL
relative to its own folder (:func:`video_href`); one small JPEG per face track is cut with one
seek each (:func:`track_thumbnails`).
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CODEC_NAMES",
    "PLAYABLE_CONTAINERS",
    "PLAYABLE_VIDEO_CODECS",
    "browser_playable",
    "codec_name",
    "track_thumbnails",
    "video_href",
]

#: Video codecs (FFmpeg decoder names) that Chromium and Firefox both decode in ``<video>``.
#: HEVC is left out: Firefox and Chromium without hardware decoding cannot play it.
PLAYABLE_VIDEO_CODECS = frozenset({"h264", "vp8", "vp9", "av1", "theora"})
#: Containers both browsers open (MPEG-PS/TS, AVI, FLV, Matroska/MKV are not reliable).
PLAYABLE_CONTAINERS = frozenset({".mp4", ".m4v", ".mov", ".webm", ".ogv", ".ogg"})
CODEC_NAMES = {
    "h264": "H.264",
    "hevc": "HEVC (H.265)",
    "mpeg1video": "MPEG-1 video",
    "mpeg2video": "MPEG-2 video",
    "mpeg4": "MPEG-4 Part 2",
    "msmpeg4v3": "MS MPEG-4 v3",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "prores": "Apple ProRes",
    "mjpeg": "Motion JPEG",
    "wmv3": "WMV 9",
    "vc1": "VC-1",
    "theora": "Theora",
}
THUMBNAIL_HEIGHT_PX = 96
#: Extra decoding allowed when choosing a thumbnail frame: 8 frames (a third of a second) more
#: than the track's cheapest detection frame (see :func:`track_thumbnails`).
THUMBNAIL_EXTRA_DECODE_FRAMES = 8


def browser_playable(video_codec: str | None, path_or_href: str | os.PathLike[str] | None) -> bool:
    """Whether Chromium and Firefox can play a file with this codec and file suffix.

    ``video_codec`` is the FFmpeg decoder name of the JSON's ``video.video_codec``. An
    unknown (empty) codec counts as playable: the page then tries it and falls back at run
    time. HEVC, MPEG-1/2 (GRID ``.mpg``), MPEG-4 Part 2 and others are not playable.
    """
    if path_or_href is None:
        return False
    suffix = Path(urllib.parse.unquote(os.fspath(path_or_href))).suffix.lower()
    if suffix not in PLAYABLE_CONTAINERS:
        return False
    return not video_codec or video_codec in PLAYABLE_VIDEO_CODECS


def video_href(video_path: str | os.PathLike[str], report_dir: str | os.PathLike[str]) -> str:
    """URL of a video relative to the folder of the report (percent-encoded, ``/``-separated).

    Where no relative path exists (another drive on Windows) it is an absolute ``file://``
    URI.
    """
    target = Path(os.path.abspath(video_path))
    try:
        rel = os.path.relpath(target, os.path.abspath(report_dir))
    except ValueError:
        return target.as_uri()
    return urllib.parse.quote(rel.replace(os.sep, "/"))


def _thumbnail_row(track: Mapping[str, Any], keyframes_s: np.ndarray, fps: float) -> int:
    """Row of a track to show as its thumbnail: a big face that is cheap to decode.

    Candidates are the detection frames (all frames if none). Decoding a frame costs the
    frames from the keyframe before it; among the candidates within
    :data:`THUMBNAIL_EXTRA_DECODE_FRAMES` of the cheapest, the one with the largest box wins.
    """
    boxes = np.asarray(track["boxes_xyxy_px"], dtype=np.float64)
    detected = np.asarray(track.get("detected") or [True] * len(boxes), dtype=bool)
    rows = np.flatnonzero(detected) if detected.any() else np.arange(len(boxes))
    times = (int(track["start_frame"]) + rows) / fps
    if len(keyframes_s):
        before = np.searchsorted(keyframes_s, times + 1e-6, side="right") - 1
        key = np.where(before >= 0, keyframes_s[np.maximum(before, 0)], 0.0)
        cost = np.round((times - key) * fps)
    else:
        cost = times * fps
    cheap = rows[cost <= cost.min() + THUMBNAIL_EXTRA_DECODE_FRAMES]
    area = (boxes[cheap, 2] - boxes[cheap, 0]) * (boxes[cheap, 3] - boxes[cheap, 1])
    return int(cheap[int(np.argmax(area))])


def track_thumbnails(
    video_path: str | os.PathLike[str],
    record: Mapping[str, Any],
    track_ids: Sequence[int],
    *,
    height_px: int = THUMBNAIL_HEIGHT_PX,
    margin: float = 0.25,
    jpeg_quality: int = 80,
) -> dict[int, bytes]:
    """A small JPEG of the face of each face track, cut from the video with one seek each.

    The frame is chosen by :func:`_thumbnail_row` (a large detected face near a keyframe);
    the crop is the box grown by ``margin`` of its size on every side, clipped to the frame,
    scaled to ``height_px`` high (OpenCV ``INTER_AREA``) and JPEG-encoded.

    Args:
        video_path: the analysed video (frames on the analysis timeline of the record).
        record: the detect record.
        track_ids: tracks to cut.

    Returns:
        track id → JPEG bytes.

    Raises:
        socialav.io.media.MediaError: the video cannot be decoded.
        KeyError: a track id that is not in the record.
    """
    import cv2

    from socialav.io.media import keyframe_times_s, read_frames_at

    if not track_ids:
        return {}
    fps = float(record["video"]["fps"])
    by_id = {int(t["track_id"]): t for t in record["tracks"]}
    keyframes = keyframe_times_s(video_path)
    picks = []
    for tid in track_ids:
        track = by_id[int(tid)]
        row = _thumbnail_row(track, keyframes, fps)
        picks.append(
            (int(tid), (int(track["start_frame"]) + row) / fps, track["boxes_xyxy_px"][row])
        )
    frames = read_frames_at(video_path, [t for _, t, _ in picks], pixel_format="bgr24")
    out = {}
    for (tid, _, box), frame in zip(picks, frames, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        h, w = frame.shape[:2]
        xa, xb = int(max(0, math.floor(x1 - mx))), int(min(w, math.ceil(x2 + mx)))
        ya, yb = int(max(0, math.floor(y1 - my))), int(min(h, math.ceil(y2 + my)))
        if xb - xa < 2 or yb - ya < 2:
            continue
        crop = frame[ya:yb, xa:xb]
        scale = height_px / crop.shape[0]
        size = (max(1, round(crop.shape[1] * scale)), height_px)
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if ok:
            out[tid] = jpeg.tobytes()
    return out


def codec_name(codec: str | None) -> str:
    """A reader's name for an FFmpeg decoder name (``mpeg1video`` → ``MPEG-1 video``)."""
    return CODEC_NAMES.get(codec or "", codec or "unknown codec")
