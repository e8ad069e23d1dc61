"""Sampling a camera stream down to the model's frame rate, by stamp."""

from __future__ import annotations


class FrameRateSampler:
    """Keeps frames on a grid of `1 / rate` seconds of stamp time, whatever the camera rate.

    The published model is conditioned on 8 fps video (diffusion-vas), so a 30 fps camera must
    be thinned to every ~4th frame by its stamps; counting arrivals would tie the model's time
    scale to the camera rate and to message loss. A frame is kept when its stamp reaches the
    next grid point (less a quarter period of slack, so camera jitter does not skip a slot),
    or up to half a period early when the camera's next frame, by its last interval, would come
    more than half a period late (a 9 fps camera lost every 4th slot for good: 6.75 frames/s
    with 220 ms holes). A frame late by more than half a period (its slot's frames were lost,
    or a camera at about the model's rate drifted against it) restarts the grid at itself, so
    the frames after it are neither squeezed together to catch up nor skipped; a stamp going
    backwards (a bag loop, sim-time reset) restarts it too.
    """

    def __init__(self, rate: float):
        if rate <= 0:
            raise ValueError(f"rate must be > 0 frames/s, got {rate}")
        self.period_ns = int(round(1e9 / rate))
        self.repeated = 0  # frames skipped for repeating a kept frame's stamp (all time)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the next frame is accepted)."""
        self._next_ns: int | None = None
        self._last_ns: int | None = None
        self._seen_ns: int | None = None  # the camera's previous frame, kept or not

    def state(self) -> tuple:
        """The sampler's state, to `restore` when an accepted frame turns out bad."""
        return (self._next_ns, self._last_ns)

    def restore(self, state: tuple) -> None:
        """Undo an `accept` (the frame turned out unusable, so its slot stays free)."""
        self._next_ns, self._last_ns = state

    def accept(self, stamp_ns: int) -> bool:
        """True when the frame with this stamp should go into the model's stream."""
        if self._last_ns is not None and stamp_ns <= self._last_ns:
            if stamp_ns == self._last_ns:  # a duplicate, or a publisher that sets no stamps
                self.repeated += 1
                return False
            self.reset()
        interval = stamp_ns - self._seen_ns if self._seen_ns is not None else 0
        self._seen_ns = stamp_ns
        # early for its slot, and the camera's next frame, by its last interval, in time for
        # it: that one takes the slot (so does any frame more than half a period early: the
        # grid point is at most 1.25 periods past the last kept frame, which the interval
        # reaches back to)
        if (
            self._next_ns is not None
            and stamp_ns < self._next_ns - self.period_ns // 4
            and stamp_ns + interval <= self._next_ns + self.period_ns // 2
        ):
            return False  # its slot's own frame is still to come
        if self._next_ns is None or stamp_ns > self._next_ns + self.period_ns // 2:
            # first frame, or late by more than half a period: the grid restarts at the frame
            # (taking the following grid point instead put it up to half a period early
            # there, and a camera at about the model's rate then lost every other frame)
            self._next_ns = stamp_ns
        self._next_ns += self.period_ns
        self._last_ns = stamp_ns
        return True
