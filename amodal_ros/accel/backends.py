"""Backends of the UNet and the depth model behind one call signature.

    predict = unet_predictor(unet, spec, "auto", device, ArtifactCache(cache_folder))
    pred = predict(sample, timestep, context, time_ids)         # [B, F, 4, h, w]

`eager` and `compile` run the torch module; `onnxruntime` and `tensorrt` run an ONNX export of
it (cached on disk by content key, see artifacts.py). A requested backend that cannot run
raises BackendUnavailableError with the reason, and one that fails to export, build or load
raises that error; `auto` takes the first available backend of AUTO_ORDER (fastest first, as
measured by `amodal-ros bench`) and logs its choice, and runs eager, with a warning, when its
choice fails to export, build or load.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from amodal_ros.accel.artifacts import ArtifactCache, artifact_key, code_hash, model_hash
from amodal_ros.accel.buckets import Bucketed, batch_sizes
from amodal_ros.accel.onnx_export import ONNX_FILE, OPSET, DepthSpec, UNetSpec
from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.core.imports import is_available

log = logging.getLogger("amodal_ros.accel")

# Fastest first, per model and device. On a GPU TensorRT's FP16 engine is expected first (not
# yet measured: no GPU here). On the CPU (amodal-ros bench): for the embedded UNet onnxruntime
# was 1.16x slower per window than eager; for Depth Anything ViT-S it was 1.10-1.12x faster
# per frame. torch.compile (1.33x faster UNet denoising on the CPU) is never picked automatically:
# a machine's first start compiles for a minute or more (later starts load the cached kernels),
# and on a GPU it has not been measured against TensorRT.
AUTO_ORDER = {
    "UNet": {"cuda": ("tensorrt", "eager"), "cpu": ("eager",)},
    "depth": {"cuda": ("tensorrt", "eager"), "cpu": ("onnxruntime", "eager")},
}

Predictor = Callable[..., torch.Tensor]
INDUCTOR_CACHE = "inductor"  # torch.compile's caches, a subfolder of the engine cache
_graphs_asked = 0  # graphs of every compiled module of this process (see `compiled`)


def unavailable_reason(
    backend: str, device: torch.device, dtype: torch.dtype = torch.float32
) -> str | None:
    """Why `backend` cannot run a model in `dtype` on `device`, or None when it can."""
    if backend == "eager":
        return None
    if backend == "compile":
        if device.type == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
            return "torch.compile on the CPU needs a C++ compiler (apt install g++)"
        return None
    if backend == "onnxruntime":
        if dtype == torch.bfloat16:  # ONNX's Conv takes no bfloat16 at our opset
            return "onnxruntime does not run bfloat16 models: use dtype float32 (float16 on a GPU)"
        for module in ("onnx", "onnxruntime"):
            if not is_available(module):
                return f"'{module}' is not installed: pip install onnx onnxruntime"
        from amodal_ros.accel.ort_backend import missing_provider

        return missing_provider(device)
    if backend == "tensorrt":
        if dtype == torch.bfloat16:  # exported through ONNX, which takes no bfloat16 Conv
            return "TensorRT is built here from ONNX, which takes no bfloat16: use float16"
        from amodal_ros.accel.trt_backend import unavailable_reason as trt_reason

        reason = trt_reason(device)
        if reason is None and not is_available("onnx"):  # torch's exporter imports it
            return "'onnx' is not installed (engines are built from ONNX): pip install onnx"
        return reason
    return f"unknown backend {backend!r}"


def resolve(
    what: str, requested: str, device: torch.device, order=None, dtype=torch.float32
) -> str:
    """The backend to use: `requested` if it can run a model in `dtype` (else raise), or
    auto's first choice that can."""
    if requested == "auto":
        candidates = (order or AUTO_ORDER[what])[device.type if device.type == "cuda" else "cpu"]
        for backend in candidates:
            reason = unavailable_reason(backend, device, dtype)
            if reason is None:
                log.info("%s backend: auto chose %s on %s", what, backend, device)
                return backend
            log.info("%s backend: auto skipped %s (%s)", what, backend, reason)
        return "eager"
    reason = unavailable_reason(requested, device, dtype)
    if reason is not None:
        raise BackendUnavailableError(
            f"{what} backend {requested!r} is unavailable: {reason} (or choose 'auto'/'eager')"
        )
    return requested


