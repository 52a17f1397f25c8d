"""``socialav data download unitalk`` against a local HTTP server on 127.0.0.1 that serves a tiny
UniTalk-ASD in the real layout the way the Hugging Face Hub does (``/datasets/<repo>/resolve/
main/<path>``; ``ETag`` / ``X-Linked-Etag`` = sha256 of LFS files, git blob sha1 of small ones;
``X-Repo-Commit``; sizes): the downloaded tree and ``<split>_orig.csv`` are what UniTalk's
``download_dataset.py`` produces; a killed download resumes; a corrupt zip is reported and
fetched again; a missing video fails alone, with a clear line."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from socialav.cli import app
from socialav.data.unitalk_download import read_video_list

PREFIX = "/datasets/plnguyen2908/UniTalk-ASD/resolve/main/"
HEADER = (
    "video_id,frame_timestamp,entity_box_x1,entity_box_y1,entity_box_x2,entity_box_y2,"
    "label,entity_id,label_id,instance_id"
)
SPLITS = {"train": ["vidA", "vid-B_2", "vidC"], "val": ["vidD"]}


def _jpeg(seed: int) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _dataset() -> tuple[dict[str, bytes], dict[str, bytes], dict[str, str]]:
    """Server files (repo path -> bytes), the tree the reference leaves (path -> bytes) and
    the merged CSV text per split that pandas' read / concat / to_csv gives (by hand)."""
    files: dict[str, bytes] = {}
    tree: dict[str, bytes] = {}
    merged: dict[str, str] = {}
    seed = 0
    for split, videos in SPLITS.items():
        lines = []
        for video in videos:
            crops, wavs = {}, {}
            for e in range(2):
                entity = f"{video}:{e}"
                for t in ("0.04", "0.08", "12.36"):
                    seed += 1
                    crops[f"{video}/{entity}/{t}.jpg"] = _jpeg(seed)
                wavs[f"{video}/{entity}.wav"] = bytes(range(256)) * (e + 1)
            files[f"clips_videos/{split}/{video}.zip"] = _zip(crops)
            files[f"clips_audios/{split}/{video}.zip"] = _zip(wavs)
            tree.update({f"clips_videos/{split}/{k}": v for k, v in crops.items()})
            tree.update({f"clips_audios/{split}/{k}": v for k, v in wavs.items()})
            raw = [
                f"{video},0.04,0.10,0.2,0.50,0.6,SPEAKING_AUDIBLE,{video}:0,1,{video}:0:0",
                f"{video},12.36,0.125,0.2,0.5,0.75,NOT_SPEAKING,{video}:1,0,{video}:1:0",
            ]
            files[f"csv/{split}/{video}.csv"] = ("\n".join(raw) + "\n").encode()
            # pandas reads 0.10 and 0.50 as floats and writes them back as 0.1 and 0.5
            lines += [r.replace("0.10", "0.1").replace("0.50", "0.5") for r in raw]
        merged[split] = HEADER + "\n" + "\n".join(lines) + "\n"
    return files, tree, merged


