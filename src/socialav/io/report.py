"""The HTML report of ``socialav detect``: one self-contained page to watch and check a video.

``<stem>.report.html`` plays the video with the face boxes drawn live over it, shows a
clickable timeline (one row per person, or per face track before diarization) and the
run's facts, and links the other outputs. Everything is inline (the page's script and style
are package data in ``report_assets/``, plain JavaScript with no library), so the file opens
from ``file://`` with no network request; a Content-Security-Policy forbids any.

The video is referenced by a relative URL from the report's folder (never copied: videos
are large, and a copy or link would go stale or need privileges on some systems). A source
whose codec browsers cannot decode (:func:`browser_playable`) is replaced by the annotated
H.264 copy, and the page says so; the page also switches to that copy if the source fails
to load (moved, or an H.264 profile the browser lacks). ``embed_video`` inlines a video of
at most :data:`EMBED_LIMIT_BYTES` instead.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from socialav.io.atomic import atomic_write
from socialav.io.report_data import (
    MAX_FULL_RATE_FACE_FRAMES,
    ReportRow,
    report_payload,
    report_rows,
    speech_totals,
)
from socialav.io.report_media import (
    PLAYABLE_CONTAINERS,
    browser_playable,
    codec_name,
    track_thumbnails,
    video_href,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EMBED_LIMIT_BYTES",
    "ReportResult",
    "browser_playable",
    "track_thumbnails",
    "video_href",
    "write_report",
]

#: Largest video ``embed_video`` inlines (base64 makes the page 4/3 of it): 25 MiB, a few
#: minutes of 720p H.264; browsers hold the whole page and a decoded copy in memory.
EMBED_LIMIT_BYTES = 25 * 1024 * 1024
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/mp4", ".webm": "video/webm"}
_MIME.update({".ogv": "video/ogg", ".ogg": "video/ogg"})
#: What each other output of ``socialav detect`` is, for the download list.
OUTPUT_DESCRIPTIONS = {
    "csv": "per frame and face: box and speaking probability (AVA-ActiveSpeaker CSV)",
    "rttm": "speaking turns (RTTM, one line per turn)",
    "json": "everything the page shows, with full precision (JSON)",
    "timeline": "the timeline as an image (PNG)",
    "video": "the video with the boxes drawn into it (MP4, H.264)",
}


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        path: the HTML file.
        size_bytes: its size.
        num_rows: timeline rows (persons or face tracks).
        video_href: the URL the page plays first (relative), or None (embedded / none).
        embedded: whether the video is inlined.
        shows_annotated: whether the page plays the annotated copy instead of the source.
        step_frames: frames per stored value of the per-frame series (1 = every frame).
        timings_s: seconds spent on ``thumbnails``, ``payload`` and ``write``.
    """

    path: str
    size_bytes: int
    num_rows: int
    video_href: str | None
    embedded: bool
    shows_annotated: bool
    step_frames: int
    timings_s: dict[str, float]


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_s(seconds: float) -> str:
    """``9.7 s``, or ``2 min 05.3 s`` from a minute on."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:04.1f} s"


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>`` and ``&`` as ``\\u`` escapes."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return resources.files("socialav.io").joinpath("report_assets", name).read_text("utf-8")


def _dl(items: Sequence[tuple[str, str]]) -> str:
    """A definition list; values are HTML already."""
    body = "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f"<dl class='facts'>{body}</dl>"


def _weights_html(entry: Any) -> str:
    if isinstance(entry, list):
        return "<br>".join(_weights_html(e) for e in entry)
    if not isinstance(entry, Mapping):
        return _esc(entry)
    name = entry.get("name") or entry.get("path") or entry.get("architecture") or "?"
    sha = entry.get("sha256")
    text = f"<code>{_esc(name)}</code>"
    if entry.get("architecture") and entry.get("architecture") != name:
        text += f" ({_esc(entry['architecture'])})"
    if sha:
        text += (
            f" <span class='sha' title='sha256 {_esc(sha)}'>sha256 {_esc(str(sha)[:12])}…</span>"
        )
    return text


_TASK_NAMES = {
    "asd": "who is speaking (asd)",
    "lam": "who looks at the camera (lam)",
    "ttm": "who talks to the camera (ttm)",
}


def _analysis_facts(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    info = record.get("run_info") or {}
    segments = info.get("segments") or {}
    weights = info.get("weights") or {}
    facts: list[tuple[str, str]] = []
    if info.get("tasks"):
        facts.append(("questions", _esc(", ".join(_TASK_NAMES.get(t, t) for t in info["tasks"]))))
    if info.get("model") or weights.get("asd"):
        facts.append(
            (
                "speaker model",
                f"{_esc(info.get('model', ''))} · {_weights_html(weights.get('asd', ''))}",
            )
        )
    for key, label in (
        ("face_detector", "face detector"),
        ("head_pose", "head pose"),
        ("context", "scene context"),
        ("lam", "lam model"),
        ("ttm", "ttm model"),
    ):
        if weights.get(key):
            facts.append((label, _weights_html(weights[key])))
    if "threshold" in segments:
        facts.append(("speaking threshold", f"P(speaking) ≥ {_esc(segments['threshold'])}"))
    rules = []
    if segments.get("smooth_frames") is not None:
        rules.append(f"probability smoothed over {_esc(segments['smooth_frames'])} frames")
    if segments.get("max_gap_s") is not None:
        rules.append(f"gaps under {_esc(segments['max_gap_s'])} s closed")
    if segments.get("min_duration_s") is not None:
        rules.append(f"turns under {_esc(segments['min_duration_s'])} s dropped")
    if rules:
        facts.append(("turns", _esc("; ".join(rules))))
    if info.get("probability"):
        facts.append(("probability", _esc(info["probability"])))
    for key in ("lam", "ttm"):
        if isinstance(info.get(key), str):
            facts.append((f"{key} rule", _esc(info[key])))
    if info.get("windows_s") is not None:
        facts.append(
            ("windows", _esc(", ".join(f"{w:g} s" for w in info["windows_s"]) or "whole track"))
        )
    if info.get("backend"):
        facts.append(
            ("backend", _esc(f"{info['backend']}, {info.get('num_threads') or 'all'} threads"))
        )
    if info.get("detect_every"):
        facts.append(
            ("face detection", _esc(f"every {info['detect_every']} frames, tracked between"))
        )
    if "num_shot_cuts" in info:
        cuts = info.get("shot_cut_frames")
        fps = float(record["video"]["fps"])
        where = (
            " at "
            + ", ".join(f"{k / fps:.2f} s" for k in cuts[:12])
            + (" …" if len(cuts) > 12 else "")
            if cuts
            else ""
        )
        facts.append(("shot cuts", _esc(f"{info['num_shot_cuts']}{where}")))
    timings = info.get("timings_s") or {}
    if timings:
        shown = ", ".join(
            f"{k} {v:.1f} s" for k, v in timings.items() if isinstance(v, (int, float))
        )
        facts.append(("time taken", _esc(shown)))
    versions = info.get("versions") or {}
    if versions:
        facts.append(("versions", _esc(", ".join(f"{k} {v}" for k, v in versions.items()))))
    return facts


def _video_facts(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    v = record["video"]
    audio = "no audio"
    if v.get("has_audio"):
        audio = f"{v.get('audio_codec') or 'audio'}"
        if v.get("audio_sample_rate"):
            audio += f", {int(v['audio_sample_rate']) / 1000:g} kHz"
    return [
        ("file", f"<code>{_esc(Path(str(v.get('path', v['video_id']))).name)}</code>"),
        ("duration", _esc(_fmt_s(float(v["duration_s"])))),
        (
            "picture",
            _esc(
                f"{v['width_px']}×{v['height_px']}, {codec_name(v.get('video_codec'))}, {float(v.get('source_fps') or v['fps']):.3g} fps (analysed at {float(v['fps']):g} fps)"
            ),
        ),
        ("sound", _esc(audio)),
    ]


_NO_THUMB = {
    True: "<span class='thumb none'>no<br>picture</span>",
    False: "<span class='thumb none'>voice<br>only</span>",
}


def _speakers_table(
    rows: Sequence[ReportRow], record: Mapping[str, Any], thumbs: Mapping[str, str | None]
) -> str:
    duration = float(record["video"]["duration_s"]) or 1.0
    fps = float(record["video"]["fps"])
    spans = {
        int(t["track_id"]): (int(t["end_frame"]) - int(t["start_frame"]) + 1) / fps
        for t in record["tracks"]
    }
    body = []
    for i, row in enumerate(rows):
        on_screen = sum(spans.get(t, 0.0) for t in row.track_ids)
        share = min(row.speaking_time_s / duration, 1.0)
        thumb = thumbs.get(row.key)
        img = f"<img class='thumb' alt='' src='{thumb}'>" if thumb else _NO_THUMB[row.on_screen]
        who = _esc(row.label)
        if row.kind == "person":
            if row.track_ids:
                who += f"<small>face tracks {_esc(', '.join(map(str, row.track_ids)))}</small>"
            else:
                who += "<small>voice only, not on screen</small>"
        seen = _fmt_s(on_screen) if row.track_ids else "—"
        body.append(
            f"<tr data-row='{i}' data-row-key='{_esc(row.key)}' data-speaking-s='{row.speaking_time_s!r}' "
            f"data-turns='{row.num_turns}'><td>{img}</td><td class='who'>{who}</td>"
            f"<td class='num speaking'><span class='bar' style='width:{100 * share:.1f}%'></span>"
            f"<span class='val'>{_esc(_fmt_s(row.speaking_time_s))}</span> <small>{100 * share:.0f} %</small></td>"
            f"<td class='num turns'>{row.num_turns}</td><td class='num'>{_esc(seen)}</td></tr>"
        )
    if not body:
        body.append("<tr><td colspan='5' class='empty'>No face was found in this video.</td></tr>")
    kind = "person" if rows and rows[0].kind == "person" else "face track"
    head = f"<tr><th></th><th>{kind}</th><th>speaking</th><th>turns</th><th>on screen</th></tr>"
    table = f"<table id='speakers'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
    return f"<div class='table-scroll'>{table}</div>"


def _totals_html(rows: Sequence[ReportRow], duration_s: float) -> str:
    totals = speech_totals(rows, duration_s)
    who = "people" if rows and rows[0].kind == "person" else "face tracks"
    items = [
        ("someone speaking", totals.anyone_s, "anyone"),
        (f"two or more {who} at once", totals.overlap_s, "overlap"),
        ("nobody speaking", totals.nobody_s, "nobody"),
    ]
    body = "".join(
        f"<div data-total='{key}' data-seconds='{value!r}'><b>{_esc(_fmt_s(value))}</b> {_esc(label)}</div>"
        for label, value, key in items
    )
    return f"<div id='totals'>{body}</div>"


def _downloads_html(output_links: Mapping[str, str], source_href: str | None) -> str:
    items = []
    for kind, href in output_links.items():
        name = urllib.parse.unquote(Path(href).name)
        what = OUTPUT_DESCRIPTIONS.get(kind, kind)
        items.append(
            f"<li><a href='{_esc(href)}' download>{_esc(name)}</a> <span>{_esc(what)}</span></li>"
        )
    if source_href:
        name = urllib.parse.unquote(source_href.rsplit("/", 1)[-1])
        items.append(
            f"<li><a href='{_esc(source_href)}'>{_esc(name)}</a> <span>the source video</span></li>"
        )
    if not items:
        return "<p>No other output was written.</p>"
    return f"<ul id='downloads'>{''.join(items)}</ul>"


_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; media-src 'self' file: blob: data:; connect-src 'none'; "
    "form-action 'none'; base-uri 'none'"
)


def _page(
    record: Mapping[str, Any],
    rows: Sequence[ReportRow],
    payload: Mapping[str, Any],
    thumbs: Mapping[str, str | None],
    output_links: Mapping[str, str],
    source_href: str | None,
    notice: str | None,
    embedded_b64: str | None,
    embedded_mime: str | None,
) -> str:
    v = record["video"]
    title = f"{Path(str(v.get('path', v['video_id']))).name} — socialav report"
    n_rows = len(rows)
    what = "people" if rows and rows[0].kind == "person" else "face tracks"
    sub = f"{_fmt_s(float(v['duration_s']))} · {v['width_px']}×{v['height_px']} · {n_rows} {what}"
    version = ((record.get("run_info") or {}).get("versions") or {}).get("socialav", "")
    legend_series = "".join(
        f"<span class='key'><i class='line{' dashed' if s['dash'] else ''}' style='border-color:{_esc(s['color'])}'></i>{_esc(s['label'])}</span>"
        for s in payload["series"]
    )
    threshold = payload["threshold"]
    video_tag = "<video id='video' controls preload='auto' playsinline></video>"
    embedded = ""
    if embedded_b64 is not None:
        embedded = f"<script type='application/octet-stream' id='socialav-video' data-mime='{_esc(embedded_mime)}'>{embedded_b64}</script>"
    run_info_json = html.escape(json.dumps(record.get("run_info") or {}, indent=1, allow_nan=False))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<link rel="icon" href="data:,">
<title>{_esc(title)}</title>
<style>
{_asset("report.css")}
</style>
</head>
<body>
<header>
  <h1>{_esc(Path(str(v.get("path", v["video_id"]))).name)}</h1>
  <p class="sub">{_esc(sub)} · socialav report</p>
  <p class="intro">Who speaks when in this video. Play it: every face is boxed, green while
    it speaks and red while it does not, with its speaking probability. The timeline below has
    one row per {"person" if what == "people" else "face"}: the curve is that probability,
    green bands are speaking turns. Click anywhere on it to jump there.</p>
</header>
<div id="notice" class="notice"{"" if notice else " hidden"}>{_esc(notice or "")}</div>
<main>
  <section class="player card">
    <div class="stage" id="stage" style="aspect-ratio:{int(v["width_px"])}/{int(v["height_px"])};width:min(100%,calc(72vh*{int(v["width_px"]) / int(v["height_px"]):.4f}))">
      {video_tag}
      <canvas id="overlay"></canvas>
    </div>
    <div class="player-bar">
      <span id="clock">0.00 s · frame 0</span>
      <label title="draw the face boxes over the video"><input type="checkbox" id="show-boxes" checked> live boxes</label>
      <span class="legend">
        <span class="key"><i class="box speaking"></i>speaking (P ≥ {threshold:g})</span>
        <span class="key"><i class="box silent"></i>not speaking</span>
        <span class="key"><i class="chip"></i>“looking at me”, “to me”: looks at, talks to the camera</span>
      </span>
    </div>
  </section>
  <section class="speakers card">
    <h2>Who speaks, and how long</h2>
    {_speakers_table(rows, record, thumbs)}
    {_totals_html(rows, float(v["duration_s"]))}
  </section>
</main>
<section class="card timeline-card">
  <div class="tl-head">
    <h2>Timeline</h2>
    <span class="legend">
      {legend_series}
      <span class="key"><i class="area"></i>speaking turn</span>
      <span class="key"><i class="line dashed" style="border-color:#888"></i>threshold {threshold:g}</span>
      <span class="key"><i class="line cut"></i>shot cut</span>
    </span>
    <span class="zoom">
      <label>zoom <input type="range" id="zoom" min="0" max="1000" value="0"></label>
      <label>scroll <input type="range" id="pan" min="0" max="1000" value="0"></label>
      <button type="button" id="zoom-all">whole video</button>
    </span>
  </div>
  <div id="timeline" tabindex="0"></div>
  <p class="hint">Click a row to jump there (and pick that row) · hover for values · wheel: zoom, shift+wheel: scroll ·
    <kbd>space</kbd> play/pause · <kbd>←</kbd>/<kbd>→</kbd> one frame (with <kbd>shift</kbd>: one second) ·
    <kbd>n</kbd>/<kbd>p</kbd> next/previous turn of the picked row</p>
</section>
<section class="details">
  <div class="card"><h2>The video</h2>{_dl(_video_facts(record))}
    <h2>Files</h2>{_downloads_html(output_links, source_href)}</div>
  <div class="card"><h2>How this was computed</h2>{_dl(_analysis_facts(record))}
    <details><summary>everything the JSON records about this run</summary><pre>{run_info_json}</pre></details></div>
</section>
<footer>socialav {_esc(version)} · this page works offline: the video is read from its folder, nothing is sent anywhere</footer>
<script type="application/json" id="socialav-data">{_script_json(payload)}</script>
{embedded}
<script>
{_asset("report.js")}
</script>
</body>
</html>
"""


