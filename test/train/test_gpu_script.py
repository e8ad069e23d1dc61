"""scripts/train_on_gpu.sh, the device session's training script, on this CPU with a tiny
student: it trains, packs what the GPU machine can send back, and that unpacks to a student."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
if any((ROOT / ".whl").glob("*.whl")):  # scripts/gpu_site.sh installs what it finds there
    pytest.skip(
        "wheels carried for the GPU machine are in .whl/: the script would install them into "
        ".site on this CPU (Python 3.12 wheels); move .whl/ aside to run these tests",
        allow_module_level=True,
    )
# what the device tool brings back from $OUT (its README): 8 files, 16 MiB each, 2 folders down
RETURNED_FILES, RETURNED_MIB, RETURNED_DEPTH = 8, 16, 2


def _run_script(tmp_path, **settings) -> tuple[int, str]:
    """The script with `settings` (its environment variables); (exit code, its steps.log)."""
    tiny = dict(WIDTH="32", STEPS="2", BATCH="2", WORKERS="2", MIXED="no")
    env = {**os.environ, **tiny, **settings, "OUT": str(tmp_path / "out")}
    env["RUN"] = str(tmp_path / "run")
    done = subprocess.run(["bash", "scripts/train_on_gpu.sh"], cwd=ROOT, env=env)
    return done.returncode, (tmp_path / "out" / "steps.log").read_text()


def test_the_gpu_training_script_returns_a_student_within_the_device_limits(tmp_path):
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.carry import unpack

    code, log = _run_script(tmp_path)
    assert code == 0 and "train exit 0" in log and "carried: final" in log, log
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= RETURNED_FILES
    assert all(p.stat().st_size <= RETURNED_MIB * 2**20 for p in files)
    assert all(len(p.relative_to(out).parts) <= RETURNED_DEPTH + 1 for p in files)
    student = load_components(unpack(out / "packed", tmp_path / "back"))
    assert student.is_student and tuple(student.unet.config.block_out_channels) == (32, 64)
    assert student.unet.config.space_time_heads == 4 and student.unet.space_time is not None
    assert student.unet.config.space_time_causal and "(causal 1)" in log


def test_the_gpu_training_script_fails_loudly_when_training_fails(tmp_path):
    code, log = _run_script(tmp_path, WIDTH="33")  # not a multiple of 32: refused
    assert code == 5 and "train exit 2" in log and "pack" not in log, log
    assert not (tmp_path / "out" / "packed").exists()


def _plan(tmp_path, distill: list[str]) -> str:
    import json

    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    rule = {"shipped": "s", "shipped_threshold": 400, "candidates": [400], "choice": [0, 1]}
    (folder / "plan.json").write_text(
        json.dumps({"distill": distill, "rule": {**rule, "confirm": [[1, 1]]}})
    )
    return str(folder)


def test_the_gpu_training_script_runs_a_carried_runs_plan_in_place_of_its_own_student(tmp_path):
    """PLAN trains what the plan says (here a plain 32-wide student), not the script's
    space-time student, so a lent GPU can run a carried run from its start; a plan that
    reuses windows renders them in the training process (workers would refuse it)."""
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.carry import unpack

    plan = _plan(
        tmp_path,
        [
            "--teacher",
            "embedded",
            "--distill-target",
            "truth",
            "--fresh-unet",
            "--unet-width",
            "32",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--sample-reuse",
            "2",
            "--seed",
            "5",
        ],
    )
    code, log = _run_script(tmp_path, PLAN=plan)  # 2 workers asked for
    assert code == 0 and "the plan of" in log and "carried: final" in log, log
    assert "rendered in the training process" in log and "; 0 workers" in log  # they refuse reuse
    student = load_components(unpack(tmp_path / "out" / "packed", tmp_path / "back"))
    assert tuple(student.unet.config.block_out_channels) == (32, 64)
    assert student.unet.space_time is None  # the plan's student, not HEADS=4's


def test_the_gpu_training_script_stops_on_a_plan_that_does_not_load(tmp_path):
    code, log = _run_script(tmp_path, PLAN=_plan(tmp_path, []))
    assert code == 3 and "'distill' must list" in log and "does not load" in log, log
    assert not any(line.endswith("] train") for line in log.splitlines())  # never started
    assert not (tmp_path / "out" / "packed").exists()
