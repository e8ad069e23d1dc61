"""StreamFront + WindowProcessor end to end with the tiny seeded models, and depth ordering."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from conftest import H, W

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.frames import (
    REASON_DEADLINE_MISSED,
    REASON_EMPTY_MODAL,
    REASON_ERROR,
    REASON_OBJECT_TOO_SMALL,
    REASON_OK,
    REASON_WINDOW_NOT_FULL,
    Frame,
)
from amodal_ros.pipeline import AmodalSegmenter
from amodal_ros.pipeline.factory import Pipelines, resolve_depth_source
from amodal_ros.pipeline.free_space import keep_band
from amodal_ros.pipeline.processor import WindowProcessor, depth_order
from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB, StreamFront
from amodal_ros.pipeline.window import BACK, GAP, SIZE

NUM_FRAMES = 4
P = 125_000_000  # ns: 8 fps, the default model rate
FAR, NEAR = 3.0, 1.0  # m: object 1 behind the bar (object 2)


@pytest.fixture(scope="module")
def infer_config():
    return InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=1)


@pytest.fixture(scope="module")
def mask_only(components8, infer_config):
    return AmodalSegmenter(components8, infer_config)


@pytest.fixture(scope="module")
def mask_depth(components12, infer_config):
    return AmodalSegmenter(components12, infer_config)


@pytest.fixture(scope="module")
def everything_amodal(components8):
    """rgb_sum_threshold 0: every decoded pixel counts as the object, so every other object in
    the frame covers a hidden part: occluders and their depth order become predictable."""
    cfg = InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=1)
    return AmodalSegmenter(components8, cfg.replace(rgb_sum_threshold=0))


def scene(i: int, small: bool = False) -> dict:
    """Raw inputs of frame i: object 1 (a box, 3 m) moves right behind a bar (object 2, 1 m);
    with `small`, a 3x3 object 5 sits in the corner."""
    labels = np.zeros((H, W), np.int32)
    labels[8:24, 10 + 2 * i : 26 + 2 * i] = 1
    labels[:, 30:36] = 2
    if small:
        labels[0:3, 0:3] = 5
    depth = np.full((H, W), 5.0, np.float32)
    depth[labels == 1] = FAR
    depth[labels == 2] = NEAR
    rng = np.random.default_rng(i)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return {RGB: rgb, MASKS: labels, DEPTH: depth}


def make_to_frame(clock=lambda: 0.0):
    def to_frame(m: dict) -> Frame:
        if m[MASKS].ndim != 2:
            raise InputError(f"mask image must be [H, W], got {m[MASKS].shape}")
        depth = m.get(DEPTH)
        return Frame(
            m["stamp_ns"], m[RGB], m[MASKS].astype(np.int64), depth, "32FC1", "cam", clock()
        )

    return to_frame


def run_stream(front, processor, frames, period=P, order=(MASKS, DEPTH, RGB), start=0):
    """Feed frames (dicts of raw inputs) at `period`; returns (windows, results)."""
    windows, results = [], []
    for i, raw in enumerate(frames):
        stamp = start + i * period
        for name in order:
            if name in raw and name in front.sync.inputs:
                for w in front.add(name, stamp, raw[name]):
                    windows.append(w)
                    results += processor.process(w)
    return windows, results


def make(segmenter, clock=None, use_depth=False, depth_source="none", **stream):
    config = StreamConfig(**{"stride": 2, "min_object_pixels": 4, **stream})
    kwargs = {} if clock is None else {"clock": clock}
    pipelines = Pipelines(segmenter, depth_source=depth_source)
    processor = WindowProcessor(pipelines, config, **kwargs)
    front = StreamFront(config, NUM_FRAMES, use_depth, make_to_frame(clock or (lambda: 0.0)))
    return front, processor


def stamps(results):
    return [r.frame.stamp_ns for r in results]


# --- publish policy, stamps, validity ----------------------------------------------------


def test_new_policy_answers_every_frame_once_with_its_own_stamp(mask_only):
    front, processor = make(mask_only, publish_frames="new")
    windows, results = run_stream(front, processor, [scene(i) for i in range(6)])
    # partial windows at frames 0-2, full ones at 3 and 5 (stride 2)
    assert [w.full for w in windows] == [False, False, False, True, True]
    assert stamps(results) == [i * P for i in range(6)]
    for r in results:
        assert r.frame.frame_id == "cam"
        assert [o.object_id for o in r.objects] == [1, 2]
        assert r.window_last_stamp_ns >= r.frame.stamp_ns >= r.window_first_stamp_ns
        assert r.frames_missing == 0
    full = [r for r in results if r.window_frames == NUM_FRAMES]
    assert stamps(full) == [3 * P, 4 * P, 5 * P]
    assert full[1].window_first_stamp_ns == 2 * P and full[1].window_last_stamp_ns == 5 * P
    for r in full:
        for o in r.objects:
            assert (o.valid, o.reason) == (True, REASON_OK)
            assert o.amodal.shape == (H, W) and o.amodal.dtype == bool
            assert (o.amodal >= o.modal).all()  # amodal contains the visible part
            assert (o.modal == (r.frame.labels == o.object_id)).all()
    assert processor.errors == 0
    assert front.frames_in == front.frames_sampled == 6


def test_samples_give_each_frame_its_own_disagreement_inside_the_mask(components8):
    """With 2 samples a pixel is uncertain exactly where the two hypotheses differ, on the
    frame's own hypotheses; the visible part is never uncertain."""
    cfg = InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=1)
    # the tiny model's scores straddle 405 / 765 off the visible part: the samples differ
    two = AmodalSegmenter(components8, cfg.replace(num_samples=2, rgb_sum_threshold=405))
    front, processor = make(two, publish_frames="new")
    _, results = run_stream(front, processor, [scene(i) for i in range(6)])
    full = [o for r in results if r.window_frames == NUM_FRAMES for o in r.objects]
    assert len(full) == 6 and any(o.uncertainty.any() for o in full)
    for o in full:
        assert o.samples.shape == (2, H, W)
        np.testing.assert_array_equal(o.uncertainty == 1.0, o.samples[0] != o.samples[1])
        assert not o.uncertainty[o.modal].any()
        expected = o.uncertainty[o.amodal].sum() / o.amodal.sum()  # not the whole image's
        assert o.mean_uncertainty == pytest.approx(float(expected))


