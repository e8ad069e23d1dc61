"""Say a repeated problem once, then at most once a period with how often it recurred.

A silent camera, a bag loop or a segmenter sending bad frames repeats the same problem every
message; one log line per message would bury everything else, none would hide it."""

from __future__ import annotations

import time
from collections.abc import Callable

REPORT_PERIOD_S = 5.0  # the node's, the worker's and the stream's reports: at most this often


class Throttle:
    """Counts events per kind and says when a kind is due to be reported again.

    Args:
        period: seconds between two reports of one kind (the first is reported at once).
        clock: seconds on a monotonic clock (tests pass their own).
    """

    def __init__(
        self, period: float = REPORT_PERIOD_S, clock: Callable[[], float] = time.monotonic
    ):
        self.period = period
        self._clock = clock
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (last report, count since)

    def due(self, kind: str, amount: int = 1) -> int | None:
        """Add `amount` to `kind`'s count; the count since its last report (this one included)
        when a report is due, else None."""
        now = self._clock()
        last, count = self._kinds.get(kind, (now - self.period, 0))
        if now - last < self.period:
            self._kinds[kind] = (last, count + amount)
            return None
        self._kinds[kind] = (now, 0)
        return count + amount

    @staticmethod
    def repeats(since: int) -> str:
        """What a report standing for `since` events (`due`'s count) adds to its one line."""
        return f" ({since - 1} more like this since the last report)" if since > 1 else ""
