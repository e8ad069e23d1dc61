"""The streaming pipeline shared by the ROS node and `amodal-ros replay`:

    messages --StampSynchronizer--> frames --FrameRateSampler--> model-rate frames
             [--IdTracker--> frames with stable ids] --WindowBuffer--> windows
             --WindowProcessor--> FrameResults

`StreamFront` is the cheap, callback-side half (no model); `WindowProcessor`
(amodal_ros.pipeline.processor) is the worker-side half that runs the models. Both are
ROS-free: messages are converted by a callable passed in.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from amodal_ros.core.config import StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.frames import Frame, FrameResult
from amodal_ros.pipeline.rate import FrameRateSampler
from amodal_ros.pipeline.sync import StampSynchronizer
from amodal_ros.pipeline.tracking import IdTracker
from amodal_ros.pipeline.window import Window, WindowBuffer, centred_hold_back

log = logging.getLogger("amodal_ros.stream")

RGB, MASKS, DEPTH = "rgb", "masks", "depth"


def longest_stride(config: StreamConfig, num_frames: int) -> int | None:
    """publish_frames 'new' answers every frame, so a window every `stride` frames must hold
    them all: a longer stride would leave the frames between two windows unanswered ('latest'
    answers one frame a window by design, so any stride suits it: None)."""
    return num_frames if config.publish_frames == "new" else None


def check_stride(config: StreamConfig, num_frames: int) -> None:
    """Refuse a stride `longest_stride` does not allow, naming both parameters."""
    longest = longest_stride(config, num_frames)
    if longest is not None and config.stride > longest:
        raise InputError(
            f"stride {config.stride} is longer than the model's window of {num_frames} frames "
            "(num_frames): with publish_frames 'new' the frames between two windows would never "
            f"be answered; set stride <= {num_frames}, or publish_frames 'latest'"
        )


class StreamFront:
    """Synchronise, sample to the model rate and window a message stream.

    Args:
        config: stream settings (tolerance, rate, stride, timeouts, tracking).
        num_frames: window length of the model.
        use_depth: whether a depth message is part of every frame.
        to_frame: builds a Frame from {"stamp_ns", "rgb", "masks"[, "depth"]} of raw messages;
            raises InputError for a bad frame, which is then reported via `on_error` and skipped.
        on_error: called with (stamp_ns, error) for every skipped frame.
        offline: a recording, not a camera (replay): with publish_frames 'new' no frame is
            answered before the first full window, which a live node does at once with the
            modal masks (`amodal_valid` false) so that no frame waits, and each frame is
            answered by the window it sits nearest the middle of (`centred_hold_back`).
    """

    def __init__(
        self,
        config: StreamConfig,
        num_frames: int,
        use_depth: bool,
        to_frame: Callable[[dict], Frame],
        on_error: Callable[[int, Exception], None] | None = None,
        offline: bool = False,
    ):
        check_stride(config, num_frames)
        self.config, self.offline = config, offline
        inputs = (RGB, MASKS, DEPTH) if use_depth else (RGB, MASKS)
        self.sync = StampSynchronizer(inputs, config.tolerance_ns, config.sync_queue)
        self.sampler = FrameRateSampler(config.frame_rate)
        self.buffer = WindowBuffer(
            num_frames,
            config.stride,
            int(config.object_timeout * 1e9),
            self.sampler.period_ns,
            centred_hold_back(num_frames, config.stride)
            if offline and config.publish_frames == "new"
            else None,
        )
        # a track lives at least as long as the window holds its object: one that returns
        # sooner keeps its id (a new one would run the model twice, the old id a ghost)
        window_ns = num_frames * self.sampler.period_ns
        self.tracker = (
            IdTracker(
                config.track_min_iou,
                config.track_reid_distance,
                max(int(config.object_timeout * 1e9), window_ns),
            )
            if config.track_ids
            else None
        )
        self.to_frame = to_frame
        self.on_error = on_error or (lambda stamp, err: log.warning("frame %d: %s", stamp, err))
        self.frames_in = 0  # synchronised frames
        self.frames_sampled = 0
        self.frames_rejected = 0
        self.restarts: Counter = Counter()  # times the window started over, by restart_cause

    def add(self, name: str, stamp_ns: int, message) -> list[Window]:
        """Feed one message; returns the windows it completes (usually none or one)."""
        return self._frames(self.sync.add(name, stamp_ns, message))

    def flush(self) -> list[Window]:
        """End of the stream (offline replay): frames still waiting for a later partner are
        paired with the best one within tolerance, and frames added since the last window get
        one more window, so nothing is left unanswered."""
        windows = self._frames(self.sync.flush())
        return windows + self._last_window()

    def answer_waiting(self) -> list[Window]:
        """A window now for the frames added since the last one (the stream went quiet: the
        next stride may never come); the stream goes on from them. Live only: offline the
        stream's end is known (`flush`), and a window cut early there re-answered the frames
        the next one holds back."""
        if self.offline:
            return []
        return self._last_window()

    def _frames(self, matched_frames: list[dict]) -> list[Window]:
        windows = []
        for matched in matched_frames:
            self.frames_in += 1
            saved = self.sampler.state()
            if not self.sampler.accept(matched["stamp_ns"]):
                continue
            try:
                frame = self.to_frame(matched)
            except (InputError, ValueError) as err:
                self.sampler.restore(saved)  # a bad frame must not take a good one's slot
                self.frames_rejected += 1
                self.on_error(matched["stamp_ns"], err)
                continue
            if self.tracker is not None:  # per-frame ids -> stable track ids
                labels = self.tracker.update(
                    frame.stamp_ns, frame.labels, frame.depth, frame.depth_encoding
                )
                frame = replace(frame, labels=labels)
            self.frames_sampled += 1
            cause = self.buffer.restart_cause(frame)
            if cause:  # the frames waiting for a stride get their window first
                windows += self._last_window()
                self.restarts[cause] += 1
            window = self.buffer.push(frame)
            if window is not None:
                windows.append(window)
        return windows

    def _last_window(self) -> list[Window]:
        window = self.buffer.flush()
        return [] if window is None else [window]

    def observe(self, results: Iterable[FrameResult]) -> None:
        """Feed published results back to the id tracker (with `track_ids`): the valid amodal
        masks say where hidden objects are, so they are re-identified where they reappear."""
        if self.tracker is None:
            return
        for result in results:
            for obj in result.objects:
                if obj.valid:
                    self.tracker.observe_amodal(obj.object_id, obj.amodal, result.frame.stamp_ns)
