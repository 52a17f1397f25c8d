"""socialav.io.report: the self-contained HTML page (its contents; the browser tests run it)."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_factory import make_video
from report_records import TINY_JPEG_B64, make_record, make_track, with_persons

from socialav.io.report import (
    browser_playable,
    track_thumbnails,
    video_href,
    write_report,
)
from socialav.io.report_data import report_payload, report_rows


def _payload(page: str) -> dict:
    text = re.search(
        r'<script type="application/json" id="socialav-data">(.*?)</script>', page, re.S
    )
    return json.loads(text.group(1))


@pytest.mark.parametrize(
    ("codec", "name", "playable"),
    [
        ("h264", "a.mp4", True),
        ("h264", "a.MOV", True),
        ("vp9", "a.webm", True),
        ("", "a.mp4", True),  # unknown codec: the page tries and falls back at run time
        ("hevc", "a.mp4", False),
        ("mpeg1video", "grid.mpg", False),
        ("mpeg4", "a.avi", False),
        ("h264", "a.mkv", False),
        ("h264", "a.ts", False),
        ("h264", None, False),
    ],
)
def test_browser_playable(codec, name, playable):
    assert browser_playable(codec, name) is playable


def test_video_href_is_relative_and_quoted(tmp_path):
    video = tmp_path / "in" / "my clip#1.mp4"
    assert video_href(video, tmp_path / "out") == "../in/my%20clip%231.mp4"
    assert video_href(tmp_path / "out" / "a.mp4", tmp_path / "out") == "a.mp4"


def test_page_is_self_contained_and_holds_the_payload(tmp_path):
    record = make_record()
    out = tmp_path / "clip.report.html"
    result = write_report(
        out,
        record,
        video_href="../videos/clip.mp4",
        fallback_video_href="clip.annotated.mp4",
        output_links={"json": "clip.json", "csv": "clip.ava.csv"},
    )
    page = out.read_text()
    assert result.size_bytes == len(page.encode()) and result.num_rows == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left"
    # nothing is fetched: no external script, style, image, font or URL at all
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=['\"](?!data:)", page)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert "Content-Security-Policy" in page and "connect-src 'none'" in page
    payload = _payload(page)
    expected = report_payload(record, report_rows(record))
    assert {k: payload[k] for k in expected} == json.loads(json.dumps(expected))
    assert payload["media"] == {
        "src": "../videos/clip.mp4",
        "fallback": "clip.annotated.mp4",
        "annotated": False,
        "embedded": False,
    }
    assert 'id="notice" class="notice" hidden' in page
    assert "href='clip.json' download" in page and "href='clip.ava.csv' download" in page


def test_summary_numbers_are_the_records(tmp_path):
    record = with_persons(make_record())
    write_report(tmp_path / "r.html", record)
    page = (tmp_path / "r.html").read_text()
    found = re.findall(r"data-row-key='([^']+)' data-speaking-s='([^']+)' data-turns='(\d+)'", page)
    expected = [
        (f"person:{p['person_id']}", p["speaking_time_s"], p["num_turns"])
        for p in record["persons"]
    ]
    assert [(k, float(s), int(n)) for k, s, n in found] == expected
    # person_0 brings its own thumbnail; person_2 is a voice off screen
    assert f"data:image/jpeg;base64,{TINY_JPEG_B64}" in page
    assert "voice only, not on screen" in page
    # overlap: person_0 (0.4-2.4, 4.0-6.0 s) and person_1 (3.2-5.2 s) share 4.0-5.2 s
    overlap = re.search(r"data-total='overlap' data-seconds='([^']+)'", page).group(1)
    assert float(overlap) == pytest.approx(1.2)


@pytest.mark.parametrize("with_fallback", [True, False])
def test_unplayable_codec_falls_back_to_the_annotated_copy(tmp_path, with_fallback):
    record = make_record(codec="mpeg1video", path="grid.mpg")
    fallback = "grid.annotated.mp4" if with_fallback else None
    result = write_report(
        tmp_path / "g.html", record, video_href="grid.mpg", fallback_video_href=fallback
    )
    page = (tmp_path / "g.html").read_text()
    media = _payload(page)["media"]
    notice = re.search(r'<div id="notice" class="notice">(.*?)</div>', page).group(1)
    assert "Browsers cannot play .mpg files (MPEG-1 video)" in notice
    if with_fallback:
        assert (
            media["src"] == "grid.annotated.mp4" and media["annotated"] and result.shows_annotated
        )
        assert "annotated copy grid.annotated.mp4" in notice
    else:
        assert media["src"] is None and "no annotated copy was written" in notice


def test_embedding_inlines_the_file_up_to_the_limit(tmp_path, caplog):
    clip = make_video(tmp_path / "clip.mp4", num_frames=10)
    record = make_record()
    result = write_report(tmp_path / "e.html", record, video_href="clip.mp4", embed_video=clip)
    page = (tmp_path / "e.html").read_text()
    data = re.search(r"id='socialav-video' data-mime='video/mp4'>([^<]+)</script>", page).group(1)
    assert base64.b64decode(data) == clip.read_bytes()
    assert result.embedded and _payload(page)["media"]["src"] is None
    with caplog.at_level(logging.WARNING, logger="socialav.io.report"):
        result = write_report(
            tmp_path / "l.html",
            record,
            video_href="clip.mp4",
            embed_video=clip,
            max_embed_bytes=100,
        )
    assert not result.embedded and result.video_href == "clip.mp4"
    assert "linked instead" in caplog.text


def test_thumbnail_is_a_big_face_near_a_keyframe(tmp_path):
    # frame i of the synthetic video is uniformly gray (8 i); one keyframe at 0
    path = make_video(tmp_path / "v.mp4", num_frames=40, size_wh=(128, 96))
    track, score = make_track(0, 0, 40, box=(10, 10, 40, 40), drift_px_per_frame=0.0)
    track.detected[:] = False
    track.detected[[0, 4, 8, 12]] = True
    boxes = track.boxes_xyxy_px
    boxes[4] = (10, 10, 50, 50)
    boxes[8] = (10, 10, 70, 70)  # largest within 8 frames of the keyframe
    boxes[12] = (0, 0, 100, 90)  # larger, but 12 frames to decode
    record = make_record(40, [(track, score)], width_px=128, height_px=96)
    jpegs = track_thumbnails(path, record, [0])
    img = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img.shape[0] == 96
    assert abs(float(img.mean()) - 8 * 8) < 4  # frame 8


def test_report_of_a_ten_minute_video_stays_small(tmp_path):
    # two faces on screen for 10 minutes, detected every 3rd frame, three series each
    n = 15000
    tracks = [
        make_track(0, 0, n, speaking=[(k, k + 80) for k in range(0, n - 100, 300)]),
        make_track(1, 0, n, speaking=[(k, k + 80) for k in range(150, n - 100, 300)]),
    ]
    result = write_report(tmp_path / "long.html", make_record(n, tracks))
    assert result.step_frames == 1
    assert result.size_bytes < 1_000_000, result.size_bytes


def test_bad_record_is_refused(tmp_path):
    with pytest.raises(ValueError, match="record.schema"):
        write_report(tmp_path / "x.html", {"schema": "something else"})
    assert not (tmp_path / "x.html").exists()


def test_persons_record_rows_and_thumbnails_passed_in(tmp_path):
    record = make_record()
    ok, jpeg = cv2.imencode(".jpg", np.zeros((4, 4, 3), np.uint8))
    write_report(tmp_path / "t.html", record, thumbnails={1: jpeg.tobytes()})
    page = (tmp_path / "t.html").read_text()
    assert base64.b64encode(jpeg.tobytes()).decode() in page
    assert page.count("no<br>picture") == 1  # track 0 has no thumbnail (no video given)
    assert Path(tmp_path / "t.html").stat().st_size > 0
