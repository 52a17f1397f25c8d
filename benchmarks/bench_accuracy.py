"""Natural and sync AP of each ASD weights / windowing / backend on the real GRID clips.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py \
        --weights light-asd-ava --windows demo --backends torch,onnx,onnx-int8
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py \
        --weights light-asd-sync,runs/light_asd_sync/checkpoints/model_epoch0003.pt

Faces come from socialav's own detector, tracker and crops (the `detect` pipeline); scores
are the speaking probabilities `detect` writes (softmax class 1, 5-frame smoothing).
Benchmarks: see socialav.evaluation.asd_benchmarks. GRID clips were never used in training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from socialav import hub
from socialav.evaluation.asd_benchmarks import (
    BenchmarkClip,
    align_to_frames,
    benchmark_ap,
    natural_items,
    read_grid_align,
    sync_items,
    unique_items,
    voice_activity,
)
from socialav.inference import WindowConfig, configure_threads, make_runner, predict_tracks_logits
from socialav.io.media import probe_video, read_audio
from socialav.models.checkpoints import load_asd_model
from socialav.pipelines.detect import DetectConfig, SpeakerDetector
from socialav.postprocess import smooth, speaking_probability

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WINDOWS = {"full": None, "6s": (6.0,), "demo": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)}
ASD_WEIGHTS = [name for name, e in hub.REGISTRY.items() if e.kind == "asd"]


def load_grid_clips(detector: SpeakerDetector, videos_dir: Path) -> list[BenchmarkClip]:
    """The longest face track of each GRID clip, its audio and its ground truth."""
    clips = []
    for path in sorted(videos_dir.glob("grid_*.mpg")):
        video = probe_video(path)
        track, faces, _ = max(detector.face_tracks(path, video), key=lambda a: len(a.track))
        audio = read_audio(path)[track.start_frame * 640 :]
        align = path.with_suffix(".align")
        if align.exists():
            speech = align_to_frames(read_grid_align(align), video.num_frames)
            speech = speech[track.start_frame : track.end_frame + 1]
        else:
            speech = voice_activity(audio, len(track))
        clips.append(BenchmarkClip(path.stem, faces, audio, speech))
    return clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        default=",".join(ASD_WEIGHTS),
        help="comma-separated registry names or checkpoint files (e.g. a socialav train "
        "model_epoch0003.pt)",
    )
    parser.add_argument("--windows", default="full,6s,demo")
    parser.add_argument("--backends", default="onnx")
    parser.add_argument("--delays", default="5,10", help="delays of the self-pairs, frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--videos", type=Path, default=SHARED / "videos")
    args = parser.parse_args(argv)
    configure_threads(args.threads)

    detector = SpeakerDetector(DetectConfig(num_threads=args.threads))
    clips = load_grid_clips(detector, args.videos)
    items = sync_items(clips, [int(d) for d in args.delays.split(",")])
    natural = natural_items(clips)
    todo = unique_items(items)
    print(f"$ {' '.join(['python', *sys.argv])}")
    print(
        f"{len(clips)} GRID clips, {sum(len(c.faces) for c in clips)} frames, "
        f"{int(sum(c.speech.sum() for c in clips))} speaking; sync set: {len(items) // 2} pairs "
        f"({sum(it.kind == 'cross' for it in items)} cross, "
        f"{sum(it.kind == 'delayed' for it in items)} delayed self-pairs, delays {args.delays})\n"
    )
    print(
        "| weights | windows | backend | natural AP | sync AP | sync: cross only | sync: delayed only | face-frames/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.weights.split(","):
        if name in hub.REGISTRY:
            model = load_asd_model(
                hub.resolve_weights(name), hub.get_entry(name).architecture.replace("_", "-")
            )
        else:  # a checkpoint file: original state_dict or socialav checkpoint (socialav train)
            model = load_asd_model(Path(name))
        for backend in args.backends.split(","):
            runner = make_runner(model, backend, num_threads=args.threads)
            for win in args.windows.split(","):
                windows = WindowConfig(durations_s=WINDOWS[win])
                t = time.perf_counter()
                logits = predict_tracks_logits(
                    runner, [(it.faces, it.mfcc) for it in todo], windows
                )
                dt = time.perf_counter() - t
                scores = {
                    it.name: smooth(speaking_probability(lg), 5)
                    for it, lg in zip(todo, logits, strict=True)
                }
                row = [
                    name, win, backend, f"{benchmark_ap(natural, scores):.2f}",
                    f"{benchmark_ap(items, scores):.2f}",
                    f"{benchmark_ap(items, scores, ['cross']):.2f}",
                    f"{benchmark_ap(items, scores, ['delayed']):.2f}",
                    f"{sum(len(it.faces) for it in todo) / dt:.0f}",
                ]  # fmt: skip
                print("| " + " | ".join(row) + " |", flush=True)
    chance = 100 * np.mean(np.concatenate([it.labels for it in items]))
    print(f"\nchance level (positive rate) of the sync set: {chance:.2f} AP")


if __name__ == "__main__":
    main()
