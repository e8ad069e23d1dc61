"""The node's periodic health report: what changed since the last report, as warnings for the
log and a diagnostic_msgs status for /diagnostics (a String on amodal/status without it).

`StreamHealth` is pure bookkeeping over counters the node hands in; `publish_status` is the
only part that touches rclpy messages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB
from amodal_ros.pipeline.window import BACK, GAP, SIZE

try:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
except ImportError:  # diagnostic_msgs missing: a plain status string instead
    DiagnosticArray = None

CAMERA_INFO = "camera_info"  # the input name of the CameraInfo subscription (not synchronised)
# an input quiet for less is not silent: the report just after activation (before DDS found
# the camera) said "no RGB message in the last 0.0 s"
SILENCE_S = 1.0
DIAGNOSTICS_TOPIC = "/diagnostics"
STATUS_TOPIC = "amodal/status"  # used only when diagnostic_msgs is unavailable
OK, WARN, ERROR = 0, 1, 2


@dataclass
class Counters:
    """What the node has counted so far (totals since activation, read at one instant)."""

    time: float
    received: Counter = field(default_factory=Counter)  # messages per input
    unmatched: Counter = field(default_factory=Counter)  # messages without partners per input
    overflowed: Counter = field(default_factory=Counter)  # of those: pushed out of a full queue
    matched: int = 0  # synchronised frames
    sampled: int = 0
    rejected: int = 0
    repeated: int = 0  # frames skipped: the stamp of a frame already kept
    behind: int = 0  # images skipped: stamped before a frame already paired
    restarts: Counter = field(default_factory=Counter)  # window started over, by cause
    dropped: int = 0  # whole windows dropped by the queue
    lost: int = 0  # their new frames that no later window answered
    queued: int = 0
    model_windows: int = 0  # windows the model ran on, published
    windows_idle: int = 0  # skipped: no subscriber
    errors: int = 0  # failed windows: in the processor, or publishing them
    published: int = 0
    passthrough: int = 0  # windows answered without the model (filling, deadline, too small)
    deadline_missed: int = 0
    model_seconds: list[float] = field(default_factory=list)  # recent model windows' times, s
    end_to_end: list[float] = field(default_factory=list)  # recent source stamp -> publish, s


@dataclass
class Report:
    """One health report: level (OK, WARN, ERROR), a short message, key values, warnings."""

    level: int
    message: str
    values: dict[str, str]
    warnings: list[str]


class StreamHealth:
    """Compares each report's counters with the previous report's.

    Args:
        inputs: the stream's inputs (rgb, masks[, depth]) with their resolved topic names.
        tolerance: how one frame's stamps must agree (`StreamConfig.tolerance_text`), quoted
            in the hint for unmatched messages.
        stride, frame_rate: the stream's, so that dropped windows come with the stride the
            measured window times would keep up with; longest: the longest stride its publish
            policy allows (`stream.longest_stride`).
        num_frames: the model's window, so that a window started over by a gap can say how
            long a gap that is (num_frames / frame_rate).
        camera_info: the CameraInfo topic ('' = none), whose silence leaves every object
            without a 3D extent.
        sync_queue: the synchroniser's queue per input, named when full queues lose messages.
    """

    def __init__(
        self,
        inputs: dict[str, str],
        tolerance: str,
        start: float,
        stride: int = 1,
        frame_rate: float = 8.0,
        longest: int | None = None,
        num_frames: int = 25,
        camera_info: str = "",
        sync_queue: int = 30,
    ):
        self.inputs = inputs
        self.sync_queue = sync_queue
        self.camera_info = camera_info
        self.num_frames = num_frames
        self.tolerance = tolerance
        self.stride, self.frame_rate, self.longest = stride, frame_rate, longest
        self.last = Counters(start)
        self.heard = {RGB: start, CAMERA_INFO: start}  # when each last sent something

    def update(self, now: Counters) -> Report:
        """The report for the counters `now`; they become the baseline of the next one."""
        then, self.last = self.last, now
        dt = max(now.time - then.time, 1e-6)
        for name in self.heard:
            if now.received[name] > then.received[name]:
                self.heard[name] = now.time
        new_unmatched = now.unmatched - then.unmatched
        new_rgb = now.received[RGB] - then.received[RGB]
        stalled = new_rgb > 0 and now.matched == then.matched
        warnings = []
        if stalled and not new_unmatched:
            warnings.append(
                f"{new_rgb} RGB message(s) in the last {dt:.1f} s but no complete frame: "
                "waiting for partners" + self._silent_hint(now)
            )
        usable = (now.matched - then.matched) - (now.rejected - then.rejected)
        paired_rate = usable / dt  # frames that paired and were readable
        # inputs at different rates (masks from a segmenter slower than the camera) always
        # leave messages unpaired: a problem only when too few frames pair for the model
        short = new_unmatched and paired_rate < self.frame_rate
        if short:
            warnings.append(
                f"unmatched messages in the last {dt:.1f} s: {dict(new_unmatched)} "
                f"(no partner with {self.tolerance}; frames paired at {paired_rate:.1f} Hz, "
                f"below frame_rate {self.frame_rate:g}; "
                + (
                    self._lag_hint(then, now)
                    or "check that the topics are remapped and the stamps agree"
                )
                + ")"
                + self._silent_hint(now)
            )
        if now.dropped > then.dropped:
            warnings.append(
                f"dropped {now.dropped - then.dropped} stale window(s): inference is slower than "
                "the stride; " + self._stride_hint(now.model_seconds)
            )
        missed = now.deadline_missed - then.deadline_missed
        if missed:
            warnings.append(
                f"{missed} window(s) in the last {dt:.1f} s missed the deadline and were "
                "answered with the visible masks (reason DEADLINE_MISSED): "
                + self._stride_hint(now.model_seconds)
            )
        restarted = now.restarts - then.restarts
        warnings += self._restart_warnings(restarted, now.sampled - then.sampled, dt)
        bad_input = self._input_warnings(then, now, dt)
        if self.camera_info and new_rgb and self._silent(CAMERA_INFO, now):
            bad_input.append(
                f"no CameraInfo for {self._silent(CAMERA_INFO, now):.1f} s on {self.camera_info} "
                "while RGB arrives: "
                "objects get no 3D extent (EXTENT_NO_CAMERA_INFO) and none is passed through; "
                "remap camera_info_topic, or set it to '' for a camera without one"
            )
        warnings += bad_input
        rates = {k: (now.received[k] - then.received[k]) / dt for k in (RGB, MASKS, DEPTH)}
        values = {
            "input rate rgb (Hz)": f"{rates[RGB]:.2f}",
            "input rate masks (Hz)": f"{rates[MASKS]:.2f}",
            "input rate depth (Hz)": f"{rates[DEPTH]:.2f}",
            "input rate camera_info (Hz)": (
                f"{(now.received[CAMERA_INFO] - then.received[CAMERA_INFO]) / dt:.2f}"
            ),
            "paired frames rate (Hz)": f"{paired_rate:.2f}",
            "frames sampled": str(now.sampled),
            "frames rejected": str(now.rejected),
            "frames with a repeated stamp": str(now.repeated),
            "images stamped behind a paired frame": str(now.behind),
            "stream restarts (gap / stamp back / size)": (
                f"{now.restarts[GAP]} / {now.restarts[BACK]} / {now.restarts[SIZE]}"
            ),
            "unmatched messages": str(sum(now.unmatched.values())),
            "model windows": str(now.model_windows),
            "model window time p50/p95/max (s)": spread(now.model_seconds),
            "end-to-end latency p50/p95/max (s)": spread(now.end_to_end),
            "pass-through windows": str(now.passthrough),
            "queue depth": str(now.queued),
            "dropped windows": str(now.dropped),
            "frames lost with them": str(now.lost),
            "deadline misses": str(now.deadline_missed),
            "windows skipped (no subscribers)": str(now.windows_idle),
            "pipeline errors": str(now.errors),
            "callback errors": str(now.received["callback_errors"]),
            "results published": str(now.published),
        }
        level, message = OK, "ok"
        if (
            short
            or now.dropped > then.dropped
            or missed
            or stalled
            or restarted[GAP] + restarted[SIZE]
            or bad_input
        ):
            level, message = WARN, " | ".join(warnings)  # what is wrong, not a category
        if now.errors > then.errors:  # a failure in this period; the total is in the values
            failed = now.errors - then.errors
            level, message = (
                ERROR,
                f"{failed} window(s) failed in the last {dt:.1f} s; see the log",
            )
        return Report(level, message, values, warnings)

    def _restart_warnings(self, new: Counter, sampled: int, dt: float) -> list[str]:
        """Why the window started over in this period, and what to change for a gap: a window
        that starts over holds the frames since then only, and a camera slower than a window
        starts it over at every frame, so no window ever fills and the model never runs."""
        warnings = []
        if new[GAP]:
            span = self.num_frames / self.frame_rate
            warnings.append(
                f"the window started over {new[GAP]} time(s) in {sampled} sampled frame(s) in "
                f"the last {dt:.1f} s after frames more than a window apart ({self.num_frames} "
                f"frames at frame_rate {self.frame_rate:g} = {span:.2f} s): a camera dropout, "
                "or a camera slower than that, whose windows never fill (the visible masks are "
                "sent, flagged 'window not full'); if frames keep arriving further apart, set "
                "frame_rate at or below the camera's rate"
            )
        if new[BACK]:
            warnings.append(
                f"the window started over {new[BACK]} time(s) in the last {dt:.1f} s because "
                "a stamp went back (a bag loop, a sim-time reset, or a publisher with another "
                "clock)"
            )
        if new[SIZE]:
            warnings.append(
                f"the window started over {new[SIZE]} time(s) in the last {dt:.1f} s because "
                "the image size changed (a camera reconfigured to another resolution); the "
                "frames before the change were answered by their own window"
            )
        return warnings

    def _silent(self, name: str, now: Counters) -> float:
        """For how long input `name` has sent nothing, when that is SILENCE_S or more, else 0."""
        quiet = now.time - self.heard[name]
        return quiet if quiet >= SILENCE_S else 0.0

    def _input_warnings(self, then: Counters, now: Counters, dt: float) -> list:
        """A camera that went silent, frames refused, callbacks that failed: each leaves the
        node publishing nothing, so each raises the level (the log says which input and why)."""
        warnings = []
        if self._silent(RGB, now):
            warnings.append(
                f"no RGB message for {self._silent(RGB, now):.1f} s on {self.inputs[RGB]}: is "
                "the camera running, and the topic remapped?"
            )
        if now.rejected > then.rejected:
            warnings.append(
                f"{now.rejected - then.rejected} frame(s) rejected in the last {dt:.1f} s "
                "(wrong encoding, sizes that disagree, unreadable images: the log names the "
                "input and the fix)"
            )
        if now.repeated > then.repeated:
            warnings.append(
                f"{now.repeated - then.repeated} frame(s) in the last {dt:.1f} s repeated the "
                "stamp of a frame already taken and were skipped: a publisher that leaves "
                "header stamps unset, or use_sim_time with no /clock"
            )
        if now.behind > then.behind:
            warnings.append(
                f"{now.behind - then.behind} image(s) in the last {dt:.1f} s were stamped before "
                "a frame already paired and were skipped: the camera's header stamps went back "
                "(a clock stepped back, e.g. by NTP; use a monotonic or PTP-disciplined clock)"
            )
        failed = now.received["callback_errors"] - then.received["callback_errors"]
        if failed:
            warnings.append(f"{failed} callback(s) failed in the last {dt:.1f} s; see the log")
        return warnings

    def _stride_hint(self, model_seconds: list[float]) -> str:
        """What to change, from the recent windows' times when there are some."""
        if not model_seconds:
            return "raise `stride` or lower `num_steps`"
        window_s = float(np.median(model_seconds))
        advice = stride_advice(window_s, self.frame_rate, self.longest)
        return (
            f"a window takes {window_s:.2f} s (median of the last {len(model_seconds)}), one is "
            f"due every {self.stride / self.frame_rate:.2f} s: set {advice}, or use a faster "
            "preset or fewer objects"
        )

    def _lag_hint(self, then: Counters, now: Counters) -> str:
        """Why messages that did arrive on every input paired too rarely, when full queues
        pushed one input's out and another input's messages then found their partners gone:
        that input (a slow segmenter's masks) lags by more than the queue, or its stamps are
        on another clock."""
        overflowed = now.overflowed - then.overflowed
        unmatched = now.unmatched - then.unmatched
        if any(now.received[n] == then.received[n] for n in self.inputs):
            return ""
        late = [n for n in self.inputs if unmatched[n] and not overflowed[n]]
        if not overflowed or not late:
            return ""
        return (
            f"{sum(overflowed.values())} of them pushed out of a full queue "
            f"({dict(overflowed)}) before {', '.join(late)} came: {', '.join(late)} lag the "
            f"others by more than sync_queue ({self.sync_queue} messages), or their stamps are "
            "on another clock; raise `sync_queue` above that lag times the camera rate (a "
            "segmenter 1.2 s behind a 30 Hz camera needs more than 36)"
        )

    def _silent_hint(self, now: Counters) -> str:
        silent = [f"{n} ({topic})" for n, topic in self.inputs.items() if now.received[n] == 0]
        return "; nothing received yet on: " + ", ".join(silent) if silent else ""


