"""Face crops: identical to a plain transcription of the demo, and equal to the fixture's."""

from __future__ import annotations

import numpy as np
import pytest

from socialav.vision.crops import crop_face, crop_face_reference, crop_track_frame, crop_window


def random_geometry(rng, height, width):
    size = float(rng.uniform(2, 0.6 * max(height, width)))
    cx = float(rng.uniform(0, width))
    cy = float(rng.uniform(0, height))
    return size, cx, cy


@pytest.mark.parametrize("seed", range(6))
def test_fast_crop_is_identical_to_plain_transcription_on_random_frames(seed):
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(40, 400)), int(rng.integers(40, 400))
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    cases = [random_geometry(rng, height, width) for _ in range(40)]
    cases += [(3.0, 0.0, 0.0), (5.5, width, height), (400.0, width / 2, height / 2)]
    cases += [(10.0, width + 5.0, height / 2), (1.5, width + 0.9, height + 0.9)]
    for size, cx, cy in cases:
        for scale in (0.40, 0.0, 0.25):
            fast = crop_face(frame, size, cx, cy, scale)
            plain = crop_face_reference(frame, size, cx, cy, scale)
            assert fast.shape == (112, 112) and fast.dtype == np.uint8
            np.testing.assert_array_equal(fast, plain, err_msg=f"s={size} cx={cx} cy={cy}")


def test_fast_crop_is_identical_on_real_frames(interview_frames, interview_reference):
    rng = np.random.default_rng(0)
    geometry = interview_reference["track1_crop_size_cx_cy_px"]
    for i in range(0, len(interview_frames), 5):
        frame = interview_frames[i]
        size, cx, cy = (float(v) for v in geometry[i])
        for dx, dy, ds in [(0, 0, 0), *rng.uniform(-300, 300, (3, 3))]:
            args = (max(size + ds, 1.0), cx + dx, cy + dy)
            np.testing.assert_array_equal(
                crop_face(frame, *args), crop_face_reference(frame, *args)
            )


def face_error(frames, reference, track, dx=0.0, ds=0.0, crop_scale=0.40):
    """Mean absolute difference with the fixture's faces over the decoded frames."""
    geometry = reference[f"track{track}_crop_size_cx_cy_px"]
    want = reference[f"track{track}_faces_gray112"]
    crops = [
        crop_face(frames[i], geometry[i, 0] + ds, geometry[i, 1] + dx, geometry[i, 2], crop_scale)
        for i in range(len(frames))
    ]
    diff = np.abs(np.stack(crops).astype(np.int16) - want[: len(frames)].astype(np.int16))
    return float(diff.mean()), float((diff == 0).mean())


@pytest.mark.parametrize("track", [0, 1])
def test_crops_match_fixture_faces(interview_frames, interview_reference, track):
    """The fixture's model inputs were cut from the PyAV-decoded frames: here they come out
    identical (mean abs difference 0.000 on all 437 frames of both tracks); a tolerance covers
    decoder or OpenCV differences. A 4 px shift or another crop scale is far outside it."""
    mean_err, equal = face_error(interview_frames, interview_reference, track)
    assert mean_err < 0.1 and equal > 0.99
    # wrong geometry fails: shifted 4 px or 1 px, size off by 4 px, crop scale 0.35
    assert face_error(interview_frames, interview_reference, track, dx=4)[0] > 3.0
    assert face_error(interview_frames, interview_reference, track, dx=1)[0] > 0.5
    assert face_error(interview_frames, interview_reference, track, ds=4)[0] > 3.0
    assert face_error(interview_frames, interview_reference, track, crop_scale=0.35)[0] > 5.0


def test_crop_window_hand_values():
    # s = 10, cs = 0.4: pad = int(18) = 18; rows int(50+18-10):int(68+18) = 58:86;
    # cols int(100+18-14):int(118+14) = 104:132
    assert crop_window(200, 300, 10.0, 100.0, 50.0) == (18, 58, 86, 104, 132)
    # a window past the padded frame is shortened as NumPy slicing does
    # (centre right of the frame: cols int(58-14):int(58+14) = 44:72 -> 44:56 of 56 columns)
    pad, r0, r1, c0, c1 = crop_window(20, 20, 10.0, 40.0, 20.0)
    assert (pad, r0, r1, c0, c1) == (18, 28, 56, 44, 56)
    assert crop_track_frame(
        np.zeros((20, 20, 3), np.uint8), np.array([10.0, 20.0, 20.0])
    ).shape == (
        112,
        112,
    )


@pytest.mark.parametrize(
    ("geometry", "message"),
    [((0.0, 5.0, 5.0), "half-size must be positive"), ((np.nan, 5.0, 5.0), "finite")],
)
def test_bad_geometry_is_rejected(geometry, message):
    with pytest.raises(ValueError, match=message):
        crop_face(np.zeros((20, 20, 3), np.uint8), *geometry)
