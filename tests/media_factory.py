"""Build tiny synthetic media files with PyAV for tests (no ffmpeg binary needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(
    path: Path,
    num_frames: int = 30,
    fps: int = 25,
    size_wh: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    audio: bool = True,
    sample_rate: int = 16000,
    tone_hz: float = 440.0,
) -> Path:
    """Write a video whose frame ``i`` has gray level ``(8 * i) % 256`` and a sine tone."""
    width, height = size_wh
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": "ultrafast"}
        elif codec == "libx265":  # no x265 thread pool: it aborts in a busy test process
            vs.options = {
                "preset": "ultrafast",
                "x265-params": "pools=none:frame-threads=1:log-level=error",
            }
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=sample_rate, layout="mono")
        for i in range(num_frames):
            img = np.full((height, width, 3), (8 * i) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            n = int(num_frames / fps * sample_rate)
            t = np.arange(n) / sample_rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            chunk = 1024
            for start in range(0, n, chunk):
                part = wave[start : start + chunk]
                frame = av.AudioFrame.from_ndarray(part[None, :], format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                frame.time_base = Fraction(1, sample_rate)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def cut_clip(
    source: Path,
    path: Path,
    num_frames: int,
    size_wh: tuple[int, int] | None = None,
    crop_xywh: tuple[int, int, int, int] | None = None,
    start_frame: int = 0,
) -> Path:
    """Re-encode ``num_frames`` frames of a real clip from ``start_frame`` (optionally cropped
    to ``crop_xywh`` and resized to ``size_wh``) with the matching span of its audio (16 kHz
    mono AAC)."""
    from socialav.io.media import iter_frames, read_audio

    frames = []
    for i, image in iter_frames(source):
        if i < start_frame:
            continue
        if len(frames) == num_frames:
            break
        if crop_xywh is not None:
            x, y, w, h = crop_xywh
            image = image[y : y + h, x : x + w]
        if size_wh is not None:
            import cv2

            image = cv2.resize(image, size_wh, interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(image))
    height, width = frames[0].shape[:2]
    audio = read_audio(source)[start_frame * 640 : (start_frame + len(frames)) * 640]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        astream = out.add_stream("aac", rate=16000, layout="mono")
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img[: vs.height, : vs.width], format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        chunk = 1024
        for i in range(0, len(audio), chunk):
            samples = audio[i : i + chunk].reshape(1, -1)
            aframe = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            aframe.sample_rate = 16000
            aframe.pts = i
            for packet in astream.encode(aframe):
                out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    return path


def rotate_display_90(path: Path) -> Path:
    """Mark an MP4's first track (the video of the files above) as shown turned by a quarter
    turn, as phones mark portrait video: its ``tkhd`` display matrix is rewritten in place
    (FFmpeg then reports ``rotation`` -90 and a stored W x H picture is shown H x W)."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    if at < 0:
        raise ValueError(f"{path}: expected an MP4 with a tkhd box, found none")
    version = data[at + 4]
    # creation, modification, track id, reserved, duration (64-bit times in version 1)
    times = 8 + 8 + 4 + 4 + 8 if version == 1 else 5 * 4
    matrix = at + 8 + times + 8 + 4 * 2  # + reserved, layer, group, volume, reserved
    one = 1 << 16
    data[matrix : matrix + 36] = struct.pack(">9i", 0, one, 0, -one, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    return path
