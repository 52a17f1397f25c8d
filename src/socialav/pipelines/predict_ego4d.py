"""``socialav predict``: trained Ego4D LAM / TTM checkpoints over a split, in the baselines'
evaluation mode, written as the files the challenge server and ``socialav evaluate`` read.

The seeds' "Inference" step (``run.py --eval`` of EGO4D/social-interactions, both branches;
``run.py --eval`` per modality then ``QuAVF.py`` of Ego4D-QuAVF-TTM-CVPR23): every clip of the
annotations (restricted to a split list) is scored by
:func:`socialav.evaluation.ego4d_scoring.score_eval_set` -- the code training's validation
runs, so ``evaluate`` on the written file gives the validation mAP ``train`` recorded for the
checkpoint when both see the same clips and settings.

- ``lam``: one ``gaze-lstm`` checkpoint; one row per (clip, frame, track) of every
  ``lam_stride``-th track frame (the baseline's ``test_stride`` 1 by default).
- ``ttm``: one ``quavf-visual``, one ``quavf-audio``, both (fused per segment by QuAVF's
  quality-aware rule ``(1 - q) p_audio + q p_visual`` with ``q`` the segment's mean visual
  window quality, :func:`~socialav.models.quavf.quality_aware_fusion`; a segment only one
  branch scores keeps that branch's score), or one ``av-transformer``.

Scaling: under ``torchrun`` (``WORLD_SIZE > 1``) every rank scores a shard of the clips
(clip ``i`` on rank ``i mod world_size``), rank 0 gathers the scores and writes one file;
with ``workers > 1`` or a Dask ``cluster`` one task per clip runs on worker processes, each
loading the checkpoints once. Scores are merged in annotation clip order, so the files do
not depend on the sharding (the QuAVF audio branch sees zero-padded batches, whose
composition then differs; see :class:`~socialav.evaluation.ego4d_scoring.Ego4dEvalConfig`).

Clips whose media are missing (no frame folder, no audio) are skipped and listed with the
reason; every output file is written atomically, after all scoring succeeded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from socialav.checkpoints.load import WeightsInfo, load_pretrained
from socialav.data.cluster import ClusterSpec, run_tasks
from socialav.data.ego4d.annotations import Ego4dClip, load_av_annotations, read_split_list
from socialav.data.ego4d.media import ClipAudio, JpegFolderFrames
from socialav.evaluation.ego4d_scoring import (
    EGO4D_EVAL_ARCHITECTURES,
    Ego4dEvalConfig,
    LamScore,
    TtmSegmentScore,
    build_eval_set,
    score_eval_set,
)
from socialav.io.ego4d_submission import (
    ttm_frame_rows,
    write_lam_box_predictions,
    write_lam_submission,
    write_lam_submission_json,
    write_social_groundtruth,
    write_ttm_segment_predictions,
    write_ttm_submission,
    write_ttm_submission_json,
)
from socialav.models.quavf import quality_aware_fusion

logger = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "Ego4dPredictError",
    "PredictConfig",
    "PredictResult",
    "SkippedClip",
    "fuse_ttm_scores",
    "predict_ego4d",
    "write_prediction_files",
]

#: Output layouts per task; the first is the default (the challenge's).
LAYOUTS: dict[str, tuple[str, ...]] = {"lam": ("submission", "boxes"), "ttm": ("frame", "segment")}
_FRAMES_ARCHS = ("gaze-lstm", "quavf-visual", "av-transformer")
_AUDIO_ARCHS = ("quavf-audio", "av-transformer")


class Ego4dPredictError(ValueError):
    """The inputs of ``predict`` cannot give a prediction file (the message says which and
    what was expected)."""


@dataclass(frozen=True)
class PredictConfig:
    """What ``predict`` scores and how.

    Attributes:
        task: ``lam`` or ``ttm``.
        weights: checkpoint files (``socialav train`` output): one for ``lam``; for ``ttm``
            one or two QuAVF branches, or one ``av-transformer``.
        annotations: ``av_{val,test_unannotated}.json``.
        frames_dir: ``<clip_uid>/img_%05d.jpg`` at 30 fps (``socialav data ego4d-media``).
        audio_dir: ``<clip_uid>.wav``; videos_dir: ``<clip_uid>.mp4`` for audio otherwise.
        split_list: one clip_uid per line (``data/split/{val,test}.list``); ``None``: all.
        lam_stride: every ``lam_stride``-th track frame (baseline test 1, val 13).
        batch_size: samples per forward pass; max_audio_frames: QuAVF audio sample cap.
        device: ``cpu``, ``cuda``, ``auto``; num_threads: torch CPU threads (0: unchanged).
    """

    task: str
    weights: tuple[str, ...]
    annotations: str
    frames_dir: str | None = None
    audio_dir: str | None = None
    videos_dir: str | None = None
    split_list: str | None = None
    lam_stride: int = 1
    batch_size: int = 64
    max_audio_frames: int = 900
    device: str = "cpu"
    num_threads: int = 1

    def validate(self) -> None:
        """Raises :class:`Ego4dPredictError` for a bad task, weights count or setting."""
        if self.task not in LAYOUTS:
            raise Ego4dPredictError(f"--task must be one of {sorted(LAYOUTS)}, got {self.task!r}")
        allowed = (1,) if self.task == "lam" else (1, 2)
        if len(self.weights) not in allowed:
            raise Ego4dPredictError(
                f"--task {self.task} takes {' or '.join(map(str, allowed))} --weights, but "
                f"{len(self.weights)} were given"
            )
        for name, value in (("lam_stride", self.lam_stride), ("batch_size", self.batch_size)):
            if value < 1:
                raise Ego4dPredictError(f"{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class SkippedClip:
    """A clip of the annotations that was not scored: ``reason`` (``no frames``, ``no
    audio``) and ``detail`` (the path looked for)."""

    clip_uid: str
    reason: str
    detail: str


@dataclass
class PredictResult:
    """What ``predict`` scored.

    Attributes:
        task: ``lam`` or ``ttm``.
        scores: the final rows: :class:`LamScore` (LAM) or :class:`TtmSegmentScore` (TTM,
            fused when two branches were given), in annotation clip order.
        branches: per architecture, its own scores (TTM: before fusion).
        weights: per checkpoint, ``{"path", "sha256", "architecture"}``.
        clips: clip_uids scored; skipped: clips not scored, with why.
        is_main: ``False`` on torchrun ranks other than 0 (they hold no scores, write nothing).
    """

    task: str
    scores: list[Any] = field(default_factory=list)
    branches: dict[str, list[Any]] = field(default_factory=dict)
    weights: list[dict[str, str]] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)
    is_main: bool = True


# ------------------------------------------------------------------------ checkpoints


def _load_models(
    weights: Sequence[str], task: str, device: str | torch.device
) -> list[tuple[torch.nn.Module, WeightsInfo]]:
    """The checkpoints of one prediction, checked against the task and each other."""
    loaded = [load_pretrained(w, task=task, device=device, what=f"{task.upper()} weights")
              for w in weights]  # fmt: skip
    archs = [info.architecture for _, info in loaded]
    for arch, w in zip(archs, weights, strict=True):
        if arch not in EGO4D_EVAL_ARCHITECTURES:
            raise Ego4dPredictError(f"{w}: {arch!r} checkpoints cannot be scored on Ego4D")
    if len(loaded) == 2 and sorted(archs) != ["quavf-audio", "quavf-visual"]:
        raise Ego4dPredictError(
            "two --weights must be the two QuAVF branches (one quavf-visual and one "
            f"quavf-audio, fused by quality), but got {archs[0]!r} and {archs[1]!r}"
        )
    return loaded


def _contract_int(info: WeightsInfo, key: str, default: int) -> int:
    value = (info.metadata.get("input_contract") or {}).get(key)
    if value is None:
        logger.warning("%s: input contract lacks %r; using %d", info.path, key, default)
        return default
    return int(value)


def _eval_config(info: WeightsInfo, config: PredictConfig) -> Ego4dEvalConfig:
    """The evaluation settings of one checkpoint: the free fields of its input contract that
    its architecture uses (crop size, QuAVF window, mel bands, lip size; the reference sizes
    with a warning when absent) and the run's options."""
    arch = info.architecture
    arch_config = info.metadata.get("architecture_config") or {}
    fields: dict[str, int] = {}
    if arch in ("gaze-lstm", "quavf-visual"):
        fields["crop_size_px"] = _contract_int(info, "face_size_px", 224)
    if arch == "quavf-visual":
        fields["feat_length"] = _contract_int(
            info, "feat_length", int(arch_config.get("feat_length", 15))
        )
        fields["frame_stride"] = _contract_int(info, "frame_stride", 15)
    if arch == "quavf-audio":
        fields["n_mels"] = _contract_int(info, "n_mels", int(arch_config.get("n_mels", 80)))
    if arch == "av-transformer":
        fields["lip_size_px"] = _contract_int(info, "lip_size_px", 88)
    return Ego4dEvalConfig(
        lam_stride=config.lam_stride,
        max_audio_frames=config.max_audio_frames,
        batch_size=config.batch_size,
        **fields,
    )


