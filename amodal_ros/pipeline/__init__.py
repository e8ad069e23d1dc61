"""Stage-1/stage-2 orchestration over the models: preprocessing, cached encoding, sampling."""

from amodal_ros.pipeline.cache import FrameEncodingCache
from amodal_ros.pipeline.stage1 import AmodalSegmenter
from amodal_ros.pipeline.stage2 import ContentCompleter

__all__ = ["AmodalSegmenter", "ContentCompleter", "FrameEncodingCache"]
