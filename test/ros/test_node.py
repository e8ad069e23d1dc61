"""The node over real DDS: a client plays a synthetic RGB-D + mask stream into the running node
(tiny model) and checks what comes back."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

try:
    import rclpy  # noqa: F401

    from amodal_ros.msg import AmodalObjectArray  # noqa: F401

    _SKIP = ""
except ImportError as err:
    _SKIP = f"rclpy or the colcon-built amodal_ros.msg is missing ({err}); run scripts/setup.sh"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "ok")]

if not _SKIP:
    from node_harness import FRAME_ID, NodeHarness, small_clip  # noqa: E402
    from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
    from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

    from amodal_ros.pipeline.stream import MASKS, RGB  # noqa: E402
    from amodal_ros.ros import node as node_module  # noqa: E402
    from amodal_ros.ros.diagnostics import ERROR  # noqa: E402


def _stamp(header) -> int:
    return _ns(header.stamp)


def _ns(time) -> int:
    return time.sec * 10**9 + time.nanosec


def _mask(img) -> np.ndarray:
    return np.frombuffer(bytes(img.data), np.uint8).reshape(img.height, img.width) > 0


@pytest.fixture
def base_params(published_folder):
    return dict(
        checkpoint=str(published_folder),
        height=32,
        width=64,
        num_frames=4,
        num_steps=1,
        stride=2,
        publish_frames="new",
        input_reliability="reliable",
        max_pending_windows=50,
        diagnostics_period=0.2,
    )


def _largest_part(mask: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), None, 8)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def test_results_match_inputs_windows_and_stride(base_params):
    h = NodeHarness(base_params)
    try:
        assert h.node._state_machine.current_state[1] == "active"
        h.wait_for_subscribers()
        clip = small_clip(12)
        stamps = h.publish_clip(clip, pace=0.02)
        # 4-frame window, stride 2, 'new': frames 0-2 partial, 3 first full, then windows at
        # 5, 7, 9, 11 publishing 2 new frames each -> every frame answered exactly once.
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 12, timeout=60)
        results = h.messages("amodal/objects")
        assert [_stamp(r.header) for r in results] == stamps
        assert all(r.header.frame_id == FRAME_ID for r in results)
        for i, r in enumerate(results):
            partial = i < 3
            assert r.window_frames == (i + 1 if partial else 4)
            assert _ns(r.window_last_stamp) >= _stamp(r.header) >= _ns(r.window_first_stamp)
            assert r.frames_missing == 0 and r.latency >= 0
            assert [o.object_id for o in r.objects] == sorted(o.object_id for o in r.objects)
            for o in r.objects:
                modal, amodal = _mask(o.modal_mask), _mask(o.amodal_mask)
                assert np.array_equal(modal, clip.labels[i] == o.object_id)
                # amodal holds the visible object; a small visible part apart from the rest
                # (a segmenter's blob, or a sliver past an occluder the model did not bridge)
                # may go as a speck (detached_part_share, test_detached.py)
                assert not (_largest_part(modal) & ~amodal).any(), "amodal must hold modal"
                assert o.amodal_valid == (not partial)
                assert o.reason == (o.REASON_WINDOW_NOT_FULL if partial else o.REASON_OK)
        # overlays and camera info follow the same stamps
        assert h.wait(lambda: len(h.messages("amodal/overlay")) >= 12)
        assert [_stamp(m.header) for m in h.messages("amodal/overlay")] == stamps
        overlay = h.messages("amodal/overlay")[5]
        assert (overlay.encoding, overlay.height, overlay.width) == ("rgb8", 40, 72)
        # camera info is passed through for frames whose info arrived before their result
        assert h.wait(lambda: len(h.messages("amodal/camera_info")) >= 6)
        assert {_stamp(m.header) for m in h.messages("amodal/camera_info")} <= set(stamps)
    finally:
        h.close()


def test_latest_policy_publishes_one_frame_per_window(base_params):
    h = NodeHarness({**base_params, "publish_frames": "latest", "stride": 3})
    try:
        h.wait_for_subscribers()
        stamps = h.publish_clip(small_clip(10), pace=0.02)
        # partial 0-2, first full at 3, then 6 and 9
        expected = [stamps[i] for i in (0, 1, 2, 3, 6, 9)]
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 6, timeout=60)
        h.wait(lambda: False, timeout=0.5)  # nothing more may arrive
        assert [_stamp(r.header) for r in h.messages("amodal/objects")] == expected
    finally:
        h.close()


@pytest.mark.parametrize("policy", ["new", "latest"])
def test_frames_waiting_for_a_stride_are_answered_when_the_camera_stops(base_params, policy):
    """11 frames at stride 3: windows at frames 3, 6 and 9 leave frame 10 waiting for a
    stride that never comes (a triggered camera, a bag's end); a second of quiet answers it."""
    h = NodeHarness({**base_params, "publish_frames": policy, "stride": 3})
    try:
        h.wait_for_subscribers()
        stamps = h.publish_clip(small_clip(11), pace=0.02)
        answered = stamps if policy == "new" else [stamps[i] for i in (0, 1, 2, 3, 6, 9, 10)]
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= len(answered), timeout=60)
        h.wait(lambda: False, timeout=0.5)  # nothing more may arrive
        assert [_stamp(r.header) for r in h.messages("amodal/objects")] == answered
        (last,) = [r for r in h.messages("amodal/objects") if _stamp(r.header) == stamps[10]]
        assert last.window_frames == 4 and all(o.amodal_valid for o in last.objects)
    finally:
        h.close()


def test_a_slow_camera_is_not_taken_for_a_stopped_one(base_params):
    """A camera sampled every 1.6 s of wall time (frame_rate 0.8: every 10th 8 fps stamp,
    sent every 0.16 s) at stride 2: the frame after the first full window waits 1.6 s for its
    stride's second frame, longer than QUIET_S; waiting frames are answered early only after
    a stride's time (2.5 s) of quiet, so both go in one window (answered at QUIET_S, each got
    a window of its own: 4 windows, not 3)."""
    h = NodeHarness({**base_params, "frame_rate": 0.8, "num_frames": 2, "stride": 2})
    try:
        h.wait_for_subscribers()
        h.publish_clip(small_clip(12), count=31, pace=0.16)  # 4 frames sampled
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 4, timeout=60)
        h.wait(lambda: False, timeout=3.0)  # longer than a stride's quiet: nothing waits
        answered = [_stamp(r.header) for r in h.messages("amodal/objects")]
        assert len(answered) == len(set(answered)) == 4
        # frames 1 and 2 each at once (live, up to the first full window), then 3 and 4
        assert h.node.model_windows + h.node.passthrough_windows == 3
    finally:
        h.close()


def test_overload_drops_stale_windows_stays_alive_and_bounded(base_params):
    params = {**base_params, "stride": 1, "max_pending_windows": 1, "num_steps": 3}
    h = NodeHarness(params)
    try:
        diagnostics = h.listen("/diagnostics")
        assert diagnostics is not None
        h.wait_for_subscribers()
        clip = small_clip(12)
        h.publish_clip(clip, count=60)  # as fast as DDS takes them, far faster than inference
        node = h.node
        assert h.wait(lambda: node.queue.dropped > 0, timeout=30)
        # bounded state whatever the input rate
        assert len(node.front.buffer.frames) <= 4
        assert all(n <= node.stream.sync_queue for n in node.front.sync.pending().values())
        assert len(node.queue) <= 1 + 4
        # still alive: later frames are answered
        h.publish_clip(clip, start=60, count=3, pace=0.3)
        later = 10**9 + 60 * 125_000_000
        assert h.wait(
            lambda: any(_stamp(r.header) >= later for r in h.messages("amodal/objects")),
            timeout=60,
        )
        # drops are reported in diagnostics

        def reported():
            for msg in h.messages("/diagnostics"):
                values = {kv.key: kv.value for kv in msg.status[0].values}
                if int(values["dropped windows"]) > 0:
                    return values
            return None

        assert h.wait(lambda: reported() is not None, timeout=10)
        values = reported()
        assert values["device"] == "cpu" and values["dtype"] == "float32"
        assert {"frames lost with them", "input rate rgb (Hz)"} <= values.keys()  # (their
        # values: test_diagnostics)
        # DDS may lose a burst's messages (a gap), but no stamp went back
        assert values["stream restarts (gap / stamp back / size)"].endswith(" / 0 / 0")
        # the drops stay reported once the queue has drained (an empty queue read as none)
        assert h.wait(lambda: len(node.queue) == 0 and not node.worker.busy, timeout=60)
        seen = len(h.messages("/diagnostics"))
        assert h.wait(lambda: len(h.messages("/diagnostics")) >= seen + 2, timeout=10)
        last = {kv.key: kv.value for kv in h.messages("/diagnostics")[-1].status[0].values}
        assert int(last["dropped windows"]) == node.queue.dropped > 0
        assert int(last["model windows"]) == node.model_windows > 0
        assert int(last["pass-through windows"]) == node.passthrough_windows
    finally:
        h.close()


