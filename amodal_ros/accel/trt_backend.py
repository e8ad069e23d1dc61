"""TensorRT engines: FP16 build from ONNX with one optimisation profile, run on torch's stream.

Engines are cached by `ArtifactCache` under a key of model hash + input shapes + precision +
the build code (`build_code`: flags, workspace) + TensorRT version + GPU name, so a changed model,
camera size, build setting, TensorRT upgrade or GPU swap rebuilds, and nothing else does.
Every call into TensorRT runs with the configured GPU current: TensorRT uses the thread's."""

from __future__ import annotations

import hashlib
import inspect
import logging
from pathlib import Path

import torch

from amodal_ros.accel.artifacts import BACKEND_REMEDY, ArtifactLoadError
from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.core.imports import require

log = logging.getLogger("amodal_ros.accel")

WORKSPACE_BYTES = 8 << 30


class EngineBuildError(BackendUnavailableError):
    """TensorRT could not parse the ONNX file or build an engine from it."""


def unavailable_reason(device: torch.device) -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    if device.type != "cuda":
        return f"TensorRT needs a CUDA device, the configured device is {device}"
    if not torch.cuda.is_available():
        return "TensorRT needs CUDA, but torch sees no GPU (CPU build of torch or no driver)"
    try:
        require("tensorrt", "the TensorRT backend")
    except ImportError as err:
        return str(err)
    return None


def environment(device: torch.device) -> dict:
    """The parts of an engine key that come from the machine."""
    trt = require("tensorrt", "the TensorRT backend")
    return {"tensorrt": trt.__version__, "gpu": torch.cuda.get_device_name(device)}


def profile_for(spec) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """One optimisation profile {input: (min, opt, max)}: batch 1 .. spec.max_batch, optimised
    for the largest, for every input with a batch axis (also when max_batch is 1: TensorRT
    builds no network whose dynamic inputs have no profile)."""
    low, high, two = spec.shapes(1), spec.shapes(spec.max_batch), spec.shapes(2)
    return {name: (low[name], high[name], high[name]) for name in low if low[name] != two[name]}


def build_code() -> str:
    """Hash of what shapes an engine besides its ONNX file and profile: the build function
    and its workspace (an edit elsewhere in this module rebuilds no engine)."""
    text = inspect.getsource(_build_engine) + f"workspace={WORKSPACE_BYTES}"
    return hashlib.sha256(text.encode()).hexdigest()


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    profile: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
    device: torch.device,
    fp16: bool = True,
) -> None:
    """Parse `onnx_path`, build a serialized engine for `device`'s GPU with one profile
    {input: (min, opt, max)}."""
    with torch.cuda.device(device):  # TensorRT builds for the thread's current GPU
        _build_engine(onnx_path, engine_path, profile, fp16)


def _build_engine(onnx_path: Path, engine_path: Path, profile: dict, fp16: bool) -> None:
    trt = require("tensorrt", "the TensorRT backend")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch (the only mode of TensorRT 10)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # also finds external weight files
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}; {BACKEND_REMEDY}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = builder.create_optimization_profile()
    for name, (low, opt, high) in profile.items():
        shapes.set_shape(name, low, opt, high)
    config.add_optimization_profile(shapes)
    log.warning("building TensorRT engine from %s (minutes for a full-size UNet)", onnx_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT failed to build an engine from {onnx_path} (its log above says why); "
            + BACKEND_REMEDY
        )
    engine_path.write_bytes(bytes(serialized))


class TrtEngine:
    """A deserialized engine run on torch's current CUDA stream; torch tensors in and out."""

    def __init__(self, engine_path: Path, device: torch.device):
        trt = require("tensorrt", "the TensorRT backend")
        self.trt = trt
        self.device = device
        with torch.cuda.device(device):  # TensorRT runs on the thread's current GPU
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
            if self.engine is None:
                raise ArtifactLoadError(f"TensorRT {trt.__version__} could not load {engine_path}")
            self.context = self.engine.create_execution_context()
        if self.context is None:
            raise BackendUnavailableError(
                f"TensorRT could not create an execution context for {engine_path} (out of "
                f"GPU memory?): free GPU memory or {BACKEND_REMEDY}"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self.engine.get_tensor_mode
        self.inputs = [n for n in names if mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if mode(n) == trt.TensorIOMode.OUTPUT]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the engine on torch's current CUDA stream; a torch output."""
        with torch.cuda.device(self.device):  # the worker thread's current GPU is GPU 0
            return self._run(*inputs)

    def _run(self, *inputs: torch.Tensor) -> torch.Tensor:
        keep = []  # inputs converted here must live until the engine has run
        for name, x in zip(self.inputs, inputs):
            x = x.to(self.device, self._dtype(name)).contiguous()
            keep.append(x)
            if not self.context.set_input_shape(name, tuple(x.shape)):
                low, _, high = self.engine.get_tensor_profile_shape(name, 0)
                raise ValueError(
                    f"TensorRT engine input {name} takes shapes {tuple(low)} to {tuple(high)}, "
                    f"got {tuple(x.shape)}: rebuild it for this window length and object count "
                    "(amodal-ros build-engines)"
                )
            self.context.set_tensor_address(name, x.data_ptr())
        out = None
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            buffer = torch.empty(shape, dtype=self._dtype(name), device=self.device)
            self.context.set_tensor_address(name, buffer.data_ptr())
            out = buffer if out is None else out
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return out.float()

    def _dtype(self, name: str) -> torch.dtype:
        trt = self.trt
        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        return table[self.engine.get_tensor_dtype(name)]
