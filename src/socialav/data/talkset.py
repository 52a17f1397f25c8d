"""TalkSet-style training data from a folder of single-speaker talking-head clips.

Details and sources: ``docs/datasets.md`` (TalkSet-style training data: how it is generated).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.io import wavfile

from socialav.data.layout import DatasetLayout, write_scene_image
from socialav.io.atomic import atomic_write
from socialav.io.ava_csv import AvaLabel, write_ava_csv_frame
from socialav.io.media import NoAudioStreamError, iter_frames, probe_video, read_audio
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, FaceTrack
from socialav.vision.crops import crop_track_frame
from socialav.vision.tracking import TrackerConfig, track_faces

logger = logging.getLogger(__name__)

__all__ = [
    "TalkSetConfig",
    "SourceClip",
    "ClipFaces",
    "energy_vad",
    "extract_clip_faces",
    "read_manifest",
    "split_groups",
    "generate_talkset",
    "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm")
KINDS: tuple[str, ...] = ("matched", "swapped", "shifted", "silence", "half")
_SAMPLES_PER_FRAME = int(AUDIO_SAMPLE_RATE / ANALYSIS_FPS)  # 640
_MFCC_TAIL = int(round((0.025 - 0.010) * AUDIO_SAMPLE_RATE))  # 240


@dataclass(frozen=True)
class TalkSetConfig:
    """Parameters of :func:`generate_talkset`.

    Attributes:
        seed: everything random derives from it.
        val_fraction: fraction of groups (separately for talking and negative clips) that go
            to the ``val`` split; at least one group each when there are two or more.
        window_frames_range: inclusive range of entity lengths in frames (2-5 s at 25 fps).
        mix: probabilities of the kinds for windows of talking clips (normalised).
        shift_frames_range: inclusive range of |shift| for ``shifted`` (8-25 frames: well
            outside the +-5 frames that derived clips and lip-sync tolerance allow).
        noise_dbfs_range: level of the white noise of ``silence`` windows.
        vad_threshold_db: a frame is speech when its energy is this far above the clip's noise
            floor (10th percentile of frame energies)...
        vad_min_dbfs: ...and above this absolute level.
        detect_every: run the face detector on every N-th frame (the tracker interpolates).
        min_track_frames: ignore face tracks shorter than this.
        group_regex: a regular expression whose first group, searched in the file name,
            names the clip's group (person); clips without a match are their own group.
        scene_size_px: also write the ``S x S`` full-scene image of every face-track frame
            (``clips_scenes/``; see the module docstring) with ``S`` = this; ``None``: none.
    """

    seed: int = 0
    val_fraction: float = 0.2
    window_frames_range: tuple[int, int] = (50, 125)
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "matched": 0.4,
            "swapped": 0.2,
            "shifted": 0.2,
            "silence": 0.1,
            "half": 0.1,
        }
    )
    shift_frames_range: tuple[int, int] = (8, 25)
    noise_dbfs_range: tuple[float, float] = (-70.0, -45.0)
    vad_threshold_db: float = 15.0
    vad_min_dbfs: float = -45.0
    detect_every: int = 1
    min_track_frames: int = 25
    group_regex: str | None = None
    scene_size_px: int | None = None

    def __post_init__(self) -> None:
        if self.scene_size_px is not None and self.scene_size_px < 1:
            raise ValueError(f"scene_size_px must be >= 1 or None, got {self.scene_size_px}")
        lo, hi = self.window_frames_range
        if not 1 <= lo <= hi:
            raise ValueError(f"window_frames_range must satisfy 1 <= lo <= hi, got {lo, hi}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        unknown = set(self.mix) - set(KINDS)
        if unknown or not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError(
                f"mix must map kinds {KINDS} to non-negative probabilities, got {self.mix}"
            )
        if not 1 <= self.shift_frames_range[0] <= self.shift_frames_range[1]:
            raise ValueError(
                f"shift_frames_range must be 1 <= lo <= hi, got {self.shift_frames_range}"
            )


@dataclass(frozen=True)
class SourceClip:
    """One input clip.

    Attributes:
        path: the media file.
        talking: True for a clip of a person talking with their own voice, False for a
            negative clip (faces without speech).
        trusted_sync: False when audio/video synchrony is not guaranteed (no ``matched``).
        group: split group (person); defaults to the file stem.
    """

    path: Path
    talking: bool = True
    trusted_sync: bool = True
    group: str = ""

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class ClipFaces:
    """Faces, audio and VAD of one clip on the 25 fps timeline.

    Attributes:
        clip: the source.
        tracks: kept face tracks with their crops: ``(FaceTrack, (T, 112, 112) uint8)``.
        audio: ``(N,)`` int16 16 kHz mono, sample 0 at frame 0 (zeros if no audio stream).
        speech: ``(num_frames,)`` bool energy-VAD decision per video frame.
        width_px, height_px: frame size (for normalised boxes).
    """

    clip: SourceClip
    tracks: list[tuple[FaceTrack, np.ndarray]]
    audio: np.ndarray
    speech: np.ndarray
    width_px: int
    height_px: int


def energy_vad(
    audio: np.ndarray,
    num_frames: int,
    threshold_db: float = 15.0,
    min_dbfs: float = -45.0,
    smooth_frames: int = 5,
) -> np.ndarray:
    """Per-video-frame speech decision from audio energy.

    Frame ``k`` covers samples ``[640 k, 640 (k + 1))`` (25 fps, 16 kHz). Its level is
    ``10 log10(mean(x^2) + 1e-10)`` dBFS of the samples scaled to [-1, 1). A frame is speech
    when its level exceeds both ``floor + threshold_db`` (``floor`` = 10th percentile of the
    clip's frame levels) and ``min_dbfs``; the decision is then median-filtered over
    ``smooth_frames`` frames (odd) to remove isolated flips.

    Returns:
        ``(num_frames,)`` bool.
    """
    samples = np.zeros(num_frames * _SAMPLES_PER_FRAME, dtype=np.float64)
    usable = min(len(audio), len(samples))
    samples[:usable] = audio[:usable].astype(np.float64) / 32768.0
    frames = samples.reshape(num_frames, _SAMPLES_PER_FRAME)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    floor = np.percentile(level, 10) if num_frames else 0.0
    speech = (level > floor + threshold_db) & (level > min_dbfs)
    if smooth_frames > 1 and num_frames >= smooth_frames:
        from scipy.signal import medfilt

        speech = medfilt(speech.astype(np.float64), smooth_frames) > 0.5
    return speech


def extract_clip_faces(
    clip: SourceClip,
    detector,
    config: TalkSetConfig,
    scene_sink: Callable[[int, np.ndarray], None] | None = None,
) -> ClipFaces:
    """Detect, track and crop the faces of a clip; read its audio and run the VAD.

    Args:
        clip: the source clip.
        detector: a :class:`~socialav.vision.detection.FaceDetector`.
        config: ``detect_every`` and ``min_track_frames`` are used.
        scene_sink: if given, called as ``scene_sink(frame_index, frame_rgb)`` (``(H, W, 3)``
            uint8 RGB, 25 fps timeline) once for every frame of a kept face track, during the
            cropping pass (nothing is kept in memory).

    Returns:
        :class:`ClipFaces`; for talking clips only the longest track is kept.

    Raises:
        socialav.io.media.MediaError: unreadable file.
    """
    info = probe_video(clip.path)
    detections = []
    for index, frame in iter_frames(clip.path):
        dets = detector.detect(frame) if index % config.detect_every == 0 else None
        detections.append((index, dets))
    num_frames = len(detections)
    tracker_cfg = TrackerConfig(
        detect_every=config.detect_every,
        min_track_frames=max(1, config.min_track_frames // config.detect_every - 1),
    )
    tracks = [
        t for t in track_faces(detections, config=tracker_cfg) if len(t) >= config.min_track_frames
    ]
    tracks.sort(key=lambda t: (-len(t), t.track_id))
    if clip.talking:
        tracks = tracks[:1]
    crops: dict[int, list[np.ndarray]] = {t.track_id: [] for t in tracks}
    if tracks:
        by_frame: dict[int, list[tuple[FaceTrack, int]]] = {}
        for track in tracks:
            for row, frame_index in enumerate(track.frame_indices):
                by_frame.setdefault(int(frame_index), []).append((track, row))
        for index, frame in iter_frames(clip.path):
            for track, row in by_frame.get(index, ()):
                crops[track.track_id].append(crop_track_frame(frame, track.crop_size_cx_cy_px[row]))
            if scene_sink is not None and index in by_frame:
                scene_sink(index, frame)
    try:
        audio = read_audio(clip.path)
    except NoAudioStreamError:
        audio = np.zeros(num_frames * _SAMPLES_PER_FRAME, dtype=np.int16)
    speech = energy_vad(audio, num_frames, config.vad_threshold_db, config.vad_min_dbfs)
    kept = []
    for track in tracks:
        faces = np.stack(crops[track.track_id])
        if len(faces) != len(track):  # decoder gave fewer frames the second time
            raise RuntimeError(f"{clip.path}: crops of track {track.track_id} are incomplete")
        kept.append((track, faces))
    return ClipFaces(clip, kept, audio, speech, info.width_px, info.height_px)


def read_manifest(path: str | Path) -> dict[str, dict[str, str]]:
    """Read the Markdown table of a clip folder's ``MANIFEST.md`` (``| file | category | ... |
    derived | ...``) as ``{file name: {column: value}}``.

    Raises:
        ValueError: no table with a ``file`` column.
    """
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if "file" in cells:
                header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        if len(cells) == len(header):
            row = dict(zip(header, cells, strict=True))
            rows[row["file"]] = row
    if header is None:
        raise ValueError(f"{path}: expected a Markdown table with a 'file' column, found none")
    return rows


def clips_from_folder(
    folder: str | Path,
    *,
    negative_patterns: Sequence[str] = (),
    untrusted_patterns: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
    use_manifest: bool = True,
    group_regex: str | None = None,
) -> list[SourceClip]:
    """The clips of a folder, classified.

    A clip is negative when its name matches ``negative_patterns`` (fnmatch) or the folder's
    ``MANIFEST.md`` gives it ``category`` ``neg``; untrusted when it matches
    ``untrusted_patterns`` or the manifest's ``derived`` column is not empty.

    Raises:
        FileNotFoundError: the folder does not exist or holds no video file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"clip folder {folder} not found")
    manifest: dict[str, dict[str, str]] = {}
    if use_manifest and (folder / "MANIFEST.md").is_file():
        manifest = read_manifest(folder / "MANIFEST.md")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    clips = []
    for path in paths:
        if any(fnmatch.fnmatch(path.name, pat) for pat in exclude_patterns):
            continue
        row = manifest.get(path.name, {})
        negative = row.get("category", "") == "neg" or any(
            fnmatch.fnmatch(path.name, pat) for pat in negative_patterns
        )
        untrusted = bool(row.get("derived", "").strip()) or any(
            fnmatch.fnmatch(path.name, pat) for pat in untrusted_patterns
        )
        clips.append(SourceClip(path, not negative, not untrusted, _group(path.stem, group_regex)))
    if not clips:
        raise FileNotFoundError(f"{folder} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
    return clips


def _group(stem: str, group_regex: str | None) -> str:
    if group_regex:
        match = re.search(group_regex, stem)
        if match and match.groups():
            return match.group(1)
    return stem


def split_groups(clips: Sequence[SourceClip], val_fraction: float, seed: int) -> dict[str, str]:
    """Assign every group to ``train`` or ``val`` (talking and negative groups separately).

    Returns:
        ``{group: split}``. A group never spans both splits.
    """
    result: dict[str, str] = {}
    for talking in (True, False):
        groups = sorted({c.group or c.name for c in clips if c.talking == talking})
        groups = [g for g in groups if g not in result]
        rng = np.random.default_rng((seed, int(talking), 17))
        order = [groups[i] for i in rng.permutation(len(groups))]
        num_val = math.ceil(val_fraction * len(groups)) if len(groups) >= 2 else 0
        num_val = min(num_val, len(groups) - 1) if groups else 0
        for i, group in enumerate(order):
            result[group] = "val" if i < num_val else "train"
    return result


def _segment(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    """``audio[start : start + length]`` with zeros outside the signal."""
    out = np.zeros(length, dtype=np.int16)
    a, b = max(start, 0), min(start + length, len(audio))
    if b > a:
        out[a - start : b - start] = audio[a:b]
    return out


def _donor_segment(donor: ClipFaces, length: int, rng: np.random.Generator) -> np.ndarray:
    audio = donor.audio
    if len(audio) == 0:
        return np.zeros(length, dtype=np.int16)
    if len(audio) < length:
        return np.pad(audio, (0, length - len(audio)), mode="wrap")
    start = int(rng.integers(0, len(audio) - length + 1))
    return audio[start : start + length].copy()


def _windows(num_frames: int, lo: int, hi: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    windows, start = [], 0
    while num_frames - start >= lo:
        length = int(rng.integers(lo, hi + 1))
        length = min(length, num_frames - start)
        windows.append((start, start + length))
        start += length
    return windows


def _instance_ids(entity_id: str, labels: np.ndarray) -> list[str]:
    runs = np.concatenate([[0], np.cumsum(labels[1:] != labels[:-1])])
    return [f"{entity_id}_{int(r)}" for r in runs]


def _scene_writer(
    layout: DatasetLayout, split: str, video_id: str, size_px: int
) -> Callable[[int, np.ndarray], None]:
    """A ``scene_sink`` for :func:`extract_clip_faces` writing ``clips_scenes`` images."""
    from socialav.models.scene_context import scene_image

    def write(frame_index: int, frame_rgb: np.ndarray) -> None:
        path = layout.scene_path(split, video_id, frame_index / ANALYSIS_FPS)
        write_scene_image(path, scene_image(frame_rgb, size_px))

    return write


def generate_talkset(
    clips: Sequence[SourceClip],
    out_root: str | Path,
    config: TalkSetConfig | None = None,
    *,
    detector=None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Build a TalkSet-style dataset (see the module docstring).

    Args:
        clips: the sources (:func:`clips_from_folder`).
        out_root: dataset root to write (``csv/``, ``clips_videos/``, ``clips_audios/``,
            ``talkset_manifest.json``, and ``clips_scenes/`` when
            ``config.scene_size_px`` is set); existing files of the same names are replaced.
        config: parameters (defaults: :class:`TalkSetConfig`).
        detector: a face detector (default: Ultra-Light RFB-640 from the weights registry).
        progress: ``(stage, done, total)`` callback (stages ``faces`` and ``write``).

    Returns:
        Number of entities per ``"<split>/<kind>"``.

    Raises:
        ValueError: no talking clip gave a face track.
    """
    config = config or TalkSetConfig()
    layout = DatasetLayout(Path(out_root))
    if detector is None:
        from socialav.checkpoints.load import load_face_detector

        detector, _ = load_face_detector("ultra-light-face-rfb-640")
    clips = [
        c
        if c.group
        else SourceClip(c.path, c.talking, c.trusted_sync, _group(c.name, config.group_regex))
        for c in clips
    ]
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise ValueError(f"clip names (file stems) must be unique, got duplicates in {names}")
    split_of_group = split_groups(clips, config.val_fraction, config.seed)
    extracted: list[ClipFaces] = []
    for i, clip in enumerate(clips):
        sink = None
        if config.scene_size_px is not None:
            sink = _scene_writer(
                layout, split_of_group[clip.group], clip.name, config.scene_size_px
            )
        faces = extract_clip_faces(clip, detector, config, sink)
        if not faces.tracks:
            logger.warning(
                "%s: no face track of at least %d frames; skipped",
                clip.path,
                config.min_track_frames,
            )
        else:
            extracted.append(faces)
        if progress is not None:
            progress("faces", i + 1, len(clips))
    if not any(c.clip.talking for c in extracted):
        raise ValueError("no talking clip gave a face track; nothing to build TalkSet from")

    kinds = list(config.mix)
    probs = np.array([config.mix[k] for k in kinds], dtype=np.float64)
    probs /= probs.sum()
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    manifest: list[dict] = []
    counts: dict[str, int] = {}
    lo, hi = config.window_frames_range
    for n, item in enumerate(extracted):
        clip = item.clip
        split = split_of_group[clip.group]
        donors = [
            d
            for d in extracted
            if d.clip.talking
            and d.clip.group != clip.group
            and split_of_group[d.clip.group] == split
        ]
        rng = np.random.default_rng((config.seed, zlib.crc32(clip.name.encode())))
        for track, faces in item.tracks:
            for w, (a, b) in enumerate(_windows(len(track), lo, hi, rng)):
                length = b - a
                frames = track.frame_indices[a:b]
                first = int(frames[0])
                num_samples = length * _SAMPLES_PER_FRAME + _MFCC_TAIL
                own = _segment(item.audio, first * _SAMPLES_PER_FRAME, num_samples)
                own_speech = item.speech[frames]
                labels = np.zeros(length, dtype=np.int64)
                donor_name, shift = "", 0
                if not clip.talking:
                    kind = "nospeech"
                    if donors and rng.random() < 0.5:
                        donor = donors[int(rng.integers(len(donors)))]
                        audio, donor_name = _donor_segment(donor, num_samples, rng), donor.clip.name
                    else:
                        audio = own
                else:
                    kind = kinds[int(rng.choice(len(kinds), p=probs))]
                    if kind in ("matched", "half") and not clip.trusted_sync:
                        kind = "shifted"
                    if kind in ("swapped", "half") and not donors:
                        kind = "shifted"
                    if kind == "matched":
                        audio, labels = own, own_speech.astype(np.int64)
                    elif kind == "swapped":
                        donor = donors[int(rng.integers(len(donors)))]
                        audio, donor_name = _donor_segment(donor, num_samples, rng), donor.clip.name
                    elif kind == "shifted":
                        shift = int(
                            rng.integers(
                                config.shift_frames_range[0], config.shift_frames_range[1] + 1
                            )
                        )
                        shift *= 1 if rng.random() < 0.5 else -1
                        num_clip_frames = len(item.speech)
                        if not (0 <= first + shift and first + shift + length <= num_clip_frames):
                            shift = -shift
                        audio = _segment(
                            item.audio, (first + shift) * _SAMPLES_PER_FRAME, num_samples
                        )
                    elif kind == "silence":
                        if rng.random() < 0.5:
                            audio = np.zeros(num_samples, dtype=np.int16)
                        else:
                            level = 10 ** (rng.uniform(*config.noise_dbfs_range) / 20) * 32768
                            audio = np.clip(rng.normal(0, level, num_samples), -32768, 32767)
                            audio = audio.astype(np.int16)
                    else:  # half: own speech in one part, another clip's in the other
                        donor = donors[int(rng.integers(len(donors)))]
                        donor_name = donor.clip.name
                        cut = int(round(length * rng.uniform(0.3, 0.7)))
                        other = _donor_segment(donor, num_samples, rng)
                        audio = own.copy()
                        own_first = rng.random() < 0.5
                        if own_first:
                            audio[cut * _SAMPLES_PER_FRAME :] = other[cut * _SAMPLES_PER_FRAME :]
                            labels[:cut] = own_speech[:cut]
                        else:
                            audio[: cut * _SAMPLES_PER_FRAME] = other[: cut * _SAMPLES_PER_FRAME]
                            labels[cut:] = own_speech[cut:]
                video_id = clip.name
                entity_id = f"{clip.name}:{track.track_id}:{w:03d}:{kind}"
                folder = layout.entity_dir(split, video_id, entity_id)
                folder.mkdir(parents=True, exist_ok=True)
                stamps = frames / ANALYSIS_FPS
                for face, stamp in zip(faces[a:b], stamps, strict=True):
                    path = layout.face_path(split, video_id, entity_id, stamp)
                    ok, data = cv2.imencode(".jpg", face)
                    if not ok:
                        raise RuntimeError(f"JPEG encoding failed for {path}")
                    with atomic_write(path, "wb") as fh:
                        fh.write(data.tobytes())
                wav_path = layout.audio_path(split, video_id, entity_id)
                wav_path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(wav_path, "wb") as fh:
                    wavfile.write(fh, AUDIO_SAMPLE_RATE, np.asarray(audio, dtype=np.int16))
                boxes = track.boxes_xyxy_px[a:b].astype(np.float64)
                boxes[:, [0, 2]] /= item.width_px
                boxes[:, [1, 3]] /= item.height_px
                boxes = np.clip(boxes, 0.0, 1.0)
                rows[split].append(
                    pd.DataFrame(
                        {
                            "video_id": video_id,
                            "frame_timestamp": stamps,
                            "entity_box_x1": boxes[:, 0],
                            "entity_box_y1": boxes[:, 1],
                            "entity_box_x2": boxes[:, 2],
                            "entity_box_y2": boxes[:, 3],
                            "label": np.where(
                                labels == 1,
                                AvaLabel.SPEAKING_AUDIBLE.value,
                                AvaLabel.NOT_SPEAKING.value,
                            ),
                            "entity_id": entity_id,
                            "label_id": labels,
                            "instance_id": _instance_ids(entity_id, labels),
                        }
                    )
                )
                key = f"{split}/{kind}"
                counts[key] = counts.get(key, 0) + 1
                manifest.append(
                    {
                        "split": split,
                        "video_id": video_id,
                        "entity_id": entity_id,
                        "kind": kind,
                        "source": str(clip.path),
                        "donor": donor_name,
                        "shift_frames": shift,
                        "num_frames": length,
                        "num_speech_frames": int(labels.sum()),
                        "first_frame": first,
                    }
                )
        if progress is not None:
            progress("write", n + 1, len(extracted))
    for split, frames_list in rows.items():
        if frames_list:
            table = pd.concat(frames_list, ignore_index=True)
            write_ava_csv_frame(table, layout.csv_path(split), "groundtruth")
    with atomic_write(layout.root / "talkset_manifest.json") as fh:
        json.dump(
            {"config": asdict(config), "groups": split_of_group, "entities": manifest},
            fh,
            indent=1,
        )
    return counts
