"""Carry a run's last saved training state to another machine, to continue it there: a run
longer than one session (the GPU machine's 15 minutes, a CPU run of hours) survives only
in what is carried, and fine-tuning from a checkpoint would restart the optimizer's moments
and the learning-rate schedule.

`pack_state` writes `run.json` (kind "state": the run's config, timing and loss log, the
optimizer's settings and the schedule's place) and every tensor of the state (the model's
weights, the optimizer's moments, a pixel student's decoder) in its own dtype, exactly, as
safetensors shards. `unpack_state` rebuilds `RUN/state` in the form `train` resumes from, so
the same train command with `--out RUN` continues the run; nothing carried is a pickle. The
random generators' states stay behind: every batch item draws from its own stream, seeded by
step and position (`loop.item_random`). A distillation's teacher samples (`targets/`) are
not carried; a resumed distillation renders them again.

Usage (the CLI is `carry`'s):
    python -m amodal_ros.train.carry pack --state RUN PACKED
    python -m amodal_ros.train.carry unpack PACKED RUN
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from amodal_ros.core.staging import staged_path

KIND = "state"
MODEL_FILE = "model.safetensors"  # accelerate's name for the prepared model's weights
DECODER_FILE = "decoder.safetensors"  # loop.DECODER_STATE: a pixel student's decoder
OPTIMIZER_FILE = "optimizer.bin"  # accelerate's names; it reads them with weights_only=True
SCHEDULER_FILE = "scheduler.bin"


def pack_state(run: Path, packed: Path, shard_mib: float) -> list[Path]:
    """Write `run`'s saved state (`run/state`, the last save) and logs into `packed`; returns
    the files written. A run still training may be packed between two saves (a save swaps
    `state/` in whole, in a moment)."""
    from safetensors.torch import load_file

    from amodal_ros.train.carry import RUN_FILES, write_packed

    state = run / "state"
    if not (state / "step.json").is_file():
        raise FileNotFoundError(f"{run} has no saved training state (no state/step.json)")
    tensors = {
        f"{name}:{key}": value
        for name in _weight_files(state)
        for key, value in load_file(state / name).items()
    }
    optimizer = _torch_load(state / OPTIMIZER_FILE)
    moments: dict[str, dict] = {}
    for index, entry in optimizer["state"].items():
        moments[str(index)] = {k: v for k, v in entry.items() if not torch.is_tensor(v)}
        tensors |= {f"optimizer:{index}:{k}": v for k, v in entry.items() if torch.is_tensor(v)}
    record = {
        "kind": KIND,
        "run": {name: (run / name).read_text() for name in RUN_FILES if (run / name).is_file()},
        "step": json.loads((state / "step.json").read_text())["step"],
        "weight_files": _weight_files(state),
        "param_groups": optimizer["param_groups"],
        "moments": moments,  # each parameter's non-tensor entries (none for AdamW today)
        "scheduler": _torch_load(state / SCHEDULER_FILE),
    }
    try:
        json.dumps(record)
    except TypeError as error:
        raise ValueError(
            f"{state}: the optimizer's or schedule's state is not plain values"
        ) from error
    return write_packed(packed, record, tensors, shard_mib)


def unpack_state(packed: Path, run: Path, record: dict) -> Path:
    """Rebuild `run` (its logs, config and `state/`) from `packed`; returns `run / 'state'`."""
    from safetensors.torch import save_file

    from amodal_ros.train.carry import read_shards, write_text

    state = run / "state"
    if state.exists():
        raise FileExistsError(f"{state} exists: unpack into a new run folder")
    files = read_shards(packed, record)  # all read first: a shard may be missing
    moments = {index: dict(extra) for index, extra in record["moments"].items()}
    for key, value in files.pop("optimizer", {}).items():  # "INDEX:NAME"
        index, name = key.split(":")
        moments[index][name] = value
    optimizer = {
        "state": {int(index): entry for index, entry in moments.items()},
        "param_groups": [_tuple_betas(group) for group in record["param_groups"]],
    }
    for name, text in record["run"].items():
        write_text(run / name, text)
    with staged_path(state) as staged:  # state/ appears whole or not at all
        staged.mkdir()
        for name in record["weight_files"]:
            save_file(files[name], str(staged / name), metadata={"format": "pt"})
        torch.save(optimizer, staged / OPTIMIZER_FILE)
        torch.save(record["scheduler"], staged / SCHEDULER_FILE)
        (staged / "step.json").write_text(json.dumps({"step": record["step"]}))
    return state


def _weight_files(state: Path) -> list[str]:
    return [name for name in (MODEL_FILE, DECODER_FILE) if (state / name).is_file()]


def _torch_load(path: Path):
    """One of the run's own state files, read as accelerate reads it: tensors and plain
    values only, never code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _tuple_betas(group: dict) -> dict:
    """An optimizer's parameter group as saved: JSON turned its tuple of betas into a list."""
    return {**group, "betas": tuple(group["betas"])} if "betas" in group else group
