"""An exponential moving average of a run's trained weights (`TrainConfig.ema_decay`).

A step's weights carry the noise of its batch; their running average does not, which is
what larger batches bought the embedded student (docs/training.md, "Batches of 4") at a
multiple of the cost. The average costs one copy of the trained weights and one `lerp` a
step. The decay warms up, min(decay, (1 + n) / (10 + n)) after step n, so the first steps do
not pin the average to the starting weights for ever: diffusers' `EMAModel` warm-up one step
earlier (its decay after step n + 1; it drops the starting weights at step 1, where 2/11 of
them stay here, 6e-5 after 10 steps).
Checkpoints publish the average; the run's state keeps both, as safetensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

EMA_STATE = "ema.safetensors"  # in a run's state/, beside accelerate's files


class WeightAverage:
    """The moving average of the parameters `named` (name -> the trained tensor)."""

    def __init__(self, named: dict[str, torch.nn.Parameter], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay {decay}: it must be in (0, 1), e.g. 0.995")
        self.params, self.decay = named, decay
        self.average = {k: p.detach().float().clone() for k, p in named.items()}

    def decay_at(self, step: int) -> float:
        """The decay used after optimizer step `step` (1-based, counted from the run's start)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average toward the weights as they are after optimizer step `step`."""
        weight = 1.0 - self.decay_at(step)
        for name, param in self.params.items():
            self.average[name].lerp_(param.detach().float(), weight)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The parameters hold the average inside the block (to save it), the trained
        weights again after it."""
        # kept on the CPU: a save holds no second copy of the weights on the accelerator
        trained = {k: p.detach().to("cpu", copy=True) for k, p in self.params.items()}
        try:
            _copy_into(self.params, self.average)
            yield
        finally:
            _copy_into(self.params, trained)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The average by parameter name, ready for safetensors."""
        return {k: v.contiguous() for k, v in self.average.items()}

    def load_state_dict(self, saved: dict[str, torch.Tensor]) -> None:
        """The average of a saved state; names must match the run's trained parameters."""
        if set(saved) != set(self.average):
            missing = sorted(set(self.average) - set(saved))[:3]
            extra = sorted(set(saved) - set(self.average))[:3]
            raise ValueError(
                f"the saved weight average does not match this run's trained parameters "
                f"(missing {missing}, unknown {extra}): resume with the run's own settings"
            )
        for name, value in saved.items():
            self.average[name].copy_(value)


@torch.no_grad()
def _copy_into(params: dict[str, torch.nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    for name, param in params.items():
        param.copy_(values[name])
