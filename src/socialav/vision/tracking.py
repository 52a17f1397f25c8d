"""Streaming IoU face tracker and crop-geometry smoothing, as the TalkNet/Light-ASD demos.

Reference: ``Columbia_test.py`` of Junhua-Liao/Light-ASD (the same code is in TalkNet-ASD's
``demoTalkNet.py``), functions ``track_shot`` and ``crop_video``:

* a detection extends a face track if its IoU with the track's last detected box is greater
  than 0.5 (``iouThres``) and it is at most ``numFailedDet`` = 10 frames after it;
* tracks are built greedily: the track started first gets the first pick in every frame;
* a track is kept if it has more than ``minTrack`` = 10 detections and its mean box width or
  height is greater than ``minFaceSize`` = 1 px;
* boxes are linearly interpolated (``scipy.interpolate.interp1d``) over the frames between
  detections;
* the crop geometry per frame is the half-size ``s = max(w, h) / 2`` and the centre
  ``(cx, cy)`` of the box, each median-filtered as ``scipy.signal.medfilt(kernel_size=13)``
  (zero-padded at both ends of the track, exactly as the demo; computed with
  ``scipy.ndimage.median_filter``, which gives the same values).

The demo processes a whole shot at once; :class:`FaceTracker` gets the same tracks frame by
frame (the greedy "first-created track picks first" order is preserved, so with detection on
every frame the tracks are identical), never links across a shot boundary
(:meth:`FaceTracker.end_shot`), and hands finished tracks out as soon as they can no longer
grow, so that the pipeline can free their memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter

from socialav.types import Detections, FaceTrack
from socialav.vision.detection import box_iou_one_to_many

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackerConfig:
    """Face-tracking parameters; defaults from ``Columbia_test.py`` (Light-ASD / TalkNet demo).

    Attributes:
        iou_threshold: a detection joins a track if its IoU with the track's last detected box
            is greater than this (``iouThres = 0.5``).
        max_gap_frames: largest frame-index difference between two consecutive detections of
            one track (``--numFailedDet 10``); a track with no detection for more frames ends.
        min_track_frames: a track is kept only if ``detections * detect_every`` is greater
            than this (``--minTrack 10``: more than 10 detections when detecting every frame).
        min_face_size_px: a track is kept only if its mean box width or height is greater
            than this (``--minFaceSize 1``).
        detect_every: the detector runs on every ``detect_every``-th frame (1 = every frame);
            only used to scale ``min_track_frames``.
        smoothing_kernel: median-filter length for the crop geometry (``kernel_size=13``).
    """

    iou_threshold: float = 0.5
    max_gap_frames: int = 10
    min_track_frames: int = 10
    min_face_size_px: float = 1.0
    detect_every: int = 1
    smoothing_kernel: int = 13

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1), but got {self.iou_threshold}")
        if self.max_gap_frames < 1:
            raise ValueError(f"max_gap_frames must be >= 1, but got {self.max_gap_frames}")
        if self.detect_every < 1 or self.detect_every > self.max_gap_frames:
            raise ValueError(
                f"detect_every must lie in [1, max_gap_frames={self.max_gap_frames}], "
                f"but got {self.detect_every}"
            )
        if self.smoothing_kernel < 1 or self.smoothing_kernel % 2 == 0:
            raise ValueError(
                f"smoothing_kernel must be a positive odd number, but got {self.smoothing_kernel}"
            )


def smooth_crop_geometry(boxes_xyxy_px: np.ndarray, kernel_size: int = 13) -> np.ndarray:
    """Per-frame crop geometry of a face track, median-filtered as the demo's ``crop_video``.

    Args:
        boxes_xyxy_px: ``(T, 4)`` boxes ``x1, y1, x2, y2`` in pixels, one per frame.
        kernel_size: odd median-filter length (13 in the demo).

    Returns:
        ``(T, 3)`` float64 columns ``s`` (half of ``max(h, w)``), ``cx``, ``cy`` in pixels,
        each filtered with ``scipy.signal.medfilt`` (which pads with zeros, so the first and
        last ``kernel_size // 2`` frames lean towards the smaller values, as in the demo).

    Raises:
        ValueError: ``boxes_xyxy_px`` is not ``(T, 4)`` or ``kernel_size`` is not odd.
    """
    boxes = np.asarray(boxes_xyxy_px, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes_xyxy_px must have shape (T, 4), but got {boxes.shape}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, but got {kernel_size}")
    size = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    # scipy.ndimage's median with zero padding is scipy.signal.medfilt element for element
    # (tests/vision/test_tracking.py), and imports in far less time (docs/speed.md)
    columns = [
        median_filter(column, size=kernel_size, mode="constant", cval=0.0)
        for column in (size, centre_x, centre_y)
    ]
    return np.stack(columns, axis=1)


@dataclass
class _ActiveTrack:
    order: int  # creation order: earlier tracks pick detections first
    held_until: int  # last frame covered by holding the last box over unanalysed frames
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)

    @property
    def last_frame(self) -> int:
        return self.frames[-1]


class FaceTracker:
    """Streaming greedy IoU tracker with the demo's interpolation, filters and smoothing.

    Usage, one call per analysis frame::

        tracker = FaceTracker()
        for frame_index, frame in frames:
            if shots.update(frame_index, frame):
                tracker.end_shot()
            dets = detector.detect(frame) if frame_index % k == 0 else None
            tracker.update(frame_index, dets)
            for track in tracker.pop_finished():
                ...
        tracker.finish()
        for track in tracker.pop_finished():
            ...

    Detection on every k-th frame: pass ``None`` for the frames the detector skipped. Boxes
    are interpolated between detections, and after a track's last detection its box is held
    over the following skipped frames (at most ``detect_every - 1``, stopping at the first
    analysed frame or the shot end), so that a track does not lose the last ``k - 1`` frames
    of its shot. With ``detect_every=1`` nothing is held and the tracks equal the demo's.
    Run the detector on the first frame of every shot so that tracks do not lose its first
    frames either.

    Latency: a track ends when ``max_gap_frames`` frames have passed since its last detection,
    so it is handed out by the :meth:`update` call for frame ``last_detection +
    max_gap_frames + 1`` (11 frames later with the defaults; if that frame is not passed to
    :meth:`update`, by the next call after it), or at once by :meth:`end_shot` /
    :meth:`finish`. Frames ``>= oldest_active_frame()`` may still be needed for cropping.
    A face that stays visible keeps its track open: memory per open track is a few numbers
    per frame (boxes only), but a pipeline that buffers frames for cropping must bound that
    itself (e.g. a second decoding pass, or cropping incrementally: the smoothed geometry of
    frame ``t`` is final once the track has a detection at ``t + smoothing_kernel // 2`` or
    later).

    Args:
        config: :class:`TrackerConfig` (defaults from the demo).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._active: list[_ActiveTrack] = []
        self._closed: list[tuple[int, FaceTrack | None]] = []
        self._next_order = 0
        self._next_track_id = 0
        self._last_frame_index: int | None = None
        self.num_rejected = 0

    @property
    def num_active(self) -> int:
        """Number of open tracks (still able to grow)."""
        return len(self._active)

    def oldest_active_frame(self) -> int | None:
        """First frame of the oldest open track, or None if no track is open."""
        return min((t.frames[0] for t in self._active), default=None)

    def update(self, frame_index: int, detections: Detections | None) -> None:
        """Feed one frame's detections (``None``: the detector did not run on this frame).

        Each open track, oldest first, takes the first detection (in the given order, i.e.
        by descending confidence) whose IoU with the track's last detected box exceeds
        ``iou_threshold``; every detection left over starts a new track. Tracks whose last
        detection is more than ``max_gap_frames`` before ``frame_index`` end first.

        Args:
            frame_index: analysis-timeline index; must increase from call to call.
            detections: boxes in pixels of the frame, or None.

        Raises:
            ValueError: ``frame_index`` does not increase.
            TypeError: ``detections`` is not a :class:`Detections` or None.
        """
        if self._last_frame_index is not None and frame_index <= self._last_frame_index:
            raise ValueError(
                f"frame_index must increase, but got {frame_index} after {self._last_frame_index}"
            )
        if detections is not None and not isinstance(detections, Detections):
            raise TypeError(f"detections must be Detections or None, got {type(detections)}")
        self._last_frame_index = int(frame_index)
        gap = self.config.max_gap_frames
        ended = [t for t in self._active if frame_index - t.last_frame > gap]
        if ended:
            self._active = [t for t in self._active if frame_index - t.last_frame <= gap]
            self._close(ended)
        if detections is None:
            # frame not analysed: hold each track's last box over it, for at most
            # detect_every - 1 frames after its last detection
            for track in self._active:
                if (
                    track.held_until == frame_index - 1
                    and frame_index - track.last_frame < self.config.detect_every
                ):
                    track.held_until = int(frame_index)
            return
        if len(detections) == 0:
            return
        boxes = detections.xyxy_px.astype(np.float64)
        free = np.ones(len(boxes), dtype=bool)
        for track in self._active:  # kept in creation order
            if not free.any():
                break
            candidates = np.flatnonzero(free)
            iou = box_iou_one_to_many(track.boxes[-1], boxes[candidates])
            above = np.flatnonzero(iou > self.config.iou_threshold)
            if above.size:
                pick = int(candidates[above[0]])
                free[pick] = False
                track.held_until = int(frame_index)
                track.frames.append(int(frame_index))
                track.boxes.append(boxes[pick])
                track.confidence.append(float(detections.confidence[pick]))
        for pick in np.flatnonzero(free):
            track = _ActiveTrack(order=self._next_order, held_until=int(frame_index))
            self._next_order += 1
            track.frames.append(int(frame_index))
            track.boxes.append(boxes[pick])
            track.confidence.append(float(detections.confidence[pick]))
            self._active.append(track)

    def end_shot(self) -> None:
        """Close every open track (call at a shot boundary, before the new shot's frames)."""
        ended, self._active = self._active, []
        self._close(ended)

    def finish(self) -> None:
        """Close every open track at the end of the video."""
        self.end_shot()

    def pop_finished(self) -> list[FaceTrack]:
        """Return the tracks finished since the last call (in ``track_id`` order) and forget
        them (and the rejected ones)."""
        return [track for _, track in self.pop_closed() if track is not None]

    def pop_closed(self) -> list[tuple[int, FaceTrack | None]]:
        """Every track closed since the last call as ``(key, FaceTrack)``, or ``(key, None)``
        for a track rejected by the length / size filters; ``key`` is the one
        :meth:`open_tracks` gave while the track was open."""
        closed, self._closed = self._closed, []
        return closed

    def open_tracks(self) -> list[tuple[int, list[int], list[np.ndarray]]]:
        """The open tracks as ``(key, detection frame indices, detected boxes xyxy px)``.

        The two lists are the tracker's own (do not modify them); they grow by one entry per
        detection, so a caller can look at the newest entries without copying the whole track
        (the pipeline cuts face crops incrementally from them).
        """
        return [(t.order, t.frames, t.boxes) for t in self._active]

    def _close(self, tracks: list[_ActiveTrack]) -> None:
        for track in sorted(tracks, key=lambda t: (t.frames[0], t.order)):
            face_track = self._build(track)
            if face_track is None:
                self.num_rejected += 1
            self._closed.append((track.order, face_track))

    def _build(self, track: _ActiveTrack) -> FaceTrack | None:
        cfg = self.config
        if len(track.frames) * cfg.detect_every <= cfg.min_track_frames:
            return None
        frames = np.asarray(track.frames, dtype=np.int64)
        boxes = np.stack(track.boxes)
        # np.interp holds the end values beyond the last detection (frames up to held_until)
        all_frames = np.arange(frames[0], max(frames[-1], track.held_until) + 1, dtype=np.int64)
        interp = np.stack([np.interp(all_frames, frames, boxes[:, j]) for j in range(4)], axis=1)
        mean_w = float(np.mean(interp[:, 2] - interp[:, 0]))
        mean_h = float(np.mean(interp[:, 3] - interp[:, 1]))
        if max(mean_w, mean_h) <= cfg.min_face_size_px:
            return None
        detected = np.zeros(len(all_frames), dtype=bool)
        detected[frames - frames[0]] = True
        confidence = np.interp(all_frames, frames, np.asarray(track.confidence))
        face_track = FaceTrack(
            track_id=self._next_track_id,
            frame_indices=all_frames,
            boxes_xyxy_px=interp,
            crop_size_cx_cy_px=smooth_crop_geometry(interp, cfg.smoothing_kernel),
            detected=detected,
            confidence=confidence,
        )
        self._next_track_id += 1
        logger.debug(
            "face track %d: frames %d-%d, %d detections",
            face_track.track_id,
            face_track.start_frame,
            face_track.end_frame,
            len(frames),
        )
        return face_track


def track_faces(
    detections: list[tuple[int, Detections | None]],
    cut_frames: list[int] | tuple[int, ...] = (),
    config: TrackerConfig | None = None,
) -> list[FaceTrack]:
    """Track faces over a whole list of per-frame detections (convenience for tests/offline).

    Args:
        detections: ``(frame_index, Detections | None)`` in increasing frame order.
        cut_frames: frame indices at which a new shot starts.
        config: tracker parameters.

    Returns:
        All kept :class:`FaceTrack`, in ``track_id`` order.
    """
    tracker = FaceTracker(config)
    cuts = set(int(c) for c in cut_frames)
    tracks: list[FaceTrack] = []
    for frame_index, dets in detections:
        if frame_index in cuts:
            tracker.end_shot()
        tracker.update(frame_index, dets)
        tracks.extend(tracker.pop_finished())
    tracker.finish()
    tracks.extend(tracker.pop_finished())
    return tracks