# ---------------------------------------------------------------------------- clips


def _select_clips(config: PredictConfig) -> list[Ego4dClip]:
    clips = load_av_annotations(config.annotations)
    if config.split_list is None:
        return clips
    path = Path(config.split_list)
    if not path.is_file():
        raise FileNotFoundError(f"--split-list {path} not found")
    wanted = read_split_list(path)
    known = {c.clip_uid for c in clips}
    unknown = [uid for uid in wanted if uid not in known]
    if unknown:
        raise Ego4dPredictError(
            f"--split-list {path} names {len(unknown)} clip(s) that are not in "
            f"{config.annotations}: {unknown[:5]}; expected clip_uids of its clips "
            f"({len(known)} there, e.g. {sorted(known)[:3]})"
        )
    keep = set(wanted)
    return [c for c in clips if c.clip_uid in keep]


def _media_check(
    clips: Sequence[Ego4dClip], config: PredictConfig, archs: Sequence[str]
) -> tuple[list[Ego4dClip], list[SkippedClip]]:
    """Clips whose frames / audio the architectures need exist, and the others with why."""
    needs_frames = any(a in _FRAMES_ARCHS for a in archs)
    needs_audio = any(a in _AUDIO_ARCHS for a in archs)
    if needs_frames and not config.frames_dir:
        raise Ego4dPredictError(
            f"{', '.join(archs)} needs the clips' frames: give --frames FRAMES_DIR "
            "(<clip_uid>/img_00001.jpg ..., `socialav data ego4d-media`)"
        )
    if needs_frames and not Path(config.frames_dir).is_dir():  # type: ignore[arg-type]
        raise FileNotFoundError(f"--frames {config.frames_dir} is not a folder")
    if needs_audio and not (config.audio_dir or config.videos_dir):
        raise Ego4dPredictError(
            f"{', '.join(archs)} needs the clips' audio: give --audio-dir AUDIO_DIR "
            "(<clip_uid>.wav, `socialav data ego4d-media --audio`)"
        )
    kept, skipped = [], []
    for clip in clips:
        uid = clip.clip_uid
        if needs_frames and not (Path(config.frames_dir) / uid).is_dir():  # type: ignore[arg-type]
            skipped.append(SkippedClip(uid, "no frames", str(Path(config.frames_dir) / uid)))  # type: ignore[arg-type]
            continue
        if needs_audio:
            audio = (
                Path(config.audio_dir) / f"{uid}.wav"
                if config.audio_dir
                else Path(config.videos_dir) / f"{uid}.mp4"  # type: ignore[arg-type]
            )
            if not audio.is_file():
                skipped.append(SkippedClip(uid, "no audio", str(audio)))
                continue
        kept.append(clip)
    return kept, skipped


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Shard:
    """One task: score these clips with these checkpoints (picklable)."""

    config: PredictConfig
    clips: tuple[Ego4dClip, ...]


