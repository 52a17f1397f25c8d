"""Timeline PNG of who spoke when: one row per person, a face thumbnail at the left.

Uses :class:`matplotlib.figure.Figure` with :class:`FigureCanvasAgg` directly (as
:mod:`socialav.io.plots`), so the global matplotlib backend is never changed. Takes plain
values (no diarization records), so ``io`` stays below ``diarization``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from socialav.io.atomic import atomic_output_path
from socialav.io.plots import drawable_title

__all__ = ["PersonRow", "plot_person_timeline"]


@dataclass(frozen=True)
class PersonRow:
    """One row: ``label`` (e.g. ``person_0``), whether on screen, ``(start_s, end_s)``
    speaking spans, and a JPEG thumbnail (or None: a grey box)."""

    label: str
    on_screen: bool
    segments_s: Sequence[tuple[float, float]]
    thumbnail_jpeg: bytes | None = None


def _decode(jpeg: bytes | None) -> np.ndarray | None:
    if not jpeg:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else image[:, :, ::-1]


def plot_person_timeline(
    path: str | os.PathLike[str],
    title: str,
    duration_s: float,
    rows: Sequence[PersonRow],
    *,
    dpi: int = 100,
    width_in: float = 12.0,
) -> int:
    """Draw one row per person over ``0 .. duration_s``: speaking spans as bars (blue on
    screen, orange off screen), the face thumbnail at the left.

    Returns:
        The number of rows drawn (a PNG saying "no persons" when there are none).

    Raises:
        ValueError: ``duration_s`` not positive.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, but got {duration_s}")
    n = len(rows)
    height = 0.6 + 0.55 * max(n, 1)
    fig = Figure(figsize=(width_in, height), dpi=dpi)
    FigureCanvasAgg(fig)
    thumb_w = 0.55 / width_in
    ax = fig.add_axes((0.03 + thumb_w + 0.06, 0.5 / height, 0.85 - thumb_w, 1 - 0.8 / height))
    ax.set_xlim(0, duration_s)
    ax.set_ylim(-0.5, max(n, 1) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    title, families = drawable_title(title)
    ax.set_title(title, fontsize=10, family=families)
    if n == 0:
        ax.text(duration_s / 2, 0, "no persons", ha="center", va="center")
    labels = []
    for i, row in enumerate(rows):
        color = "tab:blue" if row.on_screen else "tab:orange"
        spans = [(a, b - a) for a, b in row.segments_s]
        ax.broken_barh(spans, (i - 0.35, 0.7), facecolors=color)
        total = sum(b - a for a, b in row.segments_s)
        labels.append(f"{row.label}{'' if row.on_screen else ' (off)'}\n{total:.1f} s")
        image = _decode(row.thumbnail_jpeg)
        bottom = ax.get_position().y0 + ax.get_position().height * (n - 0.5 - i - 0.45) / n
        side = ax.get_position().height * 0.9 / n
        inset = fig.add_axes((0.02, bottom, thumb_w, side))
        inset.set_axis_off()
        if image is not None:
            inset.imshow(image)
        else:
            inset.imshow(np.full((8, 8, 3), 200, np.uint8))
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    with atomic_output_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return n
