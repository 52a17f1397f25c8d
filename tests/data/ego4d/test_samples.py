"""TTM and LAM sample construction (reference semantics) and the torch Datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from socialav.audio.features import log_mel_spectrogram, normalize_rms, ttm_audio_span
from socialav.data.ego4d.annotations import load_av_annotations
from socialav.data.ego4d.samples import (
    IGNORE_INDEX,
    InMemoryFrames,
    LamDataset,
    TtmAudioDataset,
    TtmVisualDataset,
    build_ttm_visual_windows,
    collate_ttm_audio,
    lam_samples,
    lam_track_boxes,
    split_ttm_segment,
    ttm_samples,
)
from socialav.inference.ego4d_windows import lam_window_sources, quavf_visual_windows
from socialav.vision.crops import crop_face_box
from socialav.vision.quality import frame_quality

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "start, end, train, expected",
    [
        (0, 13, True, []),  # 14 frames < 15: dropped in training
        (0, 13, False, [(0, 13)]),  # kept for evaluation
        (5, 5, False, []),  # one frame: always dropped (seg_length <= 1)
        (0, 149, True, [(0, 149)]),  # exactly 150: not split
        (0, 150, True, [(0, 150)]),  # 151 > 150: 151 // 150 = 1 sub-clip (0, 150)
        (0, 299, True, [(0, 150), (150, 299)]),  # 300 // 150 = 2; second ends at end (150 fr)
        (0, 319, True, [(0, 150), (150, 300)]),  # 320 // 150 = 2; 301..319 dropped
        (100, 549, False, [(100, 250), (250, 400), (400, 549)]),  # 450 // 150 = 3
    ],
)
def test_split_ttm_segment_matches_the_baseline(start, end, train, expected):
    assert split_ttm_segment(start, end, train=train) == expected


def test_ttm_samples_index_segments_like_the_baseline(av_dict):
    clips = load_av_annotations(av_dict)
    samples = ttm_samples(clips, train=True)
    # segment with person None is dropped before indexing: indices 0, 1, 2
    got = [
        (s.segment_id, s.person_id, s.start_frame, s.end_frame, s.label, s.sub_index)
        for s in samples
    ]
    assert got == [
        ("clip-1:0", "1", 0, 150, 1, 0),
        ("clip-1:0", "1", 150, 300, 1, 1),
        # clip-1:1 (frames 10-19, 10 frames) and clip-1:2 (30-40, 11 frames) are shorter
        # than 15: dropped in training
    ]
    evaluation = ttm_samples(clips, train=False)
    assert [(s.segment_id, s.label) for s in evaluation[2:]] == [
        ("clip-1:1", 0),  # target null -> label 0
        ("clip-1:2", 1),  # target "1" is not null -> label 1 (as the baseline)
    ]


@pytest.mark.parametrize(
    "valid, expected",
    [
        ([True] * 7, [0, 1, 2, 3, 4, 5, 6]),
        ([False, True, False, True, True, True, False], [1, 1, 1, 3, 4, 5, 5]),
        ([False, False, False, True, False, False, False], [3] * 7),
        ([True, True, True, False, True, True, True], [0, 1, 2, 3, 4, 5, 6]),  # centre forced
        ([True, True, True, True, True, False, False], [0, 1, 2, 3, 4, 4, 4]),
    ],
)
def test_lam_window_padding_matches_pad_video(valid, expected):
    np.testing.assert_array_equal(lam_window_sources(valid), expected)


def test_lam_samples_labels_and_windows(av_dict):
    clips = load_av_annotations(av_dict)
    samples = lam_samples(clips)
    # trk-a interpolated to frames 0..6 (7 samples), trk-b frames 10..19 (10 samples)
    assert len(samples) == 17
    a = [s for s in samples if s.track_id == "trk-a"]
    assert [s.label for s in a] == [0, 1, 1, 1, 1, 0, 0]  # looking frames 1..4
    assert a[0].window_frames == (-3, -2, -1, 0, 1, 2, 3)
    assert a[0].window_valid == (False, False, False, True, True, True, True)
    assert all(s.label == 0 for s in samples if s.track_id == "trk-b")
    assert len(lam_samples(clips, stride=13)) == 2  # idx 0 of each track


def test_lam_dataset_on_real_frames(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    samples = lam_samples(clips)
    frames = InMemoryFrames({"interview": interview_ego4d.frames})
    ds = LamDataset(samples, frames, lam_track_boxes(clips), size_px=32)
    assert len(ds) == 120  # 2 tracks x 60 frames (gap interpolated)
    first = ds[0]  # frame 0: window -3..3, three slots padded with frame 0's crop
    assert first["frames"].shape == (7, 3, 32, 32) and first["frames"].dtype == torch.float32
    for k in range(3):
        torch.testing.assert_close(first["frames"][k], first["frames"][3])
    assert not torch.equal(first["frames"][3], first["frames"][4])
    # person 1 looks at the camera wearer at frames 5..24
    labels = [int(ds[i]["label"]) for i in range(60)]
    assert labels == [0] * 5 + [1] * 20 + [0] * 35
    # the crop of the centre frame is the resized box region, ImageNet-normalised
    s = samples[10]
    box = lam_track_boxes(clips)[("interview", "face-1")][10]
    crop = crop_face_box(interview_ego4d.frames[10], box, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    want = (torch.from_numpy(crop).permute(2, 0, 1).float() / 255 - mean) / std
    assert s.frame == 10
    torch.testing.assert_close(ds[10]["frames"][3], want)


def test_crop_face_box_bad_box_gives_zeros():
    image = np.full((20, 20, 3), 200, np.uint8)
    assert crop_face_box(image, (30, 30, 40, 40), 8).sum() == 0
    assert crop_face_box(image, (2, 2, 12, 12), 8).min() == 200


def test_quavf_visual_windows_hand_example():
    # feat_length 3, frame_stride 2 -> span 5, half 2; 6 frames, frame 2 has no face.
    fids = [10, 11, None, 13, 14, 15]
    q = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    # padded: [N, N, 10, 11, N, 13, 14, 15, N, N]; idx < 10 - 5 - 1 = 4
    # idx 0: slots 0,2,4 -> [N, 10, N], quality 1/3 < 0.5 -> idx 1
    # idx 1: slots 1,3,5 -> [N, 11, 13], quality 2/3 kept (centre 11), idx += 2 -> 3
    # idx 3: slots 3,5,7 -> [11, 13, 15], quality 1 kept (centre padded[5] = 13) -> idx 5 stop
    got = quavf_visual_windows(
        fids, q, feat_length=3, frame_stride=2, data_stride=2, score_threshold=0.5
    )
    assert got == [(11, (None, 11, 13), pytest.approx(2 / 3)), (13, (11, 13, 15), 1.0)]
    # evaluation: one window per face frame, centred on it
    test = quavf_visual_windows(fids, q, feat_length=3, frame_stride=2, score_threshold=None)
    assert [c for c, _, _ in test] == [10, 11, 13, 14, 15]
    assert test[0][1] == (None, 10, None) and test[0][2] == pytest.approx(1 / 3)


def test_frame_quality_ranks_blur_size_and_confidence(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    box = clips[0].person_boxes_xyxy("1")[0]
    x1, y1, x2, y2 = (int(v) for v in box)
    crop = interview_ego4d.frames[0][y1:y2, x1:x2]
    sharp = frame_quality(crop, box)
    blurred = frame_quality(cv2.GaussianBlur(crop, (9, 9), 4), box)
    assert 0 < blurred < sharp <= 1
    assert frame_quality(crop, box, confidence=0.5) == pytest.approx(sharp / 2)
    small = (0, 0, 16, 16)  # size term sqrt(256) / 64 = 0.25
    assert frame_quality(crop, small) == pytest.approx(
        sharp / min(1, np.sqrt((box[2] - box[0]) * (box[3] - box[1])) / 64) * 0.25
    )
    assert frame_quality(None, box) == 0.0


def test_ttm_visual_dataset(interview_ego4d):
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
    assert windows and {w.person_id for w in windows} == {"1", "2"}
    assert {w.label for w in windows if w.person_id == "1"} == {1}
    boxes = {("interview", p): clips[0].person_boxes_xyxy(p) for p in ("1", "2")}
    ds = TtmVisualDataset(windows, frames, boxes, size_px=32)
    item = ds[0]
    assert item["frames"].shape == (5, 3, 32, 32)
    w = windows[0]
    for k, f in enumerate(w.frames):  # frames without a face are exact zeros
        assert (f is None) == bool((item["frames"][k] == 0).all())
    assert 0 < float(item["quality"]) <= 1


def test_ttm_audio_dataset_and_collate(interview_ego4d):
    clips = load_av_annotations(interview_ego4d.av)
    samples = ttm_samples(clips, train=True)
    assert [(s.start_frame, s.end_frame, s.label) for s in samples] == [(0, 29, 1), (20, 59, 0)]
    ds = TtmAudioDataset(samples, {"interview": interview_ego4d.audio})
    a, b = ds[0], ds[1]
    # frames 0..29: samples [0, int(29 / 30 * 16000)) = [0, 15466) -> int(15466/16000*30) = 28
    assert ttm_audio_span(0, 29, 16000) == (0, 15466)
    assert a["num_frames"] == 28 and a["mel"].shape[0] == 80
    batch = collate_ttm_audio([a, b])
    t_mel = max(a["mel"].shape[1], b["mel"].shape[1])
    assert batch["mel"].shape == (2, 80, t_mel)
    assert batch["labels"].shape == (2, round(t_mel * 30 / 100))
    assert (batch["labels"][0, :28] == 1).all() and (batch["labels"][0, 28:] == IGNORE_INDEX).all()
    assert (batch["labels"][1, : b["num_frames"]] == 0).all()


def test_audio_helpers():
    x = np.array([0.5, -0.5, 0.5, -0.5])  # RMS 0.5 -> scaled by 0.1 / 0.5
    np.testing.assert_allclose(normalize_rms(x), x * 0.2)
    np.testing.assert_allclose(normalize_rms(np.zeros(3)), 0.0)  # eps keeps silence silent
    t = np.arange(16000) / 16000
    mel = log_mel_spectrogram(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    assert mel.shape == (80, 100) and mel.dtype == np.float32
    # the 440 Hz tone's band is the loudest
    assert 0 < int(np.argmax(mel.mean(axis=1))) < 20
