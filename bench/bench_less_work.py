"""What fewer steps, no guidance and warm start cost in mask quality, on sliding windows.

Usage:
    scripts/with_env.sh python bench/bench_less_work.py [--clips 8] [--frames 40] [--stride 5] \
        [--split val] [--start 1100]

Runs the embedded model over validation clips (a choice is made on them, never on the test
split) as the node would (a window every
`stride` frames, one encoding cache, only new frames decoded) once per configuration, and
prints mIoU / mIoU_occ of the published frames (windows after each clip's first), UNet
evaluations per object window and the median window time, all from this one run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.data.scenes import make_scene, split_seeds
from amodal_ros.eval.sliding import evaluate_sliding
from amodal_ros.pipeline.factory import build
from amodal_ros.pipeline.sampling import warm_start_step

CONFIGS = {  # name: (steps, guidance, warm start share)
    "cold 25 steps": (25, 1.5, 0.0),
    "cold 10 steps": (10, 1.5, 0.0),
    "warm 0.4 x 25 = 10 steps": (25, 1.5, 0.4),
    "cold 8 steps": (8, 1.5, 0.0),
    "warm 0.3 x 25 = 8 steps": (25, 1.5, 0.3),
    "warm 0.2 x 25 = 5 steps": (25, 1.5, 0.2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--start", type=int, default=1100, help="first clip index of the split")
    parser.add_argument("--out", type=Path, default=Path("bench_out/less_work.json"))
    parser.add_argument("--only", nargs="*", help="run only these configuration names")
    args = parser.parse_args()

    clips = [
        make_scene(seed, num_frames=args.frames, height=128, width=256)
        for seed in split_seeds(args.split, args.clips, args.start)
    ]
    pipes = build(StreamConfig(checkpoint="embedded"), InferenceConfig())
    base = pipes.config
    rows = {}
    print("| configuration | UNet evaluations | mIoU | mIoU_occ | mIoU_occ_all | window s (p50) |")
    print("|---|---|---|---|---|---|")
    for name, (steps, guidance, warm) in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        config = base.replace(
            num_steps=steps, min_guidance=guidance, max_guidance=guidance, warm_start=warm
        )
        r = evaluate_sliding(pipes.with_config(config), clips, args.stride)
        steps = steps - warm_start_step(steps, warm)  # steps run after the first window
        r["unet_evaluations"] = steps * (2 if config.uses_guidance else 1)
        rows[name] = r
        print(
            f"| {name} | {r['unet_evaluations']} | {r['mIoU']:.2f} | {r['mIoU_occ']:.2f} | "
            f"{r['mIoU_occ_all']:.2f} | {r['window_s_p50']:.2f} |",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"clips": args.clips, "frames": args.frames, "stride": args.stride}
    meta["threads"] = torch.get_num_threads()
    args.out.write_text(json.dumps({"setup": meta, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
