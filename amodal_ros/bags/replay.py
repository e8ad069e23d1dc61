r"""`amodal-ros replay`: a recorded bag through the node's streaming pipeline, offline.

Reads a rosbag2 (sqlite3 or MCAP) or ROS 1 bag (bags.reader), feeds its messages in log-time
order to the same `StreamFront` (stamp synchronisation, frame-rate sampling, windows) and
`WindowProcessor` the node uses, synchronously, and writes a rosbag2 with the results
(bags.writer):

    /amodal/objects      amodal_ros/AmodalObjectArray per published frame
    /amodal/overlay      sensor_msgs/Image rgb8 overlay
    /amodal/completion   sensor_msgs/Image rgb8 completed objects (with a stage-2 checkpoint)
    /amodal/markers      visualization_msgs/MarkerArray: 3D extent boxes and labels for RViz
    /amodal/camera_info  the input CameraInfo of the frame's stamp (within the sync tolerance)
    + the input topics with --copy-inputs (raw messages, their log times)

Differences from the live node, all for an exact, complete and reproducible answer:
  * nothing is dropped: every window runs (no worker queue, no deadline);
  * output messages are logged at the log time of their frame's RGB message, and `latency` is
    0 (there is no arrival clock offline), so two runs with the same seed write
    byte-identical bags;
  * at the end of the bag, frames sampled after the last window get one more window, so with
    the default `--publish-frames new` every sampled frame gets exactly one result;
  * offline (`StreamFront(offline=True)`), the frames before the first full window wait for
    it and are answered by the model, not sent as their modal masks as a live node sends
    them, and with `new` each frame is answered by the window it sits nearest the middle of;
  * the 3D extents use the CameraInfo read by the time the frame's window runs
    (`camera_info_for`: the frame's own, else the latest): a bag that logs the newest frame's
    CameraInfo after its images gives that frame the previous one's intrinsics, and frames
    whose window runs before any CameraInfo was read none (EXTENT_NO_CAMERA_INFO).

Corrupt messages (undecodable CDR, truncated or inconsistent images) are reported with topic
and stamp, skipped and counted; the rest is processed. The output bag is written beside
`--out` and renamed only when complete.

Usage:
    amodal-ros demo-bag demo_bag
    amodal-ros replay demo_bag --out demo_results [--storage mcap] [--copy-inputs]
    amodal-ros replay run.mcap_dir --out res --checkpoint diffusion-vas-amodal-segmentation \
        --rgb-topic /camera/color/image_raw/compressed --start 10 --end 40
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from pathlib import Path

from amodal_ros import __version__
from amodal_ros.bags import topics
from amodal_ros.bags.output import ROS_DISTROS, STORAGES, check_output, staged_bag
from amodal_ros.bags.reader import INFO, InputBag
from amodal_ros.bags.typestore import COMPRESSED_IMAGE
from amodal_ros.bags.writer import ResultWriter
from amodal_ros.core.config import (
    OFFLINE_DEFAULT_CHECKPOINT,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)
from amodal_ros.core.errors import InputError, ProcessingError
from amodal_ros.core.staging import check_makeable
from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB, check_stride
from amodal_ros.pipeline.window import BACK, GAP, SIZE

log = logging.getLogger("amodal_ros.replay")

OFFLINE_SYNC_QUEUE = 300  # messages per input waiting for partners (10 s at 30 fps)
MAX_ERROR_REPORTS = 100  # skipped messages listed in the summary (all are counted)
WARNINGS_IN_FULL = 3  # the first few warnings of a kind are logged; then one every...
WARNING_EVERY = 100  # ... this many, with the count
LIVE_ONLY = ("deadline", "max_pending_windows", "sync_queue")  # no meaning offline
MAX_SECONDS = (2**63 - 1) / 1e9  # --start / --end: log times are int64 nanoseconds


def replay_stream() -> StreamConfig:
    """Replay's stream defaults: the embedded model, and every sampled frame answered."""
    return StreamConfig(checkpoint=OFFLINE_DEFAULT_CHECKPOINT, publish_frames="new")


