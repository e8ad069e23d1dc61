"""The streaming pipeline shared by the ROS node and `amodal-ros replay`:

    messages --StampSynchronizer--> frames --FrameRateSampler--> model-rate frames
             --WindowBuffer--> windows --WindowProcessor--> FrameResults

`StreamFront` is the cheap, callback-side half (no model); `WindowProcessor` is the worker-side
half that runs the models. Both are ROS-free: messages are converted by a callable passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.frames import (
    REASON_DEADLINE_MISSED,
    REASON_EMPTY_MODAL,
    REASON_ERROR,
    REASON_NAMES,
    REASON_OBJECT_TOO_SMALL,
    REASON_OK,
    REASON_WINDOW_NOT_FULL,
    Frame,
    FrameResult,
    ObjectFrameResult,
)
from amodal_ros.core.types import ObjectTrack, occluders
from amodal_ros.pipeline.cache import cached_batch, digest
from amodal_ros.pipeline.rate import FrameRateSampler
from amodal_ros.pipeline.sync import StampSynchronizer
from amodal_ros.pipeline.window import Window, WindowBuffer

log = logging.getLogger("amodal_ros.stream")

RGB, MASKS, DEPTH = "rgb", "masks", "depth"


class StreamFront:
    """Synchronise, sample to the model rate and window a message stream.

    Args:
        config: stream settings (tolerance, rate, stride, timeouts).
        num_frames: window length of the model.
        use_depth: whether a depth message is part of every frame.
        to_frame: builds a Frame from {"stamp_ns", "rgb", "masks"[, "depth"]} of raw messages;
            raises InputError for a bad frame, which is then reported via `on_error` and skipped.
        on_error: called with (stamp_ns, error) for every skipped frame.
    """

    def __init__(
        self,
        config: StreamConfig,
        num_frames: int,
        use_depth: bool,
        to_frame: Callable[[dict], Frame],
        on_error: Callable[[int, Exception], None] | None = None,
    ):
        self.config = config
        tolerance = 0 if config.sync_mode == "exact" else int(round(config.sync_tolerance * 1e9))
        inputs = (RGB, MASKS, DEPTH) if use_depth else (RGB, MASKS)
        self.sync = StampSynchronizer(inputs, tolerance, config.sync_queue)
        self.sampler = FrameRateSampler(config.frame_rate)
        self.buffer = WindowBuffer(
            num_frames,
            config.stride,
            int(config.object_timeout * 1e9),
            self.sampler.period_ns,
        )
        self.to_frame = to_frame
        self.on_error = on_error or (lambda stamp, err: log.warning("frame %d: %s", stamp, err))
        self.frames_in = 0  # synchronised frames
        self.frames_sampled = 0
        self.frames_rejected = 0

    def add(self, name: str, stamp_ns: int, message) -> list[Window]:
        """Feed one message; returns the windows it completes (usually none or one)."""
        return self._frames(self.sync.add(name, stamp_ns, message))

    def flush(self) -> list[Window]:
        """End of the stream (offline replay): frames still waiting for a later partner are
        paired with the best one within tolerance, and frames added since the last window get
        one more window, so nothing is left unanswered."""
        windows = self._frames(self.sync.flush())
        last = self.buffer.flush()
        return windows + ([last] if last is not None else [])

    def _frames(self, matched_frames: list[dict]) -> list[Window]:
        windows = []
        for matched in matched_frames:
            self.frames_in += 1
            saved = self.sampler.state()
            if not self.sampler.accept(matched["stamp_ns"]):
                continue
            try:
                frame = self.to_frame(matched)
            except (InputError, ValueError) as err:
                self.sampler.restore(saved)  # a bad frame must not take a good one's slot
                self.frames_rejected += 1
                self.on_error(matched["stamp_ns"], err)
                continue
            self.frames_sampled += 1
            window = self.buffer.push(frame)
            if window is not None:
                windows.append(window)
        return windows

    def reset(self) -> None:
        self.sync.reset()
        self.sampler.reset()
        self.buffer.reset()


class WindowProcessor:
    """Runs stage 1 (and stage 2) on windows and turns them into per-frame results.

    Never raises for a window: a pipeline error becomes results with the modal masks as amodal
    and reason ERROR (logged), so no published frame is lost.
    """

    def __init__(
        self,
        segmenter,
        config: StreamConfig,
        completer=None,
        depth_estimator=None,
        depth_source: str = "none",
        cache=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        from amodal_ros.pipeline.cache import FrameEncodingCache

        self.segmenter = segmenter
        self.completer = completer
        self.depth_estimator = depth_estimator
        self.depth_source = depth_source
        self.config = config
        self.cache = cache if cache is not None else FrameEncodingCache()
        self.clock = clock
        self.errors = 0
        self.last_timing: dict[str, float] = {}

    @classmethod
    def from_config(cls, stream: StreamConfig, inference: InferenceConfig, **kwargs):
        """Load the models named by `stream` (raises CheckpointError / InputError clearly)."""
        import torch

        from amodal_ros.models import embedded
        from amodal_ros.pipeline import AmodalSegmenter, ContentCompleter

        if not stream.checkpoint:
            raise InputError(
                "no stage-1 checkpoint: set the `checkpoint` parameter to a folder, or to "
                "'embedded' for the small synthetic-trained model (at height 32, width 64)"
            )
        segmenter = AmodalSegmenter.from_pretrained(embedded.resolve(stream.checkpoint), inference)
        completer = None
        if stream.completion_checkpoint:
            folder = embedded.resolve(stream.completion_checkpoint, stage=2)
            completer = ContentCompleter.from_pretrained(folder, inference)
        source = resolve_depth_source(stream, segmenter.needs_depth)
        estimator = None
        if source == "model":
            from amodal_ros.depth.depth_anything import DepthAnythingDepth

            estimator = DepthAnythingDepth.from_pretrained(
                stream.depth_model,
                device=inference.device,
                dtype=getattr(torch, inference.dtype),
                backend=stream.depth_backend,
                engine_cache=inference.engine_cache,
            )
        return cls(segmenter, stream, completer, estimator, source, **kwargs)

    @property
    def num_frames(self) -> int:
        return self.segmenter.config.num_frames

    def forget(self, object_ids) -> None:
        for object_id in object_ids:
            self.cache.forget_object(object_id)

    def process(self, window: Window) -> list[FrameResult]:
        """Results for the frames of `window` that are to be published."""
        if not window.full:
            return self.passthrough(window, REASON_WINDOW_NOT_FULL)
        deadline = self.config.deadline
        arrival = window.last.arrival  # 0: unknown (e.g. a bag replayed as fast as possible)
        if deadline > 0 and arrival and self.clock() - arrival > deadline:
            return self.passthrough(window, REASON_DEADLINE_MISSED)
        # frames older than this window are never needed again: memory stays ~ one window
        self.cache.forget_frames_before(window.frames[0].stamp_ns)
        try:
            return self._run(window)
        except Exception as err:  # the model boundary: report, keep the frames
            self.errors += 1
            log.error(
                "window ending at stamp %d failed (%s: %s); publishing modal masks as amodal",
                window.last.stamp_ns,
                type(err).__name__,
                err,
            )
            return self.passthrough(window, REASON_ERROR)

    def passthrough(self, window: Window, reason: int) -> list[FrameResult]:
        """Modal masks sent as amodal, flagged with `reason` (nothing is silently dropped)."""
        results = []
        for t in self._published(window):
            objects = [self._invalid(window, t, i, reason) for i in window.object_ids]
            results.append(self._frame_result(window, t, objects))
        return results

    # -- internals ------------------------------------------------------------------------

    def _run(self, window: Window) -> list[FrameResult]:
        started = self.clock()
        tracks, reasons, modal = [], {}, {}
        keys = [f.stamp_ns for f in window.frames]
        for object_id in window.object_ids:
            masks = modal[object_id] = window.masks(object_id)  # [T, H, W] bool
            areas = masks.reshape(len(masks), -1).sum(1)
            if not areas.any():
                reasons[object_id] = REASON_EMPTY_MODAL
            elif areas.max() < self.config.min_object_pixels:
                reasons[object_id] = REASON_OBJECT_TOO_SMALL
            else:
                tracks.append(ObjectTrack(object_id, masks, frame_keys=keys))
        nearness = self._inverse_depth(window)
        t_depth = self.clock()
        amodal = {}
        published = list(self._published(window))
        if tracks:
            depth_in = nearness if self.segmenter.needs_depth else None
            # stage 2 conditions on every frame's amodal mask; alone, decode only what is sent
            needed = None if self.completer is not None else published
            results = self.segmenter(tracks, depth_in, cache=self.cache, frames=needed)
            amodal = {r.object_id: r for r in results}
        t_stage1 = self.clock()
        completions = {}
        if self.completer is not None and amodal:
            rgb = np.stack([f.rgb for f in window.frames])
            results = self.completer(
                rgb, list(amodal.values()), cache=self.cache, frames=published
            )
            completions = {c.object_id: c for c in results}
        self.last_timing = {
            "depth": t_depth - started,
            "stage1": t_stage1 - t_depth,
            "stage2": self.clock() - t_stage1,
        }
        frames = []
        for t in published:
            objects = []
            for object_id in window.object_ids:
                if object_id not in amodal:
                    objects.append(
                        self._invalid(
                            window, t, object_id, reasons[object_id], modal[object_id][t]
                        )
                    )
                    continue
                r = amodal[object_id]
                c = completions.get(object_id)
                objects.append(
                    self._object(
                        window,
                        t,
                        object_id,
                        r,
                        nearness,
                        uncertainty=None if r.disagreement is None else r.disagreement[t],
                        completion=None if c is None else c.rgba[t],
                    )
                )
            frames.append(self._frame_result(window, t, objects))
        return frames

    def _inverse_depth(self, window: Window) -> np.ndarray | None:
        """[T, H, W] relative inverse depth (nearness) of the window, or None without depth."""
        if self.depth_source == "camera":
            if any(f.depth is None for f in window.frames):
                raise InputError("depth_source is 'camera' but a frame of the window has no depth")
            from amodal_ros.depth.camera import inverse_depth_from_camera

            depth = np.stack([f.depth for f in window.frames])
            return inverse_depth_from_camera(depth, window.last.depth_encoding)
        if self.depth_source == "model":
            # cached per frame: a slide estimates only the new frames, in one batched call
            keys = [("depth_model", None, f.stamp_ns, digest(f.rgb)) for f in window.frames]
            rgb = [f.rgb for f in window.frames]
            estimate = self.depth_estimator.inverse_depth
            out = cached_batch(
                self.cache, keys, lambda todo: estimate(np.stack([rgb[i] for i in todo]))
            )
            return np.stack(out)
        return None

    def _published(self, window: Window) -> range:
        n = len(window.frames)
        count = window.new_frames if self.config.publish_frames == "new" else 1
        return range(n - max(1, min(count, n)), n)

    def _invalid(self, window: Window, t: int, object_id: int, reason: int, modal=None):
        modal = window.frames[t].labels == object_id if modal is None else modal
        if reason not in (REASON_OK, REASON_WINDOW_NOT_FULL, REASON_EMPTY_MODAL):
            log.debug(
                "object %d at %d: %s", object_id, window.frames[t].stamp_ns, REASON_NAMES[reason]
            )
        return ObjectFrameResult(object_id, modal, modal.copy(), False, reason)

    def _object(self, window, t, object_id, amodal_result, nearness, uncertainty, completion):
        frame = window.frames[t]
        modal = amodal_result.modal[t]
        amodal = amodal_result.amodal[t]
        covered = occluders(frame.labels, modal, amodal)
        return ObjectFrameResult(
            object_id,
            modal,
            amodal,
            True,
            REASON_OK,
            occluders=covered,
            occluder_order=depth_order(frame.labels, modal, amodal, covered, nearness, t),
            uncertainty=uncertainty,
            completion=completion,
        )

    def _frame_result(self, window: Window, t: int, objects) -> FrameResult:
        last = window.last
        return FrameResult(
            frame=window.frames[t],
            objects=objects,
            window_first_stamp_ns=window.frames[0].stamp_ns,
            window_last_stamp_ns=last.stamp_ns,
            window_frames=len(window.frames),
            frames_missing=window.frames_missing,
            latency=max(0.0, self.clock() - last.arrival) if last.arrival else 0.0,
        )


def depth_order(labels, modal, amodal, covered, nearness, t) -> dict[int, int]:
    """+1 when an occluder is nearer than the object's visible part, -1 when farther, 0 when
    there is no depth, the object has no visible pixel to compare with, or the depths tie."""
    if nearness is None or not modal.any():
        return {i: 0 for i in covered}
    near = nearness[t]
    own = float(np.median(near[modal]))
    hidden = amodal & ~modal
    order = {}
    for occluder_id in covered:
        theirs = float(np.median(near[hidden & (labels == occluder_id)]))
        order[occluder_id] = int(np.sign(theirs - own))
    return order


def resolve_depth_source(config: StreamConfig, needs_depth: bool) -> str:
    """'camera', 'model' or 'none' from the configured source and the checkpoint's inputs."""
    source = config.depth_source
    if source == "auto":
        source = "model" if config.depth_model else ("camera" if needs_depth else "none")
    if source == "model" and not config.depth_model:
        raise InputError(
            "depth_source is 'model' but depth_model is empty: set a Depth "
            "Anything V2 folder, or use depth_source 'camera'"
        )
    if source == "none" and needs_depth:
        raise InputError(
            f"{config.checkpoint} is a mask+depth checkpoint: set depth_source to "
            "'camera' (with a depth topic) or 'model' (with depth_model)"
        )
    return source
