"""Sliding windows over a sampled frame stream, with per-object tracking by label id."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from amodal_ros.core.frames import MAX_OBJECTS, Frame


@dataclass
class Window:
    """Frames of one window and what is new in it.

    Attributes:
        frames: the window's frames, oldest first (`num_frames` of them when `full`).
        object_ids: objects tracked at the window's newest frame: labelled in one of its frames,
            or seen within the timeout.
        new_frames: the frames this window answers (the ones a 'new' policy publishes): those
            added since the previous window, ending `held_back` frames before the newest.
        full: False for the partial windows emitted while the buffer fills.
        frames_missing: model-rate slots between the first and last stamp with no frame.
        held_back: the newest frames left to the next window (offline: `centred_hold_back`).
    """

    frames: tuple[Frame, ...]
    object_ids: tuple[int, ...]
    new_frames: int
    full: bool
    frames_missing: int = 0
    held_back: int = 0

    @property
    def last(self) -> Frame:
        """The window's newest frame."""
        return self.frames[-1]

    def masks(self, object_id: int) -> np.ndarray:
        """[T, H, W] bool modal masks; a frame without the object is all False (fully hidden)."""
        return np.stack([f.labels == object_id for f in self.frames])

    def answered(self, new: bool = True) -> range:
        """Indices of the frames this window answers: its new frames (publish_frames 'new'),
        else its newest one; either way none of those it holds back (at least one frame)."""
        stop = len(self.frames) - self.held_back
        count = self.new_frames if new else 1
        return range(stop - max(1, min(count, stop)), stop)


# why a stream starts over
BACK, GAP, SIZE = "stamp went back", "gap longer than a window", "image size changed"


