"""From configs to runnable pipelines: the one builder the node, replay, infer, eval, bench and
build-engines call, so what is measured is what ships.

    pipes = build(StreamConfig(checkpoint=folder_or_model_name), InferenceConfig())
    pipes.segmenter, pipes.completer, pipes.depth, pipes.config   # config: the sized one
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amodal_ros.core.config import AUTO, InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.pipeline.stage1 import AmodalSegmenter
from amodal_ros.pipeline.stage2 import ContentCompleter

log = logging.getLogger("amodal_ros.factory")

MODE_REASONS = {
    "reference": "the default of published checkpoints: the authors' inference path, which "
    "produced the paper's numbers",
    "consistent": "the default of models trained here: conditioned as they were trained",
}


@dataclass
class Pipelines:
    """Everything that turns windows into results, built from one pair of configs.

    Attributes:
        segmenter: stage 1.
        completer: stage 2, or None when no completion checkpoint is configured.
        depth: the Depth Anything estimator when depth comes from the model, else None.
        depth_source: 'camera', 'model' or 'none'.
        checkpoint: the stage-1 checkpoint as configured (a folder or a model name).
        mode_reason: why `config.conditioning_mode` is what it is.
    """

    segmenter: AmodalSegmenter
    completer: ContentCompleter | None = None
    depth: object | None = None
    depth_source: str = "none"
    checkpoint: str = "<in memory>"
    mode_reason: str = "as configured"

    @property
    def config(self) -> InferenceConfig:
        """The inference config with the model's working size and conditioning mode filled."""
        return self.segmenter.config

    @property
    def is_embedded(self) -> bool:
        """Whether stage 1 is the shipped synthetic-trained model."""
        from amodal_ros.models import registry

        return registry.is_embedded(self.checkpoint)

    @property
    def note(self) -> str:
        """What a user should know about the model that runs ('' for nothing)."""
        from amodal_ros.models import registry

        return registry.note(self.checkpoint)

    @property
    def compiles(self) -> bool:
        """Whether a model runs torch.compile, whose first window compiles (minutes)."""
        samplers = [self.segmenter.sampler] + ([self.completer.sampler] if self.completer else [])
        depth = getattr(self.depth, "backend", None)
        names = [getattr(s.predict, "name", "") for s in samplers]
        return depth == "compile" or "compile" in names

    def describe(self) -> str:
        """One line for logs: the conditioning mode that runs, and why."""
        cfg = self.config
        return (
            f"{self.checkpoint} at {cfg.height}x{cfg.width} (HxW), conditioning mode "
            f"{cfg.conditioning_mode} ({self.mode_reason})"
        )

    def with_config(self, inference: InferenceConfig) -> Pipelines:
        """The same models (not reloaded) under another inference config, e.g. a preset."""
        stage1 = AmodalSegmenter(self.segmenter.components, inference)
        stage2 = None
        if self.completer is not None:
            stage2 = ContentCompleter(self.completer.components, inference)
        reason = mode_reason(inference, stage1.config)
        return Pipelines(stage1, stage2, self.depth, self.depth_source, self.checkpoint, reason)


def build(stream: StreamConfig, inference: InferenceConfig) -> Pipelines:
    """Load (or build) the models `stream` names onto `inference.device` / `dtype`.

    Raises:
        CheckpointError: a checkpoint that cannot be loaded (names the file and the fix).
        InputError: a configuration that cannot run (no checkpoint, depth source mismatch).
    """
    if not stream.checkpoint:
        raise InputError(
            "no stage-1 checkpoint: set the `checkpoint` parameter to a folder, or to "
            "'embedded' for the small synthetic-trained model"
        )
    check_device(inference.device)
    segmenter = AmodalSegmenter.from_pretrained(stream.checkpoint, inference)
    completer = None
    if stream.completion_checkpoint:
        completer = ContentCompleter.from_pretrained(stream.completion_checkpoint, inference)
    source = resolve_depth_source(stream, segmenter.needs_depth)
    depth = None
    if source == "model":
        depth = depth_estimator(stream.depth_model, inference, stream.depth_backend)
    reason = mode_reason(inference, segmenter.config)
    return Pipelines(segmenter, completer, depth, source, stream.checkpoint, reason)


def check_device(device: str) -> None:
    """Refuse a device this machine lacks before any model loads (torch would raise an
    AssertionError or a RuntimeError deep inside `.to()`).

    Raises:
        InputError: an unknown device string, or a CUDA device torch cannot see.
    """
    import torch

    try:
        chosen = torch.device(device)
    except RuntimeError as err:
        raise InputError(
            f"device {device!r} is not a torch device ({err}); use cpu or cuda"
        ) from None
    if chosen.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise InputError(
            f"device {device!r}: torch {torch.__version__} sees no CUDA GPU (a CPU-only build, "
            "or no driver); use device cpu, or install a CUDA build of torch"
        )
    count = torch.cuda.device_count()
    if chosen.index is not None and chosen.index >= count:
        raise InputError(f"device {device!r}: this machine has {count} CUDA device(s)")


def depth_estimator(name: str, inference: InferenceConfig, backend: str = "auto"):
    """Depth Anything V2 (a folder or an untrained size) on `inference.device` and `backend`."""
    import torch

    from amodal_ros.depth.depth_anything import DepthAnythingDepth
    from amodal_ros.models import registry

    return DepthAnythingDepth(
        registry.depth_model(name),
        device=inference.device,
        dtype=getattr(torch, inference.dtype),
        backend=backend,
        engine_cache=inference.engine_cache,
    )


def mode_reason(requested: InferenceConfig, resolved: InferenceConfig) -> str:
    """Why the conditioning mode that runs was chosen."""
    if requested.conditioning_mode != AUTO:
        return "as configured"
    return MODE_REASONS[resolved.conditioning_mode]


def resolve_depth_source(config: StreamConfig, needs_depth: bool) -> str:
    """'camera', 'model' or 'none' from the configured source and the checkpoint's inputs."""
    source = config.depth_source
    if source == "auto":
        source = "model" if config.depth_model else ("camera" if needs_depth else "none")
    if source == "model" and not config.depth_model:
        raise InputError(
            "depth_source is 'model' but depth_model is empty: set a Depth "
            "Anything V2 folder, or use depth_source 'camera'"
        )
    if source == "none" and needs_depth:
        raise InputError(
            f"{config.checkpoint} is a mask+depth checkpoint: set depth_source to "
            "'camera' (with a depth topic) or 'model' (with depth_model)"
        )
    if source != "none" and not needs_depth:
        log.warning(
            "%s is a mask-only checkpoint: the model ignores depth (%s); it serves the "
            "occluders' depth order%s",
            config.checkpoint,
            source,
            ", free-space carving and 3D extents" if source == "camera" else "",
        )
    if source == "none" and config.depth_source == "auto":
        log.info(
            "%s is a mask-only checkpoint and depth_source 'auto' takes no depth: objects get "
            "no 3D extent and no occluder depth order; set depth_source 'camera' (with a "
            "depth topic) for them",
            config.checkpoint,
        )
    return source
