"""Doing less work per window: warm start across overlapping windows, decoding only the
published frames, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import T, box_masks

from amodal_ros.core import InferenceConfig, InputError, ObjectTrack
from amodal_ros.core.config import PRESETS
from amodal_ros.pipeline import AmodalSegmenter, FrameEncodingCache
from amodal_ros.pipeline.runner import WarmStarts, _chunks_needed, align_previous
from amodal_ros.pipeline.sampling import warm_start_step

STAMPS = [100 * i for i in range(T + 2)]


def _counting(segmenter):
    calls = []
    predict = segmenter.sampler.predict

    def counted(*args):
        calls.append(args[0].shape[0])
        return predict(*args)

    segmenter.sampler.predict = counted
    return calls


def _track(first: int, object_id=1):
    masks = box_masks(t=T + 2)[first : first + T]
    masks[:, :, 30:40] = False
    return ObjectTrack(object_id, masks, frame_keys=STAMPS[first : first + T])


def test_warm_start_step():
    assert warm_start_step(25, 0.0) == 0 and warm_start_step(25, 1.0) == 0
    assert warm_start_step(25, 0.4) == 15  # 10 of 25 steps run
    assert warm_start_step(4, 0.01) == 3  # at least one step


def test_align_previous_shifts_by_the_stride():
    previous = torch.arange(4.0).view(4, 1, 1, 1)
    aligned = align_previous([0, 1, 2, 3], previous, [2, 3, 4, 5])
    assert aligned.flatten().tolist() == [2.0, 3.0, 3.0, 3.0]  # new frames hold the newest
    assert align_previous([0, 1, 2, 3], previous, [3, 4, 5, 6]) is None  # overlap < half
    # frames before the first shared one (a window reaching further back) take its latents
    reaching_back = align_previous([0, 1, 2, 3], previous, [-1, 1, 2, 3])
    assert reaching_back.flatten().tolist() == [1.0, 1.0, 2.0, 3.0]


def test_warm_starts_keep_only_the_objects_still_in_the_window():
    starts, latents = WarmStarts(), torch.zeros(4, 4, 2, 2)
    for object_id in (1, 2, 3):
        starts.remember(object_id, 0, [0, 1, 2, 3], latents)
    starts.keep_only([2])
    assert len(starts) == 1 and starts.init(2, 0, [0, 1, 2, 3]) is not None
    assert starts.init(1, 0, [0, 1, 2, 3]) is None


def test_warm_start_runs_fewer_steps_on_the_next_overlapping_window(components8, tiny_config):
    config = tiny_config.replace(num_steps=4, warm_start=0.5, min_guidance=1.0, max_guidance=1.0)
    segmenter = AmodalSegmenter(components8, config)
    calls = _counting(segmenter)
    cache, starts = FrameEncodingCache(), WarmStarts()
    segmenter([_track(0)], cache=cache, warm=starts)
    assert len(calls) == 4  # first window: cold, every step
    warm = segmenter([_track(2)], cache=cache, warm=starts)
    assert len(calls) == 4 + 2  # slid by 2 of 4 frames: half the steps
    cold = AmodalSegmenter(components8, config.replace(warm_start=0.0))([_track(2)])
    assert not np.array_equal(warm[0].soft, cold[0].soft)  # it did start elsewhere


def test_warm_start_needs_stamps_and_overlap(components8, tiny_config):
    config = tiny_config.replace(num_steps=4, warm_start=0.5)
    segmenter = AmodalSegmenter(components8, config)
    calls = _counting(segmenter)
    cache, starts = FrameEncodingCache(), WarmStarts()
    no_stamps = ObjectTrack(1, _track(0).masks)
    segmenter([no_stamps], cache=cache, warm=starts)
    segmenter([no_stamps], cache=cache, warm=starts)  # keys 0..T-1, but no stamps: not aligned
    assert len(calls) == 8
    segmenter([_track(0)], cache=cache, warm=starts)
    starts.forget_object(1)  # a lost track starts cold again
    segmenter([_track(1)], cache=cache, warm=starts)
    assert len(calls) == 16
    segmenter([_track(2)], cache=cache)  # no warm-start memory given: cold
    assert len(calls) == 20


def test_decoding_only_published_frames_gives_the_full_decode_masks(
    components12, tiny_config, tracks, inverse_depth
):
    config = tiny_config.replace(decode_chunk_size=2)
    full = AmodalSegmenter(components12, config)(tracks, inverse_depth)
    segmenter = AmodalSegmenter(components12, config)
    part = segmenter(tracks, inverse_depth, frames=[T - 1])
    for a, b in zip(full, part):
        np.testing.assert_array_equal(a.amodal[2:], b.amodal[2:])  # the chunk of frame T-1
        np.testing.assert_array_equal(a.soft[2:], b.soft[2:])
        np.testing.assert_array_equal(b.amodal[:2], b.modal[:2])  # not decoded: modal
        assert b.decoded.tolist() == [False, False, True, True] and a.decoded is None
    assert segmenter.sampler.times.calls["decode"] == 1


def test_chunks_needed():
    assert _chunks_needed(25, 8, None) == [(0, 8), (8, 16), (16, 24), (24, 25)]
    assert _chunks_needed(25, 8, [24]) == [(24, 25)]  # 'latest' decodes 1 frame of 25
    assert _chunks_needed(25, 8, range(20, 25)) == [(16, 24), (24, 25)]
    for wrong in ([], [25], [-1]):  # none, or not a frame of the window: said so
        with pytest.raises(InputError, match="frames must name some of the window's 25 frames"):
            _chunks_needed(25, 8, wrong)


def test_presets_set_steps_guidance_and_warm_start():
    fast = InferenceConfig(preset="fast", num_steps=25)
    for name, value in PRESETS["fast"].items():
        assert getattr(fast, name) == value
    custom = fast.replace(num_steps=3)  # an explicit change leaves the preset
    assert custom.preset == "" and custom.num_steps == 3
    assert fast.replace(seed=1).preset == "fast"
    with pytest.raises(ValueError, match="preset must be one of"):
        InferenceConfig(preset="turbo")


def test_objects_per_call_auto_depends_on_the_device():
    assert InferenceConfig().objects_per_call == 1  # CPU: batching measured slower
    assert InferenceConfig(device="cuda").objects_per_call == 4
    assert InferenceConfig(device="cuda", max_batch_objects=2).objects_per_call == 2
