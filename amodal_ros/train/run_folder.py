"""A training run's folder: its state saved whole and swapped in, the checks before a run
resumes there (same settings, same frozen models), and its logs cut back to the saved step.

    train_config.json    the run's settings (checked on resume: RESUMABLE_CHANGES may differ)
    init_fingerprint.json  hashes of the frozen models it started from
    state/               the last complete save; STAGED_STATE while one is written,
                         PREVIOUS_STATE between the two renames that swap it in
    loss.csv, timing.json  per logged step; per session's steps and seconds
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import platform
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch

from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import partial_prefix, remove_partial, staged_path
from amodal_ros.train.config import TrainConfig

log = logging.getLogger("amodal_ros.train")

INIT_FINGERPRINT = "init_fingerprint.json"  # the frozen models a run started from, hashed
# settings a resumed run may change; any other change would be silently overruled by the saved
# state (its learning rates, weights) or would mix two runs' data in one model
RESUMABLE_CHANGES = frozenset(
    {"steps", "minutes", "save_every", "log_every", "progress", "data_workers", "mixed_precision"}
)
STAGED_STATE = ".state.partial"  # a save being written (all processes write into it)
PREVIOUS_STATE = ".state.previous"  # the last complete state, while the new one is swapped in
INIT_PARTS = {  # the parts of init a run's record holds, as its refusal names them
    "settings": "model settings (working size, mask settings, ensembles, schedule, lineage)",
}


def retire_final(out: Path, steps: int) -> None:
    """A finished run continued with more steps: its `final/`, the model at the old last step,
    becomes `checkpoint-<old steps>`, so that `final/` is only ever the run's last word (what
    judge, ship and pack read) and no trained model is lost."""
    final, path = out / "final", out / "train_config.json"
    if not (path.is_file() and (final / "model_index.json").is_file()):
        return
    old = read_json(path).get("steps", steps)
    if old >= steps:
        return
    named = out / f"checkpoint-{old}"
    if named.exists():  # a copy of it already (a run moved here with its checkpoints)
        shutil.rmtree(final)
    else:
        final.rename(named)


def last_save(out: Path) -> Path:
    """The folder of the run's last complete save: `state/`, or PREVIOUS_STATE where the run
    was stopped between the two renames of `swap_in_state`."""
    state, previous = out / "state", out / PREVIOUS_STATE
    if not (state / "step.json").is_file() and (previous / "step.json").is_file():
        return previous
    return state


def repair_state(out: Path) -> None:
    """A run killed between the two renames of `swap_in_state` has its last complete state
    under PREVIOUS_STATE: it becomes state/ again."""
    state, last = out / "state", last_save(out)
    if last != state:
        remove_partial(state)  # (rmtree opens its path first: a FIFO there hung it)
        last.rename(state)
    # checkpoints a stop left half-written (a whole model each, never complete)
    if out.is_dir():
        for partial in [
            *out.glob(f"{partial_prefix(out / 'final')}*"),
            *out.glob(".checkpoint-*"),
        ]:
            remove_partial(partial)


def saved_step(out: Path) -> int | None:
    """The step of the run's saved `state/` (None: no save yet). A state/ that is no folder, or
    whose step.json is missing or holds no step, is refused: the run started over beside it and
    its first save deleted it (a FIFO there hung the run), or resumed at a step it never was."""
    state = out / "state"
    if not (state.exists() or state.is_symlink()):
        return None
    path = state / "step.json"
    odd = (
        [p.name for p in state.iterdir() if not (p.is_file() or p.is_dir())]
        if state.is_dir()
        else []
    )
    if state.is_dir() and not odd and path.is_file():
        saved = read_json(path)
        step = saved.get("step") if isinstance(saved, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return step
    what = f"holds {odd}, which are not files" if state.is_dir() and odd else "is no saved state"
    raise InputError(
        f"{state} {what} (a folder with step.json holding the step it was saved at): it is "
        "damaged; continue from a carried state (carry unpack) or start a new --out"
    )


def swap_in_state(out: Path) -> None:
    """Replace state/ by the complete STAGED_STATE: two renames, then the old one goes."""
    state, previous = out / "state", out / PREVIOUS_STATE
    shutil.rmtree(previous, ignore_errors=True)
    if state.exists():
        state.rename(previous)
    (out / STAGED_STATE).rename(state)
    shutil.rmtree(previous, ignore_errors=True)


def check_resumable(out: Path, config: TrainConfig, step: int) -> None:
    """Refuse to resume the run in `out` with settings its saved state would overrule (the
    learning rate: the state's schedule wins) or that would mix two runs in one model; only
    RESUMABLE_CHANGES may differ. Also refuse `steps` below the saved step."""
    if step > config.steps:
        raise InputError(
            f"the run in {out} is at step {step}, past steps {config.steps}: ask for at least "
            f"{step} steps to train it further (its checkpoints are in {out})"
        )
    path = out / "train_config.json"
    if not path.is_file():
        return
    now = json.loads(json.dumps(asdict(config)))
    # a setting added since the run was saved ran at its default
    saved = {**json.loads(json.dumps(asdict(TrainConfig()))), **read_json(path)}
    if now["mixed_precision"] == "fp16" != saved["mixed_precision"]:
        raise InputError(
            f"the run in {out} was saved in mixed_precision {saved['mixed_precision']!r}: fp16 "
            "resumes a gradient scaler its state does not hold; resume in 'bf16' or 'no', or "
            "start a new --out"
        )
    changed = sorted(k for k in now.keys() - RESUMABLE_CHANGES - {"out"} if saved[k] != now[k])
    if changed:
        text = ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise InputError(
            f"{out} holds a run at step {step} with other settings ({text}): resuming would "
            "keep the saved state's, so use the same settings, or a new output folder (copy "
            "its targets/ there to keep a distillation's teacher samples)"
        )


def check_same_init(out: Path, config: TrainConfig, components, resuming: bool) -> None:
    """Refuse to resume on other frozen models than the run started from: the autoencoder and
    image encoder are loaded from `init` at every start (the saved state holds what trains),
    and `init` may have been trained further meanwhile (a continued autoencoder run), which
    would move the run to another latent space under the same path. First start: record them."""
    from amodal_ros.accel.artifacts import model_hash, public_items

    frozen = {"image_encoder": components.image_encoder}
    if config.stage != "vae":  # an autoencoder run's VAE is in its saved state
        frozen["vae"] = components.vae
    now = {name: model_hash(module) for name, module in frozen.items()}
    # what the run reads from init at every start besides weights: the working size, mask
    # settings and ensembles a student trains with and publishes, the schedule, its lineage
    parts = [components.defaults, components.student, components.scheduler_config]
    settings = [public_items(p) for p in parts]
    text = json.dumps(settings, sort_keys=True, default=str)
    now["settings"] = hashlib.sha256(text.encode()).hexdigest()
    path = out / INIT_FINGERPRINT
    saved = read_json(path) if resuming and path.is_file() else None
    if resuming and saved is None:
        log.warning(
            "resuming %s without a record of the init it started from (%s): it cannot be "
            "checked against init %r",
            out,
            INIT_FINGERPRINT,
            config.init,
        )
    elif saved is not None and "fingerprint" not in saved:
        log.warning(
            "%s was recorded by an older amodal_ros, whose hashes differed from process to "
            "process: init %r is not checked against it this time (recorded anew)",
            path,
            config.init,
        )
    elif saved is not None:
        if saved["fingerprint"] == 2:  # its image encoder's hash held transformers' version
            saved.pop("image_encoder", None)
        changed = sorted(k for k in now if k in saved and saved[k] != now[k])
        if changed:
            names = [INIT_PARTS.get(k, k) for k in changed]
            raise InputError(
                f"the {' and '.join(names)} of init {config.init!r} changed since the run in "
                f"{out} started from it (trained further, or shipped anew?): resuming would "
                "continue it on another model; start a new --out, or restore the init it "
                "started from"
            )
        if "settings" not in saved:
            log.warning(
                "%s was recorded before it held init %r's model settings (working size, mask "
                "settings): they are not checked this time (recorded now); check that init is "
                "the model the run started from",
                path,
                config.init,
            )
    write_whole(path, json.dumps({"fingerprint": 3, **now}, indent=2))


def keep_plan(out: Path, config: TrainConfig) -> TrainConfig:
    """A budgeted run resumed with a budget keeps the length it was planned to (its saved
    config's, below the steps asked): it ends there, at the end of its cosine, or at once when
    it did; a plan from a new pace would start a second cycle of the schedule. A budget of 0
    (`minutes: 0`) with more steps trains it further, as any finished run."""
    saved = read_json(out / "train_config.json") if (out / "train_config.json").is_file() else {}
    planned = saved.get("steps", config.steps)
    if config.minutes and saved.get("minutes") and planned < config.steps:
        return replace(config, steps=planned)
    return config


def truncate_log(path: Path, step: int) -> None:
    """Drop loss.csv rows after `step` (logged after the last saved state, before a stop)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)
    write_whole(path, text.getvalue())


def log_timing(
    path: Path, steps: int, seconds: float, session: str, windows_s: float | None = None
) -> None:
    """Record this session's steps and wall time so far (at every save; resumed runs have
    several sessions) for model cards, and of that time the share spent on fresh windows
    (rendering or waiting for workers, encoding; host time, which a GPU's queued work runs
    behind), to tell a data-bound run from a model-bound one. It is None for a distillation
    of the teacher's samples, which are collected before training."""
    sessions = []
    if path.is_file():
        try:
            sessions = json.loads(path.read_text())
            if not isinstance(sessions, list):
                raise ValueError(f"a {type(sessions).__name__}, not a list of sessions")
        except ValueError as err:  # bookkeeping: keep it aside, never stop the run for it
            sessions = []
            kept = path.with_name(path.name + ".unreadable")
            path.rename(kept)
            log.warning("%s did not parse (%s); kept as %s, a new one begins", path, err, kept)
    if sessions and sessions[-1].get("session") == session:
        sessions.pop()  # this session's earlier entry
    sessions.append(
        {
            "steps": steps,
            "seconds": round(seconds, 1),
            "steps_per_s": round(steps / seconds, 3) if seconds > 0 else None,
            "windows_share": round(windows_s / seconds, 3)
            if windows_s is not None and seconds > 0
            else None,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "session": session,
        }
    )
    write_whole(path, json.dumps(sessions, indent=2))


def write_whole(path: Path, text: str) -> None:
    """Replace `path` whole: a stop while writing leaves the old file, never half of one."""
    with staged_path(path) as staged:
        staged.write_text(text)


def read_json(path: Path):
    """The JSON in `path`; a damaged file is an InputError saying what to do."""
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise InputError(
            f"{path} is not valid JSON ({err}); restore it or start a new --out"
        ) from None
