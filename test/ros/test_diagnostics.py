"""The node's health report (no ROS needed but to publish it): what changed since the last
report, model and pass-through windows apart, and the warnings a user should see."""

from __future__ import annotations

from collections import Counter

import pytest

from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB
from amodal_ros.pipeline.sync import StampSynchronizer
from amodal_ros.pipeline.window import BACK, GAP, SIZE
from amodal_ros.ros.diagnostics import (
    CAMERA_INFO,
    ERROR,
    OK,
    WARN,
    Counters,
    StreamHealth,
    spread,
)

TOLERANCE = "stamps within sync_tolerance=0.01 s"
TOPICS = {RGB: "/cam/rgb", MASKS: "/seg/labels", DEPTH: "/cam/depth"}
LIVE = Counter({RGB: 8, MASKS: 8, DEPTH: 8})  # a period's messages of a live camera


def test_model_and_pass_through_windows_are_reported_apart():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0)
    now = Counters(
        time=2.0,
        received=Counter({RGB: 60, MASKS: 58, DEPTH: 20}),
        matched=20,
        model_windows=3,
        passthrough=4,
        model_seconds=[1.0, 2.0, 3.0],
        end_to_end=[2.5],
        queued=2,
    )
    report = health.update(now)
    values = report.values
    assert values["input rate rgb (Hz)"] == "30.00" and values["queue depth"] == "2"
    assert values["model windows"] == "3" and values["pass-through windows"] == "4"
    assert values["model window time p50/p95/max (s)"] == "2.000/2.900/3.000"
    assert values["end-to-end latency p50/p95/max (s)"] == "2.500/2.500/2.500"
    assert values["input rate masks (Hz)"] == "29.00"
    assert values["input rate depth (Hz)"] == "10.00"
    assert report.level == OK and not report.warnings


def test_drops_unmatched_and_silent_inputs_warn_and_errors_are_errors():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0)
    health.update(Counters(time=1.0, received=Counter({RGB: 10}), dropped=1))
    report = health.update(
        Counters(
            time=2.0,
            received=Counter({RGB: 20, MASKS: 5}),
            unmatched=Counter({RGB: 3}),
            dropped=3,
            lost=5,
            deadline_missed=1,
        )
    )
    assert report.level == WARN
    text = " ".join(report.warnings)
    assert "dropped 2 stale window(s)" in text and "unmatched messages" in text
    assert (report.values["dropped windows"], report.values["frames lost with them"]) == ("3", "5")
    assert "no partner with stamps within sync_tolerance=0.01 s" in text
    assert "nothing received yet on: depth (/cam/depth)" in text  # the silent input, named
    assert report.values["deadline misses"] == "1"
    assert "raise `stride` or lower `num_steps`" in text  # no window timed yet
    failed = health.update(Counters(time=3.0, received=Counter({RGB: 20, MASKS: 5}), errors=2))
    assert failed.level == ERROR and "2 window(s) failed in the last 1.0 s" in failed.message
    # no new failure: the status recovers, the total stays in the values
    later = health.update(
        Counters(time=4.0, received=Counter({RGB: 28, MASKS: 5}), matched=5, errors=2)
    )
    assert later.level == OK and later.values["pipeline errors"] == "2"


def test_a_silent_camera_rejected_frames_and_failed_callbacks_warn():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0)
    silent = health.update(Counters(time=2.0))
    assert silent.level == WARN
    assert silent.warnings == [
        "no RGB message for 2.0 s on /cam/rgb: is the camera running, and the topic remapped?"
    ]
    bad = health.update(
        Counters(
            time=3.0,
            received=Counter({RGB: 8, MASKS: 8, "callback_errors": 1}),
            matched=8,
            rejected=8,
            repeated=7,
            behind=3,
        )
    )
    assert bad.level == WARN and bad.values["frames rejected"] == "8"
    assert bad.values["frames with a repeated stamp"] == "7"
    assert bad.values["images stamped behind a paired frame"] == "3"
    rejected, repeated, behind, failed = bad.warnings
    assert rejected.startswith("8 frame(s) rejected in the last 1.0 s")
    assert repeated.startswith("7 frame(s) in the last 1.0 s repeated the stamp")
    assert "header stamps unset" in repeated
    assert behind.startswith("3 image(s) in the last 1.0 s were stamped before a frame")
    assert failed == "1 callback(s) failed in the last 1.0 s; see the log"