def test_latest_policy_answers_only_the_newest_frame_of_each_window(mask_only):
    front, processor = make(mask_only, publish_frames="latest")
    windows, results = run_stream(front, processor, [scene(i) for i in range(6)])
    assert stamps(results) == [0, P, 2 * P, 3 * P, 5 * P]
    assert stamps(results) == [w.last.stamp_ns for w in windows]


def test_stage_2_gets_every_frame_of_stage_1_whatever_is_published(components8, infer_config):
    """Under 'latest' one frame is published, but stage 2 conditions on every frame's amodal
    mask: stage 1 must decode them all (decoding the published one's chunk of 2 frames only
    failed every window)."""
    from amodal_ros.models.architectures import build_components
    from amodal_ros.pipeline import ContentCompleter

    chunked = infer_config.replace(decode_chunk_size=2)
    segmenter = AmodalSegmenter(components8, chunked)
    completer = ContentCompleter(build_components("tiny", seed=3), chunked)
    config = StreamConfig(stride=2, min_object_pixels=4, publish_frames="latest")
    processor = WindowProcessor(Pipelines(segmenter, completer, depth_source="none"), config)
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame())
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES + 2)])
    ran = [o for r in results if r.window_frames == NUM_FRAMES for o in r.objects]
    assert len(ran) == 4 and processor.errors == 0 and processor.model_windows == 2
    assert all(o.reason == REASON_OK and o.completion is not None for o in ran)


def test_the_smallest_object_run_has_min_object_pixels_in_some_frame():
    from amodal_ros.pipeline.processor import not_run_reason

    masks = np.zeros((2, 8, 8), bool)
    masks[1, :2, :2] = True  # 4 pixels in one frame
    assert not_run_reason(masks, 4) is None
    assert not_run_reason(masks, 5) == REASON_OBJECT_TOO_SMALL


def test_a_window_with_a_missing_frame_says_so_in_its_results(mask_only):
    """A slot of the model's rate without a frame (lost, or rejected) is counted in every
    result of the windows spanning it."""
    front, processor = make(mask_only)
    frames = [scene(i) for i in range(NUM_FRAMES + 1)]
    _, results = run_stream(front, processor, frames[:2])
    _, later = run_stream(front, processor, frames[3:], start=3 * P)  # frame 2's slot empty
    results += later
    spanning = [r for r in results if r.window_first_stamp_ns < 2 * P < r.window_last_stamp_ns]
    assert spanning and all(r.frames_missing == 1 for r in spanning)


def test_an_occluder_5_percent_nearer_is_in_front_and_2_percent_is_a_tie():
    from amodal_ros.pipeline.processor import DEPTH_ORDER_TIE

    labels = np.zeros((4, 8), np.int32)
    labels[:, 4:] = 9  # the occluder over the object's hidden right half
    modal = labels == 0
    amodal = np.ones((4, 8), bool)
    assert DEPTH_ORDER_TIE == 0.02
    for nearer, order in ((1.05, 1), (0.95, -1), (1.015, 0)):
        near = np.where(modal, 1.0, nearer)  # inverse depth: larger is nearer
        assert depth_order(labels, modal, amodal, [9], near) == {9: order}, nearer


def test_partial_windows_publish_modal_as_amodal_flagged_not_full(mask_only):
    front, processor = make(mask_only)
    windows, results = run_stream(front, processor, [scene(i) for i in range(3)])
    assert len(results) == 3 and not any(w.full for w in windows)
    for r in results:
        assert r.window_frames < NUM_FRAMES
        for o in r.objects:
            assert (o.valid, o.reason) == (False, REASON_WINDOW_NOT_FULL)
            assert (o.amodal == o.modal).all() and o.amodal is not o.modal
    assert sum(processor.cache.encoded.values()) == 0  # the model never ran


def test_object_too_small_and_not_visible_are_flagged(mask_only):
    front, processor = make(mask_only, min_object_pixels=16, object_timeout=60.0)
    frames = [scene(i, small=True) for i in range(NUM_FRAMES)]
    frames[0][MASKS][20:30, 60:70] = 9  # object 9: only in frame 0, then tracked but unseen
    frames += [scene(i, small=True) for i in range(NUM_FRAMES, NUM_FRAMES + 2)]
    _, results = run_stream(front, processor, frames)
    last = results[-1]  # the window of frames 2-5: object 9 was seen before it
    assert last.window_frames == NUM_FRAMES
    by_id = {o.object_id: o for o in last.objects}
    assert sorted(by_id) == [1, 2, 5, 9]
    assert (by_id[5].valid, by_id[5].reason) == (False, REASON_OBJECT_TOO_SMALL)
    assert (by_id[5].amodal == by_id[5].modal).all() and by_id[5].modal.sum() == 9
    assert (by_id[9].valid, by_id[9].reason) == (False, REASON_EMPTY_MODAL)
    assert not by_id[9].amodal.any()
    assert by_id[1].valid and by_id[2].valid
    assert processor.cache.encoded["mask"] == 2 * NUM_FRAMES * 2  # objects 1, 2; two windows


# --- deadline, errors, rejected frames ----------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_older_than_the_deadline_is_published_as_modal(mask_only):
    clock = FakeClock()
    front, processor = make(mask_only, clock=clock, deadline=0.5)
    windows, _ = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    full = windows[-1]
    assert full.full and full.last.arrival == 100.0
    encoded = sum(processor.cache.encoded.values())
    clock.now = 100.6  # the worker got to it too late
    (late,) = processor.process(full)
    assert [(o.valid, o.reason) for o in late.objects] == [(False, REASON_DEADLINE_MISSED)] * 2
    assert all((o.amodal == o.modal).all() for o in late.objects)
    assert late.latency == pytest.approx(0.6)
    assert sum(processor.cache.encoded.values()) == encoded  # skipped, not run
    clock.now = 100.4
    (in_time,) = processor.process(full)
    assert [o.reason for o in in_time.objects] == [REASON_OK] * 2
    assert in_time.latency == pytest.approx(0.4)


