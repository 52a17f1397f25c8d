"""Headless Chromium (Debian ``chromium`` + ``chromium-driver``) driven by selenium, and the
detect outputs the browser tests open, made once per session.

In CI (``CI`` set) a missing browser, driver or selenium fails these tests; elsewhere they
skip with the reason. Screenshots go to ``$SOCIALAV_TEST_ARTIFACTS`` (default: a pytest
temporary folder); the path is printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
    "--window-size=1400,1500",
]
INSTALL = "apt-get install -y chromium chromium-driver; pip install 'selenium<4.52'"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI runs the browser tests for real ({INSTALL})")
    pytest.skip(f"{reason} ({INSTALL})")


def _binary(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):  # an explicit path: missing if it is not there
        return os.environ[env] if Path(os.environ[env]).exists() else None
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def driver():
    """One headless Chromium for the session, with console and network (CDP) logs."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    browser = _binary("SOCIALAV_CHROMIUM", ("chromium", "chromium-browser"))
    chromedriver = _binary("SOCIALAV_CHROMEDRIVER", ("chromedriver",))
    if browser is None or chromedriver is None:
        _missing(f"Chromium not found (browser {browser}, chromedriver {chromedriver})")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="socialav-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


_SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SOCIALAV_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder = folder / "report_screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    _SCREENSHOTS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter) -> None:
    for folder in _SCREENSHOTS:
        if any(folder.iterdir()):
            terminalreporter.write_line(f"report screenshots: {folder}")


def _first_video_pts_s(path: Path) -> float:
    """Time of the first video frame on the file's own clock (PyAV, as a player sees it)."""
    import av

    with av.open(str(path)) as container:
        return float(next(container.decode(video=0)).time)


@pytest.fixture(scope="session")
def reports(tmp_path_factory, videos_dir) -> dict[str, dict]:
    """Detect outputs of the interview and the Hamilton clip (JSON + report, the source
    plays) and of a GRID .mpg (+ the annotated video it falls back to: at the source size,
    360x288, below the default cap, and as ``grid_capped`` scaled to 180x144), and a report of
    the interview with hand-made persons. Name → {"html": Path, "record": dict, "video": Path,
    "t0": time of the first video frame on the file's clock (0.852 s in the Hamilton clip)}."""
    from report_records import with_persons

    from socialav.io.report import video_href, write_report
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector
    from socialav.pipelines.outputs import write_outputs

    out = tmp_path_factory.mktemp("reports")
    # per-track rows here; the persons layout is tested on hand-made persons below
    detector = SpeakerDetector(
        DetectConfig(tasks=("asd", "lam", "ttm"), num_threads=1, diarize=False)
    )
    clips = {
        "interview": ("visualvoice_interview.mp4", ["json", "report"]),
        "hamilton": ("face_recognition_short_hamilton_clip.mp4", ["json", "report"]),
        "grid": ("grid_bbaf2n.mpg", ["json", "video", "report"]),
    }
    found = {}
    for name, (file, kinds) in clips.items():
        result = detector.run(videos_dir / file)
        paths = write_outputs(result, out, kinds)
        found[name] = {
            "html": paths["report"],
            "record": json.loads(paths["json"].read_text()),
            "video": videos_dir / file,
            "t0": _first_video_pts_s(videos_dir / file),
        }
        if name == "grid":  # the same result, its fallback video capped at half the height
            capped = write_outputs(
                result, out, kinds, stem="grid_capped", video_max_short_side_px=144
            )
            found["grid_capped"] = {
                **found["grid"],
                "html": capped["report"],
                "record": json.loads(capped["json"].read_text()),
            }
    persons = with_persons(found["interview"]["record"])
    html = out / "interview_persons.report.html"
    source = videos_dir / "visualvoice_interview.mp4"
    write_report(html, persons, video_href=video_href(source, out), source_video=source)
    found["persons"] = {**found["interview"], "html": html, "record": persons}
    return found