def test_an_input_is_silent_only_after_a_second_without_a_message():
    """The report just after activation (before DDS found the camera) and a short
    diagnostics_period between two frames are no silence ("no RGB message in the last 0.0 s"
    raised WARN at every activation)."""
    health = StreamHealth(TOPICS, TOLERANCE, start=10.0, camera_info="/cam/camera_info")
    assert health.update(Counters(time=10.01)).level == OK
    frame = Counter({RGB: 1, MASKS: 1, CAMERA_INFO: 1})
    assert health.update(Counters(time=10.1, received=frame, matched=1)).level == OK
    quiet = health.update(Counters(time=10.9, received=frame, matched=1))
    assert quiet.level == OK and not quiet.warnings  # 0.8 s since the last frame
    silent = health.update(Counters(time=11.1, received=frame, matched=1))
    assert silent.warnings == [
        "no RGB message for 1.0 s on /cam/rgb: is the camera running, and the topic remapped?"
    ]
    # the camera back without its CameraInfo: silent since 10.1 s
    back = health.update(Counters(time=11.3, received=frame + LIVE, matched=9))
    (info,) = back.warnings
    assert info.startswith("no CameraInfo for 1.2 s on /cam/camera_info while RGB arrives")


def test_dropped_windows_say_which_stride_the_measured_windows_keep_up_with():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, stride=5, frame_rate=8.0)
    report = health.update(
        Counters(time=1.0, received=LIVE, matched=8, dropped=4, model_seconds=[2.0, 2.2, 9.0])
    )
    (warning,) = report.warnings
    assert warning.startswith("dropped 4 stale window(s)")
    # the median (2.2 s, not the outlier) against a window due every 5 / 8 s: stride 18
    assert "a window takes 2.20 s (median of the last 3), one is due every 0.62 s" in warning
    assert "set stride >= 18, or use a faster preset" in warning


def test_a_window_started_over_by_gaps_warns_with_the_rate_to_set_and_a_bag_loop_says_so():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=30.0, num_frames=25)
    report = health.update(
        Counters(
            time=5.0, received=LIVE, matched=5, sampled=5, restarts=Counter({GAP: 4, BACK: 1})
        )
    )
    gap, back = report.warnings
    assert gap.startswith("the window started over 4 time(s) in 5 sampled frame(s)")
    assert "(25 frames at frame_rate 30 = 0.83 s)" in gap and "set frame_rate at or below" in gap
    assert back.startswith("the window started over 1 time(s)") and "stamp went back" in back
    assert (
        report.level == WARN
        and report.values["stream restarts (gap / stamp back / size)"] == "4 / 1 / 0"
    )
    # only what is new is reported; a bag loop alone is no warning level
    again = Counter({RGB: 16, MASKS: 16})
    report = health.update(
        Counters(
            time=10.0, received=again, matched=9, sampled=9, restarts=Counter({GAP: 4, BACK: 2})
        )
    )
    assert len(report.warnings) == 1 and report.level == OK


def test_a_resolution_change_warns_and_says_so():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0, num_frames=25)
    report = health.update(
        Counters(time=5.0, received=LIVE, matched=40, sampled=40, restarts=Counter({SIZE: 1}))
    )
    (warning,) = report.warnings
    assert warning.startswith("the window started over 1 time(s)") and "image size" in warning
    assert report.level == WARN
    assert report.values["stream restarts (gap / stamp back / size)"] == "0 / 0 / 1"


