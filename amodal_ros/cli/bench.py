"""`amodal-ros bench`: the reference call pattern, amodal_ros's default, presets and backends,
side by side on the same model and inputs in one run (amodal_ros/eval/speed.py).

Usage:
    amodal-ros bench                                   # embedded model, CPU
    amodal-ros bench --checkpoint random-full-size --device cuda --dtype float16 \
        --height 256 --width 512 --depth-model vitl    # the published architecture on a GPU

Prints per-stage times, window latency p50/p95, cost per published frame, peak memory and the
speed-up of each scenario over the reference; --out writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from amodal_ros.cli.infer import add_config_arguments, sized_config_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default="embedded",
        help="'embedded' (default), a checkpoint folder, 'tiny' or 'random-full-size'",
    )
    parser.add_argument(
        "--depth-model",
        default="",
        help="Depth Anything folder, or random 'vits'/'vitb'/'vitl'/'tiny'; empty: the "
        "scene's camera depth",
    )
    parser.add_argument("--windows", type=int, default=3, help="timed windows per scenario")
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--publish", default="latest", choices=["latest", "new"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--skip", nargs="*", default=[], help="scenario names to leave out")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    add_config_arguments(parser)
    parser.set_defaults(height=None, width=None, window=None)


def run(ns: argparse.Namespace) -> dict:
    from amodal_ros.eval.speed import BenchArgs, run_bench, table

    if ns.windows < 1:
        raise ValueError(f"--windows must be >= 1, got {ns.windows}")
    sized = ns.checkpoint if ns.checkpoint != "tiny" else "embedded"
    result = run_bench(
        BenchArgs(
            checkpoint=ns.checkpoint,
            config=sized_config_from(ns, sized),
            depth_model=ns.depth_model,
            windows=ns.windows,
            stride=ns.stride,
            publish=ns.publish,
            compile=ns.compile,
            skip=tuple(ns.skip),
        )
    )
    print(table(result))
    ref = result["scenarios"].get("reference")
    default = result["scenarios"].get("default")
    if ref and default:
        print(
            f"\ndefault vs reference, per window (p50): {ref['window_p50_s']:.3f} s / "
            f"{default['window_p50_s']:.3f} s = {default['speedup_vs_reference']:.2f}x "
            f"on {result['device']}"
        )
    if ns.out:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {ns.out}")
    return result
