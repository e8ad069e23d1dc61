"""A synthetic RGB-D rosbag2 for trying `amodal-ros replay` without a camera or downloads.

Textured objects move, turn and pass behind each other and nearer bars and blobs: a held-out
test-split scene of amodal_ros.data.scenes (never seen in training); the bag holds
what a RealSense-style driver plus an instance segmenter would publish, all with the same
header stamps and frame_id:

    /camera/color/image_raw                   sensor_msgs/Image rgb8
    /camera/aligned_depth_to_color/image_raw  sensor_msgs/Image 16UC1 (millimetres)
    /camera/instance_masks                    sensor_msgs/Image mono16 (instance ids, 0 = none)
    /camera/color/camera_info                 sensor_msgs/CameraInfo (pinhole, no distortion)

The default 15 fps is faster than the model's 8 fps on purpose: replay thins it by stamp.

Usage:
    amodal-ros demo-bag demo_bag [--frames 50] [--camera-fps 15] [--storage mcap]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from amodal_ros.bags import topics
from amodal_ros.bags.output import staged_bag
from amodal_ros.bags.typestore import CAMERA_INFO, IMAGE, amodal_typestore
from amodal_ros.interface.convert import image_fields

# First stamp of the bag: a fixed wall-clock-like time, so bags are reproducible.
START_NS = 1_700_000_000 * 1_000_000_000
# Horizontal field of view of the pinhole model, degrees (a RealSense D435 colour camera's).
HFOV_DEG = 69.4


def pinhole_k(width: int, height: int, hfov_deg: float = HFOV_DEG) -> np.ndarray:
    """[9] float64 row-major K of a square-pixel pinhole camera centred on the image."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0])


def write_demo_bag(
    out: str | Path,
    frames: int = 50,
    fps: float = 15.0,
    seed: int = 0,
    height: int = 128,
    width: int = 256,
    storage: str = "sqlite3",
    overwrite: bool = False,
) -> dict:
    """Write the synthetic scene as a rosbag2 folder `out`; returns a summary.

    Message log times equal the header stamps, `START_NS + round(i * 1e9 / fps)`.

    Returns:
        {"out", "frames", "fps", "topics": {topic: message count}, "first_stamp_ns",
        "last_stamp_ns"}
    """
    from amodal_ros.data.scenes import make_scene, split_seeds

    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be >= 16 pixels, got {height}x{width}")
    scene = split_seeds("test", 1, start=seed)[0]
    clip = make_scene(scene, num_frames=frames, height=height, width=width)
    return write_clip_bag(clip.rgb, clip.depth, clip.labels, out, fps, storage, overwrite)


def write_clip_bag(
    rgb: np.ndarray,
    depth: np.ndarray,
    labels: np.ndarray,
    out: str | Path,
    fps: float = 15.0,
    storage: str = "sqlite3",
    overwrite: bool = False,
) -> dict:
    """Write RGB [T, H, W, 3] uint8, depth [T, H, W] metres and instance labels [T, H, W]
    (< 65536) as the camera topics above, a frame every 1/fps s from START_NS."""
    if not 0 < fps <= 1000:
        raise ValueError(f"fps must be in (0, 1000], got {fps}")
    frames, height, width = labels.shape
    out = Path(out)
    store = amodal_typestore()
    t = store.types
    depth_mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    k = pinhole_k(width, height)
    p = np.array([k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0])
    stamps = [START_NS + round(i * 1e9 / fps) for i in range(frames)]

    def image(header, array, encoding):
        f = image_fields(array, encoding)
        return t[IMAGE](header=header, **f)

    with staged_bag(out, storage, overwrite) as writer:
        conns = {
            topics.RGB_TOPIC: writer.add_connection(topics.RGB_TOPIC, IMAGE, typestore=store),
            topics.DEPTH_TOPIC: writer.add_connection(topics.DEPTH_TOPIC, IMAGE, typestore=store),
            topics.MASK_TOPIC: writer.add_connection(topics.MASK_TOPIC, IMAGE, typestore=store),
            topics.CAMERA_INFO_TOPIC: writer.add_connection(
                topics.CAMERA_INFO_TOPIC, CAMERA_INFO, typestore=store
            ),
        }
        counts = dict.fromkeys(conns, 0)
        for i, stamp in enumerate(stamps):
            header = t["std_msgs/msg/Header"](
                stamp=t["builtin_interfaces/msg/Time"](
                    sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000
                ),
                frame_id=topics.FRAME_ID,
            )
            info = t[CAMERA_INFO](
                header=header,
                height=height,
                width=width,
                distortion_model="plumb_bob",
                d=np.zeros(5),
                k=k,
                r=np.eye(3).reshape(-1),
                p=p,
                binning_x=0,
                binning_y=0,
                roi=t["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                ),
            )
            messages = {
                topics.RGB_TOPIC: (image(header, rgb[i], "rgb8"), IMAGE),
                topics.DEPTH_TOPIC: (image(header, depth_mm[i], "16UC1"), IMAGE),
                topics.MASK_TOPIC: (image(header, labels[i].astype(np.uint16), "mono16"), IMAGE),
                topics.CAMERA_INFO_TOPIC: (info, CAMERA_INFO),
            }
            for topic, (msg, msgtype) in messages.items():
                writer.write(conns[topic], stamp, store.serialize_cdr(msg, msgtype))
                counts[topic] += 1
    return {
        "out": str(out),
        "frames": frames,
        "fps": fps,
        "topics": counts,
        "first_stamp_ns": stamps[0],
        "last_stamp_ns": stamps[-1],
    }
