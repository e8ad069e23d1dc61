"""WindowBuffer: sliding windows over the sampled stream, objects tracked by label id."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.core.frames import MAX_OBJECTS, Frame
from amodal_ros.pipeline.window import BACK, GAP, Window, WindowBuffer, centred_hold_back

P = 125_000_000  # ns, 8 fps
H, W = 6, 8


def frame(i: int, ids=(1,), stamp: int | None = None) -> Frame:
    """Frame i at stamp i * P; object k covers column k (so masks tell objects apart)."""
    labels = np.zeros((H, W), np.int64)
    for k in ids:
        labels[:, k] = k
    rgb = np.full((H, W, 3), i % 256, np.uint8)
    return Frame(i * P if stamp is None else stamp, rgb, labels)


def buffer(num_frames=5, stride=2, timeout_frames=100.0) -> WindowBuffer:
    return WindowBuffer(num_frames, stride, int(timeout_frames * P), P)


def indices(window: Window) -> list[int]:
    return [f.stamp_ns // P for f in window.frames]


def test_docstring_timeline_num_frames_5_stride_2():
    buf = buffer(5, 2)
    got = {i: buf.push(frame(i)) for i in range(13)}
    # frames 0-3: partial windows answering each new frame
    for i in range(4):
        w = got[i]
        assert (w.full, indices(w), w.new_frames) == (False, list(range(i + 1)), 1)
    # frame 4: the first full window, then one every 2 frames
    assert (got[4].full, indices(got[4]), got[4].new_frames) == (True, [0, 1, 2, 3, 4], 1)
    assert got[5] is None and got[7] is None and got[9] is None and got[11] is None
    assert (indices(got[6]), got[6].new_frames) == ([2, 3, 4, 5, 6], 2)
    assert (indices(got[8]), got[8].new_frames) == ([4, 5, 6, 7, 8], 2)
    assert (indices(got[10]), got[10].new_frames) == ([6, 7, 8, 9, 10], 2)
    assert all(got[i].full for i in (4, 6, 8, 10, 12))
    assert got[12].last.stamp_ns == 12 * P


def test_every_frame_is_new_in_exactly_one_window():
    buf = buffer(5, 3)
    answered = []
    for i in range(38):  # full windows at 4, 7, ..., 37
        w = buf.push(frame(i))
        if w is not None:
            answered += indices(w)[-w.new_frames :]
    assert answered == list(range(38))


def test_offline_the_first_full_window_answers_the_frames_before_it():
    """Without partial windows (offline replay) nothing is emitted while the buffer fills; the
    first full window holds every frame so far as new, then the stride goes on as before, and
    every frame is still new in exactly one window."""
    buf = WindowBuffer(5, 2, int(100 * P), P, hold_back=0)
    got = {i: buf.push(frame(i)) for i in range(9)}
    assert all(got[i] is None for i in range(4))
    assert (got[4].full, indices(got[4]), got[4].new_frames) == (True, [0, 1, 2, 3, 4], 5)
    assert (indices(got[6]), got[6].new_frames) == ([2, 3, 4, 5, 6], 2)
    answered = []
    for w in (w for w in got.values() if w is not None):
        answered += indices(w)[-w.new_frames :]
    assert answered == list(range(9))


def test_offline_each_frame_is_answered_by_the_window_it_is_nearest_the_middle_of():
    """Offline with a hold back, each full window answers the frames up to `hold_back` before
    its newest; the rest wait for the next window, and the end of the stream answers the last
    ones: every frame exactly once, each from the window whose middle it is nearest."""
    n, stride = 25, 5
    hold = centred_hold_back(n, stride)
    assert hold == 10 and centred_hold_back(4, 2) == 0 and centred_hold_back(25, 25) == 0
    buf = WindowBuffer(n, stride, int(100 * P), P, hold_back=hold)
    windows = [w for w in (buf.push(frame(i)) for i in range(62)) if w is not None]
    windows.append(buf.flush())
    answered = {}
    for w in windows:
        for i in (indices(w)[t] for t in w.answered()):
            assert i not in answered
            answered[i] = indices(w)
    assert sorted(answered) == list(range(62))
    grid = [indices(w) for w in windows[:-1]]  # a window every stride; then the stream's end
    for i, span in answered.items():
        if span == indices(windows[-1]):
            assert i > 59 - hold  # the ones the last window of the grid held back, and after
            continue
        distances = [abs(s[0] + (n - 1) / 2 - i) for s in grid if i in s]  # to each middle
        assert abs(span[0] + (n - 1) / 2 - i) == min(distances)  # ties: the earlier window
    assert windows[-1].held_back == 0 and buf.flush() is None
    assert [indices(windows[0])[t] for t in windows[0].answered(new=False)] == [14]  # 'latest'
    with pytest.raises(ValueError, match="hold_back must be 0 to num_frames - stride"):
        WindowBuffer(n, stride, P, P, hold_back=21)


def test_offline_a_stream_too_short_for_a_window_is_answered_at_its_end():
    buf = WindowBuffer(5, 2, int(100 * P), P, hold_back=0)
    assert [buf.push(frame(i)) for i in range(3)] == [None, None, None]
    last = buf.flush()
    assert (last.full, indices(last), last.new_frames) == (False, [0, 1, 2], 3)
    assert buf.flush() is None


def test_stride_1_emits_every_frame_once_full():
    buf = buffer(3, 1)
    windows = [buf.push(frame(i)) for i in range(8)]
    assert all(w is not None and w.new_frames == 1 for w in windows)
    assert [w.full for w in windows] == [False, False] + [True] * 6
    assert indices(windows[-1]) == [5, 6, 7]


def test_stride_longer_than_the_window_counts_only_frames_in_it():
    buf = buffer(3, 5)
    windows = {i: buf.push(frame(i)) for i in range(8)}
    assert [i for i, w in windows.items() if w is not None] == [0, 1, 2, 7]
    assert indices(windows[7]) == [5, 6, 7]
    assert windows[7].new_frames == 3  # frames 3 and 4 were never in a window


def test_memory_is_bounded_by_num_frames():
    buf = buffer(4, 2, timeout_frames=3)
    for i in range(500):
        buf.push(frame(i, ids=(1 + i % 7,)))  # ids come and go
        assert len(buf.frames) <= 4
        assert len(buf.last_seen) <= 4  # only ids seen within the timeout
        buf.pop_dropped()


def test_late_object_has_empty_masks_before_it_appears():
    buf = buffer(5, 2)
    for i in range(5):
        w = buf.push(frame(i, ids=(1, 2) if i >= 3 else (1,)))
    assert w.full and w.object_ids == (1, 2)
    masks = w.masks(2)
    assert masks.shape == (5, H, W) and masks.dtype == bool
    assert not masks[:3].any()
    assert masks[3:, :, 2].all() and masks[3:].sum() == 2 * H
    assert w.masks(1)[:, :, 1].all()


def test_vanished_object_is_kept_until_the_timeout_then_dropped_and_reported():
    buf = buffer(3, 1, timeout_frames=2.5)
    seen = {}
    for i in range(8):
        w = buf.push(frame(i, ids=(1, 2) if i <= 2 else (2,)))  # object 1 leaves after frame 2
        seen[i] = w.object_ids
        dropped = buf.pop_dropped()
        assert dropped == ([1] if i == 5 else []), i  # 5 - 2 = 3 frames > 2.5 unseen
    assert [seen[i] for i in range(3, 5)] == [(1, 2), (1, 2)]  # fully hidden, still tracked
    assert all(seen[i] == (2,) for i in range(5, 8))
    assert buf.push(frame(8, ids=(1, 2))).object_ids == (1, 2)  # back: tracked afresh
    assert buf.pop_dropped() == []


def test_an_object_unseen_for_exactly_the_timeout_is_kept():
    buf = buffer(3, 1, timeout_frames=3)
    for i in range(7):
        buf.push(frame(i, ids=(1, 2) if i <= 2 else (2,)))  # object 1 last seen at frame 2
        assert buf.pop_dropped() == ([1] if i == 6 else []), i  # 5 - 2 = 3: not yet longer


def test_an_object_coming_back_within_the_timeout_is_not_dropped():
    buf = buffer(3, 1, timeout_frames=2.5)
    ids = [(1,), (), (), (1,), (), (), (1,)]
    for i, present in enumerate(ids):
        assert buf.push(frame(i, ids=present)).object_ids == (1,)
    assert buf.pop_dropped() == []


def test_an_object_labelled_in_an_answered_frame_keeps_its_result_past_the_timeout():
    # offline, the first window answers frames 0-2 while its newest is 4: object 7, labelled
    # in frames 0-1 only, has timed out by then, yet it is in the frames being answered
    buf = WindowBuffer(5, 2, int(1.0 * P), P, hold_back=2)
    for i in range(5):
        w = buf.push(frame(i, ids=(1, 7) if i < 2 else (1,)))
    assert (w.full, w.new_frames, w.object_ids) == (True, 3, (1, 7))
    assert buf.pop_dropped() == []
    buf.push(frame(5))
    w = buf.push(frame(6))  # frames 2-6, answering 3-4: object 7 is in none of them
    assert w.object_ids == (1,) and buf.pop_dropped() == [7]


def test_every_id_dropped_before_a_restart_is_reported():
    buf = buffer(3, 1, timeout_frames=1.5)
    for i in range(5):
        buf.push(frame(i, ids=(1, 2) if i < 2 else (2,)))  # object 1 times out at frame 4
    buf.push(frame(0, ids=(2,), stamp=P))  # a stamp going back: the stream starts over
    assert sorted(buf.pop_dropped()) == [1, 2]


def test_ids_numbered_anew_every_frame_stay_within_max_objects_newest_frame_first():
    """A segmenter counting its ids up in every frame (no `track_ids`) kept an object_timeout
    of them in each window, every one an object of every published frame; beyond MAX_OBJECTS
    the longest-unseen are dropped and reported, the newest frame's never."""
    buf = WindowBuffer(4, 1, int(5e9), P)  # object_timeout 5 s: 40 frames at 8 fps
    per_frame = 40  # of the 48 pixels
    for i in range(12):
        labels = np.arange(1, H * W + 1, dtype=np.int64).reshape(H, W) % per_frame + 1
        labels += i * per_frame  # 40 new ids, none of them seen before
        window = buf.push(Frame(i * P, np.zeros((H, W, 3), np.uint8), labels))
    newest = set(range(11 * per_frame + 1, 12 * per_frame + 1))
    assert len(window.object_ids) == MAX_OBJECTS and newest <= set(window.object_ids)
    assert len(buf.pop_dropped()) == 12 * per_frame - MAX_OBJECTS
    assert min(window.object_ids) == 12 * per_frame - MAX_OBJECTS + 1  # the oldest went first


