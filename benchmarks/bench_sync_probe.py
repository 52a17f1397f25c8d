"""Decisions and ranking on one GRID face with its own, another speaker's and delayed audio.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_sync_probe.py
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_sync_probe.py \
        --weights light-asd-ava,light-asd-sync,runs/light_asd_sync/checkpoints/model_epoch0040.pt

The face track of grid_id2_vcd_swwp2s (socialav's detector, tracker and crops) is scored over
its word frames (the .align file) with its own audio, with grid_bbaf2n's audio (another
speaker; ``--other``) and with its own audio 10 frames late, in one full-track pass (softmax
class 1, no smoothing; the probe of tests/training/test_sync_weights.py). Printed per
weights: mean P(speaking), share of frames above 0.5 (what `detect` marks), and the AUC of
own-voice frames against each mismatched condition (how well they are ranked apart; 0.5 =
not at all).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from socialav.audio.features import track_mfcc
from socialav.checkpoints.load import load_pretrained
from socialav.evaluation.asd_benchmarks import align_to_frames, read_grid_align
from socialav.inference.backends import configure_threads
from socialav.io.media import probe_video, read_audio
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DELAY_FRAMES = 10


def p_speaking(model, faces: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """``(T,)`` P(speaking) of ``faces`` with ``audio`` (sample 0 at the first face)."""
    mfcc = track_mfcc(audio, 0, len(faces) - 1)
    with torch.inference_mode():
        logits = model(torch.from_numpy(faces)[None].float(), torch.from_numpy(mfcc)[None])
    return torch.softmax(logits[0], dim=-1)[:, 1].numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="light-asd-ava,light-asd-sync")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--videos", type=Path, default=SHARED / "videos")
    parser.add_argument(
        "--other",
        default="grid_bbaf2n",
        help="GRID clip whose audio is the other speaker's (grid_bbaf2n is speaker s1: use "
        "grid_lbax4n for models trained on s1)",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)

    path = args.videos / "grid_id2_vcd_swwp2s.mpg"
    video = probe_video(path)
    detector = SpeakerDetector(DetectConfig(num_threads=args.threads))
    analysed = max(detector.face_tracks(path, video), key=lambda a: len(a.track))
    track, faces = analysed.track, analysed.faces_gray112
    audio = read_audio(path)[track.start_frame * 640 :]
    words = align_to_frames(read_grid_align(path.with_suffix(".align")), video.num_frames)
    words = words[track.start_frame : track.end_frame + 1].astype(bool)
    other = read_audio(args.videos / f"{args.other}.mpg")[: len(audio)]
    late = np.concatenate([np.zeros(DELAY_FRAMES * 640, np.int16), audio])

    print(f"$ {' '.join(['python', *sys.argv])}")
    print(f"{path.name}: {len(faces)} face frames, {int(words.sum())} word frames\n")
    print(
        "| weights | mean P own / other / late | share > 0.5 own / other / late "
        "| AUC own vs other | AUC own vs late |"
    )
    print("|---|---|---|---|---|")
    for name in args.weights.split(","):
        model, _ = load_pretrained(name, task="asd")
        own, swapped, delayed = (p_speaking(model, faces, a)[words] for a in (audio, other, late))

        def auc(neg: np.ndarray, pos: np.ndarray = own) -> float:
            y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            return roc_auc_score(y, np.r_[pos, neg])

        means = " / ".join(f"{x.mean():.2f}" for x in (own, swapped, delayed))
        shares = " / ".join(f"{(x > 0.5).mean():.0%}" for x in (own, swapped, delayed))
        print(f"| {name} | {means} | {shares} | {auc(swapped):.3f} | {auc(delayed):.3f} |")


if __name__ == "__main__":
    main()
