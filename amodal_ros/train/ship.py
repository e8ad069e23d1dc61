"""Copy trained checkpoints into the package as the embedded default model.

Only what the loader reads is copied (safetensors weights and JSON configs; never training
state), plus TRAINING.json: each run's config, wall time and last logged losses, which the
model card quotes.

Usage:
    python -m amodal_ros.train.ship train_out     # runs vae, stage1_masks, stage1, stage2
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

RUNS = ("vae", "stage1_masks", "stage1", "stage2")
SHIPPED = {"stage1": "stage1", "stage2": "stage2"}  # run -> embedded folder
KEPT_SUFFIXES = (".safetensors", ".json")


def ship(train_out: Path, dest: Path | None = None) -> Path:
    """Copy train_out/{stage1,stage2}/final into `dest` (the embedded folder); returns it."""
    from amodal_ros.models.registry import EMBEDDED_ROOT

    dest = dest or EMBEDDED_ROOT
    for run, folder in SHIPPED.items():
        source = train_out / run / "final"
        if not (source / "model_index.json").is_file():
            raise FileNotFoundError(f"{source} is not a finished checkpoint (no model_index.json)")
        target = dest / folder
        shutil.rmtree(target, ignore_errors=True)
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in KEPT_SUFFIXES:
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.relative_to(source))
    report = {run: _run_report(train_out / run) for run in RUNS if (train_out / run).is_dir()}
    (dest / "TRAINING.json").write_text(json.dumps(report, indent=2))
    return dest


def _run_report(run: Path) -> dict:
    config = json.loads((run / "train_config.json").read_text())
    timing_path = run / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else []
    with open(run / "loss.csv") as f:
        rows = [(int(s), float(v)) for s, v in list(csv.reader(f))[1:]]
    tail = [v for _, v in rows[-20:]]
    return {
        "config": config,
        "sessions": timing,
        "seconds": round(sum(t["seconds"] for t in timing), 1),
        "steps": rows[-1][0] if rows else 0,
        "loss_first_logged": rows[0][1] if rows else None,
        "loss_last_20_logged_mean": round(sum(tail) / len(tail), 6) if tail else None,
    }


if __name__ == "__main__":
    print(ship(Path(sys.argv[1] if len(sys.argv) > 1 else "train_out")))