def test_deadline_does_not_apply_to_frames_without_an_arrival_time(mask_only):
    # bag replay: arrival 0 = unknown; latency is 0 and the deadline cannot be judged
    front, processor = make(mask_only, deadline=0.5)
    windows, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    assert windows[-1].last.arrival == 0.0
    assert [o.reason for o in results[-1].objects] == [REASON_OK] * 2
    assert results[-1].latency == 0.0


def test_model_errors_become_error_results_and_are_counted(mask_only, caplog):
    # camera depth requested but the frames have none: the window fails inside the processor
    front, processor = make(mask_only, depth_source="camera")
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES + 2)])
    assert stamps(results) == [i * P for i in range(NUM_FRAMES)] + [5 * P]
    failed = [r for r in results if r.window_frames == NUM_FRAMES]
    assert len(failed) == 2 and processor.errors == 2
    for r in failed:
        assert [(o.valid, o.reason) for o in r.objects] == [(False, REASON_ERROR)] * 2
        assert all((o.amodal == o.modal).all() for o in r.objects)
    assert "InputError" in caplog.text and "no depth" in caplog.text


def test_a_model_that_overflows_answers_its_window_as_failed(components8, infer_config, caplog):
    """NaN latents (an fp16 UNet out of range) thresholded to background: every object came
    out as its visible mask, reported valid and OK."""
    segmenter = AmodalSegmenter(components8, infer_config)
    good = segmenter.sampler.predict
    segmenter.sampler.predict = lambda *args: good(*args) * float("nan")
    front, processor = make(segmenter)
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    objects = [o for r in results if r.window_frames == NUM_FRAMES for o in r.objects]
    assert objects and all((o.valid, o.reason) == (False, REASON_ERROR) for o in objects)
    assert processor.errors == 1 and "holds NaN or inf" in caplog.text


@pytest.mark.parametrize("model", ["mask_only", "mask_depth"])
def test_a_window_mixing_depth_encodings_is_never_read_as_a_1000x_depth(model, request, caplog):
    """One conversion serves the window: millimetres read as metres would be 1000x off. A
    model that takes depth cannot run the window; a mask-only one runs it without depth
    (depth served only the occluder order and free-space carving)."""
    from dataclasses import replace

    front, processor = make(request.getfixturevalue(model), use_depth=True, depth_source="camera")
    windows, _ = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    frames = list(windows[-1].frames)
    frames[0] = replace(frames[0], depth=(frames[0].depth * 1000).astype(np.uint16),
                        depth_encoding="16UC1")  # fmt: skip
    window = replace(windows[-1], frames=tuple(frames))
    results = processor.process(window)
    assert "mix encodings ['16UC1', '32FC1']" in caplog.text
    objects = [o for r in results for o in r.objects]
    if model == "mask_depth":
        assert all(o.reason == REASON_ERROR for o in objects)
        assert "running it without depth" not in caplog.text  # it cannot: the error says why
    else:
        assert all(o.reason == REASON_OK for o in objects) and processor.errors == 0
        assert "running it without depth" in caplog.text
        assert all(set(o.occluder_order.values()) <= {0} for o in objects)  # order unknown


def test_a_mask_only_model_runs_through_a_covered_depth_camera(mask_only, caplog):
    """All-zero depth (a covered lens, everything too near) is no reason to fail masks that
    never needed depth; said in the log once a period, not once a window."""
    from amodal_ros.core.throttle import Throttle

    front, processor = make(mask_only, use_depth=True, depth_source="camera", stride=1)
    processor._throttle = Throttle(clock=lambda: 0.0)  # all in one period, however slow
    blind = [{**scene(i), DEPTH: np.zeros((H, W), np.float32)} for i in range(NUM_FRAMES + 2)]
    _, results = run_stream(front, processor, blind)
    ran = [r for r in results if r.window_frames == NUM_FRAMES]
    assert len(ran) == 3 and processor.errors == 0
    assert all(o.reason == REASON_OK for r in ran for o in r.objects)
    assert caplog.text.count("depth has no valid pixel") == 1


def test_mask_depth_checkpoint_without_depth_is_an_error_result(mask_depth):
    front, processor = make(mask_depth, depth_source="none")
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    assert [o.reason for o in results[-1].objects] == [REASON_ERROR] * 2
    assert processor.errors == 1


def test_bad_frames_are_reported_with_their_stamp_and_skipped(mask_only):
    errors = []
    config = StreamConfig(stride=2)
    front = StreamFront(
        config, NUM_FRAMES, False, make_to_frame(), on_error=lambda s, e: errors.append((s, e))
    )
    frames = [scene(i) for i in range(6)]
    frames[2][MASKS] = frames[2][MASKS][None]  # a 3-D mask image: to_frame raises InputError
    windows = []
    for i, raw in enumerate(frames):
        for name in (RGB, MASKS):
            windows += front.add(name, i * P, raw[name])
    assert [s for s, _ in errors] == [2 * P]
    assert isinstance(errors[0][1], InputError)
    assert front.frames_rejected == 1 and front.frames_in == 6 and front.frames_sampled == 5
    assert all(2 * P not in [f.stamp_ns for f in w.frames] for w in windows)
    assert windows[-1].full  # the stream went on: frames 0, 1, 3, 4 (then 5)


def test_a_value_error_converting_a_frame_rejects_that_frame_only():
    """numpy and OpenCV raise ValueError at a malformed array: a bad message, as InputError."""

    def malformed(m):
        raise ValueError("cannot reshape array")

    errors = []
    front = StreamFront(
        StreamConfig(), NUM_FRAMES, False, malformed, on_error=lambda *e: errors.append(e)
    )
    front.add(MASKS, 0, None)
    assert front.add(RGB, 0, None) == []
    assert front.frames_rejected == 1 and [(s, type(e)) for s, e in errors] == [(0, ValueError)]


def test_unexpected_conversion_errors_propagate():
    def broken(m):
        raise KeyError("depth")  # a bug, not a bad message: the caller's boundary handles it

    front = StreamFront(StreamConfig(), NUM_FRAMES, False, broken)
    front.add(MASKS, 0, None)
    with pytest.raises(KeyError):
        front.add(RGB, 0, None)


# --- sampling and synchronisation inside the front ---------------------------------------


