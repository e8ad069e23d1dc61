r"""`amodal-ros infer`: amodal masks (and completions) for a folder of frames and modal masks.

Usage:
    amodal-ros infer --frames clip/rgb --masks clip/labels --depth clip/depth \
        [--checkpoint diffusion-vas-amodal-segmentation] \
        [--completion-checkpoint diffusion-vas-content-completion] --out results/

Depth is not optional for a mask+depth model (the embedded default and the published
checkpoint): give the camera's depth (`--depth`), or, without a depth camera, a local Depth
Anything V2 folder (`--depth-model Depth-Anything-V2-Small-hf/` in place of `--depth`).

Frames are at the model's 8 fps, or sampled down to it from `--input-fps` by time. The clip
is windowed as replay windows a recording: windows of `--num-frames` every
`--stride` frames (`WindowBuffer` offline), each frame answered by the window it sits nearest
the middle of, and each window goes through the same WindowProcessor the node runs. Writes
amodal/, soft/, (uncertainty/), (completion/), overlay/ PNGs per object and frame,
overlay.mp4 (and overlay.gif, up to 200 frames) and summary.json, each frame's as soon as it
is answered. The output folder appears only complete; a failed window's frames are written
with their visible masks (`amodal_valid` false) and the command exits 1.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import MISSING, asdict, dataclass
from pathlib import Path

import numpy as np

from amodal_ros.cli import folders, io
from amodal_ros.core.config import (
    OFFLINE_DEFAULT_CHECKPOINT,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)
from amodal_ros.core.errors import InputError, ProcessingError
from amodal_ros.core.frames import REASON_NAMES
from amodal_ros.core.types import mask_bbox, occlusion_ratio, touches_border

log = logging.getLogger("amodal_ros.infer")


def infer_stream() -> StreamConfig:
    """Infer's stream: the embedded model by default, every frame of a window answered."""
    return StreamConfig(checkpoint=OFFLINE_DEFAULT_CHECKPOINT, publish_frames="new")


@dataclass
class Args:
    """What `amodal-ros infer` reads and writes."""

    frames: Path = param(
        MISSING,
        "folder of RGB frames (PNG/JPG), consecutive at the model's 8 fps (else say "
        "their rate with --input-fps)",
    )
    masks: Path = param(
        MISSING,
        "folder of instance-label images (one lossless image per frame, 0 = background) or "
        "of one binary-mask folder per object",
    )
    out: Path = param(MISSING, "output folder (created)")
    depth: Path | None = param(None, "camera depth folder: 16-bit PNG (mm) or float .npy (m)")
    input_fps: float = param(
        0.0,
        "the frames' rate, frames/s: sampled down to the model's 8 by time, as the node samples "
        "a camera, and only those frames answered (0: the frames are at 8 fps)",
        0.0,
        1000.0,
    )
    overwrite: bool = param(False, "replace a non-empty --out")
    video_fps: float = param(8.0, "frame rate of the overlay video", 0.1)
    progress: bool = param(True, "progress bar")
    stream: StreamConfig = group(
        infer_stream,
        only=(
            "checkpoint",
            "completion_checkpoint",
            "depth_model",
            "depth_backend",
            "stride",
            "min_object_pixels",
            "free_space_margin",
            "detached_part_share",
        ),
    )
    inference: InferenceConfig = group(InferenceConfig)


