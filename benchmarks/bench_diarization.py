"""Who spoke when, as people: DER on TV-style edits of the shared clips.

Builds edits at run time (into ``--cache``, outside the repository) from ``../shared/videos/more``
the way a TV programme is cut: the same person in several shots from different parts of their
clip and from different clips of them (the Obama, "andrew", AOC, Fei-Fei Li and MEAD M003 sets),
two-shots with one voice (two clips side by side, the audio of the left one only), reaction
shots (a silent face on screen while another person's voice goes on) and speakers who never
appear (their voice over a silent face of someone else). Every shot is letterboxed into a
640x360 canvas at 25 fps; the audio is 16 kHz mono PCM.

Reference RTTM rule: a shot contributes the speech of its *voice* clip: Silero VAD (default
settings, :class:`socialav.audio.vad.SileroVAD`) on the whole source clip's own audio, cut to
the shot's interval and shifted to the edit's timeline, labelled with the person's name.
Silent faces (the ``*_silent`` clips and the muted right half of a two-shot) never speak.
Caveat: the system's VAD is the same model, so VAD errors on the source clips are not
counted against the audio-based methods; the faces-only method is scored against it too.

Methods, each scored with pyannote.metrics (:func:`socialav.evaluation.diarization.
diarization_metrics`, collar 0.25 s in pyannote's semantics: 0.125 s on each side of every
reference boundary; overlap scored):

- ``per-track``: today's RTTM of ``socialav detect`` (one speaker per face track);
- ``audio``: Silero VAD + GE2E voice windows clustered (:func:`socialav.diarization.audio_only`);
- ``faces``: face tracks clustered on dlib embeddings + their ASD segments
  (:func:`socialav.diarization.faces_only`);
- ``fusion``: the audio-visual persons (:func:`socialav.diarization.diarize`).

Thresholds are chosen on the tuning edits (``--tune`` prints the grid search) and used
unchanged on the held-out edits, which are built from other people's clips.

Usage::

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_diarization.py \\
        --cache /tmp/socialav-diar [--threads 1] [--tune]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from socialav.audio.vad import SileroVAD, SpeechRegion
from socialav.audio.voice import embed_speech_windows
from socialav.checkpoints.load import load_face_embedder, load_vad, load_voice_encoder
from socialav.diarization import DiarizationConfig, audio_only, diarize, faces_only
from socialav.diarization.models import embed_face_tracks
from socialav.diarization.outputs import person_rttm_turns
from socialav.evaluation.diarization import diarization_metrics
from socialav.io.media import iter_frames, read_audio
from socialav.io.writers import RttmTurn, rttm_turns
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.vision.face_embedding import (
    FaceEmbeddingSampler,
)

FPS = 25
SR = 16000
WIDTH, HEIGHT = 640, 360
COLLAR_S = 0.25
#: The audio-only baseline's voice threshold, chosen by ``--tune`` on the tuning edits (the
#: fusion's thresholds are the ``DiarizationConfig`` defaults, chosen the same way).
AUDIO_ONLY_VOICE_THRESHOLD = 0.4

#: Source clips (``../shared/videos/more``) per person.
CLIPS = {
    "obama1": ("Obama", "styletalk_Obama_clip1_muxed.mp4"),
    "obama2": ("Obama", "styletalk_Obama_clip2_muxed.mp4"),
    "obama3": ("Obama", "styletalk_Obama_clip3_muxed.mp4"),
    "andrew1": ("andrew", "styletalk_andrew_clip_1_muxed.mp4"),
    "andrew2": ("andrew", "styletalk_andrew_clip_2_muxed.mp4"),
    "aoc1": ("AOC", "sadtalker_WDA_AlexandriaOcasioCortez_000.mp4"),
    "aoc2": ("AOC", "vexpress_AOC_gt.mp4"),
    "reagan": ("reagan", "styletalk_reagan_clip1_muxed.mp4"),
    "katie": ("KatieHill", "sadtalker_WDA_KatieHill_000.mp4"),
    "m024": ("M024", "spectre_mead_M024_level_2_surprised_010.mp4"),
    "w023": ("W023", "spectre_mead_W023_level_2_surprised_010.mp4"),
    "fei1": ("feifeili", "styletalk_feifeili_clip1_muxed.mp4"),
    "fei2": ("feifeili", "styletalk_feifeili_clip2_short_muxed.mp4"),
    "fei3": ("feifeili", "styletalk_feifeili_clip3_muxed.mp4"),
    "m003a": ("M003", "spectre_mead_M003_level_1_disgusted_015.mp4"),
    "m003b": ("M003", "spectre_mead_M003_level_1_happy_024.mp4"),
    "noem": ("KristiNoem", "styletalk_KristiNoem_muxed.mp4"),
    "bob": ("BobMenendez", "sadtalker_WDA_BobMenendez_000.mp4"),
    "ed": ("EdMarkey", "sadtalker_WDA_EdMarkey0_000.mp4"),
    "radio34": ("RD_Radio34", "sadtalker_RD_Radio34_000.mp4"),
    "kim": ("kim", "wav2lipgfpgan_kim_7s_raw.mp4"),
    "m030": ("M030", "spectre_mead_M030_level_3_angry_016.mp4"),
    # silent faces (no speech): reaction shots
    "d3": ("silent_d3", "liveportrait_d3_silent.mp4"),
    "d9": ("silent_d9", "liveportrait_d9_silent.mp4"),
    "d18": ("silent_d18", "liveportrait_d18_silent.mp4"),
    "d19": ("silent_d19", "liveportrait_d19_silent.mp4"),
    "wolf": ("silent_wolf", "pyfeat_WolfgangLanger_Pexels_silent.mp4"),
}


@dataclass(frozen=True)
class Shot:
    """One shot: ``face`` clip shown from ``face_at_s`` (left half with ``right``), the
    voice of ``voice`` clip from ``voice_at_s`` (None: the face clip's own audio)."""

    face: str
    face_at_s: float
    dur_s: float
    voice: str | None = None
    voice_at_s: float | None = None
    right: str | None = None  # two-shot: a muted clip on the right half
    right_at_s: float = 0.0

    @property
    def kind(self) -> str:
        if self.right:
            return "two-shot"
        if self.voice and CLIPS[self.face][0].startswith("silent"):
            return "reaction"
        return "solo"


def solo(c, at, dur):
    return Shot(c, at, dur)


def two(c, at, dur, right, right_at):
    return Shot(c, at, dur, right=right, right_at_s=right_at)


def over(face, face_at, dur, voice, voice_at):
    return Shot(face, face_at, dur, voice=voice, voice_at_s=voice_at)


#: Tuning edits: thresholds are chosen on these.
TUNING = {
    "t1_obama_andrew": [
        solo("obama2", 2, 5),
        solo("andrew1", 3, 5),
        two("obama3", 4, 5, "andrew2", 4),
        over("d3", 0, 4, "andrew1", 12),
        solo("obama1", 10, 5),
        solo("andrew2", 12, 5),
        over("d9", 2, 5, "katie", 1),
        solo("obama3", 12, 5),
    ],
    "t2_aoc_reagan": [
        solo("aoc1", 0, 4),
        solo("reagan", 4, 5),
        over("d3", 4, 2.2, "aoc2", 0.1),
        solo("m024", 0, 4),
        two("reagan", 12, 5, "aoc1", 3),
        solo("aoc2", 2.4, 2.1),
        over("d9", 8, 2.8, "w023", 0.1),
        solo("reagan", 18, 5),
        solo("m024", 0.5, 4),
    ],
}

#: Held-out edits: other people (none of them is in the tuning edits).
HELDOUT = {
    "h1_feifeili_m003": [
        solo("fei1", 1, 5),
        solo("m003a", 0, 4.5),
        two("fei2", 2, 2.5, "m003b", 0),
        over("d18", 0, 4, "m003a", 0.2),
        solo("fei3", 0, 5),
        over("wolf", 3, 5, "noem", 2),
        solo("m003b", 0, 2.5),
        solo("fei2", 8, 5),
    ],
    "h2_congress": [
        solo("bob", 0, 4),
        solo("ed", 0, 4),
        two("bob", 4, 4, "ed", 4),
        over("d19", 0, 4, "ed", 4),
        solo("kim", 0, 5),
        over("d18", 2, 3.2, "m030", 0.05),
        solo("radio34", 0, 5),
        solo("bob", 1, 3),
        solo("kim", 2.5, 4.5),
    ],
}


def letterbox(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    canvas[y : y + nh, x : x + nw] = small
    return canvas


def clip_frames(path: Path, start_s: float, count: int) -> list[np.ndarray]:
    first = int(round(start_s * FPS))
    frames = []
    for index, frame in iter_frames(path, fps=FPS):
        if index >= first:
            frames.append(frame)
        if len(frames) == count:
            break
    if len(frames) < count:
        raise ValueError(f"{path}: needs {count} frames from {start_s} s, has {len(frames)}")
    return frames


class Sources:
    """Cached audio and VAD of the source clips."""

    def __init__(self, more: Path, vad: SileroVAD) -> None:
        self.more, self.vad = more, vad
        self._audio: dict[str, np.ndarray] = {}
        self._speech: dict[str, list[SpeechRegion]] = {}

    def path(self, key: str) -> Path:
        return self.more / CLIPS[key][1]

    def audio(self, key: str) -> np.ndarray:
        if key not in self._audio:
            self._audio[key] = read_audio(self.path(key))
        return self._audio[key]

    def speech(self, key: str) -> list[SpeechRegion]:
        if key not in self._speech:
            self._speech[key] = self.vad(self.audio(key))
        return self._speech[key]


def build_edit(name: str, shots: list[Shot], src: Sources, out_dir: Path):
    """Write ``<name>.mkv`` and return ``(path, reference turns, shot kinds)``."""
    path = out_dir / f"{name}.mkv"
    reference: list[RttmTurn] = []
    audio_parts: list[np.ndarray] = []
    t0 = 0.0
    frames_out: list[np.ndarray] = []
    for shot in shots:
        n = int(round(shot.dur_s * FPS))
        left = clip_frames(src.path(shot.face), shot.face_at_s, n)
        if shot.right:
            right = clip_frames(src.path(shot.right), shot.right_at_s, n)
            frames_out += [
                np.concatenate(
                    [letterbox(a, WIDTH // 2, HEIGHT), letterbox(b, WIDTH // 2, HEIGHT)], 1
                )
                for a, b in zip(left, right, strict=True)
            ]
        else:
            frames_out += [letterbox(f, WIDTH, HEIGHT) for f in left]
        voice = shot.voice or shot.face
        v_at = shot.voice_at_s if shot.voice else shot.face_at_s
        samples = src.audio(voice)
        a, b = int(round(v_at * SR)), int(round(v_at * SR)) + n * SR // FPS
        part = samples[a:b]
        if len(part) < b - a:
            raise ValueError(f"{voice}: audio ends before {b / SR:.2f} s")
        audio_parts.append(part)
        person = CLIPS[voice][0]
        if not person.startswith("silent"):
            lo, hi = a / SR, b / SR
            for region in src.speech(voice):
                s, e = max(region.start_s, lo), min(region.end_s, hi)
                if e - s > 0.01:
                    reference.append(RttmTurn(name, "1", t0 + s - lo, e - s, person))
        t0 += n / FPS
    write_video(path, frames_out, np.concatenate(audio_parts))
    return path, reference


def write_video(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.mkv")
    with av.open(str(tmp), "w") as container:
        vs = container.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"crf": "20", "preset": "veryfast"}
        as_ = container.add_stream("pcm_s16le", rate=SR, layout="mono")
        for frame in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        pts = 0
        for i in range(0, len(audio), 1024):
            chunk = audio[i : i + 1024].reshape(1, -1)
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            af.sample_rate, af.pts = SR, pts
            pts += chunk.shape[1]
            for packet in as_.encode(af):
                container.mux(packet)
        for packet in as_.encode():
            container.mux(packet)
    os.replace(tmp, path)


@dataclass
class Analysis:
    video: object
    tracks: list
    scores: list
    regions: list
    windows: object
    faces: dict
    seconds: dict


def analyse(path: Path, detector: SpeakerDetector, vad, encoder, embedder, cfg) -> Analysis:
    seconds = {}
    t = time.perf_counter()
    result = detector.run(path)
    seconds["detect"] = time.perf_counter() - t
    t = time.perf_counter()
    audio = read_audio(path)
    regions = vad(audio)
    seconds["vad"] = time.perf_counter() - t
    t = time.perf_counter()
    windows = embed_speech_windows(audio, regions, encoder, step_s=cfg.voice_step_s)
    seconds["voice"] = time.perf_counter() - t
    t = time.perf_counter()
    faces = embed_face_tracks(path, result.tracks, FaceEmbeddingSampler(embedder))
    seconds["face_embedding"] = time.perf_counter() - t
    return Analysis(result.video, result.tracks, result.scores, regions, windows, faces, seconds)


def run_methods(
    a: Analysis, cfg: DiarizationConfig, audio_cfg: DiarizationConfig
) -> dict[str, tuple[list[RttmTurn], float]]:
    vid = a.video.video_id
    out = {"per-track": (rttm_turns(a.video, a.scores), 0.0)}
    t = time.perf_counter()
    r = audio_only(a.video, a.regions, a.windows, audio_cfg)
    out["audio"] = (person_rttm_turns(vid, r.persons), time.perf_counter() - t)
    t = time.perf_counter()
    r = faces_only(a.video, a.tracks, a.scores, a.faces, cfg)
    out["faces"] = (person_rttm_turns(vid, r.persons), time.perf_counter() - t)
    t = time.perf_counter()
    r = diarize(a.video, a.tracks, a.scores, a.faces, a.regions, a.windows, cfg)
    out["fusion"] = (person_rttm_turns(vid, r.persons), time.perf_counter() - t)
    return out


def score(reference, turns) -> dict:
    return diarization_metrics(reference, turns, collar_s=COLLAR_S)


def tune(tuning: dict, base: DiarizationConfig) -> tuple[DiarizationConfig, DiarizationConfig]:
    """Grid search on the tuning edits: the fusion's thresholds, and separately the voice
    threshold of the audio-only baseline (so that it gets its best chance too)."""

    def mean_der(cfg: DiarizationConfig, method: str) -> float:
        ders = []
        for reference, analysis in tuning.values():
            turns, _ = run_methods(analysis, cfg, cfg)[method]
            ders.append(score(reference, turns)["der"])
        return float(np.mean(ders))

    grid = {
        "face_threshold": [0.05, 0.07, 0.1],
        "voice_assign_threshold": [0.15, 0.2, 0.25, 0.3, 0.35],
        "voice_threshold": [0.2, 0.3, 0.4],
        "link_min_score": [0.2, 0.4],
    }
    rows = []
    for values in itertools.product(*grid.values()):
        cfg = dataclasses.replace(base, **dict(zip(grid, values, strict=True)))
        rows.append((mean_der(cfg, "fusion"), values, cfg))

    def off_centre(values: tuple) -> float:
        return sum(
            abs(options.index(v) - (len(options) - 1) / 2)
            for v, options in zip(values, grid.values(), strict=True)
        )

    # ties (same DER to 0.1 %) are broken toward the middle of the grid (robustness)
    rows.sort(key=lambda r: (round(100 * r[0], 1), off_centre(r[1])))
    print("\ngrid search on the tuning edits (fusion, mean DER), best 8:")
    print("| mean DER % | " + " | ".join(grid) + " |")
    print("|---|" + "---|" * len(grid))
    for mean, values, _ in rows[:8]:
        print(f"| {100 * mean:.1f} | " + " | ".join(str(v) for v in values) + " |")
    audio_rows = []
    for v in [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5]:
        cfg = dataclasses.replace(base, voice_threshold=v)
        audio_rows.append((mean_der(cfg, "audio"), v, cfg))
    print(
        "\naudio-only voice_threshold on the tuning edits (mean DER %): "
        + ", ".join(f"{v}: {100 * m:.1f}" for m, v, _ in audio_rows)
    )
    return rows[0][2], min(audio_rows, key=lambda r: r[0])[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/socialav-bench-diarization"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tune", action="store_true", help="grid-search the thresholds")
    args = parser.parse_args()
    more = args.shared / "videos" / "more"
    if not more.is_dir():
        print(f"{more} not found: run from a checkout with ../shared beside it", file=sys.stderr)
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    base = DiarizationConfig()
    vad, _ = load_vad()
    src = Sources(more, vad)
    detector = encoder = embedder = None
    sets: dict[str, dict] = {"tuning": {}, "held-out": {}}
    for set_name, edits in (("tuning", TUNING), ("held-out", HELDOUT)):
        for name, shots in edits.items():
            cached = args.cache / f"{name}.analysis.pkl"
            if cached.is_file():
                with open(cached, "rb") as fh:
                    reference, analysis = pickle.load(fh)
            else:
                path, reference = build_edit(name, shots, src, args.cache)
                if detector is None:
                    detector = SpeakerDetector(DetectConfig(num_threads=args.threads))
                    encoder, _ = load_voice_encoder(num_threads=args.threads)
                    embedder, _ = load_face_embedder()
                analysis = analyse(path, detector, vad, encoder, embedder, base)
                with open(cached, "wb") as fh:
                    pickle.dump((reference, analysis), fh)
            sets[set_name][name] = (reference, analysis, shots)
    cfg = base
    audio_cfg = dataclasses.replace(base, voice_threshold=AUDIO_ONLY_VOICE_THRESHOLD)
    if args.tune:
        cfg, audio_cfg = tune({k: (r, a) for k, (r, a, _) in sets["tuning"].items()}, base)
    print(
        f"\ncommand: SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_diarization.py"
        f" --threads {args.threads}{' --tune' if args.tune else ''}"
    )
    print(f"fusion/faces config: {dataclasses.asdict(cfg)}")
    print(f"audio-only voice_threshold: {audio_cfg.voice_threshold}")
    print(f"collar {COLLAR_S} s (pyannote semantics: half on each side of a boundary)")
    print(
        "\n| set | edit | dur s | shots | people | method | DER % | miss | FA | conf | JER % | speakers |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    totals: dict[tuple[str, str], list[float]] = {}
    cost: dict[str, float] = {}
    minutes = 0.0
    for set_name, edits in sets.items():
        for name, (reference, analysis, shots) in edits.items():
            dur = analysis.video.duration_s
            minutes += dur / 60
            for k, v in analysis.seconds.items():
                cost[k] = cost.get(k, 0.0) + v
            n_ref = len({t.speaker for t in reference})
            for method, (turns, secs) in run_methods(analysis, cfg, audio_cfg).items():
                cost[f"persons:{method}"] = cost.get(f"persons:{method}", 0.0) + secs
                m = score(reference, turns)
                totals.setdefault((set_name, method), []).append(m["der"])
                print(
                    f"| {set_name} | {name} | {dur:.1f} | {len(shots)} | {n_ref} | {method} | "
                    f"{100 * m['der']:.1f} | {100 * m['missed']:.1f} | {100 * m['false_alarm']:.1f} | "
                    f"{100 * m['confusion']:.1f} | {100 * m['jer']:.1f} | "
                    f"{m['num_system_speakers']}/{m['num_reference_speakers']} |"
                )
    print("\n| set | method | mean DER % |")
    print("|---|---|---|")
    for (set_name, method), ders in totals.items():
        print(f"| {set_name} | {method} | {100 * float(np.mean(ders)):.1f} |")
    print(
        f"\ncost, seconds per video minute ({minutes:.2f} min of edits, {args.threads} thread(s); "
        "only for edits analysed in this run's cache):"
    )
    # the face-embedding pass decodes the video again; the streaming sampler inside detect
    # does not, so its cost there is face_embedding minus this decode
    t = time.perf_counter()
    for edits in sets.values():
        for name in edits:
            for _ in iter_frames(args.cache / f"{name}.mkv", fps=FPS):
                pass
    cost["decode (in face_embedding)"] = time.perf_counter() - t
    print("| component | s / video min |")
    print("|---|---|")
    for k, v in cost.items():
        print(f"| {k} | {v / minutes:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