@dataclass
class ReplayArgs:
    """What to replay and how. `stream` and `inference` are the node's configs."""

    bag: Path = param(
        MISSING, "input bag: rosbag2 folder (sqlite3 or MCAP) or ROS 1 .bag file", positional=True
    )
    out: Path = param(MISSING, "output rosbag2 folder (written beside it, renamed when complete)")
    stream: StreamConfig = group(replay_stream, exclude=LIVE_ONLY)
    inference: InferenceConfig = group(InferenceConfig)
    rgb_topic: str = param(topics.RGB_TOPIC, "RGB topic (Image or CompressedImage)")
    depth_topic: str = param(
        topics.DEPTH_TOPIC,
        "depth topic: Image 32FC1 m or 16UC1 mm, or CompressedImage (compressedDepth or 16-bit "
        "PNG)",
    )
    mask_topic: str = param(
        topics.MASK_TOPIC, "instance-label topic: Image, or CompressedImage (8/16-bit PNG)"
    )
    camera_info_topic: str = param(
        topics.CAMERA_INFO_TOPIC, "CameraInfo passed through to /amodal/camera_info; '' = none"
    )
    compressed: bool = param(
        False, "RGB is sensor_msgs/CompressedImage (also detected from the topic's type)"
    )
    start: float | None = param(None, "start, seconds after the bag's first message")
    end: float | None = param(None, "end, seconds after the bag's first message")
    storage: str = param("sqlite3", "output storage", choices=STORAGES)
    ros_distro: str = param(
        "humble",
        "oldest ROS 2 distro that must play the output bag: humble writes rosbag2 metadata "
        "version 8, which Humble, Jazzy and Kilted read; jazzy or kilted write version 9",
        choices=tuple(ROS_DISTROS),
    )
    copy_inputs: bool = param(
        False,
        "also write the input topics to the output bag (with --start: and the last CameraInfo "
        "before it, which the results use)",
    )
    overwrite: bool = param(False, "replace an existing output bag")
    fail_after: int = param(
        10,
        "stop (no output bag) when the first N frames all fail to convert the same way: the "
        "whole bag has that problem (0 = never stop)",
        0,
    )
    progress: bool = param(True, "progress bar")
    video: Path | None = param(None, "also write the overlays as VIDEO.mp4 (+ VIDEO.gif if short)")


def run(args: ReplayArgs, pipelines=None) -> dict:
    """Replay `args.bag` into the rosbag2 `args.out`; prints and returns the summary.

    `pipelines`: models already loaded for `args` (factory.build), e.g. by a replay-many
    worker that replays many bags; None loads them.

    Raises:
        InputError: missing or unusable bag, topic or output path (the depth topic only
            once the models say whether depth is needed).
        CheckpointError: a checkpoint folder that cannot be loaded.
    """
    # 1. check arguments and the output path (before reading or loading anything)
    check_args(args)
    with InputBag(args.bag) as bag:
        return _Replay(args, bag, pipelines).run()


def check_args(args: ReplayArgs) -> None:
    """Refuse bad arguments before any work, naming the argument."""
    bag, out = Path(args.bag), Path(args.out)
    if not bag.exists():
        raise InputError(f"input bag {bag} does not exist")
    if args.storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {args.storage!r}")
    if out.resolve() == bag.resolve() or out.resolve() in bag.resolve().parents:
        raise InputError(f"--out {out} is or holds the input bag; choose another output path")
    if bag.is_dir() and bag.resolve() in out.resolve().parents:  # its files would join it
        raise InputError(
            f"--out {out} is inside the input bag {bag}; choose a path outside it, e.g. "
            f"{bag.with_name(bag.name + '_amodal')}"
        )
    check_makeable(out, "--out")
    check_output(out, args.overwrite, results=True)
    if args.video is not None:
        check_makeable(Path(args.video), "--video")
    video_in = Path(args.video).resolve().parents if args.video is not None else ()
    if bag.is_dir() and bag.resolve() in video_in:  # its files would join the recording
        raise InputError(
            f"--video {args.video} is inside the input bag {bag}; put the video outside it, "
            f"e.g. --video {bag.with_name(bag.name + '_overlay')}"
        )
    if out.resolve() in video_in:
        raise InputError(
            f"--video {args.video} is inside --out {out}, which is the results bag (written "
            "whole at the end); put the video beside it, e.g. --video "
            f"{out.with_name(out.name + '_overlay')}"
        )
    if args.video is not None and not args.overwrite:
        from amodal_ros.pipeline.video import video_files

        for video in video_files(args.video):
            if video.exists():
                raise InputError(f"video {video} exists; pass --overwrite or another --video")
    for option, value in (("--start", args.start), ("--end", args.end)):
        if value is not None and value > MAX_SECONDS:  # round(value * 1e9) overflowed
            raise ValueError(
                f"{option} {value:g} s is past any bag's time range (log times are 64-bit "
                f"nanoseconds: at most {MAX_SECONDS:.3g} s)"
            )
    if args.start is not None and args.start < 0:
        raise ValueError(f"start must be >= 0 s, got {args.start}")
    if args.end is not None and args.end <= 0:
        raise ValueError(f"end must be > 0 s (after the bag's first message), got {args.end}")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ValueError(f"end ({args.end} s) must be after start ({args.start} s)")
    names = {
        "rgb_topic": args.rgb_topic,
        "mask_topic": args.mask_topic,
        "depth_topic": args.depth_topic,
    }
    if len(set(names.values())) < len(names):
        raise ValueError(f"input topics must differ, got {names}")
    check_stride(args.stream, args.inference.num_frames)


