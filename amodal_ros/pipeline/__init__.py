"""Stage-1/stage-2 orchestration over the models, and the streaming pipeline around them.

The model classes are imported lazily, so the torch-free parts (sync, rate, window)
import without torch: `from amodal_ros.pipeline.window import WindowBuffer` needs numpy only.
"""

import importlib

_LAZY = {
    "AmodalSegmenter": "amodal_ros.pipeline.stage1",
    "ContentCompleter": "amodal_ros.pipeline.stage2",
    "FrameEncodingCache": "amodal_ros.pipeline.cache",
    "Pipelines": "amodal_ros.pipeline.factory",
    "WindowProcessor": "amodal_ros.pipeline.processor",
    "build": "amodal_ros.pipeline.factory",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'amodal_ros.pipeline' has no attribute {name!r}")