_MODELS: dict[tuple[tuple[str, ...], str, str], list] = {}


def _models_for(config: PredictConfig, device: str | torch.device) -> list:
    """The checkpoints, loaded once per process."""
    key = (config.weights, config.task, str(device))
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = _load_models(config.weights, config.task, device)
    return _MODELS[key]


def _score_shard(
    shard: _Shard,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[Any]]:
    """``architecture -> scores`` of the shard's clips (each model over all of them)."""
    config = shard.config
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = device or _resolve_device(config.device)
    clips = list(shard.clips)
    frames = JpegFolderFrames(config.frames_dir) if config.frames_dir else None
    out: dict[str, list[Any]] = {}
    for model, info in _models_for(config, device):
        audio = None
        if info.architecture in _AUDIO_ARCHS:
            audio = ClipAudio([c.clip_uid for c in clips], config.audio_dir, config.videos_dir)
        eval_set = build_eval_set(
            info.architecture, clips, _eval_config(info, config), frames=frames, audio=audio
        )
        out[info.architecture] = score_eval_set(model, eval_set, device, progress)
    return out


def _resolve_device(name: str) -> torch.device:
    from socialav.training.distributed import resolve_device

    return resolve_device(name, int(os.environ.get("LOCAL_RANK", "0")))


def _merge(parts: Sequence[dict[str, list[Any]]], order: Sequence[str]) -> dict[str, list[Any]]:
    """Concatenate per-shard scores in clip order (stable within a clip)."""
    rank = {uid: i for i, uid in enumerate(order)}
    merged: dict[str, list[Any]] = {}
    for part in parts:
        for arch, rows in part.items():
            merged.setdefault(arch, []).extend(rows)
    for arch, rows in merged.items():
        merged[arch] = [
            r for _, r in sorted(enumerate(rows), key=lambda t: (rank[t[1].clip_uid], t[0]))
        ]
    return merged


