"""Hand-made ``socialav detect`` records for the report tests (built with the real writer)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

from socialav.io.writers import detection_record
from socialav.types import FaceTrack, SpeakingSegment, TrackScores, VideoInfo

FPS = 25.0


def make_track(
    track_id: int,
    start: int,
    n: int,
    speaking: Sequence[tuple[int, int]] = (),
    box: tuple[float, float, float, float] = (100, 80, 180, 180),
    drift_px_per_frame: float = 0.5,
    detect_every: int = 3,
    extra: bool = True,
) -> tuple[FaceTrack, TrackScores]:
    """A face track of ``n`` frames from ``start`` whose box drifts right, detected every
    ``detect_every`` frames (linear in between, as the tracker), speaking (p = 0.9) in the
    inclusive frame spans ``speaking`` (relative to ``start``) and silent (p = 0.1) elsewhere.
    """
    frames = np.arange(start, start + n)
    x = drift_px_per_frame * np.arange(n)
    boxes = np.stack([box[0] + x, np.full(n, box[1]), box[2] + x, np.full(n, box[3])], axis=1)
    detected = (np.arange(n) % detect_every) == 0
    detected[-1] = True
    prob = np.full(n, 0.1, np.float32)
    segments = []
    for a, b in speaking:
        prob[a : b + 1] = 0.9
        segments.append(
            SpeakingSegment(
                start_s=(start + a) / FPS,
                end_s=(start + b + 1) / FPS,
                start_frame=start + a,
                end_frame=start + b,
                mean_score=0.9,
            )
        )
    track = FaceTrack(
        track_id=track_id,
        frame_indices=frames,
        boxes_xyxy_px=boxes,
        crop_size_cx_cy_px=np.zeros((n, 3)),
        detected=detected,
        confidence=np.ones(n),
    )
    series = {}
    if extra:
        series = {"lam": np.full(n, 0.8, np.float32), "ttm": prob * 0.8}
    logits = np.log(prob / (1 - prob))
    score = TrackScores(track_id, frames, logits, prob, segments, series)
    return track, score


def make_record(
    num_frames: int = 250,
    tracks: Sequence[tuple[FaceTrack, TrackScores]] | None = None,
    *,
    codec: str = "h264",
    path: str = "clip.mp4",
    width_px: int = 640,
    height_px: int = 360,
    shot_cut_frames: Sequence[int] | None = (120,),
) -> dict:
    """A detect record (``detection_record``) of a ``num_frames`` video with two tracks."""
    if tracks is None:
        tracks = [
            make_track(0, 0, 200, speaking=[(10, 59), (100, 149)]),
            make_track(1, 50, 200, speaking=[(30, 79)], box=(400, 60, 500, 200)),
        ]
    video = VideoInfo(
        path=path,
        video_id=path.rsplit("/", 1)[-1].rsplit(".", 1)[0],
        width_px=width_px,
        height_px=height_px,
        source_fps=FPS,
        duration_s=num_frames / FPS,
        num_frames=num_frames,
        video_codec=codec,
        has_audio=True,
        audio_codec="aac",
        audio_sample_rate=16000,
    )
    run_info = {
        "tasks": ["asd", "lam", "ttm"],
        "model": "lr_asd",
        "weights": {"asd": {"name": "lr-asd-ava", "sha256": "ab" * 32, "architecture": "lr_asd"}},
        "segments": {"threshold": 0.5, "smooth_frames": 5, "max_gap_s": 0.2, "min_duration_s": 0.2},
        "num_shot_cuts": len(shot_cut_frames or ()),
        "versions": {"socialav": "0.1.0"},
    }
    if shot_cut_frames is not None:
        run_info["shot_cut_frames"] = list(shot_cut_frames)
    return detection_record(video, [t for t, _ in tracks], [s for _, s in tracks], run_info)


def _tiny_jpeg_b64() -> str:
    import cv2

    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), (40, 90, 200), np.uint8))
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode("ascii")


TINY_JPEG_B64 = _tiny_jpeg_b64()


def with_persons(record: dict) -> dict:
    """The record with diarization: person_0 = track 0, person_1 = track 1 and an off-screen
    person_2 who speaks 8.0-9.0 s (a voice without a face)."""
    out = dict(record)
    out["tracks"] = [dict(t) for t in record["tracks"]]
    persons = []
    for i, track in enumerate(out["tracks"]):
        track["person_id"] = f"person_{i}"
        segs = [{"start_s": s["start_s"], "end_s": s["end_s"]} for s in track["segments"]]
        persons.append(
            {
                "person_id": f"person_{i}",
                "on_screen": True,
                "track_ids": [track["track_id"]],
                "thumbnail_jpeg_base64": TINY_JPEG_B64 if i == 0 else None,
                "speaking_segments": segs,
                "speaking_time_s": round(sum(s["end_s"] - s["start_s"] for s in segs), 6),
                "num_turns": len(segs),
            }
        )
    persons.append(
        {
            "person_id": f"person_{len(persons)}",
            "on_screen": False,
            "track_ids": [],
            "thumbnail_jpeg_base64": None,
            "speaking_segments": [{"start_s": 8.0, "end_s": 9.0}],
            "speaking_time_s": 1.0,
            "num_turns": 1,
        }
    )
    out["persons"] = persons
    return out
