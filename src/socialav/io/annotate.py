"""Annotated copy of a video: face boxes coloured by speaking state, scores, badges.

The frames are streamed: the source is decoded on the 25 fps analysis timeline as yuv420p
pictures at the output size (``socialav.io.media.iter_i420_frames``), each is drawn on where
its overlays fall and handed to the H.264 encoder at once, and the source's audio packets
are interleaved as the video advances. Nothing holds more than one frame.

Timing: frame ``k`` of the analysis timeline is at ``k / fps`` seconds after the first
decoded video frame of the source (see :mod:`socialav.types`). The annotated video places it
at ``t0 + k / fps`` where ``t0`` is that first frame's time in the source, and the audio
keeps its source timestamps, so audio and video stay exactly as synchronised as they were
in the source (a source whose audio starts 30 ms before its video gives an output whose
audio starts 30 ms before its video).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av
import cv2
import numpy as np

from socialav.io.atomic import atomic_output_path
from socialav.io.media import I420_INTERPOLATION, i420_planes, iter_i420_frames, plane_view
from socialav.types import FaceTrack, TrackScores, VideoInfo

logger = logging.getLogger(__name__)

#: Audio codecs that MP4 carries and common players decode; these are copied packet by
#: packet (no re-encoding). Anything else is transcoded to AAC.
MP4_COPYABLE_AUDIO_CODECS: frozenset[str] = frozenset(
    {"aac", "mp3", "mp3float", "ac3", "eac3", "alac"}
)
#: Badge text for known extra series (``TrackScores.extra``); others use their name.
DEFAULT_BADGE_LABELS: Mapping[str, str] = {"lam": "looking at me", "ttm": "to me"}

SPEAKING_RGB = (0, 230, 0)
SILENT_RGB = (230, 0, 0)
BADGE_RGB = (255, 200, 0)


def annotated_size(width_px: int, height_px: int, max_short_side_px: int | None) -> tuple[int, int]:
    """``(width, height)`` of the annotated video of a ``width_px x height_px`` (upright)
    source.

    A source whose shorter side exceeds ``max_short_side_px`` is scaled down so that its
    shorter side is that (rounded down to even; "480p" in the video sense, so 1280x720 gives
    854x480 and a 1080x1920 phone video 480x854), the other side scaled by the same factor
    and rounded to the nearest even number (at least 2): the aspect ratio is kept to within
    one pixel. A source at or below the cap (or any source when ``max_short_side_px`` is None
    or 0) keeps its size, an odd side made one pixel longer (4:2:0 needs even sizes).

    Raises:
        ValueError: a negative ``max_short_side_px``.
    """
    cap = max_short_side_px
    if cap is not None and cap < 0:
        raise ValueError(f"max_short_side_px must be >= 0 (0: source size), but got {cap}")
    short, long_ = min(width_px, height_px), max(width_px, height_px)
    if not cap or short <= cap:
        return width_px + width_px % 2, height_px + height_px % 2
    out_short = max(2, cap - cap % 2)
    out_long = max(2, 2 * round(long_ * out_short / short / 2))
    return (out_long, out_short) if width_px >= height_px else (out_short, out_long)


@dataclass
class _FaceOverlay:
    box_xyxy_px: np.ndarray
    track_id: int
    probability: float
    badges: list[str] = field(default_factory=list)
    looking: bool = False


@dataclass(frozen=True)
class AnnotatedVideoResult:
    """What :func:`write_annotated_video` wrote.

    Attributes:
        path: the output file.
        num_frames: video frames encoded.
        width_px, height_px: encoded frame size (odd sizes padded to even; scaled down to
            ``max_short_side_px`` when the source is higher).
        has_audio: whether an audio stream was written.
        audio_copied: True if audio packets were copied, False if transcoded to AAC.
    """

    path: str
    num_frames: int
    width_px: int
    height_px: int
    has_audio: bool
    audio_copied: bool


class _OverlayCursor:
    """Faces to draw at each frame, found while walking the timeline forwards.

    Holds only the face tracks active at the current frame (no per-frame table), so memory
    does not grow with video length. Joins on ``track_id`` and frame index.
    """

    def __init__(
        self,
        tracks: Sequence[FaceTrack],
        scores: Sequence[TrackScores],
        badge_threshold: float,
        badge_labels: Mapping[str, str],
    ) -> None:
        tracks_by_id = {t.track_id: t for t in tracks}
        entries = []
        for score in scores:
            track = tracks_by_id.get(score.track_id)
            if track is None:
                raise ValueError(
                    f"TrackScores for track_id {score.track_id} has no FaceTrack; "
                    f"known track ids: {sorted(tracks_by_id)}"
                )
            if len(score.frame_indices) == 0:
                continue
            rows = score.frame_indices - track.start_frame
            if ((rows < 0) | (rows >= len(track))).any():
                raise ValueError(
                    f"TrackScores for track_id {score.track_id} has frames outside its face "
                    f"track (frames {track.start_frame}..{track.end_frame})"
                )
            order = np.argsort(score.frame_indices, kind="stable")
            entries.append((track, score, order, score.frame_indices[order]))
        entries.sort(key=lambda e: int(e[3][0]))
        self._pending = entries
        self._active: list[tuple[FaceTrack, TrackScores, np.ndarray, np.ndarray]] = []
        self._badge_threshold = badge_threshold
        self._badge_labels = badge_labels
        self._last_frame = -1

    def faces_at(self, frame_index: int) -> list[_FaceOverlay]:
        """Faces at ``frame_index``; frame indices must be requested in increasing order."""
        if frame_index <= self._last_frame:
            raise ValueError(
                f"frame indices must increase, but got {frame_index} after {self._last_frame}"
            )
        self._last_frame = frame_index
        while self._pending and int(self._pending[0][3][0]) <= frame_index:
            self._active.append(self._pending.pop(0))
        self._active = [e for e in self._active if int(e[3][-1]) >= frame_index]
        faces = []
        for track, score, order, sorted_frames in self._active:
            pos = int(np.searchsorted(sorted_frames, frame_index))
            if pos >= len(sorted_frames) or sorted_frames[pos] != frame_index:
                continue
            i = int(order[pos])
            badges = []
            looking = False
            for name, series in score.extra.items():
                if float(series[i]) >= self._badge_threshold:
                    badges.append(self._badge_labels.get(name, name))
                    looking = looking or name == "lam"
            faces.append(
                _FaceOverlay(
                    box_xyxy_px=track.boxes_xyxy_px[frame_index - track.start_frame],
                    track_id=track.track_id,
                    probability=float(score.probabilities[i]),
                    badges=badges,
                    looking=looking,
                )
            )
        return faces


_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class _Chip:
    """A text chip placed on a picture: a filled rectangle from ``(x, top)`` to
    ``(right, bottom)`` (inclusive, pixels) with ``text`` inside it."""

    text: str
    color: tuple[int, int, int]
    x: int
    top: int
    right: int
    bottom: int
    pad: int
    baseline: int
    scale: float
    thickness: int


@functools.lru_cache(maxsize=4096)
def _text_size(text: str, scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    """``cv2.getTextSize`` of ``text`` in the chips' font (labels repeat from frame to frame)."""
    (width, height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    return (width, height), baseline


def _place_chip(
    text: str,
    x: int,
    y_bottom: int,
    color: tuple[int, int, int],
    scale: float,
    thickness: int,
    height_px: int,
    width_px: int,
) -> _Chip:
    """Where the chip of ``text`` whose lower-left corner is ``(x, y_bottom)`` lies on a
    ``width_px x height_px`` picture, moved inside it where it would stick out."""
    (tw, th), baseline = _text_size(text, scale, thickness)
    pad = max(2, th // 4)
    x = min(max(int(x), 0), max(0, width_px - tw - 2 * pad))
    y_bottom = min(max(int(y_bottom), th + baseline + 2 * pad), height_px)
    top = y_bottom - th - baseline - 2 * pad
    return _Chip(text, color, x, top, x + tw + 2 * pad, y_bottom, pad, baseline, scale, thickness)


@dataclass(frozen=True)
class _FaceDrawing:
    """Everything drawn for one face: its box (``box_xyxy_px`` rounded, ``color``, line
    ``thickness``), its chips (the label first, then the badges) and the eye marker
    (``eye``: centre x, centre y, radius; ``None`` when not looking)."""

    box_xyxy_px: tuple[int, int, int, int]
    color: tuple[int, int, int]
    thickness: int
    chips: tuple[_Chip, ...]
    eye: tuple[int, int, int] | None

    def extents(self) -> list[tuple[int, int, int, int]]:
        """``(x0, y0, x1, y1)`` rectangles (inclusive, may reach outside the picture) that
        hold every pixel this drawing touches: the four sides of the box, each chip, the
        eye marker. The face inside the box is in none of them."""
        x1, y1, x2, y2 = self.box_xyxy_px
        t = self.thickness  # cv2.rectangle centres a line of width t on each side
        out = [
            (x1 - t, y1 - t, x2 + t, y1 + t),
            (x1 - t, y2 - t, x2 + t, y2 + t),
            (x1 - t, y1 - t, x1 + t, y2 + t),
            (x2 - t, y1 - t, x2 + t, y2 + t),
        ]
        out += [(c.x, c.top, c.right, c.bottom) for c in self.chips]
        if self.eye is not None:
            cx, cy, r = self.eye
            out.append((cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1))
        return out


def _lay_out(face: _FaceOverlay, threshold: float, height_px: int, width_px: int) -> _FaceDrawing:
    """Place the box, label, badges and eye marker of ``face`` on a ``width_px x
    height_px`` picture (sizes from its short side, as at any size): the box green when the
    speaking probability is ``>= threshold``, red otherwise, the label ``#<track_id>
    <probability>`` above it; badge chips at the bottom of the box, an eye marker for
    ``lam``."""
    short_side = min(height_px, width_px)
    thickness = max(2, round(short_side / 180))
    scale = max(0.4, short_side / 900)
    text_thickness = max(1, round(short_side / 500))
    x1, y1, x2, y2 = (int(round(float(v))) for v in face.box_xyxy_px)
    color = SPEAKING_RGB if face.probability >= threshold else SILENT_RGB
    left = x1 - thickness // 2
    label = f"#{face.track_id} {face.probability:.2f}"
    chips = [
        _place_chip(
            label, left, y1 - thickness // 2, color, scale, text_thickness, height_px, width_px
        )
    ]
    y_bottom = y2 + thickness // 2
    for badge in face.badges:
        chip = _place_chip(
            badge, left, y_bottom, BADGE_RGB, scale * 0.8, text_thickness, height_px, width_px
        )
        chips.append(chip)
        y_bottom -= chip.bottom - chip.top + 2
    eye = None
    if face.looking:
        radius = max(6, round((x2 - x1) / 10))
        eye = (x2 - radius - thickness, y1 + radius + thickness, radius)
    return _FaceDrawing((x1, y1, x2, y2), color, thickness, tuple(chips), eye)


def _draw(image: np.ndarray, drawing: _FaceDrawing) -> None:
    """Draw one face's box, chips and eye marker in place on an RGB uint8 image."""
    x1, y1, x2, y2 = drawing.box_xyxy_px
    cv2.rectangle(image, (x1, y1), (x2, y2), drawing.color, drawing.thickness)
    for chip in drawing.chips:
        cv2.rectangle(image, (chip.x, chip.top), (chip.right, chip.bottom), chip.color, -1)
        text_rgb = (0, 0, 0) if sum(chip.color) > 380 else (255, 255, 255)
        origin = (chip.x + chip.pad, chip.bottom - chip.baseline - chip.pad)
        cv2.putText(
            image, chip.text, origin, _FONT, chip.scale, text_rgb, chip.thickness, cv2.LINE_AA
        )
    if drawing.eye is not None:  # an almond outline and a pupil
        cx, cy, radius = drawing.eye
        axes = (radius, max(2, radius // 2))
        cv2.ellipse(image, (cx, cy), axes, 0, 0, 360, BADGE_RGB, -1)
        cv2.ellipse(image, (cx, cy), axes, 0, 0, 360, (0, 0, 0), 1)
        cv2.circle(image, (cx, cy), max(1, radius // 3), (0, 0, 0), -1)


class _I420Painter:
    """Draws the overlays on the planes of a 4:2:0 picture without converting the whole
    picture: per face, only the rectangles its drawing touches (:meth:`_FaceDrawing.extents`:
    the box's sides, the chips, the eye marker; even-aligned, 2 px margin) go to RGB, are
    drawn on as :func:`_draw` would draw on a full RGB frame (same sizes, same clipping), and
    go back to 4:2:0. Every other pixel, the face inside its box among them, stays the
    decoder's bytes. Conversions: OpenCV's BT.601 ``I420`` <-> RGB (the matrix FFmpeg's
    swscale uses by default).
    """

    def __init__(self, height_px: int, width_px: int) -> None:
        if height_px % 2 or width_px % 2:
            raise ValueError(f"4:2:0 needs even sizes, got {width_px}x{height_px}")
        self.h, self.w = height_px, width_px
        self.rgb = np.zeros((height_px, width_px, 3), np.uint8)

    def _regions(self, drawing: _FaceDrawing) -> list[tuple[int, int, int, int]]:
        """The even-aligned ``[x0, x1) x [y0, y1)`` regions to redraw, inside the picture."""
        regions = []
        for ex0, ey0, ex1, ey1 in drawing.extents():
            x0, y0 = max(0, (ex0 - 2) // 2 * 2), max(0, (ey0 - 2) // 2 * 2)
            x1, y1 = min(self.w, (ex1 + 4) // 2 * 2), min(self.h, (ey1 + 4) // 2 * 2)
            if x0 < x1 and y0 < y1:
                regions.append((x0, y0, x1, y1))
        return regions

    def draw(
        self,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray],
        faces: Iterable[_FaceOverlay],
        threshold: float,
    ) -> None:
        """Draw ``faces`` in place on a 4:2:0 picture given as its Y ``(H, W)``, U and V
        ``(H/2, W/2)`` uint8 planes (writable views, rows may be padded:
        :func:`socialav.io.media.plane_view`)."""
        for face in faces:
            drawing = _lay_out(face, threshold, self.h, self.w)
            regions = self._regions(drawing)
            for x0, y0, x1, y1 in regions:
                self.rgb[y0:y1, x0:x1] = cv2.cvtColor(
                    _i420_region(planes, x0, y0, x1, y1), cv2.COLOR_YUV2RGB_I420
                )
            _draw(self.rgb, drawing)
            for x0, y0, x1, y1 in regions:
                back = cv2.cvtColor(
                    np.ascontiguousarray(self.rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2YUV_I420
                )
                rh, rw = y1 - y0, x1 - x0
                for src, dst in zip(
                    i420_planes(back, rh, rw), _plane_cuts(planes, x0, y0, x1, y1), strict=True
                ):
                    dst[...] = src


def _plane_cuts(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray], x0: int, y0: int, x1: int, y1: int
) -> list[np.ndarray]:
    """Views of the even-aligned region ``[x0, x1) x [y0, y1)`` in each plane (the chroma
    planes' rows and columns at half size)."""
    luma, u, v = planes
    half = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    return [luma[y0:y1, x0:x1], u[half], v[half]]


def _i420_region(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray], x0: int, y0: int, x1: int, y1: int
) -> np.ndarray:
    """The region ``[x0, x1) x [y0, y1)`` (even-aligned) as a new ``(3h/2, w)`` I420 buffer."""
    rh, rw = y1 - y0, x1 - x0
    region = np.empty((rh * 3 // 2, rw), np.uint8)
    for dst, src in zip(
        i420_planes(region, rh, rw), _plane_cuts(planes, x0, y0, x1, y1), strict=True
    ):
        dst[...] = src
    return region


def _first_video_frame_time_s(container: av.container.InputContainer) -> float:
    """Source time (s) of the first decoded video frame: zero of the analysis timeline."""
    stream = container.streams.video[0]
    for frame in container.decode(stream):
        if frame.time is not None:  # as socialav.io.media.iter_frames: skip untimed frames
            return float(frame.time)
    if stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


class _AudioPump:
    """Moves the source's audio into the output, lazily, up to a given time.

    Either copies packets (MP4-compatible codecs) or decodes and re-encodes to AAC.
    Packets are kept if they start before the end of the last written video frame.
    """

    def __init__(
        self,
        source: av.container.InputContainer,
        output: av.container.OutputContainer,
        copy: bool,
    ) -> None:
        self.in_stream = source.streams.audio[0]
        self.output = output
        self.copy = copy
        self._done = False
        if copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
            self._packets: Iterator[av.Packet] = source.demux(self.in_stream)
        else:
            ctx = self.in_stream.codec_context
            rate = ctx.sample_rate or 48000
            layout = ctx.layout.name if ctx.layout.nb_channels <= 2 else "stereo"
            self.out_stream = output.add_stream("aac", rate=rate, layout=layout)
            self._frames: Iterator[av.AudioFrame] = source.decode(self.in_stream)
        self._pending: list[av.Packet] = []

    def _next_packets(self) -> list[av.Packet]:
        if self.copy:
            for packet in self._packets:
                if packet.dts is None:  # demuxer flush packet
                    continue
                return [packet]
            return []
        for frame in self._frames:
            packets = self.out_stream.encode(frame)
            if packets:
                return list(packets)
        return []

    @staticmethod
    def _time_s(packet: av.Packet) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        return float(ts * packet.time_base)

    def pump_until(self, time_s: float) -> None:
        """Mux audio packets that start before ``time_s`` seconds (source timeline)."""
        while not self._done:
            if not self._pending:
                self._pending = self._next_packets()
                if not self._pending:
                    self._done = True
                    break
            if self._time_s(self._pending[0]) >= time_s:
                return
            packet = self._pending.pop(0)
            packet.stream = self.out_stream
            self.output.mux(packet)

    def finish(self, end_s: float) -> None:
        """Mux what starts before ``end_s``, then flush the AAC encoder if transcoding."""
        self.pump_until(end_s)
        if not self.copy:
            for packet in self.out_stream.encode(None):
                if self._time_s(packet) < end_s:
                    self.output.mux(packet)


def _rgb_pictures(
    frames: Iterable[tuple[int, np.ndarray]], video: VideoInfo, width_px: int, height_px: int
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Caller-given RGB frames as new yuv420p pictures of ``width_px x height_px`` (swscale,
    as :func:`socialav.io.media.iter_i420_frames` scales decoded ones)."""
    for frame_index, rgb in frames:
        if rgb.dtype != np.uint8 or rgb.shape != (video.height_px, video.width_px, 3):
            raise ValueError(
                f"expected RGB frames of shape ({video.height_px}, {video.width_px}, 3) "
                f"uint8 (VideoInfo size), but frame {frame_index} has shape {rgb.shape} "
                f"{rgb.dtype}"
            )
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        yield (
            frame_index,
            picture.reformat(
                width=width_px, height=height_px, format="yuv420p", interpolation=I420_INTERPOLATION
            ),
        )


def write_annotated_video(
    path: str | os.PathLike[str],
    video_path: str | os.PathLike[str],
    video: VideoInfo,
    tracks: Sequence[FaceTrack],
    scores: Sequence[TrackScores],
    *,
    frames: Iterable[tuple[int, np.ndarray]] | None = None,
    threshold: float = 0.5,
    badge_threshold: float = 0.5,
    badge_labels: Mapping[str, str] | None = None,
    include_audio: bool = True,
    preset: str = "ultrafast",
    crf: int = 28,
    max_short_side_px: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnnotatedVideoResult:
    """Write an H.264 MP4 of the video with every face track drawn on it.

    Each scored face is boxed in green when its speaking probability is ``>= threshold``
    and in red otherwise, with ``#<track_id> <probability>`` above the box; extra per-frame
    series (``TrackScores.extra``, e.g. ``lam``, ``ttm``) at or above ``badge_threshold``
    add badges ("looking at me" with an eye marker, "to me"). Faces are joined to frames by
    frame index on the analysis timeline.

    Video: libx264, yuv420p, ``video.fps`` frames per second, one output frame per input
    frame, placed at ``t0 + frame_index / fps`` (``t0``: time of the source's first video
    frame). A source whose shorter side exceeds ``max_short_side_px`` is scaled down to it,
    aspect ratio kept (:func:`annotated_size`); an odd width or height is scaled to the even
    size above it (4:2:0 needs even sizes); portrait video stays portrait. Each frame is
    converted and scaled to a yuv420p picture by FFmpeg's swscale in one step
    (:func:`socialav.io.media.iter_i420_frames`, area averaging), the overlays are drawn at
    the output size (face boxes scaled with pixel centres aligned; line widths and text sized
    from the output's short side, as at any size) on the regions they touch
    (:class:`_I420Painter`), and the picture goes to the encoder as it is. ``preset``,
    ``crf`` and ``max_short_side_px`` trade speed for file size and detail
    (``python benchmarks/bench_annotate.py``, ``docs/speed.md``): ``ultrafast`` at crf 28
    (the default) against ``superfast`` or ``veryfast`` at crf 23 gave 18 % larger files
    and the faces alike; 480p against 720p, 37 % smaller files.

    Audio: the source's first audio stream, with its source timestamps (so the sync is the
    source's), cut after the last video frame. AAC/MP3/AC-3/E-AC-3/ALAC packets are copied
    without re-encoding; other codecs (MP2, PCM, Opus, Vorbis, ...) are transcoded to AAC.
    No audio stream is written when the source has none or ``include_audio`` is False.

    The output is written to a temporary file beside ``path`` and renamed when complete.

    Args:
        path: output ``.mp4`` file.
        video_path: the source video (for its audio and for ``t0``).
        video: what the decoder found in the source; frames must be ``height_px x width_px``.
        tracks: face tracks (``boxes_xyxy_px`` in pixels of the decoded frame).
        scores: per-frame speaking probabilities (and extra series) per track.
        frames: ``(frame_index, rgb)`` pairs on the analysis timeline, ``rgb`` a
            ``(height_px, width_px, 3)`` uint8 array, frame indices strictly increasing
            (converted and scaled by swscale as decoded frames are). Default: the source
            decoded on the ``video.fps`` timeline
            (:func:`socialav.io.media.iter_i420_frames`).
        threshold: speaking threshold on the probability.
        badge_threshold: threshold on the extra series for drawing a badge.
        badge_labels: badge text per extra series name (default
            :data:`DEFAULT_BADGE_LABELS`).
        include_audio: mux the source audio.
        preset, crf: libx264 options.
        max_short_side_px: scale sources whose shorter side exceeds this down so that it is
            this (``None`` or 0: the source size).
        progress: called as ``progress(frames_done, video.num_frames)`` after each frame.

    Returns:
        What was written (:class:`AnnotatedVideoResult`).

    Raises:
        ValueError: a frame of the wrong shape/dtype, non-increasing frame indices, no
            frames at all, scores that do not join to the tracks, or a negative
            ``max_short_side_px``.
        FileNotFoundError: ``video_path`` does not exist.
    """
    if not os.path.exists(video_path):
        raise FileNotFoundError(f"source video not found: {video_path}")
    labels = dict(DEFAULT_BADGE_LABELS if badge_labels is None else badge_labels)
    overlays = _OverlayCursor(tracks, scores, badge_threshold, labels)
    width_px, height_px = annotated_size(video.width_px, video.height_px, max_short_side_px)
    scaled = (width_px, height_px) != (video.width_px, video.height_px)
    # face boxes: source pixel -> output pixel, pixel centres aligned as cv2.resize aligns them
    box_scale = np.array([width_px / video.width_px, height_px / video.height_px] * 2)
    box_shift = 0.5 * box_scale - 0.5

    def faces_at(frame_index: int) -> list[_FaceOverlay]:
        faces = overlays.faces_at(frame_index)
        if not scaled:
            return faces
        return [
            dataclasses.replace(f, box_xyxy_px=f.box_xyxy_px * box_scale + box_shift) for f in faces
        ]

    # Every frame becomes a new yuv420p picture at the output size (swscale converts and
    # scales in one step) and is drawn on region by region (_I420Painter): the encoder gets
    # the decoder's planes without a whole-frame RGB round trip.
    if frames is None:
        pictures = iter_i420_frames(video_path, width_px, height_px, fps=video.fps)
    else:
        pictures = _rgb_pictures(frames, video, width_px, height_px)
    painter = _I420Painter(height_px, width_px)

    rate = Fraction(video.fps).limit_denominator(1001)
    # Fine time base so that t0 (any source time) and k / fps are both (nearly) exact.
    ticks_per_frame = 1000
    time_base = Fraction(1, 1) / (rate * ticks_per_frame)

    with contextlib.ExitStack() as stack:
        source = stack.enter_context(av.open(os.fspath(video_path)))
        if not source.streams.video:
            raise ValueError(f"expected a video stream in {video_path}, but found none")
        t0_s = _first_video_frame_time_s(source)
        t0_ticks = round(t0_s / time_base)
        audio_source = None
        if include_audio:
            audio_source = stack.enter_context(av.open(os.fspath(video_path)))
            if not audio_source.streams.audio:
                audio_source = None
        tmp_path = stack.enter_context(atomic_output_path(path))
        output = stack.enter_context(
            av.open(os.fspath(tmp_path), "w", format="mp4", options={"movflags": "+faststart"})
        )
        v_out = output.add_stream("libx264", rate=rate)
        v_out.width, v_out.height, v_out.pix_fmt = width_px, height_px, "yuv420p"
        v_out.codec_context.time_base = time_base
        v_out.options = {"preset": preset, "crf": str(crf)}

        audio = None
        audio_copied = False
        if audio_source is not None:
            codec_name = audio_source.streams.audio[0].codec_context.name
            audio_copied = codec_name in MP4_COPYABLE_AUDIO_CODECS
            audio = _AudioPump(audio_source, output, copy=audio_copied)
            logger.debug("audio %s: %s", codec_name, "copied" if audio_copied else "to AAC")

        frame_time = float(time_base * ticks_per_frame)
        last_index = -1
        n_written = 0
        for frame_index, out_frame in pictures:
            frame_index = int(frame_index)
            if frame_index <= last_index:
                raise ValueError(
                    f"frame indices must increase, but got {frame_index} after {last_index}"
                )
            luma, u, v = (plane_view(p) for p in out_frame.planes)
            painter.draw((luma, u, v), faces_at(frame_index), threshold)
            last_index = frame_index
            out_frame.pts = t0_ticks + frame_index * ticks_per_frame
            out_frame.time_base = time_base
            if audio is not None:
                audio.pump_until(t0_s + frame_index * frame_time)
            for packet in v_out.encode(out_frame):
                output.mux(packet)
            n_written += 1
            if progress is not None:
                progress(n_written, video.num_frames)
        if n_written == 0:
            raise ValueError(f"expected at least one frame to annotate from {video_path}")
        for packet in v_out.encode(None):
            output.mux(packet)
        if audio is not None:
            audio.finish(t0_s + (last_index + 1) * frame_time)
    logger.info("annotated video: %d frames -> %s", n_written, path)
    return AnnotatedVideoResult(
        path=os.fspath(path),
        num_frames=n_written,
        width_px=width_px,
        height_px=height_px,
        has_audio=audio is not None,
        audio_copied=audio is not None and audio_copied,
    )
