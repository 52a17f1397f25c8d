"""Size and write time of the HTML report (``<stem>.report.html``) on long videos.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_report.py
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_report.py --skip-real  # no 3-min detect

Videos: visualvoice_interview.mp4 (17.5 s, 720p, two faces) and the same looped to 3 and 10
minutes by stream copy (``bench_speed.loop_video``, as in the speed issue), in a temporary
folder outside the repository. Records: the interview and the 3-minute video go through
``socialav detect`` (``--tasks asd,lam,ttm``: three curves per face, the larger report); the
10-minute record is the interview's record tiled in time (each loop's tracks shifted by the
loop's length: new track ids, as the cut at each loop would give) instead of a 10-minute
detect run, and so is a 3-minute tiled record for comparison. Every report is written from
the record with ``source_video`` = the looped file, so the face thumbnails are cut from it
(one seek per track). Write time = wall-clock seconds of ``write_report`` (one thread),
after one warm-up write (imports, first decoder start).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import loop_video  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
INTERVIEW = SHARED / "videos" / "visualvoice_interview.mp4"


def detect_record(video: Path, threads: int) -> dict:
    """``socialav detect --tasks asd,lam,ttm`` on one video, as the JSON record."""
    from socialav.io.writers import detection_record
    from socialav.pipelines.detect import DetectConfig, SpeakerDetector

    detector = SpeakerDetector(DetectConfig(tasks=("asd", "lam", "ttm"), num_threads=threads))
    result = detector.run(video)
    return detection_record(result.video, result.tracks, result.scores, result.run_info)


def tile_record(record: dict, loops: int, video: Path) -> dict:
    """The record repeated ``loops`` times in time (tracks shifted by the clip's length)."""
    fps = float(record["video"]["fps"])
    span = int(record["video"]["num_frames"])
    n = len(record["tracks"])
    out = copy.deepcopy(record)
    out["tracks"] = []
    for k in range(loops):
        shift = k * span
        for track in record["tracks"]:
            t = copy.deepcopy(track)
            t["track_id"] = k * n + int(track["track_id"])
            t["entity_id"] = f"{video.stem}:{t['track_id']}"
            t["start_frame"] += shift
            t["end_frame"] += shift
            t["start_s"] = round(t["start_frame"] / fps, 6)
            t["end_s"] = round((t["end_frame"] + 1) / fps, 6)
            t["frame_indices"] = [f + shift for f in track["frame_indices"]]
            t["frame_timestamps_s"] = [round(f / fps, 6) for f in t["frame_indices"]]
            for seg in t["segments"]:
                seg["start_frame"] += shift
                seg["end_frame"] += shift
                seg["start_s"] = round(seg["start_frame"] / fps, 6)
                seg["end_s"] = round((seg["end_frame"] + 1) / fps, 6)
            out["tracks"].append(t)
    out["num_tracks"] = len(out["tracks"])
    out["video"].update(
        path=str(video),
        video_id=video.stem,
        num_frames=loops * span,
        duration_s=loops * span / fps,
    )
    cuts = [
        int(c) + k * span
        for k in range(loops)
        for c in record["run_info"].get("shot_cut_frames", [])
    ]
    out["run_info"]["shot_cut_frames"] = cuts
    out["run_info"]["num_shot_cuts"] = len(cuts)
    return out


def measure(record: dict, video: Path, out_dir: Path, embed: bool = False) -> dict:
    from socialav.io.report import video_href, write_report

    path = out_dir / f"{video.stem}.{len(record['tracks'])}.report.html"
    t = time.perf_counter()
    result = write_report(
        path,
        record,
        video_href=video_href(video, out_dir),
        source_video=video,
        embed_video=video if embed else None,
    )
    wall = time.perf_counter() - t
    face_frames = sum(t["end_frame"] - t["start_frame"] + 1 for t in record["tracks"])
    return {
        "duration_s": record["video"]["duration_s"],
        "tracks": len(record["tracks"]),
        "face_frames": face_frames,
        "size_kb": result.size_bytes / 1024,
        "write_s": wall,
        "thumbs_s": result.timings_s["thumbnails"],
        "step": result.step_frames,
        "embedded": result.embedded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-real", action="store_true", help="no 3-minute detect run")
    parser.add_argument("--threads", type=int, default=1, help="threads of the detect runs")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    rows = []
    with tempfile.TemporaryDirectory(prefix="socialav-bench-report-") as tmp:
        tmp = Path(tmp)
        video_3 = loop_video(INTERVIEW, tmp / "interview_3min.mp4", 180)
        video_10 = loop_video(INTERVIEW, tmp / "interview_10min.mp4", 600)
        base = detect_record(INTERVIEW, args.threads)
        measure(base, INTERVIEW, tmp)  # warm-up: imports (OpenCV), first decoder start
        rows.append(("interview 17.5 s", "detect", measure(base, INTERVIEW, tmp)))
        rows.append(
            (
                "interview 17.5 s",
                "detect, --report-embed",
                measure(base, INTERVIEW, tmp, embed=True),
            )
        )
        loops_3 = int(180 // base["video"]["duration_s"]) + 1
        loops_10 = int(600 // base["video"]["duration_s"]) + 1
        rows.append(
            (
                "3 min (looped)",
                "interview tiled",
                measure(tile_record(base, loops_3, video_3), video_3, tmp),
            )
        )
        if not args.skip_real:
            rows.append(
                (
                    "3 min (looped)",
                    "detect",
                    measure(detect_record(video_3, args.threads), video_3, tmp),
                )
            )
        rows.append(
            (
                "10 min (looped)",
                "interview tiled",
                measure(tile_record(base, loops_10, video_10), video_10, tmp),
            )
        )

    print()
    print(
        "| video | record | duration s | face tracks | face-frames | report KB | write s | of which thumbnails s | series step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, source, m in rows:
        print(
            f"| {name} | {source} | {m['duration_s']:.1f} | {m['tracks']} | {m['face_frames']} | "
            f"{m['size_kb']:.0f} | {m['write_s']:.2f} | {m['thumbs_s']:.2f} | {m['step']} |"
        )
    print()
    print(
        "command: SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_report.py "
        + " ".join(sys.argv[1:])
    )


if __name__ == "__main__":
    main()
