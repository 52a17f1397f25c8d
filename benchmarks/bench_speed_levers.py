"""The speed levers of docs/speed.md (kept, dropped or restricted), each rerunnable.

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py overlap VIDEO
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py arena
    python benchmarks/bench_speed_levers.py yuv2rgb
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py startup [--repeats 3]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py video-cap VIDEO [--repeats 2]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py memory [--minutes 10]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py work [VIDEO]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py visual-graph [--repeats 3]
    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_speed_levers.py spinning [VIDEO] [--repeats 2]
    python benchmarks/bench_speed_levers.py video-parts [VIDEO]
    python benchmarks/bench_speed_levers.py scalers [--repeats 3]
    python benchmarks/bench_speed_levers.py video-write VIDEO [--before TREE] [--repeats 4]

- ``overlap``: the analysis pass (``SpeakerDetector.run``, defaults) with the ASD model on a
  second thread or inline, and with a 1-thread ONNX Runtime session on the second thread;
  wall clock, CPU seconds and stage seconds (docs/speed.md used the 3-minute looped interview
  of ``bench_speed.py``).
- ``arena``: peak RSS and model seconds on the interview with ONNX Runtime's CPU memory arena on
  or off and 8/16/32 frames per visual-encoder call (a fresh process each).
- ``memory``: the resident size of one ``SpeakerDetector.run`` + ``DetectResult.write`` on the
  interview looped to ``--minutes`` (default 10), sampled every 0.25 s: its peak per stage
  (load, analyse, persons, write, video, ...), and the extra peak of the persons' voice windows
  (``embed_speech_windows`` on that soundtrack, in a fresh process).
- ``startup``: seconds to import ``socialav.pipelines.detect`` and build the default
  ``SpeakerDetector`` in a fresh process (the ONNX cache warmed first), and which of PyTorch,
  onnx and scipy.signal that imported; run with ``PYTHONPATH=<older tree>/src`` for a before.
- ``video-cap``: one analysis of VIDEO, then its annotated video written alternately at the
  source size and at the default cap (480p), ``--repeats`` times each: wall and CPU seconds.
- ``work``: what one ``socialav detect`` analysis of VIDEO (default: the interview) does, counted
  rather than timed (but for dlib's descriptions): face-frames scored, frames through the ASD
  visual encoder, faces offered to the person sampler and crops it cut, faces described by
  dlib and the ms per description; run with ``PYTHONPATH=<older tree>/src`` for a before.
- ``visual-graph``: the visual encoder's ONNX graph of lr-asd-ava and light-asd-ava, exported
  afresh by this tree into a temporary cache and run by ONNX Runtime on 2 threads: ms per
  face-frame on one 6 s window (150 random faces; the best of ``--repeats`` rounds of 5 calls),
  the share of the kernel time in convolutions, in ONNX Runtime's layout reorders, in
  transposes and in separate ReLUs (its profiler), and how far the embeddings are from the
  PyTorch model's Conv3d encoder; run with ``PYTHONPATH=<older tree>/src`` for a before.
- ``spinning``: the analysis pass (``SpeakerDetector.run``, defaults, no output files) of VIDEO
  (default: the interview) in a fresh process per run, the face detector's, the VAD's and
  the head-pose nets' sessions built with ``session.intra_op.allow_spinning`` 0 (the shared
  options of ``socialav.runtime``) or 1 (onnxruntime's default, which those three had before;
  the ASD and voice sessions never spun), alternating, ``--repeats`` times each: wall and CPU
  seconds of the process, and the stage seconds.
- ``video-parts``: what the annotated video's pass costs without its overlays, each part added
  in turn on VIDEO (default: the interview): decoding to 4:2:0 arrays (``iter_frames``), then
  decoding to 480p pictures instead (``iter_i420_frames``, swscale, as
  ``write_annotated_video``), then x264 (``ultrafast``, crf 28, no audio): wall and CPU
  seconds of each cumulative row.
- ``scalers``: swscale's filters (area, bilinear, fast bilinear, bicubic) scaling 100 decoded
  frames of the 720p interview and of a 1080p clip to 480p 4:2:0: ms per frame (the best of
  ``--repeats``) and PSNR of every 10th against OpenCV's ``INTER_AREA`` of the RGB frame.
- ``video-write``: the annotated video of VIDEO at 480p with two labelled face boxes (as
  ``detect`` draws them by default), written in a fresh process by this tree and, with
  ``--before TREE``, by that tree (its ``src`` on ``PYTHONPATH``), alternating, ``--repeats``
  times each: wall and CPU seconds of the write.
- ``yuv2rgb``: PyAV's swscale ``to_ndarray("rgb24")`` vs OpenCV's ``COLOR_YUV2RGB_I420`` on
  the interview's 438 frames, and how far apart their pixels are.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
INTERVIEW = SHARED / "videos" / "visualvoice_interview.mp4"


def overlap(video: str) -> None:
    from socialav.inference.backends import load_asd_runner
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    base = SpeakerDetector(DetectConfig())
    for name, on, ort_threads in (
        ("overlap, ORT 2 threads", True, 2),
        ("inline, ORT 2 threads", False, 2),
        ("overlap, ORT 1 thread", True, 1),
    ):
        detector = base.instantiate(overlap_model=on)
        detector.runner = load_asd_runner(DetectConfig().asd_weights, num_threads=ort_threads)[0]
        c0, t0 = sum(os.times()[:2]), time.perf_counter()
        seconds = detector.run(video).timings_s
        wall, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - c0
        stages = ", ".join(f"{k} {seconds.get(k, 0):.1f}" for k in ("decode", "detect", "model"))
        print(f"{name}: analysis {wall:.1f} s, CPU {cpu:.1f} s ({stages})", flush=True)


_ARENA_CHILD = """
import resource, sys, time
from socialav.inference import backends
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
arena, frames = sys.argv[1] == "1", int(sys.argv[2])
options = backends.ort_session_options
def patched(num_threads=1):
    so = options(num_threads)
    so.enable_cpu_mem_arena = arena
    return so