def test_30_fps_input_is_sampled_to_the_model_rate(mask_only):
    front, _ = make(mask_only, publish_frames="new")
    frames = [scene(i % 8) for i in range(30)]  # one second of 30 fps
    windows = []
    for i, raw in enumerate(frames):
        for name in (RGB, MASKS):
            windows += front.add(name, int(i * 1e9 / 30), raw[name])
    assert front.frames_in == 30
    assert front.frames_sampled == 8
    seen = [f.stamp_ns for w in windows for f in w.frames[-w.new_frames :]]
    assert len(seen) == 8 and np.diff(seen).mean() == pytest.approx(P, rel=0.1)


def test_frames_the_sampler_skips_are_never_converted(mask_only):
    """The callback-side cost of a 30 Hz camera: only the 8 frames a second the model uses are
    converted (decoded, copied); the other 22 cost a stamp comparison."""
    front, _ = make(mask_only, publish_frames="new")
    converted = []
    to_frame = front.to_frame
    front.to_frame = lambda m: converted.append(m["stamp_ns"]) or to_frame(m)
    for i in range(60):  # two seconds of 30 fps
        raw = scene(i % 8)
        for name in (RGB, MASKS):
            front.add(name, int(i * 1e9 / 30), raw[name])
    assert front.frames_in == 60
    assert len(converted) == front.frames_sampled == 16


def test_approximate_sync_pairs_offset_stamps_and_waits_for_depth(mask_only):
    front, _ = make(mask_only, use_depth=True, sync_tolerance=0.01)
    raw = scene(0)
    assert front.add(RGB, 1_000_000_000, raw[RGB]) == []
    assert front.add(MASKS, 1_003_000_000, raw[MASKS]) == []
    (w,) = front.add(DEPTH, 1_000_000_000, raw[DEPTH])
    assert w.last.stamp_ns == 1_000_000_000  # the RGB stamp names the frame
    assert w.last.depth is raw[DEPTH]


def test_exact_sync_pairs_only_equal_stamps_whatever_the_tolerance(mask_only):
    front, _ = make(mask_only, use_depth=True, sync_mode="exact", sync_tolerance=0.01)
    raw = scene(0)
    assert front.add(RGB, 1_000_000_000, raw[RGB]) == []
    assert front.add(MASKS, 1_003_000_000, raw[MASKS]) == []  # within the tolerance: not equal
    assert front.add(DEPTH, 1_000_000_000, raw[DEPTH]) == []  # (approximate: a frame)
    assert front.add(RGB, 1_100_000_000, raw[RGB]) == []
    assert front.add(MASKS, 1_100_000_000, raw[MASKS]) == []
    (w,) = front.add(DEPTH, 1_100_000_000, raw[DEPTH])
    assert [f.stamp_ns for f in w.frames] == [1_100_000_000]


def test_missing_depth_topic_gives_no_windows_and_bounded_queues(mask_only):
    front, _ = make(mask_only, use_depth=True, sync_queue=5)
    for i in range(50):
        raw = scene(0)
        assert front.add(RGB, i * P, raw[RGB]) == [] and front.add(MASKS, i * P, raw[MASKS]) == []
    assert front.frames_in == 0
    assert max(front.sync.pending().values()) <= 5
    assert front.sync.unmatched[RGB] >= 45


def test_bag_loop_restarts_the_stream(mask_only):
    front, processor = make(mask_only, publish_frames="latest")
    frames = [scene(i) for i in range(NUM_FRAMES)]
    first, _ = run_stream(front, processor, frames, order=(RGB, MASKS))
    again, _ = run_stream(front, processor, frames, order=(RGB, MASKS))
    assert [w.full for w in first] == [w.full for w in again] == [False] * 3 + [True]
    assert [w.last.stamp_ns for w in again] == [w.last.stamp_ns for w in first]
    assert front.restarts == {BACK: 1}


