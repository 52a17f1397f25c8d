"""Synchrony on held-out speakers: clip caches, the lip-sync head, and the per-case table.

Three steps (from the repository root, with ../shared beside it; docs/sync_finetuning.md,
"Round two", has the exact commands and the results), after ``gather`` has copied the
held-out clips out of clones of their public repositories (sync_heldout_clips.csv):

    python benchmarks/sync_heldout.py gather --repos ../repos --out ../data/sync_heldout/clips

    # 1. analyse clip folders once (face track, crops, audio, speech, lip landmarks)
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/sync_heldout.py extract \
        --videos ../data/grid_s1/data/s1 --align-dir ../data/grid_s1/data/alignments/s1 \
        --speaker grid_s1 --cache runs/sync_clips/grid_s1
    # 2. train the lip-landmark x MFCC sync head on training caches
    python benchmarks/sync_heldout.py train --cache runs/sync_clips/grid_s1 \
        --cache runs/sync_clips/more --out runs/lip_sync
    # 3. the held-out table: ASD weights alone, the head alone, and both
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/sync_heldout.py evaluate \
        --cache runs/sync_clips/heldout --weights lr-asd-ava,light-asd-sync \
        --lip-sync runs/lip_sync/lip_sync.pt

Items are the sync benchmark of socialav.evaluation.asd_benchmarks (two faces, one audio):
cross pairs (another speaker's face), other-sentence pairs (the same speaker's face from
another clip) and delayed self-pairs (5 / 10 / 25 frames), each reported on its own; natural
AP is each clip with its own audio. ASD scores are what ``detect`` writes (softmax class 1,
5-frame smoothing, full-track windows).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

import numpy as np

from socialav.pipelines.sync_clips import VIDEO_SUFFIXES, load_sync_clips
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE

#: Held-out clips (benchmarks/sync_heldout_clips.csv): ``<source>_<speaker>_<stem>``.
HELDOUT_SPEAKER_REGEX = r"^[^_]+_([^_]+)_"
#: ../shared's grid_id2_vcd_swwp2s shows the speaker of GRID-U04 (rizkiarm/LipNet pwij3p).
HELDOUT_ALIASES = ("swwp2s=GRID-U04",)
#: GRID-U08's audio has a noise floor the energy VAD takes for speech (all 75 frames).
HELDOUT_EXCLUDE = "GRID-U08"
_SAMPLES_PER_FRAME = AUDIO_SAMPLE_RATE // int(ANALYSIS_FPS)
#: track_mfcc reads this much audio after a span (window 25 ms minus hop 10 ms).
_MFCC_TAIL_SAMPLES = AUDIO_SAMPLE_RATE * 15 // 1000
#: a segment keeps one 25 ms MFCC window of the audio after it.
_SEGMENT_TAIL_SAMPLES = AUDIO_SAMPLE_RATE * 25 // 1000


def _videos(folder: Path, align_dir: Path | None) -> list[Path]:
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise SystemExit(f"error: no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    if align_dir is not None:  # GRID keeps alignments in a folder of their own
        for v in videos:
            src = align_dir / f"{v.stem}.align"
            if not v.with_suffix(".align").exists() and not src.exists():
                raise SystemExit(f"error: no alignment {src} for {v}")
    return videos


def _git_dir(repos: Path, repo: str) -> Path | None:
    """A clone of ``owner/name`` under ``repos``: ``<owner>+<name>`` (a work tree, or a bare
    mirror with ``repo/`` inside) or ``<name>``."""
    owner, name = repo.split("/", 1)
    for candidate in (repos / f"{owner}+{name}" / "repo", repos / f"{owner}+{name}", repos / name):
        if candidate.is_dir():
            return candidate
    return None


def gather(args: argparse.Namespace) -> None:
    """Step 0: copy the clips of a clip list out of local clones, checking each sha256."""
    import csv
    import hashlib
    import subprocess

    from socialav.io.atomic import atomic_write

    rows = list(csv.DictReader(args.clips.open()))
    missing = sorted({r["repo"] for r in rows if _git_dir(args.repos, r["repo"]) is None})
    if missing:
        clones = "\n".join(
            f"  git clone https://github.com/{r} {args.repos / r.replace('/', '+')}"
            for r in missing
        )
        raise SystemExit(f"error: no clone under {args.repos} of:\n{clones}")
    args.out.mkdir(parents=True, exist_ok=True)
    for r in rows:
        target = args.out / r["file"]
        git_dir = _git_dir(args.repos, r["repo"])
        data = subprocess.run(
            ["git", "-C", str(git_dir), "show", f"{r['commit']}:{r['path']}"],
            check=True,
            capture_output=True,
        ).stdout
        digest = hashlib.sha256(data).hexdigest()
        if digest != r["sha256"]:
            raise SystemExit(
                f"error: {r['repo']} @ {r['commit']}:{r['path']} has sha256 {digest}, "
                f"expected {r['sha256']} ({args.clips})"
            )
        with atomic_write(target, "wb", encoding=None) as f:
            f.write(data)
    print(f"{len(rows)} clips -> {args.out}")


def _landmarker():
    from socialav import hub
    from socialav.vision.lip_landmarks import LipLandmarker

    return LipLandmarker(hub.resolve_weights("dlib-shape-68"))


def extract(args: argparse.Namespace) -> None:
    """Step 1: fill a clip cache."""
    from socialav.inference.backends import configure_threads
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    configure_threads(args.threads)
    videos = _videos(args.videos, args.align_dir)
    if args.align_dir is not None:  # link the alignments beside the videos, in the cache
        linked = args.cache / "videos"
        linked.mkdir(parents=True, exist_ok=True)
        for v in videos:
            for src, dst in ((v, linked / v.name), (args.align_dir / f"{v.stem}.align", None)):
                dst = dst or linked / src.name
                if not dst.exists():
                    dst.symlink_to(src.resolve())
        videos = [linked / v.name for v in videos]
    if args.limit:
        videos = videos[: args.limit]
    start = time.perf_counter()

    def progress(done: int, total: int, name: str) -> None:
        if done % 25 == 0 or done == total:
            print(f"{done}/{total} {name} ({time.perf_counter() - start:.0f} s)", flush=True)

    clips = load_sync_clips(
        videos,
        args.cache,
        lambda: SpeakerDetector(DetectConfig(num_threads=args.threads)),
        speaker_regex=args.speaker_regex,
        speaker=args.speaker,
        landmarker=_landmarker(),
        progress=progress,
    )
    speakers = {c.speaker_id for c in clips}
    print(f"{len(clips)} clips with a face track, {len(speakers)} speakers -> {args.cache}")


def _load_caches(caches: list[Path], speaker_regex: str | None) -> list:
    from socialav.pipelines.sync_clips import load_cached_clips

    clips = []
    for cache in caches:
        clips.extend(load_cached_clips(cache, speaker_regex))
    return clips


def _segments(clip, frames: int) -> list:
    """A clip of at least ``2 * frames`` frames cut into ``len // frames`` segments of
    ``frames`` frames (same speaker): more sentences per speaker, less weight per clip."""
    from socialav.evaluation.asd_benchmarks import BenchmarkClip

    n = len(clip.faces)
    if frames <= 0 or n < 2 * frames:
        return [clip]
    hop = _SAMPLES_PER_FRAME
    out = []
    for i in range(n // frames):
        a, b = i * frames, (i + 1) * frames
        out.append(
            BenchmarkClip(
                f"{clip.name}#{i}",
                clip.faces[a:b],
                clip.audio[a * hop : b * hop + _SEGMENT_TAIL_SAMPLES],
                clip.speech[a:b],
                speaker=clip.speaker_id,
                mouth_points=None if clip.mouth_points is None else clip.mouth_points[a:b],
            )
        )
    return out


def train(args: argparse.Namespace) -> None:
    """Step 2: train the lip-sync head on training caches (one group per cache)."""
    import torch

    from socialav.pipelines.sync_clips import load_cached_clips
    from socialav.training.lip_sync import (
        LipSyncConfig,
        prepare_tracks,
        save_lip_sync,
        train_lip_sync,
    )

    torch.set_num_threads(args.threads)
    groups, val = [], []
    rng = np.random.default_rng(0)
    for cache in args.cache:
        tracks = prepare_tracks(load_cached_clips(cache, args.speaker_regex))
        speakers = sorted({t.speaker for t in tracks})
        if len(speakers) > 1:  # hold out whole speakers
            held = set(rng.choice(speakers, max(1, len(speakers) // 8), replace=False))
        else:  # one speaker: hold out clips
            held = {t.name for t in tracks[:: max(2, round(1 / 0.05))]}
        val.extend(t for t in tracks if t.speaker in held or t.name in held)
        groups.append([t for t in tracks if t.speaker not in held and t.name not in held])
        print(f"{cache}: {len(groups[-1])} train / {len(tracks) - len(groups[-1])} val clips")
    cfg = LipSyncConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        group_weights=tuple(float(w) for w in args.group_weights.split(","))
        if args.group_weights
        else None,
        kind_probabilities=tuple(float(p) for p in args.kinds.split(",")),
        feature_scale=tuple(float(v) for v in args.feature_scale.split(",")),
        mfcc_cmvn=args.cmvn,
        dropout=args.dropout,
        hidden=args.hidden,
        lr=args.lr,
        seed=args.seed,
    )
    model, history = train_lip_sync(groups, val, cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    save_lip_sync(model, cfg, history, args.out / "lip_sync.pt")
    print(f"-> {args.out / 'lip_sync.pt'}")


def _offset_mfcc(audio: np.ndarray, num_frames: int, offset_frames: int) -> np.ndarray:
    """MFCC of ``audio`` played ``offset_frames`` late (negative: early), zeros filling in."""
    from socialav.audio.features import track_mfcc

    hop = _SAMPLES_PER_FRAME
    if offset_frames >= 0:
        shifted = np.concatenate([np.zeros(offset_frames * hop, audio.dtype), audio])
    else:
        shifted = audio[-offset_frames * hop :]
    need = num_frames * hop + _MFCC_TAIL_SAMPLES
    if len(shifted) < need:
        shifted = np.concatenate([shifted, np.zeros(need - len(shifted), audio.dtype)])
    return track_mfcc(shifted, 0, num_frames - 1)


def _case(other) -> str:
    """The table column of a pair's other face: its kind, with the delay for delayed faces."""
    return f"delayed@{other.delay_frames}" if other.kind == "delayed" else other.kind


