"""The node's inference worker: a bounded window queue and a thread that drains it.

No rclpy here: the node hands in a `publish(window, results, seconds)` callable, so the
queueing and drop policy are testable without ROS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from amodal_ros.core.throttle import Throttle
from amodal_ros.pipeline.window import Window

log = logging.getLogger("amodal_ros.worker")


class WindowQueue:
    """Windows waiting for inference; never blocks the producer.

    When more than `max_pending` full windows wait, the oldest full window is dropped whole
    and counted; its new frames are handed to the next full window where that window holds
    them (fewer than a window's worth dropped, and no bag loop between), so a 'new' publish
    policy still answers them; the frames it does not hold are counted as `frames_lost` and
    logged. Under 'latest' (`answers_new` False) a window answers its newest frame only, which
    no later window answers: each dropped window loses that one frame.
    Partial windows (buffer still filling: modal passthrough, no model) are cheap
    and never dropped; there are at most `num_frames` - 1 of them after each reset, so memory
    stays bounded by `max_pending` full windows plus the partial ones of the restarts that came
    while one window ran (frame references only).
    Object ids to forget ride with a window and are freed after it (a dropped window's go to
    the head of the queue).
    """

    def __init__(self, max_pending: int, answers_new: bool = True):
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self.answers_new = answers_new  # publish_frames 'new' (else 'latest')
        self.dropped = 0
        self.frames_lost = 0  # new frames of dropped windows that no later window holds
        self._lost_log = Throttle()  # a window every stride: one line a period, with the count
        self._items: deque[tuple[Window, list[int]]] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, window: Window, forget_ids: list[int] | None = None) -> None:
        """Queue a window (never blocks); drops the oldest full window when too many wait."""
        with self._cond:
            self._items.append((window, list(forget_ids or [])))
            while sum(w.full for w, _ in self._items) > self.max_pending:
                i = next(k for k, (w, _) in enumerate(self._items) if w.full)
                stale, ids = self._items[i]
                del self._items[i]
                self.dropped += 1
                heir = next(w for w, _ in list(self._items)[i:] if w.full)  # one is left
                self._hand_over(stale, heir)
                if ids and self._items:  # keep cache frees of the dropped window
                    self._items[0][1].extend(ids)
            self._cond.notify()

    def put_all(self, windows: list[Window], forget_ids: list[int]) -> None:
        """Queue the windows one frame completed, `forget_ids` freed after the last of them: at
        a restart the first is the old stream's last window, which still holds those objects."""
        for k, window in enumerate(windows):
            self.put(window, forget_ids if k == len(windows) - 1 else None)

    def _hand_over(self, stale: Window, heir: Window) -> None:
        """Let `heir` answer the new frames of the dropped `stale` window that it holds."""
        if self.answers_new:
            # the frames themselves, not their stamps: after a bag loop or a sim-time reset
            # the heir's frames may repeat the stale window's stamps without being those
            new = {id(stale.frames[k]) for k in stale.answered()}
            held = [k for k, f in enumerate(heir.frames) if id(f) in new]
            if held:
                heir.new_frames = max(heir.new_frames, heir.answered().stop - held[0])
            lost = len(new) - len(held)
        else:  # its newest frame, the one it would answer
            lost = 1
        self.frames_lost += lost
        if lost and (since := self._lost_log.due("lost", lost)):
            log.warning(
                "dropped stale windows whose %d newest frame(s) no later window holds (a "
                "bag loop, or inference far behind): they get no result",
                since,
            )

    def waiting_frames(self) -> int:
        """New frames of the waiting windows: what they would answer."""
        with self._cond:
            return sum(w.new_frames for w, _ in self._items)

    def get(self, timeout: float | None = None) -> tuple[Window, list[int]] | None:
        """The oldest waiting (window, object ids to forget), or None after `timeout`."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Wake waiting consumers; no more windows will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[int]:
        """Drop every waiting window; returns the object ids they carried to forget (their
        caches are still to be freed)."""
        with self._cond:
            ids = [i for _, forget in self._items for i in forget]
            self._items.clear()
            return ids

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class InferenceWorker:
    """Thread that runs `process(window)` and hands the results, with the seconds the window
    took, to `publish(window, results, seconds)`."""

    def __init__(
        self,
        queue: WindowQueue,
        process: Callable,
        publish: Callable,
        forget: Callable[[list[int]], None],
        should_run: Callable[[], bool] = lambda: True,
    ):
        self.queue = queue
        self.process = process
        self.publish = publish
        self.forget = forget
        self.should_run = should_run
        self.windows_done = 0
        self.windows_idle = 0
        # raised outside the processor (which answers its own failures): publishing, freeing
        # caches; the window's unpublished frames get no result
        self.windows_failed = 0
        self._failed_log = Throttle()  # a window every stride otherwise
        self.busy = False
        self._stop = threading.Event()
        # set as the loop returns: a Ctrl-C inside Thread.join marks a thread that still runs
        # a window as stopped (Python 3.11, bpo-45274), and the bounded shutdown wait was skipped
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="amodal_inference", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the running window (a window cannot be interrupted half-way), waiting
        `timeout` seconds at most (None: for ever)."""
        self._stop.set()
        self.queue.close()
        if self._thread.ident is not None:  # started
            self._done.wait(timeout)

    @property
    def stopped(self) -> bool:
        """Whether the thread has left its loop (no window of it runs, none will)."""
        return self._done.is_set() or self._thread.ident is None

    def _loop(self) -> None:
        try:
            self._windows()
        finally:
            self._done.set()

    def _windows(self) -> None:
        while not self._stop.is_set():
            item = self.queue.get(timeout=0.2)
            if item is None:
                continue
            window, forget_ids = item
            self.busy = True
            try:
                if not self.should_run():
                    self.windows_idle += 1
                    continue
                started = time.monotonic()
                results = self.process(window)
                self.publish(window, results, time.monotonic() - started)
                self.windows_done += 1
            except Exception:  # the worker must survive anything; the processor reports itself
                if self._stop.is_set():  # stopping: the publishers may be gone already
                    log.info("stopping: window ending at %d not published", window.last.stamp_ns)
                else:
                    self.windows_failed += 1
                    if since := self._failed_log.due("failed"):
                        log.exception(
                            "publishing window ending at stamp %d failed: its unpublished "
                            "frames get no result%s",
                            window.last.stamp_ns,
                            Throttle.repeats(since),
                        )
            finally:
                # after the window, which may still hold them (the old stream's last window
                # at a restart): freed before it, its encodings were all made again
                self._forget(forget_ids)
                self.busy = False

    def _forget(self, object_ids: list[int]) -> None:
        if not object_ids:
            return
        try:
            self.forget(object_ids)
        except Exception:  # the worker must survive anything; the window itself was answered
            if since := self._failed_log.due("forget"):
                log.exception(
                    "freeing the caches of objects %s failed%s",
                    object_ids,
                    Throttle.repeats(since),
                )
