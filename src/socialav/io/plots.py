"""Timeline plot of ``socialav detect``: speaking probability per face track over time.

Uses :class:`matplotlib.figure.Figure` with :class:`FigureCanvasAgg` directly, so importing
this module never changes matplotlib's global backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from socialav.io.atomic import atomic_write
from socialav.types import TrackScores, VideoInfo

logger = logging.getLogger(__name__)

#: Colours of the extra per-frame series (``TrackScores.extra``); others cycle below.
EXTRA_COLORS: dict[str, str] = {"lam": "tab:orange", "ttm": "tab:purple"}
_CYCLE = ("tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
#: ttm ≤ speaking probability and often equal to it: dotted so both stay visible.
EXTRA_STYLES: dict[str, str] = {"ttm": ":"}
EXTRA_LABELS: dict[str, str] = {"lam": "looking at me (lam)", "ttm": "talking to me (ttm)"}


def drawable_title(text: str) -> tuple[str, list[str] | None]:
    """A title matplotlib can draw without missing glyphs, and the font families to draw it
    with.

    The default font (DejaVu Sans) lacks CJK and many other scripts. When the text has
    characters it cannot draw, an installed font that has them all is added as a fallback
    family (matplotlib picks, per character, the first family that has it); when no font
    has them, those characters are replaced by ``?`` -- rather than tofu boxes and a
    warning per glyph.

    Returns:
        ``(text, families)``: ``families`` is ``None`` for the default font.
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    def charmap(path: str) -> set[int]:
        try:
            return set(FT2Font(path).get_charmap())
        except (OSError, RuntimeError, ValueError):
            return set()

    default = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    have = charmap(default)
    missing = {ord(c) for c in text if not c.isspace()} - have
    if not missing:
        return text, None
    for entry in font_manager.fontManager.ttflist:
        if "last resort" in entry.name.lower():  # draws every character as a box
            continue
        if missing <= charmap(entry.fname):
            return text, ["DejaVu Sans", entry.name]
    return "".join("?" if ord(c) in missing else c for c in text), None


def _select_tracks(scores: Sequence[TrackScores], max_tracks: int) -> list[TrackScores]:
    """The ``max_tracks`` longest tracks (ties: lower track_id), in track_id order."""
    if len(scores) <= max_tracks:
        return sorted(scores, key=lambda s: s.track_id)
    longest = sorted(scores, key=lambda s: (-len(s.frame_indices), s.track_id))[:max_tracks]
    return sorted(longest, key=lambda s: s.track_id)


