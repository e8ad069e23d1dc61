"""amodal_node on sim time beside a bag being played (live-style replay with `ros2 bag play`).

    ros2 launch amodal_ros replay.launch.py bag:=demo_bag params_file:=my_params.yaml

The params file must set `checkpoint`. The player starts when the node becomes active, i.e.
once it has loaded its models and run its warm-up window (a short bag would otherwise be over
before the node subscribes): an event handler on the lifecycle node's transition to `active`,
handled once (a later re-activation does not play the bag again). It reacts to the lifecycle
nodes of this launch, of which amodal_node is the only one. For offline, deterministic,
drop-free processing of a bag use `amodal-ros replay` instead. Declarative only: the bag player
is a plain process (argument list, no shell).
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    IncludeLaunchDescription,
    RegisterEventHandler,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.event_handlers import OnStateTransition
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 folder to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
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
            "autostart": "true",  # the bag plays once the node is active
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
    play_when_active = RegisterEventHandler(
        OnStateTransition(goal_state="active", entities=[player], handle_once=True)
    )
    return LaunchDescription([*arguments, play_when_active, node])
