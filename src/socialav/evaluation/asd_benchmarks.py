"""Accuracy benchmarks for active speaker detection built from real clips with one speaker.

Two benchmarks, with AVA semantics (per-frame AP, :func:`average_precision_voc`):

* **natural** — each clip's face with its own audio: speaking where its voice is active,
  not speaking in the silence before and after (GRID utterances have silence at both ends).
* **sync** (TalkSet-style, after TalkNet's TalkSet construction) — the audio of one clip
  played with two faces: its own face speaks while its voice is active; the other face never
  speaks, although its mouth moves: (a) *cross* pairs, another clip's face, and (b) *delayed*
  self-pairs, the same face delayed by a few frames. A model that reacts to "a mouth moves
  while someone speaks" instead of to audio-visual synchrony scores near chance here.

Ground truth comes from voice activity on the clip's audio (:func:`voice_activity`), or from a
GRID ``.align`` word alignment where one exists (:func:`read_grid_align`).

Scene-context models (:mod:`socialav.models.scene_context`) also see the whole frame. With
``scene_size_px`` set (and the clips' full frames in :attr:`BenchmarkClip.frames`), every item
carries the scene images (:func:`~socialav.models.scene_context.scene_image`) of what that
video would show:

* natural: the clip's own frames;
* sync: the two-face scene the pair stands for, built as the two clips' frames side by side
  (:func:`side_by_side`; own clip left, the other right, resized to the left one's height):
  cross pairs show A's and B's frames, delayed pairs A's frames beside its delayed copy.
  Both faces of a pair see the same scene (as in a real two-face video), so the scene alone
  cannot tell them apart; it can only shift both. The own face then gets one item per pair
  (named ``"<A> (with <other item>)"``), since its scene differs from pair to pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from socialav.audio.features import track_mfcc
from socialav.evaluation.ava import average_precision_voc
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE

__all__ = [
    "BenchmarkClip",
    "BenchmarkItem",
    "voice_activity",
    "read_grid_align",
    "align_to_frames",
    "natural_items",
    "sync_items",
    "benchmark_ap",
    "unique_items",
    "side_by_side",
    "scene_sequence",
]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def voice_activity(
    audio: np.ndarray,
    num_frames: int,
    fps: float = ANALYSIS_FPS,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    rel_threshold_db: float = 20.0,
    max_gap_frames: int = 8,
    min_run_frames: int = 3,
) -> np.ndarray:
    """Energy voice activity per video frame.

    A frame is active when its RMS level is within ``rel_threshold_db`` dB of the clip's
    95th-percentile frame level; inactive gaps of at most ``max_gap_frames`` between active
    runs are filled (pauses between words), then active runs shorter than ``min_run_frames``
    are dropped (clicks, breaths). Checked against the GRID word alignment in the tests.

    Args:
        audio: ``(N,)`` int16 mono, sample 0 at frame 0.
        num_frames: number of video frames to label.

    Returns:
        ``(num_frames,)`` bool.
    """
    hop = int(round(sample_rate / fps))
    x = np.zeros(num_frames * hop, np.float64)
    seg = np.asarray(audio, np.float64)[: num_frames * hop] / 32768.0
    x[: len(seg)] = seg
    level_db = 10 * np.log10((x.reshape(num_frames, hop) ** 2).mean(axis=1) + 1e-10)
    active = level_db > np.percentile(level_db, 95) - rel_threshold_db
    for start, stop in _runs(~active):
        if start > 0 and stop < num_frames and stop - start <= max_gap_frames:
            active[start:stop] = True
    for start, stop in _runs(active):
        if stop - start < min_run_frames:
            active[start:stop] = False
    return active


def read_grid_align(path: str | Path) -> list[tuple[float, float, str]]:
    """Words of a GRID ``.align`` file as ``(start_frame, end_frame, word)``.

    The file has lines ``start end word`` with times in thousandths of a 25 fps video frame
    (``12250`` = frame 12.25); ``sil`` marks silence.

    Raises:
        ValueError: a line is not ``int int word``.
    """
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected 'start end word', got {line!r}")
        try:
            words.append((int(parts[0]) / 1000.0, int(parts[1]) / 1000.0, parts[2]))
        except ValueError:
            raise ValueError(f"{path}:{number}: start and end must be integers: {line!r}") from None
    return words


def align_to_frames(words: Sequence[tuple[float, float, str]], num_frames: int) -> np.ndarray:
    """``(num_frames,)`` bool: frames whose centre lies inside a word other than ``sil``."""
    centres = np.arange(num_frames) + 0.5
    speech = np.zeros(num_frames, bool)
    for start, end, word in words:
        if word != "sil":
            speech |= (centres >= start) & (centres < end)
    return speech


@dataclass
class BenchmarkClip:
    """One real clip: its face track's crops and its own audio.

    Attributes:
        name: clip name.
        faces: ``(T, 112, 112)`` uint8 face crops of the clip's face track.
        audio: ``(N,)`` int16 16 kHz audio of the clip, sample 0 at the track's first frame.
        speech: ``(T,)`` bool voice activity of ``audio`` per frame.
        frames: ``(T, H, W, 3)`` uint8 RGB full frames of the face track's span (needed only
            for scene-context items), or None.
        speaker: who speaks in the clip; clips of one speaker give ``other_sentence`` pairs
            in :func:`sync_items`, never ``cross`` pairs. None: the clip is its own speaker.
        mouth_points: ``(T, 20, 2)`` float32 lip landmarks of ``faces``
            (:class:`~socialav.vision.lip_landmarks.LipLandmarker`), or None.
    """

    name: str
    faces: np.ndarray
    audio: np.ndarray
    speech: np.ndarray
    frames: np.ndarray | None = None
    speaker: str | None = None
    mouth_points: np.ndarray | None = None

    @property
    def speaker_id(self) -> str:
        """``speaker``, or the clip's name when unknown."""
        return self.speaker if self.speaker is not None else self.name


