"""Speed and fidelity of Light-ASD / LR-ASD scoring backends on the interview fixture tracks.

For each weights file x backend x windowing x thread count, scores both fixture face tracks
(2 x 437 frames) in one ``predict_tracks_logits`` call and prints face-frames per second (best
of ``--repeats`` wall-clock runs) and the max |class-1 logit - reference| against the public
code's fp32 output for the same windowing (``*_logit_full`` for one pass,
``*_logit_windowed_1to6s_mean`` for the demo windows).

Usage (from the repository root)::

    python benchmarks/bench_model_speed.py [--weights light-asd-ava lr-asd-ava]
        [--threads 1 2] [--repeats 2] [--backends torch-conv3d torch onnx]
        [--shared-dir ../shared]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from socialav.checkpoints.load import load_asd_model
from socialav.inference.asd import WindowConfig, predict_tracks_logits
from socialav.inference.backends import configure_threads, make_runner
from socialav.inference.torch_backend import TorchRunner, export_onnx

WEIGHTS = {
    "light-asd-ava": ("light_asd_ava", "light-asd/pretrain_AVA_CVPR.model"),
    "light-asd-talkset": ("light_asd_talkset", "light-asd/finetuning_TalkSet.model"),
    "lr-asd-ava": ("lr_asd_ava", "lr-asd/pretrain_AVA.model"),
    "lr-asd-talkset": ("lr_asd_talkset", "lr-asd/finetuning_TalkSet.model"),
}
WINDOWINGS = {
    "full pass": (WindowConfig(durations_s=None), "logit_full"),
    "1-6 s, exact": (WindowConfig(), "logit_windowed_1to6s_mean"),
    "1-6 s, track ctx": (WindowConfig(visual_context="track"), "logit_windowed_1to6s_mean"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=["light-asd-ava", "lr-asd-ava"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["torch-conv3d", "torch", "onnx"],
        help="torch-conv3d = the PyTorch model as written; torch = conv2d rewrite; onnx",
    )
    default_shared = Path(__file__).resolve().parents[1].parent / "shared"
    parser.add_argument("--shared-dir", type=Path, default=default_shared)
    args = parser.parse_args()

    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    ref = np.load(args.shared_dir / "fixtures" / "interview_light_asd_reference.npz")
    tracks = [(ref[f"track{k}_faces_gray112"], ref[f"track{k}_mfcc"]) for k in (0, 1)]
    with tempfile.TemporaryDirectory(prefix="socialav-bench-onnx-") as tmp:
        rows = run(args, ref, tracks, Path(tmp))
    print()
    print("\n".join(rows))
    print(f"load average at end: {os.getloadavg()}")


def run(args: argparse.Namespace, ref, tracks, cache: Path) -> list[str]:
    """Time every combination; returns the table rows."""
    frames = sum(len(f) for f, _ in tracks)

    header = (
        f"| {'weights':18} | {'backend':12} | {'windowing':16} | thr | frames/s | max abs dlogit |"
    )
    rows = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for name in args.weights:
        key, rel = WEIGHTS[name]
        model = load_asd_model(args.shared_dir / "weights" / rel)
        t0 = time.perf_counter()
        export_onnx(model, cache)
        print(f"{name}: ONNX export {time.perf_counter() - t0:.1f} s (once per weights, cached)")
        for threads in args.threads:
            configure_threads(threads)
            for backend in args.backends:
                if backend == "torch-conv3d":
                    runner = TorchRunner(model, conv2d_visual=False)
                else:
                    runner = make_runner(model, backend, num_threads=threads, cache_dir=cache)
                for label, (windows, ref_key) in WINDOWINGS.items():
                    best = float("inf")
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        out = predict_tracks_logits(runner, tracks, windows)
                        best = min(best, time.perf_counter() - t0)
                    err = max(
                        float(np.abs(o[:, 1] - ref[f"track{k}_{key}_{ref_key}"]).max())
                        for k, o in enumerate(out)
                    )
                    rows.append(
                        f"| {name:18} | {backend:12} | {label:16} | {threads:3d} | "
                        f"{frames / best:8.1f} | {err:14.2e} |"
                    )
                    print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
