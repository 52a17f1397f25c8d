"""How `socialav detect FOLDER --cluster local:N` scales: total real-time factor of a folder of
videos for N = 1 and 2 workers on this machine (each worker gets cores / N threads).

Run (from the repository root, with ../shared beside it):

    SOCIALAV_WEIGHTS_DIR=../shared/weights python benchmarks/bench_cluster.py [--copies 4] [--workers 1,2]

The folder holds ``--copies`` copies of visualvoice_interview.mp4 (17.5 s, 720p, two faces);
all default outputs are written. Folder RTF = total video seconds / wall clock of the command
(Dask start-up and every worker's model loading included); per-worker RTF = the median of the
videos' own RTF (analysis and writing, models already loaded) as the command reports them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    print(f"$ python {' '.join(sys.argv)}")
    print(f"cores: {os.cpu_count()}\n")
    tmp = Path(tempfile.mkdtemp(prefix="socialav-cluster-"))
    folder = tmp / "videos"
    folder.mkdir()
    for k in range(args.copies):
        shutil.copy(SHARED / "videos" / "visualvoice_interview.mp4", folder / f"v{k}.mp4")
    total_s = 17.5 * args.copies
    print(
        "| workers | threads per worker | videos | video s | wall s | folder RTF | per-video RTF (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in (int(w) for w in args.workers.split(",")):
        out = tmp / f"out{n}"
        cmd = [sys.executable, "-m", "socialav.cli", "detect", str(folder), "-o", str(out)]
        cmd += ["--cluster", f"local:{n}"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        rtfs = [float(x) for x in re.findall(r"done in [0-9.]+ s \(([0-9.]+)x\)", proc.stderr)]
        threads = max(1, (os.cpu_count() or 1) // n)
        print(
            f"| {n} | {threads} | {len(rtfs)} | {total_s:.0f} | {wall:.1f} | "
            f"{total_s / wall:.2f}x | {statistics.median(rtfs):.2f}x |",
            flush=True,
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
