"""Ego4D fixtures, generated at test time (no Ego4D data is shipped or downloaded).

- :func:`make_av_dict`: a small synthetic ``av_*.json`` content in the exact Ego4D layout.
- ``interview_ego4d`` (session): an Ego4D-style clip built from the real
  ``visualvoice_interview.mp4``: its first 60 frames on a 30 fps timeline (as Ego4D clips),
  faces found by socialav's detector and tracker, frames and boxes downscaled by 4
  (320x180) to keep memory small, 16 kHz audio, and an ``av`` dict with person 0 (camera
  wearer) and persons 1 and 2 (the two faces), talking and looking segments.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

FPS = 30.0
NUM_FRAMES = 60
DOWNSCALE = 4


def make_av_dict() -> dict:
    """A 2-clip synthetic ``av_*.json`` (frame size 640x480)."""
    track_a = [
        {
            "frame": f,
            "x": 100.0 + f,
            "y": 50.0,
            "width": 80.0,
            "height": 100.0,
            "video_frame": 1000 + f,
            "clip_frame": None,
        }
        for f in (0, 1, 2, 5, 6)  # gap at 3, 4 (interpolated)
    ]
    track_b = [
        {"frame": f, "x": 400.0, "y": 60.0, "width": 60.0, "height": 60.0} for f in range(10, 20)
    ]
    clip1 = {
        "clip_uid": "clip-1",
        "video_uid": "video-1",
        "persons": [
            {
                "person_id": "camera_wearer",
                "camera_wearer": True,
                "tracking_paths": [],
                "voice_segments": [{"start_frame": 0, "end_frame": 5, "person": "camera_wearer"}],
            },
            {
                "person_id": "1",
                "camera_wearer": False,
                "tracking_paths": [{"track_id": "trk-a", "track": track_a}],
                "voice_segments": [{"start_frame": 2, "end_frame": 5, "person": "1"}],
            },
            {
                "person_id": "2",
                "camera_wearer": False,
                "tracking_paths": [{"track_id": "trk-b", "track": track_b}],
                "voice_segments": [],
            },
        ],
        "social_segments_talking": [
            {"person": "'1'", "target": "0", "start_frame": 0, "end_frame": 319, "is_at_me": True},
            {"person": None, "target": None, "start_frame": 3, "end_frame": 9},
            {"person": "2", "target": None, "start_frame": 10, "end_frame": 19},
            {"person": "2", "target": "1", "start_frame": 30, "end_frame": 40},
        ],
        "social_segments_looking": [
            {"person": "1", "target": "0", "start_frame": 1, "end_frame": 4},
        ],
    }
    clip2 = {
        "clip_uid": "clip-2",
        "persons": [{"person_id": "0", "tracking_paths": []}],
        "social_segments_talking": [],
        "social_segments_looking": [],
    }
    return {"version": "1.0", "videos": [{"video_uid": "video-1", "clips": [clip1, clip2]}]}


@pytest.fixture
def av_dict() -> dict:
    return copy.deepcopy(make_av_dict())


@dataclass
class InterviewClip:
    """An Ego4D-style clip built from a real video (see the module docstring)."""

    clip_uid: str
    frames: np.ndarray  # (60, 180, 320, 3) uint8 RGB
    audio: np.ndarray  # (N,) int16 at 16 kHz
    av: dict
    confidence: dict[tuple[str, int], float]  # (person_id, frame) -> detector score

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[1])


@pytest.fixture(scope="session")
def interview_ego4d(videos_dir: Path) -> InterviewClip:
    from socialav.checkpoints.load import load_face_detector
    from socialav.io.media import iter_frames, read_audio
    from socialav.vision.tracking import track_faces

    torch.set_num_threads(1)
    path = videos_dir / "visualvoice_interview.mp4"
    detector, _ = load_face_detector("ultra-light-face-rfb-320")
    frames, detections = [], []
    for index, image in iter_frames(path, fps=FPS):
        if index >= NUM_FRAMES:
            break
        detections.append((index, detector.detect(image)))
        small = image[::DOWNSCALE, ::DOWNSCALE]
        frames.append(np.ascontiguousarray(small))
    tracks = sorted(track_faces(detections), key=lambda t: t.boxes_xyxy_px[0, 0])
    assert len(tracks) >= 2, f"expected two faces in the interview clip, found {len(tracks)}"
    persons = [
        {
            "person_id": "camera_wearer",
            "camera_wearer": True,
            "tracking_paths": [],
            "voice_segments": [],
        }
    ]
    confidence: dict[tuple[str, int], float] = {}
    for k, track in enumerate(tracks[:2], start=1):
        boxes = []
        for f, box, conf in zip(
            track.frame_indices.tolist(), track.boxes_xyxy_px, track.confidence, strict=True
        ):
            if k == 1 and f in (20, 21, 22):  # a gap, filled by interpolation
                continue
            x1, y1, x2, y2 = (float(v) / DOWNSCALE for v in box)
            boxes.append({"frame": f, "x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1})
            confidence[(str(k), f)] = float(conf)
        persons.append(
            {
                "person_id": str(k),
                "camera_wearer": False,
                "tracking_paths": [{"track_id": f"face-{k}", "track": boxes}],
                "voice_segments": [{"start_frame": 0, "end_frame": 29}],
            }
        )
    av = {
        "videos": [
            {
                "video_uid": "visualvoice",
                "clips": [
                    {
                        "clip_uid": "interview",
                        "persons": persons,
                        "social_segments_talking": [
                            {"person": "1", "target": "0", "start_frame": 0, "end_frame": 29},
                            {"person": "2", "target": None, "start_frame": 20, "end_frame": 59},
                        ],
                        "social_segments_looking": [
                            {"person": "1", "target": "0", "start_frame": 5, "end_frame": 24},
                            {"person": "2", "target": "0", "start_frame": 40, "end_frame": 59},
                        ],
                    }
                ],
            }
        ]
    }
    audio = read_audio(path)[: int(NUM_FRAMES / FPS * 16000)]
    return InterviewClip("interview", np.stack(frames), audio, av, confidence)


@pytest.fixture
def one_thread():
    """One torch/OpenMP thread for the test (the Ego4D tests' default)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(previous)


def write_clip_video(path: Path, frames_rgb: np.ndarray, audio_s16: np.ndarray, fps: float = FPS):
    """Encode ``(N, H, W, 3)`` uint8 RGB frames and 16 kHz int16 mono audio as an H.264/AAC
    mp4 whose frame ``i`` is shown at ``i / fps`` (an Ego4D clip ``<clip_uid>.mp4``)."""
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height = int(frames_rgb.shape[2]), int(frames_rgb.shape[1])
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "12"}
        sound = out.add_stream("aac", rate=16000, layout="mono")
        for i, image in enumerate(frames_rgb):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        wave = (np.asarray(audio_s16, dtype=np.float32) / 32768.0)[None, :]
        for start in range(0, wave.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave[:, start : start + 1024]), format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            frame.time_base = Fraction(1, 16000)
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return path