def run(args: Args) -> dict:
    """Run stage 1 (and stage 2) over the clip and write the results; returns the summary."""
    from tqdm.auto import tqdm

    from amodal_ros.pipeline.processor import WindowProcessor
    from amodal_ros.pipeline.stream import longest_stride
    from amodal_ros.pipeline.window import Window, WindowBuffer, centred_hold_back

    # 1. check inputs (before loading any model); frames are read again as windows need them
    io.check_output(args.out, args.overwrite)
    stream = args.stream
    if args.depth is not None and stream.depth_model:
        raise InputError(
            "pass either --depth (camera depth) or --depth-model (Depth Anything), not both"
        )
    clip = folders.open_clip(args.frames, args.masks, args.depth)
    if args.input_fps:
        clip = _at_model_rate(clip, args.input_fps, stream.frame_rate)
    if clip.depth is not None:
        stream = stream.replace(depth_source="camera")

    # 2. models: the node's processor
    processor = WindowProcessor.from_config(stream, args.inference)
    if processor.depth_source == "camera" and clip.depth is None:
        raise InputError(
            f"{stream.checkpoint} is a mask+depth model: pass --depth DIR or --depth-model DIR"
        )
    if processor.pipelines.note:
        print(processor.pipelines.note)
    config = processor.pipelines.config
    longest = longest_stride(stream, config.num_frames)  # check_stride's, in infer's words
    if longest is not None and stream.stride > longest:
        raise InputError(
            f"--stride {stream.stride} is longer than the window of {config.num_frames} frames "
            f"(--num-frames): the frames between two windows would never be answered; set "
            f"--stride <= {longest}"
        )

    # 3. windows through the processor, as replay's offline stream cuts them (every object in
    # every window: the folder's objects are known); each answers the frames it is nearest
    # the middle of, and a frame's outputs are written once it and those before it are
    # answered: memory holds a window, not the clip's results
    started = time.perf_counter()
    hold_back = centred_hold_back(config.num_frames, stream.stride)
    buffer = WindowBuffer(config.num_frames, stream.stride, 2**62, 0, hold_back)
    index: dict[int, int] = {}  # stamp: frame index
    windows = 0
    with io.staged_output(args.out, args.overwrite) as stage:
        out = _FrameWriter(stage, clip.names, processor, args.video_fps)

        def answer(cut: Window | None) -> None:
            nonlocal windows
            if cut is None:
                return
            # full even when the clip is shorter than a window: the model runs on what there is
            window = Window(
                cut.frames, tuple(clip.ids), cut.new_frames, True, held_back=cut.held_back
            )
            out.add({index[r.frame.stamp_ns]: r for r in processor.process(window)})
            windows += 1

        with tqdm(
            total=len(clip), desc="frames answered", unit="frame", disable=not args.progress
        ) as bar:
            out.progress = bar.update
            for t in range(len(clip)):
                frame = clip.frame(t)
                index[frame.stamp_ns] = t
                answer(buffer.push(frame))
            answer(buffer.flush())
        elapsed = time.perf_counter() - started
        # 4. the summary, and the videos under their names
        summary = _summary(args, processor, len(clip), out.per_object, elapsed, windows)
        summary["input_frames"] = len(clip.rgb.files)  # the folder's; num_frames: those answered
        summary["videos"] = [str(args.out / v.name) for v in out.close()]
        (stage / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"wrote {args.out}: {len(clip.ids)} objects x {len(clip)} frames, {windows} window(s) in "
        f"{elapsed:.1f} s; video: {', '.join(summary['videos']) or 'none (no encoder here)'}"
    )
    if processor.errors:  # as replay: the outputs stay, the exit code says it
        raise ProcessingError(
            f"{processor.errors} window(s) failed (the log above says why); their frames were "
            "written with the visible masks as amodal ones (amodal_valid false, its reason in "
            f"{args.out / 'summary.json'})"
        )
    return summary