def test_spread_of_nothing_yet():
    assert spread([]) == "-"


def test_pace_says_whether_a_window_keeps_up_and_what_to_change():
    from amodal_ros.ros.diagnostics import pace

    ok = pace(0.5, 2, stride=5, frame_rate=8.0, preset="")
    assert "keeps up" in ok and "due every 0.62 s" in ok and "about 2 objects" in ok
    slow = pace(10.0, 1, stride=5, frame_rate=8.0, preset="")
    assert "does NOT keep up" in slow and "stride >= 80" in slow and "preset fast" in slow
    assert "preset fast" not in pace(10.0, 1, stride=5, frame_rate=8.0, preset="fast")
    assert "mirror_ensemble" not in slow  # only where the model runs it
    mirrored = pace(
        10.0, 1, stride=5, frame_rate=8.0, preset="realtime", ensembles=("mirror_ensemble",)
    )
    assert "mirror_ensemble off (one view: about 1/2" in mirrored
    assert "preset realtime" not in mirrored
    both = ("mirror_ensemble", "reverse_ensemble")
    four = pace(10.0, 1, stride=5, frame_rate=8.0, preset="realtime", ensembles=both)
    assert "mirror_ensemble off and reverse_ensemble off (one view: about 1/4" in four
    # the embedded model names its cheaper student, under the preset that runs it
    cheaper = pace(10.0, 1, stride=5, frame_rate=8.0, preset="realtime", cheaper="embedded-32x64")
    assert "checkpoint embedded-32x64 (its mask student at a quarter" in cheaper
    assert "embedded-32x64" not in pace(
        10.0, 1, stride=5, frame_rate=8.0, preset="", cheaper="embedded-32x64"
    )
    # publish_frames new allows no stride past the window: the advice says what does
    new = pace(10.0, 1, stride=5, frame_rate=8.0, preset="", longest=25)
    assert "stride >= 80 with publish_frames latest (new allows stride <= 25)" in new
    assert "with publish_frames" not in pace(
        2.0, 1, stride=5, frame_rate=8.0, preset="", longest=25
    )


def test_a_broken_streams_frames_are_one_kind_of_problem_whatever_their_size():
    """The log throttles a bad frame by its kind: the byte count in the error text made each
    frame of an undecodable 30 Hz stream a kind of its own, logged every frame."""
    from types import SimpleNamespace

    import pytest

    from amodal_ros.interface.convert import ConversionError, failure_kind, rgb_from_compressed

    def error(size: int) -> ConversionError:
        with pytest.raises(ConversionError) as caught:
            rgb_from_compressed(SimpleNamespace(format="jpeg", data=b"\x01" * size))
        return caught.value

    assert failure_kind((RGB,), error(5000)) == failure_kind((RGB,), error(5123))
    assert failure_kind((RGB,), error(5)) == failure_kind((RGB,), error(5123))  # any length
    assert failure_kind((RGB,), error(5000)) != failure_kind((MASKS,), error(5000))
    wrong_size = ConversionError("size mismatch: RGB is 4x5")
    assert failure_kind((RGB, DEPTH), wrong_size) == (
        f"{RGB},{DEPTH}: ConversionError: size mismatch: RGB is #x#"
    )


def test_inputs_at_different_rates_warn_only_when_too_few_frames_pair():
    """A segmenter slower than the camera leaves camera messages unpaired every period: normal
    while the frames that pair keep the model's frame rate, a problem below it."""
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0)
    slow_masks = Counters(  # 30 Hz RGB-D, masks at 10 Hz: 10 frames pair a second
        time=1.0,
        received=Counter({RGB: 30, MASKS: 10, DEPTH: 30}),
        unmatched=Counter({RGB: 20, DEPTH: 20}),
        matched=10,
    )
    report = health.update(slow_masks)
    assert report.level == OK and not report.warnings and report.message == "ok"
    assert report.values["paired frames rate (Hz)"] == "10.00"
    slower = health.update(  # masks at 5 Hz: below the model's 8 fps
        Counters(
            time=2.0,
            received=Counter({RGB: 60, MASKS: 15, DEPTH: 60}),
            unmatched=Counter({RGB: 45, DEPTH: 45}),
            matched=15,
        )
    )
    (warning,) = slower.warnings
    assert slower.level == WARN and "frames paired at 5.0 Hz, below frame_rate 8" in warning
    # the status says what is wrong, not a list of everything that could be
    assert slower.message == warning


