"""Optional dependencies in one place: availability flags and `require` with install hints."""

from __future__ import annotations

import importlib
import importlib.util


def is_available(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


HINTS = {
    "torch": "pip install torch==2.13.0  (CPU build; see scripts/requirements.txt)",
    "diffusers": "pip install -r scripts/requirements.txt",
    "transformers": "pip install -r scripts/requirements.txt",
    "onnxruntime": "pip install onnxruntime",
    "tensorrt": "pip install tensorrt  (needs an NVIDIA GPU and driver)",
    "rclpy": "bash scripts/setup.sh (ROS 2 Kilted wheels) or source /opt/ros/<distro>/setup.bash",
    "cv2": "pip install opencv-python-headless",
    "ray": "pip install 'ray>=2.40'  (the amodal_ros[ray] extra)",
    "torchao": "pip install torchao==0.18.0  (the amodal_ros[fp8] extra; a 3.4 MB wheel)",
}


def require(module: str, purpose: str = ""):
    """Import `module` or raise ImportError naming the purpose and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        hint = HINTS.get(module, f"pip install {module}")
        what = f" for {purpose}" if purpose else ""
        raise ImportError(f"'{module}' is needed{what} but is not installed: {hint}") from err
