"""Per-frame encoding cache: a window sliding by one frame encodes one new frame per object."""

import numpy as np
import pytest
from conftest import H, T, W, box_masks

from amodal_ros.core import ObjectTrack
from amodal_ros.pipeline import AmodalSegmenter, FrameEncodingCache
from amodal_ros.pipeline.cache import CacheKey


def clip(total):
    masks = {1: box_masks(t=total, dx=1), 2: box_masks(t=total, y0=20, x0=30, size=10, dx=1)}
    rng = np.random.default_rng(1)
    depth = (rng.random((total, H, W)) + 0.5).astype(np.float32)
    depth[:, 0, 0], depth[:, 0, 1] = 0.1, 2.0  # same range in every frame, as a saturating sensor
    return masks, depth


def window(masks, depth, start):
    span = slice(start, start + T)
    keys = list(range(start, start + T))  # e.g. stamps in ns
    return [ObjectTrack(i, m[span], frame_keys=keys) for i, m in masks.items()], depth[span]


def test_sliding_by_one_frame_encodes_one_new_frame_per_object(components12, tiny_config):
    masks, depth = clip(T + 2)
    seg = AmodalSegmenter(components12, tiny_config)
    cache = FrameEncodingCache()
    seg(*window(masks, depth, 0), cache=cache)
    assert cache.encoded == {"mask": 2 * T, "depth": T}  # depth is shared by the objects
    for step in (1, 2):
        before = dict(cache.encoded)
        seg(*window(masks, depth, step), cache=cache)
        assert cache.encoded["mask"] - before["mask"] == 2  # one new frame x two objects
        assert cache.encoded["depth"] - before["depth"] == 1
    assert cache.reused["mask"] == 2 * 2 * (T - 1)


def test_cached_results_equal_uncached(components12, tiny_config):
    masks, depth = clip(T + 1)
    seg = AmodalSegmenter(components12, tiny_config)
    cache = FrameEncodingCache()
    seg(*window(masks, depth, 0), cache=cache)
    warm = seg(*window(masks, depth, 1), cache=cache)
    cold = seg(*window(masks, depth, 1))
    for a, b in zip(warm, cold):  # equal up to float batching effects (scores are 1/765 steps)
        np.testing.assert_allclose(a.soft, b.soft, atol=3 / 765)
        assert (a.amodal != b.amodal).mean() < 1e-3


def test_changed_content_under_the_same_key_is_re_encoded(components12, tiny_config):
    masks, depth = clip(T)
    seg = AmodalSegmenter(components12, tiny_config)
    cache = FrameEncodingCache()
    seg(*window(masks, depth, 0), cache=cache)
    depth_wider = depth.copy()
    depth_wider[0, 5, 5] = 9.0  # the window's depth range changes -> every frame renormalised
    before = dict(cache.encoded)
    seg(*window(masks, depth_wider, 0), cache=cache)
    assert cache.encoded["depth"] - before["depth"] == T
    assert cache.encoded["mask"] == before["mask"]


def test_cache_is_bounded_and_resettable():
    cache = FrameEncodingCache(max_entries=3)
    for i in range(5):
        cache.put(CacheKey("mask", 1, i, "d"), i)
    assert len(cache) == 3 and cache.get(CacheKey("mask", 1, 0, "d")) is None
    assert cache.get(CacheKey("mask", 1, 4, "d")) == 4
    cache.forget_object(1)
    assert len(cache) == 0
    cache.put(CacheKey("mask", 2, 0, "d"), 0)
    cache.get(CacheKey("mask", 2, 0, "d"))
    cache.reset()
    assert len(cache) == 0 and not cache.encoded and not cache.reused
    with pytest.raises(ValueError, match="max_entries must be >= 1"):
        FrameEncodingCache(max_entries=0)


@pytest.mark.parametrize("touch", ["get", "put again"])
def test_the_least_recently_used_entry_goes_and_using_one_renews_it(touch):
    cache = FrameEncodingCache(max_entries=2)
    a, b, c = (CacheKey("mask", 1, i, "d") for i in range(3))
    cache.put(a, "a")
    cache.put(b, "b")
    cache.get(a) if touch == "get" else cache.put(a, "a")
    cache.put(c, "c")
    assert cache.get(a) == "a" and cache.get(b) is None


def test_forget_frames_outside_keeps_only_the_current_window():
    """Older frames go as the window slides; newer ones exist only from before a bag loop
    (the window's stamps went back), and the LRU alone held them up to 4,096 entries."""
    from amodal_ros.pipeline.cache import CacheKey, FrameEncodingCache

    cache = FrameEncodingCache()
    for stamp in range(10):
        cache.put(CacheKey("mask", 1, stamp, "d"), stamp)
        cache.put(CacheKey("depth", None, stamp, "d"), stamp)
    cache.put(CacheKey("mask", 1, "not a stamp", "d"), -1)
    cache.forget_frames_outside(6, 9)
    assert sorted(k.frame_key for k in cache._entries if k.kind == "depth") == [6, 7, 8, 9]
    assert len(cache) == 4 + 4 + 1
    cache.forget_frames_outside(2, 7)  # looped back: the frames after the window go too
    assert sorted(k.frame_key for k in cache._entries if k.kind == "depth") == [6, 7]


def test_shared_digests_hash_an_array_once_while_it_lives_and_never_reuse_a_dead_ones():
    from amodal_ros.pipeline.cache import SharedDigests, digest

    digests = SharedDigests()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert digests(a) == digests(a) == digest(a) and digests.computed == 1
    b = a.copy()  # equal content, another array: its own entry, the same digest
    assert digests(b) == digest(a) and digests.computed == 2
    del a, b
    assert len(digests) == 0  # entries leave with their arrays
    empty = np.zeros((0, 3), np.float32)  # no bytes to hash: shape and dtype tell them apart
    assert digest(empty) != digest(np.zeros((0, 4), np.float32)) != digest(np.zeros((0, 4)))
    for value in range(50):  # a new array may take a dead one's id: never its digest
        c = np.full((3, 4), value, np.float32)
        assert digests(c) == digest(c)
        del c


def test_stable_seeds_fit_a_torch_seed_and_ignore_numpy_scalar_types():
    from amodal_ros.pipeline.cache import stable_seed

    assert all(0 <= stable_seed("object", i) < 2**63 for i in range(64))
    assert stable_seed(np.int64(3), np.float32(0.5)) == stable_seed(3, 0.5)
    assert stable_seed(3, 0.5) != stable_seed(3, 0.25)
