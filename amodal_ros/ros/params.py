"""ROS parameters from the config dataclasses: declared with descriptions and ranges, read back
into validated configs (amodal_ros.core.config.node_configs). Pure functions over a node."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields

from amodal_ros.core.config import INT_RANGE, NODE_CONFIGS, accepts_bool

READ_AT_START = frozenset({"autostart"})  # read once, when the node starts: set only then
# rclpy's reason for a value outside a declared range (integer: "range. Min", float: "range Min")
_OUT_OF_RANGE = re.compile(
    r"Parameter (\S+) out of range\.? Min: (\S+), Max: (\S+), value: ([^:\s]+)"
)


def parameter_specs() -> list[tuple[str, object, dict]]:
    """(name, default, metadata) of every node parameter, in declaration order."""
    specs, seen = [], set()
    for cls in NODE_CONFIGS:
        for f in fields(cls):
            if f.name in seen:
                raise RuntimeError(f"parameter {f.name} is declared by two configs")
            seen.add(f.name)
            default = f.default if f.default is not MISSING else f.default_factory()
            specs.append((f.name, default, dict(f.metadata)))
    return specs


def parameter_names() -> set[str]:
    """Names of every node parameter."""
    return {name for name, _, _ in parameter_specs()}


def parameter_error(err: Exception) -> str:
    """A parameter rclpy refused, in one plain line: a value outside its declared range reads
    "stride 0 is outside [1, 1000]" (rclpy: "Invalid parameter value (0) for parameter.
    Reason: Parameter stride out of range. Min: 1, Max: 1000, value: 0: stride"); any other
    refusal as rclpy words it."""
    found = _OUT_OF_RANGE.search(str(err))
    if found is None:
        return str(err)
    name, low, high, value = found.groups()
    return f"{name} {value} is outside [{low}, {high}]"


def declare_all(node) -> None:
    """Declare every parameter on an rclpy node with its description and range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    for name, default, meta in parameter_specs():
        description = meta.get("help", "")
        if meta.get("choices"):
            description += f" (one of: {', '.join(meta['choices'])})"
        # a parameter file's unquoted on/off arrives as a bool (checked in node_configs)
        descriptor = ParameterDescriptor(
            description=description,
            dynamic_typing=accepts_bool(meta),
            read_only=name in READ_AT_START,
        )
        low, high = meta.get("range", (None, None))
        if isinstance(default, bool) or (low is None and high is None):
            pass
        elif isinstance(default, int):
            descriptor.integer_range = [
                IntegerRange(
                    from_value=int(low if low is not None else INT_RANGE[0]),
                    to_value=int(high if high is not None else INT_RANGE[1]),
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


def check_topic_names(topics, node_name: str, namespace: str) -> None:
    """Refuse a topic name ROS would refuse, naming the parameter, at set time and before the
    models load (rclpy would refuse it when the publisher is made, as a traceback); names are
    expanded (`~`, relative) as rclpy expands them. `topics` is a TopicConfig."""
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.expand_topic_name import expand_topic_name
    from rclpy.validate_full_topic_name import validate_full_topic_name

    used: dict[str, str] = {}  # full name -> the parameter that named it
    for f in fields(topics):
        name = getattr(topics, f.name)
        if not f.name.endswith("_topic") or (f.name == "camera_info_topic" and not name):
            continue  # camera_info_topic "" = no camera info
        try:
            full = expand_topic_name(name, node_name, namespace)
            validate_full_topic_name(full)
        except (ValueError, InvalidTopicNameException) as err:
            why = str(err).splitlines()[0].split(", at ")[0]  # rcl's message, not its C file
            raise ValueError(f"{f.name} {name!r} is not a valid ROS topic name: {why}") from None
        if full in used:  # an output on an input feeds the node its own results
            raise ValueError(
                f"{f.name} and {used[full]} are both {full}: each topic needs its own name"
            )
        used[full] = f.name
