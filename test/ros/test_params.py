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
