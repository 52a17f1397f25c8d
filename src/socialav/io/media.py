"""Decode video frames on a fixed-rate timeline and audio as 16 kHz mono, with PyAV.

No system ffmpeg is needed: PyAV's wheels carry the decoders and ``libswresample``.

Timeline. Time 0 is the presentation time of the first decoded video frame. Frame ``k`` of
the analysis timeline is the source frame whose presentation time is nearest to ``k / fps``
(ties go to the earlier frame), so 30 fps or variable-frame-rate input is resampled to
25 fps by timestamp, like ffmpeg's ``fps`` filter (``-r 25`` in the TalkNet/Light-ASD demos).
Audio sample 0 is at the same time 0, so audio and video stay in sync when the audio stream
starts earlier or later than the video stream.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, VideoInfo

logger = logging.getLogger(__name__)

__all__ = [
    "MediaError",
    "NoAudioStreamError",
    "SEEK_MARGIN_S",
    "SEEK_MIN_S",
    "iter_frames",
    "iter_i420_frames",
    "plane_view",
    "iter_frames_at_times",
    "open_container",
    "probe_video",
    "read_audio",
    "first_frame_time_s",
    "keyframe_times_s",
    "read_frames_at",
]


class MediaError(RuntimeError):
    """A media file could not be decoded as the pipeline needs it (message says why)."""


class NoAudioStreamError(MediaError):
    """The video has no audio stream, so active speaker detection cannot run on it."""


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file with PyAV for reading (close it, or use it as a context manager).

    Raises:
        MediaError: no such file, a folder, or a file FFmpeg cannot open (the message says
            which and names the file).
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: expected a video file, found a directory")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(
            f"{path}: expected a video file that FFmpeg can read, but opening it failed "
            f"({exc.__class__.__name__}: {exc}); is it a video, and is it complete?"
        ) from exc


def _stream_start_s(stream: av.stream.Stream) -> float | None:
    if stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


def _rotation_k(frame: av.VideoFrame) -> int:
    """Number of counter-clockwise quarter turns that bring a frame upright.

    FFmpeg's display matrix gives the counter-clockwise angle by which the stored picture was
    rotated; ffmpeg's ``autorotate`` undoes it. ``np.rot90(img, k)`` rotates counter-clockwise
    by ``k`` quarter turns.
    """
    angle = int(round(getattr(frame, "rotation", 0) or 0)) % 360
    return {0: 0, 90: 1, 180: 2, 270: 3}.get(angle, 0)


def _declared_duration_s(
    container: av.container.InputContainer, vstream: av.stream.Stream, origin_s: float
) -> float | None:
    """Duration of the video stream that the container declares, from ``origin_s`` on."""
    if vstream.duration is not None and vstream.time_base is not None:
        end_s = (_stream_start_s(vstream) or 0.0) + float(vstream.duration * vstream.time_base)
        return max(end_s - origin_s, 0.0)
    if container.duration is not None:
        return max(container.duration / av.time_base - origin_s, 0.0)
    return None


def probe_video(path: str | Path, fps: float = ANALYSIS_FPS) -> VideoInfo:
    """Read a video's streams and geometry without decoding it all.

    Args:
        path: a media file readable by FFmpeg (MP4, MKV, MOV, AVI, MPEG, WebM ...).
        fps: frame rate of the analysis timeline.

    Returns:
        :class:`VideoInfo`; ``num_frames`` is the expected length of the ``fps`` timeline
        (``round(duration_s * fps)``), ``width_px``/``height_px`` are upright (after rotation).

    Raises:
        MediaError: the file does not exist, is not a media file, has no video stream, or its
            first frame cannot be decoded (truncated or corrupt).
    """
    path = Path(path)
    with open_container(path) as container:
        if not container.streams.video:
            found = ", ".join(s.type for s in container.streams) or "no streams"
            raise MediaError(f"{path}: expected a video stream, found {found}")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if container.streams.audio else None
        try:
            first = next(container.decode(vstream))
        except (StopIteration, av.error.FFmpegError) as exc:
            raise MediaError(
                f"{path}: the video stream has no decodable frame (truncated or corrupt file)"
            ) from exc
        k = _rotation_k(first)
        width, height = (first.width, first.height) if k % 2 == 0 else (first.height, first.width)
        rate = vstream.average_rate or vstream.guessed_rate or Fraction(int(fps))
        start_s = float(first.time) if first.time is not None else 0.0
        duration_s = _declared_duration_s(container, vstream, start_s)
        if duration_s is None:
            duration_s = (vstream.frames or 0) / float(rate)
        return VideoInfo(
            path=str(path),
            video_id=path.stem,
            width_px=int(width),
            height_px=int(height),
            source_fps=float(rate),
            duration_s=float(duration_s),
            num_frames=expected_num_frames(duration_s, fps),
            fps=float(fps),
            video_codec=vstream.codec_context.name,
            has_audio=astream is not None,
            audio_codec=astream.codec_context.name if astream is not None else None,
            audio_sample_rate=int(astream.rate) if astream is not None else None,
        )


class _NearestFrames:
    """Picks, for ascending target times, the decoded frame shown nearest to each (ties: the
    earlier frame) -- the one nearest-frame rule of every decoder here. Frames come in with
    their presentation time; only frames that are picked are converted to arrays, and only
    the previous frame is kept.

    Args:
        target: ``target(i)`` is the ``i``-th target time (s), or ``None`` after the last.
        image_of: converts a picked frame to its array.
    """

    def __init__(
        self,
        target: Callable[[int], float | None],
        image_of: Callable[[av.VideoFrame], np.ndarray],
    ) -> None:
        self.target, self.image_of = target, image_of
        self.index = 0
        self.prev: av.VideoFrame | None = None
        self.prev_t = 0.0
        self._prev_img: np.ndarray | None = None

    def _image(self) -> np.ndarray:
        if self._prev_img is None:
            self._prev_img = self.image_of(self.prev)
        return self._prev_img

    def push(self, frame: av.VideoFrame, t: float) -> Iterator[tuple[int, np.ndarray, float]]:
        """Take the next decoded frame (time ``t``); yield ``(i, image, frame_time)`` for the
        targets now known to be nearest to the previous frame."""
        if self.prev is not None:
            if t <= self.prev_t:  # non-increasing timestamps: keep the first frame
                return
            midpoint = 0.5 * (self.prev_t + t)
            while (when := self.target(self.index)) is not None and when <= midpoint + 1e-9:
                yield self.index, self._image(), self.prev_t
                self.index += 1
        self.prev, self.prev_t, self._prev_img = frame, t, None

    def rest(self, before_s: float = math.inf) -> Iterator[tuple[int, np.ndarray, float]]:
        """After the last frame: the remaining targets earlier than ``before_s`` get it."""
        while (when := self.target(self.index)) is not None and when < before_s - 1e-9:
            yield self.index, self._image(), self.prev_t
            self.index += 1

    def forget_previous(self) -> None:
        """After a seek: the next frame pushed starts a new run (no midpoint with the old)."""
        self.prev, self._prev_img = None, None

    @property
    def done(self) -> bool:
        """Every target has been yielded."""
        return self.target(self.index) is None


def i420_planes(
    buffer: np.ndarray, height_px: int, width_px: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(H, W)``, U and V ``(H/2, W/2)`` planes of a planar 4:2:0 picture
    stored as FFmpeg's (and OpenCV's ``I420``) ``(3H/2, W)`` uint8 buffer; writing to a view
    writes to the buffer (C-contiguous). ``H`` and ``W`` must be even."""
    flat = buffer.reshape(-1)
    n_y, n_c = height_px * width_px, (height_px // 2) * (width_px // 2)
    return (
        flat[:n_y].reshape(height_px, width_px),
        flat[n_y : n_y + n_c].reshape(height_px // 2, width_px // 2),
        flat[n_y + n_c : n_y + 2 * n_c].reshape(height_px // 2, width_px // 2),
    )


def _rotate_i420(buffer: np.ndarray, height_px: int, width_px: int, k: int) -> np.ndarray:
    """``np.rot90`` by ``k`` of a planar 4:2:0 picture (:func:`i420_planes`), plane by
    plane."""
    planes = i420_planes(buffer, height_px, width_px)
    out = np.concatenate([np.rot90(p, k).reshape(-1) for p in planes])
    new_w = height_px if k % 2 else width_px
    return out.reshape(-1, new_w)


def _upright(pixel_format: str) -> Callable[[av.VideoFrame], np.ndarray]:
    def image_of(frame: av.VideoFrame) -> np.ndarray:
        img = frame.to_ndarray(format=pixel_format)
        k = _rotation_k(frame)
        if not k:
            return img
        if pixel_format == "yuv420p":
            return _rotate_i420(img, frame.height, frame.width, k)
        return np.ascontiguousarray(np.rot90(img, k))

    return image_of


def _video_stream(container: av.container.InputContainer, path: Path) -> av.stream.Stream:
    if not container.streams.video:
        raise MediaError(f"{path}: expected a video stream, found none")
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO"
    return vstream


def _timeline(
    path: Path,
    fps: float,
    image_of: Callable[[av.VideoFrame], Any],
    threads: int,
) -> Iterator[tuple[int, Any]]:
    """The decode loop of :func:`iter_frames` and :func:`iter_i420_frames`: ``(k, image)``
    for ``k = 0, 1, ...`` on the ``fps`` timeline, ``image`` being ``image_of`` of the source
    frame nearest to ``k / fps`` (computed once per source frame, so a repeated frame yields
    the same object). Raises :class:`MediaError` as :func:`iter_frames` documents."""
    container = open_container(path)
    try:
        vstream = _video_stream(container, path)
        if threads:
            vstream.codec_context.thread_count = threads
        rate = vstream.average_rate or vstream.guessed_rate or Fraction(int(fps))
        nominal_duration_s = 1.0 / float(rate)
        step = 1.0 / fps
        sampler = _NearestFrames(lambda k: k * step, image_of)
        origin_s: float | None = None
        try:
            for frame in container.decode(vstream):
                if frame.time is None:
                    continue
                if origin_s is None:
                    origin_s = float(frame.time)
                for k, image, _ in sampler.push(frame, float(frame.time) - origin_s):
                    yield k, image
        except av.error.FFmpegError as exc:
            reached = f"{sampler.prev_t:.2f} s" if origin_s is not None else "the first frame"
            raise MediaError(
                f"{path}: decoding failed at {reached} ({exc}); the file is truncated or corrupt"
            ) from exc
        prev = sampler.prev
        if prev is None:
            raise MediaError(f"{path}: the video stream has no decodable frame")
        last_duration_s = (
            float(prev.duration * prev.time_base)
            if prev.duration and prev.time_base
            else nominal_duration_s
        )
        end_s = sampler.prev_t + last_duration_s
        declared_s = _declared_duration_s(container, vstream, origin_s or 0.0)
        if declared_s is not None and end_s < 0.9 * declared_s - 0.5:
            raise MediaError(
                f"{path}: the container declares {declared_s:.2f} s of video but frames end at "
                f"{end_s:.2f} s; the file is truncated or corrupt"
            )
        for k, image, _ in sampler.rest(before_s=end_s):
            yield k, image
    finally:
        container.close()


def iter_frames(
    path: str | Path,
    fps: float = ANALYSIS_FPS,
    pixel_format: str = "rgb24",
    threads: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, image)`` on a constant ``fps`` timeline, streaming.

    Each source frame is converted to an array only if the timeline uses it, and only the
    previous source frame is kept in memory.

    Args:
        path: video file.
        fps: analysis frame rate (25 for the ASD models).
        pixel_format: PyAV/FFmpeg pixel format of the arrays: ``rgb24`` or ``bgr24`` give
            ``(H, W, 3)`` uint8, ``gray`` gives ``(H, W)`` uint8, ``yuv420p`` (even ``H`` and
            ``W`` only) gives FFmpeg's planar ``(3H/2, W)`` uint8 buffer: Y, then U and V at
            half width and height.
        threads: decoder threads; 0 lets FFmpeg choose (frame + slice threading).

    Yields:
        ``frame_index`` (0, 1, 2, ... without gaps) and the upright image for time
        ``frame_index / fps`` seconds after the first video frame. A source frame that
        serves several indices (a source slower than ``fps``) is the same array each time.

    Raises:
        MediaError: the file cannot be opened, has no video stream, or decoding fails part-way
            (the message gives the time reached).
    """
    yield from _timeline(Path(path), fps, _upright(pixel_format), threads)


#: swscale's filter for :func:`iter_i420_frames`: area averaging, so a downscaled picture is
#: filtered, not sampled (no aliasing at 1080p or 4K to 480p). Of swscale's filters it came
#: closest to OpenCV's ``INTER_AREA`` of the RGB frame, at about the cost of its bilinear one
#: (``python benchmarks/bench_speed_levers.py scalers``, ``docs/speed.md``).
I420_INTERPOLATION = "AREA"


def _upright_i420(frame: av.VideoFrame, width_px: int, height_px: int) -> av.VideoFrame:
    """A new ``yuv420p`` frame of ``frame``, upright and scaled to ``width_px x height_px``."""
    k = _rotation_k(frame)
    stored_w, stored_h = (height_px, width_px) if k % 2 else (width_px, height_px)
    picture = frame.reformat(
        width=stored_w, height=stored_h, format="yuv420p", interpolation=I420_INTERPOLATION
    )
    if picture is frame or k:  # the decoder's own buffer, or stored turned: a new frame
        out = av.VideoFrame(width_px, height_px, "yuv420p")
        for src, dst in zip(picture.planes, out.planes, strict=True):
            np.copyto(plane_view(dst), np.rot90(plane_view(src), k))
        picture = out
    return picture


def plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable ``(height, width)`` uint8 view of one plane of an 8-bit planar
    :class:`av.VideoFrame` (its rows are ``plane.line_size`` bytes apart)."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def iter_i420_frames(
    path: str | Path,
    width_px: int,
    height_px: int,
    fps: float = ANALYSIS_FPS,
    threads: int = 0,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield ``(frame_index, frame)`` on the timeline of :func:`iter_frames` (same frame
    indices, same source frames), each a new 8-bit ``yuv420p`` :class:`av.VideoFrame` of
    ``width_px x height_px`` (upright), for drawing on and encoding.

    The picture is converted and scaled by FFmpeg's swscale in one step
    (:data:`I420_INTERPOLATION`), with no array in between; :func:`plane_view` gives its
    planes as arrays. Each index gets its own frame, also when a source frame repeats, so a
    frame may be drawn on in place.

    Raises:
        ValueError: an odd ``width_px`` or ``height_px`` (4:2:0 needs even sizes), or one
            below 2.
        MediaError: as :func:`iter_frames`.
    """
    if width_px < 2 or height_px < 2 or width_px % 2 or height_px % 2:
        raise ValueError(
            f"a yuv420p picture needs even sizes of at least 2 px, got {width_px}x{height_px}"
        )
    for k, frame in _timeline(Path(path), fps, lambda f: f, threads):
        yield k, _upright_i420(frame, width_px, height_px)


#: Seek only when the first requested time is at least this far into the video (s).
SEEK_MIN_S = 5.0
#: Seek to this many seconds before the first requested time (decoding restarts at a key frame
#: at or before the seek target, so the frames just before the time are still decoded).
SEEK_MARGIN_S = 2.0


def iter_frames_at_times(
    path: str | Path, times_s: np.ndarray, pixel_format: str = "bgr24"
) -> Iterator[tuple[int, np.ndarray, float]]:
    """Yield, for each requested time, the decoded frame shown nearest to it; streaming.

    Time 0 is the presentation time of the first video frame (as :func:`iter_frames` and
    :func:`read_audio`); the nearest-frame rule is :func:`iter_frames`'s. The stream is decoded
    forward; before a requested time that lies :data:`SEEK_MIN_S` or more beyond the frames
    decoded so far, the decoder seeks to :data:`SEEK_MARGIN_S` before it (checked: a seek that
    lands after the time backs off further, or decodes from the start). Only frames that are
    picked are converted to arrays; only the previous frame is kept.

    Args:
        path: video file.
        times_s: ``(n,)`` requested times in seconds, ascending.
        pixel_format: ``bgr24`` (default, OpenCV order), ``rgb24`` or ``gray``.

    Yields:
        ``(i, image, frame_time_s)`` for ``i = 0 .. n-1`` in order: the upright image of the
        frame whose presentation time is nearest to ``times_s[i]`` (ties: the earlier frame;
        times after the last frame get the last frame) and that frame's time. The caller
        decides whether ``|frame_time_s - times_s[i]|`` is acceptable.

    Raises:
        MediaError: the file cannot be opened, has no video stream, or decoding fails.
        ValueError: ``times_s`` is not ascending.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if len(times) > 1 and np.any(np.diff(times) < 0):
        raise ValueError("times_s must be in ascending order")
    if len(times) == 0:
        return
    path = Path(path)
    decoder = _SeekingDecoder(path)
    try:
        sampler = _NearestFrames(
            lambda i: float(times[i]) if i < len(times) else None, _upright(pixel_format)
        )
        try:
            first = next(decoder.frames, None)
            if first is None:
                raise MediaError(f"{path}: the video stream has no decodable frame")
            origin_s = float(first.time)
            frames: Iterator[av.VideoFrame] = itertools.chain([first], decoder.frames)
            decoded_to_s, sought = 0.0, -1
            while not sampler.done:
                target = float(times[sampler.index])
                if target - decoded_to_s >= SEEK_MIN_S and sought < sampler.index:
                    sought = sampler.index  # once per target: a seek may land at the start
                    decoder.seek_before(origin_s + target - SEEK_MARGIN_S)
                    frames = decoder.frames
                    sampler.forget_previous()
                frame = next(frames, None)
                if frame is None:
                    break
                decoded_to_s = float(frame.time) - origin_s
                yield from sampler.push(frame, decoded_to_s)
        except av.error.FFmpegError as exc:
            raise MediaError(
                f"{path}: decoding failed ({exc}); the file is truncated or corrupt"
            ) from exc
        if sampler.prev is None:
            raise MediaError(f"{path}: the video stream has no decodable frame")
        yield from sampler.rest()
    finally:
        decoder.close()


def read_frames_at(
    path: str | Path, times_s: Iterable[float], pixel_format: str = "rgb24"
) -> list[np.ndarray]:
    """The frames shown at given times, in the given order (:func:`iter_frames_at_times` on
    the sorted times: the same nearest-frame rule, seeking over long gaps).

    Args:
        path: video file.
        times_s: times in seconds on the analysis timeline (any order).
        pixel_format: as in :func:`iter_frames` (``rgb24``, ``bgr24``, ``gray``).

    Returns:
        One upright image per time (``(H, W, 3)`` or ``(H, W)`` uint8). A time past the end
        gives the last frame.

    Raises:
        MediaError: the file cannot be opened, has no video stream or no decodable frame, or
            decoding fails.
    """
    wanted = np.asarray(list(times_s), dtype=np.float64)
    if wanted.size == 0:
        return []
    order = np.argsort(wanted, kind="stable")
    out: list[np.ndarray] = [np.zeros(0, np.uint8)] * len(wanted)
    for i, image, _ in iter_frames_at_times(path, wanted[order], pixel_format):
        out[int(order[i])] = image
    return out


def read_audio(
    path: str | Path,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    video_origin: bool = True,
) -> np.ndarray:
    """Decode the first audio stream as mono int16 at ``sample_rate`` through libswresample.

    The channels are downmixed by FFmpeg's resampler (as ``ffmpeg -ac 1 -ar 16000`` in the
    reference demos).

    Args:
        path: media file.
        sample_rate: output rate in Hz (16000 for the ASD models' MFCC front-end).
        video_origin: if True (default), sample 0 is at the first video frame's presentation
            time: audio before it is dropped, a late audio start is padded with zeros. If False,
            sample 0 is the first audio sample.

    Returns:
        ``(N,)`` int16 samples.

    Raises:
        NoAudioStreamError: the file has no audio stream.
        MediaError: the file cannot be opened or the audio cannot be decoded.
    """
    path = Path(path)
    with open_container(path) as container:
        if not container.streams.audio:
            found = ", ".join(s.type for s in container.streams) or "no streams"
            raise NoAudioStreamError(
                f"{path}: expected an audio stream (active speaker detection needs the "
                f"soundtrack), found {found}"
            )
        astream = container.streams.audio[0]
        origin_s = 0.0
        if video_origin and container.streams.video:
            try:
                first_video = next(container.decode(container.streams.video[0]))
                origin_s = float(first_video.time or 0.0)
            except (StopIteration, av.error.FFmpegError):
                origin_s = 0.0
            container.seek(0)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        first_audio_s: float | None = None
        try:
            for frame in container.decode(astream):
                if first_audio_s is None and frame.time is not None:
                    first_audio_s = float(frame.time)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: audio decoding failed ({exc})") from exc
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if video_origin and first_audio_s is not None:
        offset = int(round((first_audio_s - origin_s) * sample_rate))
        if offset > 0:
            samples = np.concatenate([np.zeros(offset, np.int16), samples])
        elif offset < 0:
            samples = samples[-offset:]
    logger.debug("%s: %d audio samples at %d Hz", path, len(samples), sample_rate)
    return samples


def expected_num_frames(duration_s: float, fps: float = ANALYSIS_FPS) -> int:
    """Frames of a ``fps`` timeline covering ``duration_s`` seconds (``ceil`` with tolerance)."""
    return int(math.ceil(duration_s * fps - 1e-6))


def first_frame_time_s(path: str | Path) -> float:
    """Presentation time (s) of the first decoded video frame: time 0 of the analysis timeline.

    Players (and browsers) show the file on its own timeline, where analysis time ``t`` is at
    ``first_frame_time_s(path) + t`` (0.852 s later in the Hamilton clip, whose video starts
    after its audio).

    Raises:
        MediaError: the file cannot be opened, or has no video stream or no decodable frame.
    """
    path = Path(path)
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: expected a video stream, found none")
        for frame in container.decode(container.streams.video[0]):
            if frame.time is not None:
                return float(frame.time)
    raise MediaError(f"{path}: the video stream has no decodable frame")


def keyframe_times_s(path: str | Path) -> np.ndarray:
    """Times of the video stream's keyframes on the analysis timeline, from the demuxer.

    Only the first frame is decoded (for time 0): a decoder can start at these times, so
    reading a frame costs one decoded frame per frame between it and the keyframe before it.

    Returns:
        ``(K,)`` float64 seconds, sorted, relative to the first decoded video frame.

    Raises:
        MediaError: the file cannot be opened, has no video stream or no decodable frame.
    """
    path = Path(path)
    origin_s = first_frame_time_s(path)
    with open_container(path) as container:
        vstream = container.streams.video[0]
        times = [
            float(packet.pts * packet.time_base) - origin_s
            for packet in container.demux(vstream)
            if packet.is_keyframe and packet.pts is not None and packet.time_base is not None
        ]
    return np.unique(np.asarray(times, dtype=np.float64))


class _SeekingDecoder:
    """Decoded video frames from a chosen time on, with FFmpeg seeks checked.

    Some containers (MPEG program streams such as GRID's ``.mpg``) land *after* the requested
    time even for a backward seek; then an earlier time is tried, and at last the file is
    decoded from its start.
    """

    _BACK_OFF_S = (0.0, 1.0, 4.0, 16.0)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = open_container(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.frames: Iterator[av.VideoFrame] = self._timed(self.container.decode(self.stream))

    @staticmethod
    def _timed(frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        return (f for f in frames if f.time is not None)

    def restart(self) -> None:
        self.container.close()
        self.container = open_container(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.frames = self._timed(self.container.decode(self.stream))

    def seek_before(self, source_time_s: float) -> None:
        """Position the decoder at a frame at or before ``source_time_s`` (container time)."""
        time_base = self.stream.time_base
        for back_s in self._BACK_OFF_S:
            at_s = max(source_time_s - back_s, 0.0)
            self.container.seek(
                int(at_s / time_base) if time_base else 0,
                stream=self.stream,
                backward=True,
                any_frame=False,
            )
            frames = self._timed(self.container.decode(self.stream))
            first = next(frames, None)
            if first is not None and float(first.time) <= source_time_s + 1e-6:
                self.frames = itertools.chain([first], frames)
                return
            if at_s == 0.0:
                break
        self.restart()

    def close(self) -> None:
        self.container.close()