def test_missed_deadlines_and_a_silent_camera_info_warn():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, camera_info="/cam/camera_info")
    received = Counter({RGB: 8, MASKS: 8, DEPTH: 8, "camera_info": 8})
    fine = health.update(Counters(time=1.0, received=received, matched=8))
    assert fine.level == OK and fine.values["input rate camera_info (Hz)"] == "8.00"
    late = health.update(
        Counters(
            time=2.0,
            received=received + LIVE,  # no new CameraInfo
            matched=16,
            deadline_missed=2,
            model_seconds=[3.0],
        )
    )
    missed, silent = late.warnings
    assert late.level == WARN and late.message == f"{missed} | {silent}"
    assert missed.startswith("2 window(s) in the last 1.0 s missed the deadline")
    assert "a window takes 3.00 s" in missed
    assert silent.startswith("no CameraInfo for 1.0 s on /cam/camera_info")
    assert "set it to '' for a camera without one" in silent
    # without a CameraInfo topic its silence is no problem
    none = StreamHealth(TOPICS, TOLERANCE, start=0.0).update(
        Counters(time=1.0, received=LIVE, matched=8)
    )
    assert none.level == OK and not none.warnings


def lagging_segmenter(queue_size: int, lag_frames: int = 36, seconds: int = 10):
    """A 30 Hz camera and a segmenter at 10 Hz whose masks come `lag_frames` frames late,
    through the synchroniser; returns it and the Counters a node would read from it."""
    sync = StampSynchronizer([RGB, MASKS], tolerance_ns=10_000_000, queue_size=queue_size)
    received = Counter()
    for i in range(30 * seconds):
        sync.add(RGB, i * 33_333_333, i)
        received[RGB] += 1
        if (k := i - lag_frames) >= 0 and k % 3 == 0:
            sync.add(MASKS, k * 33_333_333, k)
            received[MASKS] += 1
    counters = Counters(
        time=float(seconds),
        received=received,
        unmatched=Counter(sync.unmatched),
        overflowed=Counter(sync.overflowed),
        matched=sync.matched,
    )
    return sync, counters


def test_masks_lagging_past_the_sync_queue_are_named_with_the_parameter_to_raise():
    """Masks 1.2 s behind a 30 Hz camera find their images pushed out of the default 30-message
    queue: nothing pairs, ever, and the warning used to send users to their remappings."""
    topics = {RGB: "/cam/rgb", MASKS: "/seg/labels"}
    sync, counters = lagging_segmenter(queue_size=30)
    assert sync.matched == 0 and sync.overflowed[RGB] > 0
    report = StreamHealth(topics, TOLERANCE, start=0.0, sync_queue=30).update(counters)
    (warning,) = report.warnings
    assert "before masks came: masks lag the others by more than sync_queue (30" in warning
    assert "raise `sync_queue`" in warning and "remapped" not in warning
    sync, counters = lagging_segmenter(queue_size=60)  # what the warning asks for: it pairs
    assert sync.matched == counters.received[MASKS] and sync.overflowed[RGB] == 0  # every mask
    report = StreamHealth(topics, TOLERANCE, start=0.0, sync_queue=60).update(counters)
    assert not report.warnings