def test_frames_missing_counts_model_rate_slots_without_a_frame():
    buf = buffer(5, 1)
    for i in (0, 1, 2, 4, 5):  # slot 3 was lost
        w = buf.push(frame(i))
    assert w.full and w.frames_missing == 1
    for i in (6, 7, 8):
        w = buf.push(frame(i))
    assert indices(w) == [4, 5, 6, 7, 8] and w.frames_missing == 0


def test_frames_missing_tolerates_sampling_jitter():
    buf = buffer(4, 1)
    for i, jitter in enumerate((0, 20, -25, 30)):  # ms off the grid
        w = buf.push(frame(i, stamp=i * P + jitter * 1_000_000))
    assert w.frames_missing == 0


def test_frames_missing_rounds_to_the_nearest_slot_and_is_never_negative():
    buf = buffer(5, 5)
    for stamp in (0, P, 2 * P, 3 * P, 5 * P - 10_000_000):  # slot 4 lost, slot 5 10 ms early
        w = buf.push(frame(0, stamp=stamp))
    assert w.frames_missing == 1
    buf = buffer(3, 3)
    for stamp in (0, int(0.55 * P), int(1.1 * P)):  # three frames in about two slots
        w = buf.push(frame(0, stamp=stamp))
    assert w.frames_missing == 0


