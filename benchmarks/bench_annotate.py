"""Speed of write_annotated_video at 1280x720 (visualvoice_interview.mp4, 438 frames), at the
source size and capped on its shorter side (``max_short_side_px``, detect's
``--video-max-short-side``).

Run: python benchmarks/bench_annotate.py [--video PATH] [preset:crf[:max_short_side[:scaler]] ...]
(default: the rows below; max_short_side 0 = the source size; ``scaler``: swscale's
interpolation when capped, ``area`` (the default, ``socialav.io.media.I420_INTERPOLATION``),
``bilinear``, ``fast_bilinear``, ``bicubic``). ``--video`` takes another video (e.g. the looped
3-minute interview of ``bench_speed.py``; the face boxes are scaled to its width).

Each row writes the annotated video with the default frames (decoded, converted and scaled
to yuv420p pictures by swscale, drawn on region by region) and random speaking
probabilities on two constant face boxes with badges; the output files stay for a look.
"""

import os
import resource
import sys
import tempfile
import time

import numpy as np

from socialav.io import media
from socialav.io.annotate import write_annotated_video
from socialav.io.media import iter_frames, probe_video
from socialav.types import FaceTrack, TrackScores

DEFAULT_ROWS = [
    "ultrafast:28:0",
    "ultrafast:28:480",
    "ultrafast:28:480:bilinear",
    "ultrafast:28:480:fast_bilinear",
    "superfast:23:0",
    "superfast:23:480",
]

args = sys.argv[1:]
src = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "videos", "visualvoice_interview.mp4"
)
if args[:1] == ["--video"]:
    src, args = args[1], args[2:]
video = probe_video(src)
DEFAULT_SCALER = media.I420_INTERPOLATION
n = video.num_frames
rng = np.random.default_rng(0)
tracks, scores = [], []
for tid, box in enumerate([(256, 146, 640, 504), (700, 60, 1100, 520)]):
    fr = np.arange(n)
    box_px = np.array(box) * video.width_px / 1280
    tracks.append(FaceTrack(tid, fr, np.tile(box_px, (n, 1)), np.zeros((n, 3))))
    p = rng.uniform(size=n)
    scores.append(TrackScores(tid, fr, p, p, extra={"lam": p, "ttm": 1 - p}))
t = time.perf_counter()
k = sum(1 for _ in iter_frames(src, pixel_format="yuv420p"))
dec = time.perf_counter() - t
out_dir = tempfile.mkdtemp(prefix="bench_annotate_")
print(
    f"$ python {' '.join(sys.argv)}   ({os.path.basename(src)}, {video.width_px}x{video.height_px})"
)
print("| preset | crf | max short side | scaler | size | frames | seconds | fps | CPU s | MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
print(
    f"| (decode only, iter_frames yuv420p) | - | - | - | - | {k} | {dec:.1f} | {k / dec:.0f} "
    "| - | - |"
)


def cpu_s() -> float:
    """CPU seconds of this process, all threads (the decoder's and x264's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


for choice in args or DEFAULT_ROWS:
    preset, crf, *rest = choice.split(":")
    cap, scaler = (rest + ["0", ""][len(rest) :])[:2]
    media.I420_INTERPOLATION = scaler.upper() or DEFAULT_SCALER
    capped = 0 < int(cap) < min(video.height_px, video.width_px)
    scaler = media.I420_INTERPOLATION.lower() if capped else "-"
    out = os.path.join(out_dir, f"annot_{preset}_{crf}_{cap}_{scaler}.mp4")
    t, c = time.perf_counter(), cpu_s()
    r = write_annotated_video(
        out, src, video, tracks, scores, preset=preset, crf=int(crf), max_short_side_px=int(cap)
    )
    s, c = time.perf_counter() - t, cpu_s() - c
    mib = os.path.getsize(out) / 2**20
    size = f"{r.width_px}x{r.height_px}"
    cap_text = cap if int(cap) else "source"
    print(
        f"| {preset} | {crf} | {cap_text} | {scaler} | {size} | {r.num_frames} | {s:.1f} "
        f"| {r.num_frames / s:.0f} | {c:.1f} | {mib:.1f} |"
    )
print(f"outputs in {out_dir}")
