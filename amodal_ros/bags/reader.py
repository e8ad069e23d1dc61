"""The input side of replay: a recorded bag opened with rosbags, its topics checked by role, and
its messages in log-time order, decoded or reported."""

from __future__ import annotations

from pathlib import Path

from amodal_ros.bags.typestore import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, amodal_typestore
from amodal_ros.core.errors import InputError
from amodal_ros.core.imports import require
from amodal_ros.core.staging import special_file
from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB

INFO = "camera_info"  # a replay-only input role beside the stream's RGB, MASKS, DEPTH
EXPECTED_TYPES = {
    RGB: (IMAGE, COMPRESSED_IMAGE),
    MASKS: (IMAGE, COMPRESSED_IMAGE),
    DEPTH: (IMAGE, COMPRESSED_IMAGE),
    INFO: (CAMERA_INFO,),
}
# the option that names each role's topic (replay, replay-many and distill all take them)
TOPIC_OPTIONS = {
    RGB: "--rgb-topic",
    MASKS: "--mask-topic",
    DEPTH: "--depth-topic",
    INFO: "--camera-info-topic",
}


def part_of_a_bag(path: Path) -> str:
    """Why `path` is no whole bag: a file of a rosbag2 folder (its split parts, its metadata
    are the folder's); "" when it is not."""
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        return f"{path} is a file of the rosbag2 bag {path.parent}: name the folder {path.parent}"
    return ""


def not_a_file(path: Path) -> str:
    """Why `path`, or a bag file in the folder `path`, cannot be read as a file: a pipe,
    socket or device named like a bag (reading one waits for a writer, forever); "" when
    nothing is."""
    bag_files = [path]
    if path.is_dir():
        bag_files += [p for p in path.iterdir() if p.suffix in (".db3", ".mcap", ".yaml")]
    for file in bag_files:
        if special_file(file):
            return (
                f"{file} is not a regular file (a pipe, socket or device): replay reads "
                "recorded bag files; record or copy the stream into a file first"
            )
    return ""