def test_stamp_going_back_resets_the_buffer():
    buf = buffer(5, 2)
    for i in range(10):
        buf.push(frame(i, ids=(3,)))
    buf.pop_dropped()
    w = buf.push(frame(0, ids=(4,)))  # a bag loop
    assert (w.full, indices(w), w.new_frames, w.object_ids) == (False, [0], 1, (4,))
    assert buf.pop_dropped() == [3]  # the old stream's objects are reported, caches can go


def test_a_gap_longer_than_a_window_starts_over_and_a_shorter_one_is_reported():
    buf = buffer(5, 2)  # a window spans 5 periods
    for i in range(6):
        buf.push(frame(i, ids=(3,)))
    assert buf.restart_cause(frame(10)) is None and buf.restart_cause(frame(11)) == GAP
    assert buf.restart_cause(frame(4)) == BACK
    assert buf.restart_cause(frame(5, stamp=5 * P - 1)) == BACK  # back by one nanosecond
    w = buf.push(frame(10, ids=(3,)))  # 4 slots lost: still one stretch of video
    assert (w.full, indices(w), w.frames_missing) == (True, [2, 3, 4, 5, 10], 4)
    w = buf.push(frame(16, ids=(3,)))  # 6 periods without a frame: a dropout, a seek
    assert (w.full, indices(w), w.new_frames) == (False, [16], 1)
    assert buf.pop_dropped() == [3]


def test_repeated_stamp_is_ignored():
    buf = buffer(5, 2)
    for i in range(5):
        buf.push(frame(i))
    assert buf.push(frame(4)) is None
    assert len(buf.frames) == 5
    assert buf.push(frame(5)) is None  # the duplicate did not count towards the stride
    w = buf.push(frame(6))
    assert (indices(w), w.new_frames) == ([2, 3, 4, 5, 6], 2)


def test_reset_starts_filling_again():
    buf = buffer(3, 2)
    for i in range(6):
        buf.push(frame(i))
    buf.reset()
    w = buf.push(frame(10))
    assert (w.full, indices(w), w.object_ids) == (False, [10], (1,))


@pytest.mark.parametrize("num_frames, stride", [(0, 1), (4, 0)])
def test_bad_sizes_are_refused(num_frames, stride):
    with pytest.raises(ValueError, match="num_frames and stride"):
        WindowBuffer(num_frames, stride, P, P)
    WindowBuffer(4, 2, P, P, hold_back=2)  # the most a window can hold back: accepted
