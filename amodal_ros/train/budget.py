"""A training call's time budget. Once the pace of its first steps is known, the run's length
becomes the steps that fit, so the cosine schedule still ends low and the last step publishes
`final`; a run killed at a deadline stops wherever its learning rate happens to be."""

from __future__ import annotations

PACE_STEPS = 10  # steps before the plan; the first, which warms up (compiles, starts the
# data workers), is not timed
MARGIN = 0.95  # of the time left: saving and publishing follow the last step


class TimeBudget:
    """The budget of one call: `minutes` from `began` (the call's start, loading included),
    for a run that starts (or resumes) at step `start`."""

    def __init__(self, minutes: float, start: int, began: float):
        self.seconds, self.start, self.began = 60.0 * minutes, start, began
        self.first: float | None = None  # when the untimed first step ended

    def plan(self, done: int, steps: int, now: float) -> int | None:
        """After step `done` at time `now`: the run's length where this is the step to plan
        it, the configured `steps` at most and `done` at least; else None."""
        if done == self.start + 1:
            self.first = now
        if done != self.start + PACE_STEPS or self.first is None or steps <= done:
            return None
        pace = (now - self.first) / (PACE_STEPS - 1)
        left = self.seconds - (now - self.began)
        return max(done, min(steps, done + int(MARGIN * left / max(pace, 1e-9))))
