"""Topic names of the bag tools, in one place.

Inputs default to the topics of `amodal-ros demo-bag` (those of a RealSense driver with
aligned depth); outputs are the node's default output topics (TopicConfig), made absolute.
"""

from __future__ import annotations

from amodal_ros.core.config import TopicConfig

RGB_TOPIC = "/camera/color/image_raw"
DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"
MASK_TOPIC = "/camera/instance_masks"
CAMERA_INFO_TOPIC = "/camera/color/camera_info"
FRAME_ID = "camera_color_optical_frame"

_NODE = TopicConfig()
OBJECTS_TOPIC = "/" + _NODE.output_topic
OVERLAY_TOPIC = "/" + _NODE.overlay_topic
COMPLETION_TOPIC = "/" + _NODE.completion_topic
MARKERS_TOPIC = "/" + _NODE.markers_topic
CAMERA_INFO_OUT_TOPIC = "/" + _NODE.camera_info_out_topic
