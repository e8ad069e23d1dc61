"""amodal_node on sim time beside a bag being played (live-style replay with `ros2 bag play`).

    ros2 launch amodal_ros replay.launch.py bag:=demo_bag params_file:=my_params.yaml delay:=20

The params file must set `checkpoint`. The player starts `delay` seconds after launch so the
node has loaded its models and run its warm-up window before the first message (a short bag
would otherwise be over before the node subscribes). For offline, deterministic, drop-free
processing of a bag use `amodal-ros replay` instead. Declarative only: the bag player is a
plain process (argument list, no shell).
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    IncludeLaunchDescription,
    TimerAction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 folder to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument(
            "delay",
            default_value="15.0",
            description="seconds to wait for the node to configure before playing",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution(
                [FindPackageShare("amodal_ros"), "config", "amodal_node.yaml"]
            ),
            description="ros__parameters YAML for amodal_node (must set checkpoint)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
    ]
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("amodal_ros"), "launch", "amodal.launch.py"])
        ),
        launch_arguments={
            "params_file": LaunchConfiguration("params_file"),
            "namespace": LaunchConfiguration("namespace"),
            "use_sim_time": "true",
        }.items(),
    )
    player = ExecuteProcess(
        cmd=[
            "ros2",
            "bag",
            "play",
            LaunchConfiguration("bag"),
            "--clock",
            "--rate",
            LaunchConfiguration("rate"),
        ],
        output="screen",
    )
    delayed_player = TimerAction(period=LaunchConfiguration("delay"), actions=[player])
    return LaunchDescription([*arguments, node, delayed_player])