backends.ort_session_options = patched
detector = SpeakerDetector(DetectConfig(diarize=False, model_batch_frames=frames))
detector.run(sys.argv[3])
t = time.perf_counter()
result = detector.run(sys.argv[3])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"| {arena} | {frames} | {peak} | {time.perf_counter() - t:.2f} | {result.timings_s['model']:.2f} |")
"""


def arena() -> None:
    print("| arena | frames per call | peak RSS MiB | 2nd run s | model s |\n|---|---|---|---|---|")
    for on, frames in (("1", 32), ("0", 32), ("1", 16), ("1", 8), ("0", 8)):
        cmd = [sys.executable, "-c", _ARENA_CHILD, on, str(frames), str(INTERVIEW)]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())


_VOICE_CHILD = """
import sys
from pathlib import Path
from socialav.audio.voice import embed_speech_windows
from socialav.diarization.models import DiarizationModels
from socialav.io.media import read_audio
models = DiarizationModels.load(num_threads=2)
audio = read_audio(sys.argv[1])
regions = models.vad(audio)
def high_water_mib():  # VmHWM: this process's own peak (ru_maxrss survives fork + exec)
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) // 1024
before = high_water_mib()
windows = embed_speech_windows(audio, regions, models.voice, models.config.voice_step_s)
after = high_water_mib()
print(f"voice windows: {len(windows)}, peak RSS {before} -> {after} MiB (+{after - before})")
"""


def memory(minutes: float) -> None:
    import tempfile
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speed import loop_video

    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    tmp = Path(tempfile.mkdtemp(prefix="socialav-memory-"))
    video = loop_video(INTERVIEW, tmp / "interview_looped.mp4", 60 * minutes)
    stage = ["load"]
    peaks: dict[str, int] = {}

    def sample() -> None:
        while stage[0] != "end":
            status = Path("/proc/self/status").read_text()
            mib = int(status.split("VmRSS:")[1].split()[0]) // 1024
            peaks[stage[0]] = max(peaks.get(stage[0], 0), mib)
            time.sleep(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    detector = SpeakerDetector(DetectConfig())

    def progress(name: str, done: int, total: int | None) -> None:
        stage[0] = name

    result = detector.run(video, progress)
    stage[0] = "write"
    result.write(tmp / "out", progress=progress)
    time.sleep(0.5)
    stage[0] = "end"
    thread.join()
    print(f"{minutes:g}-minute interview, peak RSS MiB per stage: {peaks}")
    cmd = [sys.executable, "-c", _VOICE_CHILD, str(video)]
    print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())


def yuv2rgb() -> None:
    import av
    import cv2
    import numpy as np

    cv2.setNumThreads(1)

    def convert(mode: str) -> float:
        spent = 0.0
        with av.open(str(INTERVIEW)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                t = time.perf_counter()
                if mode == "swscale":
                    frame.to_ndarray(format="rgb24")
                else:
                    cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
                spent += time.perf_counter() - t
        return spent

    for mode in ("swscale", "opencv", "swscale", "opencv"):
        print(f"{mode}: {convert(mode):.2f} s for the conversions of 438 frames")
    with av.open(str(INTERVIEW)) as container:
        frame = next(container.decode(video=0))
        a = frame.to_ndarray(format="rgb24").astype(int)
        b = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420).astype(int)
    print(f"pixel difference: mean {np.abs(a - b).mean():.2f}, max {np.abs(a - b).max()}")


_STARTUP = """
import sys, time
t0 = time.perf_counter()
from socialav.pipelines.detect import SpeakerDetector
t1 = time.perf_counter()
SpeakerDetector()
t2 = time.perf_counter()
heavy = [m for m in ("torch", "onnx", "scipy.signal") if m in sys.modules]
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {','.join(heavy) or '-'}")
"""


def startup(repeats: int) -> None:
    subprocess.run([sys.executable, "-c", _STARTUP], check=True, capture_output=True)  # cache
    print("| run | import s | load models s | total s | imported |\n|---|---|---|---|---|")
    for k in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _STARTUP], check=True, capture_output=True, text=True
        ).stdout.split()
        total = float(out[0]) + float(out[1])
        print(f"| {k + 1} | {out[0]} | {out[1]} | {total:.2f} | {out[2]} |", flush=True)


def video_cap(video: str, repeats: int) -> None:
    import tempfile

    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector

    result = SpeakerDetector()(video)
    out = tempfile.mkdtemp(prefix="video-cap-")
    cap = DetectConfig().video_max_short_side_px
    print("| run | cap | wall s | CPU s |\n|---|---|---|---|")
    for k in range(repeats):
        for max_side in (0, cap):
            c0, t0 = sum(os.times()[:4]), time.perf_counter()
            result.write(out, ["video"], video_max_short_side_px=max_side)
            wall, cpu = time.perf_counter() - t0, sum(os.times()[:4]) - c0
            name = "source" if max_side == 0 else f"{max_side}p"
            print(f"| {k + 1} | {name} | {wall:.1f} | {cpu:.1f} |", flush=True)


def work(video: str) -> None:
    import socialav.vision.face_embedding as face_embedding
    from socialav.pipelines.detect import SpeakerDetector

    counts = {"encoder frames": 0, "faces offered": 0, "crops cut": 0, "described": 0}
    seconds = {"describe": 0.0}
    quality, candidate = face_embedding.face_quality, face_embedding._Candidate
    describe = face_embedding.DlibFaceEmbedder.describe

    def described(self, *args, **kwargs):
        counts["described"] += 1
        t = time.perf_counter()
        out = describe(self, *args, **kwargs)
        seconds["describe"] += time.perf_counter() - t
        return out

    face_embedding.DlibFaceEmbedder.describe = described

    def offered(*args, **kwargs):
        counts["faces offered"] += 1
        return quality(*args, **kwargs)

    def cut(*args, **kwargs):
        counts["crops cut"] += 1
        return candidate(*args, **kwargs)

    face_embedding.face_quality, face_embedding._Candidate = offered, cut
    detector = SpeakerDetector()
    encode_visual = detector.runner.encode_visual

    def encoded(faces):
        counts["encoder frames"] += faces.shape[0] * faces.shape[1]
        return encode_visual(faces)

    detector.runner.encode_visual = encoded
    result = detector(video)
    face_frames = sum(len(t.frame_indices) for t in result.tracks)
    per_face_ms = 1000 * seconds["describe"] / max(counts["described"], 1)
    print(
        "| face-frames | encoder frames | per face-frame | faces offered | crops cut | described "
        "| ms per description |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {face_frames} | {counts['encoder frames']} | "
        f"{counts['encoder frames'] / max(face_frames, 1):.3f} | {counts['faces offered']} | "
        f"{counts['crops cut']} | {counts['described']} | {per_face_ms:.0f} |"
    )


def visual_graph(repeats: int) -> None:
    import collections
    import json
    import tempfile

    import numpy as np
    import onnxruntime as ort
    import torch

    from socialav.checkpoints.load import load_pretrained
    from socialav.inference.backends import ort_session_options
    from socialav.inference.torch_backend import export_asd_graphs

    torch.set_num_threads(2)
    faces = np.random.default_rng(0).integers(0, 256, (1, 150, 112, 112)).astype(np.float32)
    print("| weights | ms per face-frame | Conv | Reorder* | Transpose | Relu | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for weights in ("lr-asd-ava", "light-asd-ava"):
        model, info = load_pretrained(weights, task="asd")
        with torch.inference_mode():
            ref = model.encode_visual(torch.from_numpy(faces)).numpy()
        with tempfile.TemporaryDirectory() as cache:
            graphs = export_asd_graphs(model, info.sha256, {}, cache).graphs
            options = ort_session_options(2)
            session = ort.InferenceSession(
                str(graphs["visual"]), options, providers=["CPUExecutionProvider"]
            )
            got = session.run(None, {"faces": faces})[0]
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(5):
                    session.run(None, {"faces": faces})
                best = min(best, (time.perf_counter() - t) / 5)
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(cache, "profile")
            profiled = ort.InferenceSession(
                str(graphs["visual"]), options, providers=["CPUExecutionProvider"]
            )
            for _ in range(3):
                profiled.run(None, {"faces": faces})
            with open(profiled.end_profiling()) as f:
                events = json.load(f)
        per_op: collections.Counter[str] = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                op = e["args"]["op_name"]
                per_op["Reorder*" if op.startswith("Reorder") else op] += e["dur"]
        total = sum(per_op.values())
        share = {op: f"{100 * per_op[op] / total:.1f} %" for op in per_op}
        print(
            f"| {weights} | {1000 * best / faces.shape[1]:.3f} | "
            + " | ".join(share.get(op, "0 %") for op in ("Conv", "Reorder*", "Transpose", "Relu"))
            + f" | {np.abs(got - ref).max():.1e} |"
        )


_SPIN_CHILD = """
import os, sys, time
import socialav.audio.vad, socialav.vision.detection, socialav.vision.head_pose
from socialav import runtime
from socialav.pipelines.detect import SpeakerDetector
def spinning(num_threads=1, **kwargs):
    so = runtime.ort_session_options(num_threads, **kwargs)
    so.add_session_config_entry("session.intra_op.allow_spinning", sys.argv[1])
    return so
