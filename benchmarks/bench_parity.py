"""Parity with the public Light-ASD / LR-ASD code: max |logit - reference| on the fixture.

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_parity.py [--backends torch,onnx]

`../shared/fixtures/interview_light_asd_reference.npz` stores, for two real face tracks of
visualvoice_interview.mp4, the model inputs and the reference code's class-1 logits: one pass
over the whole track (`full`) and the demo's mean over 1-6 s windows (`windowed`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from socialav import hub
from socialav.checkpoints.load import load_asd_model
from socialav.inference.asd import WindowConfig, predict_tracks_logits
from socialav.inference.backends import configure_threads, make_runner

FIXTURE = (
    Path(__file__).resolve().parents[1].parent / "shared/fixtures/interview_light_asd_reference.npz"
)
WEIGHTS = {
    "light-asd-ava": "light_asd_ava",
    "light-asd-talkset": "light_asd_talkset",
    "lr-asd-ava": "lr_asd_ava",
    "lr-asd-talkset": "lr_asd_talkset",
}
MODES = {"full": None, "windowed_1to6s_mean": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    ref = np.load(FIXTURE)
    tracks = [(ref[f"track{k}_faces_gray112"], ref[f"track{k}_mfcc"]) for k in (0, 1)]
    print(f"$ {' '.join(['python', *sys.argv])}\n")
    print("| weights | backend | max abs error, full track | max abs error, 1-6 s windows |")
    print("|---|---|---|---|")
    for name, key in WEIGHTS.items():
        model = load_asd_model(hub.resolve_weights(name))
        for backend in args.backends.split(","):
            runner = make_runner(model, backend, num_threads=args.threads)
            errors = []
            for mode, durations in MODES.items():
                logits = predict_tracks_logits(runner, tracks, WindowConfig(durations_s=durations))
                errors.append(
                    max(
                        float(np.max(np.abs(lg[:, 1] - ref[f"track{k}_{key}_logit_{mode}"])))
                        for k, lg in enumerate(logits)
                    )
                )
            print(f"| {name} | {backend} | {errors[0]:.1e} | {errors[1]:.1e} |", flush=True)


if __name__ == "__main__":
    main()
