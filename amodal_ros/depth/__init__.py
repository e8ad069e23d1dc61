"""Depth conditioning: camera depth or Depth Anything V2, both as relative inverse depth."""

from amodal_ros.depth.camera import CameraDepth, inverse_depth_from_camera
from amodal_ros.depth.normalize import normalize_window

__all__ = ["CameraDepth", "inverse_depth_from_camera", "normalize_window"]
