"""Pixels and audio of Ego4D clips in the layouts of the social baselines.

The Ego4D social baselines (EGO4D/social-interactions, ``scripts/extract_frame.sh`` and
``scripts/extract_wave.sh``) read pre-extracted media::

    FRAMES_DIR/<clip_uid>/img_00001.jpg ...   every frame at 30 fps (ffmpeg -vf fps=30),
                                              img_{frame + 1:05d}.jpg holds clip frame `frame`
    AUDIO_DIR/<clip_uid>.wav                  16 kHz mono

:func:`extract_clip_media` writes both from ``<clip_uid>.mp4`` with PyAV (frames on the 30 fps
timeline by timestamp, :func:`socialav.io.media.iter_frames`; audio through libswresample,
:func:`socialav.io.media.read_audio`); :class:`JpegFolderFrames` is the
:class:`~socialav.data.ego4d.samples.FrameSource` over the frame folders and
:func:`load_clip_audio` reads a clip's audio from either layout.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np
from scipy.io import wavfile

from socialav.io.atomic import atomic_directory, atomic_write
from socialav.io.media import iter_frames, read_audio
from socialav.types import AUDIO_SAMPLE_RATE, EGO4D_FPS

logger = logging.getLogger(__name__)

__all__ = [
    "FRAME_NAME",
    "ClipAudio",
    "JpegFolderFrames",
    "clip_frame_path",
    "extract_clip_media",
    "load_clip_audio",
]

#: File name of clip frame ``f`` (0-based) in a clip's frame folder (1-based numbering of
#: ``ffmpeg ... img_%05d.jpg``).
FRAME_NAME = "img_{:05d}.jpg"


def clip_frame_path(frames_dir: str | os.PathLike[str], clip_uid: str, frame: int) -> Path:
    """``frames_dir/<clip_uid>/img_{frame + 1:05d}.jpg``."""
    return Path(frames_dir) / clip_uid / FRAME_NAME.format(int(frame) + 1)


class JpegFolderFrames:
    """:class:`~socialav.data.ego4d.samples.FrameSource` over extracted frame folders.

    ``frame(clip_uid, f)`` is the ``(H, W, 3)`` uint8 RGB image of clip frame ``f`` or
    ``None`` past the clip's last frame (a missing file, as the baselines treat it). The most
    recent ``cache_frames`` decoded images are kept (LAM windows overlap by 6 of 7 frames).

    Args:
        frames_dir: the folder holding one sub-folder per clip.
        cache_frames: decoded images kept in memory.

    Raises:
        FileNotFoundError: ``frames_dir`` or a clip's folder does not exist (on first use).
        ValueError: a frame file exists but cannot be decoded.
    """

    def __init__(self, frames_dir: str | os.PathLike[str], cache_frames: int = 64) -> None:
        self.frames_dir = Path(frames_dir)
        if not self.frames_dir.is_dir():
            raise FileNotFoundError(
                f"frames folder {self.frames_dir} not found (expected <clip_uid>/img_00001.jpg "
                "... as written by `socialav data ego4d-media`)"
            )
        self.cache_frames = int(cache_frames)
        self._cache: OrderedDict[tuple[str, int], np.ndarray | None] = OrderedDict()
        self._checked: set[str] = set()

    def frame(self, clip_uid: str, frame: int) -> np.ndarray | None:
        key = (clip_uid, int(frame))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if clip_uid not in self._checked:
            if not (self.frames_dir / clip_uid).is_dir():
                raise FileNotFoundError(
                    f"no frames of clip {clip_uid!r}: expected the folder "
                    f"{self.frames_dir / clip_uid}"
                )
            self._checked.add(clip_uid)
        image: np.ndarray | None = None
        path = clip_frame_path(self.frames_dir, clip_uid, frame)
        if frame >= 0 and path.is_file():
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: expected a JPEG image, but it cannot be decoded")
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._cache[key] = image
        if len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)
        return image


def load_clip_audio(
    clip_uid: str,
    audio_dir: str | os.PathLike[str] | None = None,
    videos_dir: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """The clip's audio as ``(N,)`` int16 at 16 kHz, sample 0 at clip frame 0.

    Reads ``audio_dir/<clip_uid>.wav`` when ``audio_dir`` is given, else decodes
    ``videos_dir/<clip_uid>.mp4``.

    Raises:
        ValueError: neither folder given, or a WAV of another rate / channel count / type.
        FileNotFoundError: the file is missing.
        socialav.io.media.NoAudioStreamError: the clip has no audio stream.
    """
    if audio_dir is not None:
        path = Path(audio_dir) / f"{clip_uid}.wav"
        if not path.is_file():
            raise FileNotFoundError(f"audio of clip {clip_uid!r} not found: expected {path}")
        rate, audio = wavfile.read(str(path))
        if rate != AUDIO_SAMPLE_RATE or audio.ndim != 1 or audio.dtype != np.int16:
            raise ValueError(
                f"{path}: expected {AUDIO_SAMPLE_RATE} Hz mono int16, found {rate} Hz, shape "
                f"{audio.shape}, {audio.dtype}"
            )
        return audio
    if videos_dir is None:
        raise ValueError("give audio_dir (<clip_uid>.wav) or videos_dir (<clip_uid>.mp4)")
    path = Path(videos_dir) / f"{clip_uid}.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"clip {clip_uid!r} not found: expected {path}")
    return read_audio(path, AUDIO_SAMPLE_RATE)


def extract_clip_media(
    video: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    audio_dir: str | os.PathLike[str] | None = None,
    *,
    clip_uid: str | None = None,
    fps: float = EGO4D_FPS,
    jpeg_quality: int = 95,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a clip's frames (and audio) in the baselines' layout (module docstring).

    The frame folder is written under a temporary name and renamed when complete, so an
    interrupted extraction leaves no half folder; an existing complete folder is replaced.

    Args:
        video: the clip (``<clip_uid>.mp4``).
        frames_dir: receives ``<clip_uid>/img_%05d.jpg``.
        audio_dir: receives ``<clip_uid>.wav`` (16 kHz mono int16); ``None`` skips audio.
        clip_uid: defaults to the file stem.
        fps: frame rate of the frame numbering (30 for Ego4D).
        jpeg_quality: JPEG quality (the baselines' ``-qscale:v 2`` is about 95).
        progress: called with the number of frames written so far, every 100 frames.

    Returns:
        The number of frames written.

    Raises:
        socialav.io.media.MediaError: the video cannot be decoded.
    """
    video = Path(video)
    uid = clip_uid or video.stem
    root = Path(frames_dir)
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_directory(root / uid) as tmp:
        for index, image in iter_frames(video, fps=fps, pixel_format="bgr24"):
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise ValueError(f"{video}: frame {index} could not be encoded as JPEG")
            (tmp / FRAME_NAME.format(index + 1)).write_bytes(data.tobytes())
            count = index + 1
            if progress is not None and count % 100 == 0:
                progress(count)
    if audio_dir is not None:
        audio = read_audio(video, AUDIO_SAMPLE_RATE)
        out = Path(audio_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / f"{uid}.wav", "wb") as fh:
            wavfile.write(fh, AUDIO_SAMPLE_RATE, audio)
    logger.info("%s: %d frames at %.1f fps", uid, count, fps)
    return count


