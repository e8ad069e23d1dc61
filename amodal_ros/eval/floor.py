"""The floor under every `amodal-ros bench` scenario, timed in the same run: the bare UNet step
(the stock module called on ready inputs, nothing around it) at a window's batch, its FLOPs,
and the device's measured matmul peak. A scenario's `floor_share` is the part of its window
that is this irreducible UNet compute; the rest is overhead to remove (encoding, decoding,
launches, copies, Python)."""

from __future__ import annotations

import time

import torch

MATMUL_SIDE = {"cuda": 8192, "cpu": 1024}  # square matmul large enough to reach the peak


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(call, device: torch.device, repeats: int) -> float:
    call()  # warm-up (allocations, kernel selection)
    _synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, repeats: int = 5) -> float:
    """TFLOP/s of one large square matmul in `dtype` on `device` (what its units reach)."""
    n = MATMUL_SIDE["cuda" if device.type == "cuda" else "cpu"]
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = _median_seconds(lambda: a @ b, device, repeats)
    return 2.0 * n**3 / seconds / 1e12


@torch.no_grad()
def unet_floor(sampler, batches: dict[str, int], repeats: int = 3) -> dict:
    """The stock UNet step of `sampler` at each named batch size (e.g. {"guided": 8}).

    Returns:
        {"step_s": {name: seconds}, "step_tflop": {name: TFLOP}, "achieved_tflops":
        {name: TFLOP/s}, "matmul_peak_tflops": float, "share_of_peak": {name: 0..1}}.
    """
    from torch.utils.flop_counter import FlopCounterMode

    unet, device, dtype = sampler.c.unet, sampler.device, sampler.dtype
    spec = sampler.unet_spec()
    out: dict = {"step_s": {}, "step_tflop": {}, "achieved_tflops": {}, "share_of_peak": {}}
    peak = matmul_peak_tflops(device, dtype)
    out["matmul_peak_tflops"] = peak
    for name, batch in batches.items():
        x = spec.example(batch, dtype, device)

        def step(x=x):
            return unet(x["sample"], x["timestep"], x["context"], x["time_ids"], return_dict=False)

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        tflop = counter.get_total_flops() / 1e12
        seconds = _median_seconds(step, device, repeats)
        out["step_s"][name] = seconds
        out["step_tflop"][name] = tflop
        out["achieved_tflops"][name] = tflop / seconds
        out["share_of_peak"][name] = tflop / seconds / peak
    return out
