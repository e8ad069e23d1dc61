"""`amodal-ros demo`: the whole pipeline on a synthetic RGB-D clip, no downloads needed.

Until the trained embedded model ships, this uses a tiny *untrained* model with seeded random
weights: it shows the pipeline and the outputs, not the method's quality.

Usage:
    amodal-ros demo --out demo_out
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from amodal_ros.cli import io
from amodal_ros.cli.infer import InferArgs
from amodal_ros.cli.infer import run as run_infer
from amodal_ros.core.config import InferenceConfig

UNTRAINED_NOTE = (
    "NOTE: the demo model is UNTRAINED (tiny architecture, seeded random weights): the outputs "
    "show the pipeline running, not amodal segmentation quality. Pass --checkpoint DIR for real "
    "Diffusion-VAS weights."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--frames", type=int, default=25, help="frames in the synthetic clip")
    parser.add_argument("--steps", type=int, default=25, help="sampling steps")
    parser.add_argument(
        "--checkpoint", type=Path, help="stage-1 checkpoint (default: tiny untrained)"
    )
    parser.add_argument("--completion-checkpoint", type=Path, help="stage-2 checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--overwrite", action="store_true", default=True)


def write_clip(folder: Path, num_frames: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Synthetic clip as the folders `infer` reads: rgb/, labels/ (16-bit), depth/ (16-bit mm)."""
    from amodal_ros.data.synthetic import make_clip

    clip = make_clip(num_frames=num_frames, height=128, width=256, seed=seed)
    for t in range(num_frames):
        io.write_png(folder / "rgb" / f"{t:04d}.png", clip.rgb[t])
        io.write_png(folder / "labels" / f"{t:04d}.png", clip.labels[t])
        io.write_png(folder / "depth" / f"{t:04d}.png", (clip.depth[t] * 1000).astype(np.uint16))
    return folder / "rgb", folder / "labels", folder / "depth"


def run(ns: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="amodal_demo_") as tmp:
        return _run(ns, Path(tmp))


def _run(ns: argparse.Namespace, work: Path) -> dict:
    out: Path = ns.out
    frames, masks, depth = write_clip(work, ns.frames)
    stage1, stage2 = ns.checkpoint, ns.completion_checkpoint
    untrained = stage1 is None
    if untrained:
        from amodal_ros.models.tiny import build_tiny_components, save_published_layout

        print(UNTRAINED_NOTE, flush=True)
        stage1 = save_published_layout(build_tiny_components(seed=0), work / "tiny_stage1")
        stage2 = stage2 or save_published_layout(
            build_tiny_components(seed=1), work / "tiny_stage2"
        )
    # The tiny model works at 64x128 (8x16 latents); real checkpoints at the published 256x512.
    size = dict(height=64, width=128) if untrained else {}
    config = InferenceConfig(num_steps=ns.steps, device=ns.device, **size)
    summary = run_infer(
        InferArgs(
            frames=frames,
            masks=masks,
            depth=depth,
            checkpoint=stage1,
            completion_checkpoint=stage2,
            out=out,
            overwrite=ns.overwrite,
        ),
        config,
    )
    summary["untrained_model"] = untrained
    if untrained:
        print(UNTRAINED_NOTE, flush=True)
    return summary
