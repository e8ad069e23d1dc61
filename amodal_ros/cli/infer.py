"""`amodal-ros infer`: amodal masks (and completions) for a folder of frames and modal masks.

Usage:
    amodal-ros infer --frames clip/rgb --masks clip/labels [--depth clip/depth] \
        --checkpoint diffusion-vas-amodal-segmentation \
        [--completion-checkpoint diffusion-vas-content-completion] [--depth-model da2-small] \
        --out results/

Writes amodal/, soft/, (uncertainty/), (completion/), overlay/ PNGs per object and frame,
overlay.gif/.mp4 and summary.json. The output folder appears only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amodal_ros.cli import io
from amodal_ros.core.config import PRESETS, UNET_BACKENDS, InferenceConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.types import ObjectTrack, mask_bbox, occluders, occlusion_ratio

log = logging.getLogger("amodal_ros.infer")


@dataclass
class InferArgs:
    frames: Path
    masks: Path
    checkpoint: Path
    out: Path
    depth: Path | None = None
    depth_model: Path | None = None
    completion_checkpoint: Path | None = None
    overwrite: bool = False
    fps: float = 8.0  # of the overlay video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames", type=Path, required=True, help="folder of RGB frames (PNG/JPG)"
    )
    parser.add_argument(
        "--masks",
        type=Path,
        required=True,
        help="folder of instance-label images (one per frame, 0 = background) "
        "or of one binary-mask folder per object",
    )
    parser.add_argument(
        "--depth", type=Path, help="camera depth: 16-bit PNG (mm) or float .npy (m)"
    )
    parser.add_argument("--depth-model", type=Path, help="Depth Anything V2 folder (transformers)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="stage-1 checkpoint folder")
    parser.add_argument("--completion-checkpoint", type=Path, help="stage-2 checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_config_arguments(parser)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = InferenceConfig()
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--dtype", default=defaults.dtype, choices=["float32", "float16", "bfloat16"]
    )
    parser.add_argument("--steps", type=int, default=defaults.num_steps, help="sampling steps")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--samples", type=int, default=1, help="hypotheses per object (Top-k)")
    parser.add_argument("--guidance", type=float, default=defaults.max_guidance)
    parser.add_argument(
        "--mode", default=defaults.conditioning_mode, choices=["consistent", "reference"]
    )
    parser.add_argument("--height", type=int, default=defaults.height, help="working height")
    parser.add_argument("--width", type=int, default=defaults.width, help="working width")
    parser.add_argument(
        "--window", type=int, default=defaults.num_frames, help="frames per window"
    )
    parser.add_argument(
        "--batch", type=int, default=defaults.max_batch_objects, help="objects per UNet call"
    )
    parser.add_argument(
        "--preset",
        default="",
        choices=["", *PRESETS],
        help="speed/quality preset (sets --steps, --guidance and --warm-start)",
    )
    parser.add_argument(
        "--warm-start",
        type=float,
        default=defaults.warm_start,
        help="share of the steps run from the previous overlapping window (0 = cold)",
    )
    parser.add_argument(
        "--unet-backend", default=defaults.unet_backend, choices=list(UNET_BACKENDS)
    )
    parser.add_argument(
        "--engine-cache", default="", help="ONNX/TensorRT cache folder (~/.cache/amodal_ros)"
    )


def config_from(ns: argparse.Namespace) -> InferenceConfig:
    return InferenceConfig(
        device=ns.device,
        dtype=ns.dtype,
        num_steps=ns.steps,
        seed=ns.seed,
        num_samples=ns.samples,
        min_guidance=ns.guidance,
        max_guidance=ns.guidance,
        conditioning_mode=ns.mode,
        height=ns.height,
        width=ns.width,
        num_frames=ns.window,
        max_batch_objects=ns.batch,
        warm_start=ns.warm_start,
        unet_backend=ns.unet_backend,
        engine_cache=ns.engine_cache,
        preset=ns.preset,
    )


def sized_config_from(ns: argparse.Namespace, checkpoint: str) -> InferenceConfig:
    """config_from(ns) where an unset (None) --height/--width/--window takes the model's default:
    the embedded model's settings (its 32x64 working size) for 'embedded', else the published
    ones."""
    from amodal_ros.models import embedded

    defaults = InferenceConfig(**embedded.settings_for(checkpoint))
    sized = argparse.Namespace(**vars(ns))
    sized.height = defaults.height if ns.height is None else ns.height
    sized.width = defaults.width if ns.width is None else ns.width
    sized.window = defaults.num_frames if ns.window is None else ns.window
    return config_from(sized).replace(rgb_sum_threshold=defaults.rgb_sum_threshold)


def window_starts(num_frames: int, window: int) -> list[int]:
    """Non-overlapping windows; the last one is aligned to the clip's end (it may overlap)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, window))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def run(args: InferArgs, config: InferenceConfig) -> dict:
    """Run stage 1 (and stage 2) over the clip and write the results; returns the summary."""
    from amodal_ros.pipeline import AmodalSegmenter, ContentCompleter, FrameEncodingCache
    from amodal_ros.pipeline.overlay import draw_overlay

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
            f"size mismatch: frames are {rgb.shape[2]}x{rgb.shape[1]}, masks are {w}x{h}"
        )
    if args.depth is not None and args.depth_model is not None:
        raise InputError(
            "pass either --depth (camera depth) or --depth-model (Depth Anything), not both"
        )
    camera_depth = None
    if args.depth is not None:
        camera_depth = io.read_depth(args.depth)
        if camera_depth[0].shape != (t, h, w):
            raise InputError(
                f"depth has shape {camera_depth[0].shape}, expected {(t, h, w)} "
                "to match the frames"
            )

    # 2. models
    segmenter = AmodalSegmenter.from_pretrained(args.checkpoint, config)
    if segmenter.needs_depth and camera_depth is None and args.depth_model is None:
        raise InputError(
            f"{args.checkpoint} is a mask+depth model: pass --depth DIR or --depth-model DIR"
        )
    completer = (
        ContentCompleter.from_pretrained(args.completion_checkpoint, config)
        if args.completion_checkpoint
        else None
    )
    inverse_depth = None
    if segmenter.needs_depth:
        inverse_depth = _inverse_depth(args, config, rgb, camera_depth)

    # 3. windows
    started = time.perf_counter()
    cache = FrameEncodingCache()
    amodal = {i: np.zeros_like(m) for i, m in objects.items()}
    soft = {i: np.zeros(m.shape, np.float32) for i, m in objects.items()}
    disagreement = {i: np.zeros(m.shape, np.float32) for i, m in objects.items()}
    completion = {i: np.zeros((*m.shape, 4), np.uint8) for i, m in objects.items()}
    done = np.zeros(t, bool)
    skipped: dict[int, list[int]] = {}
    starts = window_starts(t, config.num_frames)
    for start in tqdm(starts, desc="windows", unit="window"):
        span = slice(start, min(t, start + config.num_frames))
        new = ~done[span]
        keys = list(range(span.start, span.stop))
        tracks = []
        for i, m in objects.items():
            if m[span].any():
                tracks.append(ObjectTrack(i, m[span], frame_keys=keys))
            else:  # not visible in this window: its new frames stay empty, and are reported
                skipped.setdefault(i, []).extend(np.array(keys)[new].tolist())
        if not tracks:
            done[span] = True
            continue
        depth = None if inverse_depth is None else inverse_depth[span]
        results = segmenter(tracks, depth, cache=cache)
        for r in results:
            amodal[r.object_id][span][new] = r.amodal[new]
            soft[r.object_id][span][new] = r.soft[new]
            if r.disagreement is not None:
                disagreement[r.object_id][span][new] = r.disagreement[new]
        if completer is not None:
            for c in completer(rgb[span], results, cache=cache):
                completion[c.object_id][span][new] = c.rgba[new]
        done[span] = True
    elapsed = time.perf_counter() - started

    # 4. write
    summary = _summary(args, config, names, labels, objects, amodal, skipped, elapsed, len(starts))
    with io.staged_output(args.out, args.overwrite) as stage:
        overlays = []
        for f, name in enumerate(names):
            for i in objects:
                io.write_png(
                    stage / "amodal" / f"obj_{i}" / f"{name}.png",
                    amodal[i][f].astype(np.uint8) * 255,
                )
                io.write_png(
                    stage / "soft" / f"obj_{i}" / f"{name}.png",
                    (soft[i][f] * 255).round().astype(np.uint8),
                )
                if config.num_samples > 1:
                    io.write_png(
                        stage / "uncertainty" / f"obj_{i}" / f"{name}.png",
                        (disagreement[i][f] * 255).round().astype(np.uint8),
                    )
                if completer is not None:
                    io.write_png(
                        stage / "completion" / f"obj_{i}" / f"{name}.png", completion[i][f]
                    )
            overlay = draw_overlay(rgb[f], [(objects[i][f], amodal[i][f]) for i in objects])
            io.write_png(stage / "overlay" / f"{name}.png", overlay)
            overlays.append(overlay)
        videos = io.write_videos(stage, "overlay", overlays, args.fps)
        summary["videos"] = [str(args.out / v.name) for v in videos]
        (stage / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _inverse_depth(args, config, rgb, camera_depth) -> np.ndarray:
    if camera_depth is not None:
        from amodal_ros.depth.camera import inverse_depth_from_camera

        return inverse_depth_from_camera(*camera_depth)
    import torch

    from amodal_ros.depth.depth_anything import DepthAnythingDepth

    estimator = DepthAnythingDepth.from_pretrained(
        args.depth_model, device=config.device, dtype=getattr(torch, config.dtype)
    )
    return estimator.inverse_depth(rgb)


def _summary(args, config, names, labels, objects, amodal, skipped, elapsed, windows) -> dict:
    per_object = {}
    for i, modal in objects.items():
        ratio = occlusion_ratio(modal, amodal[i])
        frames = [
            {
                "frame": name,
                "occlusion_ratio": round(float(ratio[f]), 4),
                "amodal_bbox_xywh": mask_bbox(amodal[i][f]).tolist(),
                "occluders": occluders(labels[f], modal[f], amodal[i][f]),
            }
            for f, name in enumerate(names)
        ]
        per_object[str(i)] = {"frames": frames, "frames_without_input": skipped.get(i, [])}
    return {
        "checkpoint": str(args.checkpoint),
        "completion_checkpoint": str(args.completion_checkpoint)
        if args.completion_checkpoint
        else None,
        "config": asdict(config),
        "num_frames": len(names),
        "windows": windows,
        "seconds": round(elapsed, 3),
        "objects": per_object,
    }
