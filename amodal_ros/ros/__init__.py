"""ROS glue: message conversions (no rclpy) and the rclpy node (amodal_ros.ros.node)."""