def _data_uri_jpeg(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def write_report(
    path: str | os.PathLike[str],
    record: Mapping[str, Any],
    *,
    video_href: str | None = None,
    fallback_video_href: str | None = None,
    output_links: Mapping[str, str] | None = None,
    embed_video: str | os.PathLike[str] | None = None,
    source_video: str | os.PathLike[str] | None = None,
    thumbnails: Mapping[int, bytes] | None = None,
    max_embed_bytes: int = EMBED_LIMIT_BYTES,
    max_face_frames: int = MAX_FULL_RATE_FACE_FRAMES,
) -> ReportResult:
    """Write ``<stem>.report.html`` for one detect record (atomically).

    Which video the page plays: ``video_href`` (the source, a URL relative to the report's
    folder, see :func:`video_href`) if :func:`browser_playable` says its codec
    (``record["video"]["video_codec"]``) and suffix play in browsers, else
    ``fallback_video_href`` (the annotated H.264 copy), with a notice on the page saying
    why; the page also switches to the fallback if the source fails to load. With neither,
    the page still draws the boxes and timeline on a black stage and says what is missing.
    The live boxes are off by default over the annotated copy (it has them drawn in).

    Args:
        path: the HTML file to write.
        record: the ``socialav detect`` JSON record (:func:`socialav.io.writers.detection_record`),
            optionally with ``persons`` (diarization: one timeline row per person).
        video_href: URL of the source video relative to the report's folder.
        fallback_video_href: URL of the annotated mp4 (relative), or None.
        output_links: output kind (``csv``, ``rttm``, ``json``, ``timeline``, ``video``) →
            relative URL, for the download list.
        embed_video: a video file to inline instead of linking (at most ``max_embed_bytes``;
            a larger one is linked and a warning logged). Pass the file the page should play:
            the source if playable, else the annotated copy.
        source_video: the analysed video file: a face thumbnail per track is cut from it
            (one seek each, :func:`track_thumbnails`), and the time of its first frame
            (:func:`socialav.io.media.first_frame_time_s`) aligns the page with the player's
            clock, which counts from the file's own time 0 (the annotated copy keeps it).
            None: only the thumbnails given, and a clock offset of 0.
        thumbnails: track id → JPEG bytes, used instead of cutting them.
        max_embed_bytes: see ``embed_video``.
        max_face_frames: size budget of the per-frame series
            (:data:`socialav.io.report_data.MAX_FULL_RATE_FACE_FRAMES`).

    Returns:
        :class:`ReportResult`.

    Raises:
        ValueError: the record is not a valid detect record (see
            :func:`socialav.io.report_data.check_record`).
        FileNotFoundError: ``embed_video`` does not exist.
    """
    timings: dict[str, float] = {}
    rows = report_rows(record)
    video = record["video"]
    codec = video.get("video_codec") or ""

    # thumbnails: the person's own, else one of its (longest) face track
    t = time.perf_counter()
    spans = {
        int(tr["track_id"]): int(tr["end_frame"]) - int(tr["start_frame"])
        for tr in record["tracks"]
    }
    wanted = {}
    for row in rows:
        if row.thumbnail_jpeg_base64 is None and row.track_ids:
            wanted[row.key] = max(row.track_ids, key=lambda tid: (spans[tid], -tid))
    jpegs: dict[int, bytes] = dict(thumbnails or {})
    missing = sorted({tid for tid in wanted.values() if tid not in jpegs})
    start_s = 0.0
    if source_video is not None:
        from socialav.io.media import MediaError, first_frame_time_s

        try:
            start_s = first_frame_time_s(source_video)
            if missing:
                jpegs.update(track_thumbnails(source_video, record, missing))
        except MediaError as exc:
            logger.warning("no face thumbnails in the report: %s", exc)
    thumbs: dict[str, str | None] = {}
    for row in rows:
        if row.thumbnail_jpeg_base64:
            thumbs[row.key] = "data:image/jpeg;base64," + row.thumbnail_jpeg_base64
        elif row.key in wanted and wanted[row.key] in jpegs:
            thumbs[row.key] = _data_uri_jpeg(jpegs[wanted[row.key]])
        else:
            thumbs[row.key] = None
    timings["thumbnails"] = time.perf_counter() - t

    # which video to play
    t = time.perf_counter()
    notice = None
    source_ok = browser_playable(codec, video_href)
    primary, secondary, shows_annotated = video_href, fallback_video_href, False
    if not source_ok:
        why = f"Browsers cannot play this video's {codec_name(codec)}"
        if (
            video_href is not None
            and Path(urllib.parse.unquote(video_href)).suffix.lower() not in PLAYABLE_CONTAINERS
        ):
            why = f"Browsers cannot play {Path(urllib.parse.unquote(video_href)).suffix} files ({codec_name(codec)})"
        if fallback_video_href is not None:
            name = urllib.parse.unquote(fallback_video_href.rsplit("/", 1)[-1])
            notice = (
                f"{why}: this page shows the annotated copy {name} (H.264) instead, with the "
                "boxes drawn into the picture; tick “live boxes” to draw them on top as well."
            )
            primary, secondary, shows_annotated = fallback_video_href, None, True
        else:
            notice = (
                f"{why}, and no annotated copy was written (add video to --outputs): the boxes "
                "and the timeline are shown without the picture."
            )
            primary = secondary = None
    embedded_b64 = embedded_mime = None
    if embed_video is not None:
        size = os.path.getsize(embed_video)
        if size > max_embed_bytes:
            logger.warning(
                "%s is %.1f MB, more than the %.0f MB a report embeds; it is linked instead",
                embed_video,
                size / 1e6,
                max_embed_bytes / 1e6,
            )
        else:
            embedded_b64 = base64.b64encode(Path(embed_video).read_bytes()).decode("ascii")
            embedded_mime = _MIME.get(Path(embed_video).suffix.lower(), "video/mp4")
    payload = report_payload(record, rows, start_s=start_s, max_face_frames=max_face_frames)
    payload["media"] = {
        "src": None if embedded_b64 is not None else primary,
        "fallback": None if embedded_b64 is not None else secondary,
        "annotated": shows_annotated,
        "embedded": embedded_b64 is not None,
    }
    links = dict(output_links or {})
    page = _page(
        record, rows, payload, thumbs, links, video_href, notice, embedded_b64, embedded_mime
    )
    timings["payload"] = time.perf_counter() - t

    t = time.perf_counter()
    with atomic_write(path) as handle:
        handle.write(page)
    timings["write"] = time.perf_counter() - t
    size_bytes = os.path.getsize(path)
    logger.debug("report with %d rows, %d bytes -> %s", len(rows), size_bytes, path)
    return ReportResult(
        path=os.fspath(path),
        size_bytes=size_bytes,
        num_rows=len(rows),
        video_href=payload["media"]["src"],
        embedded=embedded_b64 is not None,
        shows_annotated=shows_annotated,
        step_frames=int(payload["step_frames"]),
        timings_s=timings,
    )