def _split_runs(frames: np.ndarray) -> list[slice]:
    """Slices of consecutive frame indices (so curves are not drawn across gaps)."""
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    bounds = np.concatenate([[0], breaks, [len(frames)]])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def plot_timeline(
    path: str | os.PathLike[str],
    video: VideoInfo,
    scores: Sequence[TrackScores],
    threshold: float = 0.5,
    *,
    max_tracks: int = 20,
    dpi: int = 100,
    width_in: float = 12.0,
) -> int:
    """Draw one row per face track with its speaking probability over the whole video.

    Each row (labelled with the track's ``entity_id``) spans ``0 .. num_frames / fps``
    seconds on an x axis shared by all rows and shows: the speaking probability (0..1, blue,
    drawn at ``frame_index / fps``, only where the track exists), the speaking segments
    shaded green, the threshold as a dashed line, the track's span as a light band, and any
    extra per-frame series (``lam``/``ttm`` probabilities) as extra lines. The figure
    height grows with the number of rows; beyond ``max_tracks`` the longest tracks are
    shown and the title says how many were left out. With no tracks the PNG says
    "no faces found".

    Args:
        path: output PNG (written atomically).
        video: the analysed video (``video_id``, ``num_frames``, ``fps``).
        scores: per-track speaking probabilities.
        threshold: the speaking threshold drawn on every row.
        max_tracks: most rows to draw.
        dpi, width_in: PNG resolution and width in inches.

    Returns:
        The number of rows drawn.

    Raises:
        ValueError: ``max_tracks < 1`` or ``threshold`` outside [0, 1].
    """
    if max_tracks < 1:
        raise ValueError(f"max_tracks must be at least 1, but got {max_tracks}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], but got {threshold}")
    duration_s = max(video.num_frames / video.fps, video.duration_s, 1.0 / video.fps)
    shown = _select_tracks(scores, max_tracks)
    n_rows = len(shown)
    title = f"{video.video_id}: speaking probability per face track ({duration_s:.1f} s"
    title += f", {len(scores)} face track{'s' if len(scores) != 1 else ''}"
    if len(scores) > n_rows:
        title += f"; the {n_rows} longest shown"
    title += ")"
    title, families = drawable_title(title)

    row_h_in, header_in, footer_in = 1.0, 0.9, 0.6
    height_in = header_in + footer_in + row_h_in * max(n_rows, 1)
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    top = 1 - header_in / height_in
    bottom = footer_in / height_in

    if n_rows == 0:
        ax = fig.add_axes((0.06, bottom, 0.9, top - bottom))
        ax.set_xlim(0, duration_s)
        ax.set_yticks([])
        ax.set_xlabel("time (s)")
        ax.text(
            0.5,
            0.5,
            "no faces found",
            ha="center",
            va="center",
            fontsize=14,
            transform=ax.transAxes,
            color="0.3",
        )
        fig.suptitle(
            title, x=0.06, y=1 - 0.15 / height_in, ha="left", va="top", fontsize=11, family=families
        )
    else:
        axes = fig.subplots(n_rows, 1, sharex=True, squeeze=False)[:, 0]
        fig.subplots_adjust(left=0.06, right=0.83, top=top, bottom=bottom, hspace=0.12)
        fig.suptitle(
            title, x=0.06, y=1 - 0.15 / height_in, ha="left", va="top", fontsize=11, family=families
        )
        extra_names: list[str] = []
        for score in shown:
            extra_names.extend(n for n in score.extra if n not in extra_names)
        colors = {
            n: EXTRA_COLORS.get(n, _CYCLE[i % len(_CYCLE)]) for i, n in enumerate(extra_names)
        }
        for ax, score in zip(axes, shown, strict=True):
            frames = score.frame_indices
            t_s = frames / video.fps
            if len(frames):
                ax.axvspan(
                    frames.min() / video.fps,
                    (frames.max() + 1) / video.fps,
                    color="0.93",
                    zorder=0,
                    lw=0,
                )
            for seg in score.segments:
                ax.axvspan(seg.start_s, seg.end_s, color="tab:green", alpha=0.25, lw=0, zorder=1)
            for run in _split_runs(frames):
                ax.plot(t_s[run], score.probabilities[run], color="tab:blue", lw=1.2, zorder=3)
                for name, series in score.extra.items():
                    ax.plot(
                        t_s[run],
                        np.asarray(series)[run],
                        color=colors[name],
                        lw=1.1,
                        ls=EXTRA_STYLES.get(name, "-"),
                        alpha=0.9,
                        zorder=4,  # above the speaking curve, which ttm often follows
                    )
            ax.axhline(threshold, color="0.35", ls="--", lw=0.8, zorder=2)
            ax.set_ylim(-0.04, 1.04)
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=8)
            ax.grid(axis="x", color="0.85", lw=0.5)
            speaking_s = sum(seg.duration_s for seg in score.segments)
            ax.text(
                1.01,
                0.5,
                # the title names the video; entity_id = <video_id>:<track>
                f"track {score.track_id}\nspeaking {speaking_s:.1f} s",
                transform=ax.transAxes,
                va="center",
                ha="left",
                fontsize=8,
            )
        axes[-1].set_xlim(0, duration_s)
        axes[-1].set_xlabel("time (s)")
        axes[n_rows // 2].set_ylabel("P(speaking)")
        handles = [
            axes[0].plot([], [], color="tab:blue", lw=1.2, label="speaking probability")[0],
            axes[0].fill_between([], [], color="tab:green", alpha=0.25, label="speaking"),
            axes[0].plot([], [], color="0.35", ls="--", lw=0.8, label=f"threshold {threshold:g}")[
                0
            ],
        ]
        handles += [
            axes[0].plot(
                [],
                [],
                color=colors[n],
                lw=1.1,
                ls=EXTRA_STYLES.get(n, "-"),
                label=EXTRA_LABELS.get(n, n),
            )[0]
            for n in extra_names
        ]
        fig.legend(
            handles=handles,
            loc="upper right",
            ncols=len(handles),
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.83, 1 - 0.45 / height_in),
        )
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    logger.debug("timeline with %d rows -> %s", n_rows, path)
    return n_rows
