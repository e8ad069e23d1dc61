"""Judge student1_batch4 by its rule (README.md beside this, fixed in session 24 before any
result), so the decision is the rule's and not a reading of the numbers afterwards.

Each model's validation scores are kept in JSON under --scores (one file per model, clips
and thresholds; commit them), so a session can score the shipped student while the run
trains and the next one only its final weights. Run from the project root:

    scripts/with_env.sh python runs/student1_batch4/judge.py train_out/student1_batch4/final
    scripts/with_env.sh python runs/student1_batch4/judge.py --shipped-only   # ahead of time
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SHIPPED = "amodal_ros/models/embedded/student1"
SHIPPED_THRESHOLD = 400
CANDIDATES = (350, 400, 450)
CHOICE = (0, 30)  # validation clips the threshold is chosen on: (start, count)
CONFIRM = ((270, 30), (300, 30))  # clips the run must win on, each
LIMITS = {  # the rule's bounds against the shipped student on each confirmation set
    "mIoU": -0.5,  # no more than 0.5 points lower
    "mIoU_occ_all_newest": -1.0,
}
STRAY_MAX, AREA_MAX = 2.0, 1.15


def scores(checkpoint: str, clips: tuple[int, int], thresholds, folder: Path) -> dict:
    """{threshold: mean scores} of `checkpoint` (preset realtime) on validation `clips`,
    read from `folder` when scored before."""
    name = f"{'shipped' if checkpoint == SHIPPED else 'run'}-{_weights_id(checkpoint)}"
    path = folder / f"{name}_val{clips[0]}-{sum(clips) - 1}_{'-'.join(map(str, thresholds))}.json"
    if path.is_file():
        return {int(t): s for t, s in json.loads(path.read_text())["scores"].items()}
    from amodal_ros.core.staging import staged_path
    from amodal_ros.eval.calibrate import validation_scores

    result = validation_scores(checkpoint, "realtime", clips[0], clips[1], thresholds)
    folder.mkdir(parents=True, exist_ok=True)
    with staged_path(path) as staged:
        staged.write_text(json.dumps({"checkpoint": checkpoint, "scores": result}, indent=1))
    return result


def _weights_id(checkpoint: str) -> str:
    """The start of the UNet weights' SHA-256: scores kept for other weights are not these."""
    import hashlib

    weights = Path(checkpoint) / "unet" / "diffusion_pytorch_model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:12]


def failures(run: dict, shipped: dict) -> list[str]:
    """What the run's scores on one confirmation set break of the rule (empty: it passes)."""
    broken = [
        f"{key} {run[key]:.2f} not above {shipped[key]:.2f}"
        for key in ("mIoU_occ", "mIoU_occ_all")
        if not run[key] > shipped[key]
    ]
    broken += [
        f"{key} {run[key]:.2f} more than {-margin} below {shipped[key]:.2f}"
        for key, margin in LIMITS.items()
        if not run[key] >= shipped[key] + margin  # NaN (nothing to score) fails too
    ]
    if not run["stray_share"] <= STRAY_MAX:
        broken.append(f"stray {run['stray_share']:.2f} % over {STRAY_MAX}")
    if not run["area_ratio_median"] <= AREA_MAX:
        broken.append(f"area ratio {run['area_ratio_median']:.3f} over {AREA_MAX}")
    return broken


def main() -> int:
    """Print the verdict as JSON; the shipped student's scores first (they never change)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("final", nargs="?", help="the run's final checkpoint folder")
    parser.add_argument("--shipped-only", action="store_true", help="score the shipped student")
    parser.add_argument("--scores", type=Path, default=Path(__file__).parent / "scores")
    ns = parser.parse_args()
    shipped = {c: scores(SHIPPED, c, (SHIPPED_THRESHOLD,), ns.scores) for c in CONFIRM}
    if ns.shipped_only:
        return 0
    if not ns.final or not (Path(ns.final) / "model_index.json").is_file():
        parser.error("give the run's final checkpoint folder (its final weights only)")
    choice = scores(ns.final, CHOICE, CANDIDATES, ns.scores)
    threshold = max(CANDIDATES, key=lambda t: choice[t]["mIoU"])
    verdict: dict = {"threshold": threshold, "sets": {}}
    for clips in CONFIRM:
        run = scores(ns.final, clips, (threshold,), ns.scores)[threshold]
        old = shipped[clips][SHIPPED_THRESHOLD]
        verdict["sets"][f"val {clips[0]}-{sum(clips) - 1}"] = {
            "run": run,
            "shipped": old,
            "failures": failures(run, old),
        }
    verdict["ships"] = not any(s["failures"] for s in verdict["sets"].values())
    print(json.dumps(verdict, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
