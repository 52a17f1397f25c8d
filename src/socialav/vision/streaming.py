"""Face crops of open face tracks, cut while the video streams from a short buffer of recent
frames: the ASD models' gray 112x112 crops (:class:`StreamingFaceCropper`) and the RGB crops and
visual quality of the Ego4D LAM/TTM models (:class:`StreamingRgbCropper`). Memory grows with
the open tracks' lengths, not with the video's."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from socialav.types import FaceTrack
from socialav.vision.crops import crop_face, social_face_inputs
from socialav.vision.tracking import smooth_crop_geometry

__all__ = ["StreamingFaceCropper", "StreamingRgbCropper"]


class StreamingFaceCropper:
    """Cuts face crops of open tracks as soon as their smoothed geometry is final.

    The crop geometry of frame ``t`` is the 13-frame median (zero-padded at the track's start
    and end, as ``scipy.signal.medfilt`` in the demo) of the interpolated boxes, so it is final
    once the track has a detection at ``t + 6`` or later; the rest is cut when the track
    closes, from the final :class:`FaceTrack`. Frames are held in a ring buffer only while some
    open track may still need them.
    """

    def __init__(self, kernel: int, crop_scale: float) -> None:
        self.half = kernel // 2
        self.kernel = kernel
        self.crop_scale = crop_scale
        self.frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self.crops: dict[int, list[np.ndarray]] = {}
        self.next_frame: dict[int, int] = {}
        #: Per open track: crops already handed on by :meth:`take_chunks` (they lead the
        #: track; ``self.crops[key]`` holds the ones after them).
        self.handed_on: dict[int, int] = {}
        self._first_frame: dict[int, int] = {}

    def add_frame(self, frame_index: int, frame: np.ndarray) -> None:
        self.frames[frame_index] = frame

    def take_chunks(self, chunk_frames: int) -> list[tuple[int, int, int, np.ndarray]]:
        """Hand on the crops of open tracks in whole chunks, each crop once, and forget them.

        A crop is final once cut (its frame lies before the track's last detection), so a
        scorer can take a long track's crops while it is still open, and the memory held per
        track stays below ``chunk_frames`` crops plus the not yet final ones.

        Returns:
            ``(key, first_row, first_frame, crops)`` per chunk, crops ``(chunk_frames, 112,
            112)`` uint8 of the track's rows ``first_row ..`` (frames ``first_frame ..
            first_frame + chunk_frames - 1``), in frame order per track.

        Raises:
            ValueError: ``chunk_frames < 1``.
        """
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, but got {chunk_frames}")
        chunks = []
        for key, crops in self.crops.items():
            while len(crops) >= chunk_frames:
                done = self.handed_on.get(key, 0)
                first_frame = self._first_frame[key] + done
                chunks.append((key, done, first_frame, np.stack(crops[:chunk_frames])))
                del crops[:chunk_frames]
                self.handed_on[key] = done + chunk_frames
        return chunks

    def _cut(self, key: int, frame_indices: np.ndarray, geometry: np.ndarray) -> None:
        if len(frame_indices):
            self._first_frame.setdefault(key, int(frame_indices[0]))
        out = self.crops.setdefault(key, [])
        for t, (s, cx, cy) in zip(frame_indices, geometry, strict=True):
            frame = self.frames.get(int(t))
            if frame is None:
                raise RuntimeError(
                    f"frame {t} left the crop buffer before face track {key} was cut there"
                )
            out.append(crop_face(frame, float(s), float(cx), float(cy), self.crop_scale))
        if len(frame_indices):
            self.next_frame[key] = int(frame_indices[-1]) + 1

    def advance_open(self, open_tracks: Iterable[tuple[int, list[int], list[np.ndarray]]]) -> None:
        """Cut the frames of open tracks whose geometry became final.

        Args:
            open_tracks: ``FaceTracker.open_tracks()``: per open track its key and the lists
                of detection frames and boxes (only their tails are read).
        """
        for key, det_frames, det_boxes in open_tracks:
            first = int(det_frames[0])
            start = self.next_frame.setdefault(key, first)
            final_upto = int(det_frames[-1]) - self.half
            if final_upto < start:
                continue
            lo = max(first, start - self.half)
            hi = final_upto + self.half
            tail = max(bisect.bisect_left(det_frames, lo) - 1, 0)
            frames_d = np.asarray(det_frames[tail:], dtype=np.float64)
            boxes_d = np.asarray(det_boxes[tail:], dtype=np.float64)
            frames = np.arange(lo, hi + 1)
            boxes = np.stack([np.interp(frames, frames_d, boxes_d[:, j]) for j in range(4)], axis=1)
            # rows start-lo.. have their whole 13-frame window inside [lo, hi] (or reach the
            # track's true start, where the zero padding is the demo's too)
            geometry = smooth_crop_geometry(boxes, self.kernel)
            rows = slice(start - lo, final_upto - lo + 1)
            self._cut(key, frames[rows], geometry[rows])

    def close(self, key: int, track: FaceTrack | None) -> np.ndarray | None:
        """Cut what is left of a closed track; return its crops ``(T - h, 112, 112)``: all
        ``T`` of them, or those after the ``h = handed_on[key]`` leading ones that
        :meth:`take_chunks` handed on (read ``handed_on`` before closing)."""
        handed_on = self.handed_on.pop(key, 0)
        self._first_frame.pop(key, None)
        if track is None:  # rejected by the tracker (too short / too small)
            self.crops.pop(key, None)
            self.next_frame.pop(key, None)
            return None
        start = self.next_frame.pop(key, track.start_frame)
        rows = slice(start - track.start_frame, None)
        self._cut(key, track.frame_indices[rows], track.crop_size_cx_cy_px[rows])
        self._first_frame.pop(key, None)
        self.next_frame.pop(key, None)
        crops = self.crops.pop(key, [])
        if handed_on + len(crops) != len(track):
            raise RuntimeError(
                f"face track {track.track_id}: {handed_on} + {len(crops)} crops, "
                f"{len(track)} frames"
            )
        if not crops:
            return np.zeros((0, 112, 112), np.uint8)
        return np.stack(crops)

    def prune(self, current_frame: int) -> None:
        """Drop buffered frames that no open track can still need."""
        keep_from = min(self.next_frame.values(), default=current_frame)
        keep_from = min(keep_from, current_frame)
        while self.frames and next(iter(self.frames)) < keep_from:
            self.frames.popitem(last=False)


class StreamingRgbCropper:
    """RGB face crops and visual quality of open tracks for the trained LAM/TTM models
    (``socialav detect --lam-weights / --ttm-weights``), cut while the video streams.

    Per frame of a track: :func:`~socialav.vision.crops.social_face_inputs` of the track's
    box (``crop_face_box`` at each checkpoint's ``face_size_px``, and ``frame_quality`` of the
    box pixels), i.e. what the Ego4D training samples are cut with. A frame's box is final
    once the track has a detection at or after it (linear interpolation between detections,
    as :class:`~socialav.vision.tracking.FaceTracker` builds the :class:`FaceTrack`); the
    frames after its last detection (held boxes) are cut when the track closes. The quality
    is multiplied by the track's detector confidence on close. Frames are referenced (not
    copied) only while an open track still needs them; memory grows with the tracks'
    lengths: ``3 S^2`` bytes per face-frame (150 kB at 224 px), freed when the track is
    scored.
    """

    def __init__(self, sizes_px: Sequence[int], with_quality: bool) -> None:
        self.sizes_px = tuple(int(s) for s in sizes_px)
        self.with_quality = with_quality
        self.frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self.crops: dict[int, dict[int, list[np.ndarray]]] = {}
        self.quality: dict[int, list[float]] = {}
        self.next_frame: dict[int, int] = {}
        self.done: dict[int, tuple[dict[int, np.ndarray], np.ndarray | None]] = {}

    def add_frame(self, frame_index: int, frame: np.ndarray) -> None:
        self.frames[frame_index] = frame

    def _cut(self, key: int, frame_indices: np.ndarray, boxes: np.ndarray) -> None:
        crops = self.crops.setdefault(key, {s: [] for s in self.sizes_px})
        quality = self.quality.setdefault(key, [])
        for t, box in zip(frame_indices, boxes, strict=True):
            frame = self.frames.get(int(t))
            if frame is None:
                raise RuntimeError(
                    f"frame {t} left the frame buffer before face track {key} was cut there"
                )
            by_size, q = social_face_inputs(frame, box, self.sizes_px, self.with_quality)
            for s, crop in by_size.items():
                crops[s].append(crop)
            if q is not None:
                quality.append(q)
        if len(frame_indices):
            self.next_frame[key] = int(frame_indices[-1]) + 1

    def advance_open(self, open_tracks: Iterable[tuple[int, list[int], list[np.ndarray]]]) -> None:
        """Cut the frames of open tracks up to their latest detection."""
        for key, det_frames, det_boxes in open_tracks:
            start = self.next_frame.setdefault(key, int(det_frames[0]))
            last = int(det_frames[-1])
            if last < start:
                continue
            tail = max(bisect.bisect_right(det_frames, start) - 1, 0)
            frames_d = np.asarray(det_frames[tail:], dtype=np.float64)
            boxes_d = np.asarray(det_boxes[tail:], dtype=np.float64)
            frames = np.arange(start, last + 1)
            boxes = np.stack([np.interp(frames, frames_d, boxes_d[:, j]) for j in range(4)], 1)
            self._cut(key, frames, boxes.astype(np.float32))  # FaceTrack boxes are float32

    def close(self, key: int, track: FaceTrack | None) -> None:
        """Cut what is left of a closed track and keep its inputs for :meth:`pop`."""
        start = self.next_frame.pop(key, None)
        if track is None:  # rejected by the tracker (too short / too small)
            self.crops.pop(key, None)
            self.quality.pop(key, None)
            return
        start = track.start_frame if start is None else start
        rows = slice(start - track.start_frame, None)
        self._cut(key, track.frame_indices[rows], track.boxes_xyxy_px[rows])
        self.next_frame.pop(key, None)
        crops = {s: np.stack(c) for s, c in self.crops.pop(key, {}).items()}
        quality = self.quality.pop(key, [])
        if any(len(c) != len(track) for c in crops.values()):
            raise RuntimeError(f"face track {track.track_id}: crops do not cover its frames")
        q = None
        if self.with_quality:
            conf = np.clip(np.asarray(track.confidence, dtype=np.float64), 0.0, 1.0)
            q = np.asarray(quality, dtype=np.float64) * conf
        self.done[track.track_id] = (crops, q)

    def pop(self, track_id: int) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
        """``({size: (T, S, S, 3) uint8}, quality (T,) or None)`` of a closed track."""
        return self.done.pop(track_id)

    def prune(self, current_frame: int) -> None:
        """Drop buffered frames that no open track can still need."""
        keep_from = min(min(self.next_frame.values(), default=current_frame), current_frame)
        while self.frames and next(iter(self.frames)) < keep_from:
            self.frames.popitem(last=False)
