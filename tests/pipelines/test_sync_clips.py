import numpy as np
import pytest

from socialav import hub
from socialav.pipelines.config import DetectConfig
from socialav.pipelines.detect import SpeakerDetector
from socialav.pipelines.sync_clips import load_cached_clips, load_sync_clips, speaker_of
from socialav.vision.lip_landmarks import LipLandmarker


def test_speaker_of_reads_the_first_group_or_keeps_the_name():
    assert speaker_of("lipnet_GRID-U01_lbbc2a", r"^[^_]+_([^_]+)_") == "GRID-U01"
    assert speaker_of("grid_brbk7n", r"^[^_]+_([^_]+)_") == "grid_brbk7n"
    assert speaker_of("x", None) == "x"


def test_clips_are_extracted_once_then_read_from_the_cache(videos_dir, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("grid_id2_vcd_swwp2s.mpg", "grid_id2_vcd_swwp2s.align", "grid_lbax4n.mpg"):
        (folder / name).symlink_to(videos_dir / name)
    videos = sorted(folder.glob("*.mpg"))
    built = []

    def factory():
        built.append(1)
        return SpeakerDetector(DetectConfig(num_threads=1))

    landmarker = LipLandmarker(hub.resolve_weights("dlib-shape-68"))
    clips = load_sync_clips(videos, tmp_path / "cache", factory, speaker="g", landmarker=landmarker)
    assert [c.name for c in clips] == ["grid_id2_vcd_swwp2s", "grid_lbax4n"] and built == [1]
    first = clips[0]
    assert first.faces.shape[1:] == (112, 112) and first.mouth_points.shape == (
        len(first.faces),
        20,
        2,
    )
    assert len(first.faces) == 75 and len(first.audio) > 0.99 * 640 * 75  # audio ends 22 ms early
    # the .align file gives the labels: GRID speech spans frames ~12-55
    assert first.speech[15] and first.speech[50] and not first.speech[5] and not first.speech[60]
    again = load_sync_clips(videos, tmp_path / "cache", factory, speaker="g")
    assert built == [1] and all(c.speaker == "g" for c in again)
    np.testing.assert_array_equal(again[0].mouth_points, first.mouth_points)
    np.testing.assert_array_equal(again[1].faces, clips[1].faces)
    cached = load_cached_clips(tmp_path / "cache")
    assert [c.speaker for c in cached] == ["g", "g"]
    with pytest.raises(FileNotFoundError, match="no cached clips"):
        load_cached_clips(tmp_path)
    with pytest.raises(ValueError, match="same file stem"):
        load_sync_clips([videos[0], videos[0]], tmp_path / "cache", factory)


def test_a_cache_of_another_version_is_refused(tmp_path):
    np.savez(tmp_path / "old.npz", version=np.int64(0), faces=np.zeros((1, 112, 112), np.uint8))
    with pytest.raises(ValueError, match="old.npz: clip cache version 0, expected 1"):
        load_cached_clips(tmp_path)