def test_images_without_masks_pushed_out_of_the_queue_are_not_blamed_on_it():
    """A segmenter slower than the camera pairs each of its masks; the images between them
    leave through a full queue. The queue is not the problem then: only masks that found their
    images gone make it one."""
    topics = {RGB: "/cam/rgb", MASKS: "/seg/labels"}
    sync = StampSynchronizer([RGB, MASKS], tolerance_ns=10_000_000, queue_size=40)
    received = Counter()
    for i in range(300):  # 30 Hz images, masks of every 5th (6 Hz) 1.2 s late
        sync.add(RGB, i * 33_333_333, i)
        received[RGB] += 1
        if (k := i - 36) >= 0 and k % 5 == 0:
            sync.add(MASKS, k * 33_333_333, k)
            received[MASKS] += 1
    assert sync.matched == received[MASKS] and sync.overflowed[RGB] > 0
    counters = Counters(
        time=10.0,
        received=received,
        unmatched=Counter(sync.unmatched),
        overflowed=Counter(sync.overflowed),
        matched=sync.matched,
    )
    (warning,) = (
        StreamHealth(topics, TOLERANCE, start=0.0, sync_queue=40).update(counters).warnings
    )
    assert "below frame_rate 8" in warning and "sync_queue" not in warning


def test_a_silent_input_is_not_blamed_on_the_queue():
    """Depth that never comes fills the other queues too: the hint names the silent topic."""
    sync = StampSynchronizer([RGB, MASKS, DEPTH], queue_size=8)
    for i in range(100):
        sync.add(RGB, i, i)
        sync.add(MASKS, i, i)
    counters = Counters(
        time=10.0,
        received=Counter({RGB: 100, MASKS: 100}),
        unmatched=Counter(sync.unmatched),
        overflowed=Counter(sync.overflowed),
    )
    (warning,) = StreamHealth(TOPICS, TOLERANCE, start=0.0).update(counters).warnings
    assert "nothing received yet on: depth (/cam/depth)" in warning
    assert "sync_queue" not in warning and "remapped" in warning


def test_each_problem_alone_raises_the_level_from_one_occurrence():
    """One dropped window, one missed deadline, a stalled stream: each alone is a WARN (the
    tests before met them in twos or beside other problems)."""
    healthy = Counters(time=1.0, received=LIVE, matched=8)

    def after(**changes) -> object:
        health = StreamHealth(TOPICS, TOLERANCE, start=0.0)
        health.update(healthy)
        fields = {"time": 2.0, "received": LIVE + LIVE, "matched": 16, **changes}
        return health.update(Counters(**fields))

    assert after().level == OK
    dropped = after(dropped=1)
    assert dropped.level == WARN and dropped.message.startswith("dropped 1 stale window(s)")
    missed = after(deadline_missed=1)
    assert missed.level == WARN and missed.message.startswith("1 window(s) in the last 1.0 s")
    stalled = after(received=LIVE + Counter({RGB: 8}), matched=8)  # RGB only, no new frame
    assert stalled.level == WARN and "no complete frame: waiting for partners" in stalled.message
    first = StreamHealth(TOPICS, TOLERANCE, start=0.0).update(
        Counters(time=1.0, received=Counter({RGB: 8, MASKS: 1, DEPTH: 8}))
    )
    assert "waiting for partners" in first.message
    assert "nothing received yet" not in first.message  # one mask is not nothing


def test_rejected_frames_do_not_count_as_paired_and_the_frame_rate_itself_is_enough():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0)
    exact = health.update(  # unmatched messages, but frames pair at exactly the frame rate
        Counters(time=1.0, received=Counter({RGB: 30, MASKS: 8, DEPTH: 30}),
                 unmatched=Counter({RGB: 22, DEPTH: 22}), matched=8)
    )  # fmt: skip
    assert exact.level == OK and exact.values["paired frames rate (Hz)"] == "8.00"
    rejected = health.update(
        Counters(time=2.0, received=Counter({RGB: 60, MASKS: 18, DEPTH: 60}),
                 unmatched=Counter({RGB: 44, DEPTH: 44}), matched=18, rejected=5)
    )  # fmt: skip
    assert rejected.values["paired frames rate (Hz)"] == "5.00"  # 10 paired, 5 unreadable
    assert "frames paired at 5.0 Hz, below frame_rate 8" in rejected.message


