"""Speed of write_annotated_video at 1280x720 (visualvoice_interview.mp4, 438 frames).

Run: python benchmarks/bench_annotate.py [preset:crf ...]   (default: the four rows below)

Each row writes the annotated video with the default frames (decoded as yuv420p and drawn on
region by region) and random speaking probabilities on two constant face boxes.
"""

import os
import sys
import tempfile
import time

import numpy as np

from socialav.io.annotate import write_annotated_video
from socialav.io.media import iter_frames, probe_video
from socialav.types import FaceTrack, TrackScores

src = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "videos", "visualvoice_interview.mp4"
)
video = probe_video(src)
n = video.num_frames
rng = np.random.default_rng(0)
tracks, scores = [], []
for tid, box in enumerate([(256, 146, 640, 504), (700, 60, 1100, 520)]):
    fr = np.arange(n)
    tracks.append(FaceTrack(tid, fr, np.tile(box, (n, 1)), np.zeros((n, 3))))
    p = rng.uniform(size=n)
    scores.append(TrackScores(tid, fr, p, p, extra={"lam": p, "ttm": 1 - p}))
t = time.perf_counter()
k = sum(1 for _ in iter_frames(src))
dec = time.perf_counter() - t
print(f"$ python {' '.join(sys.argv)}")
print("| preset | crf | frames | seconds | fps | MiB |\n|---|---|---|---|---|---|")
print(f"| (decode only, iter_frames) | - | {k} | {dec:.1f} | {k / dec:.0f} | - |")
for choice in sys.argv[1:] or ["superfast:23", "ultrafast:23", "ultrafast:28", "veryfast:23"]:
    preset, crf = choice.split(":")
    out = os.path.join(tempfile.mkdtemp(), f"annot_{preset}_{crf}.mp4")
    t = time.perf_counter()
    r = write_annotated_video(out, src, video, tracks, scores, preset=preset, crf=int(crf))
    s = time.perf_counter() - t
    mib = os.path.getsize(out) / 2**20
    print(f"| {preset} | {crf} | {r.num_frames} | {s:.1f} | {r.num_frames / s:.0f} | {mib:.1f} |")