def test_a_camera_slower_than_a_window_restarts_it_at_every_frame_and_counts_it(mask_only):
    # 4 frames at 8 fps span 0.5 s; frames 0.6 s apart never share a window, so no window
    # fills and every answer is the visible mask, flagged: what the restart count explains
    front, processor = make(mask_only, publish_frames="latest")
    frames = [scene(i) for i in range(5)]
    windows, results = run_stream(front, processor, frames, period=P * 24 // 5, order=(RGB, MASKS))
    assert [len(w.frames) for w in windows] == [1] * 5 and len(results) == 5
    assert {o.reason for r in results for o in r.objects} == {REASON_WINDOW_NOT_FULL}
    assert front.restarts == {GAP: 4}


def test_a_camera_changing_resolution_starts_the_window_over_and_every_frame_is_answered(
    mask_only,
):
    def doubled(raw: dict) -> dict:  # the same scene at twice the resolution
        return {k: np.repeat(np.repeat(v, 2, axis=0), 2, axis=1) for k, v in raw.items()}

    front, processor = make(mask_only, publish_frames="new")
    frames = [scene(i) for i in range(6)] + [doubled(scene(i)) for i in range(6, 12)]
    windows, results = run_stream(front, processor, frames)
    for w in front.flush():
        results += processor.process(w)
    assert front.restarts == {SIZE: 1}
    assert processor.errors == 0  # before: windows mixing both sizes failed to stack
    assert stamps(results) == [i * P for i in range(12)]
    assert results[-1].objects[0].amodal.shape == (2 * H, 2 * W)
    assert {o.reason for r in results[-3:] for o in r.objects} == {REASON_OK}


def test_a_stride_longer_than_the_window_is_refused_where_every_frame_is_answered(mask_only):
    with pytest.raises(
        InputError, match=f"stride 5 is longer than the model's window of {NUM_FRAMES}"
    ):
        make(mask_only, stride=NUM_FRAMES + 1, publish_frames="new")
    make(mask_only, stride=NUM_FRAMES, publish_frames="new")  # every frame in one window
    make(mask_only, stride=NUM_FRAMES + 1, publish_frames="latest")  # one frame a window anyway


def test_a_bag_loop_first_answers_the_frames_waiting_for_a_stride(mask_only):
    """Stride 3: the first pass ends 2 frames after its last full window; those 2 are
    answered when the stamps jump back, before the second pass starts over."""
    front, _ = make(mask_only, stride=3, publish_frames="new")
    answered = []
    for _ in range(2):
        for i in range(NUM_FRAMES + 2):
            raw = scene(i)
            for name in (RGB, MASKS):
                for w in front.add(name, 100 * P + i * P, raw[name]):
                    answered += [f.stamp_ns for f in w.frames[len(w.frames) - w.new_frames :]]
    answered += [f.stamp_ns for w in front.flush() for f in w.frames[-w.new_frames :]]
    assert answered == 2 * [100 * P + i * P for i in range(NUM_FRAMES + 2)]


# --- depth: camera, model, none -----------------------------------------------------------


def test_camera_depth_orders_occluders(everything_amodal):
    # free space kept: the whole image stays "amodal", so every object covers the other
    front, processor = make(
        everything_amodal, use_depth=True, depth_source="camera", free_space_margin=0.0
    )
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    objects = {o.object_id: o for o in results[-1].objects}
    box, bar = objects[1], objects[2]
    assert box.valid and bar.valid
    assert box.occluders[2] == int((bar.modal & box.amodal).sum()) > 0
    assert box.occluder_order == {2: +1}  # the bar (1 m) is nearer than the box (3 m)
    assert bar.occluder_order == {1: -1}  # the box hiding the bar would be implausible
    assert 0 < box.occlusion_ratio < 1


def test_an_occluder_without_depth_returns_has_no_depth_order(everything_amodal):
    """A black bar gives the camera no return: its depth is unknown (0), not that of the box
    beside it, which the model's input fills its holes with (a tilted box made it +1 or -1
    by which side the bar covered, and the grasp example dropped a -1 occluder)."""
    front, processor = make(
        everything_amodal, use_depth=True, depth_source="camera", free_space_margin=0.0
    )
    frames = []
    for i in range(NUM_FRAMES):
        raw = scene(i)
        tilted = FAR + 0.2 * np.arange(W, dtype=np.float32)[None, :].repeat(H, 0)
        raw[DEPTH] = np.where(raw[MASKS] == 1, tilted, raw[DEPTH])
        raw[DEPTH][raw[MASKS] == 2] = 0.0  # no return
        frames.append(raw)
    _, results = run_stream(front, processor, frames)
    objects = {o.object_id: o for o in results[-1].objects}
    assert objects[1].occluders[2] > 0 and objects[1].occluder_order == {2: 0}


@pytest.mark.parametrize(
    "k, size, said",
    [
        ([0.0] * 9, (W, H), "uncalibrated (fx 0, fy 0"),
        ([50.0, 0, W - 0.5, 0, 50.0, H - 0.5, 0, 0, 1], (2 * W, 2 * H), f"for {2 * W}x{2 * H}"),
    ],
)
def test_unusable_camera_info_is_said_in_the_log_once_not_only_per_object(
    everything_amodal, caplog, k, size, said
):
    from types import SimpleNamespace

    from amodal_ros.core.frames import EXTENT_BAD_CAMERA_INFO
    from amodal_ros.core.throttle import Throttle

    front, processor = make(everything_amodal, use_depth=True, depth_source="camera")
    processor._throttle = Throttle(clock=lambda: 0.0)  # all in one period, however slow
    info = SimpleNamespace(k=k, width=size[0], height=size[1])
    bad = 0
    for n in range(NUM_FRAMES + 2):
        frame = scene(n)
        for name in (MASKS, DEPTH, RGB):
            for window in front.add(name, n * P, frame[name]):
                for f in window.frames:
                    f.camera_info = info
                results = processor.process(window)
                bad += sum(
                    o.extent.reason == EXTENT_BAD_CAMERA_INFO for r in results for o in r.objects
                )
    reasons = {o.extent.reason for r in results for o in r.objects if o.valid}
    assert reasons == {EXTENT_BAD_CAMERA_INFO}
    said_lines = [r.message for r in caplog.records if "no 3D extents" in r.message]
    # once a period, not once per object and frame
    assert len(said_lines) == 1 < bad, said_lines
    assert said in said_lines[0]
    assert f"the images are {W}x{H}" in said_lines[0] or "calibrate the camera" in said_lines[0]


def test_camera_depth_removes_hidden_parts_where_it_sees_past_the_object(everything_amodal):
    """Every pixel is predicted (threshold 0): the box (3 m) keeps the bar's pixels (1 m, in
    front of it: it may be hidden there) and loses the background's (5 m: it would be seen)."""
    front, processor = make(everything_amodal, use_depth=True, depth_source="camera")
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    box, bar = results[-1].objects
    background = scene(NUM_FRAMES - 1)[DEPTH] == 5.0
    distance = cv2.distanceTransform((~box.modal).astype(np.uint8), cv2.DIST_L2, 5)
    keep = keep_band((H, W), (32, 64))  # pixels next to the visible box are never removed
    assert box.amodal[scene(0)[MASKS] == 2].all()  # behind the bar: kept
    assert not (box.amodal & background & (distance > keep + 1)).any()
    assert (box.amodal & background).any()  # (within the band)
    assert box.soft[box.amodal].min() > 0 and box.soft[~box.amodal].max() == 0
    # the bar is nearest: it can hide behind nothing there, so it keeps little beyond itself
    assert (bar.amodal & ~bar.modal).sum() < 0.1 * (~bar.modal).sum()
    # without camera depth (or with the margin 0) nothing is removed
    for source, margin in (("none", 0.1), ("camera", 0.0)):
        front, processor = make(
            everything_amodal, use_depth=True, depth_source=source, free_space_margin=margin
        )
        _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
        assert all(o.amodal.all() for o in results[-1].objects), source


def test_millimetre_glints_are_no_depth_to_carve_free_space_by(everything_amodal):
    """16UC1 depth whose box reads 3 mm (glints on a shiny box, no real return): the box has
    no depth to compare with, so nothing is carved (3 mm passed the 5 cm floor as 0.003 m would
    not, and every surface behind the box counted as free space)."""
    from dataclasses import replace

    front, processor = make(everything_amodal, use_depth=True, depth_source="camera")
    windows, _ = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    frames = []
    for frame in windows[-1].frames:
        millimetres = (frame.depth * 1000).astype(np.uint16)
        millimetres[frame.labels == 1] = 3
        frames.append(replace(frame, depth=millimetres, depth_encoding="16UC1"))
    results = processor.process(replace(windows[-1], frames=tuple(frames)))
    box = results[-1].objects[0]
    assert box.valid and box.amodal.all()


def test_a_segmenters_spurious_blob_is_not_published_as_part_of_the_object(components8):
    """The label has a 2x2 blob of the box's id far from it: the published amodal mask (here
    the visible one: threshold 764 adds nothing) drops it, the modal mask keeps the input."""
    cfg = InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=1)
    visible_only = AmodalSegmenter(components8, cfg.replace(rgb_sum_threshold=764))

    def with_blob(i):
        raw = scene(i)
        raw[MASKS][28:30, 56:58] = 1
        return raw

    for share, kept in ((0.2, False), (0.0, True)):
        front, processor = make(visible_only, detached_part_share=share)
        _, results = run_stream(front, processor, [with_blob(i) for i in range(NUM_FRAMES)])
        box = results[-1].objects[0]
        assert box.valid and box.modal[28:30, 56:58].all()
        assert box.amodal[28:30, 56:58].all() == kept, share
        assert (box.amodal == (box.modal if kept else scene(NUM_FRAMES - 1)[MASKS] == 1)).all()


