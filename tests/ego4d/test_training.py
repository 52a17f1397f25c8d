"""Training smoke tests on the real-derived Ego4D-style fixture: the loss falls.

Debug-size models (narrow ResNet-18, small widths) on 32x32 crops, one torch thread.
Runs are deterministic (fixed seeds, CPU), so the thresholds hold on every run.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from socialav.data.ego4d import load_av_annotations
from socialav.data.ego4d_samples import (
    InMemoryFrames,
    LamDataset,
    TtmAudioDataset,
    TtmVisualDataset,
    build_ttm_visual_windows,
    collate_ttm_audio,
    lam_samples,
    lam_track_boxes,
    ttm_samples,
)
from socialav.evaluation.ego4d import social_map
from socialav.models.gaze_lstm import GazeLSTM
from socialav.models.quavf import QuavfAudioBranch, QuavfVisualBranch
from socialav.training.ego4d_tasks import (
    Ego4dFitConfig,
    balanced_class_weights,
    fit,
    lam_step,
    predict,
    ttm_audio_step,
    ttm_visual_step,
)


def _loader(ds, batch_size, seed=0, **kw):
    return DataLoader(
        ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), **kw
    )


def test_gaze_lstm_loss_falls(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    samples = lam_samples(clips, stride=5)  # 24 windows, 8 looking at me
    ds = LamDataset(
        samples,
        InMemoryFrames({"interview": interview_ego4d.frames}),
        lam_track_boxes(clips),
        size_px=32,
    )
    torch.manual_seed(0)
    model = GazeLSTM(img_feature_dim=32, base_width=8)
    history = fit(model, lam_step, _loader(ds, 8), Ego4dFitConfig(epochs=10, lr=1e-3))
    assert sum(history[-2:]) / 2 < 0.6 * history[0], history
    probs, labels = predict(model, lam_step, DataLoader(ds, batch_size=8))
    assert probs.shape == (24,) and labels.sum() == 8


def test_quavf_visual_branch_loss_falls(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    frames = InMemoryFrames({"interview": interview_ego4d.frames})
    windows = build_ttm_visual_windows(
        clips,
        frames,
        train=True,
        feat_length=5,
        frame_stride=3,
        data_stride=4,
        score_threshold=0.05,
    )
    boxes = {("interview", p): clips[0].person_boxes_xyxy(p) for p in ("1", "2")}
    ds = TtmVisualDataset(windows, frames, boxes, size_px=32)
    weights = balanced_class_weights(w.label for w in windows)
    torch.manual_seed(0)
    model = QuavfVisualBranch(dim=32, num_heads=4, feat_length=5, base_width=8)

    def step(m, batch, device):
        return ttm_visual_step(m, batch, device, class_weights=weights)

    history = fit(model, step, _loader(ds, 4), Ego4dFitConfig(epochs=6, lr=1e-3, grad_clip=1.0))
    assert sum(history[-2:]) / 2 < 0.5 * history[0], history
    probs, labels = predict(model, step, DataLoader(ds, batch_size=8))
    mean_ap, _, _ = social_map(probs.numpy(), labels.numpy())
    assert mean_ap > 0.9  # it fits its training windows


def test_quavf_audio_branch_loss_falls(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    ds = TtmAudioDataset(ttm_samples(clips, train=True), {"interview": interview_ego4d.audio})
    torch.manual_seed(0)
    model = QuavfAudioBranch(encoder_dim=32, dim=32, num_heads=4, dropout=0.0)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_ttm_audio)
    history = fit(model, ttm_audio_step, loader, Ego4dFitConfig(epochs=15, lr=1e-3, grad_clip=1.0))
    assert history[-1] < 0.9 * history[0], history
    assert all(b < a for a, b in zip(history, history[1:], strict=False))  # full batch: monotone
    probs, labels = predict(model, ttm_audio_step, loader)
    assert probs.shape == labels.shape and set(labels.tolist()) == {0, 1}


def test_balanced_class_weights():
    assert balanced_class_weights([0, 0, 0, 1]) == (4 / 6, 2.0)
    # only class 1 (the -100 padding is ignored): w1 = 2 / (2 * 2), absent class 0 -> 1.0
    assert balanced_class_weights([1, 1, -100]) == (1.0, 0.5)
