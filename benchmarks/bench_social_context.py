"""What the optional models cost in ``socialav detect``: zero-shot LAM/TTM vs Ego4D-trained
checkpoints (GazeLSTM + both QuAVF branches at reference size), and plain ASD vs
``--context`` (a scene-context checkpoint built from light-asd-ava with a default-size,
untrained scene branch: the cost does not depend on the weights).

The checkpoints are randomly initialised (no Ego4D-trained weights exist here) and written to a
temporary folder; only speed is measured. Prints a table and the command that produced it.

    python benchmarks/bench_social_context.py [--video PATH] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("SOCIALAV_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def _checkpoints(folder: Path) -> dict[str, Path]:
    import torch

    from socialav.checkpoints.format import save_model_checkpoint
    from socialav.models.gaze_lstm import GazeLSTM
    from socialav.models.quavf import QuavfAudioBranch, QuavfVisualBranch
    from socialav.models.scene_context import scene_context_from_asd
    from socialav.training.checkpoint import load_initial_model

    torch.manual_seed(0)
    context = scene_context_from_asd(load_initial_model("light-asd-ava", "light-asd"))
    return {
        "lam": save_model_checkpoint(
            folder / "lam.pt", GazeLSTM(), input_contract={"face_size_px": 224}
        ),
        "ttm_visual": save_model_checkpoint(
            folder / "ttm_visual.pt",
            QuavfVisualBranch(),
            input_contract={"face_size_px": 224, "feat_length": 15, "frame_stride": 15},
        ),
        "ttm_audio": save_model_checkpoint(
            folder / "ttm_audio.pt", QuavfAudioBranch(), input_contract={"n_mels": 80}
        ),
        "context": save_model_checkpoint(
            folder / "context.pt",
            context,
            architecture_config=context.architecture_config(),
            input_contract={"scene_size_px": context.scene_size_px},
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "videos/visualvoice_interview.mp4")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("SOCIALAV_WEIGHTS_DIR", str(SHARED / "weights"))

    from socialav.io.media import probe_video
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    duration_s = probe_video(args.video).duration_s
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = _checkpoints(Path(tmp))
        runs = {
            "asd,lam,ttm zero-shot": DetectConfig(tasks=("asd", "lam", "ttm")),
            "asd,lam,ttm trained (GazeLSTM + QuAVF)": DetectConfig(
                tasks=("asd", "lam", "ttm"),
                lam_weights=str(ckpt["lam"]),
                ttm_weights=(str(ckpt["ttm_visual"]), str(ckpt["ttm_audio"])),
            ),
            "asd (light-asd-ava, torch)": DetectConfig(
                asd_weights="light-asd-ava", backend="torch"
            ),
            "asd --context (scene-context)": DetectConfig(
                context_weights=str(ckpt["context"]), backend="torch"
            ),
        }
        for name, config in runs.items():
            config = dataclasses.replace(config, num_threads=args.threads)
            detector = SpeakerDetector(config)
            tick = time.perf_counter()
            detector.run(args.video)
            seconds = time.perf_counter() - tick
            rows.append((name, seconds, duration_s / seconds))

    print("$ python " + " ".join(sys.argv))
    print(
        f"{args.video.name}: {duration_s:.1f} s, {args.threads} threads, models loaded before timing\n"
    )
    print("| run | analysis s | real-time factor |")
    print("|---|---|---|")
    for name, seconds, factor in rows:
        print(f"| {name} | {seconds:.1f} | {factor:.2f}x |")


if __name__ == "__main__":
    main()