for module in (socialav.audio.vad, socialav.vision.detection, socialav.vision.head_pose):
    module.ort_session_options = spinning
detector = SpeakerDetector()
c0, t0 = sum(os.times()[:2]), time.perf_counter()
seconds = detector.run(sys.argv[2]).timings_s
wall, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - c0
stages = " | ".join(f"{seconds.get(k, 0):.1f}" for k in ("decode", "detect", "model", "vad"))
print(f"| {sys.argv[1]} | {wall:.1f} | {cpu:.1f} | {stages} |")
"""


def spinning(video: str, repeats: int) -> None:
    print("| allow_spinning | analysis s | CPU s | decode s | detect s | model s | vad s |")
    print("|---|---|---|---|---|---|---|")
    for _ in range(repeats):
        for spin in ("0", "1"):
            cmd = [sys.executable, "-c", _SPIN_CHILD, spin, video]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            print(done.stdout.strip(), flush=True)


def video_parts(video: str) -> None:
    import tempfile
    from fractions import Fraction

    import av
    import cv2

    from socialav.io.annotate import annotated_size
    from socialav.io.media import iter_frames, iter_i420_frames, probe_video

    cv2.setNumThreads(1)  # as in detect
    info = probe_video(video)
    width, height = annotated_size(info.width_px, info.height_px, 480)
    print("| parts | frames | wall s | CPU s |\n|---|---|---|---|")
    for parts in ("decode", "decode + scale", "decode + scale + x264"):
        with tempfile.TemporaryDirectory() as tmp:
            out = stream = None
            if "x264" in parts:
                out = av.open(os.path.join(tmp, "out.mp4"), "w")
                stream = out.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"preset": "ultrafast", "crf": "28"}
            c0, t0, n = sum(os.times()[:2]), time.perf_counter(), 0
            if "scale" in parts:  # as write_annotated_video: swscale to the output size
                frames = iter_i420_frames(video, width, height, fps=info.fps)
            else:
                frames = iter_frames(video, fps=info.fps, pixel_format="yuv420p")
            for k, picture in frames:
                n += 1
                if stream is not None:
                    picture.pts, picture.time_base = k, Fraction(1, 25)
                    for packet in stream.encode(picture):
                        out.mux(packet)
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
                out.close()
            wall, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - c0
        print(f"| {parts} | {n} | {wall:.2f} | {cpu:.2f} |", flush=True)


_WRITE_CHILD = """
import os, sys, tempfile, time
import cv2
import numpy as np
from socialav.io.annotate import write_annotated_video
from socialav.io.media import probe_video
from socialav.types import FaceTrack, TrackScores
cv2.setNumThreads(1)  # as in detect
video = probe_video(sys.argv[1])
n = video.num_frames
rng = np.random.default_rng(0)
tracks, scores = [], []
for track_id, box in enumerate([(256, 146, 640, 504), (700, 60, 1100, 520)]):
    frames = np.arange(n)
    box_px = np.array(box, float) * video.width_px / 1280
    tracks.append(FaceTrack(track_id, frames, np.tile(box_px, (n, 1)), np.zeros((n, 3))))
    p = np.abs(np.sin(np.cumsum(rng.normal(0, 0.05, n))))  # a label that changes slowly
    scores.append(TrackScores(track_id, frames, p, p))
