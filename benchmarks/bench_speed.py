"""Per-stage and end-to-end real-time factor of `socialav detect`, the decode floor, peak
memory, the time to the first decoded frame and the start-up time of the command line.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed.py            # 17.5 s, 3 min, 10 min
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed.py --no-long  # without 10 min
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed.py --extra "--no-diarize"

Each video runs `socialav detect` with all default outputs in a fresh subprocess (models loaded
once per process, ONNX files already cached by a warm-up run), so the peak RSS is that of a
real user's run. Real-time factor (RTF) = video duration / wall-clock seconds (higher is
faster). The 3- and 10-minute videos are `visualvoice_interview.mp4` looped (stream copy, no
re-encoding) into a temporary folder. *Decode floor*: a plain PyAV decode of the same file to
RGB arrays (threaded decoding), measured in the same run; *detect / floor* = end-to-end wall
clock / decode floor. *First frame*: seconds from the process start to the first decoded frame
of the analysis. With the ASD model on its own thread (the default with ``--device cuda``) the
stage seconds overlap and add up to more than the analysis wall clock.
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
VIDEOS = ["visualvoice_interview.mp4"]
STAGES = ["audio", "decode", "shots", "detect", "face_embedding", "crop", "model", "persons"]
OUTPUT_STAGES = ["write", "video", "report"]
#: the diarization's stages after the analysis, reported together as "persons"
PERSON_STAGES = ("vad", "voice", "persons")


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
import time
T0 = time.perf_counter()
import resource, sys
import socialav.pipelines.analysis as analysis
_iter_frames = analysis.iter_frames
def _first_frame_timed(*args, **kwargs):
    for i, item in enumerate(_iter_frames(*args, **kwargs)):
        if i == 0:
            print("FIRST_FRAME_S", time.perf_counter() - T0, file=sys.stderr)
        yield item
analysis.iter_frames = _first_frame_timed
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
    first_frame_s = float(proc.stderr.split("FIRST_FRAME_S", 1)[1].split()[0])
    info = json.loads((out_dir / f"{video.stem}.json").read_text())
    timings = dict(info["run_info"]["timings_s"])
    timings["persons"] = sum(timings.pop(k, 0.0) for k in PERSON_STAGES)
    return {
        "timings": timings,
        "duration_s": info["video"]["duration_s"],
        "tracks": info["num_tracks"],
        "wall_s": wall,
        "peak_rss_mib": peak_kib / 1024,
        "first_frame_s": first_frame_s,
    }


def decode_floor_s(video: Path) -> float:
    """Seconds for a plain PyAV decode of every frame to RGB arrays (threaded decoding)."""
    t = time.perf_counter()
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
    return time.perf_counter() - t


def help_seconds(args: list[str], repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock seconds of ``socialav ARGS`` (a new process each)."""
    exe = Path(sys.executable).with_name("socialav")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "socialav.cli"]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([*cmd, *args], capture_output=True, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--long", action=argparse.BooleanOptionalAction, default=True, help="the 10-minute video"
    )
    parser.add_argument("--videos", default=",".join(VIDEOS), help="clips of ../shared/videos")
    parser.add_argument("--extra", default="", help="extra detect options, e.g. '--no-diarize'")
    args = parser.parse_args(argv)
    extra = args.extra.split()
    print(f"$ {' '.join(['python', *sys.argv])}")
    print(f"cores: {os.cpu_count()}; options: {extra or 'defaults'}\n")
    for cmd in (["--help"], ["detect", "--help"]):
        print(f"socialav {' '.join(cmd)}: {help_seconds(cmd):.2f} s (best of 3)")
    tmp = Path(tempfile.mkdtemp(prefix="socialav-bench-"))
    videos = [SHARED / "videos" / v for v in args.videos.split(",") if v]
    interview = SHARED / "videos" / "visualvoice_interview.mp4"
    videos.append(loop_video(interview, tmp / "interview_3min.mp4", 180))
    if args.long:
        videos.append(loop_video(interview, tmp / "interview_10min.mp4", 600))
    run_detect(SHARED / "videos" / "grid_bbaf2n.mpg", tmp / "warmup", extra)  # ONNX cache
    header = [
        "video",
        "duration s",
        "tracks",
        *[f"{s} s" for s in STAGES],
        "analysis s",
        *[f"{s} s" for s in OUTPUT_STAGES],
        "end-to-end s",
        "decode floor s",
        "detect / floor",
        "analysis RTF",
        "end-to-end RTF",
        "first frame s",
        "peak RSS MiB",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for video in videos:
        floor = decode_floor_s(video)
        r = run_detect(video, tmp / video.stem, extra)
        t = r["timings"]
        analysis = t["total"]
        e2e = r["wall_s"]
        row = [
            video.name, f"{r['duration_s']:.1f}", str(r["tracks"]),
            *[f"{t.get(s, 0.0):.2f}" for s in STAGES], f"{analysis:.2f}",
            *[f"{t.get(s, 0.0):.2f}" for s in OUTPUT_STAGES], f"{e2e:.2f}",
            f"{floor:.2f}", f"{e2e / floor:.2f}",
            f"{r['duration_s'] / analysis:.2f}x", f"{r['duration_s'] / e2e:.2f}x",
            f"{r['first_frame_s']:.2f}", f"{r['peak_rss_mib']:.0f}",
        ]  # fmt: skip
        print("| " + " | ".join(row) + " |", flush=True)
    print(
        "\nanalysis: decode -> scores and persons (CSV/RTTM/JSON content) in the process; "
        "end-to-end: wall clock of the whole command incl. Python start-up, model loading and "
        "all default outputs (CSV, RTTM, JSON, timeline, annotated video, report)."
    )


if __name__ == "__main__":
    main()