@dataclass
class BenchmarkItem:
    """A face track paired with an audio track, with per-frame ground truth.

    Attributes:
        name: ``"<face clip>+<audio clip>"`` (``@-d`` for a face delayed by ``d`` frames).
        kind: ``natural`` (own face, own audio), ``cross`` (another speaker's face),
            ``other_sentence`` (the same speaker's face in another clip) or ``delayed``
            (own face, delayed).
        faces: ``(T, 112, 112)`` uint8.
        mfcc: ``(4T, 13)`` float32.
        labels: ``(T,)`` int 1 = speaking.
        scenes: ``(T, S, S, 3)`` uint8 RGB scene images of the video the face is in (see
            the module docstring), or None.
        mouth_points: ``(T, 20, 2)`` lip landmarks of ``faces`` (delayed like them), or None.
        delay_frames: for ``delayed`` items, how many frames the face is delayed; else 0.
    """

    name: str
    kind: str
    faces: np.ndarray
    mfcc: np.ndarray
    labels: np.ndarray
    scenes: np.ndarray | None = None
    mouth_points: np.ndarray | None = None
    delay_frames: int = 0


def _mfcc_for(audio: np.ndarray, num_frames: int) -> np.ndarray:
    return track_mfcc(audio, 0, num_frames - 1)


def side_by_side(left_rgb: np.ndarray, right_rgb: np.ndarray) -> np.ndarray:
    """Two ``(H, W, 3)`` frames as one two-face frame: ``right_rgb`` resized to the height of
    ``left_rgb`` (aspect kept, ``cv2.INTER_AREA``) and placed to its right.

    Raises:
        ValueError: a frame that is not ``(H, W, 3)`` uint8.
    """
    for name, frame in (("left_rgb", left_rgb), ("right_rgb", right_rgb)):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"{name} must be (H, W, 3) uint8 RGB, but got {frame.shape} {frame.dtype}"
            )
    height = left_rgb.shape[0]
    if right_rgb.shape[0] != height:
        width = max(1, int(round(right_rgb.shape[1] * height / right_rgb.shape[0])))
        right_rgb = cv2.resize(right_rgb, (width, height), interpolation=cv2.INTER_AREA)
    return np.concatenate([left_rgb, right_rgb], axis=1)


