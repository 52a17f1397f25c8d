"""One-speaker clips for synchrony training and benchmarks: face track, audio, speech, lips.

For each video of a folder: the longest face track of ``detect``'s own analysis pass
(:meth:`~socialav.pipelines.detect.SpeakerDetector.face_tracks`), its ``112 x 112`` crops, the
16 kHz audio from the track's first frame, per-frame speech (a GRID ``.align`` beside the
video when there is one, else :func:`~socialav.evaluation.asd_benchmarks.voice_activity`)
and, optionally, the mouth landmarks of the crops. Hands on
:class:`~socialav.evaluation.asd_benchmarks.BenchmarkClip` records, cached one ``.npz`` per
video so that a thousand GRID clips are analysed once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from socialav.evaluation.asd_benchmarks import (
    BenchmarkClip,
    align_to_frames,
    read_grid_align,
    voice_activity,
)
from socialav.io.atomic import atomic_write
from socialav.io.media import iter_frames, probe_video, read_audio
from socialav.pipelines.detect import SpeakerDetector
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE

if TYPE_CHECKING:
    from socialav.vision.lip_landmarks import LipLandmarker

__all__ = [
    "VIDEO_SUFFIXES",
    "speaker_of",
    "extract_sync_clip",
    "load_sync_clips",
    "load_cached_clips",
]

VIDEO_SUFFIXES = (".mp4", ".mpg", ".mov", ".mkv", ".avi", ".webm")
_SAMPLES_PER_FRAME = AUDIO_SAMPLE_RATE // int(ANALYSIS_FPS)
_CACHE_VERSION = 1


def speaker_of(name: str, speaker_regex: str | None) -> str:
    """The speaker of a clip: the first group of ``speaker_regex`` searched in its file name,
    or the name itself when there is no regex or no match."""
    if speaker_regex:
        match = re.search(speaker_regex, name)
        if match and match.groups() and match.group(1):
            return match.group(1)
    return name


def extract_sync_clip(
    detector: SpeakerDetector,
    path: str | Path,
    speaker: str | None = None,
    landmarker: LipLandmarker | None = None,
    with_frames: bool = False,
) -> BenchmarkClip | None:
    """The longest face track of one video as a :class:`BenchmarkClip`.

    Args:
        detector: ``detect``'s analysis (face detection, tracking, crops).
        path: a video with an audio stream; a ``<stem>.align`` beside it (GRID word
            alignment, 25 fps units) gives the speech labels.
        speaker: the clip's speaker id.
        landmarker: a :class:`~socialav.vision.lip_landmarks.LipLandmarker`, or None (no
            ``mouth_points``).
        with_frames: also decode the full RGB frames of the track's span (``frames``, for
            scene-context models).

    Returns:
        The clip, or None when the video has no face track.

    Raises:
        socialav.io.media.MediaError: unreadable video or no audio stream.
    """
    path = Path(path)
    video = probe_video(path)
    tracks = detector.face_tracks(path, video)
    if not tracks:
        return None
    analysed = max(tracks, key=lambda a: len(a.track))
    track, faces = analysed.track, analysed.faces_gray112
    audio = read_audio(path)[track.start_frame * _SAMPLES_PER_FRAME :]
    align = path.with_suffix(".align")
    if align.exists():
        speech = align_to_frames(read_grid_align(align), video.num_frames)
        speech = speech[track.start_frame : track.end_frame + 1]
    else:
        speech = voice_activity(audio, len(track))
    mouth = None if landmarker is None else landmarker.mouth_points(faces)
    frames = None
    if with_frames:
        frames = np.stack(
            [f for i, f in iter_frames(path) if track.start_frame <= i <= track.end_frame]
        )
    return BenchmarkClip(
        path.stem, faces, audio, speech, frames, speaker=speaker, mouth_points=mouth
    )


def _save(clip: BenchmarkClip, path: Path) -> None:
    arrays = {
        "version": np.int64(_CACHE_VERSION),
        "faces": clip.faces,
        "audio": clip.audio,
        "speech": clip.speech,
        "speaker": np.str_(clip.speaker_id),
    }
    if clip.mouth_points is not None:
        arrays["mouth_points"] = clip.mouth_points
    with atomic_write(path, "wb", encoding=None) as f:
        np.savez(f, **arrays)


def _load(path: Path, name: str) -> BenchmarkClip:
    with np.load(path) as z:
        version = int(z["version"]) if "version" in z.files else None
        if version != _CACHE_VERSION:
            raise ValueError(
                f"{path}: clip cache version {version}, expected {_CACHE_VERSION}; delete the "
                "cache folder to rebuild it"
            )
        mouth = z["mouth_points"] if "mouth_points" in z.files else None
        return BenchmarkClip(
            name,
            z["faces"],
            z["audio"],
            z["speech"].astype(bool),
            speaker=str(z["speaker"]),
            mouth_points=mouth,
        )


def load_sync_clips(
    videos: Sequence[str | Path],
    cache_dir: str | Path,
    detector_factory: Callable[[], SpeakerDetector],
    speaker_regex: str | None = None,
    speaker: str | None = None,
    landmarker: LipLandmarker | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[BenchmarkClip]:
    """:func:`extract_sync_clip` of every video, read from ``cache_dir`` when cached there.

    A cached clip without lip landmarks gets them (and is saved again) when ``landmarker``
    is given. Videos without a face track are skipped (and remembered as such).

    Args:
        videos: video files.
        cache_dir: folder of ``<stem>.npz`` files (created).
        detector_factory: builds the detector the first time a video is not cached.
        speaker_regex: see :func:`speaker_of`.
        speaker: one speaker id for every video (overrides ``speaker_regex``).
        progress: called ``(done, total, name)`` after each video.

    Raises:
        ValueError: two videos with the same file stem (their caches would collide), or a
            cached clip of another cache version.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    stems = [Path(v).stem for v in videos]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"videos with the same file stem cannot share a cache: {dup}")
    detector: SpeakerDetector | None = None
    clips = []
    for done, video in enumerate(videos, 1):
        video = Path(video)
        target = cache / f"{video.stem}.npz"
        empty = cache / f"{video.stem}.noface"
        clip_speaker = speaker or speaker_of(video.stem, speaker_regex)
        if target.exists():
            clip = _load(target, video.stem)
            clip.speaker = clip_speaker
            if clip.mouth_points is None and landmarker is not None:
                clip.mouth_points = landmarker.mouth_points(clip.faces)
                _save(clip, target)
            clips.append(clip)
        elif not empty.exists():
            detector = detector or detector_factory()
            clip = extract_sync_clip(detector, video, clip_speaker, landmarker)
            if clip is None:
                empty.touch()
            else:
                _save(clip, target)
                clips.append(clip)
        if progress is not None:
            progress(done, len(videos), video.stem)
    return clips


def load_cached_clips(
    cache_dir: str | Path, speaker_regex: str | None = None
) -> list[BenchmarkClip]:
    """Every clip of a cache written by :func:`load_sync_clips` (sorted by name). The speaker
    stored with each clip is kept unless ``speaker_regex`` matches its name.

    Raises:
        FileNotFoundError: ``cache_dir`` holds no ``.npz`` clip.
        ValueError: a cached clip of another cache version.
    """
    files = sorted(Path(cache_dir).glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no cached clips (*.npz) in {cache_dir}")
    clips = []
    for f in files:
        clip = _load(f, f.stem)
        found = speaker_of(f.stem, speaker_regex)
        if found != f.stem:
            clip.speaker = found
        clips.append(clip)
    return clips
