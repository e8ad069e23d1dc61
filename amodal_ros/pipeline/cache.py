"""Per-frame conditioning encodings, reused by overlapping windows."""

from __future__ import annotations

import hashlib
import weakref
from collections import Counter, OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np


class CacheKey(NamedTuple):
    """What one cached per-frame value is: `kind` of data ("mask", "depth", "rgb", "amodal"
    encodings, "depth_model" estimates, "camera_depth" conversions), the object it belongs to
    (None for per-frame data shared by all objects), the frame (a stamp), and a digest of the
    input it was computed from (None when the frame key alone names the input)."""

    kind: str
    object_key: Hashable
    frame_key: Hashable
    digest: str | None


class FrameEncodingCache:
    """Bounded LRU of per-frame values (VAE latents, CLIP embeddings, depth estimates).

    The object id and frame stamp of a CacheKey name the entry, and the digest of the
    preprocessed pixels guarantees a hit is only taken when the input really is the same (e.g.
    window-normalised depth changes when the window's depth range changes, and is then
    re-encoded). The key does not hold what else an encoding depends on (the encoder's
    weights, the seed and noise augmentation), so one cache serves one pipeline's settings:
    each WindowProcessor owns one, and stage 1 and 2 encode different kinds. `encoded` counts
    misses per kind, so a caller can check that a window sliding by one frame encodes one
    frame.
    """

    def __init__(self, max_entries: int = 4096):
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, object] = OrderedDict()
        self.encoded: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()

    def get(self, key: CacheKey):
        """The cached value of `key`, or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.reused[key.kind] += 1
        return value

    def put(self, key: CacheKey, value) -> None:
        """Store `value`, evicting the least recently used entries beyond `max_entries`."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        self.encoded[key.kind] += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_object(self, object_key: Hashable) -> None:
        """Drop every entry of one object (e.g. when a tracker loses it)."""
        for key in [k for k in self._entries if k.object_key == object_key]:
            del self._entries[key]

    def forget_frames_outside(self, first: int, last: int) -> None:
        """Drop entries of frames stamped before `first` or after `last` (the window's): a
        sliding window never needs older ones again, and newer ones exist only from before a
        stream started over (a bag loop), which the LRU alone held up to `max_entries`. Memory
        stays at about one window's worth."""
        stale = [
            k
            for k in self._entries
            if isinstance(k.frame_key, int) and not first <= k.frame_key <= last
        ]
        for key in stale:
            del self._entries[key]

    def reset(self) -> None:
        """Drop every entry and the counters."""
        self._entries.clear()
        self.encoded.clear()
        self.reused.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cached_batch(cache: FrameEncodingCache, keys: list[CacheKey], compute) -> list:
    """The cached value of every key; the missing ones come from one call `compute(indices)`
    (values in the order of `indices`) and are stored, so a slide computes only new frames."""
    values = [cache.get(key) for key in keys]
    todo = [i for i, value in enumerate(values) if value is None]
    if todo:
        for i, value in zip(todo, compute(todo)):
            values[i] = value
            cache.put(keys[i], value)
    return values


def digest(array: np.ndarray) -> str:
    """Short content hash of an array (its bytes, shape and dtype). SHA-1 over the array's own
    memory: it tells one key's contents apart (no adversary), at 3x blake2b over a copy, which
    took ~0.1 s per object and view of a full-size window's masks on a CPU."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(str((array.shape, array.dtype.str)).encode())
    if array.size:  # a memoryview of no bytes cannot be cast
        h.update(np.ascontiguousarray(array).data.cast("B"))
    return h.hexdigest()[:24]


class SharedDigests:
    """`digest` of arrays that many windows share, once per array while it lives: a frame's
    camera depth or RGB is in every window that holds the frame (25 at stride 1), and hashing
    a 720p depth image 25 times cost ~0.2 s a window on a CPU. Keyed by identity, so frames
    must not be changed in place (nothing changes a Frame's arrays)."""

    def __init__(self):
        self._memo: dict[int, tuple[weakref.ref, str]] = {}
        self.computed = 0  # digests actually computed (the rest came from the memo)

    def __call__(self, array: np.ndarray) -> str:
        """`digest(array)`, computed at this array's first call."""
        key = id(array)
        entry = self._memo.get(key)
        if entry is not None and entry[0]() is array:
            return entry[1]
        value = digest(array)
        self.computed += 1
        memo = self._memo

        def drop(_: weakref.ref) -> None:  # with the array: its id may then name another one
            memo.pop(key, None)

        memo[key] = (weakref.ref(array, drop), value)
        return value

    def __len__(self) -> int:
        return len(self._memo)


def stable_seed(*parts) -> int:
    """A 63-bit seed from hashable parts; stable across processes (unlike hash())."""
    data = repr(tuple(_plain(p) for p in parts)).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") >> 1


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
