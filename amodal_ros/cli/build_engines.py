r"""`amodal-ros build-engines`: prebuild the node's ONNX exports / TensorRT engines, so a robot
never builds one at its first frame.

Usage (my_robot.yaml: config/amodal_node.yaml with `checkpoint` set, as the robot runs it):
    amodal-ros build-engines --params my_robot.yaml --camera-size 480x640 --device cuda \
        --unet-backend tensorrt --depth-backend tensorrt

Reads the node's parameter file (ros__parameters), loads its models exactly as the node's
configure step does, and builds (or finds cached) every artifact the chosen backends need:
the stage-1 UNet, the stage-2 UNet, and Depth Anything at the camera size. Artifacts go to
the `engine_cache` folder, keyed by model hash, input shapes, precision, TensorRT version and
GPU, so the node finds them. With `compile`, it runs the node's warm-up window once, so that
Inductor's kernels are in `engine_cache/inductor` before the node's first start.
"""

from __future__ import annotations

import sys
import time
from dataclasses import MISSING, dataclass
from pathlib import Path

from amodal_ros.core.config import InferenceConfig, StreamConfig, image_size, overrides, param
from amodal_ros.core.errors import ProcessingError


@dataclass
class Args:
    """The node's parameter file, and what to override in it (default: the file's values)."""

    params: Path = param(MISSING, "the node's YAML file")
    node: str = param(
        "/amodal_node",
        "the node's full name as launched (namespace/name): the file's sections for it apply",
    )
    camera_size: str = param(
        "", "HxW of the RGB camera (for the depth model), e.g. 480x640; default: the file's"
    )
    inference: dict = overrides(InferenceConfig, only=("device", "dtype", "unet_backend"))
    stream: dict = overrides(StreamConfig, only=("depth_backend",))


def run(args: Args) -> list[str]:
    """Build (or find) every artifact; prints each path and returns them."""
    from amodal_ros.core.config import node_configs, unknown_parameters
    from amodal_ros.pipeline.processor import WindowProcessor

    # before any model loads; the file's camera_size is checked by node_configs
    camera = image_size(args.camera_size, "--camera-size") if args.camera_size else None
    values = read_parameter_file(args.params, args.node)
    unknown = unknown_parameters(values)
    if unknown:  # the node ignores them too (and says so)
        print(
            f"warning: {args.params}: unknown parameters, ignored: {', '.join(unknown)}",
            file=sys.stderr,
        )
    values.update({**args.inference, **args.stream})
    inference, stream, _, node = node_configs(values)
    if camera is None and node.camera_size:
        camera = image_size(node.camera_size, "camera_size")
    started = time.perf_counter()
    print(f"loading the models of {args.params} (UNet backend {inference.unet_backend}) ...")
    processor = WindowProcessor.from_config(stream, inference)  # builds the UNet artifacts
    built, failed = [], []
    stages = [("stage-1 UNet", processor.segmenter.sampler)]
    if processor.completer is not None:
        stages.append(("stage-2 UNet", processor.completer.sampler))
    for label, sampler in stages:
        predict = sampler.predict
        where = getattr(predict, "path", None)
        print(f"{label}: {predict.name}" + (f" -> {where}" if where else _unbuilt(predict.name)))
        if where:
            built.append(str(where))
        if getattr(predict, "failed", ""):
            failed.append(f"{label}: {predict.failed}")
    if processor.depth_estimator is not None:
        if camera is None:
            raise ValueError(
                "the file uses a depth model: set its camera_size or pass --camera-size HxW"
            )
        h, w = camera
        estimator = processor.depth_estimator
        predict = estimator.prepare(h, w)
        where = getattr(predict, "path", None)
        size = estimator.input_shape(h, w)
        print(
            f"depth model at {size[0]}x{size[1]} (HxW): {estimator.backend}"
            + (f" -> {where}" if where else _unbuilt(estimator.backend))
        )
        if where:
            built.append(str(where))
        if getattr(predict, "failed", ""):
            failed.append(f"depth model: {predict.failed}")
    cache = processor.segmenter.sampler.artifacts.folder
    if failed:  # the node would run eager, and try the build again at every start
        raise ProcessingError(
            "; ".join(failed) + ": nothing was built for it, and the node would try again at "
            "every start, then run eager (fix the cause, or set the backend to eager)"
        )
    if processor.pipelines.compiles:  # as the node's warm-up: every graph, kernels cached
        from amodal_ros.accel.backends import INDUCTOR_CACHE

        sized = processor.pipelines.config  # the model's working size where none is set
        h, w = camera or (sized.height, sized.width)
        print(f"compiling: one window at {h}x{w} (HxW), as the node's warm-up ...", flush=True)
        timed = processor.warm_up(h, w)
        if timed is None:
            raise ProcessingError("the compiling window failed (the log above says why)")
        built.append(str(cache / INDUCTOR_CACHE))
        print(f"compiled in {timed[0]:.1f} s -> {cache / INDUCTOR_CACHE}")
    print(f"done in {time.perf_counter() - started:.1f} s; cache: {cache}")
    return built


def _unbuilt(backend: str) -> str:
    return " (compiled below)" if backend == "compile" else " (nothing to build)"


def read_parameter_file(path: Path, node: str = "/amodal_node") -> dict:
    """{parameter: value} the node of full name `node` takes from a ROS 2 parameter file
    (core/param_file.py: every matching section, merged as rcl merges them)."""
    from amodal_ros.cli.io import read_yaml_mapping
    from amodal_ros.core.param_file import node_parameters, sections

    data = read_yaml_mapping(path, "parameter file")
    values = node_parameters(data, node)
    if values is None:
        names = [name for name, _ in sections(data)]
        raise ValueError(
            f"{path} has no 'ros__parameters' section for /{node.strip('/')} (its sections: "
            f"{', '.join(names) or 'none'}); name the node as launched with --node"
        )
    return values