with tempfile.TemporaryDirectory() as tmp:
    c0, t0 = sum(os.times()[:2]), time.perf_counter()
    write_annotated_video(os.path.join(tmp, "a.mp4"), sys.argv[1], video, tracks, scores,
                          max_short_side_px=480)
    print(f"{time.perf_counter() - t0:.2f} {sum(os.times()[:2]) - c0:.2f}")
"""


def video_write(video: str, before: str | None, repeats: int) -> None:
    """The annotated video of VIDEO (480p, two face boxes with labels, as detect draws them
    by default) written in a fresh process by this tree and by ``before`` (a tree's root,
    through ``PYTHONPATH``), alternating."""
    trees = [("this tree", None)] + ([("before", before)] if before else [])
    print("| tree | wall s | CPU s |\n|---|---|---|")
    for _ in range(repeats):
        for name, root in trees:
            env = dict(os.environ)
            if root is not None:
                env["PYTHONPATH"] = str(Path(root) / "src")
            cmd = [sys.executable, "-c", _WRITE_CHILD, video]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            wall, cpu = done.stdout.split()
            print(f"| {name} | {wall} | {cpu} |", flush=True)


#: 720p and 1080p sources of the scaler comparison (in ../shared/videos)
SCALER_VIDEOS = ("visualvoice_interview.mp4", "more/dfdc_lynaeydofd_REAL.mp4")


def scalers(repeats: int) -> None:
    """swscale's filters for the annotated video's 480p pictures: ms per frame and PSNR
    against OpenCV's INTER_AREA of the RGB frame (the quality reference)."""
    import av
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    print("| source | scaler | ms per frame | PSNR vs INTER_AREA of RGB (dB) |\n|---|---|---|---|")
    for name in SCALER_VIDEOS:
        with av.open(str(SHARED / "videos" / name)) as container:
            frames = list(itertools.islice(container.decode(video=0), 100))
        h_src, w_src = frames[0].height, frames[0].width
        width, height = 2 * round(w_src * 480 / h_src / 2), 480
        for scaler in ("AREA", "BILINEAR", "FAST_BILINEAR", "BICUBIC"):
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for f in frames:
                    f.reformat(width=width, height=height, format="yuv420p", interpolation=scaler)
                best = min(best, (time.perf_counter() - t) / len(frames))
            errors = []
            for f in frames[::10]:
                ref = cv2.resize(f.to_ndarray(format="rgb24"), (width, height), cv2.INTER_AREA)
                small = f.reformat(
                    width=width, height=height, format="yuv420p", interpolation=scaler
                )
                mse = np.mean((small.to_ndarray(format="rgb24").astype(float) - ref) ** 2)
                errors.append(10 * np.log10(255**2 / mse))
            print(
                f"| {name} {w_src}x{h_src} | {scaler.lower()} | {1000 * best:.3f} "
                f"| {np.mean(errors):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    print(f"$ python {' '.join(sys.argv)}")
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "overlap":
        overlap(sys.argv[2] if len(sys.argv) > 2 else str(INTERVIEW))
    elif what == "arena":
        arena()
    elif what == "yuv2rgb":
        yuv2rgb()
    elif what == "startup":
        startup(int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3)
    elif what == "video-cap":
        repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 2
        video_cap(sys.argv[2] if len(sys.argv) > 2 else str(INTERVIEW), repeats)
    elif what == "work":
        work(sys.argv[2] if len(sys.argv) > 2 else str(INTERVIEW))
    elif what == "visual-graph":
        visual_graph(
            int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
        )
    elif what == "spinning":
        spinning(
            sys.argv[2]
            if len(sys.argv) > 2 and not sys.argv[2].startswith("--")
            else str(INTERVIEW),
            int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 2,
        )
    elif what == "video-write":
        video_write(
            sys.argv[2],
            sys.argv[sys.argv.index("--before") + 1] if "--before" in sys.argv else None,
            int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 4,
        )
    elif what == "scalers":
        scalers(int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3)
    elif what == "video-parts":
        video_parts(sys.argv[2] if len(sys.argv) > 2 else str(INTERVIEW))
    elif what == "memory":
        minutes = (
            float(sys.argv[sys.argv.index("--minutes") + 1]) if "--minutes" in sys.argv else 10
        )
        memory(minutes)
    else:
        sys.exit(__doc__)
    print(
        f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB"
    )
