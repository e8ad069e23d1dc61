"""`ros2 run amodal_ros amodal_node`: the amodal segmentation lifecycle node.

    configure  read parameters, load the models (a missing checkpoint fails the transition with
               one log line), run a warm-up window, create publishers
    activate   subscribe to RGB, masks (and depth, camera info); start the inference worker
    deactivate unsubscribe, stop the worker
    cleanup    drop the models and free GPU memory

With `autostart` (default) the node configures and activates itself, so `ros2 run` just works.
Callbacks only convert and buffer (StreamFront); a worker thread runs the models
(WindowProcessor) and publishes. Thin glue: everything else lives in amodal_ros.pipeline.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import sys
import threading
import time
from collections import Counter, OrderedDict, deque

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble's rclpy (3.3) names the module qos_event; Iron renamed it
    from rclpy.qos_event import SubscriptionEventCallbacks

from amodal_ros.core.config import image_size, node_configs, unknown_parameters
from amodal_ros.core.errors import CheckpointError, InputError
from amodal_ros.core.frames import (
    REASON_DEADLINE_MISSED,
    Frame,
)
from amodal_ros.core.param_file import files_without_a_section
from amodal_ros.core.throttle import Throttle
from amodal_ros.interface.convert import failure_kind, numbers_left_out
from amodal_ros.interface.messages import (
    CAMERA_INFOS_KEPT,
    FrameIdCheck,
    ResultMessages,
    camera_info_for,
    frame_from_messages,
    nearest_stamped,
    rclpy_kit,
    restamped,
    stamp_ns,
)
from amodal_ros.pipeline.processor import WindowProcessor
from amodal_ros.pipeline.stream import (
    DEPTH,
    MASKS,
    RGB,
    StreamFront,
    check_stride,
    longest_stride,
)
from amodal_ros.pipeline.window import Window
from amodal_ros.ros.diagnostics import (
    CAMERA_INFO,
    ERROR,
    WARN,
    Counters,
    Report,
    StreamHealth,
    pace,
    publish_status,
    status_publisher,
)
from amodal_ros.ros.params import (
    check_topic_names,
    declare_all,
    parameter_names,
    parameter_specs,
)
from amodal_ros.ros.transitions import RosLogHandler, in_transition, log_at, logged, reported
from amodal_ros.ros.worker import InferenceWorker, WindowQueue

NODE_NAME = "amodal_node"
# s that a shutdown waits for the running window, whose results nothing can publish any more:
# under `ros2 launch` a longer wait ends in SIGKILL (its SIGTERM comes 5 s after SIGINT)
SHUTDOWN_WAIT_S = 2.0
# s without a sampled frame (at least; a stride's time when longer) after which the frames
# waiting for the next stride get their window: the camera may have stopped
QUIET_S = 1.0


class AmodalNode(LifecycleNode):
    """Amodal masks (and completions) of every labelled object, from RGB(-D) + instance masks."""

    def __init__(self, node_name: str = NODE_NAME, params_files: list[str] = (), **kwargs):
        """`params_files`: the command line's `--params-file`s, checked for a section of this
        node's (rcl applies none of a file that names only other nodes)."""
        super().__init__(node_name, **kwargs)
        declare_all(self)
        self.add_on_set_parameters_callback(self._check_parameters)
        self._log_handler = RosLogHandler(self.get_logger())
        library = logging.getLogger("amodal_ros")
        library.addHandler(self._log_handler)
        if library.level == logging.NOTSET:  # Python's default, WARNING, hides the INFO lines
            library.setLevel(logging.INFO)
        self.processor: WindowProcessor | None = None
        self.front: StreamFront | None = None
        self.worker: InferenceWorker | None = None
        self.queue: WindowQueue | None = None
        self._lock = threading.Lock()
        self._subs, self._pubs = [], {}
        self._camera_infos: OrderedDict[int, CameraInfo] = OrderedDict()  # stamp -> info
        self._compressed: set[str] = set()  # inputs subscribed as CompressedImage
        self._inputs: dict[str, object] = {}  # input name -> its subscription
        self._downgrade: set[str] = set()  # inputs whose publisher offers only best effort
        self._adapt_timer = None  # the one-shot timer that resubscribes them
        self._frame_ids = FrameIdCheck()
        self._forget: list[int] = []
        self._markers_shown: Frame | None = None  # the frame of the boxes RViz shows
        self._next_track_id = 1  # ids continue over reactivations: one never names two objects
        self.finalized = False  # after `shutdown`: `main` ends the process
        self._throttle = Throttle()  # each kind of problem: at once, then every 5 s
        self._reset_counters()
        self.health: StreamHealth | None = None  # while active
        # what /diagnostics says while not active: a monitor sees a node that failed to
        # configure, or waits for a lifecycle manager, instead of nothing
        self._idle = (WARN, "unconfigured: waiting for configure")
        self._doing: tuple[str, float] | None = None  # a running transition, its start
        self._status_pub = status_publisher(self)
        # wall time: under use_sim_time a paused or absent /clock would stop the reports
        self._timer = self.create_timer(
            self.get_parameter("diagnostics_period").value,
            self._report,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self._quiet_timer = self.create_timer(
            QUIET_S / 4, self._answer_waiting, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self._sampled = (-1, 0.0)  # frames sampled at the last check, and since when
        self.pace = "not measured (warmup off)"  # does a window keep up with the stride?
        self.abandoned_window = False  # shut down while a window ran (main exits at once)
        unknown = unknown_parameters(getattr(self, "_parameter_overrides", {}))
        if unknown:  # ROS ignores them: a typo'd key would silently not apply
            self.get_logger().warning(f"unknown parameters, ignored: {', '.join(unknown)}")
        me = self.get_fully_qualified_name()
        for path, names in files_without_a_section(list(params_files), me):
            self.get_logger().warning(
                f"params file {path} has no section for {me} (its sections: "
                f"{', '.join(names) or 'none'}): none of its parameters apply; name the "
                f"section {me} (or /** for every node) above ros__parameters"
            )
        if (
            self.get_parameter("autostart").value
            and self.trigger_configure() == TransitionCallbackReturn.SUCCESS
            and self.trigger_activate() != TransitionCallbackReturn.SUCCESS
        ):
            self.get_logger().error("autostart: activation failed; see above")

    def destroy_node(self, ending: bool = False) -> None:
        """Stop streaming (the worker thread, after its running window; at most
        SHUTDOWN_WAIT_S when the process is `ending` or the context is shut down), detach
        the library's log handler, then destroy the node: the usual `finally:
        node.destroy_node()` left the worker thread and its models alive."""
        if getattr(self, "_subs", None) is not None:  # None: the constructor failed first
            self._stop_streaming(ending)
        handler = getattr(self, "_log_handler", None)
        if handler is not None:
            logging.getLogger("amodal_ros").removeHandler(handler)
        super().destroy_node()

    # -- lifecycle -------------------------------------------------------------------------

    @reported("configuring: loading the models, building engines, warm-up window")
    @logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters, load the models, warm up, create the publishers."""
        log = self.get_logger()
        self.pace = "not measured (warmup off)"  # not the previous configuration's
        try:  # before minutes of model loading: a pip-only install has no ROS messages
            import amodal_ros.msg  # noqa: F401
        except ImportError as err:
            return self._refuse(
                f"configure failed: the amodal_ros messages are not built ({err}): build the "
                "package with colcon and source its install (README, 'Install into a ROS 2 "
                "workspace'); a pip install has the library and its commands, not the node"
            )
        try:
            values = {n: self.get_parameter(n).value for n in parameter_names()}
            self.inference, self.stream, self.topics, self.options = self._configs(values)
        except ValueError as err:
            return self._refuse(f"configure failed: invalid parameter: {err}")
        self._set_torch_threads()
        try:
            processor = WindowProcessor.from_config(self.stream, self.inference)
        except (CheckpointError, InputError, ImportError, OSError) as err:
            return self._refuse(f"configure failed: {err}")
        except Exception as err:  # corrupt weights, unavailable device, ...: one line too
            return self._refuse(f"configure failed: {type(err).__name__}: {err}")
        self.processor = processor
        self.inference = processor.pipelines.config  # sized: the model's working size and mode
        self.use_depth = processor.depth_source == "camera"
        if self.options.warmup and not self._warm_up():
            self._free_models()
            return self._refuse("configure failed: the warm-up window failed (see above)")
        self.builder = ResultMessages(rclpy_kit())
        self._create_publishers()
        self._timer.timer_period_ns = int(self.options.diagnostics_period * 1e9)
        self._idle = (WARN, "inactive: configured, waiting for activate")
        cfg = self.inference
        log.info(
            f"configured: {processor.pipelines.describe()}; on {cfg.device} ({cfg.dtype}, "
            f"UNet backend {processor.segmenter.sampler.predict.name}, {cfg.num_steps} "
            f"steps{self._preset_note()}), depth from {processor.depth_source}, window "
            f"{cfg.num_frames} frames at {self.stream.frame_rate} fps, stride "
            f"{self.stream.stride}, stage 2 {'on' if processor.completer else 'off'}"
        )
        if processor.pipelines.note:
            log.warning(processor.pipelines.note)
        return TransitionCallbackReturn.SUCCESS

    def _refuse(self, reason: str) -> TransitionCallbackReturn:
        """Fail the configure transition: the reason to the log and to /diagnostics."""
        self.get_logger().error(reason)
        self._idle = (ERROR, reason)
        return TransitionCallbackReturn.FAILURE

    def _preset_note(self) -> str:
        cfg = self.inference
        note = f", preset {cfg.preset}" if cfg.preset else ""
        return note + (f", warm start {cfg.warm_start}" if cfg.warm_start else "")

    def _reset_counters(self) -> None:
        """The health report's totals start again at each activation (with a new stream)."""
        self.received: Counter[str] = Counter()
        self.model_seconds: deque[float] = deque(maxlen=200)  # model windows' compute time
        self.end_to_end: deque[float] = deque(maxlen=200)  # source stamp -> published, s
        # both counted here, where a window is published (model windows were the worker's
        # count, taken a moment later, less pass-through ones: -1 in a report between the two)
        self.model_windows = self.passthrough_windows = 0
        self.deadline_missed = self.published = 0
        self.unpublished = 0  # frames of a window that ended after a Ctrl-C
        self._errors_before = self.processor.errors if self.processor else 0

    @logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe and start the inference worker."""
        self._reset_counters()
        self.front = StreamFront(
            self.stream,
            self.inference.num_frames,
            self.use_depth,
            to_frame=self._to_frame,
            on_error=self._on_bad_frame,
        )
        if self.front.tracker is not None:
            self.front.tracker.next_id = self._next_track_id
        self.queue = WindowQueue(
            self.stream.max_pending_windows, answers_new=self.stream.publish_frames == "new"
        )
        self.worker = InferenceWorker(
            self.queue,
            self._process,
            self._publish,
            self.processor.forget,
            should_run=self._has_subscribers,
        )
        self._subscribe()  # may raise (bad topic name): before any thread starts
        topics = self._input_topics()
        camera_info = topics.pop(CAMERA_INFO, "")  # not synchronised: reported on its own
        self.health = StreamHealth(
            topics,
            self.stream.tolerance_text,
            time.monotonic(),
            self.stream.stride,
            self.stream.frame_rate,
            longest_stride(self.stream, self.inference.num_frames),
            self.inference.num_frames,
            camera_info,
            self.stream.sync_queue,
        )
        self.worker.start()
        self.get_logger().info(
            "active: listening on " + ", ".join(s.topic_name for s in self._subs)
        )
        return super().on_activate(state)

    @reported("deactivating: waiting for the running window")
    @logged
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker after its running window."""
        self._stop_streaming()
        self._idle = (WARN, "inactive: deactivated")
        return super().on_deactivate(state)

    @logged
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the models and publishers and free GPU memory."""
        self._release()
        self._idle = (WARN, "unconfigured: cleaned up, waiting for configure")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release everything so the node is really unconfigured."""
        self._release()
        self.get_logger().error("transition failed; node reset to unconfigured")
        self._idle = (ERROR, f"{self._idle[1]}; node reset to unconfigured")
        return TransitionCallbackReturn.SUCCESS

    @logged
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, waiting SHUTDOWN_WAIT_S at most for a running window (its
        results could not be published any more; the executor, services and diagnostics
        stalled until it ended)."""
        self._release(ending=True)
        self._idle = (WARN, "finalized: shut down")
        self.finalized = True
        return TransitionCallbackReturn.SUCCESS

    def _release(self, ending: bool = False) -> None:
        self._stop_streaming(ending)
        self._destroy_publishers()
        self._free_models()

    # -- inputs ----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        t = self.topics
        inputs = [(t.rgb_topic, RGB, t.rgb_compressed), (t.mask_topic, MASKS, t.mask_compressed)]
        if self.use_depth:
            inputs.append((t.depth_topic, DEPTH, t.depth_compressed))
        self._compressed = {name for _, name, compressed in inputs if compressed}
        self._frame_ids = FrameIdCheck()  # a new stream: report its frame mismatches again
        reliability = "reliable" if t.input_reliability == "auto" else t.input_reliability
        for topic, name, _ in inputs:
            self._subscribe_topic(name, topic, reliability)
        if t.camera_info_topic:  # "" = no camera info
            self._subscribe_topic(CAMERA_INFO, t.camera_info_topic, reliability)

    def _subscribe_topic(self, name: str, topic: str, reliability: str) -> None:
        """Subscribe one input (rgb, masks, depth or camera info). With input_reliability
        'auto' a reliable subscription reports a best-effort-only publisher (incompatible
        QoS), and it is resubscribed best-effort at once (`_downgrade_soon`)."""
        events = None
        if self.topics.input_reliability == "auto" and reliability == "reliable":
            events = SubscriptionEventCallbacks(
                incompatible_qos=lambda info, name=name: self._downgrade_soon(name)
            )
        if name == CAMERA_INFO:
            msg_type, callback = CameraInfo, self._on_camera_info
        else:
            msg_type = CompressedImage if name in self._compressed else Image
            callback = functools.partial(self._on_input, name)
        sub = self.create_subscription(
            msg_type,
            topic,
            callback,
            _qos(reliability, self.topics.queue_depth),
            event_callbacks=events,
        )
        self._subs.append(sub)
        self._inputs[name] = sub

    def _downgrade_soon(self, name: str) -> None:
        """Resubscribe `name` best-effort as soon as its event callback has returned (not in
        it: the subscription is destroyed), on a one-shot timer of the node's (one executor
        thread: nothing else runs meanwhile). Waiting for the next diagnostics tick lost up to
        a period of frames: all of a bag's first second under replay.launch.py."""
        self._downgrade.add(name)
        if self._adapt_timer is None:
            self._adapt_timer = self.create_timer(
                0.0, self._adapt_inputs, clock=Clock(clock_type=ClockType.STEADY_TIME)
            )

    def _adapt_inputs(self) -> None:
        """Resubscribe best-effort the inputs whose publishers offer only best effort."""
        if self._adapt_timer is not None:  # one-shot
            self.destroy_timer(self._adapt_timer)
            self._adapt_timer = None
        pending, self._downgrade = self._downgrade, set()
        for name in sorted(pending):
            old = self._inputs.get(name)
            if old is None or old.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT:
                continue
            topic = old.topic_name
            self._subs.remove(old)
            self.destroy_subscription(old)
            self._subscribe_topic(name, topic, "best_effort")
            self.get_logger().warning(
                f"{topic}: the publisher offers only best-effort QoS; subscribed "
                "best-effort (large images may be lost under load; a reliable publisher "
                "avoids that)"
            )

    def _on_input(self, name: str, msg) -> None:
        self.received[name] += 1
        with self._lock:
            if self.front is None:
                return
            try:
                windows = self.front.add(name, stamp_ns(msg.header), msg)
            except Exception as err:  # the callback boundary: log with context, count, go on
                self.received["callback_errors"] += 1
                self._log_throttled(
                    logging.ERROR,
                    name + type(err).__name__,
                    f"{name} message at {stamp_ns(msg.header)} ns failed: {err}",
                )
                return
            self._forget.extend(self.front.buffer.pop_dropped())
            if windows:  # dropped objects' caches are freed by the worker, after the windows
                self.queue.put_all(windows, self._forget)
                self._forget = []

    def _answer_waiting(self) -> None:
        """The frames waiting for the next stride get their window once no frame has been
        sampled for QUIET_S (or a stride's time): a camera that stopped (triggered capture,
        the end of a bag, a pulled cable) left them unanswered until it sent again, and with
        `publish_frames: latest` its newest frame never got a result. The window goes on
        from them if the camera comes back."""
        with self._lock:
            front = self.front
            if front is None or self.abandoned_window:
                return
            now = time.monotonic()
            if front.frames_sampled != self._sampled[0]:
                self._sampled = (front.frames_sampled, now)
                return
            quiet = max(QUIET_S, self.stream.stride / self.stream.frame_rate)
            if now - self._sampled[1] < quiet or not front.buffer.frames_waiting:
                return
            windows = front.answer_waiting()
            if windows:
                self.queue.put_all(windows, self._forget)
                self._forget = []

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.received[CAMERA_INFO] += 1
        with self._lock:
            self._camera_infos[stamp_ns(msg.header)] = msg
            while len(self._camera_infos) > CAMERA_INFOS_KEPT:
                self._camera_infos.popitem(last=False)

    def _to_frame(self, matched: dict) -> Frame:  # called under self._lock
        info = camera_info_for(self._camera_infos, matched["stamp_ns"])
        for warning in self._frame_ids.check({**matched, "camera_info": info}):
            self.get_logger().warning(warning)
        frame = frame_from_messages(matched, self._compressed, arrival=time.monotonic())
        frame.camera_info = info
        return frame

    def _process(self, window: Window) -> list:  # on the worker thread
        with self._lock:  # a frame's own CameraInfo may have arrived after the frame was matched
            infos = self._camera_infos
            for frame in window.frames:
                frame.camera_info = camera_info_for(infos, frame.stamp_ns, frame.camera_info)
        return self.processor.process(window)

    def _on_bad_frame(self, stamp: int, err: Exception) -> None:
        inputs = getattr(err, "inputs", ())  # the culprit(s) named by the converter
        topics = self._input_topics()
        culprit = " and ".join(f"{n} ({topics.get(n, '?')})" for n in inputs)
        self._log_throttled(
            logging.WARNING,
            failure_kind(inputs, err),
            f"skipped frame at stamp {stamp} ns: {culprit + ': ' if culprit else ''}{err}",
        )

    def _log_throttled(self, level: int, key: str, text: str) -> None:
        """Log each kind of problem at once, then at most once a period with a count."""
        since = self._throttle.due(key)
        if since:
            log_at(self.get_logger(), level, text + Throttle.repeats(since))

    # -- outputs ---------------------------------------------------------------------------

    def _create_publishers(self) -> None:
        t = self.topics
        qos = _qos(t.output_reliability, t.queue_depth)
        from amodal_ros.msg import AmodalObjectArray

        outputs = [
            ("objects", AmodalObjectArray, t.output_topic),
            ("overlay", Image, t.overlay_topic),
            ("markers", MarkerArray, t.markers_topic),
        ]
        if t.camera_info_topic:  # none in: a topic that never publishes would leave its
            outputs.append(("camera_info", CameraInfo, t.camera_info_out_topic))  # readers waiting
        if self.processor.completer is not None:
            outputs.append(("completion", Image, t.completion_topic))
        self._pubs = {}  # filled one by one: a failure leaves the made ones to `_release`
        for key, kind, topic in outputs:
            self._pubs[key] = self.create_lifecycle_publisher(kind, topic, qos)

    def _has_subscribers(self) -> bool:
        if self.options.publish_when_idle:
            return True
        outputs = ("objects", "overlay", "completion", "markers")
        return any(self._pubs[k].get_subscription_count() for k in outputs if k in self._pubs)

    def _publish(self, window: Window, results, seconds: float) -> None:
        objects = [o for r in results for o in r.objects]
        with self._lock:  # track_ids: the amodal masks say where hidden objects are
            if self.front is not None:
                self.front.observe(results)
        pubs = self._pubs
        for n, result in enumerate(results):
            try:
                self._publish_frame(pubs, window, result)
            except Exception:
                # asked only now: `context.ok()` waits on the context's lock, which a shutdown
                # holds while it destroys this node, which waits for this window (a deadlock)
                if self.context.ok():
                    raise  # the worker's failed window
                self.unpublished += len(results) - n  # Ctrl-C: the publishers' context is gone
                return
            self.published += 1
        # once published (a window whose publishing failed is the worker's failed one, not
        # also a model or pass-through window: the report's model windows went negative)
        if any(o.valid for o in objects):  # the model ran on this window
            self.model_windows += 1
            self.model_seconds.append(seconds)
            now = self.get_clock().now().nanoseconds
            self.end_to_end.extend((now - r.frame.stamp_ns) * 1e-9 for r in results)
        else:
            self.passthrough_windows += 1
        self.deadline_missed += any(o.reason == REASON_DEADLINE_MISSED for o in objects)

    def _publish_frame(self, pubs: dict, window: Window, result) -> None:
        latency = time.monotonic() - window.last.arrival if window.last.arrival else 0.0
        if pubs["objects"].get_subscription_count():
            pubs["objects"].publish(self.builder.array(result, latency=latency))
        if pubs["overlay"].get_subscription_count():
            pubs["overlay"].publish(self.builder.overlay(result))
        if "completion" in pubs and pubs["completion"].get_subscription_count():
            pubs["completion"].publish(self.builder.completion(result))
        if pubs["markers"].get_subscription_count():
            pubs["markers"].publish(self.builder.markers(result))
            self._markers_shown = result.frame
        info = result.frame.camera_info  # passed through when it is the frame's own
        if info is None or stamp_ns(info.header) != result.frame.stamp_ns:
            with self._lock:  # it may have arrived after its frame, or be stamped apart
                info = nearest_stamped(
                    self._camera_infos.items(),
                    result.frame.stamp_ns,
                    self.stream.tolerance_ns,
                )
        if info is not None and "camera_info" in pubs:
            pubs["camera_info"].publish(restamped(info, self.builder.time(result.frame.stamp_ns)))

    # -- diagnostics -----------------------------------------------------------------------

    def _report(self) -> None:
        health, doing = self.health, self._doing  # one read: a transition may clear them
        if doing is not None or health is None:  # moving or not active: why nothing comes
            level, message = self._idle if doing is None else in_transition(*doing)
            device = self.get_parameter("device").value
            publish_status(
                self, self._status_pub, Report(level, message, {}, []), {"device": device}
            )
            return
        with self._lock:  # one read of each: a transition on another thread may clear them
            front, queue, worker, processor = self.front, self.queue, self.worker, self.processor
            counters = Counters(
                time=time.monotonic(),
                received=Counter(self.received),
                unmatched=Counter(front.sync.unmatched) if front else Counter(),
                overflowed=Counter(front.sync.overflowed) if front else Counter(),
                matched=front.sync.matched if front else 0,
                sampled=front.frames_sampled if front else 0,
                rejected=front.frames_rejected if front else 0,
                repeated=front.sync.repeated[RGB] + front.sampler.repeated if front else 0,
                behind=front.sync.behind if front else 0,
                restarts=Counter(front.restarts) if front else Counter(),
            )
        # `is not None`: an empty queue is falsy (it has a length), and its drops read 0
        counters.dropped = queue.dropped if queue is not None else 0
        counters.lost = queue.frames_lost if queue is not None else 0
        counters.queued = len(queue) if queue is not None else 0
        counters.windows_idle = worker.windows_idle if worker is not None else 0
        counters.errors = processor.errors - self._errors_before if processor is not None else 0
        counters.errors += worker.windows_failed if worker is not None else 0
        counters.published = self.published
        counters.model_seconds = list(self.model_seconds)
        counters.end_to_end = list(self.end_to_end)
        counters.model_windows, counters.passthrough = self.model_windows, self.passthrough_windows
        counters.deadline_missed = self.deadline_missed
        report = health.update(counters)
        for warning in report.warnings:  # the status message carries them every period
            self._log_throttled(logging.WARNING, numbers_left_out(warning), warning)
        extra = {
            "device": self.inference.device,
            "dtype": self.inference.dtype,
            "pace at configure": self.pace,
        }
        publish_status(self, self._status_pub, report, extra)

    def _input_topics(self) -> dict[str, str]:
        t = self.topics
        names = {RGB: t.rgb_topic, MASKS: t.mask_topic}
        if self.use_depth:
            names[DEPTH] = t.depth_topic
        if t.camera_info_topic:
            names[CAMERA_INFO] = t.camera_info_topic
        return {role: self.resolve_topic_name(topic) for role, topic in names.items()}

    # -- parameters, warm-up, teardown -----------------------------------------------------

    def _configs(self, values: dict):
        """The configs of parameter `values`, as configure takes them; raises ValueError naming
        the parameter that no configure could take (so set time refuses what configure would)."""
        configs = node_configs(values)
        check_topic_names(configs[2], self.get_name(), self.get_namespace())
        check_stride(configs[1], configs[0].num_frames)
        return configs

    def _check_parameters(self, params) -> SetParametersResult:
        """Reject invalid values at set time, naming the parameter; applied at next configure.
        While the current values cannot configure the node themselves (a bad params file), a
        change is judged on its own, over the defaults: else no `ros2 param set` could repair
        two bad values, each refused for the other."""
        current = {n: self.get_parameter(n).value for n in parameter_names()}
        changes = {p.name: p.value for p in params if p.name in current}
        reason = self._invalid({**current, **changes})
        if reason and self._invalid(current):
            reason = self._invalid({**{n: d for n, d, _ in parameter_specs()}, **changes})
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        deferred = list(changes)  # rclpy applies its own
        if self.processor is not None and deferred:  # configured: the running configuration stays
            # (in the log: rclpy drops a successful result's reason)
            self.get_logger().info(
                f"set {', '.join(deferred)}: takes effect at the next configure (deactivate, "
                "cleanup, configure, activate)"
            )
        return SetParametersResult(successful=True)

    def _invalid(self, values: dict) -> str:
        try:
            self._configs(values)
        except ValueError as err:
            return str(err)
        return ""

    def _set_torch_threads(self) -> None:
        import torch

        threads = self.options.torch_threads
        if threads == 0 and self.inference.device == "cpu":
            threads = max(1, (os.cpu_count() or 2) - 1)
        if threads:
            torch.set_num_threads(threads)

    def _warm_up(self) -> bool:
        cfg, camera = self.inference, self.options.camera_size
        height, width = image_size(camera, "camera_size") if camera else (cfg.height, cfg.width)
        # a compiled model's first window compiles: the pace is the second window's
        for _ in range(2 if self.processor.pipelines.compiles else 1):
            timed = self.processor.warm_up(height, width)
            if timed is None:
                return False
        from amodal_ros.models.registry import CHEAPER

        self.pace = pace(
            *timed,
            self.stream.stride,
            self.stream.frame_rate,
            cfg.preset,
            longest_stride(self.stream, cfg.num_frames),
            ensembles=self.processor.segmenter.config.ensembles,
            cheaper=CHEAPER.get(self.stream.checkpoint, ""),
        )
        self.get_logger().info(f"warm-up window: {self.pace}")
        return True

    def _stop_streaming(self, ending: bool = False) -> None:
        """Unsubscribe and stop the worker: after its running window, or, when the node is
        `ending` (or the context is shut down), after SHUTDOWN_WAIT_S at most, leaving that
        window: nothing may publish its results any more (a daemon thread)."""
        # the caller's word first: a Ctrl-C's KeyboardInterrupt can reach main's `finally`
        # before rclpy's signal thread has shut the context down (the node then waited for
        # the whole window)
        ending = ending or not self.context.ok()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs, self._inputs = [], {}
        self._downgrade.clear()
        if self.worker is not None:
            if ending:
                self.worker.stop(timeout=SHUTDOWN_WAIT_S)
                self.abandoned_window = not self.worker.stopped  # it still uses the models
                if self.abandoned_window:
                    self._warn("shut down during a window: its frames get no result")
            else:
                if self.worker.busy:
                    self.get_logger().info("waiting for the running window to finish")
                self.worker.stop(timeout=None)
            self.worker = None
        shown, self._markers_shown = self._markers_shown, None
        if shown is not None and "markers" in self._pubs and self.context.ok():
            self._pubs["markers"].publish(self.builder.cleared_markers(shown))  # still active
        with self._lock:
            self._warn_unanswered("shut down" if ending else "deactivated")
            if self.queue is not None:  # the windows the stopped worker never took
                self._forget += self.queue.drain()
                self.queue = None
            if self.front is not None and self.front.tracker is not None:
                self._next_track_id = self.front.tracker.next_id
            self.front = None
            self.health = None
            self._camera_infos.clear()  # the next stream may come from another camera
            if self.processor is not None and not self.abandoned_window:
                # the next stream may repeat these stamps (a replay, sim time): nothing of
                # this one may seed it (warm starts match by object id and stamps)
                self.processor.reset()
            self._forget = []

    def _warn_unanswered(self, stopped: str) -> None:
        """Say how many frames a deactivation leaves without a result: the queued windows',
        those waiting for the next stride (a deactivation stops, it does not drain) and those
        of a window that ended after a Ctrl-C (nothing could publish them)."""
        queued = (
            (len(self.queue), self.queue.waiting_frames()) if self.queue is not None else (0, 0)
        )
        waiting = self.front.buffer.frames_waiting if self.front is not None else 0
        unpublished, self.unpublished = self.unpublished, 0
        if queued[1] or waiting or unpublished:
            late = f", {unpublished} of the last window unpublished" if unpublished else ""
            self._warn(
                f"{stopped} with {queued[1] + waiting + unpublished} frame(s) unanswered "
                f"({queued[0]} window(s) queued, {waiting} frame(s) waiting for the next "
                f"stride{late}): they get no result"
            )

    def _warn(self, text: str) -> None:
        """A warning to the ROS log, or to stderr while shutting down (/rosout is gone with
        the context), in the ROS log's format."""
        if self.context.ok():
            self.get_logger().warning(text)
        else:
            print(f"[WARN] [{self.get_name()}]: {text}", file=sys.stderr, flush=True)

    def _destroy_publishers(self) -> None:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}

    def _free_models(self) -> None:
        self.processor = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def _qos(reliability: str, depth: int) -> QoSProfile:
    policy = (
        ReliabilityPolicy.BEST_EFFORT
        if reliability == "best_effort"
        else ReliabilityPolicy.RELIABLE
    )
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


# `python -m amodal_ros.ros.node --ros-args ...` (without this it imported and exited 0)
if __name__ == "__main__":
    from amodal_ros.ros.main import main

    sys.exit(main())
