"""onnxruntime sessions behind the same call signature as the torch models they replace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from amodal_ros.accel.artifacts import ArtifactLoadError
from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.core.imports import require


def providers_for(device: torch.device) -> list:
    """CUDA provider on `device`'s GPU (with CPU fallback for unsupported ops) on a GPU, else
    CPU: names, or (name, options) as InferenceSession takes them."""
    if device.type == "cuda":  # without device_id onnxruntime runs on GPU 0 whatever was asked
        return [
            ("CUDAExecutionProvider", {"device_id": device.index or 0}),
            "CPUExecutionProvider",
        ]
    return ["CPUExecutionProvider"]


def _name(provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


def missing_provider(device: torch.device) -> str | None:
    """Why onnxruntime cannot run on `device`, or None when it can."""
    ort = require("onnxruntime", "the onnxruntime backend")
    wanted = _name(providers_for(device)[0])
    if wanted not in ort.get_available_providers():
        return (
            f"onnxruntime has no {wanted} here (available: {ort.get_available_providers()}); "
            "install onnxruntime-gpu for CUDA"
        )
    return None


class OrtSession:
    """One ONNX file in an InferenceSession; torch tensors in, torch tensors out.

    Inputs and outputs pass through host memory (numpy), also with the CUDA provider: simple
    and correct, at the cost of two copies per call (IO binding would avoid them).
    """

    def __init__(self, onnx_path: Path, device: torch.device, threads: int = 0):
        ort = require("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        providers = providers_for(device)
        wanted = _name(providers[0])
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as err:  # onnxruntime's own types (InvalidProtobuf, Fail, ...)
            raise ArtifactLoadError(
                f"onnxruntime {ort.__version__} cannot load {onnx_path} ({err})"
            ) from err
        if self.session.get_providers()[0] != wanted:  # e.g. CUDA libraries that failed to
            # load: onnxruntime falls back to the CPU, and says so only at a hidden log level
            raise BackendUnavailableError(
                f"onnxruntime could not start {wanted} (it runs {self.session.get_providers()}"
                "); check the CUDA and cuDNN libraries onnxruntime-gpu needs, or use another "
                "backend"
            )
        self.input_names = [i.name for i in self.session.get_inputs()]
        # an export of a float16 model takes float16 inputs
        self.input_types = [
            np.float16 if i.type == "tensor(float16)" else np.float32
            for i in self.session.get_inputs()
        ]
        self.device = device

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the session on torch inputs; a torch output on their device."""
        feed = {
            name: x.detach().cpu().numpy().astype(kind, copy=False)
            for name, x, kind in zip(self.input_names, inputs, self.input_types, strict=True)
        }
        out = self.session.run(None, feed)[0]
        return torch.from_numpy(np.ascontiguousarray(out)).to(self.device)
