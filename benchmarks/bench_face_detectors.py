"""Face-detector benchmark: recall after tracking, and speed, on the shared real videos.

Run from the repository root::

    python benchmarks/bench_face_detectors.py [--shared-dir ../shared] [--threads 1]

For every detector configuration (Ultra-Light RFB-640 / RFB-320 / slim-320, stretch or
letterbox resize) the detector runs on every frame of every video once; running it on every
k-th frame is simulated by feeding only those frames' detections to the tracker (the
detections of a frame do not depend on k). The tracker (``socialav.vision.tracking``, demo
defaults, cut at the shot boundaries found by ``ShotBoundaryDetector``) interpolates between
detected frames, and recall is measured on the tracks' per-frame boxes: the fraction of
ground-truth faces matched by a track box with IoU >= 0.5 (greedy, one-to-one).

Ground truth (pseudo): per frame, the detections (score > 0.7) of all six configurations are
clustered greedily (IoU > 0.3 with the cluster's best box); a cluster found by at least two
configurations is a face (its best box is the GT box). In clips whose number of faces is known
(interview: 2; talking heads and GRID: 1) the GT is that many faces per frame (most votes
first), a face no cluster covers counting as a miss for everyone. In the Hamilton clip (0-4
faces, cuts to the audience) the GT is every such cluster (checked by eye on frames 5, 30, 60,
100, 190, 220). ``det:hamilton`` is the recall of the raw detections on every frame, before
tracking (which drops tracks of 10 detections or fewer, as the demo).

Detection schedule for every-k: the detector runs on the first frame of each shot and every
k-th frame after it; skipped frames are passed to the tracker as ``None``.

``ms/frame`` is the detector's wall time per analysed frame on the 1280x720 interview
(pre-processing + onnxruntime + NMS, median over frames) and amortised per video frame (/k).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from socialav.io.media import iter_frames
from socialav.types import Detections
from socialav.vision.detection import UltraLightFaceDetector, box_iou_one_to_many
from socialav.vision.shots import ShotBoundaryDetector
from socialav.vision.tracking import TrackerConfig, track_faces

VIDEO_GROUPS: dict[str, tuple[list[str], int | None]] = {
    "interview": (["visualvoice_interview.mp4"], 2),
    "talking_heads": ([f"videoretalking_face_{i}.mp4" for i in range(1, 6)], 1),
    "grid": (
        [
            "grid_bbaf2n.mpg",
            "grid_brbk7n.mpg",
            "grid_id2_vcd_swwp2s.mpg",
            "grid_lbax4n.mpg",
            "grid_sbia1a.mpg",
        ],
        1,
    ),
    "hamilton": (["face_recognition_short_hamilton_clip.mp4"], None),
}
CONFIGS: list[tuple[str, str]] = [
    ("RFB-640", "stretch"),
    ("RFB-640", "letterbox"),
    ("RFB-320", "stretch"),
    ("RFB-320", "letterbox"),
    ("slim-320", "stretch"),
    ("slim-320", "letterbox"),
]
GT_CLUSTER_IOU = 0.3
GT_MIN_VOTES = 2
EVERY_K = (1, 2, 3, 5)


@dataclass
class VideoRun:
    num_frames: int
    cuts: list[int]
    dets: dict[tuple[str, str], list[Detections]]
    times_s: dict[tuple[str, str], list[float]]


def run_video(path: Path, detectors: dict) -> VideoRun:
    shots = ShotBoundaryDetector()
    dets: dict = {key: [] for key in detectors}
    times: dict = {key: [] for key in detectors}
    n = 0
    for frame_index, frame in iter_frames(path):
        shots.update(frame_index, frame)
        for key, detector in detectors.items():
            start = time.perf_counter()
            dets[key].append(detector.detect(frame))
            times[key].append(time.perf_counter() - start)
        n += 1
    return VideoRun(n, list(shots.cut_frames), dets, times)


def pseudo_ground_truth(run: VideoRun, num_faces: int | None) -> list[np.ndarray]:
    """Per frame, the faces found (score > 0.7) by at least ``GT_MIN_VOTES`` configurations."""
    keys = list(run.dets)
    gt = []
    for i in range(run.num_frames):
        boxes = np.concatenate([run.dets[key][i].xyxy_px for key in keys])
        scores = np.concatenate([run.dets[key][i].confidence for key in keys])
        source = np.concatenate([np.full(len(run.dets[key][i]), j) for j, key in enumerate(keys)])
        found = []  # (votes, best score, box) per cluster
        remaining = np.argsort(-scores, kind="stable")
        while remaining.size:
            best = remaining[0]
            iou = box_iou_one_to_many(boxes[best], boxes[remaining])
            cluster = remaining[iou > GT_CLUSTER_IOU]
            found.append((len(set(source[cluster].tolist())), float(scores[best]), boxes[best]))
            remaining = remaining[iou <= GT_CLUSTER_IOU]
        found = [f for f in found if f[0] >= GT_MIN_VOTES]
        found.sort(key=lambda f: (f[0], f[1]), reverse=True)
        if num_faces is not None:
            found = found[:num_faces]
        gt.append(np.array([f[2] for f in found], dtype=np.float32).reshape(-1, 4))
    return gt


def match_count(pred: np.ndarray, gt: np.ndarray, iou_min: float = 0.5) -> int:
    """Greedy one-to-one matching by IoU; returns the number of matched GT boxes."""
    if len(pred) == 0 or len(gt) == 0:
        return 0
    pairs = [
        (iou, gi, pi)
        for gi, box in enumerate(gt)
        for pi, iou in enumerate(box_iou_one_to_many(box, pred))
        if iou >= iou_min
    ]
    used_g, used_p = set(), set()
    for _, gi, pi in sorted(pairs, reverse=True):
        if gi not in used_g and pi not in used_p:
            used_g.add(gi)
            used_p.add(pi)
    return len(used_g)


def evaluate(run: VideoRun, gt: list[np.ndarray], key, k: int, num_faces: int | None):
    shot_start = 0
    frames = []
    for i in range(run.num_frames):
        if i in run.cuts:
            shot_start = i
        frames.append((i, run.dets[key][i] if (i - shot_start) % k == 0 else None))
    tracks = track_faces(frames, run.cuts, TrackerConfig(detect_every=k))
    per_frame: list[list[np.ndarray]] = [[] for _ in range(run.num_frames)]
    for track in tracks:
        for f, box in zip(track.frame_indices, track.boxes_xyxy_px, strict=True):
            per_frame[int(f)].append(box)
    matched = total_gt = total_pred = 0
    for i in range(run.num_frames):
        pred = np.array(per_frame[i]).reshape(-1, 4)
        total_gt += num_faces if num_faces is not None else len(gt[i])
        total_pred += len(pred)
        matched += match_count(pred, gt[i])
    return matched, total_gt, total_pred


def time_chain(videos_dir: Path, weights_dir: Path, threads: int, configs) -> None:
    """Wall time of the streaming vision chain on the 720p interview (17.52 s of video)."""
    from socialav.vision.crops import crop_face

    path = videos_dir / "visualvoice_interview.mp4"
    start = time.perf_counter()
    num_frames = sum(1 for _ in iter_frames(path))
    decode_s = time.perf_counter() - start
    print(f"\nstreaming chain on {path.name} ({num_frames} frames = {num_frames / 25:.2f} s):")
    print(f"  decode only (iter_frames): {decode_s:.2f} s")
    print(
        f"  {'config':26} {'decode+shots+detect+track':>26} {'crops':>7} {'faces':>6} {'ms/face':>8}"
    )
    for model, mode, k in configs:
        detector = UltraLightFaceDetector(
            weights_dir / "ultra-light-face" / f"version-{model}.onnx",
            resize_mode=mode,
            intra_op_num_threads=threads,
        )
        shots = ShotBoundaryDetector()
        tracker_config = TrackerConfig(detect_every=k)
        stream = []
        shot_start = 0
        start = time.perf_counter()
        for frame_index, frame in iter_frames(path):
            if shots.update(frame_index, frame):
                shot_start = frame_index
            run = (frame_index - shot_start) % k == 0
            stream.append((frame_index, detector.detect(frame) if run else None))
        tracks = track_faces(stream, shots.cut_frames, tracker_config)
        chain_s = time.perf_counter() - start
        by_frame: dict[int, list] = {}
        for track in tracks:
            for f, geometry in zip(track.frame_indices, track.crop_size_cx_cy_px, strict=True):
                by_frame.setdefault(int(f), []).append(geometry)
        crop_s = 0.0
        faces = 0
        for frame_index, frame in iter_frames(path):
            t0 = time.perf_counter()
            for geometry in by_frame.get(frame_index, []):
                crop_face(frame, *(float(v) for v in geometry))
                faces += 1
            crop_s += time.perf_counter() - t0
        name = f"{model} {mode} k={k}"
        print(
            f"  {name:26} {chain_s:>24.2f} s {crop_s:>5.2f} s {faces:>6} "
            f"{1000 * crop_s / max(faces, 1):>8.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument("--shared-dir", type=Path, default=default_shared)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--chain-only", action="store_true", help="only time the streaming chain on the interview"
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    videos_dir = args.shared_dir / "videos"
    weights_dir = args.shared_dir / "weights"
    chain_configs = [
        ("RFB-640", "stretch", 1),
        ("RFB-640", "stretch", 5),
        ("RFB-320", "stretch", 2),
        ("RFB-320", "stretch", 3),
        ("RFB-320", "letterbox", 3),
        ("slim-320", "stretch", 3),
    ]
    if args.chain_only:
        print("command: python " + " ".join(sys.argv) + f"  (cpu count {os.cpu_count()})")
        time_chain(videos_dir, weights_dir, args.threads, chain_configs)
        return
    detectors = {
        (model, mode): UltraLightFaceDetector(
            weights_dir / "ultra-light-face" / f"version-{model}.onnx",
            resize_mode=mode,
            intra_op_num_threads=args.threads,
        )
        for model, mode in CONFIGS
    }
    results: dict = {}  # (key, k, group) -> [matched, gt, pred]
    speed: dict = {}
    gt_counts: dict = {}
    raw_recall: dict = {}
    for group, (names, num_faces) in VIDEO_GROUPS.items():
        for name in names:
            run = run_video(videos_dir / name, detectors)
            gt = pseudo_ground_truth(run, num_faces)
            gt_counts[name] = (run.num_frames, run.cuts, sum(len(g) for g in gt))
            if group == "hamilton":
                for key in detectors:
                    hits = sum(
                        match_count(run.dets[key][i].xyxy_px, gt[i]) for i in range(run.num_frames)
                    )
                    raw_recall[key] = hits / max(1, sum(len(g) for g in gt))
            if name == "visualvoice_interview.mp4":
                speed = {key: float(np.median(run.times_s[key])) * 1000 for key in detectors}
            for key in detectors:
                for k in EVERY_K:
                    m, g, p = evaluate(run, gt, key, k, num_faces)
                    acc = results.setdefault((key, k, group), [0, 0, 0])
                    acc[0] += m
                    acc[1] += g
                    acc[2] += p
            print(f"# done {name}: {run.num_frames} frames, cuts {run.cuts}", file=sys.stderr)

    print("command: python " + " ".join(sys.argv) + f"  (cpu count {os.cpu_count()})")
    print("pseudo-GT faces per video (frames, cuts, GT boxes):")
    for name, (n, cuts, count) in gt_counts.items():
        print(f"  {name}: {n} frames, cuts {cuts}, {count} GT faces")
    groups = list(VIDEO_GROUPS)
    header = (
        f"{'detector':9} {'input':8} {'resize':9} {'k':>2} "
        + " ".join(f"{'R:' + g:>15}" for g in groups)
        + f" {'P:hamilton':>11} {'det:hamilton':>13} {'ms/det':>7} {'ms/frame':>8}"
    )
    print(header)
    print("-" * len(header))
    for model, mode in CONFIGS:
        det = detectors[(model, mode)]
        size = f"{det.input_width_px}x{det.input_height_px}"
        for k in EVERY_K:
            row = f"{model:9} {size:8} {mode:9} {k:>2} "
            for g in groups:
                m, total, _ = results[((model, mode), k, g)]
                row += f"{m / max(total, 1):>15.4f} "
            m, _, p = results[((model, mode), k, "hamilton")]
            raw = raw_recall[(model, mode)]
            ms = speed[(model, mode)]
            row += f"{m / max(p, 1):>11.4f} {raw:>13.4f} {ms:>7.2f} {ms / k:>8.2f}"
            print(row)
    time_chain(videos_dir, weights_dir, args.threads, chain_configs)


if __name__ == "__main__":
    main()
