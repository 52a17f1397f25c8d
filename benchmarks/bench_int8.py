"""Static int8 quantisation of the ASD visual encoder: speed, logits and AP against fp32.

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_int8.py [--weights lr-asd-ava]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_int8.py --write-ranges

The visual encoder (the conv2d ONNX graph that ``detect`` runs; the model's costliest stage) is
quantised as the ``onnx-int8`` backend does it (:mod:`socialav.inference.quantize`: ONNX
Runtime's ``quantize_static``, QDQ format, int8 weights per output channel, uint8
activations), with the ranges that ship for the weights. ``--write-ranges`` makes those:
MinMax ranges calibrated on the face crops (longest face track, whole 6 s windows) of
``--calibration`` clips, by default the interview and five other talking people of
``../shared/videos/more``, never the GRID clips that are then scored, written to
``src/socialav/weights/int8/``. The audio encoder and the back-end stay fp32. Printed:

- ms per face-frame of the visual encoder (2 threads, one 150-frame window of real crops,
  fp32 and int8 alternately, best of ``--repeats``);
- the largest |logit difference| int8 - fp32 over the GRID benchmark items (6 s windows);
- natural and sync AP of both (``bench_accuracy.py``'s sets and 5-frame smoothing);
- on ``--held-out`` clips (never calibration clips), the whole ``detect`` with ``onnx`` and
  ``onnx-int8``: logit and probability differences and the frames whose speaking decision
  (smoothed probability >= 0.5) differs.

An earlier try, dynamic quantisation (int8 weights, activations quantised at run time), moved
logits by 0.15-0.8 for no speed-up (README, *Choosing the defaults*).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import SHARED, load_grid_clips  # noqa: E402

from socialav.checkpoints.load import load_pretrained  # noqa: E402
from socialav.evaluation.asd_benchmarks import (  # noqa: E402
    benchmark_ap,
    natural_items,
    sync_items,
    unique_items,
)
from socialav.inference.asd import WindowConfig, predict_tracks_logits  # noqa: E402
from socialav.inference.backends import OnnxRunner, configure_threads  # noqa: E402
from socialav.inference.quantize import (  # noqa: E402
    calibrate_visual_ranges,
    int8_ranges_path,
    quantize_visual,
    shipped_int8_ranges,
)
from socialav.inference.segments import smooth, speaking_probability  # noqa: E402
from socialav.inference.torch_backend import export_onnx  # noqa: E402
from socialav.pipelines.config import DetectConfig  # noqa: E402
from socialav.pipelines.detect import SpeakerDetector  # noqa: E402
from socialav.pipelines.sync_clips import extract_sync_clip  # noqa: E402

CALIBRATION = (
    "visualvoice_interview.mp4",
    "more/styletalk_Obama_clip1_muxed.mp4",
    "more/sadtalker_WDA_KatieHill_000.mp4",
    "more/pcavs_audio_source_00015.mp4",
    "more/spectre_mead_W015_level_1_neutral_030.mp4",
    "more/dfdc_lynaeydofd_REAL.mp4",
)

#: Clips for the whole-``detect`` comparison: talking people the ranges never saw.
HELD_OUT = (
    "face_recognition_short_hamilton_clip.mp4",
    "videoretalking_face_1.mp4",
    "videoretalking_face_3.mp4",
    "more/styletalk_KristiNoem_muxed.mp4",
    "more/sadtalker_WDA_BobMenendez_000.mp4",
    "more/pcavs_audio_source_00086.mp4",
    "more/spectre_mead_M003_level_1_happy_024.mp4",
    "more/edtalk_uncrop_Obama.mp4",
    "more/deeplipreading_demo_lrs2.mp4",
    "more/facenetpytorch_crowd_walking.mp4",
)


def calibration_windows(detector: SpeakerDetector, names: list[str]) -> list[np.ndarray]:
    """Whole 150-frame windows ``(1, 150, 112, 112)`` float32 of the longest face track of
    each clip of ``../shared/videos``."""
    windows = []
    for name in names:
        clip = extract_sync_clip(detector, SHARED / "videos" / name)
        if clip is None:
            raise SystemExit(f"{name}: no face track to calibrate on")
        faces = clip.faces.astype(np.float32)
        windows += [faces[None, s : s + 150] for s in range(0, len(faces) - 149, 150)]
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="lr-asd-ava")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--calibration",
        default=",".join(CALIBRATION),
        help="comma-separated clips of ../shared/videos for the activation ranges",
    )
    parser.add_argument(
        "--write-ranges",
        action="store_true",
        help="calibrate and write the ranges into the package (socialav/weights/int8/), "
        "then measure them; without it the shipped ranges are measured (calibrated afresh "
        "when none ship for these weights)",
    )
    parser.add_argument(
        "--held-out",
        default=",".join(HELD_OUT),
        help="comma-separated clips of ../shared/videos (none a calibration clip) on which "
        "the whole detect is compared, fp32 against int8; '' to skip",
    )
    args = parser.parse_args()
    configure_threads(args.threads)
    print(f"$ python {' '.join(sys.argv)}")

    model, info = load_pretrained(args.weights, task="asd")
    graphs = export_onnx(model)
    r = int(model.visual_receptive_field_frames)
    detector = SpeakerDetector(DetectConfig(num_threads=args.threads, backend="onnx"))
    calibration = calibration_windows(detector, args.calibration.split(","))
    out_dir = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    ranges = shipped_int8_ranges(info.sha256)
    if args.write_ranges:
        ranges = calibrate_visual_ranges(
            graphs["visual"], calibration, int8_ranges_path(info.sha256)
        )
        print(f"wrote {ranges}")
    elif ranges is None:
        ranges = calibrate_visual_ranges(graphs["visual"], calibration, out_dir / "ranges.json")
    else:
        print(f"shipped ranges: {ranges}")
    int8_graph = out_dir / "visual_int8.onnx"
    quantize_visual(graphs["visual"], ranges, int8_graph)
    runners = {
        "fp32": OnnxRunner(graphs, r, num_threads=args.threads),
        "int8": OnnxRunner({**graphs, "visual": int8_graph}, r, num_threads=args.threads),
    }

    window = calibration[0]
    best = {name: np.inf for name in runners}
    for _ in range(args.repeats):
        for name, runner in runners.items():
            runner.encode_visual(window)
            t = time.perf_counter()
            runner.encode_visual(window)
            best[name] = min(best[name], (time.perf_counter() - t) / window.shape[1])

    clips = load_grid_clips(detector, SHARED / "videos")
    items, natural = sync_items(clips, [5, 10]), natural_items(clips)
    todo = unique_items(items)
    windows = WindowConfig(durations_s=(6.0,))
    logits = {
        name: predict_tracks_logits(runner, [(it.faces, it.mfcc) for it in todo], windows)
        for name, runner in runners.items()
    }
    diff = max(
        float(np.nanmax(np.abs(a - b))) for a, b in zip(logits["int8"], logits["fp32"], strict=True)
    )
    print(
        f"\n{args.weights}: visual encoder calibrated on {len(calibration)} windows of 150 frames"
    )
    print(
        "| visual encoder | ms per face-frame | natural AP | sync AP | max abs logit diff vs fp32 |"
    )
    print("|---|---|---|---|---|")
    for name in runners:
        scores = {
            it.name: smooth(speaking_probability(lg), 5)
            for it, lg in zip(todo, logits[name], strict=True)
        }
        row = [
            name,
            f"{1000 * best[name]:.2f}",
            f"{benchmark_ap(natural, scores):.2f}",
            f"{benchmark_ap(items, scores):.2f}",
            "0" if name == "fp32" else f"{diff:.3f}",
        ]
        print("| " + " | ".join(row) + " |", flush=True)
    if args.held_out:
        held_out_table(args.held_out.split(","), args.threads)


def held_out_table(names: list[str], threads: int) -> None:
    """Per clip of ``../shared/videos`` (none of them calibration clips): ``detect``'s own
    logits and speaking decisions with ``onnx`` (fp32) and ``onnx-int8``, same face tracks."""
    overlap = set(names) & set(CALIBRATION)
    if overlap:
        raise SystemExit(f"{sorted(overlap)} are calibration clips, not held out")
    base = dict(num_threads=threads, diarize=False)
    fp32 = SpeakerDetector(DetectConfig(backend="onnx", **base))
    int8 = SpeakerDetector(DetectConfig(backend="onnx-int8", **base))
    print("\nHeld-out clips, whole `detect` (6 s windows, 5-frame smoothing, threshold 0.5):\n")
    print(
        "| clip | face-frames | max abs logit diff | mean abs logit diff | "
        "max abs probability diff | frames whose speaking decision differs |"
    )
    print("|---|---|---|---|---|---|")
    total = {"frames": 0, "flips": 0, "max": 0.0}
    for name in names:
        a, b = (d.run(SHARED / "videos" / name).scores for d in (fp32, int8))
        la = np.concatenate([s.logits for s in a])
        lb = np.concatenate([s.logits for s in b])
        pa = np.concatenate([s.probabilities for s in a])
        pb = np.concatenate([s.probabilities for s in b])
        flips = int(((pa >= 0.5) != (pb >= 0.5)).sum())
        d = np.abs(la - lb)
        total["frames"] += len(la)
        total["flips"] += flips
        total["max"] = max(total["max"], float(d.max()) if len(d) else 0.0)
        row = [
            name,
            str(len(la)),
            f"{d.max():.3f}" if len(d) else "-",
            f"{d.mean():.4f}" if len(d) else "-",
            f"{np.abs(pa - pb).max():.3f}" if len(d) else "-",
            f"{flips} ({100 * flips / max(len(la), 1):.2f} %)",
        ]
        print("| " + " | ".join(row) + " |", flush=True)
    share = 100 * total["flips"] / max(total["frames"], 1)
    print(
        f"| all | {total['frames']} | {total['max']:.3f} | | | {total['flips']} ({share:.2f} %) |"
    )


if __name__ == "__main__":
    main()
