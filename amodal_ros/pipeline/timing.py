"""Per-stage wall time of the pipeline (CLIP, encode, denoise, decode), for logs and benchmarks."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from contextlib import contextmanager


class StageTimes:
    """Accumulated seconds per stage name. On a GPU, set `sync` to time the kernels rather
    than their launch (it synchronises the device at each stage boundary)."""

    def __init__(self, sync: bool = False):
        self.sync = sync
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    @contextmanager
    def __call__(self, stage: str):
        """A context that adds its wall time to `stage`."""
        self.synchronize()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.synchronize()
            self.seconds[stage] += time.perf_counter() - started
            self.calls[stage] += 1

    def reset(self) -> None:
        """Forget all times and counts."""
        self.seconds.clear()
        self.calls.clear()

    def synchronize(self) -> None:
        """Wait for the device's queued kernels (only with `sync`)."""
        if self.sync:
            import torch  # only a GPU run sets sync, and it has torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
