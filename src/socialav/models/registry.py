"""The architectures socialav can build, train and save: name -> constructor and input contract.

A socialav checkpoint names its architecture, the keyword arguments it was built with
(``architecture_config``) and the *input contract* of the data it was trained on; loading
rebuilds the model from these (:func:`build_architecture`) and refuses a contract whose fixed
fields differ from what socialav feeds that architecture (:func:`check_contract`).

Contracts have two parts:

- ``fixed``: what the code that feeds the model hard-wires (frame rate, audio features, face
  channels and normalisation). A checkpoint that says otherwise would be fed wrongly.
- free fields: settings the data pipeline takes from the checkpoint (e.g. the face-crop side
  of an Ego4D model, 224 px in the baselines, smaller in smoke runs). Stored, not checked.

Architectures (``task`` says what the model predicts):

=====================  ===========  =====================================================
name                   task         class
=====================  ===========  =====================================================
``light-asd``          asd          :class:`~socialav.models.light_asd.LightASD`
``lr-asd``             asd          :class:`~socialav.models.lr_asd.LRASD`
``talknet``            asd          :class:`~socialav.models.talknet.TalkNet`
``gaze-lstm``          lam          :class:`~socialav.models.gaze_lstm.GazeLSTM`
``quavf-visual``       ttm-visual   :class:`~socialav.models.quavf.QuavfVisualBranch`
``quavf-audio``        ttm-audio    :class:`~socialav.models.quavf.QuavfAudioBranch`
``av-transformer``     ttm          :class:`~socialav.models.av_transformer.AVTransformerTTM`
``scene-context``      asd          :class:`~socialav.models.scene_context.SceneContextASD`
=====================  ===========  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from socialav.models.av_transformer import AVTransformerTTM, build_av_transformer
from socialav.models.gaze_lstm import GazeLSTM
from socialav.models.light_asd import (
    FACE_PIXEL_MEAN,
    FACE_PIXEL_STD,
    FACE_SIZE_PX,
    NUM_MFCC,
    LightASD,
)
from socialav.models.lr_asd import LRASD
from socialav.models.quavf import QuavfAudioBranch, QuavfVisualBranch
from socialav.models.scene_context import SceneContextASD, build_scene_context_asd
from socialav.models.talknet import TalkNet
from socialav.types import (
    ANALYSIS_FPS,
    AUDIO_SAMPLE_RATE,
    EGO4D_FPS,
    MFCC_FRAMES_PER_VIDEO_FRAME,
    MFCC_RATE_HZ,
)

__all__ = [
    "ASD_INPUT_CONTRACT",
    "EGO4D_FACE_CONTRACT",
    "EGO4D_AUDIO_CONTRACT",
    "EGO4D_LIPS_CONTRACT",
    "SCENE_CONTEXT_INPUT_CONTRACT",
    "ArchitectureSpec",
    "ARCHITECTURES",
    "UnknownArchitectureError",
    "architecture_spec",
    "architectures_for_task",
    "architecture_name_of",
    "build_architecture",
    "contract_differences",
]

#: What the ASD models take (see ``socialav.models.light_asd``): all fixed.
ASD_INPUT_CONTRACT: dict[str, Any] = {
    "fps": ANALYSIS_FPS,
    "audio_sample_rate": AUDIO_SAMPLE_RATE,
    "audio_features": "mfcc",
    "mfcc_num_coefficients": NUM_MFCC,
    "mfcc_rate_hz": MFCC_RATE_HZ,
    "mfcc_frames_per_video_frame": MFCC_FRAMES_PER_VIDEO_FRAME,
    "mfcc_library": "python_speech_features (numcep=13, winlen=0.025, winstep=0.010)",
    "face_size_px": FACE_SIZE_PX,
    "face_channels": "gray",
    "face_normalisation": f"(x / 255 - {FACE_PIXEL_MEAN}) / {FACE_PIXEL_STD}",
}

#: Fixed part of what GazeLSTM and the QuAVF visual branch take: RGB face crops of the Ego4D
#: baselines (``crop_face_box``), ImageNet-normalised, frames of the 30 fps clip timeline.
EGO4D_FACE_CONTRACT: dict[str, Any] = {
    "fps": EGO4D_FPS,
    "face_channels": "rgb",
    "face_crop": "box corners clamped at 0, cv2.resize bilinear (Ego4D LAM _get_video)",
    "face_normalisation": "(x / 255 - imagenet_mean) / imagenet_std",
}

#: Fixed part of what the QuAVF audio branch takes (``log_mel_spectrogram``).
EGO4D_AUDIO_CONTRACT: dict[str, Any] = {
    "fps": EGO4D_FPS,
    "audio_sample_rate": AUDIO_SAMPLE_RATE,
    "audio_features": "log-mel (HTK filters, 25 ms Hann, 10 ms hop, Whisper normalisation)",
}


#: What the scene-context ASD model takes (:mod:`socialav.models.scene_context`): the ASD
#: contract plus one full-scene image per video frame. Free field: ``scene_size_px`` (``S``;
#: the model's ``SceneViTConfig.image_size_px``, 112 by default).
SCENE_CONTEXT_INPUT_CONTRACT: dict[str, Any] = {
    **ASD_INPUT_CONTRACT,
    "scene_input": "full frame resized to S x S (cv2.INTER_AREA, aspect not kept), RGB / 255",
    "scene_frames": "one per video frame of the fps timeline, shared by all faces of the frame",
}


#: Fixed part of what the AV-HuBERT-style TTM model takes (:mod:`socialav.data.ego4d.avhubert`):
#: 25 fps steps over 30 fps Ego4D sub-clips, gray lip crops, stacked filterbanks. Free field:
#: ``lip_size_px``.
EGO4D_LIPS_CONTRACT: dict[str, Any] = {
    "fps": 25.0,
    "clip_fps": EGO4D_FPS,
    "lip_channels": "gray",
    "lip_crop": "lower half of the face box, crop_face_box, 0..255 (normalised in the model)",
    "audio_features": "26 log-mel at 100 Hz stacked by 4 (python_speech_features logfbank), "
    "layer-normed per step",
}


class UnknownArchitectureError(ValueError):
    """An architecture name socialav does not know."""


@dataclass(frozen=True)
class ArchitectureSpec:
    """One buildable architecture.

    Attributes:
        name: registry name (stored in checkpoints).
        task: ``asd``, ``lam``, ``ttm-visual`` or ``ttm-audio``.
        model_class: the ``nn.Module`` class.
        fixed_contract: input-contract fields a checkpoint must match.
        build: ``build(**architecture_config) -> nn.Module`` (defaults: the reference sizes).
    """

    name: str
    task: str
    model_class: type[nn.Module]
    fixed_contract: Mapping[str, Any]
    build: Callable[..., nn.Module] = field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.build is None:
            object.__setattr__(self, "build", self.model_class)


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    spec.name: spec
    for spec in (
        ArchitectureSpec("light-asd", "asd", LightASD, ASD_INPUT_CONTRACT),
        ArchitectureSpec("lr-asd", "asd", LRASD, ASD_INPUT_CONTRACT),
        ArchitectureSpec("talknet", "asd", TalkNet, ASD_INPUT_CONTRACT),
        ArchitectureSpec("gaze-lstm", "lam", GazeLSTM, EGO4D_FACE_CONTRACT),
        ArchitectureSpec("quavf-visual", "ttm-visual", QuavfVisualBranch, EGO4D_FACE_CONTRACT),
        ArchitectureSpec("quavf-audio", "ttm-audio", QuavfAudioBranch, EGO4D_AUDIO_CONTRACT),
        ArchitectureSpec(
            "av-transformer",
            "ttm",
            AVTransformerTTM,
            EGO4D_LIPS_CONTRACT,
            build=build_av_transformer,
        ),
        ArchitectureSpec(
            "scene-context",
            "asd",
            SceneContextASD,
            SCENE_CONTEXT_INPUT_CONTRACT,
            build=build_scene_context_asd,
        ),
    )
}


def architecture_spec(name: str) -> ArchitectureSpec:
    """The :class:`ArchitectureSpec` called ``name``.

    Raises:
        UnknownArchitectureError: naming the known architectures.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"architecture must be one of {sorted(ARCHITECTURES)}, but got {name!r}"
        ) from None