def test_bad_inputs_are_logged_and_the_node_keeps_going(base_params, capfd):
    from node_harness import PERIOD_NS, image_msg

    h = NodeHarness({**base_params, "publish_frames": "latest", "stride": 1})
    try:
        h.wait_for_subscribers()
        clip = small_clip(8)
        s0 = 10**9
        # 1. wrong RGB encoding
        h.pubs["masks"].publish(image_msg(clip.labels[0], "mono16", s0))
        h.pubs["depth"].publish(image_msg(clip.depth[0], "32FC1", s0))
        h.pubs["rgb"].publish(image_msg(clip.depth[0], "32FC1", s0))
        # 2. mask image of another size than the RGB
        s1 = s0 + PERIOD_NS
        h.pubs["masks"].publish(image_msg(clip.labels[1][:20, :36], "mono16", s1))
        h.pubs["depth"].publish(image_msg(clip.depth[1], "32FC1", s1))
        h.pubs["rgb"].publish(image_msg(clip.rgb[1], "rgb8", s1))
        assert h.wait(lambda: h.node.front.frames_rejected == 2, timeout=10)
        # 3. masks whose stamps never match the RGB
        for t in range(2, 5):
            s = s0 + t * PERIOD_NS
            h.pubs["masks"].publish(image_msg(clip.labels[t], "mono16", s + 400_000_000))
            h.pubs["depth"].publish(image_msg(clip.depth[t], "32FC1", s))
            h.pubs["rgb"].publish(image_msg(clip.rgb[t], "rgb8", s))
        assert h.wait(lambda: sum(h.node.front.sync.unmatched.values()) >= 2, timeout=10)
        h.wait(lambda: False, timeout=0.5)  # a diagnostics period in which nothing pairs
        # 4. good frames afterwards are still answered
        stamps = h.publish_clip(clip, start=0, count=8, stamp0=20 * 10**9, pace=0.02)
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 8, timeout=60)
        got = {_stamp(r.header) for r in h.messages("amodal/objects")}
        assert got == set(stamps)
        h.wait(lambda: False, timeout=0.5)  # let a diagnostics period pass
    finally:
        h.close()
    err = capfd.readouterr().err
    assert "rgb (/image): RGB image has encoding '32FC1'" in err  # the input and its topic
    assert "size mismatch: RGB is 40x72 (HxW) but the mask image is 20x36" in err
    assert "unmatched messages" in err and "sync_tolerance" in err


def test_a_window_that_fails_to_publish_makes_the_health_report_an_error(base_params):
    """A failure after the model (here building the result message) is one of the pipeline
    errors of /diagnostics, which goes to ERROR: it was counted nowhere, the report said OK."""
    h = NodeHarness({**base_params, "publish_frames": "latest", "stride": 1})
    try:
        h.listen("/diagnostics")
        h.wait_for_subscribers()

        def broken(*args, **kwargs):
            raise RuntimeError("message building failed")

        h.node.builder.array = broken
        h.publish_clip(small_clip(6), pace=0.02)

        def failed():
            reports = [m.status[0] for m in h.messages("/diagnostics")]
            values = [{kv.key: kv.value for kv in r.values} for r in reports]
            return any(
                r.level == b"\x02" and int(v["pipeline errors"]) >= 1
                for r, v in zip(reports, values)
            )

        assert h.wait(failed, timeout=60)
        assert h.node.worker.windows_failed >= 1
        # a failed window is not also a model or pass-through one (model windows read -3)
        values = [
            {kv.key: kv.value for kv in m.status[0].values} for m in h.messages("/diagnostics")
        ]
        assert all(v["model windows"] == "0" for v in values if "model windows" in v)
        assert h.node.model_windows == h.node.passthrough_windows == 0
        assert not h.node.model_seconds
    finally:
        h.close()


def test_destroy_node_stops_the_worker(base_params):
    """The usual rclpy teardown, `finally: node.destroy_node()`, left the worker thread (and
    with it the models) running: only a private method stopped it."""
    import rclpy

    h = NodeHarness(base_params)
    worker = h.node.worker
    assert worker is not None and worker._thread.is_alive()
    h._stop.set()
    h._thread.join(timeout=10)
    h.executor.shutdown(timeout_sec=5)
    h.node.destroy_node()
    assert not worker._thread.is_alive() and h.node.worker is None
    h.client.destroy_node()
    rclpy.try_shutdown(context=h.context)


def _inside_a_slow_window(base_params, seconds: float = 1.0, frames: int = 8) -> NodeHarness:
    """A node whose full windows end `seconds` after their results are made, fed a clip of
    `frames` frames and returned once one of its windows is in that pause."""
    import threading
    import time

    h = NodeHarness({**base_params, "warmup": False}, subscribe=False)
    h.listen("amodal/objects")
    process, inside = h.node.worker.process, threading.Event()

    def slow(window):
        results = process(window)
        if window.full:
            inside.set()
            time.sleep(seconds)
        return results

    h.node.worker.process = slow
    h.wait_for_subscribers()
    h.publish_clip(small_clip(frames), pace=0.02)
    assert inside.wait(timeout=60)
    return h


def test_the_context_shutting_down_during_a_window_publishes_it(base_params):
    """`rclpy.shutdown()` (or leaving `with rclpy.init():`) while a window ran never returned:
    the context holds its lock while it destroys its nodes, ours waited for the window, and
    the window's publishing asked `context.ok()`, which waits on that lock."""
    import threading

    import rclpy

    h = _inside_a_slow_window(base_params)
    node = h.node
    published = node.published
    shutdown = threading.Thread(
        target=rclpy.try_shutdown, kwargs={"context": h.context}, daemon=True
    )
    shutdown.start()
    shutdown.join(timeout=30)
    assert not shutdown.is_alive(), "the context's shutdown hung on the running window"
    assert node.published > published and not node.abandoned_window  # its results went out
    h._stop.set()
    h._thread.join(timeout=10)
    h.executor.shutdown(timeout_sec=5)


@pytest.mark.parametrize("frames", [8, 4])
def test_a_window_ending_after_ctrl_c_is_counted_unanswered(base_params, capfd, frames):
    """Ctrl-C (rclpy's handler shuts the context down, then `main` destroys the node) while a
    window ran: a window that ended within SHUTDOWN_WAIT_S could publish nothing, returned
    quietly and was left out of the shutdown's count of frames without a result; said also
    when that window's frames are the only ones unanswered (4 frames: the first full window is
    the last, nothing queued or waiting behind it)."""
    import rclpy

    h = _inside_a_slow_window(base_params, frames=frames)
    node = h.node
    h.context._Context__context.shutdown()  # rclpy's SIGINT handler: no Python cleanup
    h._stop.set()
    h._thread.join(timeout=10)
    node.destroy_node()
    err = capfd.readouterr().err
    assert not node.abandoned_window, "the window should have ended within the wait"
    said = re.search(
        r"shut down with (\d+) frame\(s\) unanswered \((.*), ([1-9]\d*) of the last "
        r"window unpublished\)",
        err,
    )
    assert said, err
    if frames == 4:
        assert said[1] == said[3] and said[2].startswith("0 window(s) queued, 0 frame(s)"), err
    h.client.destroy_node()
    rclpy.try_shutdown(context=h.context)


def test_missing_depth_is_reported_not_fatal(base_params, capfd):
    h = NodeHarness(base_params)
    try:
        h.wait_for_subscribers()
        h.publish_clip(small_clip(6), with_depth=False, pace=0.02)
        assert h.wait(
            lambda: (
                h.node.front.sync.unmatched["rgb"] > 0 or h.node.front.sync.pending()["rgb"] == 6
            ),
            timeout=10,
        )
        h.wait(lambda: False, timeout=0.6)
        assert h.messages("amodal/objects") == []
        assert h.node._state_machine.current_state[1] == "active"
    finally:
        h.close()
    err = capfd.readouterr().err
    assert "nothing received yet on: depth (/depth)" in err


