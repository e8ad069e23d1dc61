"""A compiled model sees only a few batch sizes, all compiled at its first call.

torch.compile (dynamic=False) compiles one graph per input shape, and a window's UNet batch
varies with the objects in view (and the last, partial batch of a window); Depth Anything's
with the frames new since the last window. Unbounded, that recompiled mid-stream for every
new object count (a minute or more for the full UNet) and, past torch's recompile limit (8
per function, shared by both stages' UNets), silently ran eager. Here each call is padded up
to the nearest of a few batch sizes (powers of two, as CUDA-graph batch buckets go), and the
first call compiles every size, so a node pays for compilation in its warm-up window, never
while a camera streams.

    sizes = batch_sizes(8, step=2)        # (2, 4, 8): guided batches hold both branches
    predict = Bucketed(fast, sizes)       # pads [3 items] to [4], returns the first 3
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

log = logging.getLogger("amodal_ros.accel")


def batch_sizes(max_batch: int, step: int = 1) -> tuple[int, ...]:
    """The batch sizes compiled for calls of up to `max_batch` items that come in multiples
    of `step`: step times the powers of two below max_batch / step, then max_batch."""
    if max_batch < 1 or step < 1 or max_batch % step:
        raise ValueError(
            f"max_batch {max_batch} must be a positive multiple of step {step} (both >= 1)"
        )
    units, sizes = max_batch // step, []
    power = 1
    while power < units:
        sizes.append(power * step)
        power *= 2
    return (*sizes, max_batch)


class Bucketed:
    """A model called at fixed batch sizes only.

    Every tensor argument with a batch axis holds k rows per item (k = its length over the
    first argument's batch; the UNet's context has one row per frame). A call with b items
    is padded to the smallest size >= b by repeating the last item's rows, and its output
    cut back to b items. The first call also runs every other size once (compiling each),
    from the same inputs repeated or cut.
    """

    def __init__(self, model: Callable[..., torch.Tensor], sizes: tuple[int, ...], label: str):
        self.model = model
        self.sizes = tuple(sorted(sizes))
        self.label = label
        self.name = getattr(model, "name", "compile")
        self._warm = False

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The model's output for `inputs`, [b, ...] for a first argument of b items."""
        b = inputs[0].shape[0]
        if b > self.sizes[-1]:
            raise ValueError(
                f"{self.label}: a batch of {b} is larger than the {self.sizes[-1]} it was "
                "compiled for"
            )
        size = next(s for s in self.sizes if s >= b)
        if not self._warm:
            self._compile_other_sizes(inputs, b, size)
        return self.model(*_resized(inputs, b, size))[:b]

    def _compile_other_sizes(self, inputs: tuple[torch.Tensor, ...], b: int, size: int) -> None:
        """Run every size but `size` (this call compiles that one) once."""
        started = time.perf_counter()
        for other in self.sizes:
            if other != size:
                self.model(*_resized(inputs, b, other))
        self._warm = True
        log.info(
            "%s compiled for batches of %s in %.1f s (once per process; kernels cached on disk)",
            self.label,
            ", ".join(map(str, self.sizes)),
            time.perf_counter() - started,
        )


def _resized(inputs: tuple[torch.Tensor, ...], b: int, size: int) -> tuple[torch.Tensor, ...]:
    """`inputs` of b items as `size` items (the last item repeated, or items cut), each
    contiguous: a graph is compiled for its inputs' strides too, and sampling passes its
    time ids expanded (stride 0), depth its frames channels-last, which would compile a
    second graph of a size."""
    if size == b:
        return tuple(x.contiguous() for x in inputs)
    items = torch.tensor([min(i, b - 1) for i in range(size)])
    out = []
    for x in inputs:
        if x.ndim == 0:  # a scalar shared by every item (the timestep)
            out.append(x)
            continue
        rows = x.shape[0] // b
        if rows * b != x.shape[0]:
            raise ValueError(
                f"an input of {x.shape[0]} rows is no whole number of rows per item for a "
                f"batch of {b} (shape {tuple(x.shape)})"
            )
        # [b * rows, ...] -> [b, rows, ...] -> [size, rows, ...] -> [size * rows, ...]
        per_item = x.reshape(b, rows, *x.shape[1:])
        out.append(per_item[items.to(x.device)].flatten(0, 1).contiguous())  # (indexing
        # keeps a channels-last layout, which the graph would be compiled for too)
    return tuple(out)
