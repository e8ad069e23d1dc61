"""The one code that turns a window into per-frame results: the node, replay, infer, eval and
the benchmark's default scenario all feed windows to a WindowProcessor.

    window --1. tracks--2. depth--3. stage 1 (cut)--4. stage 2--5. assemble-->
    [FrameResult]

Stage 1's masks lose the hidden pixels the camera's depth shows as free space
(pipeline.free_space, `free_space_margin`), then their small parts apart from the object
(pipeline.detached, `detached_part_share`), before stage 2 paints them.

Assembling measures each valid object's amodal 3D extent (pipeline.extent) where the frame has
camera depth and camera info; objects without an amodal result get none (EXTENT_NO_AMODAL).

Importable without torch: the models arrive ready-made (pipeline.factory builds them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.core.errors import InputError, UnusableDepthError
from amodal_ros.core.frames import (
    DEPTH_ENCODINGS,
    EXTENT_BAD_CAMERA_INFO,
    EXTENT_NO_AMODAL,
    MODEL_PERIOD_NS,
    REASON_DEADLINE_MISSED,
    REASON_EMPTY_MODAL,
    REASON_ERROR,
    REASON_NAMES,
    REASON_OBJECT_TOO_SMALL,
    REASON_OK,
    REASON_WINDOW_NOT_FULL,
    Extent,
    FrameResult,
    ObjectFrameResult,
    frames_from_arrays,
)
from amodal_ros.core.throttle import Throttle
from amodal_ros.core.types import AmodalResult, ObjectTrack, occluders
from amodal_ros.pipeline.extent import Intrinsics, window_extent
from amodal_ros.pipeline.window import Window

log = logging.getLogger("amodal_ros.stream")


def not_run_reason(masks: np.ndarray, min_object_pixels: int) -> int | None:
    """Why an object of modal masks [T, H, W] is not run in its window (a REASON_*), or None:
    the one rule, also for what eval's ceilings count."""
    areas = masks.reshape(len(masks), -1).sum(1)
    if not areas.any():
        return REASON_EMPTY_MODAL
    if areas.max() < min_object_pixels:
        return REASON_OBJECT_TOO_SMALL
    return None


