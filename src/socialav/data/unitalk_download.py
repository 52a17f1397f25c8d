"""``socialav data download unitalk``: the UniTalk-ASD dataset in the prepared layout, as
UniTalk's ``download_dataset.py`` (github.com/plnguyen2908/UniTalk-ASD) makes it, but parallel,
resumable and verified.

The reference script, per split (``train``, ``val``) and per video of the code repository's
``video_list/<split>.csv`` (a ``Link`` header, then YouTube URLs; the video id is the text after
``v=``), downloads from the dataset repository ``plnguyen2908/UniTalk-ASD`` on the Hugging Face
Hub (``.../resolve/main/<path>``, one ``wget`` after the other):

- ``clips_videos/<split>/<video>.zip`` and ``clips_audios/<split>/<video>.zip``, each unzipped
  into ``ROOT/clips_videos/<split>/`` (``ROOT/clips_audios/<split>/``) and deleted;
- ``csv/<split>/<video>.csv`` (no header; ``video_id, frame_timestamp, entity_box_x1..y2,
  label, entity_id, label_id, instance_id``), read with pandas (``header=None``, those names);

and writes the concatenation as ``ROOT/csv/<split>_orig.csv`` (``DataFrame.to_csv(index=False)``:
with a header). This module gives the same tree and the same merged CSV text (the merge is
pandas' read / concat / write, as the reference), with:

- files fetched through ``huggingface_hub`` (``hf_hub_download``; ``endpoint`` overrides the
  Hub address, as does ``HF_ENDPOINT``), several videos at once (threads);
- verification: the size and hash the server states (``X-Linked-Size`` / ``Content-Length``;
  ``X-Linked-Etag`` / ``ETag``: sha256 for LFS files such as the zips, the git blob sha1 for
  small files such as the CSVs); a file that fails is reported and fetched again from zero;
- resumption: a video is finished once both zips are extracted and its CSV kept; its record
  ``ROOT/.socialav-download/<split>/<video>.json`` makes a rerun skip it without a request;
  a zip whose download was cut off is fetched again (huggingface_hub writes to a temporary
  file renamed when complete; what a killed run leaves behind is removed by the next);
  extraction goes to a temporary folder moved into place;
- one clear error per failed video and a summary; ``<split>_orig.csv`` is written only when
  every video of the split is there (rerun to complete it).

``ROOT/.socialav-download/`` (resume records, the per-video CSVs, partial downloads) is ours;
everything else is the reference layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialav.io.atomic import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "UNITALK_COLUMNS",
    "UNITALK_REPO_ID",
    "UNITALK_VIDEO_LIST_URL",
    "DownloadConfig",
    "DownloadEvent",
    "DownloadSummary",
    "UnitalkDownloadError",
    "VideoFailure",
    "download_unitalk",
    "merge_video_csvs",
    "read_video_list",
]

#: The dataset repository on the Hugging Face Hub (``repo_type="dataset"``).
UNITALK_REPO_ID = "plnguyen2908/UniTalk-ASD"
#: ``video_list/<split>.csv`` of the UniTalk code repository, at the commit that added it.
UNITALK_VIDEO_LIST_URL = (
    "https://raw.githubusercontent.com/plnguyen2908/UniTalk-ASD/"
    "06e08cf36aca00cb9dd38e83592f7e9be3ddabb9/video_list/{split}.csv"
)
#: Columns of the per-video CSVs (no header in the files), as ``download_dataset.py`` names them.
UNITALK_COLUMNS: tuple[str, ...] = (
    "video_id",
    "frame_timestamp",
    "entity_box_x1",
    "entity_box_y1",
    "entity_box_x2",
    "entity_box_y2",
    "label",
    "entity_id",
    "label_id",
    "instance_id",
)
STATE_DIR = ".socialav-download"
_ZIP_KINDS = ("clips_videos", "clips_audios")


class UnitalkDownloadError(RuntimeError):
    """A file could not be fetched or verified, or an archive not extracted."""


@dataclass(frozen=True)
class DownloadConfig:
    """What to download and how.

    Attributes:
        save_path: the dataset root (created).
        splits: ``("train", "val")`` by default.
        workers: videos downloaded at once.
        video_list: ``None`` (the UniTalk code repository's lists, fetched), a folder holding
            ``<split>.csv``, or one CSV file (then only one split).
        endpoint: Hub address (``None``: ``HF_ENDPOINT`` or huggingface.co).
        revision: dataset revision (``main``, as the reference).
        attempts: tries per file before the video fails (a verified download ends them).
    """

    save_path: str
    splits: tuple[str, ...] = ("train", "val")
    workers: int = 4
    video_list: str | None = None
    endpoint: str | None = None
    revision: str = "main"
    attempts: int = 3


@dataclass(frozen=True)
class VideoFailure:
    """A video that is not (completely) there: which file and why."""

    split: str
    video: str
    reason: str


@dataclass(frozen=True)
class DownloadEvent:
    """Progress: ``done`` of ``total`` videos of ``split``; ``status`` of ``video``:
    ``downloaded``, ``already there``, ``failed``, or ``retry`` (a file failed its check and
    is fetched again; ``video`` is then the file, ``detail`` says why, ``done`` is -1)."""

    split: str
    done: int
    total: int
    video: str
    status: str
    detail: str = ""


@dataclass
class DownloadSummary:
    """Per split: videos listed, downloaded now, already there; failures; retried files
    (``(path, why)``); merged CSVs written."""

    videos: dict[str, int] = field(default_factory=dict)
    downloaded: dict[str, int] = field(default_factory=dict)
    already_there: dict[str, int] = field(default_factory=dict)
    failures: list[VideoFailure] = field(default_factory=list)
    retried: list[tuple[str, str]] = field(default_factory=list)
    merged_csvs: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------- video lists


def read_video_list(text: str, source: str = "video list") -> list[str]:
    """Video ids of a ``video_list/<split>.csv`` text: lines after ``Link``, the part after
    ``v=`` (the reference's ``line.strip().split("v=")[-1]``); blank lines skipped, repeats
    kept once (with a warning).

    Raises:
        UnitalkDownloadError: no video in the list.
    """
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line == "Link":
            continue
        video = line.split("v=")[-1]
        if video in out:
            logger.warning("%s: video %s listed twice; downloading it once", source, video)
            continue
        out.append(video)
    if not out:
        raise UnitalkDownloadError(f"{source}: no video listed (expected 'Link' then URLs)")
    return out


def _video_list(split: str, config: DownloadConfig) -> list[str]:
    source = config.video_list
    if source is None:
        url = UNITALK_VIDEO_LIST_URL.format(split=split)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https
                return read_video_list(response.read().decode("utf-8"), url)
        except OSError as exc:
            raise UnitalkDownloadError(
                f"cannot fetch the {split} video list {url} ({exc}); download UniTalk's "
                "video_list/ folder and pass it with --video-list"
            ) from None
    path = Path(source)
    if path.is_dir():
        path = path / f"{split}.csv"
    elif len(config.splits) > 1:
        raise UnitalkDownloadError(
            f"--video-list {source} is one file but {len(config.splits)} splits were asked for: "
            "give the folder holding train.csv and val.csv, or one --split"
        )
    if not path.is_file():
        raise FileNotFoundError(f"video list {path} not found (expected video_list/{split}.csv)")
    return read_video_list(path.read_text(encoding="utf-8"), str(path))


# --------------------------------------------------------------------- verification


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, size: int | None, etag: str | None) -> str | None:
    """Why ``path`` is not the file the server described, or ``None``."""
    found = path.stat().st_size
    if size is not None and found != size:
        return f"size {found} bytes, the server says {size}"
    tag = (etag or "").strip('"').lower()
    if len(tag) == 64 and all(c in "0123456789abcdef" for c in tag):
        digest = _sha256(path)
        return None if digest == tag else f"sha256 {digest[:12]}..., the server says {tag[:12]}..."
    if len(tag) == 40 and all(c in "0123456789abcdef" for c in tag):
        digest = _git_blob_sha1(path)
        return (
            None if digest == tag else f"git sha1 {digest[:12]}..., the server says {tag[:12]}..."
        )
    logger.debug("%s: no content hash from the server (etag %r); size checked", path, etag)
    return None


class _Silent:
    """A tqdm stand-in for huggingface_hub's per-file bars (the CLI draws its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.n = 0

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


class _Fetcher:
    """Verified downloads of repository files into the staging folder."""

    def __init__(self, config: DownloadConfig, staging: Path, report: Callable[[str, str], None]):
        try:
            import huggingface_hub
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "socialav data download needs huggingface_hub >= 1.1: pip install 'socialav[download]'"
            ) from exc
        self.hub = huggingface_hub
        self.config = config
        self.staging = staging
        self.report = report

    def _forget(self, repo_path: str) -> None:
        (self.staging / repo_path).unlink(missing_ok=True)
        meta = self.staging / ".cache" / "huggingface" / "download" / f"{repo_path}.metadata"
        meta.unlink(missing_ok=True)

    def fetch(self, repo_path: str) -> Path:
        """The verified local copy of ``repo_path``.

        Raises:
            UnitalkDownloadError: not found, unreachable, or not verified after the attempts.
        """
        hub, config = self.hub, self.config
        url = hub.hf_hub_url(
            UNITALK_REPO_ID,
            repo_path,
            repo_type="dataset",
            revision=config.revision,
            endpoint=config.endpoint,
        )
        last = ""
        for attempt in range(1, config.attempts + 1):
            try:
                meta = hub.get_hf_file_metadata(url, endpoint=config.endpoint)
                local = Path(
                    hub.hf_hub_download(
                        UNITALK_REPO_ID,
                        repo_path,
                        repo_type="dataset",
                        revision=config.revision,
                        endpoint=config.endpoint,
                        local_dir=self.staging,
                        force_download=attempt > 1,
                        tqdm_class=_Silent,  # type: ignore[arg-type]
                    )
                )
            except (TypeError, AttributeError, NameError):
                raise  # a bug, not a download problem
            except Exception as exc:  # huggingface_hub / httpx errors (no common base), OSError
                status = getattr(getattr(exc, "response", None), "status_code", None)
                last = f"{repo_path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                if status == 404:
                    raise UnitalkDownloadError(
                        f"{repo_path}: not on the server ({url} answered 404 Not Found)"
                    ) from None
                self.report(repo_path, last)
                continue
            problem = _check(local, meta.size, meta.etag)
            if problem is None:
                return local
            last = f"{repo_path}: corrupt download ({problem})"
            self.report(repo_path, last + "; downloading it again")
            self._forget(repo_path)
        raise UnitalkDownloadError(f"{last} (gave up after {config.attempts} attempts)")


# ------------------------------------------------------------------------- extraction


def _extract(archive: Path, destination: Path) -> list[str]:
    """Unzip into ``destination`` through a temporary folder; returns the top-level names."""
    destination.mkdir(parents=True, exist_ok=True)
    tmp = destination / f".unzip-{archive.stem}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise UnitalkDownloadError(f"{archive.name}: member {bad} fails its CRC")
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UnitalkDownloadError(f"{archive.name}: not a zip archive ({exc})") from None
    names = sorted(p.name for p in tmp.iterdir())
    for name in names:
        target = destination / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(tmp / name, target)
    shutil.rmtree(tmp, ignore_errors=True)
    return names


# ---------------------------------------------------------------------------- the job


def _record_path(root: Path, split: str, video: str) -> Path:
    return root / STATE_DIR / split / f"{video}.json"


def _csv_copy(root: Path, split: str, video: str) -> Path:
    return root / STATE_DIR / "csv" / split / f"{video}.csv"


def _finished(root: Path, split: str, video: str) -> bool:
    record = _record_path(root, split, video)
    if not record.is_file() or not _csv_copy(root, split, video).is_file():
        return False
    try:
        entries = json.loads(record.read_text(encoding="utf-8"))["entries"]
    except (ValueError, KeyError):
        return False
    return all(
        (root / kind / split / name).exists() for kind in _ZIP_KINDS for name in entries[kind]
    )


def _download_video(fetcher: _Fetcher, root: Path, split: str, video: str) -> None:
    entries: dict[str, list[str]] = {}
    for kind in _ZIP_KINDS:
        repo_path = f"{kind}/{split}/{video}.zip"
        archive = fetcher.fetch(repo_path)
        entries[kind] = _extract(archive, root / kind / split)
        archive.unlink(missing_ok=True)
    csv_local = fetcher.fetch(f"csv/{split}/{video}.csv")
    keep = _csv_copy(root, split, video)
    keep.parent.mkdir(parents=True, exist_ok=True)
    os.replace(csv_local, keep)
    with atomic_write(_record_path(root, split, video)) as fh:
        json.dump({"split": split, "video": video, "entries": entries}, fh)


def merge_video_csvs(paths: Sequence[Path], out: Path) -> int:
    """``<split>_orig.csv`` from per-video CSVs, as ``download_dataset.py`` merges them:
    ``pandas.read_csv(header=None, names=UNITALK_COLUMNS)`` each, ``concat(ignore_index=True)``,
    ``to_csv(index=False)`` -- written atomically. Returns the row count."""
    import pandas as pd

    frames = [pd.read_csv(p, header=None, names=list(UNITALK_COLUMNS)) for p in paths]
    merged = pd.concat(frames, ignore_index=True)
    with atomic_write(out, newline="") as fh:
        merged.to_csv(fh, index=False)
    return len(merged)


def download_unitalk(
    config: DownloadConfig, progress: Callable[[DownloadEvent], None] | None = None
) -> DownloadSummary:
    """Download UniTalk-ASD into ``config.save_path`` (module docstring).

    Returns:
        A :class:`DownloadSummary`; failed videos are in ``failures`` (their split's
        ``<split>_orig.csv`` is not written).

    Raises:
        UnitalkDownloadError, FileNotFoundError: a video list that cannot be read.
        ValueError: an unknown split or ``workers < 1``.
        ImportError: huggingface_hub is not installed.
    """
    for split in config.splits:
        if split not in ("train", "val"):
            raise ValueError(f"--split must list train and/or val, got {split!r}")
    if config.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {config.workers}")
    root = Path(config.save_path)
    lists = {split: _video_list(split, config) for split in config.splits}
    for sub in ("csv", *(f"{k}/{s}" for k in _ZIP_KINDS for s in config.splits)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    summary = DownloadSummary()
    lock = threading.Lock()

    def emit(event: DownloadEvent) -> None:
        if progress is not None:
            with lock:
                progress(event)

    for split, videos in lists.items():
        summary.videos[split] = len(videos)
        summary.downloaded[split] = summary.already_there[split] = 0
        total = len(videos)

        def report(repo_path: str, why: str, _split: str = split, _total: int = total) -> None:
            with lock:
                summary.retried.append((repo_path, why))
            logger.warning("%s", why)
            emit(DownloadEvent(_split, -1, _total, repo_path, "retry", why))

        staging = root / STATE_DIR / "partial"
        for leftover in staging.rglob("*.incomplete") if staging.is_dir() else ():
            leftover.unlink(missing_ok=True)  # a killed run's partial download
        fetcher = _Fetcher(config, staging, report)
        todo = [v for v in videos if not _finished(root, split, v)]
        summary.already_there[split] = len(videos) - len(todo)
        done = summary.already_there[split]
        for video in videos:
            if video not in todo:
                emit(DownloadEvent(split, done, total, video, "already there"))
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            futures = {pool.submit(_download_video, fetcher, root, split, v): v for v in todo}
            for future in as_completed(futures):
                video = futures[future]
                done += 1
                try:
                    future.result()
                except (UnitalkDownloadError, OSError) as exc:
                    reason = " ".join(str(exc).split())
                    summary.failures.append(VideoFailure(split, video, reason))
                    emit(DownloadEvent(split, done, total, video, "failed", reason))
                    continue
                summary.downloaded[split] += 1
                emit(DownloadEvent(split, done, total, video, "downloaded"))
        if any(f.split == split for f in summary.failures):
            continue
        out = root / "csv" / f"{split}_orig.csv"
        merge_video_csvs([_csv_copy(root, split, v) for v in videos], out)
        summary.merged_csvs.append(out)
    return summary
