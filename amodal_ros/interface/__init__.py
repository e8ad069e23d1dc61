"""The ROS interface without a binding: sensor_msgs images <-> numpy, and the result messages
built from FrameResults. Both the rclpy node (amodal_ros.ros) and the rosbags tools
(amodal_ros.bags) stand on it; it imports neither rclpy nor torch."""
