"""Training of the lip-landmark x MFCC synchrony head (:class:`~socialav.models.lip_sync.LipSyncNet`).

Examples are windows of one-speaker clips (:class:`~socialav.evaluation.asd_benchmarks.BenchmarkClip`
with lip landmarks). Each window's lips are shown with one audio: its own (labels = its
speech), its own shifted by 4-25 frames, another sentence of the same speaker (GRID s1's
hardest negatives: same face, same voice) or another speaker's audio (all labels 0). Binary
cross-entropy per frame. Hands on a checkpoint file and per-epoch validation numbers; the
recipe and results are in docs/sync_finetuning.md ("Round two").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from socialav.audio.features import track_mfcc
from socialav.evaluation.asd_benchmarks import BenchmarkClip
from socialav.evaluation.ava import average_precision_voc
from socialav.io.atomic import atomic_output_path
from socialav.models.lip_sync import LipSyncNet
from socialav.types import ANALYSIS_FPS, AUDIO_SAMPLE_RATE, MFCC_FRAMES_PER_VIDEO_FRAME
from socialav.vision.lip_landmarks import LIP_FEATURE_DIM, lip_motion_features

__all__ = [
    "LipSyncConfig",
    "SyncTrack",
    "prepare_tracks",
    "train_lip_sync",
    "save_lip_sync",
    "load_lip_sync",
]

_M = MFCC_FRAMES_PER_VIDEO_FRAME
#: Kinds of audio a training window is shown with.
KINDS = ("own", "shifted", "other_sentence", "other_speaker")


@dataclass
class LipSyncConfig:
    """Recipe of :func:`train_lip_sync`.

    Attributes:
        window_frames: frames per training window (clips shorter than this are not used).
        batch_size: windows per step.
        steps_per_epoch, epochs: optimisation length.
        lr: Adam learning rate (decayed by ``lr_decay`` per epoch).
        kind_probabilities: chance of each audio kind (:data:`KINDS` order).
        shift_frames: ``(min, max)`` absolute audio shift of ``shifted`` windows.
        group_weights: chance of drawing a window from each training group (cache), in
            the order of the groups given; None: in proportion to the clips.
        hidden: width of the network.
        feature_noise: std of Gaussian noise added to the lip features.
        feature_scale: ``(min, max)`` of a random factor on each window's lip features
            (how much lips move differs from person to person and with the landmarker).
        mfcc_cmvn: the network subtracts each sequence's mean MFCC.
        dropout: of the network.
        energy_jitter: the MFCC log-energy column is moved by up to this much (a gain
            change of the audio).
        seed: random seed.
    """

    window_frames: int = 50
    batch_size: int = 64
    steps_per_epoch: int = 200
    epochs: int = 10
    lr: float = 1e-3
    lr_decay: float = 0.85
    kind_probabilities: tuple[float, float, float, float] = (0.4, 0.2, 0.2, 0.2)
    shift_frames: tuple[int, int] = (4, 25)
    group_weights: tuple[float, ...] | None = None
    hidden: int = 96
    feature_noise: float = 0.02
    feature_scale: tuple[float, float] = (1.0, 1.0)
    mfcc_cmvn: bool = False
    dropout: float = 0.2
    energy_jitter: float = 1.5
    seed: int = 0


@dataclass
class SyncTrack:
    """A clip ready for sampling: lip features, MFCC of all its audio, speech labels.

    Attributes:
        name, speaker: the clip's.
        lips: ``(T, 47)`` float32.
        mfcc: ``(4 Ta, 13)`` float32 of the audio from the track's first frame, ``Ta >= T``
            when the audio runs past the track (shifts may use it).
        speech: ``(T,)`` bool.
    """

    name: str
    speaker: str
    lips: np.ndarray
    mfcc: np.ndarray
    speech: np.ndarray

    @property
    def audio_frames(self) -> int:
        return len(self.mfcc) // _M


def prepare_tracks(clips: Sequence[BenchmarkClip]) -> list[SyncTrack]:
    """:class:`SyncTrack` of every clip that has lip landmarks.

    Raises:
        ValueError: a clip has no ``mouth_points``.
    """
    hop = AUDIO_SAMPLE_RATE // int(ANALYSIS_FPS)
    tail = AUDIO_SAMPLE_RATE * 15 // 1000  # track_mfcc reads 15 ms past a span
    out = []
    for c in clips:
        if c.mouth_points is None:
            raise ValueError(f"clip {c.name!r} has no lip landmarks (mouth_points)")
        audio_frames = max(len(c.faces), (len(c.audio) - tail) // hop)
        out.append(
            SyncTrack(
                c.name,
                c.speaker_id,
                lip_motion_features(c.mouth_points),
                track_mfcc(c.audio, 0, audio_frames - 1),
                np.asarray(c.speech, bool),
            )
        )
    return out


class _Sampler:
    """Draws training windows (lips, mfcc, labels, kind) from groups of tracks."""

    def __init__(self, groups: Sequence[Sequence[SyncTrack]], cfg: LipSyncConfig, seed: int):
        w = cfg.window_frames
        self.groups = [[t for t in g if len(t.lips) >= w] for g in groups]
        if any(not g for g in self.groups):
            raise ValueError(f"every training group needs clips of at least {w} frames")
        self.all = [t for g in self.groups for t in g]
        self.by_speaker: dict[str, list[SyncTrack]] = {}
        for t in self.all:
            self.by_speaker.setdefault(t.speaker, []).append(t)
        sizes = np.array([len(g) for g in self.groups], float)
        weights = np.array(cfg.group_weights, float) if cfg.group_weights else sizes
        if len(weights) != len(self.groups):
            raise ValueError(
                f"group_weights has {len(weights)} values for {len(self.groups)} groups"
            )
        self.group_p = weights / weights.sum()
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)

    def _audio(self, track: SyncTrack, start: int) -> np.ndarray:
        w = self.cfg.window_frames
        return track.mfcc[_M * start : _M * (start + w)]

    def window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        cfg, rng, w = self.cfg, self.rng, self.cfg.window_frames
        group = self.groups[rng.choice(len(self.groups), p=self.group_p)]
        track = group[rng.integers(len(group))]
        start = int(rng.integers(len(track.lips) - w + 1))
        lips = track.lips[start : start + w]
        kind = KINDS[rng.choice(len(KINDS), p=cfg.kind_probabilities)]
        labels = np.zeros(w, np.float32)
        mfcc = None
        if kind == "shifted":
            lo, hi = cfg.shift_frames
            shifts = [
                s
                for s in range(-hi, hi + 1)
                if abs(s) >= lo and 0 <= start + s <= track.audio_frames - w
            ]
            if shifts:
                mfcc = self._audio(track, start + int(rng.choice(shifts)))
        elif kind in ("other_sentence", "other_speaker"):
            same = kind == "other_sentence"
            pool = [
                t
                for t in (self.by_speaker[track.speaker] if same else self.all)
                if t is not track and (t.speaker == track.speaker) == same and t.audio_frames >= w
            ]
            if pool:
                other = pool[rng.integers(len(pool))]
                mfcc = self._audio(other, int(rng.integers(other.audio_frames - w + 1)))
        if mfcc is None:  # own audio (or a kind this track cannot give)
            kind = "own"
            mfcc = self._audio(track, start)
            labels = track.speech[start : start + w].astype(np.float32)
        return lips, mfcc, labels, kind

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lips, mfcc, labels = [], [], []
        for _ in range(size):
            x, a, y, _ = self.window()
            lips.append(x)
            mfcc.append(a)
            labels.append(y)
        lips_t = torch.from_numpy(np.stack(lips))
        mfcc_t = torch.from_numpy(np.stack(mfcc).copy())
        lo, hi = self.cfg.feature_scale
        if (lo, hi) != (1.0, 1.0):
            factor = np.exp(self.rng.uniform(np.log(lo), np.log(hi), (size, 1, 1)))
            lips_t = lips_t * torch.from_numpy(factor.astype(np.float32))
        if self.cfg.feature_noise:
            lips_t = lips_t + self.cfg.feature_noise * torch.randn_like(lips_t)
        if self.cfg.energy_jitter:
            jitter = self.rng.uniform(-1, 1, (size, 1)).astype(np.float32)
            mfcc_t[:, :, 0] += torch.from_numpy(jitter * self.cfg.energy_jitter)
        return lips_t, mfcc_t, torch.from_numpy(np.stack(labels))


def _validation_ap(model: LipSyncNet, sampler: _Sampler, num_windows: int) -> dict[str, float]:
    """AP of own-audio speech frames against each negative kind, on fixed drawn windows."""
    windows = [sampler.window() for _ in range(num_windows)]
    model.eval()
    with torch.inference_mode():
        lips = torch.from_numpy(np.stack([w[0] for w in windows]))
        mfcc = torch.from_numpy(np.stack([w[1] for w in windows]).copy())
        logits = model(lips, mfcc).numpy()
    model.train()
    kinds = np.array([w[3] for w in windows])
    labels = np.stack([w[2] for w in windows])
    out = {}
    own = kinds == "own"
    for kind in KINDS[1:]:
        sel = own | (kinds == kind)
        if (kinds == kind).any():
            out[kind] = 100 * average_precision_voc(logits[sel].ravel(), labels[sel].ravel())
    out["all"] = 100 * average_precision_voc(logits.ravel(), labels.ravel())
    return out


def train_lip_sync(
    train_groups: Sequence[Sequence[SyncTrack]],
    val_tracks: Sequence[SyncTrack],
    cfg: LipSyncConfig,
    log: Callable[[str], None] | None = print,
) -> tuple[LipSyncNet, list[dict]]:
    """Train :class:`LipSyncNet` from random weights.

    Args:
        train_groups: groups of training tracks (e.g. GRID s1, other speakers); a window
            comes from group ``i`` with chance ``cfg.group_weights[i]``.
        val_tracks: tracks for the per-epoch validation AP (fixed windows, own audio vs
            each negative kind); may be empty.
        cfg: the recipe.

    Returns:
        ``(model in eval mode, [per-epoch dict(epoch, loss, seconds, val AP per kind)])``.
    """
    torch.manual_seed(cfg.seed)
    sampler = _Sampler(train_groups, cfg, cfg.seed)
    val = None
    if val_tracks:
        val = _Sampler([val_tracks], replace(cfg, group_weights=None), cfg.seed + 1)
    model = LipSyncNet(LIP_FEATURE_DIM, cfg.hidden, cfg.dropout, cfg.mfcc_cmvn)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.lr_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    history = []
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        t0, total = time.perf_counter(), 0.0
        for _ in range(cfg.steps_per_epoch):
            lips, mfcc, labels = sampler.batch(cfg.batch_size)
            loss = loss_fn(model(lips, mfcc), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
        row = {
            "epoch": epoch,
            "loss": total / cfg.steps_per_epoch,
            "seconds": time.perf_counter() - t0,
        }
        if val is not None:
            val.rng = np.random.default_rng(cfg.seed + 1)  # the same windows every epoch
            row.update({f"val_{k}": v for k, v in _validation_ap(model, val, 400).items()})
        history.append(row)
        if log is not None:
            log(
                " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
            )
    model.eval()
    return model, history


def save_lip_sync(model: LipSyncNet, cfg: LipSyncConfig, history: list[dict], path: Path) -> None:
    """Write ``{"architecture", "state_dict", "config", "history"}`` atomically."""
    payload = {
        "architecture": "lip-sync",
        "feature_dim": model.feature_dim,
        "hidden": model.hidden,
        "mfcc_cmvn": model.mfcc_cmvn,
        "state_dict": model.state_dict(),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "history": history,
    }
    with atomic_output_path(path) as tmp:
        torch.save(payload, tmp)


def load_lip_sync(path: str | Path) -> LipSyncNet:
    """A :func:`save_lip_sync` file (``torch.load(weights_only=True)``, ``strict=True``).

    Raises:
        ValueError: the file is not a lip-sync checkpoint.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("architecture") != "lip-sync":
        raise ValueError(f"{path}: not a lip-sync checkpoint (no architecture 'lip-sync')")
    model = LipSyncNet(
        int(payload["feature_dim"]),
        int(payload["hidden"]),
        mfcc_cmvn=bool(payload.get("mfcc_cmvn", False)),
    )
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval()