def _said(err: Exception) -> str:
    """`err` in one line of at most 300 characters: a reader's error on a damaged file may be
    anything (a TypeError, OverflowError or MemoryError from a length read out of garbage) and
    span lines (PyYAML's report, a whole message definition)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 300 else text[:297] + "..."


ACCEPTED = ": replay takes a rosbag2 folder, its .db3 or .mcap file, or a ROS 1 .bag"


def _hint(path: Path) -> str:
    """What a folder without metadata.yaml probably is, and what to do (" (...)"), or ""."""
    if path.is_file() and path.suffix not in (".db3", ".mcap", ".bag"):
        return f" ({path.name} is no bag{ACCEPTED})"
    if not path.is_dir() or (path / "metadata.yaml").exists():
        return ""
    storage = sorted(path.glob("*.db3")) + sorted(path.glob("*.mcap"))
    if len(storage) == 1 and storage[0].suffix == ".mcap":
        return f" (its MCAP file opens on its own: pass {storage[0]})"
    if storage:
        return (
            " (a recording stopped before it wrote metadata.yaml? `ros2 bag reindex "
            f"{path}` writes it)"
        )
    bags = sorted(sub.name for sub in path.iterdir() if (sub / "metadata.yaml").is_file())
    if bags:
        named = ", ".join(bags[:5]) + (", ..." if len(bags) > 5 else "")
        return f" (it holds bags: {named}; replay one, or all with `amodal-ros replay-many`)"
    return " (no rosbag2 here: no metadata.yaml, .db3 or .mcap)"


class InputBag:
    """A rosbag2 (sqlite3 or MCAP) or ROS 1 bag, open for reading; use as a context manager.

    Raises:
        InputError: the bag cannot be opened or read.
    """

    def __init__(self, path: Path):
        require("rosbags", "bag replay")
        from rosbags.highlevel import AnyReader, AnyReaderError

        self.path = Path(path)
        if why := part_of_a_bag(self.path) or not_a_file(self.path):
            raise InputError(why)
        if self.path.suffix == ".bag" and (self.path / "metadata.yaml").is_file():
            raise InputError(  # rosbags reads a path ending .bag as a ROS 1 file
                f"{self.path} is a rosbag2 folder named like a ROS 1 .bag file, which the bag "
                f"reader takes it for: rename it without .bag (mv {self.path} "
                f"{self.path.with_suffix('')})"
            )
        self.store = amodal_typestore()
        hint = _hint(self.path)
        try:
            self.reader = AnyReader([self.path], default_typestore=self.store)
        except (AnyReaderError, FileNotFoundError) as err:
            raise InputError(f"cannot open bag {self.path}: {err}{hint}") from None
        except Exception as err:  # metadata.yaml that is no YAML, or not UTF-8, ...
            raise InputError(f"cannot open bag {self.path}: {_said(err)}{hint}") from None
        try:
            self.reader.open()
        except AnyReaderError as err:
            mcaps = list(self.path.glob("*.mcap")) if self.path.is_dir() else []
            if "magic" in str(err) and not hint and (self.path.suffix == ".mcap" or mcaps):
                # an MCAP file cut short: its end is missing
                hint = (
                    " (a recording killed before it ended? `mcap recover` rebuilds the end of "
                    "a file cut short)"
                )
            elif "magic" in str(err) and not hint:
                hint = f" ({self.path.name} does not begin as a bag does{ACCEPTED})"
            elif "Profile is not ros2" in str(err):
                hint = (
                    " (an MCAP file of another profile, e.g. ROS 1 or JSON messages: replay reads "
                    "ROS 2's; record with `ros2 bag record -s mcap`, or convert a ROS 1 .bag with "
                    "`rosbags-convert`)"
                )
            elif "hash mismatch" in str(err):
                hint = (
                    " (its recorder stored another definition of that type than its "
                    "publisher's: message packages of two versions; every topic's must agree, "
                    "even one replay does not read: `ros2 bag convert` without that topic)"
                )
            raise InputError(f"cannot read bag {self.path}: {_said(err)}{hint}") from None
        except KeyError as err:  # rosbags on a message_definitions row of encoding ''
            raise InputError(
                f"cannot read bag {self.path}: rosbags cannot read its message definitions "
                f"(KeyError {err}: a topic recorded without its type's definition, often a "
                "service or action topic); convert the bag to MCAP without that topic "
                "(`ros2 bag convert`)"
            ) from None
        except Exception as err:  # a length read out of a damaged file, a cut zstd file, ...
            raise InputError(
                f"cannot read bag {self.path}: {_said(err)} (a damaged file? `mcap recover` "
                "rebuilds an MCAP file, sqlite3's `.recover` a database)"
            ) from None

    def __enter__(self) -> InputBag:
        return self

    def __exit__(self, *exc) -> None:
        self.reader.close()

    def has(self, topic: str) -> bool:
        """Whether the bag records `topic`."""
        return topic in self.reader.topics

    def connections(self, role: str, topic: str) -> list:
        """The connections of `topic`, which must exist and carry `role`'s message type."""
        available = self.reader.topics
        if topic not in available:
            have = ", ".join(
                f"{name} ({info.msgtype}, {info.msgcount} msgs)"
                for name, info in sorted(available.items())
            )
            raise InputError(
                f"{role} topic {topic} is not in {self.path}; the bag has: {have or 'nothing'}. "
                f"Name its {role} topic with {TOPIC_OPTIONS[role]}"
            )
        info = available[topic]
        expected = EXPECTED_TYPES[role]
        if info.msgtype not in expected:
            raise InputError(
                f"{role} topic {topic} has type {info.msgtype}; expected {' or '.join(expected)}"
            )
        return list(info.connections)

    def time_range(self, start: float | None, end: float | None) -> tuple[int | None, int | None]:
        """Log times (ns) of `start` / `end` seconds after the bag's first message, the end
        held to the bag's (a later one overflowed the storage's 64-bit times).

        Raises:
            InputError: the bag holds no message, or `start` is past its end.
        """
        reader = self.reader
        if not reader.message_count:
            raise InputError(f"bag {self.path} holds no message: nothing to replay")
        first, last = reader.start_time, reader.end_time
        if start is not None and first + round(start * 1e9) > last:
            raise InputError(
                f"--start {start:g} s is past the end of {self.path}, which spans "
                f"{(last - first) / 1e9:.3f} s"
            )
        start_ns = None if start is None else first + round(start * 1e9)
        stop_ns = None if end is None else min(first + round(end * 1e9), last + 1)
        return start_ns, stop_ns

    def estimate_count(self, conns, start_ns: int | None, stop_ns: int | None) -> int:
        """Messages of `conns` in the range (exact for the whole bag; pro rata otherwise)."""
        total = sum(c.msgcount for c in conns)
        first, last = self.reader.start_time, self.reader.end_time
        if (start_ns is None and stop_ns is None) or last <= first:
            return total
        lo, hi = max(first, start_ns or first), min(last, stop_ns or last)
        return max(0, round(total * (hi - lo) / (last - first)))

    def messages(self, conns, start_ns: int | None, stop_ns: int | None):
        """(connection, log time ns, raw bytes) in log-time order.

        Raises:
            InputError: the bag is damaged past its start (a record, a database page).
        """
        last = None
        try:
            for conn, log_ns, raw in self.reader.messages(conns, start_ns, stop_ns):
                last = log_ns
                yield conn, log_ns, raw
        except Exception as err:  # the reader's own: the caller's never come in here
            where = (
                "at its first message"
                if last is None
                else f"{(last - self.reader.start_time) / 1e9:.3f} s after its start"
            )
            raise InputError(
                f"cannot read bag {self.path} {where}: {_said(err)} (a damaged "
                "file: `mcap recover` rebuilds an MCAP file, sqlite3's `.recover` a database; "
                "--end replays the part before)"
            ) from None

    def deserialize(self, raw, msgtype: str):
        """The message object (raises on corrupt bytes: the caller reports and skips)."""
        return self.reader.deserialize(raw, msgtype)

    def output_defs(self, msgtype: str):
        """Typestore whose definition of `msgtype` goes into the output bag: the input bag's
        for a rosbag2, ours (ROS 2 field names) for standard types of a ROS 1 bag."""
        if not self.reader.is2 and msgtype in self.store.fielddefs:
            return self.store
        return self.reader.typestore

    @property
    def recording(self) -> dict:
        """What tells this recording from another wherever it lies (replay-many: a bag moved
        since its replay, or another bag of the same name): its first and last log time (ns)
        and its message count."""
        reader = self.reader
        return {
            "start_ns": reader.start_time,
            "end_ns": reader.end_time,
            "messages": reader.message_count,
        }

    @property
    def is_ros2(self) -> bool:
        """Whether the messages are CDR (rosbag2) rather than ROS 1 serialisation."""
        return self.reader.is2

    def to_cdr(self, raw, msgtype: str):
        """CDR bytes of a message, as the output bag stores it."""
        # ROS 1 -> CDR with the same definitions `output_defs` puts in the output bag (rosbags'
        # reader typestore of a ROS 1 bag keeps Header.seq, which its converter skips again).
        return raw if self.reader.is2 else self.output_defs(msgtype).ros1_to_cdr(raw, msgtype)