def centred_hold_back(num_frames: int, stride: int) -> int:
    """Offline, the newest frames each window leaves to the next, so that every frame is
    answered by the window it sits nearest the middle of: a frame at a window's end has no
    later frames to lean on (validation, 60-frame clips, 25-frame windows every 5: mIoU_occ_all
    +2.2, docs/training.md "Offline, every frame from the middle of a window"). 10 for 25 and 5;
    a window still answers its `stride` frames (hold back + stride <= num_frames)."""
    return max(0, (num_frames - 1) // 2 - stride // 2)


class WindowBuffer:
    """The last `num_frames` sampled frames; emits a window every `stride` frames.

    Timeline with num_frames = 5, stride = 2 (x = frame pushed, W = full window emitted):

        frame:   0  1  2  3  4  5  6  7  8
                 p  p  p  p  W     W     W      p = partial window (buffer still filling)
        window at 4: frames 0-4, new 4 | at 6: frames 2-6, new 5-6 | at 8: frames 4-8, new 7-8

    Objects are tracked by label id: one that appears late, or vanishes for some frames, keeps
    its place (its absent frames are empty modal masks, the fully occluded case); one unseen for
    longer than `object_timeout_ns`, and in none of the buffered frames, is dropped and reported
    by `pop_dropped()` (a window answers frames older than its newest one, offline up to a
    window's length: an object labelled in them keeps its result there); beyond MAX_OBJECTS
    ids the longest-unseen go first (`_bound`). Memory is bounded by `num_frames` frames. A
    repeated stamp is ignored; a stamp going backwards, one after a gap longer than a window,
    or an image of another size resets the buffer (`StreamFront`
    flushes the frames still waiting first: `restart_cause`): the model reads a window as one
    stretch of evenly spaced video of one camera, and shorter gaps are reported as the
    window's `frames_missing`.

    With `hold_back` (offline, where no one waits on an answer; None live) no partial window
    is emitted: the first full window answers the frames before it, by the model instead of
    with their modal masks, and each full window leaves its `hold_back` newest frames to the
    next one, so a frame is answered where it has frames on both sides; `flush` answers what
    is left (and a stream too short to fill a window).
    """

    def __init__(
        self,
        num_frames: int,
        stride: int,
        object_timeout_ns: int,
        period_ns: int,
        hold_back: int | None = None,
    ):
        if num_frames < 1 or stride < 1:
            raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")
        if hold_back is not None and not 0 <= hold_back <= num_frames - stride:
            raise ValueError(
                f"hold_back must be 0 to num_frames - stride ({num_frames - stride}), got "
                f"{hold_back}: the frames between two windows would never be answered"
            )
        self.num_frames = num_frames
        self.stride = stride
        self.hold_back = hold_back
        self.object_timeout_ns = object_timeout_ns
        self.period_ns = period_ns
        self.reset()

    def reset(self) -> None:
        """Forget every frame and object (the stream starts over)."""
        self.frames: deque[Frame] = deque(maxlen=self.num_frames)
        self.last_seen: dict[int, int] = {}
        self._since_window = 0  # frames added since the last window (the stride)
        self._unanswered = 0  # of those and the ones held back, not answered yet
        self._emitted_full = False
        self._dropped: list[int] = []

    def push(self, frame: Frame) -> Window | None:
        """Add the newest frame; returns a full window when one is due, a partial one while the
        buffer fills (so every early frame is still answered), else None."""
        if self.frames and frame.stamp_ns == self.frames[-1].stamp_ns:
            return None  # the same frame again (a duplicate message)
        if self.restart_cause(frame):
            lost = self._dropped + list(self.last_seen)  # ids not popped yet among them
            self.reset()
            self._dropped = lost  # their caches can go: the stream started over
        self.frames.append(frame)
        for object_id in frame.object_ids():
            self.last_seen[object_id] = frame.stamp_ns
        oldest = self.frames[0].stamp_ns
        for object_id, seen in list(self.last_seen.items()):
            if seen < oldest and frame.stamp_ns - seen > self.object_timeout_ns:
                del self.last_seen[object_id]
                self._dropped.append(object_id)
        self._bound(frame.stamp_ns)
        self._since_window += 1
        self._unanswered += 1
        full = len(self.frames) == self.num_frames
        if full and self._emitted_full and self._since_window < self.stride:
            return None
        if not full and self.hold_back is not None:
            return None  # offline: the first full window (or `flush`) answers these frames
        self._emitted_full |= full
        return self._emit(final=False)

    def _bound(self, stamp_ns: int) -> None:
        """Drop the longest-unseen ids beyond MAX_OBJECTS, never one of the newest frame: a
        segmenter numbering its masks anew in every frame (ids counting up, without
        `track_ids`) left an object_timeout's worth of ids in every window, each an object of
        every published frame (60 a frame for 5 s at 8 fps: 2400 of them)."""
        excess = len(self.last_seen) - MAX_OBJECTS
        if excess <= 0:
            return
        unseen = sorted((seen, i) for i, seen in self.last_seen.items() if seen < stamp_ns)
        for _, object_id in unseen[:excess]:
            del self.last_seen[object_id]
            self._dropped.append(object_id)

    def restart_cause(self, frame: Frame) -> str | None:
        """Why this frame starts the stream over, or None when it does not: BACK, it is older
        than the newest frame (a bag loop, a sim-time reset), GAP, it comes after more than a
        window's time without frames (a camera dropout, a seek, a camera slower than a
        window), or SIZE, its image size differs (the camera's resolution changed: one window
        cannot stack both); pushing it resets the buffer."""
        if not self.frames:
            return None
        newest = self.frames[-1]
        gap = frame.stamp_ns - newest.stamp_ns
        if gap < 0:
            return BACK
        if frame.labels.shape != newest.labels.shape:
            return SIZE
        return GAP if self.period_ns > 0 and gap > self.num_frames * self.period_ns else None

    def flush(self) -> Window | None:
        """End of the stream: a window for the frames not answered yet (added since the last
        window, or held back by it), or None when there are none."""
        if not self.frames or self._unanswered == 0:
            return None
        return self._emit(final=True)

    def _emit(self, final: bool) -> Window:
        held = 0 if final or self.hold_back is None else self.hold_back
        new = min(self._unanswered, len(self.frames)) - held
        self._since_window, self._unanswered = 0, held
        return Window(
            frames=tuple(self.frames),
            object_ids=tuple(sorted(self.last_seen)),
            new_frames=new,
            full=len(self.frames) == self.num_frames,
            frames_missing=self._missing(),
            held_back=held,
        )

    @property
    def frames_waiting(self) -> int:
        """Frames added since the last window (the next stride's, not answered yet)."""
        return self._since_window

    def pop_dropped(self) -> list[int]:
        """Object ids dropped by the timeout since the last call (to free their caches)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def _missing(self) -> int:
        span = self.frames[-1].stamp_ns - self.frames[0].stamp_ns
        slots = int(round(span / self.period_ns)) + 1 if self.period_ns else len(self.frames)
        return max(0, slots - len(self.frames))


def window_starts(num_frames: int, window: int) -> list[int]:
    """Non-overlapping windows; the last one is aligned to the clip's end (it may overlap)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, window))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts
