/* socialav report: inlined into <stem>.report.html by socialav.io.report.
 * Plain JavaScript, no library, no network: reads the JSON in #socialav-data (layout in
 * socialav/io/report_data.py), plays the video, draws the face boxes on a canvas over it
 * and the timeline below. */
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("socialav-data").textContent);
  var FPS = D.video.fps;
  var DUR = D.video.duration_s;
  var NFRAMES = Math.max(1, D.video.num_frames);
  var VW = D.video.width_px;
  var VH = D.video.height_px;
  var STEP = D.step_frames;
  // analysis time t is at T0 + t on the player's clock (the file's own timeline)
  var T0 = D.video.start_s || 0;
  var THR = D.threshold;
  var MISSING = 255;
  var LEVELS = 254;
  var RGB = {
    speak: "rgb(0,230,0)",
    silent: "rgb(230,0,0)",
    unknown: "rgb(150,150,150)",
    badge: "rgb(255,200,0)",
    turn: "rgba(46,160,67,0.28)",
    span: "#eef0f3",
    cut: "#444",
  };
  var BADGES = { lam: "looking at me", ttm: "to me" };

  // ---------------------------------------------------------------- decoding
  function bytes(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function ints(b64, size) {
    var b = bytes(b64);
    var view = new DataView(b.buffer);
    var n = b.length / size;
    var out = size === 4 ? new Int32Array(n) : new Int16Array(n);
    for (var i = 0; i < n; i++) out[i] = size === 4 ? view.getInt32(4 * i, true) : view.getInt16(2 * i, true);
    return out;
  }

  var tracks = D.tracks.map(function (t) {
    var s = {};
    Object.keys(t.s).forEach(function (k) { s[k] = bytes(t.s[k]); });
    return { id: t.id, row: t.row, label: t.label, start: t.start, end: t.end, kf: ints(t.kf, 4), box: ints(t.box, 2), s: s };
  });
  var trackById = {};
  tracks.forEach(function (t) { trackById[t.id] = t; });
  var rows = D.rows;

  /** Value of a per-frame series of a track at an analysis frame, or null. */
  function value(track, key, f) {
    var arr = track.s[key];
    if (!arr || f < track.start || f > track.end) return null;
    var q = arr[Math.floor((f - track.start) / STEP)];
    return q === undefined || q === MISSING ? null : q / LEVELS;
  }
  /** Box [x1, y1, x2, y2] (px) of a track at a frame: linear between keyframes, as the tracker. */
  function boxAt(track, f) {
    if (f < track.start || f > track.end) return null;
    var kf = track.kf, b = track.box, lo = 0, hi = kf.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (kf[mid] <= f) lo = mid; else hi = mid - 1;
    }
    var i = lo;
    if (kf[i] === f || i === kf.length - 1) return [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]];
    var a = (f - kf[i]) / (kf[i + 1] - kf[i]);
    var out = [];
    for (var j = 0; j < 4; j++) out.push(b[4 * i + j] + a * (b[4 * i + 4 + j] - b[4 * i + j]));
    return out;
  }
  function trackAt(row, f) {
    for (var i = 0; i < row.tracks.length; i++) {
      var t = trackById[row.tracks[i]];
      if (t && f >= t.start && f <= t.end) return t;
    }
    return null;
  }
  function inTurn(row, t) {
    for (var i = 0; i < row.segments.length; i++) {
      if (t >= row.segments[i][0] && t < row.segments[i][1]) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- formatting
  function fmtTime(t, decimals) {
    if (decimals === undefined) decimals = 2;
    if (DUR < 60) return t.toFixed(decimals) + " s";
    var m = Math.floor(t / 60), s = t - 60 * m;
    var ss = s.toFixed(decimals);
    if (s < 10) ss = "0" + ss;
    return m + ":" + ss;
  }

  // ---------------------------------------------------------------- the clock (video or virtual)
  var video = document.getElementById("video");
  var overlay = document.getElementById("overlay");
  var notice = document.getElementById("notice");
  var showBoxes = document.getElementById("show-boxes");
  var clockEl = document.getElementById("clock");
  var media = D.media || {};
  var usingFallback = false;
  var clock;

  function say(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  var videoClock = {
    time: function () { return Math.max(0, (video.currentTime || 0) - T0); },
    paused: function () { return video.paused; },
    play: function () {
      var p = video.play();
      if (p && p.catch) p.catch(function () {});
    },
    pause: function () { video.pause(); },
    seek: function (t) { video.currentTime = t + T0; },
  };
  function virtualClock() {
    var t = 0, base = null;
    var c = {
      time: function () { return base === null ? t : Math.min(DUR, t + (performance.now() - base) / 1000); },
      paused: function () { return base === null; },
      play: function () {
        if (base !== null) return;
        if (t >= DUR) t = 0;
        base = performance.now();
        startTicking();
      },
      pause: function () { t = c.time(); base = null; onTime(); },
      seek: function (x) {
        t = x;
        if (base !== null) base = performance.now();
        onTime();
      },
    };
    return c;
  }
  function noVideo(reason) {
    video.removeAttribute("src");
    video.style.display = "none";
    clock = virtualClock();
    if (reason) say(reason);
  }
  function initMedia() {
    if (media.embedded) {
      var el = document.getElementById("socialav-video");
      var blob = new Blob([bytes(el.textContent.trim())], { type: el.getAttribute("data-mime") || "video/mp4" });
      clock = videoClock;
      video.src = URL.createObjectURL(blob);
    } else if (media.src) {
      clock = videoClock;
      video.src = media.src;
    } else {
      noVideo(null);
    }
    if (media.annotated) showBoxes.checked = false;
  }
  video.addEventListener("error", function () {
    if (clock !== videoClock) return;
    var err = video.error;
    var why = err ? ["", "aborted", "network or file error", "decoding error", "file missing or format not supported"][err.code] || "error " + err.code : "error";
    if (media.fallback && !usingFallback) {
      usingFallback = true;
      showBoxes.checked = false;
      say("Could not play " + decodeURIComponent(media.src) + " (" + why + "): showing the annotated copy " +
        decodeURIComponent(media.fallback) + " instead, with the boxes drawn into the picture; tick \u201clive boxes\u201d to draw them on top as well.");
      video.src = media.fallback;
    } else {
      noVideo("The video could not be played (" + why + "): the boxes and the timeline are shown without the picture.");
      onTime();
    }
  });

  // ---------------------------------------------------------------- frame on screen
  var frame = 0;
  // the row picked first (for n/p): the one who speaks longest
  var pickedRow = -1;
  rows.forEach(function (row, i) {
    if (pickedRow < 0 || row.speaking_s > rows[pickedRow].speaking_s) pickedRow = i;
  });
  function frameOfTime(t) {
    return Math.max(0, Math.min(NFRAMES - 1, Math.floor(t * FPS + 1e-4)));
  }
  function setFrame(f) {
    f = Math.max(0, Math.min(NFRAMES - 1, f));
    if (f !== frame || !overlay.hasAttribute("data-frame")) {
      frame = f;
      drawOverlay();
    }
    clockEl.textContent = fmtTime(clock.time()) + " / " + fmtTime(DUR) + " \u00b7 frame " + frame;
  }
  var useFrameCallback = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
  if (useFrameCallback) {
    var onVideoFrame = function (now, meta) {
      if (clock === videoClock) {
        overlay.setAttribute("data-media-time", String(meta.mediaTime));
        // playing: the nearest analysis frame to the frame on screen; paused (after a seek)
        // the seek target, as Firefox reports that as mediaTime rather than the frame's time
        setFrame(video.paused ? frameOfTime(video.currentTime - T0) : Math.round((meta.mediaTime - T0) * FPS));
      }
      video.requestVideoFrameCallback(onVideoFrame);
    };
    video.requestVideoFrameCallback(onVideoFrame);
  }
  var ticking = false;
  function onTime() {
    var t = clock.time();
    if (!(useFrameCallback && clock === videoClock)) setFrame(frameOfTime(t));
    else clockEl.textContent = fmtTime(t) + " / " + fmtTime(DUR) + " \u00b7 frame " + frame;
    placePlayhead(t);
  }
  function tick() {
    onTime();
    follow(clock.time());
    if (!clock.paused()) requestAnimationFrame(tick);
    else ticking = false;
  }
  function startTicking() {
    if (!ticking) {
      ticking = true;
      requestAnimationFrame(tick);
    }
  }
  video.addEventListener("play", startTicking);
  var showCurrent = function () {
    if (clock !== videoClock) return;
    setFrame(frameOfTime(video.currentTime - T0));
    onTime();
  };
  video.addEventListener("seeked", showCurrent);
  video.addEventListener("loadeddata", showCurrent);
  video.addEventListener("pause", onTime);

  function seekTime(t) {
    clock.seek(Math.max(0, Math.min(DUR, t)));
    follow(t);
    onTime();
  }
  function seekFrame(f) {
    f = Math.max(0, Math.min(NFRAMES - 1, f));
    clock.pause();
    seekTime((f + 0.5) / FPS); // the middle of frame f: the browser shows frame f
    setFrame(f);
  }

  // ---------------------------------------------------------------- overlay
  function fitCanvas(c) {
    var r = c.getBoundingClientRect();
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    var ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { w: r.width, h: r.height, ctx: ctx };
  }
  /** A filled label whose lower-left corner is at (x, yBottom); returns its height. */
  function chip(ctx, text, x, yBottom, fill, size, cw, ch) {
    ctx.font = "600 " + size + "px system-ui, sans-serif";
    var pad = Math.max(2, Math.round(size / 4));
    var w = ctx.measureText(text).width + 2 * pad, h = size + 2 * pad;
    x = Math.max(0, Math.min(x, cw - w));
    yBottom = Math.max(h, Math.min(yBottom, ch));
    ctx.fillStyle = fill;
    ctx.fillRect(x, yBottom - h, w, h);
    ctx.fillStyle = fill === RGB.silent ? "#fff" : "#000";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(text, x + pad, yBottom - pad - Math.round(size * 0.18));
    return h;
  }
  function drawOverlay() {
    var g = fitCanvas(overlay), ctx = g.ctx;
    ctx.clearRect(0, 0, g.w, g.h);
    overlay.setAttribute("data-frame", String(frame));
    if (!showBoxes.checked) return;
    var s = g.w / VW;
    var lw = Math.max(3, Math.round(Math.min(g.w, g.h) / 150));
    var size = Math.max(11, Math.round(Math.min(g.w, g.h) / 34));
    tracks.forEach(function (t) {
      var b = boxAt(t, frame);
      if (!b) return;
      var p = value(t, "p", frame);
      var col = p === null ? RGB.unknown : p >= THR ? RGB.speak : RGB.silent;
      var x1 = b[0] * s, y1 = b[1] * s, x2 = b[2] * s, y2 = b[3] * s;
      if (t.row === pickedRow && rows.length > 1) {
        ctx.strokeStyle = "rgba(255,255,255,0.85)";
        ctx.lineWidth = lw + 4;
        ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      }
      ctx.strokeStyle = col;
      ctx.lineWidth = lw;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      chip(ctx, t.label + (p === null ? "" : " " + p.toFixed(2)), x1 - lw / 2, y1 - lw / 2, col, size, g.w, g.h);
      var yb = y2 + lw / 2;
      Object.keys(BADGES).forEach(function (key) {
        var v = value(t, key, frame);
        if (v !== null && v >= 0.5) yb -= chip(ctx, BADGES[key], x1 - lw / 2, yb, RGB.badge, Math.round(size * 0.8), g.w, g.h) + 2;
      });
    });
  }
  showBoxes.addEventListener("change", function () {
    drawOverlay();
    showBoxes.blur();
  });

  // ---------------------------------------------------------------- timeline
  var tl = document.getElementById("timeline");
  var view = { t0: 0, t1: DUR };
  var MIN_SPAN = Math.min(DUR, 2.0);
  var rowCanvases = [];
  var rulerCanvas;
  var playhead = document.createElement("div");
  playhead.id = "playhead";
  var hoverline = document.createElement("div");
  hoverline.id = "hoverline";
  var tooltip = document.createElement("div");
  tooltip.id = "tooltip";
  document.body.appendChild(tooltip);

  function labelCell(i) {
    var row = rows[i];
    var cell = document.createElement("div");
    cell.className = "tl-label";
    var src = document.querySelector("#speakers tr[data-row='" + i + "'] .thumb");
    if (src) cell.appendChild(src.cloneNode(true));
    var text = document.createElement("div");
    text.style.minWidth = "0";
    var name = document.createElement("div");
    name.className = "name";
    name.textContent = row.label;
    name.title = row.label;
    var small = document.createElement("small");
    small.textContent = row.speaking_s.toFixed(1) + " s \u00b7 " + row.turns + (row.turns === 1 ? " turn" : " turns");
    text.appendChild(name);
    text.appendChild(small);
    cell.appendChild(text);
    return cell;
  }
  function build() {
    tl.style.setProperty("--row-h", rows.length <= 3 ? "76px" : rows.length <= 8 ? "60px" : "48px");
    var ruler = document.createElement("div");
    ruler.className = "tl-row tl-ruler";
    var rl = document.createElement("div");
    rl.className = "tl-label";
    rl.textContent = "time";
    rulerCanvas = document.createElement("canvas");
    ruler.appendChild(rl);
    ruler.appendChild(rulerCanvas);
    tl.appendChild(ruler);
    rulerCanvas.addEventListener("click", function (e) { seekTime(timeAtEvent(e, rulerCanvas)); });
    addWheel(rulerCanvas);
    rows.forEach(function (row, i) {
      var div = document.createElement("div");
      div.className = "tl-row";
      div.setAttribute("data-row", String(i));
      div.setAttribute("data-row-key", row.key);
      var label = labelCell(i);
      var c = document.createElement("canvas");
      div.appendChild(label);
      div.appendChild(c);
      tl.appendChild(div);
      rowCanvases.push(c);
      label.addEventListener("click", function () { pick(i); });
      c.addEventListener("click", function (e) {
        pick(i);
        seekTime(timeAtEvent(e, c));
      });
      c.addEventListener("mousemove", function (e) { hover(i, e); });
      c.addEventListener("mouseleave", unhover);
      addWheel(c);
    });
    if (!rows.length) {
      var empty = document.createElement("p");
      empty.className = "hint";
      empty.style.padding = "10px";
      empty.textContent = "No face was found: nothing to draw.";
      tl.appendChild(empty);
    }
    tl.appendChild(playhead);
    tl.appendChild(hoverline);
    document.querySelectorAll("#speakers tbody tr[data-row]").forEach(function (tr) {
      tr.addEventListener("click", function () {
        var i = Number(tr.getAttribute("data-row"));
        pick(i);
        var div = tl.querySelector(".tl-row[data-row='" + i + "']");
        if (div && div.scrollIntoView) div.scrollIntoView({ block: "nearest" });
      });
    });
  }
  function pick(i) {
    pickedRow = i;
    document.querySelectorAll(".tl-row.picked, #speakers tr.picked").forEach(function (n) { n.classList.remove("picked"); });
    var a = tl.querySelector(".tl-row[data-row='" + i + "']");
    var b = document.querySelector("#speakers tr[data-row='" + i + "']");
    if (a) a.classList.add("picked");
    if (b) b.classList.add("picked");
    drawOverlay();
  }
  function xOf(t, w) { return ((t - view.t0) / (view.t1 - view.t0)) * w; }
  function timeAtEvent(e, c) {
    var r = c.getBoundingClientRect();
    var a = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
    return view.t0 + a * (view.t1 - view.t0);
  }
  function niceStep(span, w) {
    var steps = [0.04, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (var i = 0; i < steps.length; i++) if ((steps[i] / span) * w >= 70) return steps[i];
    return steps[steps.length - 1];
  }
  function drawRuler() {
    var g = fitCanvas(rulerCanvas), ctx = g.ctx;
    ctx.clearRect(0, 0, g.w, g.h);
    var step = niceStep(view.t1 - view.t0, g.w);
    var dec = step < 0.1 ? 2 : step < 1 ? 1 : 0;
    ctx.fillStyle = "#5f6b7a";
    ctx.strokeStyle = "#aab";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (var t = Math.ceil(view.t0 / step - 1e-9) * step; t <= view.t1 + 1e-9; t += step) {
      var x = Math.round(xOf(t, g.w)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, g.h - 6);
      ctx.lineTo(x, g.h);
      ctx.stroke();
      var text = DUR < 60 ? t.toFixed(dec) + " s" : fmtTime(t, dec);
      var tw = ctx.measureText(text).width;
      ctx.fillText(text, Math.max(0, Math.min(g.w - tw, x - tw / 2)), g.h / 2 - 2);
    }
    (D.cuts_s || []).forEach(function (c) {
      if (c < view.t0 || c > view.t1) return;
      var x = Math.round(xOf(c, g.w)) + 0.5;
      ctx.fillStyle = RGB.cut;
      ctx.beginPath();
      ctx.moveTo(x - 4, g.h - 7);
      ctx.lineTo(x + 4, g.h - 7);
      ctx.lineTo(x, g.h);
      ctx.fill();
    });
  }
  function drawCurve(ctx, t, ser, w, y) {
    if (!t.s[ser.key]) return;
    var f0 = Math.max(t.start, Math.floor(view.t0 * FPS) - 1);
    var f1 = Math.min(t.end, Math.ceil(view.t1 * FPS) + 1);
    if (f1 < f0) return;
    ctx.strokeStyle = ser.color;
    ctx.lineWidth = ser.key === "p" ? 1.6 : 1.2;
    ctx.setLineDash(ser.dash || []);
    ctx.beginPath();
    var framesPerPx = ((view.t1 - view.t0) * FPS) / w;
    var pen = false, f, v;
    if (framesPerPx <= 2) {
      for (f = f0; f <= f1; f++) {
        v = value(t, ser.key, f);
        if (v === null) { pen = false; continue; }
        var x = xOf(f / FPS, w);
        if (pen) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
        pen = true;
      }
    } else {
      // min/max per pixel column: peaks survive at any zoom
      var col = null, lo = 0, hi = 0;
      var flush = function () {
        if (col === null) return;
        if (pen) ctx.lineTo(col, y(lo)); else ctx.moveTo(col, y(lo));
        if (hi !== lo) ctx.lineTo(col, y(hi));
        pen = true;
        col = null;
      };
      for (f = f0; f <= f1; f++) {
        v = value(t, ser.key, f);
        if (v === null) { flush(); pen = false; continue; }
        var px = Math.floor(xOf(f / FPS, w)) + 0.5;
        if (px !== col) { flush(); col = px; lo = hi = v; } else { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
      flush();
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  function drawRow(i) {
    var row = rows[i];
    var g = fitCanvas(rowCanvases[i]), ctx = g.ctx, w = g.w, h = g.h;
    ctx.clearRect(0, 0, w, h);
    var pad = 4;
    var y = function (v) { return pad + (1 - v) * (h - 2 * pad); };
    ctx.fillStyle = RGB.span;
    row.tracks.forEach(function (tid) {
      var t = trackById[tid];
      var a = xOf(t.start / FPS, w), b = xOf((t.end + 1) / FPS, w);
      if (b > 0 && a < w) ctx.fillRect(a, 0, b - a, h);
    });
    ctx.fillStyle = RGB.turn;
    row.segments.forEach(function (seg) {
      var a = xOf(seg[0], w), b = xOf(seg[1], w);
      if (b > 0 && a < w) ctx.fillRect(a, 0, Math.max(1, b - a), h);
    });
    ctx.strokeStyle = "#999";
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(0, Math.round(y(THR)) + 0.5);
    ctx.lineTo(w, Math.round(y(THR)) + 0.5);
    ctx.stroke();
    ctx.strokeStyle = RGB.cut;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([3, 3]);
    (D.cuts_s || []).forEach(function (c) {
      if (c < view.t0 || c > view.t1) return;
      var x = Math.round(xOf(c, w)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
      ctx.stroke();
    });
    ctx.setLineDash([]);
    if (!row.tracks.length) {
      ctx.fillStyle = "#8a94a3";
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillText("voice only: no face on screen", 6, h / 2);
    }
    D.series.forEach(function (ser) {
      row.tracks.forEach(function (tid) { drawCurve(ctx, trackById[tid], ser, w, y); });
    });
  }
  function drawAll() {
    drawRuler();
    for (var i = 0; i < rows.length; i++) drawRow(i);
    tl.setAttribute("data-t0", String(view.t0));
    tl.setAttribute("data-t1", String(view.t1));
    placePlayhead(clock.time());
  }
  function canvasLeft() {
    var c = rulerCanvas.getBoundingClientRect(), r = tl.getBoundingClientRect();
    return { left: c.left - r.left + tl.scrollLeft, width: c.width };
  }
  function placePlayhead(t) {
    if (!rulerCanvas) return;
    var c = canvasLeft();
    var x = c.left + xOf(t, c.width);
    playhead.style.display = t < view.t0 || t > view.t1 ? "none" : "block";
    playhead.style.left = x - 1 + "px";
    playhead.style.height = tl.scrollHeight + "px";
  }
  function hover(i, e) {
    var c = rowCanvases[i];
    var t = timeAtEvent(e, c);
    var f = frameOfTime(t);
    var geo = canvasLeft();
    hoverline.style.display = "block";
    hoverline.style.left = geo.left + xOf(t, geo.width) + "px";
    hoverline.style.height = tl.scrollHeight + "px";
    var row = rows[i];
    var parts = [fmtTime(t) + " \u00b7 frame " + f, row.label];
    var track = trackAt(row, f);
    if (track) {
      if (row.kind === "person") parts.push("track " + track.id);
      D.series.forEach(function (ser) {
        var v = value(track, ser.key, f);
        if (v !== null) parts.push(ser.label + " " + v.toFixed(2));
      });
    } else {
      parts.push(row.tracks.length ? "not on screen" : "voice only");
    }
    parts.push(inTurn(row, t) ? "in a speaking turn" : "not in a turn");
    tooltip.textContent = parts.join(" \u00b7 ");
    tooltip.style.display = "block";
    var x = e.clientX + 14, yy = e.clientY + 16;
    var tw = tooltip.offsetWidth;
    if (x + tw > window.innerWidth - 4) x = Math.max(4, e.clientX - tw - 14);
    tooltip.style.left = x + "px";
    tooltip.style.top = yy + "px";
  }
  function unhover() {
    hoverline.style.display = "none";
    tooltip.style.display = "none";
  }

  // ---------------------------------------------------------------- zoom and scroll
  var zoomEl = document.getElementById("zoom");
  var panEl = document.getElementById("pan");
  function setView(t0, t1) {
    var span = Math.max(MIN_SPAN, Math.min(DUR, t1 - t0));
    t0 = Math.max(0, Math.min(DUR - span, t0));
    view.t0 = t0;
    view.t1 = t0 + span;
    var z = DUR > MIN_SPAN ? Math.log(DUR / span) / Math.log(DUR / MIN_SPAN) : 0;
    zoomEl.value = String(Math.round(1000 * z));
    panEl.value = String(DUR > span ? Math.round((1000 * t0) / (DUR - span)) : 0);
    panEl.disabled = DUR <= span + 1e-9;
    drawAll();
  }
  function follow(t) {
    var span = view.t1 - view.t0;
    if (span >= DUR - 1e-9) return;
    if (t > view.t1 || t < view.t0) setView(t - 0.1 * span, t + 0.9 * span);
  }
  zoomEl.addEventListener("input", function () {
    var span = DUR * Math.pow(MIN_SPAN / DUR, Number(zoomEl.value) / 1000);
    var t = clock.time();
    var centre = t >= view.t0 && t <= view.t1 ? t : (view.t0 + view.t1) / 2;
    setView(centre - span / 2, centre + span / 2);
  });
  panEl.addEventListener("input", function () {
    var span = view.t1 - view.t0;
    var t0 = (Number(panEl.value) / 1000) * (DUR - span);
    setView(t0, t0 + span);
  });
  [zoomEl, panEl].forEach(function (el) { el.addEventListener("change", function () { el.blur(); }); });
  document.getElementById("zoom-all").addEventListener("click", function (e) {
    setView(0, DUR);
    e.currentTarget.blur();
  });
  function addWheel(c) {
    c.addEventListener("wheel", function (e) {
      e.preventDefault();
      var span = view.t1 - view.t0;
      var r = c.getBoundingClientRect();
      var dx = e.deltaX, dy = e.deltaY;
      if (e.deltaMode === 1) { dx *= 16; dy *= 16; }
      if (e.shiftKey || Math.abs(dx) > Math.abs(dy)) {
        var d = (e.shiftKey && !dx ? dy : dx) * (span / r.width);
        setView(view.t0 + d, view.t1 + d);
      } else {
        var a = (e.clientX - r.left) / r.width;
        var at = view.t0 + a * span;
        var next = Math.max(MIN_SPAN, Math.min(DUR, span * Math.exp(dy * 0.002)));
        setView(at - a * next, at - a * next + next);
      }
    }, { passive: false });
  }

  // ---------------------------------------------------------------- keyboard
  function turn(dir) {
    if (pickedRow < 0) return;
    var segs = rows[pickedRow].segments, t = clock.time(), i;
    if (dir > 0) {
      for (i = 0; i < segs.length; i++) if (segs[i][0] > t + 0.5 / FPS) return seekFrame(Math.round(segs[i][0] * FPS));
    } else {
      for (i = segs.length - 1; i >= 0; i--) if (segs[i][0] < t - 0.3) return seekFrame(Math.round(segs[i][0] * FPS));
    }
  }
  window.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    var el = e.target || {}, tag = el.tagName, type = el.type;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return;
    if (tag === "INPUT" && type !== "range" && type !== "checkbox") return;
    if (tag === "INPUT" && type === "range" && /^(Arrow|Home|End|Page)/.test(e.key)) return;
    switch (e.key) {
      case " ":
      case "Spacebar":
        if (clock.paused()) clock.play(); else clock.pause();
        break;
      case "ArrowRight":
        seekFrame(frame + (e.shiftKey ? Math.round(FPS) : 1));
        break;
      case "ArrowLeft":
        seekFrame(frame - (e.shiftKey ? Math.round(FPS) : 1));
        break;
      case "n":
      case "N":
        turn(1);
        break;
      case "p":
      case "P":
        turn(-1);
        break;
      default:
        return;
    }
    e.preventDefault();
    e.stopPropagation();
  }, true);

  // ---------------------------------------------------------------- start
  initMedia();
  build();
  if (pickedRow >= 0) pick(pickedRow);
  setView(0, DUR);
  setFrame(0);
  var redraw = function () {
    drawOverlay();
    drawAll();
  };
  if (window.ResizeObserver) new ResizeObserver(redraw).observe(document.getElementById("stage"));
  window.addEventListener("resize", redraw);
  window.socialavReport = {
    frame: function () { return frame; },
    view: function () { return { t0: view.t0, t1: view.t1 }; },
    picked: function () { return pickedRow; },
  };
})();
