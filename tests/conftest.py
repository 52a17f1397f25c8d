"""Shared test fixtures: paths into ../shared (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SOCIALAV_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the repository")
        pytest.skip(f"{path} not found (../shared is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def videos_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "videos")


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "fixtures")


@pytest.fixture(scope="session")
def weights_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "weights")


@pytest.fixture(scope="session")
def interview_reference(fixtures_dir: Path):
    import numpy as np

    return np.load(_require(fixtures_dir / "interview_light_asd_reference.npz"))


@pytest.fixture(autouse=True, scope="session")
def _offline_weights(weights_dir_env=None):
    """Tests read the pretrained weights from ../shared/weights, never the network."""
    if "SOCIALAV_WEIGHTS_DIR" not in os.environ and (SHARED / "weights").exists():
        os.environ["SOCIALAV_WEIGHTS_DIR"] = str(SHARED / "weights")
    yield


# tests import the synthetic-media factory as a plain module
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: fixtures shared by tests in several folders (plain modules next to this file)
pytest_plugins = ["social_fixtures", "ego4d_fixtures"]
