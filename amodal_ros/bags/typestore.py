"""A rosbags Typestore that knows the amodal_ros messages, registered from their .msg text.

No ROS build is needed: the .msg files are found where rosidl installs them
(`<prefix>/share/amodal_ros/msg/` of every `AMENT_PREFIX_PATH` entry) or, in a source checkout
or pip install from it, in the repository's `msg/` folder next to the package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from amodal_ros.core.imports import require

PACKAGE = "amodal_ros"
MSG_NAMES = ("AmodalObject", "AmodalObjectArray")

# Message type names as rosbags spells them.
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
AMODAL_OBJECT_ARRAY = f"{PACKAGE}/msg/AmodalObjectArray"


def msg_dir_candidates() -> list[Path]:
    """Folders that may hold the amodal_ros .msg files, in the order they are tried."""
    import amodal_ros

    candidates = [
        Path(prefix) / "share" / PACKAGE / "msg"
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if prefix
    ]
    init = Path(amodal_ros.__file__)
    # The package may be imported through a symlinked install tree (colcon --symlink-install
    # links every file): the resolved path leads to the source checkout, the unresolved one to
    # the install prefix.
    candidates.append(init.resolve().parents[1] / "msg")
    candidates.append(init.absolute().parents[1] / "msg")
    # a pip install (setup.py's data_files) puts them under its scheme's prefix: the one
    # PREFIX/lib/pythonX.Y/site-packages/amodal_ros lies under (--user, --prefix, Debian's
    # /usr/local), else sys.prefix
    installed = init.absolute().parents
    if len(installed) > 4 and installed[1].name in ("site-packages", "dist-packages"):
        candidates.append(installed[4] / "share" / PACKAGE / "msg")
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "msg")
    unique = []
    for c in candidates:
        if c not in unique:
            unique.append(c)
    return unique


def find_msg_dir() -> Path:
    """The first candidate folder holding every amodal_ros .msg file.

    Raises:
        FileNotFoundError: naming every folder that was searched.
    """
    candidates = msg_dir_candidates()
    for folder in candidates:
        if all((folder / f"{name}.msg").is_file() for name in MSG_NAMES):
            return folder
    raise FileNotFoundError(
        f"the amodal_ros message definitions ({', '.join(n + '.msg' for n in MSG_NAMES)}) were "
        f"not found; looked in: {', '.join(str(c) for c in candidates)}. Build the package "
        "(bash scripts/setup.sh) or run from a source checkout"
    )


def amodal_typestore(msg_dir: str | Path | None = None):
    """A fresh rosbags Typestore of ROS 2 Kilted (else the latest ROS 2 rosbags knows) with
    `amodal_ros/msg/AmodalObject` and `amodal_ros/msg/AmodalObjectArray` registered.

    Args:
        msg_dir: folder of the .msg files; found by `find_msg_dir()` when None.
    """
    require("rosbags", "reading and writing rosbags")
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(getattr(Stores, "ROS2_KILTED", Stores.LATEST))
    folder = Path(msg_dir) if msg_dir is not None else find_msg_dir()
    types = {}
    for name in MSG_NAMES:
        path = folder / f"{name}.msg"
        if not path.is_file():
            raise FileNotFoundError(f"message definition {path} does not exist")
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store
