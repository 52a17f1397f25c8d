"""Validated records handed from one pipeline stage to the next.

Every record checks its shapes and dtypes when it is built and says what it expected and
what it got. Units are in the field names (``_px``, ``_s``, ``fps``, ``sample_rate``).
Frame indices always refer to the 25 fps analysis timeline (``ANALYSIS_FPS``), on which
frame ``k`` is shown at ``k / fps`` seconds after the first decoded video frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Frame rate of the analysis timeline. The ASD models (TalkNet, Light-ASD, LR-ASD) are
#: trained on 25 fps video (AVA-ActiveSpeaker is annotated at 25 fps after resampling,
#: see the Light-ASD demo ``Columbia_test.py`` which runs ``ffmpeg -r 25``).
ANALYSIS_FPS: float = 25.0
#: The questions ``socialav detect`` answers per face and frame: speaking (active speaker
#: detection), looking at the camera wearer (Looking-at-Me), talking to them (Talking-to-Me).
DETECT_TASKS: tuple[str, ...] = ("asd", "lam", "ttm")
#: The runtimes the ASD models run on (:mod:`socialav.inference.backends`); ``onnx-int8`` is
#: ``onnx`` with the int8 visual encoder (:mod:`socialav.inference.quantize`).
ASD_BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
#: The ONNX graphs of an exported ASD model (one per runner stage) and their exporter's
#: version, part of the cache file names: bump it when the exported graphs change
#: (:mod:`socialav.inference.torch_backend`, :mod:`socialav.checkpoints.onnx_cache`).
ASD_ONNX_GRAPHS: tuple[str, ...] = ("visual", "audio", "decoder")
ASD_ONNX_VERSION: str = "5"
#: Audio sample rate expected by the MFCC front-end of the ASD models (Hz).
AUDIO_SAMPLE_RATE: int = 16000
#: MFCC frames per second (10 ms hop) and per video frame at 25 fps.
MFCC_RATE_HZ: int = 100
MFCC_FRAMES_PER_VIDEO_FRAME: int = 4
#: Number of MFCC coefficients the ASD models take.
NUM_MFCC: int = 13
#: Side of the square gray face crop the ASD models take, in pixels.
FACE_SIZE_PX: int = 112
#: Width of the ASD models' audio and visual embeddings (the input of their back-ends).
ASD_EMBED_DIM: int = 128
#: Frame rate of Ego4D clips: the annotations' frame numbers and the LAM/TTM baselines' input
#: frames (``extract_frame.sh`` of EGO4D/social-interactions extracts at 30 fps).
EGO4D_FPS: float = 30.0
#: ImageNet RGB statistics, the input normalisation of the ImageNet-initialised backbones
#: (GazeLSTM, QuAVF, the scene ViT): ``(x / 255 - mean) / std`` per channel.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_array(name: str, value: np.ndarray, ndim: int, last: int | None = None) -> None:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, but got {type(value).__name__}")
    if value.ndim != ndim or (last is not None and value.shape[-1] != last):
        want = f"({', '.join(['_'] * (ndim - 1) + [str(last)])})" if last else f"{ndim}-D"
        raise ValueError(f"{name} must have shape {want}, but got shape {value.shape}")


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder found in a video file.

    Attributes:
        path: the file path as given.
        video_id: the id used in output files (the file stem).
        width_px, height_px: decoded frame size after rotation metadata is applied.
        source_fps: the container's average frame rate (may be variable-frame-rate).
        duration_s: duration of the video stream in seconds.
        num_frames: number of frames on the 25 fps analysis timeline.
        fps: frame rate of the analysis timeline (always ``ANALYSIS_FPS``).
        video_codec: decoder name (``h264``, ``hevc``, ...).
        has_audio: whether an audio stream exists.
        audio_codec: audio decoder name or ``None``.
        audio_sample_rate: sample rate of the source audio stream (Hz) or ``None``.
    """

    path: str
    video_id: str
    width_px: int
    height_px: int
    source_fps: float
    duration_s: float
    num_frames: int
    fps: float = ANALYSIS_FPS
    video_codec: str = ""
    has_audio: bool = False
    audio_codec: str | None = None
    audio_sample_rate: int | None = None

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise ValueError(
                f"frame size must be positive, but got {self.width_px}x{self.height_px}"
            )
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, but got {self.fps}")


