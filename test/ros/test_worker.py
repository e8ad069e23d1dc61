"""The node's window queue and worker thread (no ROS needed): drop policy, bounds, survival."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from amodal_ros.core.config import node_configs
from amodal_ros.core.frames import Frame
from amodal_ros.pipeline.window import Window
from amodal_ros.ros.params import parameter_names, parameter_specs
from amodal_ros.ros.worker import InferenceWorker, WindowQueue

_FRAMES: dict[int, Frame] = {}  # one stream's frames, shared by its windows as the buffer does


def _frame(stamp: int) -> Frame:
    return Frame(stamp, np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.int64))


def _window(stamp: int, full: bool = True, new: int = 1, replayed: bool = False) -> Window:
    """A window of the 5 frames up to `stamp`; `replayed`: other frames with those stamps (a
    bag's next loop)."""
    stamps = range(stamp - 4, stamp + 1)
    if replayed:
        return Window(tuple(_frame(t) for t in stamps), (), new, full)
    return Window(tuple(_FRAMES.setdefault(t, _frame(t)) for t in stamps), (), new, full)


def _wait(condition, seconds: float = 10.0) -> bool:
    """Whether `condition` holds within `seconds` (polled every 10 ms)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_queue_drops_oldest_full_windows_and_keeps_partial_ones():
    q = WindowQueue(max_pending=2)
    q.put(_window(0, full=False))
    for stamp in (1, 2, 3, 4):
        q.put(_window(stamp), forget_ids=[stamp * 10])
    assert q.dropped == 2 and len(q) == 3
    assert q.frames_lost == 0  # each dropped window's frames are in the next one
    items = [q.get(0) for _ in range(3)]
    assert [w.last.stamp_ns for w, _ in items] == [0, 3, 4]
    # the dropped windows' new frames are answered by the window that took their place
    assert [w.new_frames for w, _ in items] == [1, 3, 1]
    # cache frees of dropped windows are not lost: they move to the head of the queue
    assert sorted(items[0][1]) == [10, 20]
    assert q.get(0.01) is None


def test_handed_over_frames_are_capped_at_the_window_length():
    q = WindowQueue(max_pending=1)
    q.put(_window(10, new=4))
    q.put(_window(11, new=4))
    (window, _) = q.get(0)
    assert window.new_frames == 5 and q.dropped == 1


def test_a_dropped_window_hands_over_only_frames_the_next_one_holds():
    """Across a bag loop the next full window holds none of the dropped one's frames: it
    answers its own new frames only (no frame twice), and the lost ones are counted."""
    q = WindowQueue(max_pending=1)
    q.put(_window(100, new=2))  # the old loop's last window: frames 99-100 are new
    q.put(_window(4, full=False))  # the new loop starts: answered as a partial window
    q.put(_window(5, new=1))  # its first full window: frames 1-5, frame 5 new
    assert q.dropped == 1 and q.frames_lost == 2
    assert [(w.last.stamp_ns, w.new_frames) for w, _ in (q.get(0), q.get(0))] == [(4, 1), (5, 1)]


def test_a_loop_that_repeats_the_dropped_windows_stamps_is_not_taken_for_its_frames():
    """A short bag under `ros2 bag play --loop` (or sim time restarting) repeats stamps: the
    next loop's window holds other frames with the dropped window's stamps. They were
    answered twice and the dropped ones never, uncounted."""
    q = WindowQueue(max_pending=1)
    q.put(_window(30, new=3))  # the first loop's last full window, its 3 newest frames new
    q.put(_window(30, new=1, replayed=True))  # the next loop reached the same stamps
    (window, _) = q.get(0)
    assert window.new_frames == 1 and q.frames_lost == 3


def test_a_dropped_window_holding_frames_back_hands_over_the_frames_it_answers():
    """A window that holds its newest frames back for the next one (offline,
    `centred_hold_back`) answers those before them: dropped, it hands those over, not its
    newest, and the one its heir does not hold is counted lost."""
    stale = replace(_window(10, new=2), held_back=2)  # answers 7 and 8; 9 and 10 held back
    heir = replace(_window(12, new=2), held_back=2)  # holds 8-12, answers 9 and 10
    q = WindowQueue(max_pending=1)
    q.put(stale)
    q.put(heir)
    (window, _) = q.get(0)
    assert [window.frames[t].stamp_ns for t in window.answered()] == [8, 9, 10]
    assert q.dropped == 1 and q.frames_lost == 1  # frame 7


def test_frames_lost_are_logged_once_per_period_with_their_count(caplog):
    """Inference far behind drops a window every stride: one line per period, not one per
    window (the count goes on in `frames_lost`, which the diagnostics report)."""
    q = WindowQueue(max_pending=1)
    with caplog.at_level("WARNING", logger="amodal_ros.worker"):
        for loop in range(3):  # three bag loops, each losing its last window's 2 new frames
            q.put(_window(100 * (loop + 1), new=2))
            q.put(_window(4 + loop, full=False))
            q.put(_window(5 + loop, new=1))
    assert q.frames_lost > 2  # more than the first loss, which alone was said
    lines = [r.getMessage() for r in caplog.records if "get no result" in r.getMessage()]
    assert lines == [
        "dropped stale windows whose 2 newest frame(s) no later window holds (a bag loop, or "
        "inference far behind): they get no result"
    ]


def test_under_latest_each_dropped_window_loses_its_newest_frame_only():
    """A window answers its newest frame only: counting its new frames the next window does
    not hold said 21 lost where 6 were (stride 6), 33 where 36 were (stride 1)."""
    q = WindowQueue(max_pending=1, answers_new=False)
    for stamp in (10, 16, 22, 28):  # stride 6, 4-frame windows: nothing handed over either
        q.put(_window(stamp, new=5))
    assert q.dropped == 3 and q.frames_lost == 3
    (window, _) = q.get(0)
    assert (window.last.stamp_ns, window.new_frames) == (28, 5)


def test_draining_the_queue_hands_back_every_id_its_windows_carried_to_forget():
    q = WindowQueue(max_pending=5)
    q.put(_window(1), forget_ids=[7])
    q.put(_window(2, full=False))
    q.put(_window(3), forget_ids=[8, 9])
    assert sorted(q.drain()) == [7, 8, 9]  # a deactivation frees their caches
    assert len(q) == 0 and q.waiting_frames() == 0


def test_windows_failing_to_publish_are_counted_and_logged_once_a_period(caplog):
    """A failure after the processor (publishing, freeing caches) was logged with its
    traceback every window and counted nowhere: the health report said OK."""
    q = WindowQueue(max_pending=10)
    published = []

    def publish(window, results, seconds):
        if window.last.stamp_ns % 2:
            raise RuntimeError("publisher gone")
        published.append(window.last.stamp_ns)

    worker = InferenceWorker(q, lambda w: [], publish, lambda ids: None)
    worker.start()
    try:
        for stamp in (1, 2, 3, 4, 5):
            q.put(_window(stamp))
        _wait(lambda: worker.windows_done + worker.windows_failed >= 5, 5)
    finally:
        worker.stop()
    assert worker.windows_failed == 3 and worker.windows_done == 2 and published == [2, 4]
    failures = [r for r in caplog.records if "publishing window" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info  # 5 s apart: the next would say "2 more"
    assert "ending at stamp 1 failed: its unpublished frames get no result" in caplog.text


def test_queue_rejects_bad_bound():
    with pytest.raises(ValueError, match="max_pending"):
        WindowQueue(0)


def test_worker_survives_failures_and_skips_when_idle():
    q = WindowQueue(max_pending=10)
    published, forgotten, running = [], [], threading.Event()
    running.set()

    timed = []

    def process(window):
        if window.last.stamp_ns == 2:
            raise RuntimeError("boom")
        time.sleep(0.05)
        return [window.last.stamp_ns]

    def publish(window, results, seconds):
        published.extend(results)
        timed.append(seconds)

    worker = InferenceWorker(q, process, publish, forgotten.extend, should_run=running.is_set)
    worker.start()
    try:
        for stamp in (1, 2, 3):
            q.put(_window(stamp), forget_ids=[stamp])
        deadline = time.monotonic() + 5
        while worker.windows_done < 2 and time.monotonic() < deadline:  # (after publish)
            time.sleep(0.01)
        assert published == [1, 3] and worker.windows_done == 2
        assert all(0.05 <= seconds < 5 for seconds in timed)  # the window's own time
        while len(forgotten) < 3 and time.monotonic() < deadline:  # after the window
            time.sleep(0.01)
        assert forgotten == [1, 2, 3]
        running.clear()  # nobody subscribed: windows are consumed but not run
        q.put(_window(4))
        while worker.windows_idle < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.windows_idle == 1 and published == [1, 3]
    finally:
        worker.stop()
    assert not worker._thread.is_alive()


def test_every_parameter_is_declared_once_with_a_description():
    specs = parameter_specs()
    names = [n for n, _, _ in specs]
    assert len(names) == len(set(names)) == len(parameter_names())
    assert all(meta["help"] for _, _, meta in specs)
    assert {"checkpoint", "stride", "rgb_topic", "autostart", "num_steps"} <= set(names)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("stride", 0, "stride must be in"),
        ("publish_frames", "sometimes", "publish_frames must be one of"),
        ("frame_rate", "fast", "frame_rate must be float"),
        ("height", 100, "height must be a multiple of 8"),
        ("input_reliability", "maybe", "input_reliability must be one of"),
    ],
)
def test_node_configs_names_the_bad_parameter(name, value, message):
    values = {n: d for n, d, _ in parameter_specs()}
    values[name] = value
    with pytest.raises(ValueError, match=message):
        node_configs(values)


def test_objects_a_restart_dropped_are_forgotten_after_the_old_streams_last_window():
    """At a restart (a bag loop, a gap) one frame completes the old stream's last window and
    drops its objects; their caches were freed before that window ran, so it encoded all its
    frames again instead of the stride's new ones."""
    q = WindowQueue(max_pending=10)
    events, done = [], threading.Event()
    worker = InferenceWorker(
        q,
        lambda w: events.append(("process", w.last.stamp_ns)) or [],
        lambda w, r, seconds: None,
        lambda ids: (events.append(("forget", tuple(ids))), done.set()),
    )
    worker.start()
    try:
        old_last, new_first = _window(50), _window(1000, full=False, replayed=True)
        q.put_all([old_last, new_first], forget_ids=[7, 8])
        assert done.wait(5)
    finally:
        worker.stop()
    assert events == [("process", 50), ("process", 1000), ("forget", (7, 8))]


def test_two_topic_parameters_naming_one_topic_are_refused():
    """An output on an input (overlay_topic on the camera's image) fed the node its own
    results; names are compared as rclpy expands them (relative, `~`, the namespace)."""
    from amodal_ros.core.config import TopicConfig
    from amodal_ros.ros.params import check_topic_names

    check_topic_names(TopicConfig(), "amodal_node", "/")  # the defaults all differ
    clash = TopicConfig(overlay_topic="/cam/image", rgb_topic="image")
    with pytest.raises(ValueError, match="overlay_topic and rgb_topic are both /cam/image"):
        check_topic_names(clash, "amodal_node", "/cam")
    check_topic_names(clash, "amodal_node", "/other")  # /other/image is another topic
    private = TopicConfig(camera_info_out_topic="~/info", camera_info_topic="/amodal_node/info")
    with pytest.raises(ValueError, match="camera_info_out_topic and camera_info_topic are both"):
        check_topic_names(private, "amodal_node", "/")


def test_a_bounded_stop_leaves_a_running_window_and_says_the_thread_still_runs():
    """The node's shutdown waits SHUTDOWN_WAIT_S for the running window, then abandons it
    (os._exit): `stopped` tells it whether the thread still runs one, whatever interrupted
    the wait (a Ctrl-C inside Thread.join marked a running thread stopped)."""
    release = threading.Event()
    q = WindowQueue(max_pending=2)
    worker = InferenceWorker(q, lambda w: release.wait(5) and [], lambda *a: None, lambda i: None)
    assert worker.stopped  # not started: nothing runs
    worker.start()
    q.put(_window(1))
    _wait(lambda: worker.busy, 5)
    started = time.monotonic()
    worker.stop(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3 and not worker.stopped
    release.set()
    worker.stop(timeout=5)
    assert worker.stopped and worker.windows_done == 1


def test_a_window_answering_more_than_the_one_dropped_keeps_its_count():
    queue = WindowQueue(max_pending=1)
    queue.put(_window(104, new=1))  # answers 104
    queue.put(_window(105, new=3))  # answers 103-105 (after a quiet spell): 104 among them
    window, _ = queue.get(0)
    assert window.new_frames == 3 and queue.frames_lost == 0


def test_waiting_frames_counts_the_frames_the_windows_answer():
    queue = WindowQueue(max_pending=5)
    queue.put(_window(204, new=2))
    queue.put(_window(206, new=2))
    assert queue.waiting_frames() == 4


def test_a_closed_queue_answers_at_once_and_an_unstarted_worker_stops_at_once():
    queue = WindowQueue(max_pending=1)
    queue.close()
    started = time.monotonic()
    assert queue.get(timeout=5.0) is None and time.monotonic() - started < 2
    worker = InferenceWorker(queue, lambda w: [], lambda *a: None, lambda ids: None)
    stopping = threading.Thread(target=worker.stop, kwargs={"timeout": None}, daemon=True)
    stopping.start()
    stopping.join(5)
    assert not stopping.is_alive()


def test_a_failing_forget_of_any_kind_leaves_the_worker_running_and_idle():
    def forget(ids):
        raise RuntimeError("cache gone")

    queue = WindowQueue(5)
    worker = InferenceWorker(queue, lambda w: [], lambda *a: None, forget)
    worker.start()
    try:
        queue.put(_window(304), forget_ids=[1])
        queue.put(_window(305), forget_ids=[2])
        assert _wait(lambda: worker.windows_done == 2)
        assert _wait(lambda: not worker.busy)
    finally:
        worker.stop(5.0)


def test_a_publish_failing_because_the_worker_stops_is_no_failed_window():
    """The node destroys its publishers while stopping: that window's publish fails, which
    is no pipeline error for the health report."""
    go = threading.Event()

    def publish(*args):
        go.wait(5)
        raise RuntimeError("publisher destroyed")

    queue = WindowQueue(5)
    worker = InferenceWorker(queue, lambda w: [], publish, lambda ids: None)
    worker.start()
    queue.put(_window(404))
    assert _wait(lambda: worker.busy)
    worker.stop(timeout=0)
    go.set()
    assert _wait(lambda: worker.stopped) and worker.windows_failed == 0