class WindowProcessor:
    """Runs stage 1 (and stage 2) on windows and turns them into per-frame results.

    Never raises for a window: a pipeline error becomes results with the modal masks as amodal
    and reason ERROR (logged), so no published frame is lost. Holds the stream's model state:
    the per-frame encoding cache and the warm-start latents.

    Args:
        pipelines: the models (amodal_ros.pipeline.factory.build).
        config: which frames are published, the deadline and the smallest object run.
        clock: monotonic seconds (a constant clock makes replay reproducible).
    """

    def __init__(
        self, pipelines, config: StreamConfig, clock: Callable[[], float] = time.monotonic
    ):
        from amodal_ros.pipeline.cache import FrameEncodingCache, SharedDigests
        from amodal_ros.pipeline.runner import WarmStarts

        self.pipelines = pipelines
        self.segmenter = pipelines.segmenter
        self.completer = pipelines.completer
        self.depth_estimator = pipelines.depth
        self.depth_source = pipelines.depth_source
        self.config = config
        self.cache = FrameEncodingCache()
        self.digests = SharedDigests()  # of the frames' own arrays, shared by their windows
        self.warm = WarmStarts()
        self.times = self.segmenter.sampler.times  # depth joins stage 1's stage times
        if self.completer is not None:  # and so does stage 2
            self.completer.sampler.record_into(self.times)
        self.clock = clock
        self.errors = 0
        self._throttle = Throttle()  # a problem of every frame: once a period, with a count
        self.model_windows = 0  # windows in which stage 1 ran on at least one object

    @classmethod
    def from_config(cls, stream: StreamConfig, inference: InferenceConfig, **kwargs):
        """Build the models `stream` names (raises CheckpointError / InputError clearly)."""
        from amodal_ros.pipeline.factory import build

        return cls(build(stream, inference), stream, **kwargs)

    @property
    def num_frames(self) -> int:
        """Window length of the model."""
        return self.segmenter.config.num_frames

    def forget(self, object_ids) -> None:
        """Free the state of objects the stream lost."""
        for object_id in object_ids:
            self.cache.forget_object(object_id)
            self.warm.forget_object(object_id)

    def reset(self) -> None:
        """Forget all stream state (e.g. after a warm-up window)."""
        self.cache.reset()
        self.warm.reset()

    def warm_up(self, height: int, width: int) -> tuple[float, int] | None:
        """Run one synthetic window of `height`x`width` frames (a camera's size) through every
        model, stream state forgotten after it: a compiled model compiles (or loads its
        kernels) here, not in a live window. Returns its seconds and objects, or None when it
        failed (the log says why)."""
        from amodal_ros.data.scenes import make_scene

        n = self.num_frames
        scene = make_scene(0, n, max(16, height), max(16, width), 1, 1)
        frames = frames_from_arrays(
            scene.rgb,
            scene.labels.astype(np.int64),
            scene.depth if self.depth_source == "camera" else None,
            first_stamp=-n * MODEL_PERIOD_NS,  # before any real stamp
        )
        errors, started = self.errors, time.monotonic()
        self.process(Window(tuple(frames), tuple(scene.target_ids), 1, True))
        self.reset()
        seconds = time.monotonic() - started
        return None if self.errors > errors else (seconds, len(scene.target_ids))

    def process(self, window: Window) -> list[FrameResult]:
        """Results for the frames of `window` that are to be published."""
        if not window.full:
            return self.passthrough(window, REASON_WINDOW_NOT_FULL)
        deadline = self.config.deadline
        arrival = window.last.arrival  # 0: unknown (e.g. a bag replayed as fast as possible)
        if deadline > 0 and arrival and self.clock() - arrival > deadline:
            return self.passthrough(window, REASON_DEADLINE_MISSED)
        # frames outside this window are never needed again: memory stays ~ one window
        self.cache.forget_frames_outside(window.frames[0].stamp_ns, window.last.stamp_ns)
        try:
            results = self._run(window)
            # an object this window does not list is gone (its id forgotten, possibly before
            # this window ran: a restart's last window), and its warm start with it
            self.warm.keep_only(window.object_ids)
            return results
        except Exception as err:  # the model boundary: report, keep the frames
            self.errors += 1
            log.error(
                "window ending at stamp %d failed (%s: %s); its frames are answered with their "
                "modal masks as amodal (amodal_valid false)",
                window.last.stamp_ns,
                type(err).__name__,
                err,
            )
            return self.passthrough(window, REASON_ERROR)

    def passthrough(self, window: Window, reason: int) -> list[FrameResult]:
        """Modal masks sent as amodal, flagged with `reason` (nothing is silently dropped)."""
        ids = window.object_ids
        return [
            self._frame_result(window, t, [self._invalid(window, t, i, reason) for i in ids])
            for t in self._published(window)
        ]

    # -- the steps ------------------------------------------------------------------------

    def _run(self, window: Window) -> list[FrameResult]:
        published = list(self._published(window))
        # 1. tracks: the objects worth running; the others keep why not
        tracks, reasons = self._tracks(window)
        # 2. depth: [T, H, W] inverse depth, or None
        with self.times("depth"):
            nearness = self._nearness(window)
        # 3. stage 1: amodal masks (every frame when stage 2 needs them, else only published)
        amodal: dict[int, AmodalResult] = {}
        if tracks:
            depth_in = nearness if self.segmenter.needs_depth else None
            needed = None if self.completer is not None else published
            results = self.segmenter(
                tracks, depth_in, cache=self.cache, frames=needed, warm=self.warm
            )
            camera_depth = self.depth_source == "camera" and nearness is not None
            if self.config.free_space_margin > 0 and camera_depth:
                self._carve(window, results)
            if self.config.detached_part_share > 0:
                from amodal_ros.pipeline.detached import drop_detached

                for result in results:
                    drop_detached(result, self.config.detached_part_share)
            amodal = {r.object_id: r for r in results}
            self.model_windows += 1
        # 4. stage 2: completed appearance of the published frames
        completions = {}
        if self.completer is not None and amodal:
            rgb = np.stack([f.rgb for f in window.frames])
            results = self.completer(
                rgb,
                list(amodal.values()),
                cache=self.cache,
                frames=published,
                frame_keys=[f.stamp_ns for f in window.frames],
            )
            completions = {c.object_id: c.rgba for c in results}
        # 5. assemble the published frames
        frames = []
        for t in published:
            near = self._measured_nearness(window, t, nearness) if amodal else None
            objects = [
                self._object(window, t, i, amodal[i], near, completions.get(i))
                if i in amodal
                else self._invalid(window, t, i, reasons[i])
                for i in window.object_ids
            ]
            frames.append(self._frame_result(window, t, objects))
        return frames

    def _tracks(self, window: Window) -> tuple[list[ObjectTrack], dict[int, int]]:
        tracks, reasons = [], {}
        keys = [f.stamp_ns for f in window.frames]
        for object_id in window.object_ids:
            masks = window.masks(object_id)  # [T, H, W] bool
            reason = not_run_reason(masks, self.config.min_object_pixels)
            if reason is not None:
                reasons[object_id] = reason
            else:
                tracks.append(ObjectTrack(object_id, masks, frame_keys=keys))
        return tracks, reasons

    def _carve(self, window: Window, results: list[AmodalResult]) -> None:
        """Removes from stage 1's results the hidden pixels the camera's depth shows as free
        space (in place)."""
        from amodal_ros.pipeline.free_space import carve, keep_band

        depth = [f.depth for f in window.frames if f.depth is not None]  # all: _inverse_depth
        unit_m = DEPTH_ENCODINGS[window.last.depth_encoding]  # one for all: _inverse_depth
        model = self.segmenter.config
        keep = keep_band(depth[0].shape, (model.height, model.width))
        for result in results:
            carve(result, depth, self.config.free_space_margin, keep, unit_m)

    def _nearness(self, window: Window) -> np.ndarray | None:
        """The window's inverse depth; None without depth, or when the camera's depth is
        unusable (no valid pixel, mixed encodings) and the model does not take it: then it
        served only the occluder order and free-space carving, which are left out, and the
        window still runs (it failed whole before, though the masks never needed depth)."""
        try:
            return self._inverse_depth(window)
        except UnusableDepthError as err:
            if self.segmenter.needs_depth:
                raise
            since = self._throttle.due("unusable depth")
            if since:
                log.warning(
                    "window ending at stamp %d: %s; running it without depth (no occluder "
                    "order, no free-space carving)%s",
                    window.last.stamp_ns,
                    err,
                    Throttle.repeats(since),
                )
            return None

    def _inverse_depth(self, window: Window) -> np.ndarray | None:
        """[T, H, W] relative inverse depth (nearness) of the window, or None without depth."""
        if self.depth_source == "camera":
            if any(f.depth is None for f in window.frames):
                raise InputError("depth_source is 'camera' but a frame of the window has no depth")
            from amodal_ros.depth.camera import fill_empty_frames, inverse_depth_frame

            encodings = {f.depth_encoding for f in window.frames}
            if len(encodings) > 1:  # one conversion for all: mm read as m would be 1000x off
                raise UnusableDepthError(
                    f"the window's depth frames mix encodings {sorted(encodings)}: the camera "
                    "changed its depth format mid-stream; the window is skipped"
                )
            encoding = window.last.depth_encoding
            return fill_empty_frames(
                self._per_frame(
                    "camera_depth",
                    window,
                    [f.depth for f in window.frames if f.depth is not None],
                    lambda arrays: [inverse_depth_frame(a, encoding) for a in arrays],
                )
            )
        if self.depth_source == "model":
            estimate = self.depth_estimator.inverse_depth
            return np.stack(
                self._per_frame(
                    "depth_model",
                    window,
                    [f.rgb for f in window.frames],
                    lambda arrays: estimate(np.stack(arrays)),
                )
            )
        return None

    def _measured_nearness(self, window: Window, t: int, nearness) -> np.ndarray | None:
        """[H, W] nearness of frame t where it was measured (0 beyond the camera's range),
        NaN elsewhere (None without depth): the model's input fills the camera's holes from
        their neighbours, and an occluder with no return (black, glass) took the depth, and
        the order, of what surrounds it."""
        frame = window.frames[t]
        if nearness is None or self.depth_source != "camera" or frame.depth is None:
            return None if nearness is None else nearness[t]
        from amodal_ros.depth.camera import measured_inverse_depth

        return measured_inverse_depth(frame.depth, frame.depth_encoding)

    def _per_frame(self, kind: str, window: Window, arrays: list[np.ndarray], compute) -> list:
        """`compute` of each frame's array, cached by stamp and content: a slide computes only
        its new frames, in one call `compute(list of arrays)`."""
        from amodal_ros.pipeline.cache import CacheKey, cached_batch

        keys = [
            CacheKey(kind, None, f.stamp_ns, self.digests(a))
            for f, a in zip(window.frames, arrays, strict=True)
        ]
        return cached_batch(self.cache, keys, lambda todo: compute([arrays[i] for i in todo]))

    def _published(self, window: Window) -> range:
        return window.answered(self.config.publish_frames == "new")

    def _invalid(self, window: Window, t: int, object_id: int, reason: int) -> ObjectFrameResult:
        modal = window.frames[t].labels == object_id
        if reason not in (REASON_OK, REASON_WINDOW_NOT_FULL, REASON_EMPTY_MODAL):
            log.debug(
                "object %d at %d: %s", object_id, window.frames[t].stamp_ns, REASON_NAMES[reason]
            )
        return ObjectFrameResult(
            object_id,
            modal,
            modal.copy(),
            False,
            reason,
            soft=modal.astype(np.float32),
            extent=Extent(reason=EXTENT_NO_AMODAL),  # no amodal mask to measure
        )

    def _object(
        self, window, t, object_id: int, result: AmodalResult, near, completion
    ) -> ObjectFrameResult:
        frame = window.frames[t]
        labels = frame.labels
        modal, amodal = result.modal[t], result.amodal[t]
        covered = occluders(labels, modal, amodal)
        return ObjectFrameResult(
            object_id,
            modal,
            amodal,
            True,
            REASON_OK,
            occluders=covered,
            occluder_order=depth_order(labels, modal, amodal, covered, near),
            uncertainty=None if result.disagreement is None else result.disagreement[t],
            completion=None if completion is None else completion[t],
            soft=result.soft[t],
            samples=None if result.samples is None else result.samples[:, t],
            extent=self._extent(window, t, result),
        )

    def _extent(self, window, t: int, result: AmodalResult) -> Extent:
        """The object's 3D box in frame t; unusable camera info is said in the log (every
        object of every frame would otherwise carry only its reason)."""
        share = self.config.detached_part_share
        extent = window_extent(window.frames, result.modal, result.amodal, t, share)
        frame, amodal = window.frames[t], result.amodal[t]
        since = extent.reason == EXTENT_BAD_CAMERA_INFO and self._throttle.due("camera info")
        if since:
            intrinsics = Intrinsics.from_camera_info(frame.camera_info)  # set: it was read
            problem = intrinsics.problem(amodal.shape) if intrinsics else "no intrinsics"
            log.warning(
                "no 3D extents: %s (objects carry EXTENT_BAD_CAMERA_INFO)%s",
                problem,
                Throttle.repeats(since),
            )
        return extent

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


# nearness within this fraction of the object's is a tie (2 cm at 1 m: a depth camera's noise,
# two objects touching)
DEPTH_ORDER_TIE = 0.02


def depth_order(labels, modal, amodal, covered, near) -> dict[int, int]:
    """+1 when an occluder is nearer than the object's visible part, -1 when farther, 0 when
    there is no depth (`near` None, or NaN on every pixel of either side: no return), the
    object has no visible pixel to compare with, or the depths tie (DEPTH_ORDER_TIE).

    Args:
        near: [H, W] nearness (inverse depth) of the frame, NaN where it was not measured.
    """
    if near is None or not modal.any():
        return {i: 0 for i in covered}
    own = _median(near[modal])
    hidden = amodal & ~modal
    order = {}
    for occluder_id in covered:
        theirs = _median(near[hidden & (labels == occluder_id)])
        apart = theirs - own  # NaN (no return on a side) is no order, as a tie
        order[occluder_id] = int(np.sign(apart)) if abs(apart) > DEPTH_ORDER_TIE * abs(own) else 0
    return order


def _median(values: np.ndarray) -> float:
    """The median of the measured values (NaN when none is)."""
    measured = values[np.isfinite(values)]
    return float(np.median(measured)) if measured.size else float("nan")