def test_without_depth_occluder_order_is_unknown(everything_amodal):
    front, processor = make(everything_amodal, depth_source="none")
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    for o in results[-1].objects:
        assert o.occluders and set(o.occluder_order.values()) == {0}
        assert list(o.occluder_order) == list(o.occluders)


def test_mask_depth_checkpoint_with_camera_depth(mask_depth):
    front, processor = make(mask_depth, use_depth=True, depth_source="camera")
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES + 2)])
    assert [o.reason for r in results[-2:] for o in r.objects] == [REASON_OK] * 4
    # one depth encoding per frame, shared by both objects; mask encodings per object
    assert processor.cache.encoded["mask"] == 2 * (NUM_FRAMES + 2)
    assert processor.cache.encoded["depth"] >= NUM_FRAMES + 2
    # camera depth is converted once per frame, not once per window it is in
    assert processor.cache.encoded["camera_depth"] == NUM_FRAMES + 2
    # and hashed once (every window's cache lookup hashed all its frames: ~0.2 s at 720p)
    assert processor.digests.computed == NUM_FRAMES + 2


@pytest.fixture(scope="module")
def tiny_depth_anything():
    from amodal_ros.depth.depth_anything import DepthAnythingDepth
    from amodal_ros.models.architectures import build_depth_anything

    return DepthAnythingDepth(build_depth_anything("tiny", seed=0), input_size=28)


def test_depth_model_runs_once_per_new_frame_and_not_on_stale_content(
    mask_depth, tiny_depth_anything
):
    config = StreamConfig(stride=2, min_object_pixels=4)
    pipelines = Pipelines(mask_depth, depth=tiny_depth_anything, depth_source="model")
    processor = WindowProcessor(pipelines, config)
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame())
    frames = [scene(i) for i in range(NUM_FRAMES + 2)]
    _, results = run_stream(front, processor, frames)
    assert [o.reason for r in results[-2:] for o in r.objects] == [REASON_OK] * 4
    assert processor.cache.encoded["depth_model"] == NUM_FRAMES + 2  # the slide: 2 new frames
    # a sim-time reset replays the same stamps with other images (the node's new stream at
    # each activation): no stale depth is reused
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame())
    other = [scene(i + 10) for i in range(NUM_FRAMES)]
    run_stream(front, processor, other)
    assert processor.cache.encoded["depth_model"] == 2 * NUM_FRAMES + 2


def test_per_frame_cache_encodes_only_new_frames_when_sliding(mask_only):
    front, processor = make(mask_only, stride=1)
    run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    assert processor.cache.encoded["mask"] == 2 * NUM_FRAMES
    run_stream(
        front,
        processor,
        [scene(i) for i in range(NUM_FRAMES, NUM_FRAMES + 2)],
        start=NUM_FRAMES * P,
    )
    assert processor.cache.encoded["mask"] == 2 * NUM_FRAMES + 2 * 2  # 2 frames x 2 objects
    processor.forget([1])
    run_stream(front, processor, [scene(NUM_FRAMES + 2)], start=(NUM_FRAMES + 2) * P)
    # object 1 was forgotten: its whole window is encoded again, object 2 only its new frame
    assert processor.cache.encoded["mask"] == 2 * NUM_FRAMES + 4 + NUM_FRAMES + 1


def test_from_config_loads_and_resolves_depth(published_folder, infer_config):
    stream = StreamConfig(checkpoint=str(published_folder), depth_source="camera")
    processor = WindowProcessor.from_config(stream, infer_config)
    assert processor.depth_source == "camera" and processor.segmenter.needs_depth
    assert processor.num_frames == NUM_FRAMES
    with pytest.raises(InputError, match="mask\\+depth checkpoint"):
        WindowProcessor.from_config(stream.replace(depth_source="none"), infer_config)
    with pytest.raises(InputError, match="checkpoint"):
        WindowProcessor.from_config(StreamConfig(), infer_config)


# --- depth_order and resolve_depth_source by hand -----------------------------------------


def test_depth_order_by_hand():
    labels = np.array([[1, 1, 2, 3]])
    modal = labels == 1
    amodal = np.ones_like(modal)
    covered = {2: 1, 3: 1}
    nearness = np.array([[1.0, 1.0, 2.0, 0.5]])  # 2 nearer than the object, 3 farther
    assert depth_order(labels, modal, amodal, covered, nearness) == {2: 1, 3: -1}
    assert depth_order(labels, modal, amodal, covered, None) == {2: 0, 3: 0}
    empty = np.zeros_like(modal)  # nothing visible to compare with
    assert depth_order(labels, empty, amodal, covered, nearness) == {2: 0, 3: 0}
    assert depth_order(labels, modal, amodal, {}, nearness) == {}
    tie = np.array([[1.0, 1.0, 1.0, 1.0]])  # equal depths (e.g. millimetre steps): unknown
    assert depth_order(labels, modal, amodal, covered, tie) == {2: 0, 3: 0}
    near_tie = np.array([[1.0, 1.0, 1.01, 0.99]])  # 1 % apart: touching, or the camera's noise
    assert depth_order(labels, modal, amodal, covered, near_tie) == {2: 0, 3: 0}
    unmeasured = np.array([[1.0, np.nan, np.nan, 0.5]])  # 2 gave no return: unknown
    assert depth_order(labels, modal, amodal, covered, unmeasured) == {2: 0, 3: -1}


