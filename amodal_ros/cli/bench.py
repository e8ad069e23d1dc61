r"""`amodal-ros bench`: the reference call pattern, amodal_ros's default, presets and backends,
side by side on the same model and inputs in one run (amodal_ros/eval/speed.py).

Usage:
    amodal-ros bench                                   # embedded model, CPU
    amodal-ros bench --checkpoint random-full-size --device cuda --dtype float16 \
        --depth-model vitl                             # the published architecture on a GPU

Prints per-stage times, window latency p50/p95, cost per published frame, peak memory and the
speed-up of each scenario over the reference; --out writes the same as JSON.
"""

from __future__ import annotations

import json

from amodal_ros.core.errors import InputError
from amodal_ros.eval.speed import BenchArgs as Args


def run(args: Args) -> dict:
    """Run the benchmark, print its table, and write --out."""
    from amodal_ros.eval.speed import run_bench, table

    if args.out:
        check_out(args.out, args.overwrite)
    result = run_bench(args, on_round=lambda partial: _write(args, partial))
    print(table(result))
    ref = result["scenarios"].get("reference")
    default = result["scenarios"].get("default")
    if ref and default:
        print(
            f"\ndefault vs reference, per window (p50): {default['window_p50_s']:.3f} s "
            f"against {ref['window_p50_s']:.3f} s, {default['speedup_vs_reference']:.2f}x "
            f"faster on {result['device']}"
        )
    if _write(args, result):
        print(f"wrote {args.out}")
    return result


def check_out(out, overwrite: bool) -> None:
    """Before the timing, not after: --out is a new file, or with --overwrite an earlier
    result of bench (never another file)."""
    if out.is_dir():
        raise InputError(
            f"--out {out} is a folder; bench writes one JSON file, e.g. --out {out / 'bench.json'}"
        )
    from amodal_ros.core.staging import check_makeable

    check_makeable(out, "--out")  # found after the whole benchmark
    if not out.exists():
        return
    if not overwrite:
        raise InputError(f"--out {out} exists; pass --overwrite or choose another --out")
    try:
        earlier = json.loads(out.read_text())
    except (ValueError, OSError):
        earlier = None
    if not (isinstance(earlier, dict) and "scenarios" in earlier):
        raise InputError(
            f"--overwrite replaces an earlier bench result, and {out} is not one (no "
            "'scenarios'); nothing was deleted: choose another --out"
        )


def _write(args: Args, result: dict) -> bool:
    """--out, whole (staged): after every round, so a run cut short (a GPU session's time
    limit) keeps the windows it timed, marked "partial"."""
    if not args.out:
        return False
    from amodal_ros.core.staging import staged_path

    with staged_path(args.out) as staged:
        staged.write_text(json.dumps(result, indent=2))
    return True