def test_unpaired_inputs_without_a_full_queue_blame_the_stamps_not_the_queue():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0)
    report = health.update(
        Counters(time=1.0, received=Counter({RGB: 8, MASKS: 8, DEPTH: 8}),
                 unmatched=Counter({RGB: 8, MASKS: 8, DEPTH: 8}))
    )  # fmt: skip
    assert "check that the topics are remapped and the stamps agree" in report.message
    assert "sync_queue" not in report.message


def test_the_camera_info_rate_is_its_own_and_callback_errors_are_counted():
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, camera_info="/cam/camera_info")
    health.update(Counters(time=1.0, received=Counter({RGB: 30, CAMERA_INFO: 1}), matched=8))
    second = health.update(
        Counters(time=2.0, received=Counter({RGB: 60, CAMERA_INFO: 2, "callback_errors": 3}),
                 matched=16, errors=1)
    )  # fmt: skip
    assert second.values["input rate rgb (Hz)"] == "30.00"
    assert second.values["input rate camera_info (Hz)"] == "1.00"
    assert second.values["callback errors"] == "3" and second.values["pipeline errors"] == "1"


def test_pace_and_stride_advice_at_their_edges():
    from amodal_ros.ros.diagnostics import pace, stride_advice, stride_to_keep_up

    # a window of exactly the time between two windows keeps up
    assert "keeps up" in pace(0.625, 1, stride=5, frame_rate=8.0, preset="")
    # objects that fit: whole ones (0.625 / 0.23 = 2.7 -> 2)
    assert "about 2 objects" in pace(0.23, 1, stride=5, frame_rate=8.0, preset="")
    realtime = pace(10.0, 1, stride=5, frame_rate=8.0, preset="realtime")
    assert "preset fast" not in realtime and "preset realtime" not in realtime
    # the stride that leaves a window its time: rounded up (16.4 -> 17; 16 would fall behind)
    assert stride_to_keep_up(2.05, 8.0) == 17
    assert stride_advice(25 / 8, 8.0, 25) == "stride >= 25"  # the longest allowed is allowed
    assert "publish_frames latest" in stride_advice(26 / 8, 8.0, 25)


def test_a_later_periods_warnings_count_that_periods_events_not_the_totals():
    """The counters are totals since activation; each warning, the failure line and the paired
    rate say what happened in the last period (a node that missed one deadline an hour ago
    does not miss one now, and earlier rejected frames do not lower the rate paired now)."""
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0, num_frames=25)
    fails = Counter({"callback_errors": 2})
    health.update(
        Counters(time=1.0, received=LIVE + fails, matched=8, sampled=8, rejected=1,
                 deadline_missed=3, errors=2, restarts=Counter({GAP: 1}))
    )  # fmt: skip
    later = health.update(
        Counters(time=2.0, received=LIVE + LIVE + fails + Counter({"callback_errors": 1}),
                 matched=16, sampled=10, rejected=2, deadline_missed=4, errors=3,
                 restarts=Counter({GAP: 2}))
    )  # fmt: skip
    assert later.level == ERROR and later.message.startswith("1 window(s) failed in the last")
    assert later.values["paired frames rate (Hz)"] == "7.00"  # 8 paired, 1 of them rejected
    missed, gap, rejected, failed = later.warnings
    assert missed.startswith("1 window(s) in the last 1.0 s missed the deadline")
    assert gap.startswith("the window started over 1 time(s) in 2 sampled frame(s)")
    assert rejected.startswith("1 frame(s) rejected in the last 1.0 s")
    assert failed == "1 callback(s) failed in the last 1.0 s; see the log"


