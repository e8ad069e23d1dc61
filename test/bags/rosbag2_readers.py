"""What `ros2 bag play` of each ROS 2 distro requires of a rosbag2's metadata.yaml and sqlite3
file, transcribed from rosbag2's source on each distro's branch (no ROS needed to check it):

- Humble (0.15.x): rosbag2_storage/src/rosbag2_storage/metadata_io.cpp (decode of the bag
  and topic metadata, every listed key required) and rosbag2_transport/src/rosbag2_transport/
  qos.cpp (the player parses `offered_qos_profiles`, read `as<std::string>()`, as YAML with
  integer policies and every QoS key); sqlite_storage.cpp selects the topics and messages
  columns below.
- Jazzy (0.26.x; Kilted 0.32.x reads the same: rolling 0.29 is identical in these files and
  the 0.30-0.32 changelogs change none of them): rosbag2_storage/include/rosbag2_storage/
  yaml.hpp adds `custom_data` (version >= 6), `type_description_hash` (>= 7), `ros_distro`
  (>= 8), and reads `offered_qos_profiles` as a string up to version 8 and as a list from 9;
  rosbag2_storage/src/rosbag2_storage/qos.cpp takes integer or name policies.

No distro refuses a newer version number; a version is decoded with the newest rules a distro
knows, so what matters is the form of each key.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

QOS_KEYS = {
    "history",
    "depth",
    "reliability",
    "durability",
    "deadline",
    "lifespan",
    "liveliness",
    "liveliness_lease_duration",
    "avoid_ros_namespace_conventions",
}
DISTROS = ("humble", "jazzy", "kilted")


def problems(bag: Path, distro: str) -> list[str]:
    """Why `distro`'s reader would fail on the bag folder `bag` (empty: it reads it)."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    version, found = info["version"], []
    need = lambda ok, what: ok or found.append(what)  # noqa: E731
    for key, kind in (
        ("version", int),
        ("storage_identifier", str),
        ("message_count", int),
        ("topics_with_message_count", list),
        ("relative_file_paths", list),
    ):
        need(isinstance(info.get(key), kind), key)
    need(isinstance(info.get("duration", {}).get("nanoseconds"), int), "duration")
    need(isinstance(info.get("starting_time", {}).get("nanoseconds_since_epoch"), int), "start")
    if version >= 3:
        need(isinstance(info.get("compression_format"), str), "compression_format")
        need(isinstance(info.get("compression_mode"), str), "compression_mode")
    if version >= 5:
        for f in info.get("files") or [None]:
            need(isinstance(f, dict) and {"path", "message_count"} <= set(f), "files")
    jazzy = distro != "humble"
    if jazzy and version >= 6:
        need("custom_data" in info and isinstance(info["custom_data"], dict | None), "custom_data")
    if jazzy and version >= 8:
        need(isinstance(info.get("ros_distro"), str), "ros_distro")
    for entry in info["topics_with_message_count"]:
        topic = entry["topic_metadata"]
        for key in ("name", "type", "serialization_format"):
            need(isinstance(topic.get(key), str), f"topic {key}")
        need(isinstance(entry.get("message_count"), int), "topic message_count")
        if jazzy and version >= 7:
            need(isinstance(topic.get("type_description_hash"), str), "type_description_hash")
        if version >= 4:
            found += _qos_problems(topic.get("offered_qos_profiles"), version, jazzy)
    if info["storage_identifier"] == "sqlite3":
        for path in info["relative_file_paths"]:
            found += _sqlite_problems(bag / path, jazzy)
    return found


def _qos_problems(qos, version: int, jazzy: bool) -> list[str]:
    as_list = jazzy and version >= 9
    if as_list != isinstance(qos, list) or not as_list and not isinstance(qos, str):
        form = "a list" if as_list else "a string"
        return [f"offered_qos_profiles must be {form} at version {version}, got {qos!r}"]
    profiles = qos if as_list else (yaml.safe_load(qos) if qos else [])
    found = []
    for profile in profiles:
        if set(profile) != QOS_KEYS:
            found.append(f"QoS keys {sorted(set(profile) ^ QOS_KEYS)}")
        policies = [profile.get(k) for k in ("history", "reliability", "durability", "liveliness")]
        ints = all(isinstance(p, int) for p in policies)
        if not ints and (not jazzy or not all(isinstance(p, str) for p in policies)):
            found.append(f"QoS policies {policies}: integers{'' if not jazzy else ' or names'}")
        for key in ("deadline", "lifespan", "liveliness_lease_duration"):
            t = profile.get(key, {})
            if not (isinstance(t, dict) and t.get("sec", -1) >= 0 and t.get("nsec", -1) >= 0):
                found.append(f"QoS {key} {t}")
    return found


def _sqlite_problems(db: Path, jazzy: bool) -> list[str]:
    with sqlite3.connect(db) as con:
        columns = {
            table: {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        version = con.execute("SELECT schema_version FROM schema").fetchone()[0]
    needed = {
        "topics": {"id", "name", "type", "serialization_format", "offered_qos_profiles"},
        "messages": {"id", "topic_id", "timestamp", "data"},
    }
    if jazzy and version >= 4:
        needed["topics"].add("type_description_hash")
        needed["message_definitions"] = {"topic_type", "encoding", "encoded_message_definition"}
    return [
        f"sqlite {table} lacks {sorted(cols - columns.get(table, set()))}"
        for table, cols in needed.items()
        if not cols <= columns.get(table, set())
    ]
