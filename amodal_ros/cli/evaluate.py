"""`amodal-ros eval`: mIoU / mIoU_occ of the model and the baselines on held-out clips.

Usage:
    amodal-ros eval --out eval_out                         # baselines only, 20 test clips
    amodal-ros eval --out eval_out --checkpoint embedded --completion-checkpoint embedded
    amodal-ros eval --out eval_out --checkpoint CKPT [--completion-checkpoint CKPT2] \
        [--clips 100] [--samples 3] [--data data/synth] [--height 128 --width 256]

Writes results.md (table), results.json and examples.png (RGB, ground truth, each method).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amodal_ros.cli.infer import add_config_arguments, sized_config_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--clips", type=int, default=20, help="held-out test clips")
    parser.add_argument("--data", type=Path, help="folder of clip folders (amodal-ros synth)")
    parser.add_argument(
        "--checkpoint", help="stage-1 checkpoint folder to evaluate, or 'embedded'"
    )
    parser.add_argument("--completion-checkpoint", help="stage-2 checkpoint folder, or 'embedded'")
    parser.add_argument("--frames", type=int, default=25, help="frames per generated clip")
    parser.add_argument("--clip-height", type=int, default=128)
    parser.add_argument("--clip-width", type=int, default=256)
    parser.add_argument("--no-progress", action="store_true")
    add_config_arguments(parser)
    # Working size and window default by model: 32x64 for the embedded one, else the published.
    parser.set_defaults(height=None, width=None, window=None)


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.eval.run import EvalArgs
    from amodal_ros.eval.run import run as run_eval

    if ns.clips < 1:
        raise ValueError(f"--clips must be >= 1, got {ns.clips}")
    summary = run_eval(
        EvalArgs(
            out=ns.out,
            clips=ns.clips,
            data=ns.data,
            checkpoint=ns.checkpoint,
            completion_checkpoint=ns.completion_checkpoint,
            config=sized_config_from(ns, ns.checkpoint),
            frames=ns.frames,
            height=ns.clip_height,
            width=ns.clip_width,
            progress=not ns.no_progress,
        )
    )
    print((ns.out / "results.md").read_text(), end="")
    print(f"wrote {ns.out}/results.md, results.json, examples.png")
    return summary