def format_summary(summary: dict) -> str:
    """A few lines for the terminal."""
    s = summary
    skipped = ", ".join(f"{k} {v}" for k, v in s["skipped"].items() if v) or "none"
    unmatched = ", ".join(f"{k} {v}" for k, v in s["unmatched"].items() if v) or "none"
    written = ", ".join(f"{k} {v}" for k, v in s["messages_written"].items())
    restarts = s["stream_restarts"]
    return "\n".join(
        [
            f"replayed {s['bag']} -> {s['out']} ({s['storage']}) in {s['seconds']:.1f} s",
            f"  model: {s['model']}",
            f"  messages read {s['messages_read']}; frames synchronised "
            f"{s['frames_synchronised']}, sampled {s['frames_sampled']}; windows "
            f"{s['windows']} ({s['windows_model']} through the model, "
            f"{s['windows_failed']} failed); results written {s['results_written']}",
            f"  skipped: {skipped}; unmatched: {unmatched}; repeated stamps "
            f"{s['repeated_stamps']} (a publisher that left them unset?); window started over: "
            f"{restarts['gap']} after gaps longer than a window, {restarts['stamp_back']} "
            f"where a stamp went back, {restarts.get('size', 0)} where the image size changed",
            f"  throughput: {s['frames_per_s']:.2f} input frames/s, "
            f"{s['sampled_frames_per_s']:.2f} sampled frames/s (latency is 0 in replay)",
            f"  written: {written}",
            *(f"  video: {video}" for video in s.get("videos", [])),
        ]
    )


def check_windows(summary: dict) -> None:
    """Raise ProcessingError (exit code 1) after a replay whose model windows failed, naming
    how many: its bag is written, but a script must not take it for a success."""
    failed = summary["windows_failed"]
    if failed:
        raise ProcessingError(
            f"{failed} model windows failed (the log above says why); {summary['out']} is "
            "complete: their frames hold the visible mask, flagged REASON_ERROR"
        )


def _no_model_result(summary: dict) -> str:
    """Why no result of a replay is the model's (every one is the visible mask), said once."""
    window, rate = summary["window"], summary["stream"]["frame_rate"]
    if summary["frames_sampled"] < window:
        return (
            f"no result is the model's: the bag gave {summary['frames_sampled']} frames at the "
            f"model's {rate:g} fps, fewer than its window of {window}, so every result is the "
            f"visible mask (reason WINDOW_NOT_FULL); the model needs {window / rate:.1f} s of "
            "frames in a row"
        )
    return (
        "no result is the model's: every one is the visible mask; each object's reason says "
        "why (windows cut short by gaps, objects below min_object_pixels, errors above)"
    )


