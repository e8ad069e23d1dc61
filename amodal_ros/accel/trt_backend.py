"""TensorRT 10 engines: FP16 build from ONNX with one optimisation profile, each run on a
CUDA stream of its own, ordered after and before torch's current stream.

Engines are cached by `ArtifactCache` under a key of model hash + input shapes + precision +
the build code (`build_code`: flags, workspace) + TensorRT version + GPU name, so a changed model,
camera size, build setting, TensorRT upgrade or GPU swap rebuilds, and nothing else does.
Every call into TensorRT runs with the configured GPU current: TensorRT uses the thread's."""

from __future__ import annotations

import hashlib
import inspect
import logging
import mmap
import os
from pathlib import Path

import torch

from amodal_ros.accel.artifacts import BACKEND_REMEDY, ArtifactLoadError
from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.core.imports import require

log = logging.getLogger("amodal_ros.accel")

WORKSPACE_BYTES = 8 << 30
# the TensorRT this module builds with: 11 removed BuilderFlag.FP16 (weakly typed builds),
# https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html
TENSORRT_MAJOR = 10
# setTensorAddress: "The pointer must have at least 256-byte alignment" (NvInferRuntime.h)
ALIGNMENT = 256


class EngineBuildError(BackendUnavailableError):
    """TensorRT could not parse the ONNX file or build an engine from it."""


def unavailable_reason(device: torch.device) -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    if device.type != "cuda":
        return f"TensorRT needs a CUDA device, the configured device is {device}"
    if not torch.cuda.is_available():
        return "TensorRT needs CUDA, but torch sees no GPU (CPU build of torch or no driver)"
    try:
        trt = require("tensorrt", "the TensorRT backend")
    except ImportError as err:
        return str(err)
    major = trt.__version__.split(".")[0]
    if major != str(TENSORRT_MAJOR):  # refused here, so that auto takes the next backend
        return (
            f"TensorRT {trt.__version__} found; this build supports TensorRT {TENSORRT_MAJOR}: "
            f"pip install 'tensorrt>={TENSORRT_MAJOR},<{TENSORRT_MAJOR + 1}'"
        )
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
    with open(engine_path, "wb") as f:
        f.write(serialized)  # IHostMemory is a buffer: no second host copy of the engine


def read_engine(runtime, engine_path: Path):
    """`runtime.deserialize_cuda_engine` of the file through a read-only map (it takes any
    buffer): the engine's bytes stay in the page cache, with no heap copy of them. None when
    it cannot be deserialized (an empty file too)."""
    with open(engine_path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:  # mmap refuses an empty file
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as blob:
            return runtime.deserialize_cuda_engine(blob)


class TrtEngine:
    """A deserialized engine; torch tensors in (in the order of `input_names`, the ONNX
    file's inputs) and out. It runs on a CUDA stream of its own: TensorRT synchronises extra
    on the legacy default stream, torch's current stream unless the caller made one."""

    def __init__(self, engine_path: Path, device: torch.device, input_names: list[str]):
        trt = require("tensorrt", "the TensorRT backend")
        self.trt = trt
        self.device = device
        with torch.cuda.device(device):  # TensorRT runs on the thread's current GPU
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = read_engine(self.runtime, engine_path)
            if self.engine is None:
                raise ArtifactLoadError(f"TensorRT {trt.__version__} could not load {engine_path}")
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(device)
        if self.context is None:
            raise BackendUnavailableError(
                f"TensorRT could not create an execution context for {engine_path} (out of "
                f"GPU memory?): free GPU memory or {BACKEND_REMEDY}"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self.engine.get_tensor_mode
        # bound by name: TensorRT does not promise its IO tensors in the ONNX file's order
        engine_inputs = [n for n in names if mode(n) == trt.TensorIOMode.INPUT]
        if sorted(engine_inputs) != sorted(input_names):
            raise ValueError(
                f"TensorRT engine {engine_path} takes inputs {engine_inputs}, the model "
                f"{list(input_names)}"
            )
        self.inputs = list(input_names)
        self.outputs = [n for n in names if mode(n) == trt.TensorIOMode.OUTPUT]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the engine on `inputs` (in `input_names` order); a torch output, ready on
        torch's current stream."""
        with torch.cuda.device(self.device):  # the worker thread's current GPU is GPU 0
            return self._run(*inputs)

    def _run(self, *inputs: torch.Tensor) -> torch.Tensor:
        bound = []  # converted inputs, alive until the caller waits for the engine
        for name, x in zip(self.inputs, inputs, strict=True):
            x = x.to(self.device, self._dtype(name)).contiguous()
            if x.data_ptr() % ALIGNMENT:  # a view into a larger tensor (a step's timestep)
                x = x.clone()
            bound.append(x)
            if not self.context.set_input_shape(name, tuple(x.shape)):
                low, _, high = self.engine.get_tensor_profile_shape(name, 0)
                raise ValueError(
                    f"TensorRT engine input {name} takes shapes {tuple(low)} to {tuple(high)}, "
                    f"got {tuple(x.shape)}: rebuild it for this window length and object count "
                    "(amodal-ros build-engines)"
                )
            self._bind(name, x)
        outputs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs.append(torch.empty(shape, dtype=self._dtype(name), device=self.device))
            self._bind(name, outputs[-1])
        caller = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(caller)  # the inputs are written on the caller's stream
        ran = self.context.execute_async_v3(self.stream.cuda_stream)
        # the caller's stream goes on after the engine: it reads the output there, and the
        # memory of these tensors, all made on it and alive until now, is reused only there
        # (so no record_stream, whose reuse would depend on timing: torch's docs)
        caller.wait_stream(self.stream)
        if not ran:
            raise RuntimeError("TensorRT execution failed")
        return outputs[0].float()

    def _bind(self, name: str, x: torch.Tensor) -> None:
        # refused, the engine would read the address of an earlier call (freed memory since)
        if not self.context.set_tensor_address(name, x.data_ptr()):
            raise RuntimeError(
                f"TensorRT refused the address of {name} ({x.data_ptr():#x}, {ALIGNMENT}-byte "
                "alignment is required)"
            )

    def _dtype(self, name: str) -> torch.dtype:
        trt = self.trt
        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        return table[self.engine.get_tensor_dtype(name)]
