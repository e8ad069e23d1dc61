r"""`amodal-ros infer`: amodal masks (and completions) for a folder of frames and modal masks.

Usage:
    amodal-ros infer --frames clip/rgb --masks clip/labels [--depth clip/depth] \
        --checkpoint diffusion-vas-amodal-segmentation \
        [--completion-checkpoint diffusion-vas-content-completion] [--depth-model da2-small] \
        --out results/

The clip is windowed as replay windows a recording: windows of `--num-frames` every
`--stride` frames (`WindowBuffer` offline), each frame answered by the window it sits nearest
the middle of, and each window goes through the same WindowProcessor the node runs. Writes
amodal/, soft/, (uncertainty/), (completion/), overlay/ PNGs per object and frame,
overlay.mp4 (and overlay.gif, up to 200 frames) and summary.json. The output folder appears
only when everything succeeded.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import MISSING, asdict, dataclass
from pathlib import Path

import numpy as np

from amodal_ros.cli import io
from amodal_ros.core.config import (
    OFFLINE_DEFAULT_CHECKPOINT,
    InferenceConfig,
    StreamConfig,
    group,
    param,
)
from amodal_ros.core.errors import InputError, ProcessingError
from amodal_ros.core.frames import REASON_EMPTY_MODAL, frames_from_arrays
from amodal_ros.core.types import mask_bbox, occluders, occlusion_ratio, touches_border

log = logging.getLogger("amodal_ros.infer")


def infer_stream() -> StreamConfig:
    """Infer's stream: the embedded model by default, every frame of a window answered."""
    return StreamConfig(checkpoint=OFFLINE_DEFAULT_CHECKPOINT, publish_frames="new")


@dataclass
class Args:
    """What `amodal-ros infer` reads and writes."""

    frames: Path = param(MISSING, "folder of RGB frames (PNG/JPG)")
    masks: Path = param(
        MISSING,
        "folder of instance-label images (one per frame, 0 = background) or of one "
        "binary-mask folder per object",
    )
    out: Path = param(MISSING, "output folder (created)")
    depth: Path | None = param(None, "camera depth folder: 16-bit PNG (mm) or float .npy (m)")
    overwrite: bool = param(False, "replace a non-empty --out")
    video_fps: float = param(8.0, "frame rate of the overlay video", 0.1)
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
    from amodal_ros.pipeline.stream import check_stride
    from amodal_ros.pipeline.window import Window, WindowBuffer, centred_hold_back

    # 1. read and check inputs (before loading any model)
    io.check_output(args.out, args.overwrite)
    rgb, names = io.read_rgb(args.frames)
    labels, objects = io.read_masks(args.masks)
    t, h, w = labels.shape
    if len(rgb) != t:
        raise InputError(
            f"frame count mismatch: {len(rgb)} frames in {args.frames}, {t} masks in {args.masks}"
        )
    if rgb.shape[1:3] != (h, w):
        raise InputError(
            f"size mismatch: frames are {rgb.shape[1]}x{rgb.shape[2]} (HxW), masks are "
            f"{h}x{w} (HxW)"
        )
    stream = args.stream
    if args.depth is not None and stream.depth_model:
        raise InputError(
            "pass either --depth (camera depth) or --depth-model (Depth Anything), not both"
        )
    depth, encoding = None, "32FC1"
    if args.depth is not None:
        depth, encoding = io.read_depth(args.depth)
        if depth.shape != (t, h, w):
            raise InputError(
                f"depth has shape {depth.shape}, expected {(t, h, w)} to match the frames"
            )
        stream = stream.replace(depth_source="camera")

    # 2. models: the node's processor
    processor = WindowProcessor.from_config(stream, args.inference)
    if processor.depth_source == "camera" and depth is None:
        raise InputError(
            f"{stream.checkpoint} is a mask+depth model: pass --depth DIR or --depth-model DIR"
        )
    if processor.pipelines.note:
        print(processor.pipelines.note)
    config = processor.pipelines.config
    check_stride(stream, config.num_frames)

    # 3. windows through the processor, as replay's offline stream cuts them (every object in
    # every window: the folder's objects are known); each answers the frames it is nearest
    # the middle of
    started = time.perf_counter()
    frames = frames_from_arrays(rgb, labels, depth, encoding)
    index = {f.stamp_ns: i for i, f in enumerate(frames)}
    results: list = [None] * t  # FrameResult per frame
    hold_back = centred_hold_back(config.num_frames, stream.stride)
    buffer = WindowBuffer(config.num_frames, stream.stride, 2**62, 0, hold_back)
    windows = 0

    def answer(cut: Window | None) -> None:
        nonlocal windows
        if cut is None:
            return
        # full even when the clip is shorter than a window: the model runs on what there is
        window = Window(cut.frames, tuple(objects), cut.new_frames, True, held_back=cut.held_back)
        for result in processor.process(window):
            results[index[result.frame.stamp_ns]] = result
        windows += 1

    for frame in tqdm(frames, desc="frames", unit="frame"):
        answer(buffer.push(frame))
    answer(buffer.flush())
    elapsed = time.perf_counter() - started
    if processor.errors:
        raise ProcessingError(
            f"{processor.errors} window(s) failed (the log above says why); nothing was written"
        )

    # 4. write
    summary = _summary(args, processor.pipelines, names, labels, results, elapsed, windows)
    with io.staged_output(args.out, args.overwrite) as stage:
        videos = _write_frames(stage, names, results, config.num_samples > 1, args.video_fps)
        summary["videos"] = [str(args.out / v.name) for v in videos]
        (stage / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"wrote {args.out}: {len(objects)} objects x {t} frames, {windows} window(s) in "
        f"{elapsed:.1f} s; video: {', '.join(summary['videos']) or 'none (no encoder here)'}"
    )
    return summary


