"""ROS parameters from the config dataclasses: declared with descriptions and ranges, read back
into validated configs. Pure functions over a node; the only rclpy users are the callers."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from amodal_ros.core.config import (
    InferenceConfig,
    StreamConfig,
    TopicConfig,
    check_fields,
    param,
)


@dataclass
class NodeConfig:
    """Node behaviour that is neither model nor stream logic."""

    autostart: bool = param(
        True, "configure and activate on start (false: wait for a lifecycle manager)"
    )
    warmup: bool = param(
        True, "run one synthetic window in configure so the first real window is not slow"
    )
    diagnostics_period: float = param(1.0, "seconds between diagnostics messages", 0.1, 3600.0)
    torch_threads: int = param(
        0,
        "CPU threads for torch; 0 = auto: cores - 1 on a CPU device (the callbacks and DDS "
        "need a core, or torch's thread pool spins against them), torch's default on a GPU",
        0,
        1024,
    )
    publish_when_idle: bool = param(False, "run inference even when no output has a subscriber")

    def __post_init__(self) -> None:
        check_fields(self)


CONFIG_CLASSES = (InferenceConfig, StreamConfig, TopicConfig, NodeConfig)


def parameter_specs() -> list[tuple[str, object, dict]]:
    """(name, default, metadata) of every node parameter, in declaration order."""
    specs, seen = [], set()
    for cls in CONFIG_CLASSES:
        for f in fields(cls):
            if f.name in seen:
                raise RuntimeError(f"parameter {f.name} is declared by two configs")
            seen.add(f.name)
            default = f.default if f.default is not MISSING else f.default_factory()
            specs.append((f.name, default, dict(f.metadata)))
    return specs


def parameter_names() -> set[str]:
    return {name for name, _, _ in parameter_specs()}


def declare_all(node) -> None:
    """Declare every parameter on an rclpy node with its description and range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    for name, default, meta in parameter_specs():
        description = meta.get("help", "")
        if meta.get("choices"):
            description += f" (one of: {', '.join(meta['choices'])})"
        descriptor = ParameterDescriptor(description=description)
        low, high = meta.get("range", (None, None))
        if isinstance(default, bool) or (low is None and high is None):
            pass
        elif isinstance(default, int):
            descriptor.integer_range = [
                IntegerRange(
                    from_value=int(low if low is not None else -(2**31)),
                    to_value=int(high if high is not None else 2**31 - 1),
                    step=0,
                )
            ]
        elif isinstance(default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(low if low is not None else -1e308),
                    to_value=float(high if high is not None else 1e308),
                    step=0.0,
                )
            ]
        node.declare_parameter(name, default, descriptor)


def read_configs(values: dict[str, object]):
    """(InferenceConfig, StreamConfig, TopicConfig, NodeConfig) from {parameter name: value};
    raises ValueError naming the parameter for an invalid value."""
    configs = []
    for cls in CONFIG_CLASSES:
        kwargs = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        configs.append(cls(**kwargs))
    return tuple(configs)