def test_unmatched_messages_are_quoted_for_the_period():
    """The warning's dict is what went unpaired in the last period, the value the total."""
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0, frame_rate=8.0)
    health.update(
        Counters(time=1.0, received=Counter({RGB: 30, MASKS: 30, DEPTH: 30}),
                 unmatched=Counter({RGB: 20, DEPTH: 20}), matched=2)
    )  # fmt: skip
    later = health.update(
        Counters(time=2.0, received=Counter({RGB: 60, MASKS: 60, DEPTH: 60}),
                 unmatched=Counter({RGB: 25, DEPTH: 20}), matched=4)
    )  # fmt: skip
    (warning,) = later.warnings
    assert "unmatched messages in the last 1.0 s: {'rgb': 5} (no partner" in warning
    assert later.values["unmatched messages"] == "45"


def test_the_queue_is_blamed_for_this_periods_overflow_only():
    """Full queues pushed images out before their masks came (the queue hint, with this
    period's count); in a later period with no overflow, or where every mask found its image,
    the queue is not the problem, whatever it lost before."""
    topics = {RGB: "/cam/rgb", MASKS: "/seg/labels"}
    health = StreamHealth(topics, TOLERANCE, start=0.0, frame_rate=8.0, sync_queue=30)

    def period(t: int, rgb: int, masks: int, unmatched_masks: int, overflowed: int, matched=0):
        received = Counter({RGB: rgb, MASKS: masks})
        unmatched = Counter({RGB: rgb - matched, MASKS: unmatched_masks})
        counters = Counters(float(t), received, unmatched, Counter({RGB: overflowed}))
        counters.matched = matched
        (warning,) = health.update(counters).warnings
        return warning

    first = period(1, rgb=30, masks=10, unmatched_masks=10, overflowed=30)
    assert "30 of them pushed out of a full queue ({'rgb': 30}) before masks" in first
    second = period(2, rgb=60, masks=20, unmatched_masks=20, overflowed=55)
    assert "25 of them pushed out of a full queue ({'rgb': 25}) before masks" in second
    quiet = period(3, rgb=90, masks=30, unmatched_masks=30, overflowed=55)  # none pushed out
    assert "sync_queue" not in quiet and "check that the topics are remapped" in quiet
    paired = period(4, rgb=120, masks=40, unmatched_masks=30, overflowed=85, matched=5)
    assert "sync_queue" not in paired  # images without masks pushed out: no mask was late


def test_one_rgb_message_without_a_frame_or_a_gap_beside_a_size_change_warns():
    """The smallest occurrences still raise the level: a 1 Hz camera sends one RGB message a
    period, and a gap and a resolution change in the same period are two restarts."""
    health = StreamHealth(TOPICS, TOLERANCE, start=0.0)
    health.update(Counters(time=1.0, received=LIVE, matched=8))
    one = health.update(Counters(time=2.0, received=LIVE + Counter({RGB: 1}), matched=8))
    assert one.level == WARN and one.message.startswith("1 RGB message(s) in the last 1.0 s")
    both = StreamHealth(TOPICS, TOLERANCE, start=0.0).update(
        Counters(time=1.0, received=LIVE, matched=8, sampled=8,
                 restarts=Counter({GAP: 1, SIZE: 1}))
    )  # fmt: skip
    assert both.level == WARN and len(both.warnings) == 2


def test_every_total_is_reported_under_its_own_key():
    """Monitors read the values by key: each total under its own (distinct numbers here)."""
    report = StreamHealth(TOPICS, TOLERANCE, start=0.0).update(
        Counters(time=1.0, received=LIVE, unmatched=Counter({RGB: 2, DEPTH: 3}), matched=8,
                 sampled=6, windows_idle=4, published=7, model_windows=1, passthrough=9)
    )  # fmt: skip
    values = report.values
    assert (values["frames sampled"], values["unmatched messages"]) == ("6", "5")
    assert values["windows skipped (no subscribers)"] == "4"
    assert values["results published"] == "7"