def scene_sequence(
    left_frames: np.ndarray,
    right_frames: np.ndarray | None,
    num_frames: int,
    size_px: int,
) -> np.ndarray:
    """Scene images of a one- or two-face video: frame ``t`` is ``left_frames[t]`` (alone, or
    :func:`side_by_side` with ``right_frames[t]``) turned into an ``S x S`` scene image; a
    sequence shorter than ``num_frames`` holds its last frame.

    Returns:
        ``(num_frames, size_px, size_px, 3)`` uint8 RGB.

    Raises:
        ValueError: empty frame sequences.
    """
    from socialav.models.scene_context import scene_image

    if len(left_frames) == 0 or (right_frames is not None and len(right_frames) == 0):
        raise ValueError("scene_sequence needs at least one frame on each side")
    out = np.empty((num_frames, size_px, size_px, 3), np.uint8)
    for t in range(num_frames):
        frame = left_frames[min(t, len(left_frames) - 1)]
        if right_frames is not None:
            frame = side_by_side(frame, right_frames[min(t, len(right_frames) - 1)])
        out[t] = scene_image(frame, size_px)
    return out


def _frames_of(clip: BenchmarkClip) -> np.ndarray:
    if clip.frames is None:
        raise ValueError(
            f"clip {clip.name!r} has no full frames (BenchmarkClip.frames); scene items need them"
        )
    return clip.frames


def natural_items(
    clips: Sequence[BenchmarkClip], scene_size_px: int | None = None
) -> list[BenchmarkItem]:
    """Each clip's face with its own audio; speaking where its voice is active.

    Args:
        clips: the clips.
        scene_size_px: also give each item the ``S x S`` scene images of its own frames
            (``None``: no scenes).

    Raises:
        ValueError: ``scene_size_px`` is set but a clip has no ``frames``.
    """
    items = []
    for c in clips:
        scenes = None
        if scene_size_px is not None:
            scenes = scene_sequence(_frames_of(c), None, len(c.faces), scene_size_px)
        items.append(
            BenchmarkItem(
                c.name,
                "natural",
                c.faces,
                _mfcc_for(c.audio, len(c.faces)),
                c.speech.astype(int),
                scenes,
                c.mouth_points,
            )
        )
    return items