def pace(
    window_s: float,
    objects: int,
    stride: int,
    frame_rate: float,
    preset: str,
    longest: int | None = None,
    ensembles: tuple[str, ...] = (),
    cheaper: str = "",
) -> str:
    """One line on whether windows of `window_s` seconds (measured with `objects` objects)
    keep up with a window due every stride / frame_rate seconds, with what to change if not
    (`longest`: the longest stride the publish policy allows, `stream.longest_stride`;
    `ensembles`: the ensemble fields stage 1 runs, whose extra views can be turned off;
    `cheaper`: a checkpoint name whose realtime student costs less, registry.CHEAPER)."""
    due = stride / frame_rate
    per_object = window_s / max(objects, 1)
    head = (
        f"a window took {window_s:.2f} s with {objects} object(s) ({per_object:.2f} s each); "
        f"one is due every {due:.2f} s (stride {stride} at {frame_rate:g} fps)"
    )
    if window_s <= due:
        most = int(due / per_object) if per_object > 0 else objects
        return f"{head}: keeps up (about {most} objects at once)"
    hints = [stride_advice(window_s, frame_rate, longest)]
    if preset != "realtime":
        hints.append("preset realtime (the distilled student, 1 step)")
    if preset not in ("fast", "realtime"):
        hints.append("preset fast (4 steps, no guidance)")
    if ensembles:
        off = " and ".join(f"{name} off" for name in ensembles)
        hints.append(f"{off} (one view: about 1/{2 ** len(ensembles)} of stage 1's work)")
    if cheaper and preset == "realtime":
        hints.append(f"checkpoint {cheaper} (its mask student at a quarter of the latent cells)")
    hints.append("fewer objects (min_object_pixels)")
    return f"{head}: does NOT keep up; stale windows will be dropped. Try {' or '.join(hints)}"


