"""Head-pose (FSA-Net, onnxruntime) speed per face: one face per run vs batched runs.

Prints a table of milliseconds per face for batch sizes 1..32 (mean of ``--repeats`` runs on
real head crops from a shared clip) and the command that produced it.

    python benchmarks/bench_head_pose.py [--threads 1] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("SOCIALAV_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("SOCIALAV_WEIGHTS_DIR", str(SHARED / "weights"))

    from socialav.checkpoints.load import load_head_pose
    from socialav.io.media import iter_frames
    from socialav.vision.detection import UltraLightFaceDetector
    from socialav.vision.head_pose import head_crop

    detector = UltraLightFaceDetector(SHARED / "weights/ultra-light-face/version-RFB-320.onnx")
    crops = []
    for index, frame in iter_frames(SHARED / "videos/visualvoice_interview.mp4"):
        if index % 10 == 0:
            crops += [head_crop(frame, box) for box in detector.detect(frame).xyxy_px]
        if len(crops) >= 32:
            break
    crops = np.stack(crops[:32])
    model, _ = load_head_pose(num_threads=args.threads)
    print(f"$ python {' '.join(sys.argv)}")
    print(f"FSA-Net 1x1 + var, onnxruntime CPU, {args.threads} thread(s), {os.cpu_count()} cores")
    print("| faces per run | ms per face |")
    print("|---:|---:|")
    for batch in (1, 2, 4, 8, 16, 32):
        model.predict_crops(crops[:batch])  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            model.predict_crops(crops[:batch])
        per_face_ms = (time.perf_counter() - start) / args.repeats / batch * 1000
        print(f"| {batch} | {per_face_ms:.2f} |")


if __name__ == "__main__":
    main()
