"""The command line starts without the heavy libraries: ``socialav --help`` and every
command's ``--help`` import none of PyTorch, OpenCV, onnxruntime, matplotlib, PySceneDetect,
SciPy or PyAV (a command imports what it needs when it runs). Timings: benchmarks/bench_speed.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "cv2", "onnxruntime", "matplotlib", "scenedetect", "scipy", "av", "sklearn")

_CHILD = """
import sys
from typer.testing import CliRunner
from socialav.cli import app
args = sys.argv[1:]
result = CliRunner().invoke(app, args)
assert result.exit_code == 0, result.output
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["detect", "--help"],
        ["evaluate", "--help"],
        ["train", "--help"],
        ["data", "talkset", "--help"],
        ["score", "--help"],
        ["predict", "--help"],
        ["--version"],
    ],
)
def test_help_imports_no_heavy_library(args):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "", f"{' '.join(args)} imported {proc.stdout.strip()}"