def sync_items(
    clips: Sequence[BenchmarkClip],
    delays_frames: Sequence[int] = (5, 10),
    scene_size_px: int | None = None,
    partners_per_clip: int | None = None,
    seed: int = 0,
) -> list[BenchmarkItem]:
    """The TalkSet-style synchrony benchmark: pairs of faces shown with one clip's audio.

    For every ordered pair of clips (A, B): A's face with A's audio (speaking where A's voice
    is active) beside B's face with A's audio, never speaking: ``cross`` when B is another
    speaker, ``other_sentence`` when B is the same speaker in another clip
    (:attr:`BenchmarkClip.speaker`; the hardest case: same face, same voice). For every clip A
    and delay ``d``: A's face beside A's face delayed by ``d`` frames (``delayed``, never
    speaking; its first frame fills the start). Every pair contributes both faces, so each
    clip's own face appears once per pair it is in (the same object: score it once); the
    positive rate is about half the speech rate, as in a two-face video.

    With ``scene_size_px`` both items of a pair carry the pair's two-face scene (see the
    module docstring) and the own face is a separate item per pair.

    Args:
        partners_per_clip: pair each clip A with at most this many other speakers' clips
            and at most this many of its own speaker's other clips, drawn with ``seed``
            (None: every ordered pair; the count grows as the square of the clips).

    Raises:
        ValueError: ``scene_size_px`` is set but a clip has no ``frames``.
    """
    natural = natural_items(clips)
    items: list[BenchmarkItem] = []
    rng = np.random.default_rng(seed)

    def partners(a: BenchmarkClip) -> list[BenchmarkClip]:
        others = [b for b in clips if b is not a]
        if partners_per_clip is None:
            return others
        chosen = []
        for same in (False, True):
            group = [b for b in others if (b.speaker_id == a.speaker_id) == same]
            if len(group) > partners_per_clip:
                picked = rng.choice(len(group), partners_per_clip, replace=False)
                group = [group[i] for i in sorted(picked)]
            chosen.extend(group)
        return chosen

    def add_pair(
        own: BenchmarkItem,
        other: BenchmarkItem,
        right_frames: np.ndarray | None,
        a: BenchmarkClip,
    ) -> None:
        if scene_size_px is None:
            items.extend([own, other])
            return
        length = max(len(own.faces), len(other.faces))
        scenes = scene_sequence(_frames_of(a), right_frames, length, scene_size_px)
        own_here = BenchmarkItem(
            f"{own.name} (with {other.name})",
            own.kind,
            own.faces,
            own.mfcc,
            own.labels,
            scenes[: len(own.faces)],
        )
        other.scenes = scenes[: len(other.faces)]
        items.extend([own_here, other])

    for a, own in zip(clips, natural, strict=True):
        for b in partners(a):
            n = len(b.faces)
            kind = "other_sentence" if b.speaker_id == a.speaker_id else "cross"
            other = BenchmarkItem(
                f"{b.name}+{a.name}",
                kind,
                b.faces,
                _mfcc_for(a.audio, n),
                np.zeros(n, int),
                mouth_points=b.mouth_points,
            )
            add_pair(own, other, None if scene_size_px is None else _frames_of(b), a)
        for d in delays_frames:
            n = len(a.faces)
            delayed = _delay(a.faces, d)
            other = BenchmarkItem(
                f"{a.name}@-{d}+{a.name}",
                "delayed",
                delayed,
                own.mfcc,
                np.zeros(n, int),
                mouth_points=None if a.mouth_points is None else _delay(a.mouth_points, d),
                delay_frames=d,
            )
            delayed_frames = None
            if scene_size_px is not None:
                frames = _frames_of(a)
                delayed_frames = _delay(frames, d)
            add_pair(own, other, delayed_frames, a)
    return items


def _delay(frames: np.ndarray, d: int) -> np.ndarray:
    """``frames`` delayed by ``d`` rows, the first row filling the start (same length)."""
    return np.concatenate([np.repeat(frames[:1], d, axis=0), frames[: len(frames) - d]])


def unique_items(items: Sequence[BenchmarkItem]) -> list[BenchmarkItem]:
    """The distinct items (by identity), in first-seen order: what needs scoring."""
    seen: dict[int, BenchmarkItem] = {}
    for it in items:
        seen.setdefault(id(it), it)
    return list(seen.values())


def benchmark_ap(
    items: Sequence[BenchmarkItem],
    scores: dict[str, np.ndarray],
    kinds: Sequence[str] | None = None,
) -> float:
    """Per-frame AP in percent (AVA semantics) over benchmark items.

    Args:
        items: natural items, or the pairs of :func:`sync_items` (own face, other face).
        scores: item name → ``(T,)`` speaking scores (any monotone score).
        kinds: for pairs, keep only those whose other face is of these kinds (``cross``,
            ``other_sentence``, ``delayed``); None keeps everything.
    """
    if kinds is not None:
        pairs = zip(items[::2], items[1::2], strict=True)
        items = [it for own, other in pairs if other.kind in kinds for it in (own, other)]
    s = np.concatenate([np.asarray(scores[it.name], np.float64) for it in items])
    y = np.concatenate([it.labels for it in items])
    return 100.0 * average_precision_voc(s, y)