class _Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    corrupt_once: set[str] = set()
    stall: str | None = None
    stalled = threading.Event()
    release = threading.Event()
    log: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:  # quiet
        return None

    def _target(self) -> str | None:
        path = urllib.parse.unquote(self.path.split("?")[0])
        return path[len(PREFIX) :] if path.startswith(PREFIX) else None

    def _headers(self, data: bytes, lfs: bool) -> None:
        if lfs:
            etag = hashlib.sha256(data).hexdigest()
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
        else:
            etag = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("Accept-Ranges", "bytes")

    def do_HEAD(self) -> None:  # noqa: N802
        name = self._target()
        self.log.append(("HEAD", name or self.path))
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        self.send_response(200)
        self._headers(data, name.endswith(".zip"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        name = self._target()
        self.log.append(("GET", name or self.path))
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        if name in self.corrupt_once:
            self.corrupt_once.discard(name)
            data = data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
        self.send_response(200)
        self._headers(self.files[name], name.endswith(".zip"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if name == self.stall:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.stalled.set()
            self.release.wait(60)
            return
        self.wfile.write(data)


@pytest.fixture
def hub(tmp_path):
    files, tree, merged = _dataset()
    _Hub.files = dict(files)
    _Hub.corrupt_once, _Hub.stall, _Hub.log = set(), None, []
    _Hub.stalled, _Hub.release = threading.Event(), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lists = tmp_path / "video_list"
    lists.mkdir()
    for split, videos in SPLITS.items():
        urls = [f"https://www.youtube.com/watch?v={v}" for v in videos]
        (lists / f"{split}.csv").write_text("Link\n" + "\n".join(urls) + "\n")
    yield {
        "url": f"http://127.0.0.1:{server.server_address[1]}",
        "lists": lists,
        "tree": tree,
        "merged": merged,
    }
    _Hub.release.set()
    server.shutdown()
    server.server_close()


def _args(hub, root: Path, *extra) -> list[str]:
    return [
        "data", "download", "unitalk", "--save-path", str(root), "--video-list",
        str(hub["lists"]), "--endpoint", hub["url"], "--workers", "2", *extra,
    ]  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".socialav-download" not in p.parts
    }


def _expected(hub, splits=("train", "val")) -> dict[str, bytes]:
    out = {k: v for k, v in hub["tree"].items() if k.split("/")[1] in splits}
    out.update({f"csv/{s}_orig.csv": hub["merged"][s].encode() for s in splits})
    return out


def test_download_gives_the_reference_tree_and_merged_csvs(hub, tmp_path):
    root = tmp_path / "unitalk"
    result = CliRunner().invoke(app, _args(hub, root))
    assert result.exit_code == 0, result.output
    assert _tree(root) == _expected(hub)
    assert not list((root / ".socialav-download").rglob("*.zip"))  # zips deleted after unzip
    # a rerun asks the server nothing: every video is finished
    _Hub.log = []
    result = CliRunner().invoke(app, _args(hub, root))
    assert result.exit_code == 0, result.output
    assert _Hub.log == []
    assert _tree(root) == _expected(hub)


def test_corrupt_zip_is_reported_and_fetched_again(hub, tmp_path):
    _Hub.corrupt_once = {"clips_videos/train/vid-B_2.zip"}
    root = tmp_path / "unitalk"
    result = CliRunner().invoke(app, _args(hub, root, "--split", "train"))
    assert result.exit_code == 0, result.output
    assert "clips_videos/train/vid-B_2.zip: corrupt download (sha256" in result.output
    assert "1 files failed a check and were fetched again" in result.output
    assert _tree(root) == _expected(hub, ("train",))


def test_a_missing_video_fails_alone_and_a_rerun_completes(hub, tmp_path):
    missing = "clips_audios/train/vidC.zip"
    held = _Hub.files.pop(missing)
    root = tmp_path / "unitalk"
    result = CliRunner().invoke(app, _args(hub, root))
    assert result.exit_code == 1
    assert f"failed train/vidC: {missing}: not on the server" in result.output
    assert "404 Not Found" in result.output
    assert not (root / "csv" / "train_orig.csv").exists()
    assert (root / "csv" / "val_orig.csv").read_text() == hub["merged"]["val"]
    _Hub.files[missing] = held
    _Hub.log = []
    result = CliRunner().invoke(app, _args(hub, root))
    assert result.exit_code == 0, result.output
    asked = {name for _, name in _Hub.log}
    assert all("vidC" in name for name in asked), asked  # the finished videos are skipped
    assert _tree(root) == _expected(hub)


@pytest.mark.slow
def test_a_download_killed_halfway_resumes(hub, tmp_path):
    root = tmp_path / "unitalk"
    _Hub.stall = "clips_videos/train/vid-B_2.zip"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    args = _args(hub, root, "--split", "train")
    args[args.index("--workers") + 1] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "socialav.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _Hub.stalled.wait(120), "the download never reached the stalled zip"
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait(30)
    assert (root / ".socialav-download" / "train" / "vidA.json").is_file()  # vidA finished
    assert not (root / "clips_videos" / "train" / "vid-B_2").exists()
    _Hub.stall, _Hub.log = None, []
    _Hub.release.set()
    result = CliRunner().invoke(app, _args(hub, root, "--split", "train"))
    assert result.exit_code == 0, result.output
    assert not any("vidA" in name for _, name in _Hub.log)
    assert _tree(root) == _expected(hub, ("train",))
    assert not list((root / ".socialav-download").rglob("*.incomplete"))
    assert not [p for p in (root / "clips_videos" / "train").iterdir() if p.name.startswith(".")]


def test_video_list_parsing():
    text = "Link\nhttps://www.youtube.com/watch?v=qv3-HaaxGUc\n\nhttps://youtu.be/x?v=ab_c\n"
    assert read_video_list(text) == ["qv3-HaaxGUc", "ab_c"]


def test_one_list_file_for_two_splits_is_refused(hub, tmp_path):
    args = _args(hub, tmp_path / "u")
    args[args.index("--video-list") + 1] = str(hub["lists"] / "train.csv")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "is one file but 2 splits were asked for" in result.output
