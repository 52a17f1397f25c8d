"""Natural and sync AP of each ASD weights / windowing / backend on the real GRID clips.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py \
        --weights light-asd-ava --windows demo --backends torch,onnx
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py \
        --weights light-asd-sync,runs/light_asd_sync/checkpoints/model_epoch0003.pt
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_accuracy.py --windows full \
        --weights light-asd-ava,runs/scene_context_sync/checkpoints/model_epoch0010.pt

Faces come from socialav's own detector, tracker and crops (the `detect` pipeline); scores
are the speaking probabilities `detect` writes (softmax class 1, 5-frame smoothing).
Benchmarks: see socialav.evaluation.asd_benchmarks. GRID clips were never used in training.

A socialav `scene-context` checkpoint (TalkNet+DeiT style, socialav.models.scene_context) is
scored as `detect --context` scores it (socialav.pipelines.detect.
predict_tracks_logits_with_context): the base model on the faces plus the scene embedding of
every frame. Its items carry scenes: natural = the clip's own full frames; sync = the
two-face scene of the pair, the two clips' frames side by side (own clip left; delayed pairs:
the clip beside its delayed copy); see socialav.evaluation.asd_benchmarks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from socialav import hub
from socialav.checkpoints.load import load_pretrained
from socialav.evaluation.asd_benchmarks import (
    BenchmarkClip,
    benchmark_ap,
    natural_items,
    sync_items,
    unique_items,
)
from socialav.inference.asd import WindowConfig, predict_tracks_logits
from socialav.inference.backends import configure_threads, load_asd_runner, make_runner
from socialav.inference.context import predict_tracks_logits_with_context
from socialav.inference.segments import smooth, speaking_probability
from socialav.models.scene_context import SceneContextASD
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.pipelines.sync_clips import extract_sync_clip

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WINDOWS = {"full": None, "6s": (6.0,), "demo": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)}
ASD_WEIGHTS = [name for name, e in hub.REGISTRY.items() if e.kind == "asd"]


def load_grid_clips(
    detector: SpeakerDetector,
    videos_dir: Path,
    with_frames: bool = False,
    exclude: tuple[str, ...] = (),
) -> list[BenchmarkClip]:
    """The longest face track of each GRID clip (but those whose stem is in ``exclude``),
    its audio and its ground truth (and, with ``with_frames``, the full RGB frames of the
    track's span, for scene-context models)."""
    clips = []
    for path in sorted(videos_dir.glob("grid_*.mpg")):
        if path.stem not in exclude:
            clips.append(extract_sync_clip(detector, path, with_frames=with_frames))
    return clips


def load_weights(name: str):
    """``(asd_model, scene_context_model | None)`` for a registry name or a checkpoint file
    (an original Light-ASD / LR-ASD state_dict, or a socialav checkpoint of an ASD or of the
    scene-context architecture)."""
    model, _ = load_pretrained(name, task="asd")
    if isinstance(model, SceneContextASD):
        return model.base, model
    return model, None


def context_logits(runner, model, items, windows: WindowConfig) -> list[np.ndarray]:
    """Logits of benchmark items with a scene-context model: scene embeddings of each item's
    scenes (shared scene arrays are encoded once, 32 frames per call), then
    ``predict_tracks_logits_with_context`` with the base model's ``runner``."""
    import torch

    from socialav.models.scene_context import scene_input

    cache: dict[int, np.ndarray] = {}
    tracks = []
    with torch.inference_mode():
        for it in items:
            key = id(it.scenes.base if it.scenes.base is not None else it.scenes)
            if key not in cache:
                full = it.scenes if it.scenes.base is None else it.scenes.base
                embeds = [
                    model.scene_encoder(torch.from_numpy(scene_input(full[i : i + 32])))
                    for i in range(0, len(full), 32)
                ]
                cache[key] = model.context_term(torch.cat(embeds)).numpy()
            tracks.append((it.faces, it.mfcc, cache[key][: len(it.faces)]))
    return predict_tracks_logits_with_context(runner, tracks, windows, max_batch_frames=128)


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
    parser.add_argument(
        "--exclude",
        default="",
        help="comma-separated GRID clip stems to leave out (grid_bbaf2n is speaker s1: leave "
        "it out when a model trained on s1 is compared)",
    )
    parser.add_argument(
        "--heldout-cache",
        type=Path,
        action="append",
        default=[],
        help="clip caches of the held-out sync benchmark (benchmarks/sync_heldout.py): "
        "also print its per-case table for the same weights (repeatable)",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)

    detector = SpeakerDetector(DetectConfig(num_threads=args.threads))
    models = {name: load_weights(name) for name in args.weights.split(",")}
    with_frames = any(ctx is not None for _, ctx in models.values())
    exclude = tuple(x for x in args.exclude.split(",") if x)
    clips = load_grid_clips(detector, args.videos, with_frames=with_frames, exclude=exclude)
    delays = [int(d) for d in args.delays.split(",")]
    items = sync_items(clips, delays)
    natural = natural_items(clips)
    todo = unique_items(items)
    scene_sets: dict[int, tuple] = {}  # scene side -> (items, natural, todo) with scenes
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
    for name, (model, context_model) in models.items():
        w_items, w_natural, w_todo = items, natural, todo
        if context_model is not None:  # scene-context: items with scenes (see the docstring)
            size = context_model.scene_size_px
            if size not in scene_sets:
                s_items = sync_items(clips, delays, scene_size_px=size)
                s_natural = natural_items(clips, scene_size_px=size)
                scene_sets[size] = (s_items, s_natural, unique_items(s_natural + s_items))
            w_items, w_natural, w_todo = scene_sets[size]
        for backend in args.backends.split(","):
            if backend == "onnx-int8":  # its ranges are keyed by the weights file
                runner = load_asd_runner(name, backend=backend, num_threads=args.threads)[0]
            else:
                runner = make_runner(model, backend, num_threads=args.threads)
            for win in args.windows.split(","):
                windows = WindowConfig(durations_s=WINDOWS[win])
                t = time.perf_counter()
                if context_model is None:
                    logits = predict_tracks_logits(
                        runner, [(it.faces, it.mfcc) for it in w_todo], windows
                    )
                else:
                    logits = context_logits(runner, context_model, w_todo, windows)
                dt = time.perf_counter() - t
                scores = {
                    it.name: smooth(speaking_probability(lg), 5)
                    for it, lg in zip(w_todo, logits, strict=True)
                }
                row = [
                    name, win, backend, f"{benchmark_ap(w_natural, scores):.2f}",
                    f"{benchmark_ap(w_items, scores):.2f}",
                    f"{benchmark_ap(w_items, scores, ['cross']):.2f}",
                    f"{benchmark_ap(w_items, scores, ['delayed']):.2f}",
                    f"{sum(len(it.faces) for it in w_todo) / dt:.0f}",
                ]  # fmt: skip
                print("| " + " | ".join(row) + " |", flush=True)
    chance = 100 * np.mean(np.concatenate([it.labels for it in items]))
    print(f"\nchance level (positive rate) of the sync set: {chance:.2f} AP")
    if args.heldout_cache:  # the held-out speakers' table (docs/sync_finetuning.md)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import sync_heldout

        print("\nHeld-out speakers (benchmarks/sync_heldout.py evaluate):\n", flush=True)
        cache_args = [a for c in args.heldout_cache for a in ("--cache", str(c))]
        sync_heldout.main(
            ["evaluate", *cache_args, "--weights", args.weights, "--threads", str(args.threads)]
        )


if __name__ == "__main__":
    main()
