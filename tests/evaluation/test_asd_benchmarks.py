import numpy as np
import pytest

from socialav.evaluation.asd_benchmarks import (
    BenchmarkClip,
    align_to_frames,
    benchmark_ap,
    natural_items,
    read_grid_align,
    side_by_side,
    sync_items,
    unique_items,
    voice_activity,
)
from socialav.io.media import read_audio


def test_grid_align_and_voice_activity_agree(videos_dir):
    words = read_grid_align(videos_dir / "grid_id2_vcd_swwp2s.align")
    assert words[0] == (0.0, 12.25, "sil") and words[-1][2] == "sil"
    speech = align_to_frames(words, 75)
    assert speech[13] and not speech[11] and speech[54] and not speech[56]
    vad = voice_activity(read_audio(videos_dir / "grid_id2_vcd_swwp2s.mpg"), 75)
    assert (vad == speech).mean() > 0.9
    assert not vad[:10].any() and not vad[-15:].any()


def test_read_grid_align_rejects_bad_lines(tmp_path):
    bad = tmp_path / "x.align"
    bad.write_text("0 100 sil\n100 oops\n")
    with pytest.raises(ValueError, match="x.align:2"):
        read_grid_align(bad)


def test_voice_activity_on_synthetic_tone():
    sr = 16000
    audio = np.zeros(sr * 3, np.int16)
    audio[sr : 2 * sr] = (8000 * np.sin(np.arange(sr) * 0.3)).astype(np.int16)
    vad = voice_activity(audio, 75)
    assert vad[26:49].all() and not vad[:24].any() and not vad[51:].any()


def _clips(n=3, frames=20):
    rng = np.random.default_rng(0)
    return [
        BenchmarkClip(
            f"c{i}",
            rng.integers(0, 255, (frames, 112, 112), dtype=np.uint8),
            (rng.standard_normal(frames * 640 + 400) * 3000).astype(np.int16),
            np.arange(frames) % 2 == 0,
        )
        for i in range(n)
    ]


def test_sync_items_are_pairs_with_one_speaking_face():
    clips = _clips()
    items = sync_items(clips, delays_frames=(2,))
    assert len(items) == 2 * (3 * 2 + 3)  # 6 cross pairs + 3 delayed pairs, two faces each
    for own, other in zip(items[::2], items[1::2], strict=True):
        assert own.kind == "natural" and other.kind in ("cross", "delayed")
        assert other.labels.sum() == 0 and own.labels.sum() == 10
        assert other.mfcc.shape == own.mfcc.shape == (80, 13)
    delayed = [it for it in items if it.kind == "delayed"][0]
    np.testing.assert_array_equal(delayed.faces[2:], clips[0].faces[:-2])
    assert len(unique_items(items)) == 3 + 6 + 3


def test_benchmark_ap_perfect_and_inverted_scores():
    items = sync_items(_clips(), delays_frames=(2,))
    perfect = {it.name: it.labels.astype(float) for it in unique_items(items)}
    assert benchmark_ap(items, perfect) == pytest.approx(100.0)
    inverted = {it.name: 1.0 - it.labels for it in unique_items(items)}
    chance = 100 * np.mean(np.concatenate([it.labels for it in items]))
    assert benchmark_ap(items, inverted) < chance
    assert benchmark_ap(natural_items(_clips()), perfect) == pytest.approx(100.0)
    # only the delayed pairs: one speaking face per pair, half of its frames speak
    assert benchmark_ap(items, perfect, kinds=["delayed"]) == pytest.approx(100.0)
    delayed_only = [it for it in items if it.kind == "delayed"]
    assert len(delayed_only) == 3


def test_side_by_side_keeps_the_left_height():
    left = np.full((4, 6, 3), (255, 0, 0), np.uint8)
    right = np.full((8, 8, 3), (0, 0, 255), np.uint8)
    both = side_by_side(left, right)
    assert both.shape == (4, 10, 3)  # right resized to 4x4
    np.testing.assert_array_equal(both[:, :6], left)
    assert (both[:, 6:, 2] == 255).all() and (both[:, 6:, 0] == 0).all()
    with pytest.raises(ValueError, match="right_rgb must be"):
        side_by_side(left, right[..., 0])


