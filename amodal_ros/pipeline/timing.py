"""Per-stage wall time of the pipeline (CLIP, encode, denoise, decode), for logs and benchmarks."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager

import torch


class StageTimes:
    """Accumulated seconds per stage name. On a GPU, set `sync` to time the kernels rather
    than their launch (it synchronises the device at each stage boundary)."""

    def __init__(self, sync: bool = False):
        self.sync = sync
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    @contextmanager
    def __call__(self, stage: str):
        self.synchronize()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.synchronize()
            self.seconds[stage] += time.perf_counter() - started
            self.calls[stage] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def synchronize(self) -> None:
        if self.sync and torch.cuda.is_available():
            torch.cuda.synchronize()