def _write_frames(stage: Path, names, results, uncertainty: bool, fps: float) -> list[Path]:
    from amodal_ros.pipeline.overlay import draw_overlay
    from amodal_ros.pipeline.video import OverlayVideo

    video = OverlayVideo(stage / "overlay", fps=fps)
    completion_on = any(o.completion is not None for r in results for o in r.objects)
    for name, result in zip(names, results):
        for o in result.objects:
            folder = f"obj_{o.object_id}"
            io.write_png(
                stage / "amodal" / folder / f"{name}.png", o.amodal.astype(np.uint8) * 255
            )
            soft = o.soft if o.soft is not None else o.amodal.astype(np.float32)
            io.write_png(
                stage / "soft" / folder / f"{name}.png", (soft * 255).round().astype(np.uint8)
            )
            if uncertainty and o.uncertainty is not None:
                io.write_png(
                    stage / "uncertainty" / folder / f"{name}.png",
                    (o.uncertainty * 255).round().astype(np.uint8),
                )
            if completion_on:
                completion = o.completion
                if completion is None:  # not run (e.g. not visible): transparent
                    completion = np.zeros((*o.modal.shape, 4), np.uint8)
                io.write_png(stage / "completion" / folder / f"{name}.png", completion)
        pairs = [(o.modal, o.amodal) for o in result.objects]
        overlay = draw_overlay(result.frame.rgb, pairs, ids=[o.object_id for o in result.objects])
        io.write_png(stage / "overlay" / f"{name}.png", overlay)
        video.add(overlay)
    return video.close()


def _summary(args: Args, pipelines, names, labels, results, elapsed, windows) -> dict:
    per_object: dict[str, dict] = {}
    for f, (name, result) in enumerate(zip(names, results)):
        for o in result.objects:
            entry = per_object.setdefault(
                str(o.object_id), {"frames": [], "frames_without_input": []}
            )
            ratio = occlusion_ratio(o.modal[None], o.amodal[None])[0]
            entry["frames"].append(
                {
                    "frame": name,
                    "occlusion_ratio": round(float(ratio), 4),
                    "amodal_bbox_xywh": mask_bbox(o.amodal).tolist(),
                    "truncated": touches_border(o.amodal),
                    "occluders": occluders(labels[f], o.modal, o.amodal),
                    "amodal_valid": bool(o.valid),
                }
            )
            if o.reason == REASON_EMPTY_MODAL:
                entry["frames_without_input"].append(f)
    config = pipelines.config
    return {
        "command": "infer",  # what --overwrite checks before replacing this folder
        "checkpoint": args.stream.checkpoint,
        "completion_checkpoint": args.stream.completion_checkpoint or None,
        "model": pipelines.describe(),
        "conditioning_mode": config.conditioning_mode,
        "conditioning_mode_reason": pipelines.mode_reason,
        "config": asdict(config),
        "num_frames": len(names),
        "windows": windows,
        "seconds": round(elapsed, 3),
        "objects": per_object,
    }
