"""Numpy-only types, configs, constants and errors; imports without torch or rclpy."""

from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.errors import CheckpointError, InputError
from amodal_ros.core.types import AmodalResult, CompletionResult, ObjectTrack

__all__ = [
    "AmodalResult",
    "CheckpointError",
    "CompletionResult",
    "InferenceConfig",
    "InputError",
    "ObjectTrack",
]