class EagerUNet:
    """The torch module itself (or its torch.compile wrapper)."""

    failed = ""  # why auto's choice did not build, when this runs in its place

    def __init__(self, unet, name: str = "eager"):
        self.unet = unet
        self.name = name

    def __call__(self, sample, timestep, context, time_ids) -> torch.Tensor:
        """The UNet's prediction [B, F, 4, h, w]."""
        return self.unet(sample, timestep, context, time_ids, return_dict=False)[0]


class EagerDepth:
    """The depth model itself."""

    name = "eager"
    failed = ""  # why auto's choice did not build, when this runs in its place

    def __init__(self, model):
        self.model = model

    def __call__(self, pixel_values) -> torch.Tensor:
        """predicted_depth [b, H, W] of pixel_values [b, 3, H, W]."""
        return self.model(pixel_values=pixel_values).predicted_depth


class ExportedModel:
    """An onnxruntime session or TensorRT engine; output cast back to the caller's dtype."""

    def __init__(self, runner, name: str, path: Path):
        self.runner = runner
        self.name = name
        self.path = path

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the exported model on `inputs`; the output in the first input's dtype."""
        return self.runner(*inputs).to(inputs[0].dtype)


def unet_predictor(
    unet,
    spec: UNetSpec,
    backend: str,
    device: torch.device,
    cache: ArtifactCache,
    batch_step: int = 1,
) -> Predictor:
    """A callable (sample, timestep, context, time_ids) -> [B, F, 4, h, w] on `backend`;
    B comes in multiples of `batch_step` (2 with guidance: both branches of each window)."""
    name = resolve("UNet", backend, device, dtype=next(unet.parameters()).dtype)
    if name == "eager":
        return EagerUNet(unet)
    if name == "compile":  # compiles every batch size at its first call
        sizes = batch_sizes(spec.max_batch, batch_step)
        return Bucketed(
            EagerUNet(compiled(unet, device, cache, len(sizes)), "compile"), sizes, "UNet"
        )
    from amodal_ros.accel.onnx_export import export_unet

    return _exported_or_eager(
        "UNet",
        backend,
        name,
        lambda: _exported(
            "unet", unet, spec, name, device, cache, lambda f: export_unet(unet, spec, f)
        ),
        lambda: EagerUNet(unet),
    )


def quantized(unet: torch.nn.Module, mode: str, device: torch.device) -> torch.nn.Module:
    """A copy of `unet` with its linear layers in float8 (torchao; `mode` 'fp8'), or `unet`
    itself for ''. On a GPU with fp8 tensor cores (compute capability 8.9+: Ada, Hopper)
    activations are quantized too and the matmuls run in fp8; elsewhere only the weights are
    stored in fp8 (dequantized per call), which runs anywhere and shows the quality cost."""
    if not mode:
        return unet
    import copy

    from amodal_ros.core.imports import require

    require("torchao", "quantize: fp8")
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        quantize_,
    )

    fp8_cores = device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)
    config = Float8DynamicActivationFloat8WeightConfig() if fp8_cores else Float8WeightOnlyConfig()
    copied = copy.deepcopy(unet)  # the components stay shared, unquantized, by other pipelines
    quantize_(copied, config)
    log.info("UNet in fp8 (%s)", type(config).__name__)
    return copied


def compiled(module: torch.nn.Module, device: torch.device, cache: ArtifactCache, graphs: int):
    """torch.compile for the fixed shapes of a window (dynamic=False), its kernels kept in
    CACHE/inductor (Inductor's FX-graph and kernel caches) so the next process loads them
    instead of compiling for minutes; on a GPU the call is captured as a CUDA graph (mode
    reduce-overhead: one launch instead of hundreds).

    The folder goes through TORCHINDUCTOR_CACHE_DIR, read when Inductor compiles (at the first
    call). Torch sets that variable to its default (/tmp, emptied at reboot) the first time
    anything asks for it, so it is replaced when unset or at that default; a folder the user
    chose is kept. The first compiled model's folder holds for the whole process.

    `graphs`: the input shapes this module will be called with. Torch's recompile limit
    counts the graphs of one function across all its compiled instances (both stages' UNets
    share their forward) and runs eager past it, so it is raised to every graph asked for."""
    import os

    global _graphs_asked
    _graphs_asked += graphs
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _graphs_asked)

    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        folder = cache.trusted_folder().resolve() / INDUCTOR_CACHE
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    mode = "reduce-overhead" if device.type == "cuda" else None
    return torch.compile(module, dynamic=False, mode=mode)


