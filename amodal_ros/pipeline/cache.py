"""Per-frame conditioning encodings, reused by overlapping windows."""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Hashable

import numpy as np


class FrameEncodingCache:
    """Bounded LRU of per-frame encodings (VAE latents, CLIP embeddings).

    A key is (kind, object key, frame key, content digest): the object id and frame stamp
    name the entry, and the digest of the preprocessed pixels guarantees a hit is only taken
    when the conditioning really is the same (e.g. window-normalised depth changes when the
    window's depth range changes, and is then re-encoded). `encoded` counts misses per kind,
    so a caller can check that a window sliding by one frame encodes one frame.
    """

    def __init__(self, max_entries: int = 4096):
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, object] = OrderedDict()
        self.encoded: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()

    def get(self, key: tuple):
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.reused[key[0]] += 1
        return value

    def put(self, key: tuple, value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        self.encoded[key[0]] += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_object(self, object_key: Hashable) -> None:
        """Drop every entry of one object (e.g. when a tracker loses it)."""
        for key in [k for k in self._entries if k[1] == object_key]:
            del self._entries[key]

    def forget_frames_before(self, frame_key: int) -> None:
        """Drop entries of frames older than `frame_key` (a stamp): a sliding window never
        needs them again, so memory stays at about one window's worth."""
        for key in [k for k in self._entries if isinstance(k[2], int) and k[2] < frame_key]:
            del self._entries[key]

    def reset(self) -> None:
        self._entries.clear()
        self.encoded.clear()
        self.reused.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cached_batch(cache: FrameEncodingCache, keys: list[tuple], compute) -> list:
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
    """Short content hash of an array (its bytes, shape and dtype)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(str((array.shape, array.dtype.str)).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def stable_seed(*parts) -> int:
    """A 63-bit seed from hashable parts; stable across processes (unlike hash())."""
    data = repr(tuple(_plain(p) for p in parts)).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") >> 1


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
