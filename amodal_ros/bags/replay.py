"""`amodal-ros replay`: a recorded bag through the node's streaming pipeline, offline.

Reads a rosbag2 (sqlite3 or MCAP) or ROS 1 bag with rosbags, feeds its messages in log-time
order to the same `StreamFront` (stamp synchronisation, frame-rate sampling, windows) and
`WindowProcessor` the node uses, synchronously, and writes a rosbag2 with the results:

    /amodal/objects      amodal_ros/AmodalObjectArray per published frame
    /amodal/overlay      sensor_msgs/Image rgb8 overlay
    /amodal/completion   sensor_msgs/Image rgb8 completed objects (with a stage-2 checkpoint)
    /amodal/camera_info  the input CameraInfo of the frame's stamp (within the sync tolerance)
    + the input topics with --copy-inputs (raw messages, their log times)

Differences from the live node, all for an exact, complete and reproducible answer:
  * nothing is dropped: every window runs (no worker queue, no deadline);
  * output messages are logged at the log time of their frame's RGB message, and `latency` is
    0 (there is no arrival clock offline), so two runs with the same seed write
    byte-identical bags;
  * at the end of the bag, frames sampled after the last window get one more window, so with
    the default `--publish-frames new` every sampled frame gets exactly one result.

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

import logging
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from amodal_ros.bags import topics
from amodal_ros.bags.output import STORAGES, check_output, staged_bag
from amodal_ros.bags.typestore import (
    AMODAL_OBJECT_ARRAY,
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    amodal_typestore,
)
from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.imports import require
from amodal_ros.pipeline.stream import DEPTH, MASKS, RGB

log = logging.getLogger("amodal_ros.replay")

CAMERA_INFO_HISTORY = 256  # CameraInfo messages kept to pair with (later) results
RGB_LOG_TIMES_KEPT = 4096  # RGB stamps remembered until their results are written
OFFLINE_SYNC_QUEUE = 300  # messages per input waiting for partners (10 s at 30 fps)
MAX_ERROR_REPORTS = 100  # skipped messages listed in the summary (all are counted)

INFO = "camera_info"  # a replay-only input role beside StreamFront's RGB, MASKS, DEPTH


@dataclass
class ReplayArgs:
    """What to replay and how. `stream` and `inference` are the node's configs.

    `stream.checkpoint` empty or 'embedded': the embedded synthetic-trained model. `inference`
    None: defaults, at the embedded model's 32x64 working size when it is used.
    """

    bag: Path
    out: Path
    stream: StreamConfig = field(default_factory=lambda: StreamConfig(publish_frames="new"))
    inference: InferenceConfig | None = None
    rgb_topic: str = topics.RGB_TOPIC
    depth_topic: str = topics.DEPTH_TOPIC
    mask_topic: str = topics.MASK_TOPIC
    camera_info_topic: str = topics.CAMERA_INFO_TOPIC  # "" = do not pass CameraInfo through
    compressed: bool = False  # RGB as CompressedImage (also detected from the topic's type)
    start: float | None = None  # s after the bag's first message
    end: float | None = None  # s after the bag's first message
    storage: str = "sqlite3"
    copy_inputs: bool = False
    overwrite: bool = False
    progress: bool = True
    video: Path | None = None  # also write the overlays as VIDEO.mp4 (+ .gif when short)


def run(args: ReplayArgs) -> dict:
    """Replay `args.bag` into the rosbag2 `args.out`; prints and returns the summary.

    Raises:
        InputError: missing or unusable bag, topic or output path (before any model loads).
        CheckpointError: a checkpoint folder that cannot be loaded.
    """
    return _Replay(args).run()


def format_summary(summary: dict) -> str:
    """A few lines for the terminal."""
    s = summary
    skipped = ", ".join(f"{k} {v}" for k, v in s["skipped"].items()) or "none"
    unmatched = ", ".join(f"{k} {v}" for k, v in s["unmatched"].items() if v) or "none"
    written = ", ".join(f"{k} {v}" for k, v in s["messages_written"].items())
    return "\n".join(
        [
            f"replayed {s['bag']} -> {s['out']} ({s['storage']}) in {s['seconds']:.1f} s",
            f"  messages read {s['messages_read']}; frames synchronised "
            f"{s['frames_synchronised']}, sampled {s['frames_sampled']}; windows "
            f"{s['windows']} ({s['windows_model']} through the model, "
            f"{s['windows_failed']} failed); results written {s['results_written']}",
            f"  skipped: {skipped}; unmatched: {unmatched}",
            f"  throughput: {s['frames_per_s']:.2f} input frames/s, "
            f"{s['sampled_frames_per_s']:.2f} sampled frames/s (latency is 0 in replay)",
            f"  written: {written}",
        ]
    )


class _Replay:
    def __init__(self, args: ReplayArgs):
        self.args = args
        self.topic_of = {RGB: args.rgb_topic, MASKS: args.mask_topic, DEPTH: args.depth_topic}
        self.skipped: Counter[str] = Counter()
        self.errors: list[dict] = []
        self.timing = Counter()
        self.written: Counter[str] = Counter()
        self.read = self.windows = self.windows_model = self.results = 0
        self.infos: deque = deque(maxlen=CAMERA_INFO_HISTORY)  # (stamp, CDR) of CameraInfo
        self.info_waiting: list[int] = []  # result stamps whose CameraInfo may still come
        self.rgb_log_time: OrderedDict[int, int] = OrderedDict()  # RGB stamp -> log time

    def run(self) -> dict:
        args = self.args
        # 1. check arguments and the output path (before reading or loading anything)
        self._check_args()
        require("rosbags", "bag replay")
        from rosbags.highlevel import AnyReader, AnyReaderError

        self.store = amodal_typestore()
        try:
            reader = AnyReader([Path(args.bag)], default_typestore=self.store)
        except (AnyReaderError, FileNotFoundError) as err:
            raise InputError(f"cannot open bag {args.bag}: {err}") from None
        try:
            reader.open()
        except AnyReaderError as err:
            raise InputError(f"cannot read bag {args.bag}: {err}") from None
        self.reader = reader
        try:
            return self._run()
        finally:
            reader.close()

    def _run(self) -> dict:

        from amodal_ros.pipeline.stream import StreamFront
        from amodal_ros.ros.messages import ResultMessages, rosbags_kit

        args = self.args
        # 2. input topics (RGB and masks now; depth once the model says whether it needs it)
        self.conns = {
            RGB: self._topic(RGB, args.rgb_topic),
            MASKS: self._topic(MASKS, args.mask_topic),
        }
        self.compressed = self._check_rgb_type()
        if args.camera_info_topic:
            if args.camera_info_topic in self.reader.topics:
                self.conns[INFO] = self._topic(INFO, args.camera_info_topic)
            else:
                log.warning(
                    "camera info topic %s is not in %s: no %s output",
                    args.camera_info_topic,
                    args.bag,
                    topics.CAMERA_INFO_OUT_TOPIC,
                )

        # 3. models (the embedded one without a checkpoint)
        self.processor = self._processor()
        use_depth = self.processor.depth_source == "camera"
        if use_depth:
            self.conns[DEPTH] = self._topic(DEPTH, args.depth_topic)

        # 4. the node's stream front: sync, sample to the model rate, window
        self.front = StreamFront(
            self.stream,
            self.processor.num_frames,
            use_depth,
            to_frame=self._to_frame,
            on_error=self._conversion_error,
        )
        self.messages = ResultMessages(rosbags_kit(self.store))
        self.role_of = {c.id: role for role, conns in self.conns.items() for c in conns}
        selected = [c for conns in self.conns.values() for c in conns]
        start_ns, stop_ns = self._range()
        total = self._estimate_count(selected, start_ns, stop_ns)

        # 5. read, process and write, into a staged bag (and video)
        started = time.perf_counter()
        self.video = None
        if args.video is not None:
            from amodal_ros.bags.video import OverlayVideo

            per_window = self.stream.publish_frames == "latest"  # one frame per stride
            fps = self.stream.frame_rate / (self.stream.stride if per_window else 1)
            self.video = OverlayVideo(args.video, fps=fps)
        try:
            seconds = self._read_process_write(selected, start_ns, stop_ns, total, started)
        except BaseException:
            if self.video is not None:
                self.video.abort()
            raise
        videos = self.video.close() if self.video is not None else []

        # 7. summary
        summary = self._summary(seconds)
        summary["videos"] = [str(v) for v in videos]
        print(format_summary(summary), flush=True)
        if self.embedded:
            from amodal_ros.models.embedded import NOTE

            print(NOTE, flush=True)
        return summary

    def _read_process_write(self, selected, start_ns, stop_ns, total, started) -> float:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        args = self.args
        with staged_bag(args.out, args.storage, args.overwrite) as writer:
            self.writer = writer
            self._add_output_connections()
            bar = tqdm(
                total=total, desc="replay", unit="msg", disable=not args.progress, leave=False
            )
            with bar, logging_redirect_tqdm():
                messages = self.reader.messages(connections=selected, start=start_ns, stop=stop_ns)
                t0 = time.perf_counter()
                for conn, log_ns, raw in messages:
                    self.timing["read"] += time.perf_counter() - t0
                    self._message(conn, log_ns, raw)
                    bar.update()
                    if self.role_of[conn.id] == RGB:
                        elapsed = max(1e-9, time.perf_counter() - started)
                        rate = self.front.frames_in / elapsed
                        bar.set_postfix({"frames/s": f"{rate:.2f}"}, refresh=False)
                    t0 = time.perf_counter()
                # 6. end of bag: frames still waiting for partners, and frames sampled after
                # the last window, get answered too (one more window)
                for window in self.front.flush():
                    self._process(window)
            return time.perf_counter() - started

    # -- 1-3: arguments, topics, models -------------------------------------------------------

    def _check_args(self) -> None:
        args = self.args
        bag, out = Path(args.bag), Path(args.out)
        if not bag.exists():
            raise InputError(f"input bag {bag} does not exist")
        if args.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {args.storage!r}")
        if out.resolve() == bag.resolve():
            raise InputError(f"--out {out} is the input bag; choose another output path")
        check_output(out, args.overwrite)
        if args.start is not None and args.start < 0:
            raise ValueError(f"start must be >= 0 s, got {args.start}")
        if args.start is not None and args.end is not None and args.end <= args.start:
            raise ValueError(f"end ({args.end} s) must be after start ({args.start} s)")
        names = {
            "rgb_topic": args.rgb_topic,
            "mask_topic": args.mask_topic,
            "depth_topic": args.depth_topic,
        }
        if len(set(names.values())) < len(names):
            raise ValueError(f"input topics must differ, got {names}")

    def _topic(self, role: str, topic: str):
        available = self.reader.topics
        if topic not in available:
            have = ", ".join(
                f"{name} ({info.msgtype}, {info.msgcount} msgs)"
                for name, info in sorted(available.items())
            )
            raise InputError(
                f"{role} topic {topic} is not in {self.args.bag}; the bag has: {have or 'nothing'}"
            )
        info = available[topic]
        expected = {
            RGB: (IMAGE, COMPRESSED_IMAGE),
            MASKS: (IMAGE,),
            DEPTH: (IMAGE,),
            INFO: (CAMERA_INFO,),
        }[role]
        if info.msgtype not in expected:
            raise InputError(
                f"{role} topic {topic} has type {info.msgtype}; expected {' or '.join(expected)}"
            )
        return list(info.connections)

    def _check_rgb_type(self) -> bool:
        msgtype = self.conns[RGB][0].msgtype
        if self.args.compressed and msgtype != COMPRESSED_IMAGE:
            raise InputError(
                f"--compressed was given but {self.args.rgb_topic} is {msgtype}, not "
                f"{COMPRESSED_IMAGE}"
            )
        return msgtype == COMPRESSED_IMAGE

    def _processor(self):
        from amodal_ros.pipeline.stream import WindowProcessor

        args = self.args
        stream = args.stream
        from amodal_ros.models import embedded

        self.embedded = stream.checkpoint in ("", embedded.NAME)
        if self.embedded:
            print(embedded.NOTE, flush=True)
            stream = stream.replace(checkpoint=embedded.NAME)
        inference = args.inference
        if inference is None:
            inference = InferenceConfig(**embedded.settings_for(stream.checkpoint))
        # Offline, a topic logged late (a slow segmenter) must not cost frames: wait for
        # partners much longer than live (bounded: a missing topic holds at most this many).
        stream = stream.replace(sync_queue=max(stream.sync_queue, OFFLINE_SYNC_QUEUE))
        self.stream, self.inference = stream, inference
        exact = stream.sync_mode == "exact"
        self.tolerance_ns = 0 if exact else round(stream.sync_tolerance * 1e9)
        # A constant clock: no deadline can pass and every latency is 0, so output is
        # reproducible byte for byte (and last_timing is all zeros).
        return WindowProcessor.from_config(stream, inference, clock=lambda: 0.0)

    def _range(self) -> tuple[int | None, int | None]:
        args, first = self.args, self.reader.start_time
        start = None if args.start is None else first + round(args.start * 1e9)
        stop = None if args.end is None else first + round(args.end * 1e9)
        return start, stop

    def _estimate_count(self, conns, start_ns, stop_ns) -> int:
        total = sum(c.msgcount for c in conns)
        first, last = self.reader.start_time, self.reader.end_time
        if (start_ns is None and stop_ns is None) or last <= first:
            return total
        lo, hi = max(first, start_ns or first), min(last, stop_ns or last)
        return max(0, round(total * (hi - lo) / (last - first)))

    # -- 5: messages ------------------------------------------------------------------------

    def _add_output_connections(self) -> None:
        w, store = self.writer, self.store
        self.out = {
            topics.OBJECTS_TOPIC: w.add_connection(
                topics.OBJECTS_TOPIC, AMODAL_OBJECT_ARRAY, typestore=store
            ),
            topics.OVERLAY_TOPIC: w.add_connection(topics.OVERLAY_TOPIC, IMAGE, typestore=store),
        }
        if self.processor.completer is not None:
            self.out[topics.COMPLETION_TOPIC] = w.add_connection(
                topics.COMPLETION_TOPIC, IMAGE, typestore=store
            )
        if INFO in self.conns:
            msgtype = self.conns[INFO][0].msgtype
            self.out[topics.CAMERA_INFO_OUT_TOPIC] = w.add_connection(
                topics.CAMERA_INFO_OUT_TOPIC, msgtype, typestore=self._defs(msgtype)
            )
        self.copies = {}
        if self.args.copy_inputs:
            added = {}
            for conns in self.conns.values():
                for c in conns:
                    key = (c.topic, c.msgtype)
                    if key not in added:
                        qos = getattr(c.ext, "offered_qos_profiles", ())
                        added[key] = w.add_connection(
                            c.topic,
                            c.msgtype,
                            typestore=self._defs(c.msgtype),
                            offered_qos_profiles=qos,
                        )
                    self.copies[c.id] = added[key]

    def _defs(self, msgtype: str):
        """Typestore whose definition of `msgtype` goes into the output bag: the input bag's
        for a rosbag2, ours (ROS 2 field names) for standard types of a ROS 1 bag."""
        if not self.reader.is2 and msgtype in self.store.fielddefs:
            return self.store
        return self.reader.typestore

    def _cdr(self, raw, msgtype: str):
        # ROS 1 -> CDR with the same definitions `_defs` puts in the output bag (rosbags'
        # reader typestore of a ROS 1 bag keeps Header.seq, which its converter skips again).
        return raw if self.reader.is2 else self._defs(msgtype).ros1_to_cdr(raw, msgtype)

    def _message(self, conn, log_ns: int, raw) -> None:
        from amodal_ros.ros.messages import stamp_ns

        self.read += 1
        role, is2 = self.role_of[conn.id], self.reader.is2
        copy = self.copies.get(conn.id)
        if copy is not None and is2:
            self._write(copy, conn.topic, log_ns, raw)  # a faithful copy, corrupt or not
        # The bag boundary: a message that cannot be decoded is reported, counted and skipped.
        try:
            needs_cdr = role == INFO or (copy is not None and not is2)
            cdr = self._cdr(raw, conn.msgtype) if needs_cdr else raw
            msg = self.reader.deserialize(raw, conn.msgtype)
            stamp = stamp_ns(msg.header)
        except Exception as err:  # rosbags raises many types for corrupt bytes
            what = f"a message of {conn.topic} at log time"
            self._report("deserialize", what, conn.topic, log_ns, err)
            return
        if copy is not None and not is2:
            self._write(copy, conn.topic, log_ns, cdr)
        if role == INFO:
            self._camera_info_arrived(stamp, bytes(cdr))
            return
        if role == RGB:
            self.rgb_log_time[stamp] = log_ns
            while len(self.rgb_log_time) > RGB_LOG_TIMES_KEPT:
                self.rgb_log_time.popitem(last=False)
        t0 = time.perf_counter()
        windows = self.front.add(role, stamp, msg)
        self.processor.forget(self.front.buffer.pop_dropped())
        self.timing["stream"] += time.perf_counter() - t0
        for window in windows:
            self._process(window)

    def _to_frame(self, matched: dict):
        from amodal_ros.ros.messages import frame_from_messages

        return frame_from_messages(matched, self.compressed)

    def _conversion_error(self, stamp: int, err: Exception) -> None:
        inputs = getattr(err, "inputs", ()) or (RGB,)  # the culprit(s) named by the converter
        topic = "+".join(self.topic_of[role] for role in inputs)
        self._report("convert", f"the frame of {topic} at stamp", topic, stamp, err)

    def _report(self, reason: str, what: str, topic: str, ns: int, err: Exception) -> None:
        self.skipped[reason] += 1
        seconds = f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
        text = f"{type(err).__name__}: {err}"
        log.warning("skipped %s %s s (%s: %s)", what, seconds, reason, text)
        if len(self.errors) < MAX_ERROR_REPORTS:
            key = "stamp_ns" if reason == "convert" else "log_time_ns"
            self.errors.append({"reason": reason, "topic": topic, key: ns, "error": text})

    # -- windows and results ----------------------------------------------------------------

    def _process(self, window) -> None:
        t0 = time.perf_counter()
        results = self.processor.process(window)
        self.timing["model"] += time.perf_counter() - t0
        self.windows += 1
        self.windows_model += bool(window.full)
        for result in results:
            self._publish(result)

    def _publish(self, result) -> None:
        from amodal_ros.ros.messages import overlay_image

        t0 = time.perf_counter()
        stamp, m, store = result.frame.stamp_ns, self.messages, self.store
        overlay = overlay_image(result)
        if self.video is not None:
            self.video.add(overlay)
        out = [
            (topics.OBJECTS_TOPIC, store.serialize_cdr(m.array(result), AMODAL_OBJECT_ARRAY)),
            (
                topics.OVERLAY_TOPIC,
                store.serialize_cdr(m.image(result.frame, overlay, "rgb8"), IMAGE),
            ),
        ]
        if topics.COMPLETION_TOPIC in self.out:
            out.append((topics.COMPLETION_TOPIC, store.serialize_cdr(m.completion(result), IMAGE)))
        if topics.CAMERA_INFO_OUT_TOPIC in self.out:
            info = self._camera_info(stamp)
            if info is None:  # it may still come (same stamp, later in the bag)
                self.info_waiting.append(stamp)
            else:
                out.append((topics.CAMERA_INFO_OUT_TOPIC, info))
        self.timing["publish"] += time.perf_counter() - t0
        for topic, data in out:
            self._write(self.out[topic], topic, self._log_time(stamp), data)
        self.results += 1

    def _log_time(self, stamp: int) -> int:
        """Results are logged when their RGB message was: the bag stays one timeline even when
        header stamps use another clock (hardware or sim time)."""
        return self.rgb_log_time.get(stamp, stamp)

    def _camera_info(self, stamp: int) -> bytes | None:
        """CDR of the kept CameraInfo nearest to `stamp` within the sync tolerance, or None."""
        if not self.infos:
            return None
        info_stamp, data = min(self.infos, key=lambda item: abs(item[0] - stamp))
        return data if abs(info_stamp - stamp) <= self.tolerance_ns else None

    def _camera_info_arrived(self, stamp: int, data: bytes) -> None:
        self.infos.append((stamp, data))
        waiting, self.info_waiting = self.info_waiting, []
        for result_stamp in waiting:
            if stamp < result_stamp - self.tolerance_ns:
                self.info_waiting.append(result_stamp)  # its CameraInfo may still come
            elif abs(stamp - result_stamp) <= self.tolerance_ns:
                topic = topics.CAMERA_INFO_OUT_TOPIC
                info = self._camera_info(result_stamp)
                self._write(self.out[topic], topic, self._log_time(result_stamp), info)
            # else: CameraInfo has passed the result's stamp without one for it: none is written

    def _write(self, conn, topic: str, stamp: int, data) -> None:
        t0 = time.perf_counter()
        self.writer.write(conn, stamp, data)
        self.written[topic] += 1
        self.timing["write"] += time.perf_counter() - t0

    def _summary(self, seconds: float) -> dict:
        front = self.front
        name = self.topic_of
        seconds = max(seconds, 1e-9)
        return {
            "bag": str(self.args.bag),
            "out": str(self.args.out),
            "storage": self.args.storage,
            "embedded_model": self.embedded,
            "checkpoint": self.stream.checkpoint,
            "stream": {
                k: getattr(self.stream, k) for k in ("frame_rate", "stride", "publish_frames")
            },
            "window": self.inference.num_frames,
            "messages_read": self.read,
            "frames_synchronised": front.frames_in,
            "frames_sampled": front.frames_sampled,
            "windows": self.windows,
            "windows_model": self.windows_model,
            "windows_failed": self.processor.errors,
            "results_written": self.results,
            "messages_written": dict(self.written),
            "skipped": {k: self.skipped[k] for k in ("deserialize", "convert")},
            "unmatched": {name[k]: front.sync.unmatched[k] for k in front.sync.inputs},
            "pending_at_end": {name[k]: n for k, n in front.sync.pending().items()},
            "seconds": round(seconds, 3),
            "frames_per_s": front.frames_in / seconds,
            "sampled_frames_per_s": front.frames_sampled / seconds,
            "timing": {k: round(v, 4) for k, v in self.timing.items()},
            "latency": 0.0,
            "errors": self.errors,
        }