class _Replay:
    """One replay: the bag's messages through the stream into the result writer."""

    def __init__(self, args: ReplayArgs, bag: InputBag, pipelines=None):
        from amodal_ros.interface.messages import FrameIdCheck
        from amodal_ros.pipeline.processor import WindowProcessor
        from amodal_ros.pipeline.stream import StreamFront

        self.args, self.bag = args, bag
        self.topic_of = {RGB: args.rgb_topic, MASKS: args.mask_topic, DEPTH: args.depth_topic}
        self.skipped: Counter[str] = Counter()
        self.errors: list[dict] = []
        # frames failed one way (the error text, numbers left out: a byte count differs per
        # frame) -> how many, and the first such text
        self.same_failures: Counter[str] = Counter()
        self.pending_at_end: dict[str, int] = {}  # sync queues when the bag ended
        self.failure_text: dict[str, str] = {}
        self.held: list[tuple] = []  # warnings of the leading failed frames (see _report)
        self.frames_with_objects = 0
        self.timing: Counter[str] = Counter()
        self.read = self.windows = 0
        self.read_by_role: Counter[str] = Counter()  # messages read per input
        self.decoded_by_role: Counter[str] = Counter()  # of them, deserialised
        self.camera_infos: OrderedDict[int, object] = OrderedDict()  # stamp -> CameraInfo
        # 2. input topics (RGB and masks now; depth once the model says whether it needs it)
        self.conns = {RGB: bag.connections(RGB, args.rgb_topic)}
        self.conns[MASKS] = bag.connections(MASKS, args.mask_topic)
        self.time_range = bag.time_range(args.start, args.end)  # an empty one: before models
        self._check_rgb_compressed()
        if args.camera_info_topic:
            if bag.has(args.camera_info_topic):
                self.conns[INFO] = bag.connections(INFO, args.camera_info_topic)
            else:
                log.warning(
                    "camera info topic %s is not in %s: no %s output",
                    args.camera_info_topic,
                    args.bag,
                    topics.CAMERA_INFO_OUT_TOPIC,
                )
        # 3. models. Offline, a topic logged late (a slow segmenter) must not cost frames:
        # wait for partners much longer than live (bounded: a missing topic holds at most
        # this many). A constant clock: no deadline can pass and every latency is 0, so the
        # output is reproducible byte for byte.
        self.stream = args.stream.replace(
            sync_queue=max(args.stream.sync_queue, OFFLINE_SYNC_QUEUE)
        )
        if pipelines is None:
            self.processor = WindowProcessor.from_config(
                self.stream, args.inference, clock=lambda: 0.0
            )
        else:
            self.processor = WindowProcessor(pipelines, self.stream, clock=lambda: 0.0)
        self.pipelines = self.processor.pipelines
        if self.pipelines.note:
            print(self.pipelines.note, flush=True)
        use_depth = self.processor.depth_source == "camera"
        if use_depth:
            self.conns[DEPTH] = bag.connections(DEPTH, args.depth_topic)
        # inputs recorded as CompressedImage (image_transport's compressed/compressedDepth)
        self.compressed = {
            role
            for role in (RGB, MASKS, DEPTH)
            if role in self.conns and self.conns[role][0].msgtype == COMPRESSED_IMAGE
        }
        self.frame_ids = FrameIdCheck()
        # 4. the node's stream front: sync, sample to the model rate, window
        self.front = StreamFront(
            self.stream,
            self.processor.num_frames,
            use_depth,
            to_frame=self._to_frame,
            on_error=self._conversion_error,
            offline=True,
        )
        self.role_of = {c.id: role for role, conns in self.conns.items() for c in conns}

    def run(self) -> dict:
        args, bag = self.args, self.bag
        selected = [c for conns in self.conns.values() for c in conns]
        start_ns, stop_ns = self.time_range
        total = bag.estimate_count(selected, start_ns, stop_ns)
        # 5. read, process and write, into a staged bag (and video)
        video = None
        if args.video is not None:
            from amodal_ros.pipeline.video import OverlayVideo

            # paced by the results' stamps: the model's rate, a slower camera's (the sampler
            # only drops frames; a 4 fps camera's video played at 8 fps ran twice as fast), or
            # one frame per window with publish_frames latest
            video = OverlayVideo(args.video, fps=None)
        started = time.perf_counter()
        videos: list = []

        def close_videos() -> None:  # once the bag is closed, just before its rename
            if video is not None:
                videos.extend(video.close())

        made = {  # the bag's own record (RESULTS_MARKER), written as it is closed
            "written_by": f"amodal-ros replay {__version__}",
            "bag": str(Path(args.bag).resolve()),
            "recording": bag.recording,
            "checkpoint": str(self.stream.checkpoint),
            "options": output_options(args),
        }
        try:
            with staged_bag(
                args.out,
                args.storage,
                args.overwrite,
                args.ros_distro,
                results=made,
                before_rename=close_videos,
            ) as writer:
                info_type = self.conns[INFO][0].msgtype if INFO in self.conns else None
                self.out = ResultWriter(
                    writer,
                    bag,
                    info_type,
                    self.processor.completer is not None,
                    self.stream.tolerance_ns,
                    video,
                )
                if args.copy_inputs:
                    self.out.copy_connections(selected)
                self._camera_info_before(start_ns)
                self._read_all(selected, start_ns, stop_ns, total, started)
                # replay-many replays a bag whose windows failed, by this when its summary
                # lost the bag's record
                made["windows_failed"] = self.processor.errors
        except BaseException:
            if video is not None:
                video.abort()
            raise
        if video is not None:  # the bag is final too: an earlier run's videos can go
            video.keep()
        # 7. summary
        summary = self._summary(time.perf_counter() - started)
        self._warn(summary, total)
        summary["videos"] = [str(v) for v in videos]
        print(format_summary(summary), flush=True)
        if self.pipelines.note:
            print(self.pipelines.note, flush=True)
        return summary

    def _warn(self, summary: dict, total: int) -> None:
        """Say, once each, what the summary's numbers alone would hide."""
        args = self.args
        if summary["frames_sampled"] and not self.frames_with_objects:
            log.warning(
                "the mask topic %s never contains an object in %s (every label image is 0): "
                "nothing was segmented; check the segmenter's output topic",
                args.mask_topic,
                args.bag,
            )
        elif summary["results_written"] and not summary["windows_model"]:
            log.warning(_no_model_result(summary))
        if args.start is None and args.end is None and self.read < total:
            log.warning(
                "read %d of the %d messages the index of %s counts on the topics read: the "
                "file is damaged past some point? (`mcap recover` rebuilds an MCAP file, "
                "sqlite3's `.recover` a database); the results cover what was read",
                self.read,
                total,
                args.bag,
            )
        results = summary["results_written"]
        infos = summary["messages_written"].get(topics.CAMERA_INFO_OUT_TOPIC)
        if infos is not None and infos < results:
            why = (
                f"it recorded no message{' before --end' if args.end is not None else ''}: "
                "their 3D extents have none (EXTENT_NO_CAMERA_INFO)"
                if not self.read_by_role[INFO]
                else "none was stamped within --sync-tolerance of their frames (a driver that "
                "publishes it once, or on its own clock?); their 3D extents used the latest one"
            )
            log.warning(
                "%d of %d results have no %s from %s: %s",
                results - infos,
                results,
                topics.CAMERA_INFO_OUT_TOPIC,
                args.camera_info_topic,
                why,
            )
        if summary["repeated_stamps"]:
            log.warning(
                "%d frames of %s repeated a header stamp already taken and have no result "
                "(a stamp is a frame's identity): a publisher that leaves stamps unset, or "
                "publishes one image twice? Restamp the bag's messages with their log times",
                summary["repeated_stamps"],
                args.bag,
            )
        if summary["stamped_behind"]:
            log.warning(
                "%d images of %s were stamped before a frame already paired and have no result "
                "(frames leave in stamp order): their header stamps went back, e.g. a camera "
                "clock stepped back or stamps that run backwards. Restamp the bag's messages "
                "with their log times",
                summary["stamped_behind"],
                args.bag,
            )

    def _camera_info_before(self, start_ns: int | None) -> None:
        """The last CameraInfo before --start: a static or latched publisher records one as
        the bag begins, and a replay from later had none (every extent EXTENT_NO_CAMERA_INFO)."""
        if start_ns is None or INFO not in self.conns:
            return
        last = None
        for last in self.bag.messages(self.conns[INFO], None, start_ns):  # noqa: B007
            pass
        if last is not None:
            self._message(*last)

    def _read_all(self, selected, start_ns, stop_ns, total, started) -> None:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        bar = tqdm(
            total=total, desc="replay", unit="msg", disable=not self.args.progress, leave=False
        )
        with bar, logging_redirect_tqdm():
            t0 = time.perf_counter()
            for conn, log_ns, raw in self.bag.messages(selected, start_ns, stop_ns):
                self.timing["read"] += time.perf_counter() - t0
                self._message(conn, log_ns, raw)  # a window runs in here
                # after every message, before the update draws it: a window runs inside the
                # message that completes a frame, of any topic (a rate kept from the message
                # before showed hundreds of frames/s after it)
                elapsed = max(1e-9, time.perf_counter() - started)
                rate = self.front.frames_in / elapsed
                bar.set_postfix({"frames/s": f"{rate:.2f}"}, refresh=False)
                bar.update()
                t0 = time.perf_counter()
            # 6. end of bag: frames still waiting for partners, and frames sampled after the
            # last window, get answered too (one more window; the bar said 91 % meanwhile)
            bar.set_description("replay: the bag's last frames")
            bar.refresh()
            self.pending_at_end = self.front.sync.pending()  # before the flush empties them
            for window in self.front.flush():
                self._process(window)
        if self.same_failures and not self.front.frames_sampled:
            way, count = self.same_failures.most_common(1)[0]
            text = self.failure_text[way]
            raise InputError(f"no frame of {self.args.bag} could be used ({count}x): {text}")
        if not self.front.frames_in:  # an empty result bag would pass for a finished replay
            sync = self.front.sync
            self._say_why_nothing_paired(sync.inputs)
            unmatched = {self.topic_of[k]: sync.unmatched[k] for k in sync.inputs}
            agree = (
                "be equal (--sync-mode exact)"
                if not self.stream.tolerance_ns
                else f"agree within --sync-tolerance ({self.stream.sync_tolerance} s)"
            )
            raise InputError(
                f"no frame of {self.args.bag} was synchronised ({self.read} messages read; "
                f"unmatched per topic: {unmatched}): the image, mask and depth stamps must "
                f"{agree}. Check that "
                "the segmenter stamps its masks with the image's header stamp, and --start / "
                "--end against the bag's span; no output was written"
            )

    def _say_why_nothing_paired(self, inputs) -> None:
        """Raise InputError naming a cause of an empty replay other than stamps: no message in
        the range, a topic with none, or a topic none of whose messages could be decoded."""
        span = _range_words(self.args.start, self.args.end)
        if not any(self.read_by_role[k] for k in inputs):
            raise InputError(
                f"no frame of {self.args.bag} was synchronised: no message of the input topics"
                f"{span}; no output was written"
            )
        counted = {  # the topics nothing was read from, and what the bag's index counts there
            self.topic_of[k]: sum(c.msgcount for c in self.conns[k])
            for k in inputs
            if not self.read_by_role[k]
        }
        silent = list(counted)
        if silent and not span and any(counted.values()):
            listed = ", ".join(f"{n} on {topic}" for topic, n in counted.items() if n)
            raise InputError(
                f"no frame of {self.args.bag} was synchronised: the bag's index "
                f"(metadata.yaml) counts messages ({listed}) of which none could be read from "
                "its storage file: the two disagree (a topic's type edited in metadata.yaml, "
                "or a damaged file; `ros2 bag reindex` rewrites the index); no output was "
                "written"
            )
        if silent:  # nothing to pair with: no stamp problem
            raise InputError(
                f"no frame of {self.args.bag} was synchronised: {', '.join(silent)} "
                f"recorded no message{span} ({self.read} messages read on the other "
                "topics); record the segmenter's output with the camera's, or name the "
                "topic that has them; no output was written"
            )
        garbled = [self.topic_of[k] for k in inputs if not self.decoded_by_role[k]]
        if garbled:
            raise InputError(
                f"no frame of {self.args.bag} was synchronised: no message of "
                f"{', '.join(garbled)} could be deserialised (the warnings above say why: a "
                "corrupt recording, or another message definition than the type's); no "
                "output was written"
            )

    def _check_rgb_compressed(self) -> None:
        msgtype = self.conns[RGB][0].msgtype
        if self.args.compressed and msgtype != COMPRESSED_IMAGE:
            raise InputError(
                f"--compressed was given but {self.args.rgb_topic} is {msgtype}, not "
                f"{COMPRESSED_IMAGE}"
            )

    def _message(self, conn, log_ns: int, raw) -> None:
        from amodal_ros.interface.messages import CAMERA_INFOS_KEPT, stamp_ns

        self.read += 1
        role, bag, out = self.role_of[conn.id], self.bag, self.out
        self.read_by_role[role] += 1
        copy = out.copies(conn)
        if copy and bag.is_ros2:
            out.copy(conn, log_ns, raw)  # a faithful copy, corrupt or not
        # The bag boundary: a message that cannot be decoded is reported, counted and skipped.
        try:
            needs_cdr = role == INFO or (copy and not bag.is_ros2)
            cdr = bag.to_cdr(raw, conn.msgtype) if needs_cdr else raw
            msg = bag.deserialize(raw, conn.msgtype)
            stamp = stamp_ns(msg.header)
        except Exception as err:  # rosbags raises many types for corrupt bytes
            what = f"a message of {conn.topic} at log time"
            self._report("deserialize", what, conn.topic, log_ns, err)
            return
        self.decoded_by_role[role] += 1
        if copy and not bag.is_ros2:
            out.copy(conn, log_ns, cdr)
        if role == INFO:
            out.camera_info(stamp, bytes(cdr))
            self.camera_infos[stamp] = msg
            while len(self.camera_infos) > CAMERA_INFOS_KEPT:
                self.camera_infos.popitem(last=False)
            return
        if role == RGB:
            out.rgb_logged(stamp, log_ns)
        t0 = time.perf_counter()
        windows = self.front.add(role, stamp, msg)
        dropped = self.front.buffer.pop_dropped()
        self.timing["stream"] += time.perf_counter() - t0
        for window in windows:
            self._process(window)
        # after the windows: a restart's first is the old stream's last, which holds them
        self.processor.forget(dropped)

    def _to_frame(self, matched: dict):
        from amodal_ros.interface.messages import camera_info_for, frame_from_messages

        info = camera_info_for(self.camera_infos, matched["stamp_ns"])  # the one it will get
        for warning in self.frame_ids.check({**matched, "camera_info": info}):
            log.warning("%s", warning)
        frame = frame_from_messages(matched, self.compressed)
        self.frames_with_objects += bool(frame.labels.any())
        for held in self.held:  # a frame works: the failures before it were the frames' own
            log.warning(*held)
        self.held = []
        return frame

    def _conversion_error(self, stamp: int, err: Exception) -> None:
        from amodal_ros.interface.convert import failure_kind

        inputs = getattr(err, "inputs", ()) or (RGB,)  # the culprit(s) named by the converter
        topic = "+".join(self.topic_of[role] for role in inputs)
        text = f"{topic}: {err}"
        way = failure_kind(inputs, err)
        self.same_failures[way] += 1
        self.failure_text.setdefault(way, text)
        fail_after = self.args.fail_after
        if fail_after and not self.front.frames_sampled and self.same_failures[way] >= fail_after:
            # nothing has worked yet and every frame fails alike: the bag, not a frame, is bad
            raise InputError(
                f"the first {fail_after} frames all failed the same way, so the bag cannot be "
                f"replayed: {text}"
            )
        self._report("convert", f"the frame of {topic} at stamp", topic, stamp, err)

    def _report(self, reason: str, what: str, topic: str, ns: int, err: Exception) -> None:
        self.skipped[reason] += 1
        seconds = f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
        text = f"{type(err).__name__}: {err}"
        n = self.skipped[reason]
        if n <= WARNINGS_IN_FULL or n % WARNING_EVERY == 0:  # rate-limited, with the count
            more = f" ({n} skipped for {reason} so far)" if n > WARNINGS_IN_FULL else ""
            warning = ("skipped %s %s s (%s: %s)%s", what, seconds, reason, text, more)
            if reason == "convert" and self.args.fail_after and not self.front.frames_sampled:
                self.held.append(warning)  # logged once a frame works; else one error says it
            else:
                log.warning(*warning)
        if len(self.errors) < MAX_ERROR_REPORTS:
            key = "stamp_ns" if reason == "convert" else "log_time_ns"
            self.errors.append({"reason": reason, "topic": topic, key: ns, "error": text})

    def _process(self, window) -> None:
        from amodal_ros.interface.messages import camera_info_for

        for frame in window.frames:  # a frame's own CameraInfo may be logged after its images
            frame.camera_info = camera_info_for(self.camera_infos, frame.stamp_ns)
        t0 = time.perf_counter()
        results = self.processor.process(window)
        self.timing["model"] += time.perf_counter() - t0
        self.front.observe(results)  # track_ids: where hidden objects are
        self.windows += 1
        for result in results:
            self.out.result(result)

    def _summary(self, seconds: float) -> dict:
        front, name, cfg = self.front, self.topic_of, self.pipelines.config
        seconds = max(seconds, 1e-9)
        timing = self.timing + self.out.timing
        return {
            "bag": str(self.args.bag),
            "recording": self.bag.recording,  # replay-many tells a moved bag from another
            "out": str(self.args.out),
            "storage": self.args.storage,
            "model": self.pipelines.describe(),
            "embedded_model": self.pipelines.is_embedded,
            "checkpoint": self.stream.checkpoint,
            "conditioning_mode": cfg.conditioning_mode,
            "conditioning_mode_reason": self.pipelines.mode_reason,
            "working_size_hw": [cfg.height, cfg.width],
            "sampling": {
                "preset": cfg.preset or "custom",
                "unet_steps": cfg.num_steps,
                "student": cfg.student,
            },
            "stream": {
                k: getattr(self.stream, k) for k in ("frame_rate", "stride", "publish_frames")
            },
            "window": cfg.num_frames,
            "messages_read": self.read,
            "frames_synchronised": front.frames_in,
            "frames_sampled": front.frames_sampled,
            "stream_restarts": {
                "gap": front.restarts[GAP],
                "stamp_back": front.restarts[BACK],
                "size": front.restarts[SIZE],
            },
            "windows": self.windows,
            "windows_model": self.processor.model_windows,
            "frames_with_objects": self.frames_with_objects,
            "windows_failed": self.processor.errors,
            "results_written": self.out.results,
            "messages_written": dict(self.out.written),
            "skipped": {k: self.skipped[k] for k in ("deserialize", "convert")},
            "unmatched": {name[k]: front.sync.unmatched[k] for k in front.sync.inputs},
            # frames whose stamp repeated a frame's already taken (stamps left unset)
            "repeated_stamps": front.sync.repeated[RGB] + front.sampler.repeated,
            # images stamped before a frame already paired (stamps that went back)
            "stamped_behind": front.sync.behind,
            "pending_at_end": {name[k]: n for k, n in self.pending_at_end.items()},
            "seconds": round(seconds, 3),
            "frames_per_s": front.frames_in / seconds,
            "sampled_frames_per_s": front.frames_sampled / seconds,
            "timing": {k: round(v, 4) for k, v in timing.items()},
            "latency": 0.0,
            "errors": self.errors,
        }


