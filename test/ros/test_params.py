"""The node's parameters as rclpy declares them (ranges, choices) and the topic names it
takes, on a real rclpy node (no executor, no DDS traffic)."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (ROS 2 wheels)")


@pytest.fixture
def declared():
    """declare_all on a fresh node, with parameter overrides given as {name: value}."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from amodal_ros.ros.params import declare_all

    made = []

    def declare(**overrides):
        context = rclpy.Context()
        rclpy.init(context=context)
        given = [Parameter(name, value=value) for name, value in overrides.items()]
        node = Node("params_probe", context=context, parameter_overrides=given)
        made.append((node, context))
        declare_all(node)
        return node

    yield declare
    for node, context in made:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_parameter_bounded_on_one_side_is_declared_with_that_bound(declared):
    """num_frames >= 1 and no more: rclpy holds the lower bound (`ros2 param describe` shows
    it, a parameter file's 0 is refused when declared), and the open side is int32's."""
    from rclpy.exceptions import ParameterException

    node = declared(seed=123456, min_object_pixels=5000)  # beyond any small cap
    (frames,) = node.describe_parameter("num_frames").integer_range
    assert (frames.from_value, frames.to_value) == (1, 2**31 - 1)
    assert node.get_parameter("seed").value == 123456
    (tolerance,) = node.describe_parameter("sync_tolerance").floating_point_range
    assert tolerance.from_value == 0.0 and tolerance.to_value > 0
    assert not node.describe_parameter("checkpoint").integer_range  # text: no range
    with pytest.raises(ParameterException, match="num_frames"):
        declared(num_frames=0)


def test_a_parameters_choices_are_in_its_description(declared):
    node = declared()
    assert node.describe_parameter("publish_frames").description.endswith("(one of: latest, new)")


@pytest.mark.parametrize(
    "topic, name, said",
    [
        ("overlay_topic", "", "overlay_topic '' is not a valid ROS topic name"),
        ("output_topic", "a b", "output_topic 'a b' is not a valid ROS topic name"),
    ],
)
def test_an_empty_or_invalid_topic_name_is_refused_naming_the_parameter(topic, name, said):
    """Only camera_info_topic may be '' (no camera info); rcl's reason comes without the C
    file it was raised in."""
    from amodal_ros.core.config import TopicConfig
    from amodal_ros.ros.params import check_topic_names

    check_topic_names(TopicConfig(camera_info_topic=""), "amodal_node", "/")
    with pytest.raises(ValueError, match=said) as refused:
        check_topic_names(TopicConfig(**{topic: name}), "amodal_node", "/")
    assert ", at " not in str(refused.value) and ".c:" not in str(refused.value)


def test_read_only_bounds_and_types_as_ros2_param_describe_shows_them(declared):
    """Only autostart is read-only (read once at start; every other parameter is set on the
    running node); a float's range holds both its bounds (frame_rate 500 is refused when
    declared); a bool carries no range; an on/off text takes a params file's unquoted off (a
    bool) and each description starts with the parameter's help."""
    from amodal_ros.ros.params import parameter_specs

    node = declared(mirror_ensemble=False)  # YAML's off
    assert node.describe_parameter("autostart").read_only
    assert not any(node.describe_parameter(n).read_only for n in ("stride", "checkpoint"))
    (rate,) = node.describe_parameter("frame_rate").floating_point_range
    assert (rate.from_value, rate.to_value) == (0.1, 120.0)
    student = node.describe_parameter("student")
    assert not student.integer_range and not student.floating_point_range
    assert node.get_parameter("mirror_ensemble").value is False
    helps = {name: meta["help"] for name, _, meta in parameter_specs()}
    assert node.describe_parameter("stride").description == helps["stride"]


def test_a_refusal_other_than_a_range_is_given_as_rclpy_words_it(declared):
    """A value of the wrong type is no range error: `amodal_node` prints rclpy's reason, which
    names the parameter, instead of failing on it."""
    from rclpy.exceptions import InvalidParameterTypeException

    from amodal_ros.ros.params import parameter_error

    with pytest.raises(InvalidParameterTypeException) as refused:
        declared(stride="five")
    said = parameter_error(refused.value)
    assert said == str(refused.value) and "'stride' to 'five'" in said
