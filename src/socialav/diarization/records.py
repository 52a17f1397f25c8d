"""Records of the person-level diarization: persons, their speech, and the configuration."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["DiarizationConfig", "Person", "DiarizationResult", "TimeSpan"]

_PERSON_ID_RE = re.compile(r"^person_[0-9]+$")


@dataclass(frozen=True)
class TimeSpan:
    """A span of time in seconds, ``0 <= start_s < end_s`` (end exclusive)."""

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ValueError(f"time span bounds must be finite, but got {self}")
        if self.start_s < 0 or self.end_s <= self.start_s:
            raise ValueError(
                f"a time span needs 0 <= start_s < end_s, but got start_s={self.start_s}, "
                f"end_s={self.end_s}"
            )

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Person:
    """One person of a video: a face cluster, a voice cluster, or both.

    Attributes:
        person_id: ``person_<k>``, numbered in order of first appearance (first face, or
            first speech for off-screen persons).
        on_screen: True if some face track belongs to this person.
        track_ids: the face tracks (``FaceTrack.track_id``) of this person, increasing.
        speaking_segments: when this person speaks, sorted and non-overlapping.
        thumbnail_jpeg: a small face JPEG (from the best face embedding), or None.
    """

    person_id: str
    on_screen: bool
    track_ids: tuple[int, ...] = ()
    speaking_segments: tuple[TimeSpan, ...] = ()
    thumbnail_jpeg: bytes | None = None

    def __post_init__(self) -> None:
        if not _PERSON_ID_RE.match(self.person_id):
            raise ValueError(f"person_id must look like 'person_0', but got {self.person_id!r}")
        object.__setattr__(self, "track_ids", tuple(sorted(int(t) for t in self.track_ids)))
        object.__setattr__(self, "speaking_segments", tuple(self.speaking_segments))
        if self.on_screen != bool(self.track_ids):
            raise ValueError(
                f"{self.person_id}: on_screen={self.on_screen} but it has "
                f"{len(self.track_ids)} face tracks (on screen means at least one)"
            )
        segs = self.speaking_segments
        for a, b in zip(segs, segs[1:], strict=False):
            if b.start_s < a.end_s:
                raise ValueError(
                    f"{self.person_id}: speaking segments must be sorted and disjoint, but "
                    f"{a} and {b} overlap"
                )

    @property
    def speaking_time_s(self) -> float:
        return float(sum(s.duration_s for s in self.speaking_segments))

    @property
    def num_turns(self) -> int:
        return len(self.speaking_segments)


@dataclass(frozen=True)
class DiarizationConfig:
    """Thresholds of the person logic.

    ``face_threshold``, ``voice_assign_threshold``, ``voice_threshold`` and
    ``link_min_score`` were chosen by the grid search on the tuning edits of
    ``benchmarks/bench_diarization.py --tune`` (ties broken toward the middle of the grid);
    the anchor rule and the segment rules were set by hand before it. See the README table.

    Attributes:
        face_threshold: two face clusters merge while their average cosine distance
            (``1 - cos`` of L2-normalised dlib descriptors) is below this. Measured on the
            shared clips: the same person 0.02-0.04 across clips, different people >= 0.10.
        voice_threshold: average-linkage cosine-distance threshold for voice windows (GE2E
            embeddings) that no face claims (and for the audio-only baseline).
        anchor_min_probability: a voice window is *anchored* to a face cluster whose mean
            speaking probability over the window is at least this ...
        anchor_margin: ... and exceeds every other face cluster's by at least this (a
            two-shot where both faces move their lips anchors nothing).
        voice_assign_threshold: a window goes to the face person whose voice profile (mean
            embedding of its anchored windows) is nearest, if nearer than this cosine
            distance; farther windows are clustered among themselves.
        link_min_score: a cluster of unclaimed windows is linked to the face cluster of
            highest lift whose mean speaking probability over its windows is at least this;
            otherwise it is an off-screen person.
        asd_threshold: a face speaks in a frame where its smoothed probability is >= this
            (the detect default 0.5).
        asd_override: inside speech, a frame where one face person clearly speaks
            (``>= asd_threshold``, ``anchor_margin`` above the others) and whose voice
            profile is within ``voice_assign_threshold`` of the covering window goes to that
            person (the frame-accurate ASD corrects the 1.6 s windows at turn changes).
        min_voice_cluster_s: voice clusters with less speech than this are merged into the
            nearest larger cluster (one stray window does not make a person).
        max_gap_s: a person's segments closer than this are joined.
        min_segment_s: shorter segments are dropped.
        voice_step_s: hop between voice windows.
    """

    face_threshold: float = 0.07
    voice_threshold: float = 0.3
    anchor_min_probability: float = 0.7
    anchor_margin: float = 0.5
    voice_assign_threshold: float = 0.3
    link_min_score: float = 0.4
    asd_threshold: float = 0.5
    asd_override: bool = True
    min_voice_cluster_s: float = 2.0
    max_gap_s: float = 0.3
    min_segment_s: float = 0.2
    voice_step_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("face_threshold", "voice_threshold", "voice_assign_threshold"):
            value = getattr(self, name)
            if not 0 < value < 2:
                raise ValueError(f"{name} must be a cosine distance in (0, 2), but got {value}")
        for name in ("link_min_score", "asd_threshold", "anchor_min_probability", "anchor_margin"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], but got {value}")
        for name in ("min_voice_cluster_s", "max_gap_s", "min_segment_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, but got {getattr(self, name)}")
        if self.voice_step_s <= 0:
            raise ValueError(f"voice_step_s must be > 0, but got {self.voice_step_s}")


@dataclass
class DiarizationResult:
    """Who spoke when, as people.

    Attributes:
        persons: in ``person_id`` order.
        track_to_person: ``track_id -> person_id`` for every face track.
        info: how it was obtained (thresholds, cluster counts, links), for the JSON.
    """

    persons: list[Person]
    track_to_person: dict[int, str]
    info: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [p.person_id for p in self.persons]
        if len(set(ids)) != len(ids):
            raise ValueError(f"person ids must be unique, but got {ids}")
        owner = {t: p.person_id for p in self.persons for t in p.track_ids}
        if owner != self.track_to_person:
            raise ValueError(
                "track_to_person must list exactly the persons' track_ids, but they differ "
                f"for tracks {sorted(set(owner.items()) ^ set(self.track_to_person.items()))[:5]}"
            )