def _range_words(start: float | None, end: float | None) -> str:
    """Where in the bag a replay read, for a message about what it found there."""
    if start is not None and end is not None:
        return " between --start and --end"
    if start is not None:
        return " after --start"
    return " before --end" if end is not None else ""


# replay options that say which bag, where or how fast, not what its output holds: a later run
# may change them and still skip the bags that are done (output_options)
RUN_ONLY = (
    "bag",
    "out",
    "overwrite",
    "progress",
    "fail_after",  # an output exists only when its bag got past it
    "compressed",  # a check of the RGB topic's type, which is read from the bag anyway
    "inference.engine_cache",
    "inference.max_batch_objects",  # a speed knob: objects per UNet call
    # where and on what the same model runs (a CPU run finished on a GPU): the noise and
    # rounding differ, not what the output is
    "inference.device",
    "inference.dtype",
    "inference.unet_backend",
    "stream.depth_backend",
)


def output_options(args: ReplayArgs) -> dict:
    """The options of a bag's replay that shape its output, flat and as JSON reads them back
    ({"storage": "mcap", "stream.frame_rate": 7.5, ..., "video": true}): each bag's record in
    summary.json and the results bag's RESULTS_MARKER keep them, and a later replay-many
    skips a done bag only when its own are the same."""
    flat: dict = {}
    for f in fields(ReplayArgs):
        value = getattr(args, f.name)
        if is_dataclass(value):  # stream, inference
            flat.update({f"{f.name}.{k}": v for k, v in asdict(value).items()})
        else:
            flat[f.name] = value
    flat["video"] = args.video is not None  # its path is the bag's own
    kept = {k: v for k, v in flat.items() if k not in RUN_ONLY}
    return json.loads(json.dumps(kept, default=str))