def _clips_with_frames(n=3, frames=20):
    """Clips whose frame t is uniform gray 8 t + 40 i (clip i), 8x8 px."""
    clips = _clips(n, frames)
    for i, c in enumerate(clips):
        levels = (8 * np.arange(frames) + 40 * i).astype(np.uint8)
        c.frames = np.repeat(levels[:, None, None, None], 8 * 8 * 3, 1).reshape(frames, 8, 8, 3)
    return clips


def test_scene_items_show_the_two_face_scene_of_each_pair():
    clips = _clips_with_frames()
    natural = natural_items(clips, scene_size_px=4)
    assert natural[1].scenes.shape == (20, 4, 4, 3)
    np.testing.assert_array_equal(natural[1].scenes[:, 0, 0, 0], 8 * np.arange(20) + 40)
    items = sync_items(clips, delays_frames=(2,), scene_size_px=4)
    assert len(items) == 2 * (3 * 2 + 3)
    names = [it.name for it in items]
    assert len(set(names)) == len(names)  # the own face is its own item in every pair
    for own, other in zip(items[::2], items[1::2], strict=True):
        assert own.kind == "natural" and own.scenes is not None
        np.testing.assert_array_equal(own.scenes, other.scenes)  # one scene per pair
        assert own.name.endswith(f"(with {other.name})")
    # cross pair c0 with c1's face: left half c0's frames, right half c1's
    cross = next(it for it in items if it.name == "c1+c0")
    np.testing.assert_array_equal(cross.scenes[:, 0, 0, 0], 8 * np.arange(20))
    np.testing.assert_array_equal(cross.scenes[:, 0, 3, 0], 8 * np.arange(20) + 40)
    # delayed pair: c2 beside its own frames delayed by 2 (first frame repeated)
    delayed = next(it for it in items if it.name == "c2@-2+c2")
    expected = 8 * np.maximum(np.arange(20) - 2, 0) + 80
    np.testing.assert_array_equal(delayed.scenes[:, 0, 3, 0], expected)
    perfect = {it.name: it.labels.astype(float) for it in unique_items(items)}
    assert benchmark_ap(items, perfect) == pytest.approx(100.0)
    plain = sync_items(clips, delays_frames=(2,))
    assert all(it.scenes is None for it in plain) and len(unique_items(plain)) == 12
    with pytest.raises(ValueError, match="has no full frames"):
        natural_items(_clips(), scene_size_px=4)


def test_sync_items_split_cross_and_other_sentence_pairs_by_speaker():
    clips = _clips(4)
    clips[0].speaker = clips[1].speaker = "s1"  # c0 and c1: one speaker, two sentences
    mouth = np.arange(20 * 20 * 2, dtype=np.float32).reshape(20, 20, 2)
    clips[0].mouth_points = mouth
    items = sync_items(clips, delays_frames=(3,))
    kinds = {
        (own.name, other.name): other.kind
        for own, other in zip(items[::2], items[1::2], strict=True)
    }
    assert kinds[("c0", "c1+c0")] == kinds[("c1", "c0+c1")] == "other_sentence"
    assert kinds[("c0", "c2+c0")] == kinds[("c2", "c3+c2")] == "cross"
    assert sum(k == "other_sentence" for k in kinds.values()) == 2
    delayed = next(o for o in items[1::2] if o.name == "c0@-3+c0")
    np.testing.assert_array_equal(delayed.mouth_points[3:], mouth[:-3])
    np.testing.assert_array_equal(delayed.mouth_points[:3], np.repeat(mouth[:1], 3, axis=0))
    assert next(o for o in items[1::2] if o.name == "c0+c2").mouth_points is mouth


def test_sync_items_partners_per_clip_caps_pairs_per_kind():
    clips = _clips(6)
    for c in clips[:3]:
        c.speaker = "a"
    items = sync_items(clips, delays_frames=(), partners_per_clip=1, seed=3)
    for clip in clips:
        others = [
            o for own, o in zip(items[::2], items[1::2], strict=True) if own.name == clip.name
        ]
        assert sorted(o.kind for o in others) == (
            ["cross", "other_sentence"] if clip.speaker == "a" else ["cross"]
        )
    again = sync_items(clips, delays_frames=(), partners_per_clip=1, seed=3)
    assert [it.name for it in again] == [it.name for it in items]