def fuse_ttm_scores(
    visual: Sequence[TtmSegmentScore], audio: Sequence[TtmSegmentScore], order: Sequence[str]
) -> list[TtmSegmentScore]:
    """QuAVF's quality-aware fusion per segment: ``(1 - q) p_audio + q p_visual``
    (``QuAVF.py``; :func:`~socialav.models.quavf.quality_aware_fusion`) with ``q`` the
    visual branch's mean window quality of the segment. A segment scored by one branch only
    (the visual branch skips camera-wearer segments and frames without a face) keeps that
    branch's score. Rows come in clip order (``order``), then segment index.

    Example (hand check): ``p_a = 0.8, p_v = 0.2, q = 0.25`` -> ``0.65``.
    """
    by_visual = {(s.clip_uid, s.segment_index): s for s in visual}
    by_audio = {(s.clip_uid, s.segment_index): s for s in audio}
    rank = {uid: i for i, uid in enumerate(order)}
    keys = sorted(set(by_visual) | set(by_audio), key=lambda k: (rank[k[0]], k[1]))
    out = []
    for key in keys:
        v, a = by_visual.get(key), by_audio.get(key)
        if v is None or a is None:
            out.append(v or a)  # type: ignore[arg-type]
            continue
        fused = quality_aware_fusion(
            torch.tensor(a.score, dtype=torch.float64),
            torch.tensor(v.score, dtype=torch.float64),
            torch.tensor(float(v.quality or 0.0), dtype=torch.float64),
        )
        out.append(
            TtmSegmentScore(
                a.clip_uid,
                a.segment_index,
                a.start_frame,
                a.end_frame,
                a.person_id,
                float(fused),
                a.label,
                v.quality,
            )
        )
    return out


