"""Pairing RGB, depth and mask messages by header stamp, whatever order they arrive in."""

from __future__ import annotations

import bisect
import copy
from collections import Counter
from collections.abc import Sequence

# a step back this long is a new stream (a bag loop steps back the bag's length), a shorter
# one a message out of order (a few frames at most)
RESTART_NS = 250_000_000


class StampSynchronizer:
    """Matches one message of every input per frame, by stamp.

    The first input is the pivot (the RGB image): each pivot stamp is paired with the nearest
    stamp of every other input within `tolerance_ns` (0 = exact match). A pair is emitted once it
    cannot get better: the partner has the same stamp, or that input has already delivered a
    stamp at or after the pivot's (inputs are assumed in order per topic, not across topics).
    A pivot that can no longer find a partner, and partners no pivot can use, are discarded and
    counted in `unmatched` per input; each queue holds at most `queue_size` messages, and what
    a full queue pushes out is counted in `overflowed` too (an input that lags the others by
    more than `queue_size` messages pairs nothing: its partners are gone before it arrives).

    A stamp more than RESTART_NS behind its input's newest is held until the stream says what
    it is: a new stream (a bag loop, a sim-time reset) once a second message, of that input or
    another, steps that far back too (a slow camera's next frame may be seconds on, so not
    necessarily near it); then matching starts over from the held messages. Else it was one
    late message (a slow segmenter's), counted unmatched when that input's next message goes
    on where it was (restarting on it alone discarded every frame queued). A smaller step back
    is a message out of order (a segmenter publishing from a thread pool) and takes its place
    in the queue, or is counted unmatched when a later frame has left already (frames leave in
    stamp order); once an input has sent one, a pivot waits for it until it has sent two
    messages beyond the pivot. A stamp more than RESTART_NS ahead of its input's newest and of
    the other inputs' is suspect until that input's next message: pairing judges the input by
    where it was before (a glitch, a message stamped in the future, made every waiting frame
    hopeless). A next message far behind it but where that input was before, or where the
    other inputs are, says it was a glitch: it is counted unmatched and pairing goes on.

    At a restart the old stream is not thrown away: an input that lags the others (masks a
    segmenter sends after their images) still has the old stream's messages in flight, and
    they pair with what the old stream queued. Each input's messages go to the old stream
    until that input steps back too; once every input has, what the old stream still holds is
    paired as at the end of a stream (`flush`). Its frames all leave before the new stream's
    (a new frame needs a message of every input from the new stream), so frames still leave
    one stream at a time, in stamp order within each (discarding the old queues at the restart
    lost about twice the lag of the images' frames at every bag loop).
    """

    def __init__(self, inputs: Sequence[str], tolerance_ns: int = 0, queue_size: int = 30):
        if not inputs:
            raise ValueError("inputs must name at least one input")
        if tolerance_ns < 0:
            raise ValueError(f"tolerance_ns must be >= 0, got {tolerance_ns}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.inputs = list(inputs)
        self.tolerance_ns = int(tolerance_ns)
        self.queue_size = queue_size
        self.unmatched: Counter[str] = Counter()
        self.matched = 0
        # messages with the stamp of the frame just emitted (unstamped input), per input
        self.repeated: Counter[str] = Counter()
        self.overflowed: Counter[str] = Counter()  # of `unmatched`: pushed out of a full queue
        self.behind = 0  # of the pivot's `unmatched`: stamped before a frame that had left
        self._reordered: set[str] = set()  # inputs seen sending a message out of order
        self.reset()

    def reset(self) -> None:
        """Forget queued messages (e.g. when stamps jump back at a bag loop); keeps counters."""
        self._stamps: dict[str, list[int]] = {name: [] for name in self.inputs}
        self._items: dict[str, list] = {name: [] for name in self.inputs}
        self._latest: dict[str, int | None] = {name: None for name in self.inputs}
        self._emitted: int | None = None  # the stamp of the last frame emitted
        self._held: tuple[str, int, object] | None = None  # far back: a restart, or late?
        self._old: StampSynchronizer | None = None  # the stream before a restart, still fed
        self._crossed: set[str] = set()  # inputs whose messages are the new stream's
        # input -> its newest stamp before a message far ahead of it (a glitch, or a jump
        # forward its next message confirms)
        self._before_jump: dict[str, int] = {}

    def add(self, name: str, stamp_ns: int, item) -> list[dict]:
        """Queue one message; returns the frames completed by it, oldest first, each a dict
        {input name: item} plus "stamp_ns" (the pivot's stamp)."""
        if name not in self._stamps:
            raise ValueError(f"unknown input {name!r}; inputs are {self.inputs}")
        if self._old is not None and name not in self._crossed:
            old_latest = self._old._latest[name]
            if old_latest is None or stamp_ns >= old_latest - RESTART_NS:  # still in flight
                behind = self._old.behind  # an int: the shallow copy does not share it
                frames = self._old.add(name, stamp_ns, item)
                self.behind += self._old.behind - behind
                return self._counted(frames)
            self._crossed.add(name)
            retired = self._retire_old() if self._crossed == set(self.inputs) else []
            return retired + self.add(name, stamp_ns, item)
        latest = self._latest[name]
        before = self._before_jump.pop(name, None)  # its next message says what the jump was
        back = latest is not None and stamp_ns < latest - RESTART_NS
        if back and (self._agrees(name, stamp_ns) or (before is not None and stamp_ns >= before)):
            self._drop_glitch(name, stamp_ns)  # this input's newest was a stamp in the future
            latest = self._latest[name]
        elif (
            latest is not None
            and stamp_ns > latest + RESTART_NS
            and not self._agrees(name, stamp_ns)  # far ahead of the other inputs too
        ):
            self._before_jump[name] = latest
        if latest is not None and stamp_ns < latest - RESTART_NS:
            if self._held is None:  # the first message back there: a loop, or one late message?
                self._held = (name, stamp_ns, item)
                return []
            held, self._held = self._held, None
            frames = self._restart(crossed={held[0], name})
            return frames + self.add(*held) + self.add(name, stamp_ns, item)
        if self._held is not None and self._held[0] == name:
            self._drop_held()  # that input went on where it was: what it sent back there was late
        if latest is not None and stamp_ns < latest:
            self._reordered.add(name)
        if stamp_ns == self._emitted:  # a publisher that leaves stamps unset, sim time without
            self.repeated[name] += 1  # /clock: not a partner problem (its frame has left)
            return []
        elif name == self.inputs[0] and self._emitted is not None and stamp_ns < self._emitted:
            self.unmatched[name] += 1  # late: a frame after it has left already
            self.behind += 1
            return []
        stamps, items = self._stamps[name], self._items[name]
        i = bisect.bisect_right(stamps, stamp_ns)
        stamps.insert(i, stamp_ns)
        items.insert(i, item)
        if len(stamps) > self.queue_size:
            self._discard(name, 0)
            self.overflowed[name] += 1
        latest = self._latest[name]
        self._latest[name] = stamp_ns if latest is None else max(latest, stamp_ns)
        return self._match()

    def flush(self) -> list[dict]:
        """End of stream (bag end): pair every queued pivot with its best partner within
        tolerance without waiting for later messages; what cannot pair is counted unmatched."""
        self._drop_held()  # no second message came back there: late ones
        frames = self._retire_old()
        pivot, others = self.inputs[0], self.inputs[1:]
        while self._stamps[pivot]:
            p = self._stamps[pivot][0]
            nearest = {name: self._nearest(name, p) for name in others}
            chosen = {name: j for name, j in nearest.items() if j is not None}
            if len(chosen) < len(others):
                self._discard(pivot, 0)
                continue
            frame = {"stamp_ns": p, pivot: self._items[pivot].pop(0)}
            self._stamps[pivot].pop(0)
            for name, j in chosen.items():
                frame[name] = self._items[name].pop(j)
                del self._stamps[name][j]
            self.matched += 1
            self._emitted = p
            frames.append(frame)
        for name in others:
            while self._stamps[name]:
                self._discard(name, 0)
        return frames

    def pending(self) -> dict[str, int]:
        """Messages waiting for partners, per input (the old stream's too, after a restart)."""
        old = self._old.pending() if self._old is not None else {}
        return {name: len(s) + old.get(name, 0) for name, s in self._stamps.items()}

    def _restart(self, crossed: set[str]) -> list[dict]:
        """Start a new stream; the queues become the old stream, fed by every input not in
        `crossed` (those that stepped back) until it steps back too. Returns the frames of an
        earlier old stream that this one retires."""
        frames = self._retire_old()
        # a shallow copy holds the queues and shares the counters; `reset` gives this one new
        # queues (its matched count is this one's: `_counted`)
        old = copy.copy(self)
        self.reset()
        silent = {name for name in self.inputs if old._latest[name] is None}
        self._old, self._crossed = old, crossed | silent
        if self._crossed == set(self.inputs):
            frames += self._retire_old()
        return frames

    def _retire_old(self) -> list[dict]:
        """The old stream's last frames, paired as at a stream's end: no input feeds it now."""
        if self._old is None:
            return []
        frames = self._counted(self._old.flush())
        self._old, self._crossed = None, set()
        return frames

    def _counted(self, frames: list[dict]) -> list[dict]:
        self.matched += len(frames)  # the old stream's, counted here (its own count is not)
        return frames

    def _match(self) -> list[dict]:
        pivot, others = self.inputs[0], self.inputs[1:]
        frames = []
        while self._stamps[pivot]:
            p = self._stamps[pivot][0]
            chosen, hopeless, waiting = {}, False, False
            for name in others:
                j = self._nearest(name, p)
                latest = self._latest[name]
                if j is None:
                    hopeless |= self._passed(name, p)
                    waiting = True
                elif self._stamps[name][j] == p or (latest is not None and latest >= p):
                    chosen[name] = j
                else:
                    waiting = True
            if hopeless:
                self._discard(pivot, 0)
                continue
            if waiting:
                break
            frame = {"stamp_ns": p, pivot: self._items[pivot].pop(0)}
            self._stamps[pivot].pop(0)
            for name, j in chosen.items():
                frame[name] = self._items[name][j]
                del self._stamps[name][j], self._items[name][j]
                while self._stamps[name] and self._stamps[name][0] < p - self.tolerance_ns:
                    self._discard(name, 0)  # older than any pivot still to come
            self.matched += 1
            self._emitted = p
            frames.append(frame)
        self._prune_partners()
        return frames

    def _nearest(self, name: str, stamp: int) -> int | None:
        stamps = self._stamps[name]
        i = bisect.bisect_left(stamps, stamp)
        best = None
        for j in (i - 1, i):
            within = 0 <= j < len(stamps) and abs(stamps[j] - stamp) <= self.tolerance_ns
            if within and (best is None or abs(stamps[j] - stamp) < abs(stamps[best] - stamp)):
                best = j
        return best

    def _prune_partners(self) -> None:
        pivot = self.inputs[0]
        oldest = self._stamps[pivot][0] if self._stamps[pivot] else self._latest[pivot]
        if oldest is None:
            return
        for name in self.inputs[1:]:
            while self._stamps[name] and self._stamps[name][0] < oldest - self.tolerance_ns:
                self._discard(name, 0)

    def _passed(self, name: str, stamp: int) -> bool:
        """Whether input `name` has gone past `stamp` for good: a message beyond the
        tolerance, or two from an input seen out of order (the first may be a neighbour a
        segmenter's thread pool sent first: swapped pairs lost every other frame). Waiting
        for a second from every input delayed each frame of a segmenter slower than the
        camera by one of its periods."""
        latest = self._settled(name)
        if name not in self._reordered or self.queue_size < 2:
            return latest is not None and latest > stamp + self.tolerance_ns
        stamps = self._stamps[name]
        return len(stamps) - bisect.bisect_right(stamps, stamp + self.tolerance_ns) >= 2

    def _settled(self, name: str) -> int | None:
        """Input `name`'s newest stamp, or while its newest is a suspect jump ahead, the one
        before: a glitch must not pass every frame waiting for it."""
        return self._before_jump.get(name, self._latest[name])

    def _agrees(self, name: str, stamp_ns: int) -> bool:
        """Whether a stamp far behind input `name`'s newest is where the other inputs are:
        then that newest was the glitch (a stamp in the future), not this one."""
        others = [t for n, t in self._latest.items() if n != name and t is not None]
        return bool(others) and abs(stamp_ns - max(others)) <= RESTART_NS

    def _drop_glitch(self, name: str, stamp_ns: int) -> None:
        """Count unmatched input `name`'s messages stamped far beyond `stamp_ns`, where the
        others are: held as its newest, every later message of it looked like a bag loop no
        other input followed, and nothing paired again (one mask stamped 2 s ahead left 1
        result in the next 59 frames)."""
        limit = stamp_ns + RESTART_NS
        stamps = self._stamps[name]
        while stamps and stamps[-1] > limit:
            self._discard(name, len(stamps) - 1)
        self._latest[name] = max([stamp_ns, *stamps])
        if self._emitted is not None and self._emitted > limit:
            self._emitted = None

    def _drop_held(self) -> None:
        if self._held is not None:
            self.unmatched[self._held[0]] += 1
            self._held = None

    def _discard(self, name: str, index: int) -> None:
        del self._stamps[name][index], self._items[name][index]
        self.unmatched[name] += 1