def test_spread_takes_the_max_of_values_in_arrival_order():
    """Recent times are kept in arrival order: the max is the slowest, not the last one."""
    assert spread([3.0, 1.0, 2.0]) == "2.000/2.900/3.000"


def test_pace_offers_the_realtime_preset_and_survives_a_window_timed_at_zero():
    from amodal_ros.ros.diagnostics import pace, stride_to_keep_up

    slow = pace(10.0, 1, stride=5, frame_rate=8.0, preset="quality")
    assert "Try stride >= 80 or preset realtime (the distilled student, 1 step) or" in slow
    assert "keeps up" in pace(0.0, 0, stride=5, frame_rate=8.0, preset="")  # a coarse clock
    assert stride_to_keep_up(0.05, 8.0) == 1  # a window shorter than a frame: every frame


@pytest.fixture
def namespaced_node():
    """A real rclpy node in namespace /cam1."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (ROS 2 wheels)")
    from rclpy.node import Node

    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("amodal_node", namespace="/cam1", context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def received(node, pub, send) -> list:
    """What a subscriber of `pub`'s topic receives (over DDS) when `send()` publishes."""
    from node_harness import NodeHarness
    from rclpy.executors import SingleThreadedExecutor

    got: list = []
    sub = node.create_subscription(pub.msg_type, pub.topic_name, got.append, 10)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    NodeHarness.wait(pub.get_subscription_count, timeout=20)
    send()
    NodeHarness.wait(lambda: executor.spin_once(timeout_sec=0.05) or got, timeout=20, interval=0)
    executor.remove_node(node)
    node.destroy_subscription(sub)
    return got


@pytest.mark.parametrize("level", ["OK", "WARN", "ERROR"])
def test_the_status_reaches_diagnostics_with_its_level_device_and_values(namespaced_node, level):
    """Aggregators (rqt_robot_monitor, diagnostic_aggregator) read /diagnostics whatever the
    node's namespace, colour by diagnostic_msgs' own levels, and group by name and hardware."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from amodal_ros.ros import diagnostics
    from amodal_ros.ros.diagnostics import Report, publish_status, status_publisher

    pub = status_publisher(namespaced_node)
    assert pub.topic_name == "/diagnostics"
    report = Report(getattr(diagnostics, level), "what is wrong " * 20, {"queue depth": "2"}, [])
    (msg,) = received(
        namespaced_node,
        pub,
        lambda: publish_status(namespaced_node, pub, report, {"device": "cuda:0"}),
    )
    (status,) = msg.status
    assert status.level == getattr(DiagnosticStatus, level)  # the report's OK is theirs
    assert status.name == "/cam1/amodal_node: amodal pipeline"  # one per camera
    assert status.message == report.message and status.hardware_id == "cuda:0"
    assert {kv.key: kv.value for kv in status.values} == {"queue depth": "2", "device": "cuda:0"}
    assert msg.header.stamp.sec > 0


def test_without_diagnostic_msgs_the_status_is_one_line_on_amodal_status(
    namespaced_node, monkeypatch
):
    """A ROS install without diagnostic_msgs still gets the status, as text under the node."""
    from amodal_ros.ros import diagnostics
    from amodal_ros.ros.diagnostics import Report, publish_status, status_publisher

    monkeypatch.setattr(diagnostics, "DiagnosticArray", None)  # as if it failed to import
    pub = status_publisher(namespaced_node)
    assert pub.topic_name == "/cam1/amodal/status"
    report = Report(WARN, "no RGB message", {"queue depth": "0"}, [])
    sent = received(
        namespaced_node,
        pub,
        lambda: publish_status(namespaced_node, pub, report, {"device": "cpu"}),
    )
    assert [m.data for m in sent] == ["no RGB message; queue depth=0; device=cpu"]