def evaluate(args: argparse.Namespace) -> None:
    """Step 3: the held-out tables."""
    from socialav.inference.backends import configure_threads

    configure_threads(args.threads)
    clips = _load_caches(args.cache, args.speaker_regex)
    if args.exclude:
        clips = [c for c in clips if not any(x in c.name for x in args.exclude.split(","))]
    aliases = HELDOUT_ALIASES if args.alias is None else args.alias
    for alias in aliases:  # NAME_PART=SPEAKER: clips known to show one speaker
        part, speaker = alias.split("=", 1)
        for c in clips:
            if part in c.name:
                c.speaker = speaker
    clips = [seg for c in clips for seg in _segments(c, args.segment_frames)]
    subsets = [("all clips", clips)]
    for spec in args.subset:  # NAME=REGEX: also the clips whose name matches, and the rest
        label, pattern = spec.split("=", 1)
        inside = [c for c in clips if re.search(pattern, c.name)]
        rest = [c for c in clips if not re.search(pattern, c.name)]
        subsets += [(label, inside), (f"not {label}", rest)]
    for title, subset in subsets:
        print(f"\n## {title}\n", flush=True)
        _evaluate_clips(subset, args)


def _evaluate_clips(clips: list, args: argparse.Namespace) -> None:
    """The tables of one set of clips (pairs are built inside the set)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_accuracy import load_weights

    from socialav.evaluation.asd_benchmarks import (
        benchmark_ap,
        natural_items,
        sync_items,
        unique_items,
    )
    from socialav.inference.asd import WindowConfig, predict_tracks_logits
    from socialav.inference.backends import make_runner
    from socialav.inference.segments import smooth, speaking_probability
    from socialav.vision.lip_landmarks import lip_motion_features

    delays = [int(d) for d in args.delays.split(",")]
    items = sync_items(clips, delays, partners_per_clip=args.partners, seed=0)
    natural = natural_items(clips)
    offsets = [int(o) for o in args.offsets.split(",")]
    probes = []  # (clip, offset, mfcc of its audio at that offset) for the offset probe
    for c in clips:
        for o in offsets:
            probes.append((c, o, _offset_mfcc(c.audio, len(c.faces), o)))
    todo = unique_items(natural + items)
    speakers = {c.speaker_id for c in clips}
    kinds = ["cross", "other_sentence"] + [f"delayed@{d}" for d in delays]
    pairs = list(zip(items[::2], items[1::2], strict=True))
    count = {k: sum(_case(other) == k for _, other in pairs) for k in kinds}
    print(
        f"{len(clips)} clips, {len(speakers)} speakers, {sum(len(c.faces) for c in clips)} "
        f"frames; pairs: " + ", ".join(f"{k} {v}" for k, v in count.items())
    )

    def pair_ap(scores: dict, kind: str) -> float:
        sel = [p for p in pairs if _case(p[1]) == kind]
        if not sel:
            return float("nan")
        return benchmark_ap([it for p in sel for it in p], scores)

    scorers: dict[str, tuple[dict, list]] = {}  # name -> (item scores, probe scores)
    windows = WindowConfig(durations_s=None)
    signature = hashlib.sha1(
        "\n".join([it.name for it in todo] + [f"{c.name}{o}" for c, o, _ in probes]).encode()
    ).hexdigest()[:12]
    for name in [w for w in args.weights.split(",") if w]:
        cached = None
        if args.score_cache is not None:  # ASD scores of exactly these items, kept
            safe = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)
            cached = args.score_cache / f"{safe}_{signature}.npz"
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                scores = {it.name: z[f"i{i}"] for i, it in enumerate(todo)}
                pscores = [z[f"p{i}"] for i in range(len(probes))]
        else:
            model, _ = load_weights(name)
            runner = make_runner(model, "onnx", num_threads=args.threads)
            t = time.perf_counter()
            logits = predict_tracks_logits(runner, [(it.faces, it.mfcc) for it in todo], windows)
            scores = {
                it.name: smooth(speaking_probability(lg), 5)
                for it, lg in zip(todo, logits, strict=True)
            }
            plog = predict_tracks_logits(runner, [(c.faces, m) for c, _, m in probes], windows)
            pscores = [smooth(speaking_probability(lg), 5) for lg in plog]
            print(f"scored {name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                arrays = {f"i{i}": scores[it.name] for i, it in enumerate(todo)}
                arrays.update({f"p{i}": p for i, p in enumerate(pscores)})
                np.savez(cached, **arrays)
        scorers[name] = (scores, pscores)
    asd_names = list(scorers)
    if args.lip_sync:
        from socialav.training.lip_sync import load_lip_sync

        def sigmoid(x: np.ndarray) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))

        for path in args.lip_sync:
            sync_model = load_lip_sync(path)
            logits = {
                it.name: sync_model.score(lip_motion_features(it.mouth_points), it.mfcc)
                for it in todo
            }
            plogits = [
                sync_model.score(lip_motion_features(c.mouth_points), m) for c, _, m in probes
            ]
            label = f"lip-sync ({Path(path).parent.name})"
            scorers[label] = (
                {k: smooth(sigmoid(v), 5) for k, v in logits.items()},
                [smooth(sigmoid(v), 5) for v in plogits],
            )
            fusions = {"x": (scorers[label][0], scorers[label][1])}
            for floor in [float(f) for f in args.veto_floor.split(",") if f]:
                # soft veto: the lip-sync probability scales the ASD score down to `floor`
                fusions[f"x ({floor:g} + {1 - floor:g} p)"] = (
                    {k: floor + (1 - floor) * v for k, v in scorers[label][0].items()},
                    [floor + (1 - floor) * v for v in scorers[label][1]],
                )
            for name in asd_names:
                a_scores, a_p = scorers[name]
                for how, (s_scores, s_p) in fusions.items():
                    fused = {k: a_scores[k] * s_scores[k] for k in s_scores}
                    fused_p = [x * y for x, y in zip(a_p, s_p, strict=True)]
                    scorers[f"{name} {how} {label}"] = (fused, fused_p)
    head = ["scorer", "natural AP", "sync AP", *[k.replace("_", " ") for k in kinds]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, (scores, _) in scorers.items():
        row = [name, f"{benchmark_ap(natural, scores):.2f}", f"{benchmark_ap(items, scores):.2f}"]
        row += [f"{pair_ap(scores, k):.2f}" for k in kinds]
        print("| " + " | ".join(row) + " |")
    chance = 100 * np.mean(np.concatenate([it.labels for it in items]))
    print(f"\nchance level (positive rate) of the sync set: {chance:.2f} AP")
    print(
        "\nOffset probe: mean score over each clip's speech frames, its audio played late (+) "
        "or early (-) by N frames; mean over clips (drop = in sync - offset)\n"
    )
    head = ["scorer", "in sync", *[f"{o:+d} frames (drop)" for o in offsets if o != 0]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, (_, pscores) in scorers.items():
        means: dict[int, list[float]] = {o: [] for o in offsets}
        for (c, o, _), s in zip(probes, pscores, strict=True):
            if c.speech.any():
                means[o].append(float(np.mean(s[c.speech])))
        base = np.mean(means[0]) if 0 in means else float("nan")
        row = [name, f"{base:.2f}"]
        row += [f"{np.mean(means[o]):.2f} ({base - np.mean(means[o]):.2f})" for o in offsets if o]
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("gather", help="copy a clip list's clips out of local git clones")
    p.add_argument("--clips", type=Path, default=Path(__file__).parent / "sync_heldout_clips.csv")
    p.add_argument("--repos", type=Path, required=True, help="folder of clones (owner+name)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=gather)
    p = sub.add_parser("extract", help="analyse a folder of clips into a cache")
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--align-dir", type=Path, default=None, help="folder of GRID .align files")
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--speaker", default=None, help="one speaker id for every clip")
    p.add_argument("--speaker-regex", default=None, help="first group = speaker id")
    p.add_argument("--limit", type=int, default=0, help="first N videos only (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=extract)
    p = sub.add_parser("train", help="train the lip-sync head on clip caches")
    p.add_argument("--cache", type=Path, action="append", required=True, help="repeatable")
    p.add_argument("--speaker-regex", default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=200, help="steps per epoch")
    p.add_argument("--group-weights", default="", help="per --cache, e.g. 0.5,0.5")
    p.add_argument(
        "--kinds", default="0.4,0.2,0.2,0.2", help="own,shifted,other_sentence,other_speaker"
    )
    p.add_argument("--feature-scale", default="1,1", help="min,max random lip amplitude")
    p.add_argument("--cmvn", action="store_true", help="MFCC mean normalisation")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--hidden", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=train)
    p = sub.add_parser("evaluate", help="the held-out table")
    p.add_argument("--cache", type=Path, action="append", required=True, help="repeatable")
    p.add_argument(
        "--speaker-regex",
        default=HELDOUT_SPEAKER_REGEX,
        help="speaker id = first group (default: the sync_heldout_clips.csv file names)",
    )
    p.add_argument(
        "--exclude",
        default=HELDOUT_EXCLUDE,
        help="comma-separated substrings of clip names (default: GRID-U08, whose energy "
        "VAD marks all 75 frames as speech)",
    )
    p.add_argument("--weights", default="lr-asd-ava,light-asd-ava,light-asd-sync")
    p.add_argument(
        "--lip-sync", type=Path, action="append", default=[], help="checkpoint (repeatable)"
    )
    p.add_argument("--delays", default="5,10,25")
    p.add_argument("--offsets", default="0,25,-15", help="offset probe, frames")
    p.add_argument("--partners", type=int, default=3, help="cross / other-sentence per clip")
    p.add_argument("--segment-frames", type=int, default=150, help="cut long clips (0: no)")
    p.add_argument(
        "--veto-floor",
        default="",
        help="comma-separated floors f: also fuse as ASD x (f + (1 - f) lip-sync probability)",
    )
    p.add_argument("--score-cache", type=Path, default=None, help="keep ASD scores here")
    p.add_argument(
        "--subset",
        action="append",
        default=[],
        help="NAME=REGEX: also the tables of the clips whose name matches and of the rest",
    )
    p.add_argument(
        "--alias",
        action="append",
        default=None,
        help="NAME_PART=SPEAKER, repeatable (default: swwp2s=GRID-U04, one GRID speaker)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=evaluate)
    args = parser.parse_args(argv)
    words = ["python", f"benchmarks/{Path(__file__).name}", *(argv or sys.argv[1:])]
    print("$ " + " ".join(words), flush=True)
    args.func(args)


if __name__ == "__main__":
    main()