def test_depth_order_uses_medians():
    labels = np.array([[1, 1, 1, 2, 2, 2]])
    modal, amodal = labels == 1, np.ones((1, 6), bool)
    # object 1 visible median 1.0 (one outlier); occluder 2 median 1.5 despite an outlier
    near = np.array([[1.0, 1.0, 9.0, 1.5, 1.5, 0.0]])
    assert depth_order(labels, modal, amodal, {2: 3}, near) == {2: 1}
    assert depth_order(labels, modal, amodal, {2: 3}, np.array([[5.0, 5.0, 5, 1, 1, 1]])) == {
        2: -1
    }


@pytest.mark.parametrize(
    "source, depth_model, needs_depth, expected, said",
    [
        ("auto", "", False, "none", "depth_source 'auto' takes no depth: objects get no 3D"),
        ("auto", "", True, "camera", ""),
        (
            "auto",
            "/da2",
            False,
            "model",
            "ignores depth (model); it serves the occluders' depth order\n",
        ),
        ("auto", "/da2", True, "model", ""),
        (
            "camera",
            "",
            False,
            "camera",
            "ignores depth (camera); it serves the occluders' "
            "depth order, free-space carving and 3D extents\n",
        ),
        ("camera", "", True, "camera", ""),
        ("model", "/da2", True, "model", ""),
        ("none", "", False, "none", ""),  # asked for: nothing to say
    ],
)
def test_resolve_depth_source(source, depth_model, needs_depth, expected, said, caplog):
    """The source, and what a mask-only checkpoint does with depth, said once at build."""
    config = StreamConfig(depth_source=source, depth_model=depth_model)
    with caplog.at_level(logging.INFO, logger="amodal_ros.factory"):
        assert resolve_depth_source(config, needs_depth) == expected
    assert said in caplog.text if said else not caplog.text


def test_resolve_depth_source_errors_say_what_to_set():
    with pytest.raises(InputError, match="depth_model is empty"):
        resolve_depth_source(StreamConfig(depth_source="model"), needs_depth=True)
    with pytest.raises(InputError, match="/ckpt is a mask\\+depth checkpoint.*'camera'"):
        resolve_depth_source(StreamConfig(depth_source="none", checkpoint="/ckpt"), True)


@pytest.mark.parametrize("policy", ["new", "latest"])
def test_offline_the_frames_before_the_first_window_wait_for_it_under_new(mask_only, policy):
    """A replay (offline) with publish_frames 'new' answers the frames before the first full
    window with the model, in that window; with 'latest' that window publishes only its newest
    frame, so the earlier ones are answered at once, as a live node answers them."""
    config = StreamConfig(stride=2, min_object_pixels=4, publish_frames=policy)
    processor = WindowProcessor(Pipelines(mask_only, depth_source="none"), config)
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame(), offline=True)
    windows, results = run_stream(front, processor, [scene(i) for i in range(6)])
    answered = range(6) if policy == "new" else (0, 1, 2, 3, 5)  # 'latest': a window's newest
    assert stamps(results) == [i * P for i in answered]
    if policy == "new":
        assert [(w.full, w.new_frames) for w in windows] == [(True, NUM_FRAMES), (True, 2)]
        assert {o.reason for r in results for o in r.objects} == {REASON_OK}
    else:
        assert [w.full for w in windows] == [False, False, False, True, True]


