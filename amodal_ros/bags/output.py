"""Writing a rosbag2 so that it never exists half-written under its final name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from amodal_ros.core.errors import InputError
from amodal_ros.core.imports import require
from amodal_ros.core.staging import check_replaceable, staged_path

STORAGES = ("sqlite3", "mcap")
# The rosbag2 metadata version to write for the oldest ROS 2 distro that must play a bag, from
# each distro's reader (rosbag2_storage yaml.hpp / metadata_io.cpp on its branch): Humble reads
# `offered_qos_profiles` only as a string with integer policies (version <= 8; version 9's
# list fails with "bad conversion"), Jazzy and Kilted read both and need the keys version 8
# adds. So "humble" writes version 8, which all three play; "jazzy"/"kilted" their own 9.
ROS_DISTROS = {"humble": 8, "jazzy": 9, "kilted": 9}
# What marks a bag of amodal results (replay writes it inside the bag; rosbag2 ignores other
# files). Its topics cannot tell: `ros2 bag record -a` beside the node records them too, and
# version 8 metadata (Humble's) has no custom_data to say it.
RESULTS_MARKER = "amodal_ros_results.json"


def is_results_bag(bag: Path) -> bool:
    """Whether the folder `bag` is a bag of results replay wrote (it carries RESULTS_MARKER)."""
    return (Path(bag) / RESULTS_MARKER).is_file()


def results_record(bag: Path) -> dict | None:
    """What a results bag's RESULTS_MARKER says made it ({} when it cannot be read); None for
    a folder without one (not replay's results)."""
    try:
        record = json.loads((Path(bag) / RESULTS_MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def mark_results(bag: Path, record: Mapping) -> None:
    """Mark the folder `bag` as a bag of results, with `record` saying what made it."""
    (Path(bag) / RESULTS_MARKER).write_text(json.dumps(dict(record), indent=1) + "\n")


def check_output(out: Path, overwrite: bool, results: bool = False) -> None:
    """Refuse an existing output path unless `overwrite`, and one that is not a bag even
    then, nor (`results`) a bag of amodal results: `replay rec1 --out rec2 --overwrite` would
    delete the recording rec2 (checked before any work)."""
    if out.suffix == ".bag":  # a rosbag2 folder so named reads as a ROS 1 file in rosbags
        raise InputError(
            f"output bag {out} ends in .bag, a ROS 1 bag's name, and the bag readers here "
            f"(replay, rosbags) take it for one: name it without .bag ({out.with_suffix('')})"
        )
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise InputError(f"output bag {out} exists; pass --overwrite or choose another output")
    check_replaceable(out, "metadata.yaml", "bag")
    if results and out.is_dir() and not out.is_symlink() and not is_results_bag(out):
        raise InputError(
            f"--overwrite replaces an earlier bag of results, and {out} is a bag without "
            f"{RESULTS_MARKER} (a recording, or results written before replay marked them); "
            "nothing was deleted: choose another --out, or remove it yourself"
        )


@contextmanager
def staged_bag(
    out: Path,
    storage: str = "sqlite3",
    overwrite: bool = False,
    ros_distro: str = "humble",
    results: Mapping | None = None,
    before_rename: Callable[[], object] | None = None,
) -> Iterator:
    """Yield an open rosbags rosbag2 `Writer` writing into a staging folder beside `out`.

    The bag is closed and renamed to `out` only when the block succeeds; on any error the
    staging folder is removed and `out` (absent, or the old bag with `overwrite`) is untouched.
    The storage file inside is named after `out` (`out/<out.name>.db3` or `.mcap`), as
    `ros2 bag record -o out` names it.

    Args:
        out: the final bag folder.
        storage: "sqlite3" or "mcap".
        overwrite: replace an existing `out` (only once the new bag is complete).
        ros_distro: the oldest distro whose `ros2 bag play` must read it (ROS_DISTROS).
        results: it is a bag of amodal results, and replaces only one (check_output): this
            record of what made it is written inside as RESULTS_MARKER.
        before_rename: called once the bag is closed and checked, just before its rename:
            where outputs beside the bag (a replay's videos) take their final names, so that
            nothing but two renames lies between them and the bag's (closing a large bag
            takes seconds, and a process killed then left videos without their bag).
    """
    require("rosbags", "writing rosbags")
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    if ros_distro not in ROS_DISTROS:
        raise ValueError(f"ros_distro must be one of {tuple(ROS_DISTROS)}, got {ros_distro!r}")
    out = Path(out)
    check_output(out, overwrite, results is not None)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3

    def recheck() -> None:  # something may have appeared at `out` meanwhile
        check_output(out, overwrite, results is not None)
        if before_rename is not None:
            before_rename()

    with staged_path(out, recheck) as stage:  # the bag folder is `out.name` inside the stage
        writer = Writer(stage, version=ROS_DISTROS[ros_distro], storage_plugin=plugin)
        try:
            writer.open()
            yield writer
            writer.close()
        except BaseException as err:
            if writer.storage is not None:
                writer.abort()
            if isinstance(err, sqlite3.Error):  # a full disk, a file size limit: one line
                raise OSError(f"cannot write bag {out}: sqlite3: {err}") from err
            raise
        if results is not None:
            mark_results(stage, results)
