"""ONNX export of the UNet (12- or 8-channel input, per-frame context, static window length)
and of Depth Anything V2 (static input size), both with a dynamic batch axis."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

log = logging.getLogger("amodal_ros.accel")

OPSET = 17
ONNX_FILE = "model.onnx"  # inside the artifact folder, beside external weights if any


@dataclass(frozen=True)
class UNetSpec:
    """Static shapes of one exported UNet; only the batch (windows x guidance) varies."""

    frames: int
    in_channels: int
    latent_height: int
    latent_width: int
    tokens: int  # context tokens per frame: `frames` (consistent mode) or 1 (reference)
    context_dim: int
    max_batch: int  # windows per call, x2 with guidance

    def example(self, batch: int, dtype=torch.float32, device="cpu") -> dict[str, torch.Tensor]:
        """Inputs of the exported graph for `batch` windows (names as in the ONNX file)."""
        f = self.frames
        return {
            "sample": torch.randn(
                batch, f, self.in_channels, self.latent_height, self.latent_width
            ).to(device, dtype),
            "timestep": torch.tensor(1.0, dtype=dtype, device=device),
            "context": torch.randn(batch * f, self.tokens, self.context_dim).to(device, dtype),
            "time_ids": torch.tensor([[8.0, 127.0, 0.02]] * batch, dtype=dtype, device=device),
        }

    def shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Input name -> shape of the model's inputs for `batch` items."""
        return {name: tuple(t.shape) for name, t in self.example(batch).items()}

    def describe(self) -> dict:
        """The spec as plain data (part of the artifact's cache key)."""
        return asdict(self)


@dataclass(frozen=True)
class DepthSpec:
    """Static Depth Anything input size (518 on the short side, multiples of 14)."""

    height: int
    width: int
    max_batch: int = 8

    def shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Input name -> shape of the model's inputs for `batch` items."""
        return {"pixel_values": (batch, 3, self.height, self.width)}

    def describe(self) -> dict:
        """The spec as plain data (part of the artifact's cache key)."""
        return asdict(self)


class _UNetGraph(torch.nn.Module):
    """Positional-in, tensor-out view of PerFrameUNet for tracing."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, context, time_ids):
        return self.unet(sample, timestep, context, time_ids, return_dict=False)[0]


class _DepthGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).predicted_depth


def export_unet(unet, spec: UNetSpec, folder: Path) -> Path:
    """Export `unet` (in its own dtype, on its device) to folder/model.onnx; returns that
    path (the artifact's key records the dtype)."""
    # traced at batch 2 whatever max_batch: the file serves every batch (its key leaves
    # max_batch out), and a batch of 1 could let the tracer fold the batch axis away
    example = spec.example(2, next(unet.parameters()).dtype, unet.device)
    axes = {
        "sample": {0: "batch"},
        "context": {0: "batch_frames"},
        "time_ids": {0: "batch"},
        "pred": {0: "batch"},
    }
    return _export(_UNetGraph(unet), example, ["pred"], axes, folder)


def export_depth(model, spec: DepthSpec, folder: Path) -> Path:
    """Export a DepthAnythingForDepthEstimation to folder/model.onnx (dynamic batch)."""
    param = next(model.parameters())
    x = torch.rand(1, 3, spec.height, spec.width, dtype=param.dtype, device=param.device)
    axes = {"pixel_values": {0: "batch"}, "predicted_depth": {0: "batch"}}
    return _export(_DepthGraph(model), {"pixel_values": x}, ["predicted_depth"], axes, folder)


def _export(module, example: dict, outputs: list[str], axes: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ONNX_FILE
    with torch.no_grad(), warnings.catch_warnings():
        # tracing warns about every Python-side shape check of diffusers' blocks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(example.values()),
            str(path),
            input_names=list(example),
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, handles diffusers
        )
    log.info("exported %s", path)
    return path