def depth_predictor(
    model, spec: DepthSpec, backend: str, device: torch.device, cache: ArtifactCache
) -> Predictor:
    """A callable pixel_values [b, 3, H, W] -> predicted_depth [b, H, W] on `backend`."""
    name = resolve("depth", backend, device, dtype=next(model.parameters()).dtype)
    if name == "compile":  # every call padded to the full batch: one graph per input size
        # (on a GPU 8 frames took 18 ms, 1 frame 13 ms: GPU.md; the warm-up window is not at
        # the camera's size, so more sizes would compile inside the first live window)
        fast = compiled(model, device, cache, 1)

        def predict(pixel_values):
            return fast(pixel_values=pixel_values).predicted_depth

        return Bucketed(predict, (spec.max_batch,), "depth model")
    if name == "eager":
        return EagerDepth(model)
    from amodal_ros.accel.onnx_export import export_depth

    return _exported_or_eager(
        "depth",
        backend,
        name,
        lambda: _exported(
            "depth", model, spec, name, device, cache, lambda f: export_depth(model, spec, f)
        ),
        lambda: EagerDepth(model),
    )


def _exported_or_eager(what: str, requested: str, name: str, exported, eager) -> Predictor:
    """`exported()`, the `name` backend; for `auto`, `eager()` when that fails: auto promises
    a backend that runs, and an export, engine build or load can fail in ways no availability
    check foresees (out of memory, an unwritable cache, a TensorRT error). A backend asked for
    by name raises."""
    try:
        return exported()
    except Exception as err:  # any failure of the optional backend: auto has eager to run
        if requested != "auto":
            raise
        log.warning(
            "%s backend: auto chose %s, which failed (%s: %s); running eager instead",
            what,
            name,
            type(err).__name__,
            err,
        )
        fallback = eager()
        fallback.failed = f"auto chose {name}, which failed ({type(err).__name__}: {err})"
        return fallback


def _exported(kind, model, spec, backend, device, cache: ArtifactCache, export) -> ExportedModel:
    dtype = str(next(model.parameters()).dtype)
    # the export's batch axis is dynamic: one ONNX file serves every max_batch (a changed
    # max_batch_objects re-exported gigabytes for nothing); only the engine's profile needs it
    shapes = {k: v for k, v in spec.describe().items() if k != "max_batch"}
    onnx_key = artifact_key(
        model=model_hash(model),
        code=code_hash(model),
        spec=shapes,
        opset=OPSET,
        torch=torch.__version__,
        dtype=dtype,
    )
    onnx = (f"{kind}-onnx", onnx_key, "", export, {"spec": shapes, "dtype": dtype})
    onnx_path = cache.path(*onnx[:3]) / ONNX_FILE
    if backend == "onnxruntime":
        from amodal_ros.accel.ort_backend import OrtSession

        session = cache.load(*onnx, load=lambda folder: OrtSession(folder / ONNX_FILE, device))
        return ExportedModel(session, backend, onnx_path)
    from amodal_ros.accel import trt_backend

    profile = trt_backend.profile_for(spec)
    env = trt_backend.environment(device)
    code = trt_backend.build_code()  # flags, workspace: a changed build rebuilds
    key = artifact_key(onnx=onnx_key, precision="fp16", profile=profile, code=code, **env)

    def build_engine(path: Path) -> None:
        # the ONNX file is needed only to build (a cached engine runs without it), and
        # TensorRT's parser cannot tell a damaged file: one changed since its export is redone
        cache.get_intact(*onnx)
        trt_backend.build_engine(onnx_path, path, profile, device)

    runner = cache.load(
        f"{kind}-trt",
        key,
        ".engine",
        build_engine,
        {"onnx": str(onnx_path), "profile": profile, "precision": "fp16", **env},
        load=lambda path: trt_backend.TrtEngine(path, device, list(spec.shapes(1))),
    )
    return ExportedModel(runner, backend, cache.path(f"{kind}-trt", key, ".engine"))
