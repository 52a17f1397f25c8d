"""The one streaming pass over a video's pixels: decode, shot cuts, face detection and tracking,
and the crops (and head pose) of each face track, handed on as each track ends.

Per decoded frame on the 25 fps timeline (:func:`socialav.io.media.iter_frames`): shot
boundaries (:class:`~socialav.vision.shots.ShotBoundaryDetector`; a face track never crosses a
cut); face detection on the first frame of each shot and every ``detect_every``-th frame, IoU
tracking with interpolation (:class:`~socialav.vision.tracking.FaceTracker`); face crops cut as
soon as a frame's smoothed crop geometry is final, from a short buffer of recent frames
(:mod:`socialav.vision.streaming`); optionally FSA-Net head pose of the open tracks
(:class:`~socialav.vision.head_pose.HeadPoseTracker`) and the RGB crops of the trained LAM/TTM
models. Memory grows with the open tracks' lengths, never with the video's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from socialav.io.media import iter_frames
from socialav.types import AnalysedTrack, FaceCropChunk, VideoInfo
from socialav.vision.detection import FaceDetector
from socialav.vision.face_embedding import FaceEmbeddingSampler
from socialav.vision.head_pose import FSANetHeadPose, HeadPoseTracker
from socialav.vision.shots import ShotBoundaryDetector
from socialav.vision.streaming import StreamingFaceCropper, StreamingRgbCropper
from socialav.vision.tracking import FaceTracker, TrackerConfig

__all__ = ["AnalysisSettings", "StageTimer", "VideoAnalysis"]

#: ``progress(stage, done, total)``; ``total`` may be None when unknown.
Progress = Callable[[str, int, int | None], None]


class StageTimer:
    """Wall-clock seconds per pipeline stage, accumulated (``seconds[stage]``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        """Add the time since ``since`` (a ``time.perf_counter()`` value) to ``stage``; return
        the current ``perf_counter()``."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now


@dataclass(frozen=True)
class AnalysisSettings:
    """What the analysis pass cuts and how (from :class:`~socialav.pipelines.config.DetectConfig`).

    Attributes:
        detect_every: run the face detector on every n-th frame (and the first of a shot).
        tracker: face-tracking parameters.
        shot_threshold: PySceneDetect content-detector threshold.
        crop_scale: face-crop context of the ASD crops (the demo's 0.40).
        rgb_sizes_px: sides of the RGB crops for the trained LAM/TTM models (empty: none).
        rgb_quality: also compute the per-frame visual quality with the RGB crops.
        chunk_frames: hand on the gray crops of open tracks in chunks of this many frames
            (:class:`~socialav.types.FaceCropChunk`) as soon as they are cut, so that long
            tracks are scored while they grow; ``None``: every crop comes with its
            :class:`~socialav.types.AnalysedTrack`.
    """

    detect_every: int
    tracker: TrackerConfig
    shot_threshold: float
    crop_scale: float
    rgb_sizes_px: tuple[int, ...] = ()
    rgb_quality: bool = False
    chunk_frames: int | None = None


class VideoAnalysis:
    """The analysis pass of one video: iterate to stream the video once and get each finished
    face track with its crops.

    Args:
        path: the video file.
        video: its :func:`~socialav.io.media.probe_video` record (fps of the timeline).
        detector: the face detector.
        settings: see :class:`AnalysisSettings`.
        head_pose: if given, FSA-Net head pose of every track is sampled on its detection
            frames (:attr:`AnalysedTrack.head_pose_deg`).
        timer: accumulates seconds per stage (``decode``, ``shots``, ``detect``, ``crop``,
            ``head_pose``, ``social`` and ``scene`` for ``on_frame``).
        progress: called as ``progress("analyse", frames_done, num_frames)``.
        on_frame: if given, called as ``on_frame(frame_index, frame_rgb)`` for every decoded
            frame, in order (e.g. :meth:`socialav.inference.context.SceneEmbeddingStream.add`).
        face_sampler: if given, a few faces of every track are described on its detection
            frames (:class:`~socialav.vision.face_embedding.FaceEmbeddingSampler`; timed as
            ``face_embedding``) and handed on in ``AnalysedTrack.face_embedding``.

    Iterating yields :class:`~socialav.types.AnalysedTrack` records, in the order tracks end
    (not by ``track_id``), and, with ``settings.chunk_frames``, the
    :class:`~socialav.types.FaceCropChunk` records of open tracks before them (a track whose
    chunks were dropped by the tracker in the end gets no ``AnalysedTrack``); it raises
    :class:`socialav.io.media.MediaError` when the video cannot be decoded.

    Attributes:
        shot_cut_frames: the first frame of every new shot found so far (all of them once the
            iteration ends).
        num_face_detections: faces the detector found so far, over all analysed frames (also
            those of tracks the tracker then dropped as too short or too small).
    """

    def __init__(
        self,
        path: str | Path,
        video: VideoInfo,
        detector: FaceDetector,
        settings: AnalysisSettings,
        head_pose: FSANetHeadPose | None = None,
        timer: StageTimer | None = None,
        progress: Progress | None = None,
        on_frame: Callable[[int, np.ndarray], None] | None = None,
        face_sampler: FaceEmbeddingSampler | None = None,
    ) -> None:
        self.path, self.video, self.detector, self.settings = path, video, detector, settings
        self.face_sampler = face_sampler
        self.head_pose, self.progress, self.on_frame = head_pose, progress, on_frame
        self.timer = timer or StageTimer()
        self.shot_cut_frames: list[int] = []
        self.num_face_detections = 0

    @property
    def num_shot_cuts(self) -> int:
        """Shot cuts found so far."""
        return len(self.shot_cut_frames)

    def __iter__(self) -> Iterator[AnalysedTrack | FaceCropChunk]:
        path, video, detector, settings = self.path, self.video, self.detector, self.settings
        head_pose, progress, on_frame, timer = (
            self.head_pose,
            self.progress,
            self.on_frame,
            self.timer,
        )
        shots = ShotBoundaryDetector(threshold=settings.shot_threshold, fps=video.fps)
        tracker = FaceTracker(settings.tracker)
        cropper = StreamingFaceCropper(settings.tracker.smoothing_kernel, settings.crop_scale)
        rgb = None
        if settings.rgb_sizes_px or settings.rgb_quality:
            rgb = StreamingRgbCropper(settings.rgb_sizes_px, settings.rgb_quality)
        poses = HeadPoseTracker(head_pose) if head_pose is not None else None
        faces = self.face_sampler
        self.shot_cut_frames = []
        self.num_face_detections = 0
        last_detect = -settings.detect_every

        def closed() -> Iterator[AnalysedTrack]:
            for key, track in tracker.pop_closed():
                t0 = time.perf_counter()
                first_row = cropper.handed_on.get(key, 0)
                crops = cropper.close(key, track)
                t0 = timer.add("crop", t0)
                rgb_crops = quality = None
                if rgb is not None:
                    rgb.close(key, track)
                    if track is not None:
                        rgb_crops, quality = rgb.pop(track.track_id)
                    t0 = timer.add("social", t0)
                angles = None
                if poses is not None:
                    if track is None:
                        poses.discard(key)
                    else:
                        angles = poses.finish(key, track.frame_indices)
                    t0 = timer.add("head_pose", t0)
                embedding = None
                if faces is not None:
                    if track is None:
                        faces.discard(key)
                    elif (found := faces.finish(key)) is not None:  # tracker key -> track_id
                        embedding = replace(found, key=track.track_id)
                    timer.add("face_embedding", t0)
                if track is not None and crops is not None:
                    yield AnalysedTrack(
                        track,
                        crops,
                        angles,
                        rgb_crops or None,
                        quality,
                        embedding,
                        faces_first_row=first_row,
                        track_key=key if first_row else None,
                    )

        t = time.perf_counter()
        for frame_index, frame in iter_frames(path, fps=video.fps):
            t = timer.add("decode", t)
            if on_frame is not None:
                on_frame(frame_index, frame)
                t = timer.add("scene", t)
            cut = shots.update(frame_index, frame)
            if cut:
                self.shot_cut_frames.append(frame_index)
                tracker.end_shot()
            t = timer.add("shots", t)
            dets = None
            if cut or frame_index - last_detect >= settings.detect_every:
                dets = detector.detect(frame)
                self.num_face_detections += len(dets)
                last_detect = frame_index
            tracker.update(frame_index, dets)
            t = timer.add("detect", t)
            if poses is not None and dets is not None:
                poses.update_open_tracks(frame_index, frame, tracker.open_tracks())
                t = timer.add("head_pose", t)
            if faces is not None and dets is not None:
                faces.update_open_tracks(frame_index, frame, tracker.open_tracks(), dets)
                t = timer.add("face_embedding", t)
            cropper.add_frame(frame_index, frame)
            if rgb is not None:
                rgb.add_frame(frame_index, frame)
            yield from closed()
            t = time.perf_counter()
            cropper.advance_open(tracker.open_tracks())
            cropper.prune(frame_index)
            chunks = cropper.take_chunks(settings.chunk_frames) if settings.chunk_frames else ()
            t = timer.add("crop", t)
            for key, first_row, start_frame, faces_gray112 in chunks:
                yield FaceCropChunk(key, start_frame, faces_gray112, first_row)
            t = time.perf_counter()
            if rgb is not None:
                rgb.advance_open(tracker.open_tracks())
                rgb.prune(frame_index)
                t = timer.add("social", t)
            if progress:
                progress("analyse", frame_index + 1, video.num_frames)
            t = time.perf_counter()
        tracker.finish()
        yield from closed()
