"""Typed training configuration with the reference implementations' defaults.

Sources of the defaults:

- Light-ASD (Liao et al., CVPR 2023; github.com/Junhua-Liao/Light-ASD ``train.py``, ``ASD.py``,
  ``loss.py``) and LR-ASD (same training code): Adam, ``--lr 0.001``, ``StepLR(step_size=1,
  gamma=--lrDecay 0.95)`` stepped once per epoch, ``--maxEpoch 30``, ``--batchSize 2000`` frames
  per mini-batch; loss ``lossAV + 0.5 * lossV``, both a BCE on ``softmax(logits / r)[:, 1]`` with
  the temperature ``r = 1.3 - 0.02 * (epoch - 1)``.
- TalkNet (Tao et al., ACM MM 2021; github.com/TaoRuijie/TalkNet-ASD ``trainTalkNet.py``,
  ``talkNet.py``, ``loss.py``): Adam, ``--lr 0.0001``, ``--lrDecay 0.95``, ``--maxEpoch 25``,
  ``--batchSize 2500``; loss ``lossAV + 0.4 * lossA + 0.4 * lossV``, each a plain cross-entropy
  (no temperature: ``r = 1``).

- Ego4D Looking-at-Me baseline GazeLSTM (EGO4D/social-interactions branch ``lam``,
  ``common/config.py``, ``run.py``): Adam, lr 5e-4, batch 64, 40 epochs, no schedule,
  ``CrossEntropyLoss(weight=[0.136, 0.864])``.
- QuAVF (Ego4D-QuAVF-TTM-CVPR23 ``common/config.py``, ``common/engine.py``): Adam, lr 1e-5,
  gradient-norm clip 1, class-balanced cross-entropy, each branch trained on its own.

A configuration file (YAML or JSON) holds the same nested keys as :class:`TrainConfig`; missing
keys take the defaults of the chosen ``model.architecture``. Unknown keys are errors. The ASD
architectures read ``data`` (a prepared AVA/UniTalk/TalkSet root); the Ego4D ones read
``ego4d`` (annotations, frames and audio in the layouts of the references).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from socialav.io.text import read_text
from socialav.models.registry import ARCHITECTURES

__all__ = [
    "ARCHITECTURE_NAMES",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "LossConfig",
    "Ego4dDataConfig",
    "TrainConfig",
    "EGO4D_ARCHITECTURES",
    "ConfigError",
    "load_config",
]

#: Architectures ``socialav train`` trains: every entry of :mod:`socialav.models.registry`.
ARCHITECTURE_NAMES: tuple[str, ...] = tuple(ARCHITECTURES)
#: The architectures trained on Ego4D social data (section ``ego4d``) rather than ``data``:
#: those whose registry task is not ``asd``.
EGO4D_ARCHITECTURES: tuple[str, ...] = tuple(
    name for name, spec in ARCHITECTURES.items() if spec.task != "asd"
)


class ConfigError(ValueError):
    """A training configuration has unknown keys or invalid values."""


@dataclass
class DataConfig:
    """Where the data is and how it is batched.

    Attributes:
        root: prepared dataset root (``csv/``, ``clips_videos/``, ``clips_audios/``).
        train_split, val_split: split names; ``val_split=None`` skips validation.
        max_chunk_frames: entities longer than this are cut into chunks (250 = 10 s).
        max_frames_per_batch: frame budget of a mini-batch (Light-ASD ``--batchSize 2000``).
        augment_visual, augment_audio_noise: the reference augmentations (on for training).
        num_workers: DataLoader worker processes (0 = in the main process).
    """

    root: str = ""
    train_split: str = "train"
    val_split: str | None = "val"
    max_chunk_frames: int | None = 250
    max_frames_per_batch: int = 2000
    augment_visual: bool = True
    augment_audio_noise: bool = True
    num_workers: int = 0


@dataclass
class ModelConfig:
    """Architecture, initial weights and which parts train.

    Attributes:
        architecture: ``light-asd``, ``lr-asd``, ``talknet``, ``scene-context`` (ASD; the
            last a Light-ASD / LR-ASD with the TalkNet+DeiT scene branch, trained on a root
            with scene images, ``socialav data talkset --scenes``), ``gaze-lstm`` (LAM),
            ``quavf-visual`` or ``quavf-audio`` (TTM branches), ``av-transformer`` (TTM,
            AV-HuBERT-style, seed 000).
        architecture_config: constructor keyword arguments (e.g. ``{"img_feature_dim": 32,
            "base_width": 8}`` for a debug-size GazeLSTM); ``{}`` gives the reference sizes.
            Stored in every checkpoint.
        init_weights: ``None`` (random init), a weights-registry name (``light-asd-ava``), a
            path to an original checkpoint, or a path to a socialav checkpoint.
        trainable: module-name prefixes that train (e.g. ``["audio_encoder", "backend",
            "av_head"]``); ``None`` trains everything. Others get ``requires_grad=False``.
        freeze_batchnorm: keep batch-norm layers inside frozen parts in eval mode (their
            running statistics stay those of ``init_weights``).
        batchnorm_momentum: momentum of the running statistics of every batch-norm layer
            (``None`` keeps the architecture's: 0.01 in Light-ASD / LR-ASD, i.e. a memory of
            about 100 steps). A from-scratch run of a few dozen steps needs a larger value
            (e.g. 0.3): with 0.01 the running statistics stay near their initial 0 / 1 and
            the model in eval mode (validation, inference) scores at chance.
        cache_visual_embeddings: compute the visual embeddings of every chunk once (eval
            mode) and reuse them in every epoch, training and validation. Only when the
            visual encoder is frozen (``trainable`` set and naming no ``visual_encoder``
            module), ``freeze_batchnorm`` is on and ``data.augment_visual`` is off; the
            embeddings are then exactly what the frozen encoder gives, at a fraction of the
            cost (the visual encoder is ~90 % of Light-ASD's compute).
    """

    architecture: str = "light-asd"
    architecture_config: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    trainable: list[str] | None = None
    freeze_batchnorm: bool = True
    batchnorm_momentum: float | None = None
    cache_visual_embeddings: bool = False


@dataclass
class OptimConfig:
    """Adam with a per-epoch StepLR (``lr * lr_decay ** (epoch - 1)`` in epoch ``epoch``).

    Attributes:
        lr: 1e-3 (Light-ASD / LR-ASD ``--lr``); TalkNet uses 1e-4.
        lr_decay: 0.95 (``--lrDecay``).
        weight_decay: 0 (the references use none).
        grad_clip: maximum gradient norm (``None``: no clipping; QuAVF 1.0).
    """

    lr: float = 1e-3
    lr_decay: float = 0.95
    weight_decay: float = 0.0
    grad_clip: float | None = None


@dataclass
class LossConfig:
    """Weights and temperature schedule of the loss (see :mod:`socialav.training.losses`).

    Attributes:
        temperature_start, temperature_step: ``r = start - step * (epoch - 1)`` (Light-ASD
            1.3 and 0.02; TalkNet 1.0 and 0.0).
        visual_weight: weight of the visual-only auxiliary loss (0.5 Light-ASD, 0.4 TalkNet).
        audio_weight: weight of the audio-only auxiliary loss (TalkNet 0.4; models without an
            audio head must use 0).
        sync_negatives_weight: weight of the in-batch synchrony negatives (0: off; Light-ASD
            and LR-ASD only). Every chunk of a batch with a speaking frame is scored twice
            more with the same faces and wrong audio, every frame labelled not speaking: its
            own audio embeddings shifted in time by ``k`` frames (``|k|`` uniform in
            ``sync_shift_frames_range``, either sign, circularly) and the audio embeddings of
            the next chunk of the batch (when the batch holds two or more). The loss is
            :func:`~socialav.training.losses.softmax_bce` of these logits against 0 -- the
            "same face, other audio" contrast of TalkNet's TalkSet (FAudio) and of SyncNet's
            offset negatives (Chung & Zisserman, ACCV 2016 workshops), built on the fly.
        sync_shift_frames_range: inclusive ``(lo, hi)`` range of ``|k|`` in frames.
        sync_nce_weight: weight of the offset-contrastive synchrony loss
            (:func:`~socialav.training.losses.sync_offset_nce`; 0: off; Light-ASD / LR-ASD).
        sync_nce_max_offset_frames, sync_nce_temperature: its ``K`` and temperature.
        class_weights: Ego4D models only: cross-entropy class weights ``[w_not, w_yes]``,
            ``"balanced"`` (``w_c = N / (2 N_c)`` over the training labels) or ``None``
            (GazeLSTM default ``[0.136, 0.864]``, QuAVF ``"balanced"``).
    """

    temperature_start: float = 1.3
    temperature_step: float = 0.02
    visual_weight: float = 0.5
    audio_weight: float = 0.0
    sync_negatives_weight: float = 0.0
    sync_shift_frames_range: tuple[int, int] = (3, 15)
    sync_nce_weight: float = 0.0
    sync_nce_max_offset_frames: int = 15
    sync_nce_temperature: float = 0.1
    class_weights: list[float] | str | None = None


@dataclass
class Ego4dDataConfig:
    """Ego4D social data for ``gaze-lstm`` / ``quavf-*`` training (layouts of the references).

    Attributes:
        annotations, val_annotations: ``av_train.json`` / ``av_val.json``
            (:func:`socialav.data.ego4d.annotations.load_av_annotations`); ``val_annotations=None``
            skips validation.
        clip_list, val_clip_list: optional official split lists (one clip_uid per line) that
            restrict the clips used.
        frames_dir: extracted frames, ``FRAMES_DIR/<clip_uid>/img_{frame+1:05d}.jpg`` at 30 fps
            (``scripts/extract_frame.sh`` of the baselines; ``socialav data ego4d-frames``).
        audio_dir: ``AUDIO_DIR/<clip_uid>.wav`` 16 kHz mono (``scripts/extract_wave.sh``);
            ``None`` reads the audio of ``videos_dir/<clip_uid>.mp4``.
        videos_dir: the clips (``<clip_uid>.mp4``); used for audio when ``audio_dir`` is not set.
        crop_size_px: face-crop side (224 in both references).
        batch_size: samples per batch (LAM 64; QuAVF visual 64, audio 16).
        lam_stride: every ``lam_stride``-th frame of a track is a LAM sample (1 = all).
        ttm_feat_length, ttm_frame_stride, ttm_data_stride, ttm_score_threshold: QuAVF visual
            windows (:func:`socialav.data.ego4d.samples.build_ttm_visual_windows`; reference
            15, 15, 8, 0.3).
        ttm_max_audio_frames: QuAVF audio: longest sample in video frames (900 = 30 s).
        lip_size_px: ``av-transformer``: side of the lip crops (AV-HuBERT: 88).
    """

    annotations: str = ""
    val_annotations: str | None = None
    clip_list: str | None = None
    val_clip_list: str | None = None
    frames_dir: str = ""
    audio_dir: str | None = None
    videos_dir: str | None = None
    crop_size_px: int = 224
    batch_size: int = 64
    lam_stride: int = 1
    ttm_feat_length: int = 15
    ttm_frame_stride: int = 15
    ttm_data_stride: int = 8
    ttm_score_threshold: float = 0.3
    ttm_max_audio_frames: int = 900
    lip_size_px: int = 88


_ARCH_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "light-asd": {"optim": {"lr": 1e-3}, "loss": {}},
    "lr-asd": {"optim": {"lr": 1e-3}, "loss": {}},
    "scene-context": {"optim": {"lr": 1e-3}, "loss": {}},
    "talknet": {
        "optim": {"lr": 1e-4},
        "loss": {
            "temperature_start": 1.0,
            "temperature_step": 0.0,
            "visual_weight": 0.4,
            "audio_weight": 0.4,
        },
    },
    "gaze-lstm": {
        "optim": {"lr": 5e-4, "lr_decay": 1.0},
        "loss": {"class_weights": [0.136, 0.864]},
        "ego4d": {"batch_size": 64},
    },
    "quavf-visual": {
        "optim": {"lr": 1e-5, "lr_decay": 1.0, "grad_clip": 1.0},
        "loss": {"class_weights": "balanced"},
        "ego4d": {"batch_size": 64},
    },
    "quavf-audio": {
        "optim": {"lr": 1e-5, "lr_decay": 1.0, "grad_clip": 1.0},
        "loss": {"class_weights": "balanced"},
        "ego4d": {"batch_size": 16},
    },
    # Seed 000 fine-tunes AV-HuBERT with fairseq's settings, which are not in its README: these
    # are the usual AV-HuBERT fine-tuning values (Adam, small lr, clipping), not a citation.
    "av-transformer": {
        "optim": {"lr": 1e-4, "lr_decay": 1.0, "grad_clip": 1.0},
        "loss": {"class_weights": "balanced"},
        "ego4d": {"batch_size": 8},
    },
}


@dataclass
class TrainConfig:
    """Everything ``socialav train`` needs.

    Attributes:
        data, model, optim, loss, ego4d: see their classes.
        output_dir: where checkpoints, ``metrics.csv`` and ``config.json`` go.
        epochs: number of epochs (Light-ASD 30, TalkNet 25).
        seed: seeds data order, augmentation, initialisation and dropout.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` ...
        amp: ``auto`` (bf16 autocast on CUDA, none on CPU), ``bf16`` or ``off``.
        checkpoint_every_steps: also save the resumable state every N steps inside an epoch
            (``None``: only at the end of each epoch).
        keep_epoch_checkpoints: write ``model_epoch{NNNN}.pt`` for every epoch.
        num_threads: torch intra-op threads per process (``None`` leaves torch's default).
        training_data: a free-text note stored in every checkpoint (what data, which split).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ego4d: Ego4dDataConfig = field(default_factory=Ego4dDataConfig)
    output_dir: str = "runs/train"
    epochs: int = 30
    seed: int = 0
    device: str = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every_steps: int | None = None
    keep_epoch_checkpoints: bool = True
    num_threads: int | None = None
    training_data: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check values; raises :class:`ConfigError` naming the field, expected and found."""
        checks = [
            (
                self.model.architecture in ARCHITECTURE_NAMES,
                "model.architecture",
                f"one of {ARCHITECTURE_NAMES}",
                self.model.architecture,
            ),
            (self.epochs >= 1, "epochs", ">= 1", self.epochs),
            (
                self.optim.grad_clip is None or self.optim.grad_clip > 0,
                "optim.grad_clip",
                "None or > 0",
                self.optim.grad_clip,
            ),
            (
                self.loss.class_weights is None
                or self.loss.class_weights == "balanced"
                or (
                    isinstance(self.loss.class_weights, list | tuple)
                    and len(self.loss.class_weights) == 2
                    and all(float(w) > 0 for w in self.loss.class_weights)
                ),
                "loss.class_weights",
                "None, 'balanced' or two positive numbers",
                self.loss.class_weights,
            ),
            (
                self.ego4d.batch_size >= 1 and self.ego4d.crop_size_px >= 8,
                "ego4d.batch_size/crop_size_px",
                ">= 1 and >= 8",
                (self.ego4d.batch_size, self.ego4d.crop_size_px),
            ),
            (self.optim.lr > 0, "optim.lr", "> 0", self.optim.lr),
            (0 < self.optim.lr_decay <= 1, "optim.lr_decay", "in (0, 1]", self.optim.lr_decay),
            (self.amp in ("auto", "bf16", "off"), "amp", "auto, bf16 or off", self.amp),
            (
                self.data.max_frames_per_batch >= 1,
                "data.max_frames_per_batch",
                ">= 1",
                self.data.max_frames_per_batch,
            ),
            (self.data.num_workers >= 0, "data.num_workers", ">= 0", self.data.num_workers),
            (
                self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
                "checkpoint_every_steps",
                "None or >= 1",
                self.checkpoint_every_steps,
            ),
            (
                self.loss.visual_weight >= 0 and self.loss.audio_weight >= 0,
                "loss.visual_weight/audio_weight",
                ">= 0",
                (self.loss.visual_weight, self.loss.audio_weight),
            ),
            (
                self.model.architecture == "talknet" or self.loss.audio_weight == 0,
                "loss.audio_weight",
                "0 for architectures without an audio head",
                self.loss.audio_weight,
            ),
            (
                self.model.batchnorm_momentum is None or 0 < self.model.batchnorm_momentum <= 1,
                "model.batchnorm_momentum",
                "None or in (0, 1]",
                self.model.batchnorm_momentum,
            ),
            (
                self.loss.sync_negatives_weight >= 0,
                "loss.sync_negatives_weight",
                ">= 0",
                self.loss.sync_negatives_weight,
            ),
            (
                self.loss.sync_nce_weight >= 0
                and self.loss.sync_nce_max_offset_frames >= 1
                and self.loss.sync_nce_temperature > 0,
                "loss.sync_nce_weight/sync_nce_max_offset_frames/sync_nce_temperature",
                ">= 0, >= 1 and > 0",
                (
                    self.loss.sync_nce_weight,
                    self.loss.sync_nce_max_offset_frames,
                    self.loss.sync_nce_temperature,
                ),
            ),
            (
                self.model.architecture != "talknet"
                or self.loss.sync_negatives_weight + self.loss.sync_nce_weight == 0,
                "loss.sync_negatives_weight",
                "0 for talknet (in-batch negatives need Light-ASD / LR-ASD embeddings)",
                self.loss.sync_negatives_weight,
            ),
            (
                len(self.loss.sync_shift_frames_range) == 2
                and 1
                <= self.loss.sync_shift_frames_range[0]
                <= self.loss.sync_shift_frames_range[1],
                "loss.sync_shift_frames_range",
                "(lo, hi) with 1 <= lo <= hi",
                self.loss.sync_shift_frames_range,
            ),
        ]
        if self.model.cache_visual_embeddings:
            trainable = self.model.trainable
            checks += [
                (
                    trainable is not None
                    and not any("visual_encoder" in p.split(".") or p == "base" for p in trainable),
                    "model.trainable",
                    "a list without visual_encoder modules when cache_visual_embeddings is on",
                    trainable,
                ),
                (
                    self.model.freeze_batchnorm,
                    "model.freeze_batchnorm",
                    "true when cache_visual_embeddings is on",
                    self.model.freeze_batchnorm,
                ),
                (
                    not self.data.augment_visual,
                    "data.augment_visual",
                    "false when cache_visual_embeddings is on (cached faces are not augmented)",
                    self.data.augment_visual,
                ),
                (
                    self.model.architecture != "talknet",
                    "model.architecture",
                    "light-asd or lr-asd when cache_visual_embeddings is on",
                    self.model.architecture,
                ),
            ]
        for ok, name, expected, found in checks:
            if not ok:
                raise ConfigError(f"{name} must be {expected}, but got {found!r}")
        last_r = self.loss.temperature_start - self.loss.temperature_step * (self.epochs - 1)
        if last_r <= 0:
            raise ConfigError(
                f"the temperature r = {self.loss.temperature_start} - "
                f"{self.loss.temperature_step} * (epoch - 1) reaches {last_r:.3f} <= 0 by epoch "
                f"{self.epochs}; use fewer epochs or a smaller temperature_step"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from nested dicts; sections absent from ``values`` use the defaults of
        ``model.architecture`` (see the module docstring).

        Raises:
            ConfigError: unknown keys (listed with the known ones) or invalid values.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"a training config must be a mapping, but got {type(values)}")
        sections = {
            "data": DataConfig,
            "model": ModelConfig,
            "optim": OptimConfig,
            "loss": LossConfig,
            "ego4d": Ego4dDataConfig,
        }
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - top)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys: {sorted(top)}")
        model = values.get("model") or {}
        if not isinstance(model, dict):
            raise ConfigError(f"config section 'model' must be a mapping, got {model!r}")
        arch = model.get("architecture", "light-asd")
        defaults = _ARCH_DEFAULTS.get(arch, {"optim": {}, "loss": {}})
        kwargs: dict[str, Any] = {}
        for name, section_cls in sections.items():
            given = values.get(name) or {}
            if not isinstance(given, dict):
                raise ConfigError(f"config section {name!r} must be a mapping, got {given!r}")
            known = {f.name for f in dataclasses.fields(section_cls)}
            bad = sorted(set(given) - known)
            if bad:
                raise ConfigError(f"unknown keys {bad} in section {name!r}; known: {sorted(known)}")
            kwargs[name] = section_cls(**{**defaults.get(name, {}), **given})
        for key in top - set(sections):
            if key in values:
                kwargs[key] = values[key]
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON training config.

    Args:
        path: the file.
        overrides: top-level keys to replace after reading (e.g. ``{"output_dir": ...}``).

    Raises:
        FileNotFoundError: missing file. ConfigError: bad content.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} not found")
    text = read_text(path, "training config (YAML or JSON)", error=ConfigError)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(f"{path}: reading YAML needs PyYAML; use JSON instead") from exc
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"
            ) from None
    if values is None:
        raise ConfigError(
            f"{path} is empty: expected a mapping of settings such as model:, data:, epochs: "
            "(see configs/*.yaml)"
        )
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings (key: value lines), but the file holds a "
            f"{type(values).__name__}"
        )
    values = dict(values)
    values.update(overrides or {})
    try:
        config = TrainConfig.from_dict(values)
        config.validate()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config
