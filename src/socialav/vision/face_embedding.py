"""One face embedding per face track: dlib's ResNet descriptor on a few good frames.

Model: dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet-29 metric network
giving 128-d descriptors, 99.38 % on LFW; King, dlib.net blog 2017, CC0) with its alignment
model ``shape_predictor_5_face_landmarks.dat`` (5 points: eye corners and nose; CC0, trained
on dlib's own 5-point data). Both ship in the ``face-recognition-models`` wheel and are
resolved through :mod:`socialav.hub` (``dlib-face-resnet``, ``dlib-shape-5``). The 68-point
model in the same wheel is never used (its iBUG 300-W training data excludes commercial use).
Each face is aligned and cut to a 150x150 chip by ``dlib.get_face_chip`` (padding 0.25, the
default of ``compute_face_descriptor``) and described by ``compute_face_descriptor``.

Sampling (:class:`FaceEmbeddingSampler`): while frames stream by, every detected face of an
open track is a candidate at most every ``every_frames`` frames. Its quality is
``confidence x min(1, box height / 100 px) x s / (s + 50)`` with ``s`` the variance of the
Laplacian of the face resized to 64 px height (a standard focus measure; Pech-Pacheco et al.,
ICPR 2000). Candidates are kept in time bins over the track, one (the best) per bin; when a
track has more than ``max_candidates`` bins, neighbouring bins are merged (the bin width
doubles), so the kept faces stay spread over the whole track with bounded memory. A face's
crop is cut and scaled only when it wins its bin (most lose to a better one). When the
track ends, the ``num_samples`` best kept faces are described and their descriptors averaged
(weighted by quality) and L2-normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from socialav.types import Detections, FaceEmbedding
from socialav.vision.detection import check_frame_rgb

logger = logging.getLogger(__name__)

__all__ = [
    "FACE_EMBEDDING_DIM",
    "DlibFaceEmbedder",
    "FaceEmbeddingSampler",
    "face_quality",
]

FACE_EMBEDDING_DIM: int = 128
#: Context kept around a candidate face box, as a fraction of its size on each side.
_CROP_MARGIN = 0.35
#: Candidate crops are stored with the face box at most this many pixels high.
_STORE_FACE_PX = 160
_THUMBNAIL_PX = 96


def face_quality(face_rgb: np.ndarray, box_height_px: float, confidence: float = 1.0) -> float:
    """Sampling quality of one face in ``[0, 1]`` (see the module docstring).

    Args:
        face_rgb: ``(h, w, 3)`` uint8 RGB pixels of the face box.
        box_height_px: face box height in the original frame (pixels).
        confidence: detector score in ``[0, 1]``.
    """
    if face_rgb.size == 0:
        return 0.0
    gray = cv2.cvtColor(face_rgb, cv2.COLOR_RGB2GRAY)
    scale = 64.0 / gray.shape[0]
    gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), 64))
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    size = min(1.0, box_height_px / 100.0)
    return float(np.clip(confidence, 0.0, 1.0)) * size * sharpness / (sharpness + 50.0)


class DlibFaceEmbedder:
    """dlib 5-point alignment + ResNet descriptor (CPU).

    Args:
        descriptor_path, landmark_path: dlib's ``dlib_face_recognition_resnet_model_v1.dat``
            and ``shape_predictor_5_face_landmarks.dat`` (the registry's ``dlib-face-resnet``
            and ``dlib-shape-5``: :func:`socialav.checkpoints.load.load_face_embedder`).

    Raises:
        FileNotFoundError: a file that does not exist.
        ImportError: ``dlib`` is not installed (``pip install dlib-bin``).
    """

    dim: int = FACE_EMBEDDING_DIM

    def __init__(
        self,
        descriptor_path: str | Path,
        landmark_path: str | Path,
    ) -> None:
        import dlib

        self._dlib = dlib
        paths = []
        for weights in (descriptor_path, landmark_path):
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"dlib model file not found: {path}")
            paths.append(path)
        self.descriptor_path, self.landmark_path = paths
        self._net = dlib.face_recognition_model_v1(str(self.descriptor_path))
        self._landmarks = dlib.shape_predictor(str(self.landmark_path))

    def describe(self, image_rgb: np.ndarray, box_xyxy_px: Sequence[float]) -> np.ndarray:
        """128-d dlib descriptor (not normalised) of the face in ``box_xyxy_px``.

        Args:
            image_rgb: ``(H, W, 3)`` uint8 RGB.
            box_xyxy_px: the face box in pixels of ``image_rgb``.

        Returns:
            ``(128,)`` float32.
        """
        check_frame_rgb(image_rgb)
        x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy_px)
        rect = self._dlib.rectangle(x1, y1, x2, y2)
        image = np.ascontiguousarray(image_rgb)
        shape = self._landmarks(image, rect)
        chip = self._dlib.get_face_chip(image, shape, size=150, padding=0.25)
        return np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float32)

    def __repr__(self) -> str:
        return f"DlibFaceEmbedder({self.descriptor_path.name}, {self.landmark_path.name})"


@dataclass
class _Candidate:
    frame_index: int
    quality: float
    crop_rgb: np.ndarray
    box_in_crop: tuple[float, float, float, float]


class _TrackSamples:
    def __init__(self, first_frame: int) -> None:
        self.first_frame = first_frame
        self.bin_frames = 1
        self.bins: dict[int, _Candidate] = {}
        self.last_frame = -(10**9)

    def wins_bin(self, frame_index: int, quality: float) -> bool:
        """Whether a face of this quality at ``frame_index`` would be kept by :meth:`add`
        (its time bin is empty or holds a worse face); a face that would not is never cut."""
        kept = self.bins.get((frame_index - self.first_frame) // self.bin_frames)
        return kept is None or kept.quality < quality

    def add(self, candidate: _Candidate, max_bins: int) -> None:
        if not self.wins_bin(candidate.frame_index, candidate.quality):
            return
        self.bins[(candidate.frame_index - self.first_frame) // self.bin_frames] = candidate
        while len(self.bins) > max_bins:
            self.bin_frames *= 2
            merged: dict[int, _Candidate] = {}
            for c in self.bins.values():
                nb = (c.frame_index - self.first_frame) // self.bin_frames
                if nb not in merged or merged[nb].quality < c.quality:
                    merged[nb] = c
            self.bins = merged


class FaceEmbeddingSampler:
    """Face embeddings of open face tracks, sampled while the video streams.

    Same interface as :class:`~socialav.vision.head_pose.HeadPoseTracker`::

        faces = FaceEmbeddingSampler(load_face_embedder()[0])
        ...
        tracker.update(frame_index, dets)
        if dets is not None:
            faces.update_open_tracks(frame_index, frame, tracker.open_tracks(), dets)
        for key, track in tracker.pop_closed():
            if track is None:
                faces.discard(key)
            elif (embedding := faces.finish(key)) is not None:
                # the tracker key is not the track_id: relabel
                face_embeddings[track.track_id] = dataclasses.replace(
                    embedding, key=track.track_id
                )

    Only a few small face crops per open track are kept (``max_candidates``), never frames.

    Args:
        embedder: a :class:`DlibFaceEmbedder` (anything with ``describe(image, box)`` and
            ``dim``).
        every_frames: a face is a candidate at most every this many frames.
        max_candidates: time bins kept per open track (bounds memory).
        num_samples: faces described per track when it ends (one dlib descriptor each:
            the sampler's main cost). 2 gave the same DERs as 4 (and as 1) on every
            edit of ``benchmarks/bench_diarization.py`` (docs/speed.md).
        min_quality: candidates below this quality are ignored unless nothing better came.
    """

    def __init__(
        self,
        embedder: DlibFaceEmbedder,
        every_frames: int = 3,
        max_candidates: int = 12,
        num_samples: int = 2,
        min_quality: float = 0.02,
    ) -> None:
        if every_frames < 1 or max_candidates < 1 or num_samples < 1:
            raise ValueError(
                "every_frames, max_candidates and num_samples must be >= 1, but got "
                f"{every_frames}, {max_candidates}, {num_samples}"
            )
        self.embedder = embedder
        self.every_frames = int(every_frames)
        self.max_candidates = int(max_candidates)
        self.num_samples = int(num_samples)
        self.min_quality = float(min_quality)
        self._tracks: dict[int, _TrackSamples] = {}
        self.num_described = 0

    def update(
        self,
        frame_index: int,
        frame_rgb: np.ndarray,
        faces: Iterable[tuple[int, np.ndarray] | tuple[int, np.ndarray, float]],
    ) -> None:
        """Offer the faces of one frame: ``(key, box_xyxy_px[, confidence])`` each."""
        check_frame_rgb(frame_rgb)
        height, width = frame_rgb.shape[:2]
        for face in faces:
            key, box = face[0], np.asarray(face[1], dtype=np.float64).reshape(4)
            confidence = float(face[2]) if len(face) > 2 else 1.0
            samples = self._tracks.get(key)
            if samples is None:
                samples = self._tracks[key] = _TrackSamples(int(frame_index))
            if frame_index - samples.last_frame < self.every_frames:
                continue
            samples.last_frame = int(frame_index)
            candidate = self._candidate(
                frame_index, frame_rgb, box, confidence, width, height, samples
            )
            if candidate is not None:
                samples.add(candidate, self.max_candidates)

    def update_open_tracks(
        self,
        frame_index: int,
        frame_rgb: np.ndarray,
        open_tracks: Iterable[tuple[int, Sequence[int], Sequence[np.ndarray]]],
        detections: Detections | None = None,
    ) -> None:
        """:meth:`update` with the tracks detected in this frame (``FaceTracker.open_tracks()``).

        Args:
            detections: this frame's detections; when given, each face's detector confidence
                is taken from the detection whose box the tracker stored (else 1).
        """
        faces = []
        for key, frames, boxes in open_tracks:
            if not frames or frames[-1] != frame_index:
                continue
            box = np.asarray(boxes[-1], dtype=np.float32).reshape(4)
            confidence = 1.0
            if detections is not None and len(detections):
                same = np.all(np.abs(detections.xyxy_px - box) < 1e-3, axis=1)
                if same.any():
                    confidence = float(detections.confidence[np.argmax(same)])
            faces.append((key, box, confidence))
        self.update(frame_index, frame_rgb, faces)

    @staticmethod
    def _candidate(
        frame_index: int,
        frame: np.ndarray,
        box: np.ndarray,
        confidence: float,
        width: int,
        height: int,
        samples: _TrackSamples,
    ) -> _Candidate | None:
        """The face as a candidate of its track, or None when it is too small or would not
        be kept (its time bin holds a better face: the crop is then never cut and scaled,
        which is most of the cost)."""
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if w < 4 or h < 4:
            return None
        fx1, fy1 = max(int(x1), 0), max(int(y1), 0)
        fx2, fy2 = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
        if fx2 - fx1 < 2 or fy2 - fy1 < 2:
            return None
        quality = face_quality(frame[fy1:fy2, fx1:fx2], h, confidence)
        if not samples.wins_bin(frame_index, quality):
            return None
        cx1, cy1 = max(int(x1 - _CROP_MARGIN * w), 0), max(int(y1 - _CROP_MARGIN * h), 0)
        cx2 = min(int(np.ceil(x2 + _CROP_MARGIN * w)), width)
        cy2 = min(int(np.ceil(y2 + _CROP_MARGIN * h)), height)
        crop = frame[cy1:cy2, cx1:cx2]
        scale = min(1.0, _STORE_FACE_PX / h)
        if scale < 1.0:
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        else:
            crop = crop.copy()
        rel = ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
        return _Candidate(int(frame_index), quality, crop, rel)

    def finish(self, key: int) -> FaceEmbedding | None:
        """Describe the best kept faces of a closed track and forget it.

        Returns:
            The track's :class:`FaceEmbedding`, or None when no face was ever offered (logged).
        """
        samples = self._tracks.pop(key, None)
        if samples is None or not samples.bins:
            logger.warning("face track %s had no face to describe: no face embedding", key)
            return None
        kept = sorted(samples.bins.values(), key=lambda c: -c.quality)
        good = [c for c in kept if c.quality >= self.min_quality] or kept[:1]
        chosen = good[: self.num_samples]
        descriptors = np.stack([self.embedder.describe(c.crop_rgb, c.box_in_crop) for c in chosen])
        self.num_described += len(chosen)
        weights = np.array([max(c.quality, 1e-6) for c in chosen], dtype=np.float64)
        normed = descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True).clip(1e-12)
        mean = (normed * weights[:, None]).sum(axis=0)
        embedding = mean / max(float(np.linalg.norm(mean)), 1e-12)
        order = np.argsort([c.frame_index for c in chosen])
        return FaceEmbedding(
            key=key,
            embedding=embedding.astype(np.float32),
            frame_indices=np.array([chosen[i].frame_index for i in order]),
            quality=np.array([chosen[i].quality for i in order]),
            thumbnail_jpeg=_thumbnail(chosen[0]),
        )

    def discard(self, key: int) -> None:
        """Forget a face (a rejected track)."""
        self._tracks.pop(key, None)

    @property
    def num_open(self) -> int:
        return len(self._tracks)


def _thumbnail(candidate: _Candidate) -> bytes | None:
    """A square JPEG (at most 96 px) around the candidate's face box."""
    x1, y1, x2, y2 = candidate.box_in_crop
    side = 1.3 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = candidate.crop_rgb.shape[:2]
    a, b = max(int(cx - side / 2), 0), max(int(cy - side / 2), 0)
    c, d = min(int(cx + side / 2), w), min(int(cy + side / 2), h)
    face = candidate.crop_rgb[b:d, a:c]
    if face.size == 0:
        return None
    scale = min(1.0, _THUMBNAIL_PX / max(face.shape[:2]))
    size = (max(1, round(face.shape[1] * scale)), max(1, round(face.shape[0] * scale)))
    small = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return bytes(data) if ok else None
