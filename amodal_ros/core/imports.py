"""Optional dependencies in one place: availability flags and `require` with install hints."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import warnings


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
    "tensorrt": "pip install 'tensorrt>=10,<11'  (needs an NVIDIA GPU and driver)",
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


# warn on every import and are harmless: torchao (the fp8 extra) that its CUDA-only kernels do
# not load on this machine, torch that torchao registers enums the old way
NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_libraries(verbose: bool = False) -> None:
    """Keep third-party chatter (hub notices, deprecations, import warnings) out of what the
    CLI and the node print; `verbose` keeps it all."""
    if verbose:
        return
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        from diffusers.utils import logging as df_logging

        df_logging.set_verbosity_error()
    except ImportError:
        pass
    try:  # OpenCV's own log of a corrupt image: the error that names the file says it
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    except (ImportError, AttributeError):
        pass
