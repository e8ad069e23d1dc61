"""amodal_node beside a camera driver and an instance-segmentation node.

    ros2 launch amodal_ros amodal.launch.py params_file:=my_params.yaml \
        rgb_topic:=/camera/color/image_raw depth_topic:=/camera/aligned_depth_to_color/image_raw \
        mask_topic:=/segmentation/instance_labels namespace:=perception

The params file must set `checkpoint` (see config/amodal_node.yaml for every parameter).
The node is a lifecycle node (launch_ros LifecycleNode: launch sees its transitions). With
`autostart:=true` (default) launch configures it and, once it is inactive, activates it,
through its lifecycle services (the node's own `autostart` parameter is set false here: a node
that moved itself did so before launch had subscribed to its transition events, so handlers on
them, as replay.launch.py's, missed them most of the time); with `autostart:=false` it waits in
`unconfigured` for a lifecycle manager or `ros2 lifecycle set`. The `use_sim_time` argument
overrides the params file's (set it here, not there). Declarative only: no Python expressions,
no shell.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution(
                [FindPackageShare("amodal_ros"), "config", "amodal_node.yaml"]
            ),
            description="ros__parameters YAML (checkpoint, device, window, stride, ...)",
        ),
        DeclareLaunchArgument(
            "rgb_topic", default_value="/camera/color/image_raw", description="RGB image"
        ),
        DeclareLaunchArgument(
            "depth_topic",
            default_value="/camera/aligned_depth_to_color/image_raw",
            description="depth registered to RGB (32FC1 m or 16UC1 mm); a remap, never empty: "
            "a model without depth does not subscribe to it",
        ),
        DeclareLaunchArgument(
            "mask_topic",
            default_value="/camera/instance_masks",
            description="instance-label image (mono8/mono16/32SC1, 0 = background)",
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="/camera/color/camera_info",
            description="CameraInfo of the RGB camera (passed through); a remap, never empty: "
            "without one, set camera_info_topic: '' in params_file",
        ),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="use /clock (bag replay)"
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            description="configure and activate on start; false: wait for a lifecycle manager",
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="ROS log level"),
    ]
    node = LifecycleNode(
        package="amodal_ros",
        executable="amodal_node",
        name="amodal_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "use_sim_time": LaunchConfiguration("use_sim_time"),
                "autostart": False,  # launch moves it (below), seeing every transition
            },
        ],
        remappings=[
            ("image", LaunchConfiguration("rgb_topic")),
            ("depth", LaunchConfiguration("depth_topic")),
            ("masks", LaunchConfiguration("mask_topic")),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    autostart = IfCondition(LaunchConfiguration("autostart"))
    configure = EmitEvent(  # launch_ros waits for the node's change_state service first
        event=ChangeState(
            lifecycle_node_matcher=matches_action(node),
            transition_id=Transition.TRANSITION_CONFIGURE,
        ),
        condition=autostart,
    )
    activate_once_configured = RegisterEventHandler(
        OnStateTransition(  # once: a later deactivation (a lifecycle manager's) stays
            target_lifecycle_node=node,
            goal_state="inactive",
            entities=[
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(node),
                        transition_id=Transition.TRANSITION_ACTIVATE,
                    )
                )
            ],
            handle_once=True,
        ),
        condition=autostart,
    )
    return LaunchDescription([*arguments, activate_once_configured, node, configure])