def test_a_bad_frame_gives_its_sampling_slot_to_the_next_frame():
    # 16 fps camera, 8 fps model: frames 0, 2, 4 are sampled; when frame 2 is bad, frame 3
    # takes its slot instead of the model losing a frame
    front = StreamFront(StreamConfig(stride=1), NUM_FRAMES, False, make_to_frame(), lambda s, e: 0)
    frames = [scene(i) for i in range(6)]
    frames[2][MASKS] = frames[2][MASKS][None]
    kept = []
    for i, raw in enumerate(frames):
        for name in (RGB, MASKS):
            kept += [w.last.stamp_ns for w in front.add(name, i * P // 2, raw[name])]
    assert kept == [0, 3 * P // 2, 4 * P // 2]


def test_flush_answers_frames_after_the_last_window(mask_only):
    front, processor = make(mask_only, stride=3, publish_frames="new", sync_tolerance=0.01)
    windows = []
    for i in range(NUM_FRAMES + 2):  # full window at frame 3, then 2 frames short of a stride
        raw = scene(i)
        windows += front.add(MASKS, i * P - 1_000_000, raw[MASKS])  # masks stamped 1 ms early
        windows += front.add(RGB, i * P, raw[RGB])
    # the last RGB waits for a later mask that could be nearer; the end of stream settles it
    assert front.sync.pending() == {RGB: 1, MASKS: 1}
    answered = [f.stamp_ns for w in windows for f in w.frames[len(w.frames) - w.new_frames :]]
    flushed = front.flush()
    assert len(flushed) == 1 and flushed[0].full
    answered += [f.stamp_ns for f in flushed[0].frames[-flushed[0].new_frames :]]
    assert answered == [i * P for i in range(NUM_FRAMES + 2)]
    assert front.flush() == []  # nothing left
    results = processor.process(flushed[0])
    assert [r.frame.stamp_ns for r in results] == answered[-flushed[0].new_frames :]


def test_cache_holds_only_the_current_window_over_a_long_stream(mask_only):
    front, processor = make(mask_only, stride=1)
    windows, _ = run_stream(front, processor, [scene(i % 8) for i in range(16)])
    first_of_last = windows[-1].frames[0].stamp_ns
    stamps_cached = {k[2] for k in processor.cache._entries}
    assert stamps_cached and min(stamps_cached) >= first_of_last
    assert processor.cache.encoded["mask"] >= 16  # each frame was encoded once, then dropped


def test_a_restart_frees_the_warm_starts_of_the_objects_it_dropped(components8):
    """A restart's last window runs after its objects' ids were forgotten (replay and the
    node forget them as the restart is seen): it remembered their warm-start latents again,
    for ids never seen after (track_ids), so a looped bag grew them without bound."""
    seg = AmodalSegmenter(
        components8,
        InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=2, warm_start=0.5),
    )
    config = StreamConfig(stride=2, min_object_pixels=4, track_ids=True)
    processor = WindowProcessor(Pipelines(seg, depth_source="none"), config)
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame())
    sizes = []
    for _ in range(4):  # a bag played in a loop: the stamps go back each time
        for i in range(5):
            windows = front.add(MASKS, 10**9 + i * P, scene(i)[MASKS])
            windows += front.add(RGB, 10**9 + i * P, scene(i)[RGB])
            processor.forget(front.buffer.pop_dropped())  # replay's order
            for window in windows:
                processor.process(window)
        sizes.append(len(processor.warm))
    assert front.restarts[BACK] == 3
    assert sizes[-1] == sizes[0]  # before: 2, 4, 6, 8


def test_answering_waiting_frames_is_live_only():
    """A quiet live stream answers the frames waiting for a stride at once; offline the end
    is flushed, and a window cut early there made the next one re-answer held-back frames."""
    config = StreamConfig(stride=2, min_object_pixels=4, publish_frames="new")
    for offline in (False, True):
        front = StreamFront(config, 8, False, make_to_frame(), offline=offline)
        windows = []
        for i in range(9):  # a full window at 8, one frame waiting for a stride
            for name in (MASKS, RGB):
                windows += front.add(name, i * P, scene(i)[name])
        early = front.answer_waiting()
        assert [w.last.stamp_ns for w in early] == ([] if offline else [8 * P])
        for i in range(9, 20):
            for name in (MASKS, RGB):
                windows += front.add(name, i * P, scene(i)[name])
        windows += early + front.flush()
        answered = sorted(
            w.frames[j].stamp_ns
            for w in windows
            for j in range(len(w.frames) - w.held_back - w.new_frames, len(w.frames) - w.held_back)
        )
        assert answered == [i * P for i in range(20)], offline


def test_a_deadline_of_0_is_none_and_a_window_just_at_its_deadline_runs(mask_only):
    """`deadline` 0 turns the deadline off: a window seconds late still runs (answered as
    modal, every window of a slow machine lost its amodal masks); with a deadline, a window
    exactly that late is in time, as the parameter reads (a window older than it is skipped)."""
    clock = FakeClock()
    front, processor = make(mask_only, clock=clock, deadline=0.0)
    windows, _ = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    clock.now = 110.0  # 10 s late
    (late,) = processor.process(windows[-1])
    assert [o.reason for o in late.objects] == [REASON_OK] * 2
    processor.config = processor.config.replace(deadline=0.5)
    clock.now = 100.5  # arrival 100.0: exactly the deadline
    (in_time,) = processor.process(windows[-1])
    assert [o.reason for o in in_time.objects] == [REASON_OK] * 2


def test_a_warm_up_that_fails_says_so(mask_only, mask_depth):
    """The node warms up before its first live window and reports a failed warm-up (a model
    that needs depth the stream has none of): a failed one returns None, not seconds that
    read as a model ready to go."""
    processor = make(mask_depth, depth_source="none")[1]
    assert processor.warm_up(H, W) is None
    ok = make(mask_only)[1].warm_up(H, W)
    assert ok is not None and ok[1] == 1


def test_a_window_whose_objects_all_are_too_small_skips_stage_2(components8, infer_config):
    """With stage 2 loaded, a window where no object is big enough to run has nothing to
    complete: its objects are answered OBJECT_TOO_SMALL, not as a failed window."""
    from amodal_ros.models.architectures import build_components
    from amodal_ros.pipeline import ContentCompleter

    segmenter = AmodalSegmenter(components8, infer_config)
    completer = ContentCompleter(build_components("tiny", seed=3), infer_config)
    config = StreamConfig(stride=2, min_object_pixels=10_000)
    processor = WindowProcessor(Pipelines(segmenter, completer, depth_source="none"), config)
    front = StreamFront(config, NUM_FRAMES, False, make_to_frame())
    _, results = run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    assert [o.reason for o in results[-1].objects] == [REASON_OBJECT_TOO_SMALL] * 2
    assert processor.errors == 0 and processor.model_windows == 0


def test_forgetting_a_lost_object_frees_its_warm_start(components8):
    """The node forgets the objects the tracker lost: their warm-start latents go with them
    (kept, they grew with every id a long stream saw). A reset, and the warm-up window before
    the first live one, leave no latents or cached encodings behind (the warm-up's object 1
    would have warm-started the stream's object 1)."""
    seg = AmodalSegmenter(
        components8,
        InferenceConfig(height=32, width=64, num_frames=NUM_FRAMES, num_steps=2, warm_start=0.5),
    )
    front, processor = make(seg)
    run_stream(front, processor, [scene(i) for i in range(NUM_FRAMES)])
    kept = len(processor.warm)
    assert kept > 0
    processor.forget([1])
    assert 0 < len(processor.warm) < kept
    processor.forget([2])
    assert len(processor.warm) == 0
    more = [scene(i) for i in range(NUM_FRAMES, NUM_FRAMES + 2)]
    run_stream(front, processor, more, start=NUM_FRAMES * P)
    assert len(processor.warm) > 0 and len(processor.cache) > 0
    processor.reset()
    assert len(processor.warm) == len(processor.cache) == 0
    assert processor.warm_up(H, W) is not None
    assert len(processor.warm) == len(processor.cache) == 0


def test_occluders_are_ordered_by_a_depth_models_estimate(everything_amodal, tiny_depth_anything):
    """With depth_source 'model' the occluders' order comes from the model's inverse depth,
    also where the camera's depth (there for the 3D extents) has no return on the bar: the
    object and its occluder get an order, each the other's opposite (the tiny seeded model's
    estimate is arbitrary: which one is nearer is not the test)."""
    config = StreamConfig(stride=2, min_object_pixels=4)
    pipelines = Pipelines(everything_amodal, depth=tiny_depth_anything, depth_source="model")
    processor = WindowProcessor(pipelines, config)
    front = StreamFront(config, NUM_FRAMES, True, make_to_frame())
    frames = [scene(i) for i in range(NUM_FRAMES)]
    for raw in frames:
        raw[DEPTH][raw[MASKS] == 2] = 0.0  # a black bar: no return
    _, results = run_stream(front, processor, frames)
    box, bar = results[-1].objects
    assert box.occluders[2] > 0 and bar.occluders[1] > 0
    assert box.occluder_order[2] == -bar.occluder_order[1] != 0
