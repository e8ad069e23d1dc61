"""Which bags a list of names means: rosbag2 folders, ROS 1 .bag files, lone .mcap files,
folders holding them, globs and .txt lists, with the recordings that cannot be replayed yet
(no metadata.yaml, a ROS 1 `.bag.active`) named, not passed over: `replay-many`'s bag
arguments, and the recordings beside distillation's clip folders."""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path

from amodal_ros.bags.reader import not_a_file, part_of_a_bag
from amodal_ros.core.errors import InputError

log = logging.getLogger("amodal_ros.bags")


def find_bags(specs: list[str], left_out: dict[Path, str] | None = None) -> list[Path]:
    """The bags named by `specs`, in order, each once: a rosbag2 folder (metadata.yaml), a ROS 1
    .bag file, a lone .mcap file (not one of a rosbag2 folder's), a folder of those (not
    recursive), a glob, or a .txt file listing them. Unfinished recordings a folder or glob
    holds are logged and put in `left_out` ({path: why})."""
    left_out = {} if left_out is None else left_out
    found: list[Path] = []
    for spec in specs:
        found += _expand(spec, Path.cwd(), left_out)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError(f"no bags found in {' '.join(specs)}")
    return unique


def _expand(spec: str, base: Path, left_out: dict[Path, str]) -> list[Path]:
    if glob.has_magic(spec):  # what a folder would hold: bags, and folders of bags
        matches = [Path(m) for m in sorted(glob.glob(str(base / spec)))]
        if not matches:
            raise InputError(f"{spec} matches nothing")
        return [
            bag
            for m in matches
            if not _left_out(m, left_out)
            for bag in ([m] if _is_bag(m) else _bags_in(m, left_out))
        ]
    path = base / spec
    if path.suffix == ".txt" and path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines()]
        return [
            b
            for line in lines
            if line and not line.startswith("#")
            for b in _expand(line, path.parent, left_out)
        ]
    if _is_bag(path):
        return [path]
    if why := _unfinished_text(path):
        raise InputError(why)
    if path.is_dir():
        inside = _bags_in(path, left_out)
        if not inside:
            raise InputError(
                f"{path} is neither a bag (no metadata.yaml) nor a folder holding bags"
            )
        return inside
    if why := part_of_a_bag(path) or not_a_file(path):
        raise InputError(why)
    raise InputError(f"{spec}: no such bag, folder or list")


def _bags_in(path: Path, left_out: dict[Path, str]) -> list[Path]:
    """The bags directly inside the folder `path` (none when it is not a folder); unfinished
    recordings are named, not silently passed over (_left_out). A rosbag2 folder is one bag:
    its own .mcap files are not listed again."""
    if not path.is_dir():
        return []
    return [p for p in sorted(path.iterdir()) if not _left_out(p, left_out) and _is_bag(p)]


def _left_out(path: Path, left_out: dict[Path, str]) -> bool:
    """Whether `path` is a recording that cannot be replayed yet, logged and put in `left_out`
    with why: the summary lists it, so that it is not mistaken for done."""
    why = _unfinished_text(path)
    if why:
        log.warning("%s", why)
        left_out[path.resolve()] = why
    return bool(why)


def _unfinished_text(path: Path) -> str:
    """Why `path` is an unfinished recording, '' when it is not one: a rosbag2 folder stopped
    before it wrote metadata.yaml (a .db3, which is never a bag alone, or storage files named
    as rosbag2 names them, `<folder>_<n>.mcap`: not lone .mcap bags), or a ROS 1 `.bag.active`
    (rosbag renames it when the recording closes)."""
    if path.is_file() and path.name.endswith(".bag.active"):
        return (
            f"{path} is a ROS 1 recording still being written or stopped before it closed, left "
            f"out: when it is complete, `rosbag reindex {path}` and rename it to .bag"
        )
    if not path.is_dir() or _is_rosbag2(path):
        return ""
    split = re.compile(rf"{re.escape(path.name)}_\d+\.mcap$")
    if not any(p.suffix == ".db3" or split.match(p.name) for p in path.iterdir()):
        return ""
    return (
        f"{path} holds a recording without metadata.yaml (stopped before writing it), left "
        f"out: `ros2 bag reindex {path}` writes it (one of its .mcap files can also be named "
        "directly)"
    )


def _is_bag(path: Path) -> bool:
    if path.is_dir():
        return _is_rosbag2(path)
    if not path.is_file():
        return False
    # a rosbag2 folder's files are parts of that bag, not bags of their own
    return path.suffix in (".bag", ".mcap") and not part_of_a_bag(path)


def _is_rosbag2(folder: Path) -> bool:
    return (folder / "metadata.yaml").is_file()
