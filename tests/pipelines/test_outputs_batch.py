"""Output names unique within a batch, stale temporary folders, recorded settings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from socialav.pipelines.outputs import (
    TEMP_PREFIX,
    _host_tag,
    _temporary_folder,
    is_output_file,
    recorded_settings,
    remove_stale_temporaries,
    settings_differences,
    unique_stems,
)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a/clip.mp4", "b/clip.mp4"], ["a__clip", "b__clip"]),
        (["x.mp4", "x.mkv"], ["x_mp4", "x_mkv"]),
        (["one.mp4", "two.mp4"], ["one", "two"]),
        (["p/a/clip.mp4", "q/a/clip.mp4"], ["p__a__clip", "q__a__clip"]),
        (["a/clip.mp4", "b/clip.mp4", "c/other.mp4"], ["a__clip", "b__clip", "other"]),
    ],
)
def test_unique_stems(tmp_path, names, expected):
    paths = [tmp_path / n for n in names]
    stems = unique_stems(paths)
    assert [stems[p.resolve()] for p in paths] == expected
    assert len(set(stems.values())) == len(stems)


def test_the_same_file_twice_is_one_video(tmp_path):
    path = tmp_path / "clip.mp4"
    assert unique_stems([path, tmp_path / "." / "clip.mp4"]) == {path.resolve(): "clip"}


@pytest.mark.parametrize(
    ("name", "is_output"),
    [
        ("clip.annotated.mp4", True),
        ("clip.ava.csv", True),
        ("clip.report.html", True),
        ("clip.mp4", False),
        ("annotated.mp4", False),
    ],
)
def test_output_files_are_recognised(name, is_output):
    assert is_output_file(name) is is_output


def _owned(folder, pid, host=None):
    folder.mkdir()
    (folder / "owner.json").write_text(
        json.dumps({"pid": pid, "host": host or socket.gethostname()})
    )
    (folder / "partial.ava.csv").write_text("half")
    return folder


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)  # that process has ended
    gone = _owned(tmp_path / f"{TEMP_PREFIX}dead", dead_pid)
    alive = _owned(tmp_path / f"{TEMP_PREFIX}alive", os.getpid())
    elsewhere = _owned(tmp_path / f"{TEMP_PREFIX}other", 1, host="another-host")
    old_unowned = tmp_path / f"{TEMP_PREFIX}old"
    old_unowned.mkdir()
    past = time.time() - 7 * 3600
    os.utime(old_unowned, (past, past))
    new_unowned = tmp_path / f"{TEMP_PREFIX}new"
    new_unowned.mkdir()
    (tmp_path / "clip.ava.csv").write_text("kept")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([gone, old_unowned])
    assert alive.exists() and elsewhere.exists() and new_unowned.exists()
    assert (tmp_path / "clip.ava.csv").read_text() == "kept"


def test_a_temporary_folder_names_its_owner_from_the_moment_it_exists(tmp_path):
    # a run killed between creating its folder and writing anything into it: the name alone
    # says whose it was (before, an owner file written after mkdtemp left a window)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    ours = _temporary_folder(tmp_path)
    assert ours.name.startswith(f"{TEMP_PREFIX}{os.getpid()}-{_host_tag()}-")
    assert list(ours.iterdir()) == []
    killed = tmp_path / f"{TEMP_PREFIX}{int(dead.stdout)}-{_host_tag()}-x1"
    killed.mkdir()
    other_host = tmp_path / f"{TEMP_PREFIX}{int(dead.stdout)}-{'0' * 8}-x2"
    other_host.mkdir()
    if _host_tag() == "0" * 8:
        pytest.skip("this host's tag happens to be the other host's")
    assert remove_stale_temporaries(tmp_path) == [killed]
    assert ours.exists() and other_host.exists()  # alive / another host, young


def test_settings_differences_name_what_changed(tmp_path):
    a = {"config": {"segments": {"threshold": 0.5}, "asd_weights": "lr-asd-ava"}, "socialav": "1"}
    b = {"config": {"segments": {"threshold": 0.7}, "asd_weights": "lr-asd-ava"}, "socialav": "1"}
    assert settings_differences(a, a) == []
    assert settings_differences(a, b) == ["config.segments.threshold: 0.5 -> 0.7"]
    path = tmp_path / "clip.json"
    path.write_text(json.dumps({"run_info": {"settings": a}}))
    assert recorded_settings(path) == a
    path.write_text("{not json")
    assert recorded_settings(path) is None
    assert recorded_settings(tmp_path / "missing.json") is None
