"""The output side of replay: results (and, on request, copies of the inputs) into an open
rosbags Writer, on one timeline with the input bag."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque

from amodal_ros.bags import topics
from amodal_ros.bags.typestore import AMODAL_OBJECT_ARRAY, CAMERA_INFO, IMAGE, MARKER_ARRAY
from amodal_ros.core.frames import FrameResult
from amodal_ros.interface.messages import ResultMessages, overlay_image, rosbags_kit

CAMERA_INFO_HISTORY = 256  # CameraInfo messages kept to pair with (later) results
RGB_LOG_TIMES_KEPT = 4096  # RGB stamps remembered until their results are written
# results waiting for a CameraInfo of their stamp: the newest are kept (a camera whose
# CameraInfo stamps never meet its images' would make every result wait, each CameraInfo
# walking all of them)
INFO_WAITING_KEPT = 300


class ResultWriter:
    """Writes the result topics of each FrameResult into `writer`.

    - /amodal/objects, /amodal/overlay, /amodal/markers, /amodal/completion (with stage 2)
      and /amodal/camera_info (the input CameraInfo of the frame's stamp, within `tolerance_ns`;
      it may arrive after the result, and is then written when it does);
    - results are logged at the log time of their RGB message, so the bag stays one timeline
      even when header stamps use another clock (hardware or sim time);
    - `video` (an OverlayVideo) also gets every overlay.

    Args:
        writer: an open rosbags rosbag2 Writer.
        bag: the InputBag (its message definitions go into the output bag).
        camera_info_type: the input CameraInfo's message type, or None for no camera info.
        completion: whether stage 2 runs (a completion topic is written).
    """

    def __init__(
        self,
        writer,
        bag,
        camera_info_type: str | None,
        completion: bool,
        tolerance_ns: int,
        video=None,
    ):
        self.writer, self.bag, self.video = writer, bag, video
        self.tolerance_ns = tolerance_ns
        self.messages = ResultMessages(rosbags_kit(bag.store))
        self.written: Counter[str] = Counter()
        self.timing: Counter[str] = Counter()
        self.results = 0
        self._infos: deque = deque(maxlen=CAMERA_INFO_HISTORY)  # (stamp, CDR) of CameraInfo
        # result stamps whose CameraInfo may still come
        self._info_waiting: deque[int] = deque(maxlen=INFO_WAITING_KEPT)
        self._rgb_log_time: OrderedDict[int, int] = OrderedDict()  # RGB stamp -> log time
        self._copies: dict[int, object] = {}
        store = bag.store
        add = writer.add_connection
        self._out = {
            topics.OBJECTS_TOPIC: add(topics.OBJECTS_TOPIC, AMODAL_OBJECT_ARRAY, typestore=store),
            topics.OVERLAY_TOPIC: add(topics.OVERLAY_TOPIC, IMAGE, typestore=store),
            topics.MARKERS_TOPIC: add(topics.MARKERS_TOPIC, MARKER_ARRAY, typestore=store),
        }
        if completion:
            self._out[topics.COMPLETION_TOPIC] = add(
                topics.COMPLETION_TOPIC, IMAGE, typestore=store
            )
        if camera_info_type is not None:
            self._out[topics.CAMERA_INFO_OUT_TOPIC] = add(
                topics.CAMERA_INFO_OUT_TOPIC,
                camera_info_type,
                typestore=bag.output_defs(camera_info_type),
            )
        self.written.update(dict.fromkeys(self._out, 0))  # a topic left empty reads 0

    def copy_connections(self, conns) -> None:
        """Also write these input connections' messages (`copy`), with their QoS profiles."""
        added = {}
        for c in conns:
            key = (c.topic, c.msgtype)
            if key not in added:
                qos = getattr(c.ext, "offered_qos_profiles", ())
                added[key] = self.writer.add_connection(
                    c.topic,
                    c.msgtype,
                    typestore=self.bag.output_defs(c.msgtype),
                    offered_qos_profiles=qos,
                )
            self._copies[c.id] = added[key]

    def copies(self, conn) -> bool:
        """Whether messages of `conn` are copied."""
        return conn.id in self._copies

    def copy(self, conn, log_ns: int, cdr) -> None:
        """Write one input message (CDR) as it was logged."""
        self._write(self._copies[conn.id], conn.topic, log_ns, cdr)

    def rgb_logged(self, stamp: int, log_ns: int) -> None:
        """Remember when the RGB message of `stamp` was logged (its results are logged then)."""
        self._rgb_log_time[stamp] = log_ns
        while len(self._rgb_log_time) > RGB_LOG_TIMES_KEPT:
            self._rgb_log_time.popitem(last=False)

    def camera_info(self, stamp: int, cdr: bytes) -> None:
        """A CameraInfo arrived: keep it, and write it for results that were waiting for it."""
        self._infos.append((stamp, cdr))
        waiting, self._info_waiting = self._info_waiting, deque(maxlen=INFO_WAITING_KEPT)
        for result_stamp in waiting:
            if stamp < result_stamp - self.tolerance_ns:
                self._info_waiting.append(result_stamp)  # its CameraInfo may still come
            elif abs(stamp - result_stamp) <= self.tolerance_ns:
                topic = topics.CAMERA_INFO_OUT_TOPIC
                info = self._nearest_info(result_stamp)
                self._write(self._out[topic], topic, self._log_time(result_stamp), info)
            # else: CameraInfo has passed the result's stamp without one for it: none is written

    def result(self, result: FrameResult) -> None:
        """Write every output message of one published frame."""
        t0 = time.perf_counter()
        stamp, m, store = result.frame.stamp_ns, self.messages, self.bag.store
        overlay = overlay_image(result)
        if self.video is not None:
            self.video.add(overlay, stamp)
        out = [
            (topics.OBJECTS_TOPIC, store.serialize_cdr(m.array(result), AMODAL_OBJECT_ARRAY)),
            (
                topics.OVERLAY_TOPIC,
                store.serialize_cdr(m.image(result.frame, overlay, "rgb8"), IMAGE),
            ),
            (topics.MARKERS_TOPIC, store.serialize_cdr(m.markers(result), MARKER_ARRAY)),
        ]
        if topics.COMPLETION_TOPIC in self._out:
            out.append((topics.COMPLETION_TOPIC, store.serialize_cdr(m.completion(result), IMAGE)))
        if topics.CAMERA_INFO_OUT_TOPIC in self._out:
            info = self._nearest_info(stamp)
            if info is None:  # it may still come (same stamp, later in the bag)
                self._info_waiting.append(stamp)
            else:
                out.append((topics.CAMERA_INFO_OUT_TOPIC, info))
        self.timing["publish"] += time.perf_counter() - t0
        for topic, data in out:
            self._write(self._out[topic], topic, self._log_time(stamp), data)
        self.results += 1

    def _log_time(self, stamp: int) -> int:
        return self._rgb_log_time.get(stamp, stamp)

    def _nearest_info(self, stamp: int) -> bytes | None:
        """CDR of the kept CameraInfo nearest to `stamp` within the sync tolerance, stamped
        `stamp` (as the frame's outputs are), or None."""
        from amodal_ros.interface.messages import nearest_stamped, restamped

        cdr = nearest_stamped(self._infos, stamp, self.tolerance_ns)
        if cdr is None:
            return None
        store = self.bag.store
        info = restamped(store.deserialize_cdr(cdr, CAMERA_INFO), self.messages.time(stamp))
        return store.serialize_cdr(info, CAMERA_INFO)

    def _write(self, conn, topic: str, stamp: int, data) -> None:
        t0 = time.perf_counter()
        self.writer.write(conn, stamp, data)
        self.written[topic] += 1
        self.timing["write"] += time.perf_counter() - t0