class _FrameWriter:
    """Writes each frame's PNGs, overlay and summary entries in frame order, as soon as it and
    every frame before it are answered."""

    def __init__(self, stage: Path, names: list[str], processor, fps: float):
        from amodal_ros.pipeline.video import OverlayVideo

        self.stage, self.names = stage, names
        self.uncertainty = processor.pipelines.config.num_samples > 1
        self.completion = processor.completer is not None
        self.video = OverlayVideo(stage / "overlay", fps=fps)
        self.per_object: dict[str, dict] = {}
        self.progress = lambda n: None
        self._waiting: dict[int, object] = {}  # answered frames before a gap
        self._next = 0

    def add(self, results: dict[int, object]) -> None:
        """Take answered frames {frame index: FrameResult}; write those now in order."""
        self._waiting.update(results)
        while self._next in self._waiting:
            self._write(self._next, self._waiting.pop(self._next))
            self._next += 1
            self.progress(1)

    def close(self) -> list[Path]:
        """The videos, under their names; every frame must have been answered."""
        if self._next != len(self.names):
            raise ProcessingError(
                f"frames {self._next} to {len(self.names) - 1} were never answered (a bug: "
                "please report it)"
            )
        return self.video.close()

    def _write(self, f: int, result) -> None:
        from amodal_ros.interface.overlay import draw_overlay

        name, stage = self.names[f], self.stage
        for o in result.objects:
            folder = f"obj_{o.object_id}"
            io.write_png(
                stage / "amodal" / folder / f"{name}.png", o.amodal.astype(np.uint8) * 255
            )
            soft = o.soft if o.soft is not None else o.amodal.astype(np.float32)
            io.write_png(
                stage / "soft" / folder / f"{name}.png", (soft * 255).round().astype(np.uint8)
            )
            if self.uncertainty:  # none sampled (e.g. not visible): certain, as amodal/ says
                spread = o.uncertainty if o.uncertainty is not None else np.zeros(o.modal.shape)
                io.write_png(
                    stage / "uncertainty" / folder / f"{name}.png",
                    (spread * 255).round().astype(np.uint8),
                )
            if self.completion:
                completion = o.completion
                if completion is None:  # not run (e.g. not visible): transparent
                    completion = np.zeros((*o.modal.shape, 4), np.uint8)
                io.write_png(stage / "completion" / folder / f"{name}.png", completion)
            self._summarise(f, o)
        pairs = [(o.modal, o.amodal) for o in result.objects]
        overlay = draw_overlay(result.frame.rgb, pairs, ids=[o.object_id for o in result.objects])
        io.write_png(stage / "overlay" / f"{name}.png", overlay)
        self.video.add(overlay)

    def _summarise(self, f: int, o) -> None:
        entry = self.per_object.setdefault(
            str(o.object_id), {"frames": [], "frames_without_input": []}
        )
        ratio = occlusion_ratio(o.modal[None], o.amodal[None])[0]
        frame = {
            "frame": self.names[f],
            "occlusion_ratio": round(float(ratio), 4),
            "amodal_bbox_xywh": mask_bbox(o.amodal).tolist(),
            "truncated": touches_border(o.amodal),
            "occluders": o.occluders,  # as the node's message: its depth order beside it
            "occluder_depth_order": {i: o.occluder_order.get(i, 0) for i in o.occluders},
            "amodal_valid": bool(o.valid),
        }
        if not o.valid:
            frame["reason"] = REASON_NAMES[o.reason]
        entry["frames"].append(frame)
        if not o.modal.any():  # not visible in this frame, whatever its window saw
            entry["frames_without_input"].append(self.names[f])


def _at_model_rate(clip: folders.Clip, input_fps: float, model_fps: float) -> folders.Clip:
    """The frames the model runs on, said: a 30 fps folder read as 8 fps windows would show
    the model 0.8 s where it expects 3 s."""
    if input_fps < model_fps:
        print(
            f"infer: note: --input-fps {input_fps:g} is below the model's {model_fps:g} fps: "
            "every frame is used, and the model sees them as if at its rate"
        )
        return clip
    used = clip.at_rate(input_fps, model_fps)
    print(
        f"infer: {len(used)} of {len(clip)} frames at the model's {model_fps:g} fps (from "
        f"{input_fps:g}); only those are answered"
    )
    return used


def _summary(args: Args, processor, num_frames: int, per_object, elapsed, windows) -> dict:
    pipelines = processor.pipelines
    config = pipelines.config
    return {
        "command": "infer",  # what --overwrite checks before replacing this folder
        "checkpoint": args.stream.checkpoint,
        "completion_checkpoint": args.stream.completion_checkpoint or None,
        "model": pipelines.describe(),
        "conditioning_mode": config.conditioning_mode,
        "conditioning_mode_reason": pipelines.mode_reason,
        "config": asdict(config),
        "num_frames": num_frames,
        "windows": windows,
        "windows_failed": processor.errors,
        "seconds": round(elapsed, 3),
        "objects": per_object,
    }
