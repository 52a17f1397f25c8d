"""Per-stage and end-to-end real-time factor of `socialav detect`, and peak memory.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed.py
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed.py --long   # + 10 min video

Each video runs `socialav detect` in a fresh subprocess (models loaded once per process, ONNX
files already cached by a warm-up run), so the peak RSS is that of a real user's run. Real-time
factor = video duration / wall-clock seconds (higher is faster; 4x = 4 s of video per second).
`--long` builds a 10-minute 720p video by looping visualvoice_interview.mp4 (stream copy, no
re-encoding) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEOS = [
    "visualvoice_interview.mp4",
    "face_recognition_short_hamilton_clip.mp4",
    "videoretalking_face_4.mp4",
    "grid_bbaf2n.mpg",
]
STAGES = ["audio", "decode", "shots", "detect", "crop", "model", "write", "video"]


def loop_video(src: Path, dest: Path, min_duration_s: float) -> Path:
    """Concatenate ``src`` with itself (packet copy, timestamps shifted) until long enough."""
    span_s = 0.0  # the longest stream's extent, first to last decoding timestamp
    with av.open(str(src)) as inp:
        for stream in inp.streams:
            dts = [(p.dts, p.duration or 0) for p in inp.demux(stream) if p.dts is not None]
            if dts:
                extent = max(d + dur for d, dur in dts) - min(d for d, _ in dts)
                span_s = max(span_s, float(extent * stream.time_base))
            inp.seek(0)
    loops = int(min_duration_s // span_s) + 1
    with av.open(str(dest), "w") as out:
        with av.open(str(src)) as inp:
            streams = {
                s.index: out.add_stream_from_template(s)
                for s in inp.streams
                if s.type in ("video", "audio")
            }
        for k in range(loops):
            with av.open(str(src)) as inp:
                for packet in inp.demux(*[s for s in inp.streams if s.index in streams]):
                    if packet.dts is None:
                        continue
                    shift = int(round(k * span_s / packet.time_base))
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
    return dest


_CHILD = """
import resource, sys
from socialav.cli import app
try:
    app(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
print("MAXRSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run_detect(video: Path, out_dir: Path, extra: list[str]) -> dict:
    """Run `socialav detect` in a subprocess; return its JSON timings and its peak RSS."""
    cmd = [
        sys.executable,
        "-c",
        _CHILD,
        "detect",
        str(video),
        "-o",
        str(out_dir),
        "--overwrite",
        *extra,
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"detect {video} failed:\n{proc.stderr}")
    peak_kib = int(proc.stderr.rsplit("MAXRSS_KIB", 1)[1].split()[0])
    info = json.loads((out_dir / f"{video.stem}.json").read_text())
    return {
        "timings": info["run_info"]["timings_s"],
        "duration_s": info["video"]["duration_s"],
        "tracks": info["num_tracks"],
        "wall_s": wall,
        "peak_rss_mib": peak_kib / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also the 10-minute 720p video")
    parser.add_argument("--videos", default=",".join(VIDEOS))
    parser.add_argument("--extra", default="", help="extra detect options, e.g. '--windows full'")
    args = parser.parse_args(argv)
    extra = args.extra.split()
    print(f"$ {' '.join(['python', *sys.argv])}")
    print(f"cores: {os.cpu_count()}; options: {extra or 'defaults'}\n")
    tmp = Path(tempfile.mkdtemp(prefix="socialav-bench-"))
    videos = [SHARED / "videos" / v for v in args.videos.split(",")]
    run_detect(videos[-1], tmp / "warmup", extra)  # exports/caches ONNX files once
    if args.long:
        videos.append(
            loop_video(
                SHARED / "videos" / "visualvoice_interview.mp4", tmp / "interview_10min.mp4", 600
            )
        )
    header = [
        "video",
        "duration s",
        "tracks",
        *[f"{s} s" for s in STAGES],
        "analysis RTF",
        "end-to-end RTF",
        "peak RSS MiB",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for video in videos:
        kinds = extra + (["--no-video"] if video.name.startswith("interview_10min") else [])
        r = run_detect(video, tmp / video.stem, kinds)
        t = r["timings"]
        analysis = t["total"]
        e2e = r["wall_s"]
        row = [
            video.name, f"{r['duration_s']:.1f}", str(r["tracks"]),
            *[f"{t.get(s, 0.0):.2f}" for s in STAGES],
            f"{r['duration_s'] / analysis:.2f}x", f"{r['duration_s'] / e2e:.2f}x",
            f"{r['peak_rss_mib']:.0f}",
        ]  # fmt: skip
        print("| " + " | ".join(row) + " |", flush=True)
    print(
        "\nanalysis RTF: decode → scores (CSV/RTTM/JSON content) in the process; end-to-end RTF: "
        "wall clock of the whole command incl. Python start-up, model loading, all five outputs "
        "(the 10-minute video without the annotated video)."
    )


if __name__ == "__main__":
    main()
