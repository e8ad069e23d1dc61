"""Carry a run's last saved training state to another machine, to continue it there: a run
longer than one session (the GPU machine's 15 minutes, a CPU run of hours) survives only
in what is carried, and fine-tuning from a checkpoint would restart the optimizer's moments
and the learning-rate schedule.

`pack_state` writes `run.json` (kind "state": the run's config, timing and loss log, the
optimizer's settings and the schedule's place) and every tensor of the state (the model's
weights, the optimizer's moments, a pixel student's decoder, a weight average) in its own
dtype, exactly, as safetensors shards. `unpack_state` rebuilds the run folder with `state/`
in the form `train` resumes from, so the same train command with `--out RUN` continues the
run; nothing carried is a pickle. The random generators' states stay behind: every batch
item draws from its own stream, seeded by step and position (`batches.item_random`). A
distillation's teacher samples (`targets/`) are not carried; a resumed distillation renders
them again.

Usage (the CLI is `carry`'s):
    python -m amodal_ros.train.carry pack --state RUN PACKED
    python -m amodal_ros.train.carry unpack PACKED RUN
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from amodal_ros.core.staging import staged_path
from amodal_ros.train.carry import read_shards, run_files, write_packed, write_text
from amodal_ros.train.ema import EMA_STATE
from amodal_ros.train.loop import DECODER_STATE
from amodal_ros.train.run_folder import last_save

KIND = "state"
MODEL_FILE = "model.safetensors"  # accelerate's name for the prepared model's weights
OPTIMIZER_FILE = "optimizer.bin"  # accelerate's names; it reads them with weights_only=True
SCHEDULER_FILE = "scheduler.bin"
STEP_FILE = "step.json"
WEIGHT_FILES = (MODEL_FILE, DECODER_STATE, EMA_STATE)
LEFT_BEHIND = "random_states_"  # accelerate's generator states: every item seeds its own


def pack_state(run: Path, packed: Path, shard_mib: float) -> list[Path]:
    """Write `run`'s saved state (`run/state`, the last save) and logs into `packed`; returns
    the files written. A run still training may be packed: a save swapped in while the state
    was read is an error, not a mix of two saves."""
    from safetensors.torch import load

    state = last_save(run)
    before = _identity(state)
    try:
        contents = _read_state(state)
        swapped = _identity(state) != before
    except FileNotFoundError:  # the save being read was removed by the next one
        swapped = True
    if swapped:
        raise RuntimeError(f"{run} saved again while it was being packed: pack it again")
    tensors = {
        f"{name}:{key}": value
        for name in WEIGHT_FILES
        if name in contents
        for key, value in load(contents[name]).items()
    }
    optimizer = _torch_load(contents[OPTIMIZER_FILE])
    extras: dict[str, dict] = {}  # each parameter's non-tensor entries (none for AdamW today)
    for index, entry in optimizer["state"].items():
        extras[str(index)] = {k: v for k, v in entry.items() if not torch.is_tensor(v)}
        tensors |= {f"optimizer:{index}:{k}": v for k, v in entry.items() if torch.is_tensor(v)}
    record = {
        "kind": KIND,
        "run": run_files(run),
        "step": before[1],
        "param_groups": optimizer["param_groups"],
        "extras": extras,
        "scheduler": _torch_load(contents[SCHEDULER_FILE]),
    }
    _check_plain(record, state)
    return write_packed(packed, record, tensors, shard_mib)


def unpack_state(packed: Path, run: Path, record: dict) -> Path:
    """Rebuild the run folder `run` (its logs, config and `state/`) from `packed`, whole or
    not at all; returns `run / 'state'`."""
    from safetensors.torch import save_file

    files = read_shards(packed, record)  # all read first: a shard may be missing
    unknown = sorted(set(files) - {*WEIGHT_FILES, "optimizer"})
    if unknown:  # data, never a path to write elsewhere
        raise ValueError(f"{packed}: its shards name files a run's state does not hold: {unknown}")
    moments = {index: dict(extra) for index, extra in record["extras"].items()}
    for key, value in files.pop("optimizer", {}).items():  # "INDEX:NAME"
        index, name = key.split(":")
        moments[index][name] = value
    optimizer = {
        "state": {int(index): entry for index, entry in moments.items()},
        "param_groups": [_tuple_betas(group) for group in record["param_groups"]],
    }
    with staged_path(run) as staged:
        for name, text in record["run"].items():
            write_text(staged / name, text)
        state = staged / "state"
        state.mkdir()
        for name, weights in files.items():  # the model's; a decoder's, a weight average
            save_file(weights, str(state / name), metadata={"format": "pt"})
        torch.save(optimizer, state / OPTIMIZER_FILE)
        torch.save(record["scheduler"], state / SCHEDULER_FILE)
        (state / STEP_FILE).write_text(json.dumps({"step": record["step"]}))
    return run / "state"


class UncarriedStateError(ValueError):
    """A save holding what `train` could not resume from elsewhere (fp16's GradScaler)."""


def _identity(state: Path) -> tuple[int, int]:
    """Which save `state/` is: its inode (a save swaps in a new folder) and its step."""
    if not (state / STEP_FILE).is_file():
        raise FileNotFoundError(
            f"{state.parent} has no saved training state (no state/{STEP_FILE}): train it to "
            "its first save (`save_every`), or carry a finished run without --state"
        )
    return state.stat().st_ino, json.loads((state / STEP_FILE).read_text())["step"]


def _read_state(state: Path) -> dict[str, bytes]:
    """Every file of the save as bytes; one `train` could not resume from elsewhere (a
    GradScaler's, a second model's) is an error instead of a state that fails there."""
    known = {*WEIGHT_FILES, OPTIMIZER_FILE, SCHEDULER_FILE, STEP_FILE}
    names = [p.name for p in state.iterdir() if not p.name.startswith(LEFT_BEHIND)]
    unknown = sorted(set(names) - known)
    if unknown:
        raise UncarriedStateError(
            f"{state} holds {unknown}, which carrying a state does not know (scaler.pt: an "
            "fp16 run's gradient scaler; train in mixed_precision bf16 or no to carry states)"
        )
    missing = {MODEL_FILE, OPTIMIZER_FILE, SCHEDULER_FILE} - set(names)
    if missing:
        raise ValueError(f"{state} lacks {sorted(missing)}: it is not a complete save")
    return {name: (state / name).read_bytes() for name in names}


def _torch_load(data: bytes):
    """One of the run's own state files, read as accelerate reads it: tensors and plain
    values only, never code."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _check_plain(record: dict, state: Path) -> None:
    """The optimizer's settings and the schedule's place must come back from JSON as they
    were (betas aside, a tuple JSON makes a list, turned back on unpack)."""
    groups = [{k: v for k, v in g.items() if k != "betas"} for g in record["param_groups"]]
    for what, value in (("schedule", record["scheduler"]), ("optimizer", groups)):
        try:
            same = json.loads(json.dumps(value)) == value
        except TypeError:
            same = False
        if not same:
            raise ValueError(
                f"{state}: the {what}'s state holds values JSON cannot carry; this optimizer "
                "or schedule is not one `train` uses"
            )


def _tuple_betas(group: dict) -> dict:
    """An optimizer's parameter group as saved: JSON turned its tuple of betas into a list."""
    return {**group, "betas": tuple(group["betas"])} if "betas" in group else group
