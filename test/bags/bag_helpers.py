"""Helpers of the bag tests: small demo bag settings, replay arguments, reading and rewriting
bags. (Not a conftest.py: the root conftest is imported as `conftest` by other tests.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Writer2

from amodal_ros.bags.replay import ReplayArgs, replay_stream
from amodal_ros.bags.typestore import amodal_typestore
from amodal_ros.core.config import InferenceConfig

# A 15 fps camera sampled to 7.5 fps keeps every other frame: 14 frames -> 7 sampled.
FRAMES, FPS, FRAME_RATE = 14, 15.0, 7.5
HEIGHT, WIDTH = 48, 96
WINDOW, STRIDE = 4, 2
SAMPLED = (FRAMES + 1) // 2


def tiny_inference(**changes) -> InferenceConfig:
    return InferenceConfig(height=32, width=64, num_frames=WINDOW, num_steps=1, **changes)


def replay_args(bag: Path, out: Path, checkpoint: Path | None, **changes) -> ReplayArgs:
    """Replay arguments of the tests; checkpoint None: replay's default (the embedded model)."""
    stream = replay_stream().replace(
        checkpoint=str(checkpoint) if checkpoint else replay_stream().checkpoint,
        frame_rate=FRAME_RATE,
        stride=STRIDE,
        publish_frames=changes.pop("publish_frames", "new"),
        completion_checkpoint=str(changes.pop("completion_checkpoint", "")),
    )
    return ReplayArgs(
        bag=bag, out=out, stream=stream, inference=tiny_inference(), progress=False, **changes
    )


def read_bag(path: Path) -> list[tuple[str, int, bytes]]:
    """All (topic, log time, raw bytes) of a bag, in log-time order."""
    with AnyReader([path]) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def read_messages(path: Path, topic: str) -> list[tuple[int, object]]:
    """(log time, deserialized message) of one topic."""
    with AnyReader([path], default_typestore=amodal_typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages(conns)]


DROP = object()  # what a rewrite_bag edit returns to leave a message out


def rewrite_bag(
    src: Path,
    dst: Path,
    edit,
    storage: str = "sqlite3",
    shift_ns: int = 0,
    late: dict[str, int] | None = None,
    qos: dict[str, list] | None = None,
) -> None:
    """Copy a rosbag2, passing every message through edit(topic, index on topic, raw) ->
    (msgtype, raw bytes), None to keep it, or DROP to leave it out (a topic whose every
    message is left out stays recorded, empty); log times moved by `shift_ns`, and those of
    the topics in `late` ({topic: ns}) by that much more (a slow segmenter's); the topics in
    `qos` recorded with those offered QoS profiles (rosbags Qos)."""
    late, qos = late or {}, qos or {}
    store = amodal_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with AnyReader([src]) as reader, Writer2(dst, version=9, storage_plugin=plugin) as writer:
        conns, counts = {}, {}
        for conn, t, raw in reader.messages():
            i = counts.get(conn.topic, 0)
            counts[conn.topic] = i + 1
            edited = edit(conn.topic, i, bytes(raw))
            msgtype, data = (conn.msgtype, bytes(raw)) if edited in (None, DROP) else edited
            key = (conn.topic, msgtype)
            if key not in conns:
                conns[key] = writer.add_connection(
                    conn.topic,
                    msgtype,
                    typestore=store,
                    offered_qos_profiles=qos.get(conn.topic, ()),
                )
            if edited is not DROP:
                writer.write(conns[key], t + shift_ns + late.get(conn.topic, 0), data)


def mono(image) -> np.ndarray:
    return np.asarray(image.data, np.uint8).reshape(image.height, image.width)
