"""The package keeps its layers: import-linter's contracts hold and no import cycle exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")  # import-linter's command
    done = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("socialav", exclude_type_checking_imports=True, cache_dir=None)
    modules = [m for m in graph.modules if m.startswith("socialav.")]
    cycles = [
        (a, b)
        for a in modules
        for b in graph.find_modules_directly_imported_by(a)
        if b != a and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == [], f"import cycles through: {cycles[:5]}"