def test_missing_checkpoint_fails_configure_with_one_line(base_params, capfd, tmp_path):
    h = NodeHarness({**base_params, "checkpoint": str(tmp_path / "nope")}, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "unconfigured"
        assert h.node.processor is None
    finally:
        h.close()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "configure failed" in errors[0] and "nope" in errors[0]


def test_without_the_built_messages_configure_fails_first_with_what_to_do(
    base_params, capfd, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "amodal_ros.msg", None)  # a pip-only install
    h = NodeHarness(base_params, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "unconfigured"
        assert h.node.processor is None  # no model was loaded for nothing
    finally:
        h.close()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "the amodal_ros messages are not built" in errors[0]
    assert "build the package with colcon" in errors[0]


def test_unavailable_backend_fails_configure_with_the_reason(base_params, capfd):
    h = NodeHarness({**base_params, "unet_backend": "tensorrt"}, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "unconfigured"
    finally:
        h.close()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "UNet backend 'tensorrt' is unavailable" in errors[0]
    assert "CUDA device" in errors[0]


def test_an_invalid_topic_name_from_the_params_file_fails_configure_with_one_line(
    base_params, capfd
):
    h = NodeHarness({**base_params, "markers_topic": "amodal/3d boxes"}, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "unconfigured"
        assert h.node.processor is None and not h.node._pubs
        # a robot monitor sees the node red, with why, not nothing
        h.listen("/diagnostics")
        assert h.wait(lambda: h.messages("/diagnostics"), 10)
        status = h.messages("/diagnostics")[-1].status[0]
        assert status.level == b"\x02" and "not a valid ROS" in status.message
    finally:
        h.close()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1
    assert "invalid parameter: markers_topic 'amodal/3d boxes' is not a valid ROS" in errors[0]


def test_the_warm_up_window_runs_at_the_camera_size(base_params):
    """The depth model runs (and, compiled, compiles) per input size: warming up at the
    camera's size prepares it in configure, not in the first live window."""
    from rclpy.parameter import Parameter

    params = {**base_params, "depth_model": "tiny", "camera_size": "48x64"}
    h = NodeHarness(params, subscribe=False)
    try:
        depth = h.node.processor.depth_estimator
        assert depth.input_shape(48, 64) != depth.input_shape(32, 64)  # the working size's
        assert set(depth._predictors) == {depth.input_shape(48, 64)}
        bad = h.node.set_parameters([Parameter("camera_size", value="48by64")])[0]
        assert not bad.successful
        assert "camera_size must be HxW in pixels, e.g. 480x640, got '48by64'" in bad.reason
    finally:
        h.close()


def test_a_compiled_model_warms_up_twice_and_its_pace_is_the_second_windows(
    base_params, monkeypatch
):
    """A compiled model's first window compiles (minutes): the pace a configure reports is
    the second window's, not the compile's."""
    from amodal_ros.pipeline.factory import Pipelines
    from amodal_ros.pipeline.processor import WindowProcessor

    monkeypatch.setattr(Pipelines, "compiles", property(lambda self: True))  # eager, quickly
    real, seconds = WindowProcessor.warm_up, iter([600.0, 0.25])

    def warm_up(self, height, width):
        real(self, height, width)
        return next(seconds), 2

    monkeypatch.setattr(WindowProcessor, "warm_up", warm_up)
    h = NodeHarness(base_params, subscribe=False)
    try:
        assert next(seconds, None) is None  # both windows ran
        assert "0.25 s" in h.node.pace and "600" not in h.node.pace, h.node.pace
    finally:
        h.close()


def test_a_long_configure_says_so_on_diagnostics_while_it_runs(base_params, monkeypatch):
    """Configure (models, engines, warm-up: minutes) blocked the executor, and /diagnostics
    fell silent: monitors marked the node stale. A thread of its own reports meanwhile."""
    import time

    from amodal_ros.pipeline.processor import WindowProcessor

    loaded = WindowProcessor.from_config

    def slow(*args, **kwargs):
        time.sleep(1.0)  # a large model loading
        return loaded(*args, **kwargs)

    monkeypatch.setattr(WindowProcessor, "from_config", slow)
    h = NodeHarness({**base_params, "autostart": False}, subscribe=False)
    try:
        h.listen("/diagnostics")
        h.node._timer.cancel()  # as in `main`, whose one-threaded spin this blocks: no timer
        h.node.trigger_configure()
        assert h.wait(lambda: h.messages("/diagnostics"), 10)
        said = [m.status[0].message for m in h.messages("/diagnostics")]
        during = [m for m in said if m.startswith("configuring: loading the models")]
        assert len(during) >= 3 and during[-1].endswith("s so far)"), said
        h.node._timer.reset()
        assert h.wait(lambda: "inactive" in h.messages("/diagnostics")[-1].status[0].message, 5)
    finally:
        h.close()


def test_lifecycle_transitions_and_parameter_validation(base_params, capfd, monkeypatch):
    from rclpy.parameter import Parameter

    # a parameter file's unquoted `mirror_ensemble: off` arrives as a bool (rclpy refused it)
    qos_override = "qos_overrides./image.subscription.reliability"
    params = {
        **base_params,
        "autostart": False,
        "mirror_ensemble": False,
        "strides": 3,
        qos_override: "best_effort",
    }
    h = NodeHarness(params, subscribe=False)
    node = h.node
    try:
        state = lambda: node._state_machine.current_state[1]  # noqa: E731
        assert state() == "unconfigured" and node.processor is None
        # ROS ignores an undeclared key: a typo is named, with what it was probably meant as;
        # QoS overrides apply only to the entities that opt in, none of this node's
        err = capfd.readouterr().err
        assert "unknown parameters, ignored: " in err
        assert "strides (did you mean stride?)" in err
        assert f"{qos_override} (this node sets QoS with input_reliability" in err
        # waiting for a lifecycle manager is said on /diagnostics
        h.listen("/diagnostics")
        assert h.wait(lambda: h.messages("/diagnostics"), 10)
        status = h.messages("/diagnostics")[-1].status[0]
        assert (status.level, status.message) == (b"\x01", "unconfigured: waiting for configure")
        node.trigger_configure()
        assert state() == "inactive" and node.processor is not None and not node._subs
        assert node.inference.mirror_ensemble == "off"
        # the library's INFO lines reach the ROS log (Python's default level would hide them)
        assert "amodal_ros.models.layout: loaded" in capfd.readouterr().err
        node.trigger_activate()
        assert state() == "active" and len(node._subs) == 4  # rgb, masks, depth, camera_info
        assert h.wait(lambda: h.client.count_subscribers("/image") == 1, timeout=5)
        node.trigger_deactivate()
        assert state() == "inactive" and not node._subs and node.worker is None
        assert h.wait(lambda: h.client.count_subscribers("/image") == 0, timeout=5)
        node.trigger_cleanup()
        assert state() == "unconfigured" and node.processor is None
        # parameters carry their description and range
        stride = node.describe_parameter("stride")
        assert "window" in stride.description
        assert (stride.integer_range[0].from_value, stride.integer_range[0].to_value) == (1, 1000)
        assert "latest" in node.describe_parameter("publish_frames").description
        # invalid values are rejected at set time, naming the parameter
        bad = node.set_parameters([Parameter("publish_frames", value="sometimes")])[0]
        assert not bad.successful and "publish_frames" in bad.reason
        # autostart is read when the node starts: setting it later would do nothing
        assert not node.set_parameters([Parameter("autostart", value=True)])[0].successful
        bad = node.set_parameters([Parameter("stride", value=0)])[0]
        assert not bad.successful
        ok = node.set_parameters([Parameter("stride", value=3)])[0]
        assert ok.successful
        # a topic name ROS would refuse when the publisher is made is refused now, by name
        bad = node.set_parameters([Parameter("overlay_topic", value="also bad!")])[0]
        assert not bad.successful
        assert "overlay_topic 'also bad!' is not a valid ROS topic name" in bad.reason
        assert node.set_parameters([Parameter("overlay_topic", value="~/overlay")])[0].successful
        assert node.set_parameters([Parameter("camera_info_topic", value="")])[0].successful
        node.trigger_configure()
        assert state() == "inactive" and node.stream.stride == 3
        assert node._pubs["overlay"].topic_name == "/amodal_node/overlay"
        # a re-activation starts the health report's totals again
        node.trigger_activate()
        capfd.readouterr()
        assert node.set_parameters([Parameter("stride", value=2)])[0].successful
        assert node.stream.stride == 3  # while configured, the running configuration stays
        assert "set stride: takes effect at the next configure" in capfd.readouterr().err
        # rclpy applies its own parameters at once: no deferral said for them
        assert node.set_parameters([Parameter("use_sim_time", value=False)])[0].successful
        assert "set use_sim_time" not in capfd.readouterr().err
        assert node.set_parameters([Parameter("stride", value=3)])[0].successful
        node.received[RGB] += 7
        node.published += 3
        node.processor.errors += 1
        node.trigger_deactivate()
        node.trigger_activate()
        assert not node.received and node.published == 0
        assert node.processor.errors - node._errors_before == 0
        reports = []  # the first report says nothing of the last activation's failure
        monkeypatch.setattr(node_module, "publish_status", lambda n, p, r, e: reports.append(r))
        node._report()
        assert reports[0].level != ERROR and reports[0].values["pipeline errors"] == "0"
        node.trigger_deactivate()
        node.trigger_cleanup()
        # a stride longer than the window would leave frames unanswered: refused when set, as
        # configure would refuse it (accepted, a lifecycle manager's reset killed the node)
        bad = node.set_parameters([Parameter("stride", value=5)])[0]
        assert not bad.successful
        assert "stride 5 is longer than the model's window of 4 frames" in bad.reason
    finally:
        h.close()


def test_bad_values_from_a_params_file_can_be_repaired_one_by_one(base_params, capfd):
    """Each of two bad values was refused for the other, so no `ros2 param set` could repair
    them: a change is judged on its own while the current values are invalid."""
    from rclpy.parameter import Parameter

    params = {
        **base_params,
        "autostart": False,
        "publish_frames": "sometimes",
        "camera_size": "640 by 480",
    }
    h = NodeHarness(params, subscribe=False)
    node = h.node
    try:
        node.trigger_configure()
        assert node.processor is None  # refused, naming a parameter
        bad = node.set_parameters([Parameter("publish_frames", value="often")])[0]
        assert not bad.successful and "publish_frames" in bad.reason  # still judged
        for name, value in (("publish_frames", "latest"), ("camera_size", "480x640")):
            assert node.set_parameters([Parameter(name, value=value)])[0].successful, name
        node.trigger_configure()
        assert node.processor is not None and node.stream.publish_frames == "latest"
    finally:
        h.close()


def test_deactivate_forgets_the_stream_and_shutdown_does_not_wait_for_a_long_window(
    base_params, capfd
):
    """A deactivated node kept the stream's encodings and warm starts, which a next stream
    with the same stamps (a replay, sim time) could take; the shutdown transition waited for
    the running window without limit, the executor and its services stalled meanwhile."""
    import time

    from amodal_ros.ros.node import SHUTDOWN_WAIT_S

    h = NodeHarness({**base_params, "num_steps": 150}, subscribe=False)
    node = h.node
    try:
        h.listen("amodal/objects")
        h.wait_for_subscribers()
        h.publish_clip(small_clip(8), pace=0.02)
        assert h.wait(lambda: node.worker.busy, timeout=60)
        worker = node.worker
        # the transition runs here, not in the executor's thread: take the node out of it,
        # so that no timer of its publishes while the transition destroys the publishers
        h.executor.remove_node(node)
        started = time.monotonic()
        node.trigger_shutdown()
        assert time.monotonic() - started < SHUTDOWN_WAIT_S + 3
        assert node.abandoned_window and node._state_machine.current_state[1] == "finalized"
        # said as a shutdown (the context is still valid in a lifecycle shutdown: it said
        # "deactivated with N frame(s) unanswered")
        err = capfd.readouterr().err
        assert "shut down during a window" in err and "deactivated with" not in err, err
        # the left window's thread is inside torch: the interpreter must not exit under it
        worker._thread.join(timeout=300)
        assert not worker._thread.is_alive()
    finally:
        h.close()
    h = NodeHarness(base_params, subscribe=False)
    node = h.node
    try:
        h.listen("amodal/objects")
        h.wait_for_subscribers()
        h.publish_clip(small_clip(8), pace=0.02)
        assert h.wait(lambda: node.worker.windows_done >= 1, timeout=60)
        processor = node.processor
        node.trigger_deactivate()
        assert len(processor.cache) == 0  # reset: nothing of this stream seeds the next
    finally:
        h.close()


def test_sigterm_during_a_long_configure_stops_at_once(published_folder, tmp_path):
    """docker stop and systemd send SIGTERM: inside configure's warm-up (an engine build can
    take minutes) it was ignored until configure ended, then logged as a failed transition."""
    import signal
    import subprocess
    import time

    cmd = _installed_node_command(
        f"    checkpoint: '{published_folder}'\n"
        "    height: 128\n    width: 256\n    num_frames: 4\n    num_steps: 1000\n",
        tmp_path,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # the models are loaded: the warm-up window runs next
        lines.append(line)
        if "amodal_ros.models.layout: loaded" in line:
            break
    time.sleep(1.0)
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert time.monotonic() - stopped < 10, out[-3000:]
    assert proc.returncode == 0 and "Traceback" not in out and "[ERROR]" not in out, out[-3000:]


def test_library_records_of_every_level_reach_the_ros_log_with_their_traceback(capfd):
    import logging

    from rclpy.logging import get_logger

    from amodal_ros.ros.transitions import RosLogHandler

    log = logging.getLogger("amodal_ros.test_handler")
    log.addHandler(RosLogHandler(get_logger("handler_test")))
    log.propagate, log.level = False, logging.INFO
    log.info("built engine")
    log.warning("stale window")
    try:
        raise RuntimeError("publisher gone")
    except RuntimeError:
        log.exception("publishing window ending at stamp %d failed", 5)
    err = capfd.readouterr().err
    # rclpy raises when one line of code logs at two severities: nothing may be lost to that
    assert "Logging error" not in err and "severity cannot be changed" not in err
    assert "[INFO]" in err and "amodal_ros.test_handler: built engine" in err
    assert "[WARN]" in err and "stale window" in err
    assert "[ERROR]" in err and "publishing window ending at stamp 5 failed" in err
    assert "Traceback" in err and "RuntimeError: publisher gone" in err


def test_a_callback_error_after_a_skipped_frame_is_logged_not_raised(base_params, capfd):
    import logging

    h = NodeHarness({**base_params, "autostart": False}, subscribe=False)
    try:  # one throttled-log line, two severities: rclpy raised ValueError in the callback
        h.node._log_throttled(logging.WARNING, "bad frame", "skipped frame at stamp 1 ns")
        h.node._log_throttled(logging.ERROR, "callback", "masks message at 2 ns failed")
    finally:
        h.close()
    err = capfd.readouterr().err
    assert "skipped frame at stamp 1 ns" in err and "masks message at 2 ns failed" in err


def test_outputs_are_offered_with_the_reliability_and_depth_asked_for(base_params):
    """What a grasp planner's subscription meets: best effort (or reliable) as configured."""
    from rclpy.qos import ReliabilityPolicy

    params = {**base_params, "output_reliability": "best_effort", "queue_depth": 3}
    h = NodeHarness(params, subscribe=False)
    try:

        def offered():
            return h.client.get_publishers_info_by_topic("/amodal/objects")

        assert h.wait(lambda: len(offered()) == 1, timeout=10)
        qos = offered()[0].qos_profile
        assert qos.reliability == ReliabilityPolicy.BEST_EFFORT
        assert h.node._pubs["objects"].qos_profile.depth == 3
    finally:
        h.close()


def test_no_inference_without_subscribers(base_params):
    h = NodeHarness(base_params, subscribe=False)
    try:
        h.wait_for_subscribers()
        h.publish_clip(small_clip(8), pace=0.02)
        assert h.wait(lambda: h.node.worker.windows_idle >= 6, timeout=20)
        assert h.node.worker.windows_done == 0 and h.node.published == 0
    finally:
        h.close()


def test_publish_when_idle_runs_windows_without_subscribers_counted_as_the_models(base_params):
    """publish_when_idle: windows run with no subscriber (a recorder added later, a latency
    test); a window where the model ran for some objects and not others (one below
    min_object_pixels) is a model window, its time in the pace advice."""
    params = {**base_params, "publish_when_idle": True, "min_object_pixels": 90}
    h = NodeHarness(params, subscribe=False)
    try:
        h.wait_for_subscribers()
        h.publish_clip(small_clip(8), pace=0.02)  # object 1 never reaches 90 pixels
        node = h.node
        assert h.wait(lambda: node.model_windows >= 3, timeout=30)
        assert node.worker.windows_idle == 0 and len(node.model_seconds) == node.model_windows
    finally:
        h.close()


def test_grasp_planner_example_receives_amodal_targets(base_params):
    from amodal_ros.examples.grasp_targets import GraspTargets

    h = NodeHarness(base_params, subscribe=False)
    try:
        listener = GraspTargets(context=h.context)  # the README's example
        h.executor.add_node(listener)
        h.listen("amodal/objects")  # what the example was given, to compare with
        h.wait_for_subscribers()
        assert h.wait(lambda: h.node._pubs["objects"].get_subscription_count() == 2, timeout=5)
        clip = small_clip(8)
        h.wait_for_camera_info(clip)
        h.publish_clip(clip, pace=0.02)
        assert h.wait(lambda: len(listener.targets) == 3, timeout=60)  # 2 objects + the bar
        # RGB-D with camera info: 3D boxes (an object without one keeps its image centre)
        assert any(t.box_centre_m is not None for t in listener.targets.values())
        for t in listener.targets.values():
            assert t.frame_id == FRAME_ID and t.stamp.sec >= 1  # to transform and age it by
            assert 0 <= t.pixel[0] < 72 and 0 <= t.pixel[1] < 40
            if t.box_centre_m is not None:  # the amodal 3D box's centre, m, before the camera
                assert t.box_centre_m[2] > 0 and min(t.box_size_m) > 0
                assert abs(t.box_yaw_rad) <= np.pi / 4 + 1e-6  # its axes: the mask's, to 45 deg
            assert 0.0 <= t.occlusion_ratio <= 1.0
            assert all(isinstance(i, int) for i in t.occluder_ids)
        # each target is its object in the message it came from (the amodal mask's centre,
        # the extent's box), not in a stale or another one
        targets = dict(listener.targets)  # the newest message's, as it stands now
        stamp = _ns(next(iter(targets.values())).stamp)

        def message():
            return next(
                (m for m in h.messages("amodal/objects") if _stamp(m.header) == stamp), None
            )

        assert h.wait(lambda: message() is not None, timeout=10)
        valid = {o.object_id: o for o in message().objects if o.amodal_valid}
        assert set(targets) == set(valid)
        for object_id, t in targets.items():
            o = valid[object_id]
            ys, xs = np.nonzero(_mask(o.amodal_mask))
            assert t.pixel == pytest.approx((xs.mean(), ys.mean()))
            in_front = [i for i, d in zip(o.occluder_ids, o.occluder_depth_order) if d >= 0]
            assert t.occluder_ids == in_front
            assert (
                t.truncated
                == o.truncated
                == bool(xs.min() == 0 or xs.max() == 71 or ys.min() == 0 or ys.max() == 39)
            )
            if o.extent_valid:
                p = o.extent_pose.position
                assert t.box_centre_m == pytest.approx((p.x, p.y, p.z))
                assert t.box_size_m == pytest.approx(
                    (o.extent_size.x, o.extent_size.y, o.extent_size.z)
                )
        # an occluder that depth shows behind the object is nothing to move first
        from amodal_ros.msg import AmodalObject, AmodalObjectArray

        h.executor.remove_node(listener)  # the call below is the test thread's alone
        seen = AmodalObject(object_id=5, amodal_valid=True, occluder_ids=[7, 8, 9])
        seen.occluder_depth_order = [1, -1, 0]  # in front, behind, no depth
        seen.amodal_mask.height = seen.amodal_mask.width = seen.amodal_mask.step = 2
        seen.amodal_mask.data = [255, 0, 0, 0]
        listener.on_objects(AmodalObjectArray(objects=[seen]))
        assert listener.targets[5].occluder_ids == [7, 9]
    finally:
        h.close()


def test_markers_and_3d_extents_from_rgbd_with_camera_info(base_params):
    from visualization_msgs.msg import MarkerArray

    h = NodeHarness(base_params)  # the harness publishes calibrated CameraInfo with each frame
    try:
        h.listen("amodal/markers", MarkerArray)
        h.wait_for_subscribers()
        clip = small_clip(8)
        h.wait_for_camera_info(clip)
        stamps = h.publish_clip(clip, pace=0.02)
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 8, timeout=60)
        assert h.wait(lambda: len(h.messages("amodal/markers")) >= 8, timeout=10)
        boxes = {}  # stamp -> ids of objects with a measured box
        for r in h.messages("amodal/objects"):
            for o in r.objects:
                if not o.amodal_valid:  # the window filling: no amodal mask to measure
                    assert (o.extent_valid, o.extent_reason) == (False, o.EXTENT_NO_AMODAL)
                    continue
                if not o.extent_valid:  # nothing to measure, or nothing visible to measure at
                    empty = not _mask(o.amodal_mask).any()
                    expected = o.EXTENT_NO_AMODAL if empty else o.EXTENT_NO_VALID_DEPTH
                    assert o.extent_reason == expected
                if o.extent_valid:
                    boxes.setdefault(_stamp(r.header), set()).add(o.object_id)
                    size, centre = o.extent_size, o.extent_pose.position
                    assert size.x > 0 and size.y > 0 and size.z >= 0.02
                    if o.object_id in clip.target_depth:  # targets are flat, at a known depth
                        depth = clip.target_depth[o.object_id]
                        assert abs(centre.z - depth) <= size.z / 2 + 0.05, (centre.z, depth)
        assert sum(len(ids) for ids in boxes.values()) >= 5 * 2  # 5 full windows' frames
        markers = h.messages("amodal/markers")
        assert [_stamp(m.markers[0].header) for m in markers] == stamps
        for m in markers:
            stamp = _stamp(m.markers[0].header)
            assert all(x.header.frame_id == FRAME_ID for x in m.markers)
            assert m.markers[0].action == m.markers[0].DELETEALL
            cubes = [x.id for x in m.markers if x.ns == "amodal_extent"]
            labels = [x.id for x in m.markers if x.ns == "amodal_label"]
            assert set(cubes) == set(labels) == boxes.get(stamp, set())
        # a deactivation clears the boxes (lifetime 0: they stayed in RViz for ever)
        h.node.trigger_deactivate()
        assert h.wait(lambda: len(h.messages("amodal/markers")) == len(stamps) + 1, timeout=10)
        (cleared,) = h.messages("amodal/markers")[-1].markers
        assert cleared.action == cleared.DELETEALL and cleared.header.frame_id == FRAME_ID
        assert _stamp(cleared.header) == stamps[-1]
    finally:
        h.close()


def test_track_ids_give_stable_ids_through_a_crossing_and_a_full_occlusion(base_params):
    """As in replay: a segmenter's ids shuffle every frame, two objects cross, one hides for
    1 s; the node's results keep one id per object and answer the hidden one every frame."""
    from crossing_scene import FRAMES, assert_one_track_each, crossing_scene

    window = 12  # longer than the 8 hidden frames
    h = NodeHarness(dict(base_params, track_ids=True, num_frames=window))
    try:
        h.wait_for_subscribers()
        scene = crossing_scene()
        stamps = h.publish_clip(scene, pace=0.1)  # about a camera's pace: no queue overflows
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= FRAMES, timeout=90)
        results = h.messages("amodal/objects")
        assert [_stamp(r.header) for r in results] == stamps
        frames = {
            t: {o.object_id: (_mask(o.modal_mask), o.amodal_valid) for o in r.objects}
            for t, r in enumerate(results)
        }
        assert_one_track_each(scene.truth, frames, window)
    finally:
        h.close()


def installed_node() -> str:
    """The installed amodal_node: this checkout's (scripts/setup.sh), else the one on PATH (a
    colcon workspace's, which `colcon test` puts there); skips when there is none."""
    import shutil
    from pathlib import Path

    here = Path(__file__).resolve().parents[2] / "install/amodal_ros/lib/amodal_ros/amodal_node"
    exe = str(here) if here.exists() else shutil.which("amodal_node")
    if exe is None:
        pytest.skip(f"amodal_node is neither at {here} nor on PATH; run scripts/setup.sh")
    return exe


def _installed_node_command(params_text: str, tmp_path, extra=()) -> list[str]:
    """The installed node's command line with a params file of `params_text` (indented
    `name: value` lines) and `extra` ROS arguments."""
    params = tmp_path / "params.yaml"
    params.write_text("/**/amodal_node:\n  ros__parameters:\n" + params_text)
    return [installed_node(), "--ros-args", "--params-file", str(params), *extra]


def _run_installed_node(params_text: str, tmp_path, extra=(), stop_on="active: listening on"):

    from conftest import run_until

    return run_until(_installed_node_command(params_text, tmp_path, extra), stop_on, timeout=120)


def _start_installed_node(params_text: str, tmp_path, extra=(), launcher=()):
    """(process, its output lines, the thread gathering them): the installed node started in
    the background (by `launcher`, a command taking the node's arguments, if given), its
    lines added to the list as it prints them."""
    import subprocess
    import threading

    cmd = _installed_node_command(params_text, tmp_path, extra)
    if launcher:
        cmd = [*launcher, *cmd[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    return proc, lines, reader


def test_installed_executable_runs_like_ros2_run(published_folder, tmp_path):
    """`ros2 run amodal_ros amodal_node --ros-args --params-file ...` minus the ros2 CLI: the
    installed executable starts, loads a YAML params file, activates, and stops on SIGINT."""
    rc, out = _run_installed_node(
        f"    checkpoint: '{published_folder}'\n    height: 32\n    width: 64\n"
        "    num_frames: 4\n    num_steps: 1\n    frame_rate: 10.0\n",
        tmp_path,
        extra=["-r", "image:=/cam/rgb"],
    )
    assert "active: listening on /cam/rgb, /masks, /depth" in out, out[-2000:]
    assert "at 10.0 fps" in out
    assert rc == 0, out[-3000:]  # a clean stop on SIGINT
    assert "[ERROR]" not in out and "context is invalid" not in out, out[-3000:]
    # torch, diffusers and torchao load at configure, quieted: no kernels this machine cannot
    # load, no deprecations (they printed before the node's first line)
    assert "Failed to load" not in out and "register_constant" not in out, out[:3000]


def test_a_lifecycle_shutdown_ends_the_process(published_folder, tmp_path):
    """`ros2 lifecycle set /amodal_node shutdown` left the process spinning, finalized, so a
    launch file's `respawn` never started a fresh one: it exits 0 after answering."""
    import time

    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from rclpy.context import Context

    proc, lines, reader = _start_installed_node(
        f"    checkpoint: '{published_folder}'\n"
        "    height: 32\n    width: 64\n    num_frames: 4\n    num_steps: 1\n",
        tmp_path,
        ["-r", "__ns:=/ends"],
    )
    context = Context()
    rclpy.init(context=context)
    caller = rclpy.create_node("shutdown_caller", context=context)
    try:
        deadline = time.monotonic() + 120
        while not any("active: listening on" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        client = caller.create_client(ChangeState, "/ends/amodal_node/change_state")
        assert client.wait_for_service(timeout_sec=30)
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_ACTIVE_SHUTDOWN
        answer = client.call_async(request)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(caller)
        executor.spin_until_future_complete(answer, timeout_sec=30)
        assert answer.done() and answer.result().success
        assert proc.wait(timeout=30) == 0
    finally:
        caller.destroy_node()
        rclpy.try_shutdown(context=context)
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    assert "finalized: exiting" in "".join(lines)


# Python raises the KeyboardInterrupt of a SIGINT (or SIGTERM) in the main thread while
# rclpy's own signal thread shuts the context down: on a loaded machine the node's shutdown
# could begin with the context still valid. SIGUSR1 raising KeyboardInterrupt, rclpy unaware,
# makes that order certain.
INTERRUPT_FIRST = (
    "import signal, sys\n"
    "from amodal_ros.ros.main import _interrupt, main\n"
    "signal.signal(signal.SIGUSR1, _interrupt)\n"
    "sys.exit(main())\n"
)


@pytest.mark.parametrize(
    "interrupt", ["SIGINT", "SIGINT twice", "KeyboardInterrupt before rclpy's shutdown"]
)
def test_ctrl_c_during_a_window_exits_cleanly_within_seconds(
    published_folder, tmp_path, interrupt
):
    """A SIGINT while a long window runs (1000 steps at 128x256 here): the node does not wait
    for it (`ros2 launch` escalates to SIGKILL after 10 s) and exits 0; its thread left inside
    torch once made the interpreter's exit abort (SIGABRT). When the interrupt reached Python
    before rclpy had shut the context down, the node waited for the whole window (a CI run
    found it alive 30 s after SIGINT). A second Ctrl-C inside the 2-s wait interrupted the
    cleanup: a traceback, and the interpreter aborted under the window's thread."""
    import signal
    import subprocess
    import threading
    import time

    from node_harness import image_msg
    from rclpy.context import Context

    first = interrupt.startswith("KeyboardInterrupt")
    proc, lines, reader = _start_installed_node(
        f"    checkpoint: '{published_folder}'\n"
        "    height: 128\n    width: 256\n    num_frames: 4\n    num_steps: 1000\n"
        "    stride: 2\n    warmup: false\n    input_reliability: reliable\n",
        tmp_path,
        ["-r", "image:=/slow/image", "-r", "masks:=/slow/masks", "-r", "depth:=/slow/depth"],
        launcher=[sys.executable, "-c", INTERRUPT_FIRST] if first else (),
    )
    context = Context()
    rclpy.init(context=context)
    feeder = rclpy.create_node("slow_window_feeder", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(feeder)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        pubs = {
            n: feeder.create_publisher(Image, f"/slow/{n}", 10)
            for n in ("image", "masks", "depth")
        }  # noqa: E501
        deadline = time.monotonic() + 60
        while min(p.get_subscription_count() for p in pubs.values()) == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        from diagnostic_msgs.msg import DiagnosticArray

        from amodal_ros.msg import AmodalObjectArray

        busy = []  # the node's reports: windows wait while one runs
        feeder.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: busy.extend(
                kv.value for kv in m.status[0].values if kv.key == "queue depth"
            ),
            10,
        )
        feeder.create_subscription(AmodalObjectArray, "/amodal/objects", lambda m: None, 10)
        clip = small_clip(4)
        t = 0  # frames until the node, discovering this process, takes a window and more
        while not any(int(v) > 0 for v in busy):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            stamp = 10**9 + t * 125_000_000
            pubs["masks"].publish(image_msg(clip.labels[t % 4], "mono16", stamp))
            pubs["depth"].publish(image_msg(clip.depth[t % 4], "32FC1", stamp))
            pubs["image"].publish(image_msg(clip.rgb[t % 4], "rgb8", stamp))
            t += 1
            time.sleep(0.1)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGUSR1 if first else signal.SIGINT)
        if interrupt.endswith("twice"):
            time.sleep(0.7)  # inside the node's wait for the window
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: what it printed
            pytest.fail(f"still running 30 s after {interrupt}:\n" + "".join(lines)[-3000:])
        waited = time.monotonic() - stopped
    finally:
        executor.shutdown(timeout_sec=5)
        feeder.destroy_node()
        rclpy.try_shutdown(context=context)
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    out = "".join(lines)
    assert "shut down during a window: its frames get no result" in out, (proc.returncode, out)
    # and the windows queued behind it (printed, not silently drained)
    assert re.search(r"shut down with \d+ frame\(s\) unanswered \([1-9]\d* window", out), out
    # before `ros2 launch` escalates (SIGTERM 5 s after SIGINT, SIGKILL 5 s later), also with
    # the other core busy (pytest -n 2)
    assert proc.returncode == 0 and waited < 10, (proc.returncode, waited, out[-3000:])
    assert "context is invalid" not in out and "terminate called" not in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_installed_executable_rejects_out_of_range_yaml(tmp_path):
    rc, out = _run_installed_node("    stride: 0\n", tmp_path, stop_on=None)  # exits itself
    assert rc == 1
    assert "amodal_node: invalid parameter: stride 0 is outside [1, 1000]\n" in out, out[-2000:]


@pytest.mark.parametrize(
    "name, value, line",
    [
        ("stride", 0, "stride 0 is outside [1, 1000]"),
        ("frame_rate", 500.0, "frame_rate 500.0 is outside [0.1, 120.0]"),
    ],
)
def test_a_value_outside_its_range_is_named_with_the_range(name, value, line):
    """rclpy words an integer's and a float's range apart ("range. Min" and "range Min"):
    both read as one plain line."""
    from rclpy.exceptions import ParameterException
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from amodal_ros.ros.params import declare_all, parameter_error

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter(name, value=value)]
    node = Node("range_probe", context=context, parameter_overrides=overrides)
    try:
        with pytest.raises(ParameterException) as refused:
            declare_all(node)
        assert parameter_error(refused.value) == line
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_help_prints_the_parameters_instead_of_starting_a_node(capsys):
    """`amodal_node --help` started the node (a neighbour on the DDS domain drove it)."""
    from amodal_ros.ros.main import main
    from amodal_ros.ros.params import parameter_names

    assert main(["amodal_node", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ros2 run amodal_ros amodal_node --ros-args")
    assert all(f"  {name}: " in out for name in parameter_names())


def test_the_node_module_runs_the_node(tmp_path):
    """`python -m amodal_ros.ros.node` imported the module and exited 0: no node, no line (a
    service unit written so "succeeded")."""
    import sys

    from conftest import run_until

    params = tmp_path / "params.yaml"
    params.write_text("/**/amodal_node:\n  ros__parameters:\n    stride: 0\n")
    module = [sys.executable, "-m", "amodal_ros.ros.node"]
    rc, out = run_until([*module, "--ros-args", "--params-file", str(params)], None, 120)
    assert rc == 1 and "amodal_node: invalid parameter" in out, out[-2000:]


def test_compressed_streams_and_a_depth_frame_mismatch(base_params, capfd):
    import cv2
    from image_transport_encoders import compressed_depth, png_compressed
    from node_harness import PERIOD_NS, image_msg
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage

    # every input as image_transport's plugins publish it: RGB png `compressed`, masks png
    # `compressed` (16-bit ids), depth `compressedDepth` (32FC1: quantised inverse depth)
    params = {
        **base_params,
        "rgb_compressed": True,
        "rgb_topic": "image/compressed",
        "mask_compressed": True,
        "mask_topic": "masks/compressed",
        "depth_compressed": True,
        "depth_topic": "depth/compressedDepth",
    }
    h = NodeHarness({**params, "stride": 1})
    try:
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {
            name: h.client.create_publisher(CompressedImage, topic, qos)
            for name, topic in (
                ("rgb", "image/compressed"),
                ("masks", "masks/compressed"),
                ("depth", "depth/compressedDepth"),
            )
        }
        assert h.wait(lambda: all(p.get_subscription_count() for p in pubs.values()), timeout=10)
        clip = small_clip(5)
        stamps = []
        for t in range(5):
            stamp = 10**9 + t * PERIOD_NS
            header = image_msg(clip.labels[t], "mono16", stamp).header
            depth_header = image_msg(clip.labels[t], "mono16", stamp, "test_depth_frame").header
            ok, png = cv2.imencode(".png", clip.rgb[t][..., ::-1])
            fmt, labels = png_compressed(clip.labels[t].astype(np.uint16), "mono16")
            depth_fmt, depth, _ = compressed_depth(clip.depth[t].astype(np.float32), "32FC1")
            pubs["masks"].publish(CompressedImage(header=header, format=fmt, data=labels))
            pubs["depth"].publish(
                CompressedImage(header=depth_header, format=depth_fmt, data=depth)
            )
            pubs["rgb"].publish(CompressedImage(header=header, format="png", data=png.tobytes()))
            stamps.append(stamp)
            h.wait(lambda: False, timeout=0.02)
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 5, timeout=60)
        assert h.wait(lambda: len(h.messages("amodal/overlay")) >= 5, timeout=10)
        overlays = h.messages("amodal/overlay")
        assert [_stamp(m.header) for m in overlays] == stamps
        # the first frame has no result drawn on the background: the overlay there is the RGB
        first = np.frombuffer(bytes(overlays[0].data), np.uint8).reshape(40, 72, 3)
        background = clip.labels[0] == 0
        assert np.array_equal(first[background], clip.rgb[0][background])
        results = h.messages("amodal/objects")
        assert [_stamp(r.header) for r in results] == stamps
        for t, r in enumerate(results):  # the PNG labels kept their ids and pixels
            assert set(np.unique(clip.labels[t])) - {0} <= {o.object_id for o in r.objects}
            for o in r.objects:  # (an object of the window absent here: an empty modal mask)
                assert np.array_equal(_mask(o.modal_mask), clip.labels[t] == o.object_id)
        assert h.node.front.frames_rejected == 0
    finally:
        h.close()
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if "frame_id 'test_depth_frame'" in line]
    assert len(said) == 1, err[-3000:]  # once, not per frame
    assert "[WARN]" in said[0] and f"differs from the RGB's '{FRAME_ID}'" in said[0]
    assert "registered to the RGB camera" in said[0]


def test_corrupt_weights_fail_configure_with_one_line(
    published_folder, base_params, capfd, tmp_path
):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(published_folder, broken)
    weights = broken / "image_encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated download
    h = NodeHarness({**base_params, "checkpoint": str(broken)}, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "unconfigured"
    finally:
        h.close()
    errors = [line for line in capfd.readouterr().err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "configure failed" in errors[0], errors
    assert str(weights) in errors[0] and "re-download" in errors[0]  # the file and the fix


def test_failed_activation_releases_everything(base_params, capfd):
    from dataclasses import replace

    h = NodeHarness({**base_params, "autostart": False}, subscribe=False)
    node = h.node
    try:
        node.trigger_configure()
        # parameters refuse such a name; set past them, it makes the subscription fail
        node.topics = replace(node.topics, mask_topic="not a valid topic!")
        node.trigger_activate()
        assert node._state_machine.current_state[1] == "unconfigured"
        assert node.worker is None and not node._subs and not node._pubs
        assert node.processor is None and node.front is None
        import threading

        assert not [t for t in threading.enumerate() if t.name == "amodal_inference"]
    finally:
        h.close()
    err = capfd.readouterr().err
    assert "on_activate failed" in err and "not a valid topic!" in err


def test_a_reactivation_forgets_the_camera_and_never_reuses_a_track_id(base_params):
    """Deactivate, then activate (perhaps on another camera): the old CameraInfo is gone (no
    box from another camera's K), and new objects get new ids (a consumer keyed by id would
    merge two objects)."""
    h = NodeHarness(dict(base_params, track_ids=True, num_frames=12))  # 3 frames: passthrough
    node = h.node

    def ids() -> set[int]:
        return {o.object_id for r in h.messages("amodal/objects") for o in r.objects}

    try:
        clip = small_clip(8)
        h.wait_for_subscribers()
        h.publish_clip(clip, count=3, pace=0.05)
        assert h.wait(lambda: len(h.messages("amodal/objects")) == 3, timeout=30)
        first = ids()
        assert first and node._camera_infos
        node.trigger_deactivate()
        assert not node._camera_infos
        # the old subscriptions gone from the graph first: else the publishers, still seeing
        # them, sent the next frames before the new ones matched (lost; a flaky timeout)
        gone = lambda: not any(p.get_subscription_count() for p in h.pubs.values())  # noqa: E731
        assert h.wait(gone, timeout=10)
        h.received.clear()
        node.trigger_activate()
        h.wait_for_subscribers()
        h.publish_clip(clip, count=3, pace=0.05, stamp0=10**10)
        assert h.wait(lambda: len(h.messages("amodal/objects")) == 3, timeout=30)
        assert min(ids()) > max(first)
    finally:
        h.close()


def test_a_camera_info_stamped_apart_from_every_frame_is_not_passed_through(base_params):
    """A CameraInfo passed through beside a result carries the frame's stamp, so it must be
    the frame's own or one stamped within the sync tolerance: a driver's stamped 50 ms off
    every frame (tolerance 10 ms) is used for the extents but not passed on as the frame's."""
    import time

    from node_harness import PERIOD_NS, camera_info, image_msg

    h = NodeHarness(base_params)
    try:
        h.wait_for_subscribers()
        clip = small_clip(6)
        for t in range(6):
            stamp = 10**9 + t * PERIOD_NS
            info = camera_info(clip.rgb.shape[1], clip.rgb.shape[2])
            info.header = image_msg(clip.labels[t], "mono16", stamp + 50_000_000).header
            h.info_pub.publish(info)
            h.pubs["masks"].publish(image_msg(clip.labels[t], "mono16", stamp))
            h.pubs["rgb"].publish(image_msg(clip.rgb[t], "rgb8", stamp))
            h.pubs["depth"].publish(image_msg(clip.depth[t], "32FC1", stamp))
            time.sleep(0.02)
        assert h.wait(lambda: len(h.messages("amodal/objects")) >= 6, timeout=60)
        assert h.node._camera_infos  # received, and kept for the extents
        h.wait(lambda: False, timeout=0.5)  # nothing more may arrive
        assert h.messages("amodal/camera_info") == []
    finally:
        h.close()


def test_no_camera_info_topic(base_params):
    h = NodeHarness({**base_params, "camera_info_topic": ""}, subscribe=False)
    try:
        assert h.node._state_machine.current_state[1] == "active"
        assert sorted(s.topic_name for s in h.node._subs) == ["/depth", "/image", "/masks"]
        # and no camera info out: a topic that never publishes left its readers waiting
        topics = {pub.topic_name for pub in h.node._pubs.values()}
        assert "/amodal/camera_info" not in topics and "/amodal/objects" in topics
    finally:
        h.close()


def test_default_auto_qos_receives_reliable_and_best_effort_publishers(base_params, capfd):
    """input_reliability 'auto': a reliable publisher gets a reliable subscription (large
    images over best effort are mostly lost under load); a best-effort-only publisher (a
    driver's sensor-data QoS) gets its topic resubscribed best-effort, with one warning, at
    once (it waited for the next diagnostics tick: a bag played on activation lost its first
    second)."""
    params = {k: v for k, v in base_params.items() if k != "input_reliability"}
    params["diagnostics_period"] = 60.0  # no tick within the test
    h = NodeHarness(params, input_qos=("reliable", "best_effort", "reliable"))
    try:
        assert h.node.topics.input_reliability == "auto"
        info_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        h.client.create_publisher(CameraInfo, "camera_info", info_qos)  # a driver's camera info
        h.wait_for_subscribers()
        best_effort = ReliabilityPolicy.BEST_EFFORT
        assert h.wait(
            lambda: (
                _reliability(h.node, MASKS) == _reliability(h.node, "camera_info") == best_effort
            ),
            20,
        )
        assert _reliability(h.node, RGB) == ReliabilityPolicy.RELIABLE
        stamps = h.publish_clip(small_clip(8), pace=0.05)
        assert h.wait(
            lambda: any(r.window_frames == 4 for r in h.messages("amodal/objects")), timeout=60
        )
        assert {_stamp(r.header) for r in h.messages("amodal/objects")} <= set(stamps)
    finally:
        h.close()
    err = capfd.readouterr().err
    assert err.count("offers only best-effort QoS; subscribed best-effort") == 2, err[-2000:]
    assert "/masks: the publisher" in err and "/camera_info: the publisher" in err


def test_without_a_clock_under_sim_time_the_node_still_reports_and_adapts(base_params, capfd):
    """The diagnostics timer, and the one that resubscribes a best-effort-only topic, run on
    wall time: a paused or absent /clock (use_sim_time) must not stop either. A silent camera is
    in every report but logged once per 5 s, not once per period."""
    import time

    params = {k: v for k, v in base_params.items() if k != "input_reliability"}
    started = time.monotonic()
    h = NodeHarness(
        {**params, "use_sim_time": True},
        input_qos=("reliable", "best_effort", "reliable"),
        subscribe=False,
    )
    try:
        h.listen("/diagnostics")
        best_effort = ReliabilityPolicy.BEST_EFFORT
        assert h.wait(lambda: _reliability(h.node, MASKS) == best_effort, 20)
        assert h.wait(lambda: len(h.messages("/diagnostics")) >= 10, 10)  # 2 s at 0.2 s
        # named by the node's full name: two cameras' nodes in two namespaces stay apart
        status = h.messages("/diagnostics")[-1].status[0]
        assert status.name == "/amodal_node: amodal pipeline"
        assert status.level == b"\x01"  # WARN: the camera is silent
    finally:
        h.close()
    # once per 5 s (not once a report, 5 a second), however long a busy machine made the test
    logged = capfd.readouterr().err.count("no RGB message for")
    assert 1 <= logged <= 1 + (time.monotonic() - started) // 5


def _reliability(node, name):
    return node._inputs[name].qos_profile.reliability


def test_malloc_arenas_are_capped_on_glibc():
    """The node caps glibc's arenas at start (RSS held level in the soak; docs/speed.md)."""
    import platform

    from amodal_ros.ros.main import limit_malloc_arenas

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert limit_malloc_arenas() is True  # mallopt accepted the parameter


def test_a_missing_params_file_is_one_line_not_a_traceback(capsys):
    from amodal_ros.ros.main import main

    assert main(["amodal_node", "--ros-args", "--params-file", "/no/such.yaml"]) == 1
    assert capsys.readouterr().out == "amodal_node: no such params file: /no/such.yaml\n"


@pytest.mark.parametrize(
    "ros_args, said",
    [
        (["--params-file", "{params}"], "Couldn't parse params file: '--params-file {params}'. "),
        (["-p", "stride"], "Couldn't parse parameter override rule: '-p stride'. "),
        (["--log-level", "loud"], "Couldn't parse log level: '--log-level loud'. "),
        (["--bogus"], "unknown ROS arguments ['--bogus']"),
    ],
)
def test_arguments_rcl_cannot_parse_are_one_line_not_a_traceback(ros_args, said, tmp_path):
    """A params file rcl cannot parse (a key without a value), `-p NAME` without `:=VALUE`, a
    bad log level (amodal.launch.py's log_level) or an unknown ROS argument ended in rclpy's
    16-line RCLError traceback."""
    import sys

    from conftest import run_until

    params = tmp_path / "params.yaml"
    params.write_text("/**/amodal_node:\n  ros__parameters:\n    checkpoint:\n")
    args = [a.format(params=params) for a in ros_args]
    module = [sys.executable, "-m", "amodal_ros.ros.node"]
    rc, out = run_until([*module, "--ros-args", *args], None, 60)
    assert rc == 1 and "Traceback" not in out, out[-2000:]
    (line,) = [x for x in out.splitlines() if x.startswith("amodal_node:")]  # rcl logs its own
    assert line.startswith("amodal_node: invalid arguments: " + said.format(params=params)), line
    assert "/project/src" not in line and ".c:" not in line  # rcl's C file, line


def test_a_params_file_without_a_section_of_the_nodes_is_warned_of(tmp_path):
    """A params file whose sections name other nodes (`amodal:` for `amodal_node`, a launch
    file's namespace forgotten): rcl applies none of it, and the node ran on its defaults
    without a word (configure then asked for a checkpoint the file sets)."""
    import sys

    from conftest import run_until

    other = tmp_path / "other.yaml"
    other.write_text("amodal:\n  ros__parameters:\n    checkpoint: embedded\n")
    ours = tmp_path / "ours.yaml"
    ours.write_text("/**:\n  ros__parameters:\n    autostart: false\n")
    files = ["--params-file", str(ours), "--params-file", str(other)]
    module = [sys.executable, "-m", "amodal_ros.ros.node", "--ros-args", *files]
    rc, out = run_until([*module, "-r", "__ns:=/robot"], "none of its parameters apply", 60)
    said = (
        f"params file {other} has no section for /robot/amodal_node (its sections: /amodal): "
        "none of its parameters apply"
    )
    assert said in out, out[-2000:]
    assert f"params file {ours}" not in out  # '/**' is every node's


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_the_node_script_answers_help_without_loading_the_models_libraries(flag):
    """`amodal_node --help` took 6 s: the node module imported the model registry, and with it
    torch and diffusers; they load at configure now."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "amodal_node"
    probe = (
        f"import runpy, sys; sys.argv = [{str(script)!r}, {flag!r}]\n"
        f"try: runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except SystemExit as e: assert e.code == 0, e.code\n"
        "print(sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules)))"
    )
    run = subprocess.run(  # a node started instead would spin until the timeout
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: "), run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "[]" and run.stderr == "", run.stdout + run.stderr


def test_the_grasp_example_stops_on_ctrl_c_without_a_traceback():
    """Started as a shell starts a background job (SIGINT ignored until rclpy takes it),
    rclpy stops `spin` on SIGINT by raising ExternalShutdownException, which the README's
    example did not catch: it ended with a traceback and exit code 1."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "amodal_ros.examples.grasp_targets"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # `cmd &` in bash
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60  # its subscription made: rclpy has taken SIGINT, it spins
    while not any("waiting for amodal objects on /amodal/objects" in x for x in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    reader.join(timeout=5)
    out = "".join(lines)
    assert proc.returncode == 0 and "Traceback" not in out, out