def predict_ego4d(
    config: PredictConfig,
    *,
    workers: int = 1,
    cluster: str | ClusterSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Score a split with trained checkpoints (module docstring). Writes nothing: see
    :func:`write_prediction_files`.

    Args:
        workers: local worker processes (one task per clip); cluster: a Dask scheduler or
            ``local:N`` (:mod:`socialav.data.cluster`). Under torchrun both are ignored: the
            ranks shard the clips.
        progress: ``progress(done, total)`` over clips (over batches when inline).

    Returns:
        The :class:`PredictResult` (on torchrun ranks other than 0 one with no scores).

    Raises:
        Ego4dPredictError: a bad option, weights that do not fit together, a split list
            naming unknown clips, no clip with media, nothing to score.
        FileNotFoundError: missing annotations, split list, checkpoint or frames folder.
        socialav.checkpoints.format.CheckpointError: a checkpoint of another task or
            unreadable (expected vs found).
        socialav.data.ego4d.annotations.Ego4dAnnotationError: malformed annotations.
    """
    config.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return _predict_distributed(config, progress)
    device = _resolve_device(config.device)
    archs = [info.architecture for _, info in _models_for(config, device)]
    clips, skipped = _plan(config, archs)
    order = [c.clip_uid for c in clips]
    if workers == 1 and cluster is None:
        parts = [_score_shard(_Shard(config, tuple(clips)), device, progress)]
    else:
        shards = [_Shard(config, (c,)) for c in clips]
        parts = []
        for done, (_, part) in enumerate(
            run_tasks(_score_shard, shards, workers=workers, cluster=cluster, name="predict"),
            start=1,
        ):
            parts.append(part)
            if progress is not None:
                progress(done, len(shards))
    return _result(config, _merge(parts, order), order, skipped, device)


def _plan(config: PredictConfig, archs: Sequence[str]) -> tuple[list[Ego4dClip], list]:
    clips = _select_clips(config)
    if not clips:
        raise Ego4dPredictError(f"no clips to score in {config.annotations}")
    kept, skipped = _media_check(clips, config, archs)
    if not kept:
        first = skipped[0]
        raise Ego4dPredictError(
            f"none of the {len(clips)} annotated clips has its media: e.g. clip "
            f"{first.clip_uid!r}: {first.reason} (expected {first.detail})"
        )
    for s in skipped:
        logger.warning("skipping clip %s: %s (%s)", s.clip_uid, s.reason, s.detail)
    return kept, skipped


def _result(
    config: PredictConfig,
    branches: dict[str, list[Any]],
    order: Sequence[str],
    skipped: list[SkippedClip],
    device: str | torch.device,
) -> PredictResult:
    infos = [info for _, info in _models_for(config, device)]
    if config.task == "ttm" and len(branches) == 2:
        scores = fuse_ttm_scores(branches["quavf-visual"], branches["quavf-audio"], order)
    else:
        scores = branches[infos[0].architecture]
    if not scores:
        raise Ego4dPredictError(
            f"nothing to score: the {len(order)} clips with media have no "
            f"{'face track' if config.task == 'lam' else 'talking segment'} the model takes"
        )
    return PredictResult(
        task=config.task,
        scores=scores,
        branches=branches,
        weights=[
            {"path": str(i.path), "sha256": i.sha256, "architecture": i.architecture} for i in infos
        ],
        clips=list(order),
        skipped=skipped,
    )


def _predict_distributed(
    config: PredictConfig, progress: Callable[[int, int], None] | None
) -> PredictResult:
    """torchrun: rank ``r`` scores clips ``r, r + W, ...``; rank 0 gathers and merges."""
    import torch.distributed as dist

    from socialav.training.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed(config.device)
    try:
        archs = [info.architecture for _, info in _models_for(config, ctx.device)]
        clips, skipped = _plan(config, archs)
        order = [c.clip_uid for c in clips]
        mine = tuple(clips[ctx.rank :: ctx.world_size])
        part = _score_shard(_Shard(config, mine), ctx.device, progress) if mine else {}
        gathered: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(gathered, part)
        if not ctx.is_main:
            return PredictResult(task=config.task, is_main=False)
        return _result(config, _merge(gathered, order), order, skipped, ctx.device)
    finally:
        shutdown_distributed(ctx)


# --------------------------------------------------------------------------- writing


def _lam_rows(scores: Sequence[LamScore], layout: str) -> tuple[list, list]:
    if layout == "submission":
        pred = [(s.clip_uid, str(s.frame), s.track_id, s.score) for s in scores]
        gt = [(s.clip_uid, str(s.frame), s.track_id, s.label) for s in scores]
        return pred, gt
    pred = [(s.clip_uid, s.frame, *s.box_xyxy_px, s.track_id, s.score) for s in scores]
    gt = [(s.clip_uid, s.frame, *map(float, s.box_xyxy_px), s.track_id, s.label) for s in scores]
    return pred, gt


def _ttm_frames(scores: Sequence[TtmSegmentScore]) -> dict[str, range]:
    return {s.segment_id: range(s.start_frame, s.end_frame + 1) for s in scores}


def write_prediction_files(
    result: PredictResult,
    output: str | os.PathLike[str],
    *,
    layout: str | None = None,
    json_path: str | os.PathLike[str] | None = None,
    groundtruth: str | os.PathLike[str] | None = None,
) -> int:
    """Write the predictions (and optionally the EvalAI JSON and the matching ground truth).

    Layouts (:mod:`socialav.io.ego4d_submission`): LAM ``submission`` (default:
    ``video_id,unique_id,track_id,1,score`` with ``unique_id`` the clip frame) or ``boxes``
    (the baseline's validation ``pred.csv``); TTM ``frame`` (default: ``seg_id,frame_id,1,
    score`` for every frame of a segment, ``seg_id`` = ``clip_uid:segment_index``, as the
    baseline's ``test_PostProcessor``) or ``segment`` (the validation ``pred.csv``, one row
    per segment: the rows training's validation mAP is computed on). ``groundtruth`` writes
    the annotations' labels of the same rows in the matching layout.

    Returns:
        The number of prediction rows.

    Raises:
        Ego4dPredictError: an unknown layout; SubmissionError: rows that cannot be written.
    """
    task = result.task
    layout = layout or LAYOUTS[task][0]
    if layout not in LAYOUTS[task]:
        raise Ego4dPredictError(
            f"--layout for --task {task} must be one of {list(LAYOUTS[task])}, got {layout!r}"
        )
    if task == "lam":
        pred, gt = _lam_rows(result.scores, layout)
        json_rows = [(s.clip_uid, str(s.frame), s.track_id, s.score) for s in result.scores]
        writer = write_lam_submission if layout == "submission" else write_lam_box_predictions
        num_keys = 3 if layout == "submission" else 0
        count = writer(pred, output)  # type: ignore[operator]
        if json_path is not None:
            write_lam_submission_json(json_rows, json_path)
    else:
        scores = {s.segment_id: s.score for s in result.scores}
        frame_rows = ttm_frame_rows(scores, _ttm_frames(result.scores))
        if layout == "frame":
            count = write_ttm_submission(frame_rows, output)
            labels = {s.segment_id: s.label for s in result.scores}
            gt = [(seg, f, labels[seg]) for seg, f, _ in frame_rows]
            num_keys = 2
        else:
            pred = [
                (s.clip_uid, s.segment_index, s.start_frame, s.end_frame, s.score)
                for s in result.scores
            ]
            count = write_ttm_segment_predictions(pred, output)
            gt = [
                (s.clip_uid, s.segment_index, s.start_frame, s.end_frame, s.label)
                for s in result.scores
            ]
            num_keys = 2
        if json_path is not None:
            write_ttm_submission_json(frame_rows, json_path)
    if groundtruth is not None:
        write_social_groundtruth(gt, groundtruth, num_keys)
    return count