class ClipAudio(Mapping):
    """Read-only ``clip_uid -> (N,) int16`` mapping that loads clips on first use
    (:func:`load_clip_audio`) and keeps the ``cache_clips`` most recent in memory.

    Args:
        clip_uids: the clips it holds (``in`` and ``len`` answer from them, without reading).
        audio_dir, videos_dir: as :func:`load_clip_audio`.
    """

    def __init__(
        self,
        clip_uids: Iterable[str],
        audio_dir: str | os.PathLike[str] | None = None,
        videos_dir: str | os.PathLike[str] | None = None,
        cache_clips: int = 8,
    ) -> None:
        if audio_dir is None and videos_dir is None:
            raise ValueError("give audio_dir (<clip_uid>.wav) or videos_dir (<clip_uid>.mp4)")
        self._uids = list(dict.fromkeys(clip_uids))
        self._known = set(self._uids)
        self.audio_dir, self.videos_dir = audio_dir, videos_dir
        self.cache_clips = int(cache_clips)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getitem__(self, clip_uid: str) -> np.ndarray:
        if clip_uid not in self._known:
            raise KeyError(clip_uid)
        if clip_uid in self._cache:
            self._cache.move_to_end(clip_uid)
            return self._cache[clip_uid]
        audio = load_clip_audio(clip_uid, self.audio_dir, self.videos_dir)
        self._cache[clip_uid] = audio
        if len(self._cache) > self.cache_clips:
            self._cache.popitem(last=False)
        return audio

    def __iter__(self) -> Iterator[str]:
        return iter(self._uids)

    def __len__(self) -> int:
        return len(self._uids)
