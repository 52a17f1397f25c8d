"""The HTML report in a real browser (headless Chromium): it loads offline without errors,
plays the video, draws the boxes where the JSON says, seeks on click, and shows the JSON's
numbers."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.slow

LOCAL_SCHEMES = ("file:", "data:", "blob:")


def _wait(driver, script: str, timeout_s: float = 15.0, what: str = ""):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout_s
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or script}")
        time.sleep(0.05)


def _open(driver, report) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    driver.get(report["html"].resolve().as_uri())
    _wait(driver, "window.socialavReport && document.getElementById('overlay').dataset.frame")


def _show_frame(driver, report, frame: int) -> None:
    """Pause the video on an analysis frame and wait until the overlay has drawn it.

    Analysis time ``t`` is at ``t0 + t`` on the player's clock (the file's own timeline).
    """
    _wait(driver, "document.getElementById('video').readyState >= 2", what="video data")
    driver.execute_script(
        "var v = document.getElementById('video'); v.pause(); v.currentTime = arguments[0];",
        report["t0"] + (frame + 0.5) / 25,
    )
    _wait(
        driver,
        f"document.getElementById('overlay').dataset.frame === '{frame}'",
        what=f"frame {frame}",
    )


def _pixel(driver, x_px: float, y_px: float, width_px: int, search_px: int = 0) -> list[int]:
    """RGBA of the overlay canvas at a point given in pixels of the video (``width_px`` wide).

    With ``search_px``, the most opaque canvas pixel within that many pixels left or right
    (an edge drawn at a fractional position covers one pixel fully, its neighbours partly).
    """
    return driver.execute_script(
        """
        var c = document.getElementById('overlay');
        var s = c.width / arguments[2], r = arguments[3];
        var x = Math.round(arguments[0] * s), y = Math.round(arguments[1] * s);
        var d = c.getContext('2d').getImageData(x - r, y, 2 * r + 1, 1).data, best = 0;
        for (var i = 1; i <= 2 * r; i++) if (d[4 * i + 3] > d[4 * best + 3]) best = i;
        return Array.from(d.slice(4 * best, 4 * best + 4));
        """,
        x_px,
        y_px,
        width_px,
        search_px,
    )


@pytest.mark.parametrize("name", ["interview", "hamilton", "grid", "persons"])
def test_loads_offline_without_console_errors(driver, reports, name):
    report = reports[name]
    _open(driver, report)
    _wait(
        driver,
        "document.getElementById('video').readyState >= 2 || document.getElementById('video').style.display === 'none'",
    )
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    page = report["html"].resolve().as_uri()
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            urls.append((params.get("documentURL", ""), params["request"]["url"]))
    mine = [u for doc, u in urls if doc == page]
    assert mine and mine[0] == page
    assert all(u.startswith(LOCAL_SCHEMES) for u in mine), mine
    assert not [u for _, u in urls if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))]


@pytest.mark.parametrize("name", ["interview", "grid", "grid_capped"])
def test_video_loads_and_plays(driver, reports, name):
    _open(driver, reports[name])
    _wait(driver, "document.getElementById('video').readyState >= 2", what="readyState >= 2")
    driver.execute_script(
        "var v = document.getElementById('video'); v.muted = true; v.currentTime = 0; v.play();"
    )
    _wait(driver, "document.getElementById('video').currentTime > 0.5", what="playback")
    frame = int(driver.execute_script("return window.socialavReport.frame()"))
    assert frame > 0  # the overlay follows the video
    driver.execute_script("document.getElementById('video').pause()")
    src = driver.execute_script("return document.getElementById('video').currentSrc")
    notice = driver.find_element("id", "notice")
    if name.startswith("grid"):  # MPEG-1: the page plays the annotated H.264 copy and says so
        stem = "grid_capped" if name == "grid_capped" else "grid_bbaf2n"
        assert src.endswith(f"{stem}.annotated.mp4")
        assert notice.is_displayed() and "annotated copy" in notice.text
    else:
        assert src.endswith("visualvoice_interview.mp4") and not notice.is_displayed()


def _expected_box(record: dict, frame: int) -> list[tuple[dict, list[float], bool]]:
    threshold = record["run_info"]["segments"]["threshold"]
    out = []
    for track in record["tracks"]:
        if track["start_frame"] <= frame <= track["end_frame"]:
            row = frame - track["start_frame"]
            p = track["probabilities"][row]
            out.append((track, track["boxes_xyxy_px"][row], p >= threshold))
    return out


@pytest.mark.parametrize(
    ("name", "frames"), [("interview", [40, 260]), ("hamilton", [10, 100, 200])]
)
def test_canvas_draws_the_boxes_of_the_json(driver, reports, name, frames):
    report = reports[name]
    record = report["record"]
    _open(driver, report)
    width_px = record["video"]["width_px"]
    source_fps = record["video"]["source_fps"]
    for frame in frames:
        _show_frame(driver, report, frame)
        # the picture on screen is the source frame of this analysis frame
        shown = "Number(document.getElementById('overlay').dataset.mediaTime || -1)"
        expected_s = report["t0"] + frame / 25
        _wait(
            driver, f"Math.abs({shown} - {expected_s}) <= {1 / source_fps + 1e-3}", what="picture"
        )
        boxes = _expected_box(record, frame)
        assert boxes, f"no track at frame {frame}"
        for track, (x1, y1, x2, y2), speaking in boxes:
            left = _pixel(
                driver, x1, (y1 + y2) / 2, width_px, search_px=2
            )  # the middle of the box's left edge
            expected = [0, 230, 0, 255] if speaking else [230, 0, 0, 255]
            assert left == expected, (name, frame, track["track_id"], left, expected)
            assert _pixel(driver, (x1 + x2) / 2, (y1 + y2) / 2, width_px)[3] == 0  # inside: clear
        # and nothing where no face is: the middle between the boxes' rows, far left
        ys = [b[1] for _, b, _ in boxes] + [b[3] for _, b, _ in boxes]
        if min(b[0] for _, b, _ in boxes) > 30:
            assert _pixel(driver, 5, (min(ys) + max(ys)) / 2, width_px)[3] == 0


@pytest.mark.parametrize(("name", "size"), [("grid", (360, 288)), ("grid_capped", (180, 144))])
def test_annotated_fallback_shows_its_boxes_where_the_json_says(driver, reports, name, size):
    """The page plays the annotated copy of an .mpg (live boxes off): the boxes drawn into
    its picture, at its own size (capped or not), land on the JSON's boxes scaled to the
    player, as the live boxes would."""
    import cv2
    import numpy as np

    report = reports[name]
    record = report["record"]
    _open(driver, report)
    assert driver.execute_script("return document.getElementById('show-boxes').checked") is False
    _wait(driver, "document.getElementById('video').videoWidth > 0", what="video size")
    video_size = driver.execute_script(
        "var v = document.getElementById('video'); return [v.videoWidth, v.videoHeight];"
    )
    assert tuple(video_size) == size
    width_px, height_px = record["video"]["width_px"], record["video"]["height_px"]
    for frame in (20, 40):
        _show_frame(driver, report, frame)
        shown = "Number(document.getElementById('overlay').dataset.mediaTime || -1)"
        expected_s = report["t0"] + frame / 25
        _wait(driver, f"Math.abs({shown} - {expected_s}) <= 0.041", what="picture")
        png = driver.find_element("id", "stage").screenshot_as_png
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        scale_x, scale_y = image.shape[1] / width_px, image.shape[0] / height_px
        boxes = _expected_box(record, frame)
        assert boxes, f"no track at frame {frame}"
        for _, (x1, y1, _, y2), speaking in boxes:
            row = image[round((y1 + y2) / 2 * scale_y)].astype(int)
            r, g, b = row[:, 0], row[:, 1], row[:, 2]
            mine = (g > 150) & (g > r + 80) if speaking else (r > 150) & (r > g + 80)
            mine &= np.maximum(r, g) > b + 80
            # the left edge: within 1.5 pixels of the played video of the JSON's x1 (the
            # drawing rounds to whole pixels and its 2 px lines lie on one side)
            x, tolerance = x1 * scale_x, 1.5 * image.shape[1] / size[0]
            hits = np.flatnonzero(mine)
            near = hits[np.abs(hits - x) <= 2 * tolerance]
            assert near.size, (name, frame, "no box edge near", x, hits)
            assert abs(near.mean() - x) <= tolerance, (name, frame, near, x)


def test_click_on_a_row_seeks_the_video_and_picks_the_row(driver, reports):
    from selenium.webdriver.common.action_chains import ActionChains

    report = reports["hamilton"]
    _open(driver, report)
    duration = driver.execute_script("return window.socialavReport.view().t1")
    for row, share in [(3, 0.25), (7, 0.8)]:
        canvas = driver.find_element("css selector", f".tl-row[data-row='{row}'] canvas")
        width = canvas.size["width"]
        x = round(share * width)
        ActionChains(driver).move_to_element_with_offset(
            canvas, x - width // 2, 0
        ).click().perform()
        _wait(driver, "document.getElementById('video').seeking === false")
        t = driver.execute_script("return document.getElementById('video').currentTime")
        t -= report["t0"]
        expected = duration * (x / width)
        assert abs(t - expected) <= duration / width + 0.04, (t, expected)
        assert driver.execute_script("return window.socialavReport.picked()") == row
        tooltip = driver.find_element("id", "tooltip")
        assert tooltip.is_displayed() and f"track {row}" in tooltip.text


def test_summary_shows_the_json_numbers(driver, reports):
    for name in ("interview", "persons"):
        report = reports[name]
        record = report["record"]
        _open(driver, report)
        cells = driver.execute_script(
            """return Array.from(document.querySelectorAll('#speakers tbody tr')).map(function (tr) {
                 return [tr.dataset.rowKey, Number(tr.dataset.speakingS), Number(tr.dataset.turns),
                         tr.querySelector('.speaking .val').textContent,
                         tr.querySelector('.turns').textContent]; });"""
        )
        if name == "persons":
            expected = [
                (f"person:{p['person_id']}", p["speaking_time_s"], p["num_turns"])
                for p in record["persons"]
            ]
        else:
            expected = [
                (
                    f"track:{t['track_id']}",
                    sum(s["end_s"] - s["start_s"] for s in t["segments"]),
                    len(t["segments"]),
                )
                for t in record["tracks"]
            ]
        assert len(cells) == len(expected)
        for (key, seconds, turns, text, turns_text), (k, s, n) in zip(cells, expected, strict=True):
            assert key == k and seconds == pytest.approx(s, abs=1e-9) and turns == n
            assert text == f"{s:.1f} s" and turns_text == str(n)
        rows = driver.find_elements("css selector", ".tl-row[data-row]")
        assert len(rows) == len(expected)


def test_keyboard_steps_frames_and_jumps_to_turns(driver, reports):
    from selenium.webdriver.common.keys import Keys

    report = reports["interview"]
    record = report["record"]
    _open(driver, report)
    _wait(driver, "document.getElementById('video').readyState >= 2")
    _show_frame(driver, report, 100)
    body = driver.find_element("tag name", "body")
    body.send_keys(Keys.ARROW_RIGHT)
    _wait(driver, "document.getElementById('overlay').dataset.frame === '101'", what="frame 101")
    body.send_keys(Keys.SHIFT, Keys.ARROW_RIGHT)
    _wait(driver, "document.getElementById('overlay').dataset.frame === '126'", what="frame 126")
    body.send_keys(Keys.ARROW_LEFT)
    _wait(driver, "document.getElementById('overlay').dataset.frame === '125'", what="frame 125")
    picked = driver.execute_script("return window.socialavReport.picked()")
    track = record["tracks"][picked]  # rows are tracks here
    starts = [s["start_frame"] for s in track["segments"]]
    after = [f for f in starts if f > 125]
    body.send_keys("n")
    _wait(
        driver,
        f"document.getElementById('overlay').dataset.frame === '{after[0]}'",
        what="next turn",
    )
    body.send_keys("p")
    before = [f for f in starts if f < after[0]][-1]
    _wait(
        driver,
        f"document.getElementById('overlay').dataset.frame === '{before}'",
        what="previous turn",
    )
    driver.execute_script("document.getElementById('video').muted = true")
    body.send_keys(" ")
    _wait(driver, "!document.getElementById('video').paused", what="play on space")
    body.send_keys(" ")
    _wait(driver, "document.getElementById('video').paused", what="pause on space")


def test_wheel_and_range_zoom(driver, reports):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    _open(driver, reports["interview"])
    full = driver.execute_script("var v = window.socialavReport.view(); return v.t1 - v.t0")
    canvas = driver.find_element("css selector", ".tl-row[data-row='0'] canvas")
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -400).perform()
    _wait(
        driver,
        f"(function () {{ var v = window.socialavReport.view(); return v.t1 - v.t0 < {full} * 0.8; }})()",
    )
    driver.execute_script(
        "var z = document.getElementById('zoom'); z.value = 1000; z.dispatchEvent(new Event('input'));"
    )
    span = driver.execute_script("var v = window.socialavReport.view(); return v.t1 - v.t0")
    assert span == pytest.approx(2.0)  # the closest zoom: 2 s


@pytest.mark.parametrize(
    ("name", "at_s"),
    [("interview", 5.3), ("hamilton", 7.6), ("grid", 1.5), ("grid_capped", 1.5), ("persons", 8.5)],
)
def test_screenshot(driver, reports, artifacts_dir, name, at_s):
    report = reports[name]
    _open(driver, report)
    _wait(driver, "document.getElementById('video').readyState >= 2")
    frame = int(at_s * 25)
    _show_frame(driver, report, frame)
    _wait(driver, "document.getElementById('video').readyState >= 3")
    time.sleep(0.8)  # the player's own loading spinner fades out
    path = artifacts_dir / f"{name}.report.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 50_000


def test_without_a_playable_video_the_boxes_and_timeline_still_run(driver, tmp_path):
    from report_records import make_record
    from selenium.webdriver.common.keys import Keys

    from socialav.io.report import write_report

    record = make_record(codec="mpeg1video", path="clip.mpg")  # no annotated copy either
    html = tmp_path / "clip.report.html"
    write_report(html, record, video_href="clip.mpg")
    report = {"html": html}
    _open(driver, report)
    notice = driver.find_element("id", "notice")
    assert notice.is_displayed() and "no annotated copy" in notice.text
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    driver.find_element("tag name", "body").send_keys(" ")  # plays on the page's own clock
    _wait(driver, "window.socialavReport.frame() > 10", what="the clock to run")
    driver.find_element("tag name", "body").send_keys(" ")
    driver.find_element("tag name", "body").send_keys(Keys.ARROW_RIGHT)
    frame = int(driver.execute_script("return window.socialavReport.frame()"))
    track = record["tracks"][0]
    x1, y1, x2, y2 = track["boxes_xyxy_px"][frame - track["start_frame"]]
    p = track["probabilities"][frame - track["start_frame"]]
    expected = [0, 230, 0, 255] if p >= 0.5 else [230, 0, 0, 255]
    assert _pixel(driver, x1, (y1 + y2) / 2, 640, search_px=2) == expected
