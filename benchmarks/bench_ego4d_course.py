"""Throughput of ``socialav data ego4d-course`` (seed 000's preprocessing) on a course-format
fixture built from real clips in ../shared/videos.

Each clip becomes a course video (``<hash>.mp4`` as it is), with two persons whose face box is a
fixed rectangle in the left and right half of the frame (the crop cost does not depend on where
the face is) and talking segments of ``--segment-frames`` frames, back to back, for each person
(so every frame is cropped twice). Rows: ``prepare_course`` with 1 and 2 worker processes, and
the seed's access pattern for comparison -- every segment decoded on its own after a seek to its
first frame (``cv2.CAP_PROP_POS_FRAMES``, as ``preprocess_*2npz.py``), same samples
(:func:`socialav.data.ego4d.course.course_sample`). Samples/s counts written ``.npz`` files per
second of wall time, start-up excluded.

    python benchmarks/bench_ego4d_course.py [--videos A.mp4 B.mp4] [--segment-frames 60]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from socialav.data.ego4d.course import course_sample, read_course_video, write_course_sample
from socialav.data.ego4d.course_job import prepare_course
from socialav.io.media import probe_video, read_audio

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
DEFAULT = ["visualvoice_interview.mp4", "face_recognition_short_hamilton_clip.mp4"]


def build_fixture(videos: list[Path], root: Path, segment_frames: int) -> int:
    for sub in ("videos", "seg", "bbox"):
        (root / sub).mkdir(parents=True)
    count = 0
    for i, video in enumerate(videos):
        vid = f"clip{i}"
        shutil.copy(video, root / "videos" / f"{vid}.mp4")
        info = probe_video(video, fps=30.0)
        w, h, n = info.width_px, info.height_px, int(info.duration_s * 30)
        boxes = {
            "1": (w * 0.1, h * 0.2, w * 0.4, h * 0.7),
            "2": (w * 0.6, h * 0.2, w * 0.9, h * 0.7),
        }
        lines = ["person_id,frame_id,x1,y1,x2,y2"]
        for pid, box in boxes.items():
            lines += [f"{pid},{f},{','.join(f'{v:.1f}' for v in box)}" for f in range(n)]
        (root / "bbox" / f"{vid}_bbox.csv").write_text("\n".join(lines) + "\n")
        seg = ["person_id,start_frame,end_frame,ttm"]
        for pid in boxes:
            for start in range(0, n - segment_frames + 1, segment_frames):
                seg.append(f"{pid},{start},{start + segment_frames - 1},{count % 2}")
                count += 1
        (root / "seg" / f"{vid}_seg.csv").write_text("\n".join(seg) + "\n")
    return count


class SeekPerSegment:
    """The seed's access: ``cap.set(CAP_PROP_POS_FRAMES, start)`` then read forward."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache: dict[int, np.ndarray] = {}

    def load(self, start: int, end: int) -> None:
        cap = cv2.VideoCapture(str(self.path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        self.cache = {}
        for f in range(start, end + 1):
            ok, bgr = cap.read()
            if not ok:
                break
            self.cache[f] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        cap.release()

    def frame(self, clip_uid: str, frame: int) -> np.ndarray | None:
        return self.cache.get(frame)


def seek_per_segment(root: Path, out: Path) -> tuple[int, float]:
    start = time.perf_counter()
    written = 0
    out.mkdir(parents=True)
    for seg_csv in sorted((root / "seg").glob("*_seg.csv")):
        vid = seg_csv.name.removesuffix("_seg.csv")
        video = root / "videos" / f"{vid}.mp4"
        audio = read_audio(video)
        source = SeekPerSegment(video)
        for seg in read_course_video(seg_csv, root / "bbox" / f"{vid}_bbox.csv"):
            source.load(seg.start_frame, seg.end_frame)
            write_course_sample(course_sample(seg, source, audio), out / f"{written}.npz")
            written += 1
    return written, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="*", type=Path, default=[SHARED / v for v in DEFAULT])
    parser.add_argument("--segment-frames", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = build_fixture(args.videos, root / "fixture", args.segment_frames)
        rows = []
        for workers in (1, 2):
            summary = prepare_course(
                root / "fixture" / "videos",
                root / "fixture" / "seg",
                root / "fixture" / "bbox",
                root / f"out{workers}",
                "train",
                workers=workers,
            )
            assert summary.written == samples and not summary.issues
            rows.append((f"prepare_course, {workers} worker(s)", summary.written, summary.seconds))
        written, seconds = seek_per_segment(root / "fixture", root / "seek")
        rows.append(("seek + decode per segment (seed's access)", written, seconds))
    print(f"command: python {' '.join(sys.argv)}")
    print(f"videos: {', '.join(v.name for v in args.videos)}; {args.segment_frames}-frame segments")
    print("| method | samples | seconds | samples/s |")
    print("|---|---|---|---|")
    for name, n, s in rows:
        print(f"| {name} | {n} | {s:.2f} | {n / s:.2f} |")


if __name__ == "__main__":
    main()