@dataclass
class Detections:
    """Face detections in one frame (column-oriented, like ``supervision.Detections``).

    Attributes:
        xyxy_px: ``(n, 4)`` float32 boxes ``x1, y1, x2, y2`` in pixels of the decoded frame.
        confidence: ``(n,)`` float32 detector scores in ``[0, 1]``.
    """

    xyxy_px: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        self.xyxy_px = np.asarray(self.xyxy_px, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        _check_array("xyxy_px", self.xyxy_px, 2, 4)
        if len(self.confidence) != len(self.xyxy_px):
            raise ValueError(
                f"confidence must have one value per box ({len(self.xyxy_px)}), "
                f"but got {len(self.confidence)}"
            )

    def __len__(self) -> int:
        return len(self.xyxy_px)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass
class FaceTrack:
    """One face followed over consecutive frames of one shot.

    Attributes:
        track_id: number unique within a video, starting at 0 (``entity_id`` is
            ``f"{video_id}:{track_id}"``).
        frame_indices: ``(T,)`` int64 consecutive frame indices on the 25 fps timeline.
        boxes_xyxy_px: ``(T, 4)`` float32 detector boxes, linearly interpolated over
            detection gaps.
        crop_size_cx_cy_px: ``(T, 3)`` float32 crop geometry: box half-size ``s`` and centre
            ``(cx, cy)`` in pixels, each median-filtered over 13 frames as in the
            TalkNet/Light-ASD demos (``Columbia_test.py``, ``crop_video``).
        detected: ``(T,)`` bool, True where the detector itself found the face (False where
            the box was interpolated).
        confidence: ``(T,)`` float32 detector score (interpolated where not detected).
    """

    track_id: int
    frame_indices: np.ndarray
    boxes_xyxy_px: np.ndarray
    crop_size_cx_cy_px: np.ndarray
    detected: np.ndarray | None = None
    confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        self.boxes_xyxy_px = np.asarray(self.boxes_xyxy_px, dtype=np.float32)
        self.crop_size_cx_cy_px = np.asarray(self.crop_size_cx_cy_px, dtype=np.float32)
        _check_array("frame_indices", self.frame_indices, 1)
        _check_array("boxes_xyxy_px", self.boxes_xyxy_px, 2, 4)
        _check_array("crop_size_cx_cy_px", self.crop_size_cx_cy_px, 2, 3)
        n = len(self.frame_indices)
        if n == 0:
            raise ValueError("a FaceTrack needs at least one frame, but got 0")
        if len(self.boxes_xyxy_px) != n or len(self.crop_size_cx_cy_px) != n:
            raise ValueError(
                f"boxes_xyxy_px and crop_size_cx_cy_px must have {n} rows (one per frame), but "
                f"got {len(self.boxes_xyxy_px)} and {len(self.crop_size_cx_cy_px)}"
            )
        if n > 1 and not np.all(np.diff(self.frame_indices) == 1):
            raise ValueError("frame_indices must be consecutive, but found gaps or repeats")
        if self.detected is None:
            self.detected = np.ones(n, dtype=bool)
        self.detected = np.asarray(self.detected, dtype=bool)
        if self.confidence is None:
            self.confidence = np.ones(n, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        if len(self.detected) != n or len(self.confidence) != n:
            raise ValueError(f"detected and confidence must have {n} values")

    def __len__(self) -> int:
        return len(self.frame_indices)

    @property
    def start_frame(self) -> int:
        return int(self.frame_indices[0])

    @property
    def end_frame(self) -> int:
        """Last frame index (inclusive)."""
        return int(self.frame_indices[-1])


@dataclass(frozen=True)
class SpeakingSegment:
    """A span in which a face track is judged to speak.

    Attributes:
        start_s: start time in seconds (``start_frame / fps``).
        end_s: end time in seconds (exclusive: ``(end_frame + 1) / fps``).
        start_frame, end_frame: inclusive frame indices on the analysis timeline.
        mean_score: mean speaking probability inside the segment.
    """

    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    mean_score: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class TrackScores:
    """Per-frame active-speaker output for one face track.

    Attributes:
        track_id: the ``FaceTrack.track_id`` these scores belong to.
        frame_indices: ``(T,)`` int64 frame indices (same as the track's).
        logits: ``(T,)`` float32 raw model output: class-1 output of the 2-way head
            (``lossAV.FC`` in Light-ASD), averaged over windows.
        probabilities: ``(T,)`` float32 speaking probability in ``[0, 1]`` after smoothing.
        segments: speaking segments derived from ``probabilities``.
        extra: optional named per-frame probabilities (``(T,)`` float32 in [0, 1]), e.g.
            ``lam`` (looking at me) and ``ttm`` (talking to me).
    """

    track_id: int
    frame_indices: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    segments: list[SpeakingSegment] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        self.logits = np.asarray(self.logits, dtype=np.float32)
        self.probabilities = np.asarray(self.probabilities, dtype=np.float32)
        n = len(self.frame_indices)
        for name in ("logits", "probabilities"):
            arr = getattr(self, name)
            _check_array(name, arr, 1)
            if len(arr) != n:
                raise ValueError(f"{name} must have {n} values (one per frame), but got {len(arr)}")
        if n and (np.nanmin(self.probabilities) < 0 or np.nanmax(self.probabilities) > 1):
            raise ValueError("probabilities must lie in [0, 1]")
        if np.isnan(self.probabilities).any():
            raise ValueError("probabilities contain NaN")
        for name, series in list(self.extra.items()):
            arr = np.asarray(series, dtype=np.float32)
            if arr.shape != (n,):
                raise ValueError(
                    f"extra series {name!r} must have shape ({n},) (one value per frame), but got "
                    f"shape {arr.shape}"
                )
            if n and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
                raise ValueError(f"extra series {name!r} must hold probabilities in [0, 1]")
            self.extra[name] = arr


def _check_rows(name: str, value: np.ndarray, n: int, shape_tail: tuple[int, ...], dtype) -> None:
    if not isinstance(value, np.ndarray) or value.shape != (n, *shape_tail):
        got = getattr(value, "shape", type(value).__name__)
        want = ", ".join(str(d) for d in (n, *shape_tail))
        raise ValueError(f"{name} must have shape ({want}), but got {got}")
    if dtype is not None and value.dtype != dtype:
        raise ValueError(f"{name} must be {np.dtype(dtype).name}, but got {value.dtype}")


@dataclass
class FaceEmbedding:
    """The face descriptor of one face track.

    Attributes:
        key: the track's key (the ``FaceTracker`` key; ``track_id`` once the track is built).
        embedding: ``(128,)`` float32, L2-normalised weighted mean of the sampled descriptors.
        frame_indices: ``(n,)`` int64 frames whose faces were described.
        quality: ``(n,)`` float32 their qualities (the averaging weights).
        thumbnail_jpeg: a small JPEG of the best face (RGB, at most 96 px), or None.
    """

    key: int
    embedding: np.ndarray
    frame_indices: np.ndarray
    quality: np.ndarray
    thumbnail_jpeg: bytes | None = None

    def __post_init__(self) -> None:
        self.embedding = np.asarray(self.embedding, dtype=np.float32).reshape(-1)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64).reshape(-1)
        self.quality = np.asarray(self.quality, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(self.embedding)) or self.embedding.size == 0:
            raise ValueError("a face embedding must be a non-empty finite vector")
        if abs(float(np.linalg.norm(self.embedding)) - 1.0) > 1e-3:
            raise ValueError(
                f"a face embedding must be L2-normalised, but its norm is "
                f"{float(np.linalg.norm(self.embedding)):.4f}"
            )
        if len(self.quality) != len(self.frame_indices):
            raise ValueError(
                f"quality must have one value per sampled frame ({len(self.frame_indices)}), "
                f"but got {len(self.quality)}"
            )


@dataclass
class AnalysedTrack:
    """One finished face track from the streaming analysis pass, with what was cut for it.

    Attributes:
        track: the face track (``T`` frames).
        faces_gray112: ``(T, 112, 112)`` uint8 grayscale face crops (the ASD models' input).
        head_pose_deg: ``(T, 3)`` float32 yaw, pitch, roll in degrees (FSA-Net, sampled on
            detection frames and interpolated), or ``None`` when no zero-shot LAM runs.
        rgb_crops: ``{S: (T, S, S, 3) uint8}`` RGB face crops at the trained LAM/TTM models'
            sides, or ``None`` without trained visual LAM/TTM models.
        frame_quality: ``(T,)`` float64 visual quality in [0, 1] (QuAVF), or ``None``.
        face_embedding: the track's face descriptor (for who-is-who across the video), or
            ``None`` when not asked for or no face could be described.
        faces_first_row: ``faces_gray112`` holds the crops of rows ``faces_first_row ..
            T - 1`` (``T - faces_first_row`` of them); the leading rows were handed on
            earlier, while the track was open, as :class:`FaceCropChunk` records.
        track_key: the key of those chunks (the tracker's key of the open track), or
            ``None`` when none was handed on.
    """

    track: FaceTrack
    faces_gray112: np.ndarray
    head_pose_deg: np.ndarray | None = None
    rgb_crops: dict[int, np.ndarray] | None = None
    frame_quality: np.ndarray | None = None
    face_embedding: FaceEmbedding | None = None
    faces_first_row: int = 0
    track_key: int | None = None

    def __post_init__(self) -> None:
        n = len(self.track)
        if not 0 <= self.faces_first_row <= n:
            raise ValueError(
                f"faces_first_row must be in [0, {n}] for a {n}-frame track, "
                f"got {self.faces_first_row}"
            )
        rows = n - self.faces_first_row
        _check_rows("faces_gray112", self.faces_gray112, rows, (112, 112), np.uint8)
        if self.head_pose_deg is not None:
            self.head_pose_deg = np.asarray(self.head_pose_deg, dtype=np.float32)
            _check_rows("head_pose_deg", self.head_pose_deg, n, (3,), None)
        for size, crops in (self.rgb_crops or {}).items():
            _check_rows(f"rgb_crops[{size}]", crops, n, (size, size, 3), np.uint8)
        if self.frame_quality is not None:
            self.frame_quality = np.asarray(self.frame_quality, dtype=np.float64)
            _check_rows("frame_quality", self.frame_quality, n, (), None)


@dataclass
class FaceCropChunk:
    """Leading face crops of a face track that is still open, handed on by the streaming
    analysis pass so that they can be scored (and freed) before the track ends.

    Attributes:
        track_key: identifies the open track (its later chunks and its
            :class:`AnalysedTrack`, which carries the same ``track_key``).
        start_frame: frame index of the first crop on the analysis timeline.
        faces_gray112: ``(W, 112, 112)`` uint8 grayscale crops of frames ``start_frame ..
            start_frame + W - 1``.
        first_row: the track row of the first crop (0 for the track's first chunk).
    """

    track_key: int
    start_frame: int
    faces_gray112: np.ndarray
    first_row: int = 0

    def __post_init__(self) -> None:
        faces = self.faces_gray112
        rows = faces.shape[0] if isinstance(faces, np.ndarray) and faces.ndim else -1
        _check_rows("faces_gray112", faces, rows, (112, 112), np.uint8)
        if self.start_frame < 0 or self.first_row < 0:
            raise ValueError(
                f"start_frame and first_row must be >= 0, got {self.start_frame} and "
                f"{self.first_row}"
            )


@dataclass
class TrackInputs:
    """What the ASD model scores for one face track.

    Attributes:
        track_id: the face track's id.
        faces_gray112: ``(T, 112, 112)`` uint8 grayscale crops at ``ANALYSIS_FPS``.
        mfcc: ``(N, 13)`` float32 MFCC at 100 Hz from the track's first frame
            (``MFCC_FRAMES_PER_VIDEO_FRAME`` per frame; frames beyond ``N // 4`` get no score).
        context: ``(T, 128)`` float32 scene-context term added to the visual embeddings
            (``SceneContextASD.context_term``), or ``None``.
    """

    track_id: int
    faces_gray112: np.ndarray
    mfcc: np.ndarray
    context: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.faces_gray112) if isinstance(self.faces_gray112, np.ndarray) else -1
        _check_rows("faces_gray112", self.faces_gray112, max(n, 0), (112, 112), np.uint8)
        self.mfcc = np.asarray(self.mfcc, dtype=np.float32)
        if self.mfcc.ndim != 2 or self.mfcc.shape[1] != 13:
            raise ValueError(f"mfcc must have shape (N, 13), but got {self.mfcc.shape}")
        if self.context is not None:
            self.context = np.asarray(self.context, dtype=np.float32)
            if self.context.ndim != 2 or len(self.context) != n:
                raise ValueError(
                    f"context must have shape ({n}, D) (one row per face frame), but got "
                    f"{self.context.shape}"
                )

    def __len__(self) -> int:
        return len(self.faces_gray112)