def architectures_for_task(task: str) -> tuple[str, ...]:
    """Registered architectures that predict ``task``: those whose task is ``task`` or, for a
    task without a branch suffix, one of its branches (``ttm`` -> ``ttm``, ``ttm-visual``,
    ``ttm-audio``). Empty for an unknown task."""
    return tuple(
        name
        for name, spec in ARCHITECTURES.items()
        if spec.task == task or spec.task.startswith(f"{task}-")
    )


def build_architecture(name: str, config: Mapping[str, Any] | None = None) -> nn.Module:
    """A randomly initialised model of architecture ``name`` built with ``config`` kwargs.

    Raises:
        UnknownArchitectureError: unknown name.
        ValueError: ``config`` holds arguments the constructor does not take (named).
    """
    spec = architecture_spec(name)
    try:
        return spec.build(**dict(config or {}))
    except TypeError as err:
        raise ValueError(
            f"architecture_config {dict(config or {})!r} does not fit {name} "
            f"({spec.model_class.__name__}): {err}"
        ) from None


def architecture_name_of(model: nn.Module) -> str:
    """The registry name of a model instance (exact class match).

    Raises:
        UnknownArchitectureError: a class outside the registry.
    """
    for spec in ARCHITECTURES.values():
        if type(model) is spec.model_class:
            return spec.name
    raise UnknownArchitectureError(
        f"{type(model).__name__} is not a registered architecture ({sorted(ARCHITECTURES)})"
    )


def contract_differences(name: str, found: Mapping[str, Any]) -> list[str]:
    """Fixed contract fields of architecture ``name`` that ``found`` does not match, as
    ``"field: expected X, found Y"`` lines (empty when it fits)."""
    fixed = architecture_spec(name).fixed_contract
    return [
        f"{key}: expected {fixed[key]!r}, found {found.get(key, '<missing>')!r}"
        for key in fixed
        if found.get(key) != fixed[key]
    ]