def stride_advice(window_s: float, frame_rate: float, longest: int | None) -> str:
    """'stride >= N', and where the publish policy allows no stride that long, what does."""
    needed = stride_to_keep_up(window_s, frame_rate)
    if longest is not None and needed > longest:
        return f"stride >= {needed} with publish_frames latest (new allows stride <= {longest})"
    return f"stride >= {needed}"


def stride_to_keep_up(window_s: float, frame_rate: float) -> int:
    """The smallest stride (sampled frames between windows) that leaves `window_s` per window."""
    return max(1, int(np.ceil(window_s * frame_rate)))


def spread(values: list[float]) -> str:
    """'p50/p95/max' of recent values in seconds ('-' before there is one)."""
    if not values:
        return "-"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:.3f}/{p95:.3f}/{max(values):.3f}"


def status_publisher(node):
    """The node's status publisher: /diagnostics, or amodal/status without diagnostic_msgs."""
    if DiagnosticArray is not None:
        return node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
    from std_msgs.msg import String

    return node.create_publisher(String, STATUS_TOPIC, 10)


def publish_status(node, pub, report: Report, extra: dict[str, str]) -> None:
    """Publish `report` (plus `extra` values such as the device) as the node's status."""
    values = {**report.values, **extra}
    if DiagnosticArray is None:
        from std_msgs.msg import String

        text = f"{report.message}; " + "; ".join(f"{k}={v}" for k, v in values.items())
        pub.publish(String(data=text))
        return
    status = DiagnosticStatus(
        level=bytes([report.level]),
        name=f"{node.get_fully_qualified_name()}: amodal pipeline",  # one per camera
        message=report.message,
        hardware_id=extra.get("device", ""),
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    pub.publish(msg)
