"""Carry a finished training run from one machine to another in a few small files: the GPU
machine sends back at most 8 files of 16 MiB, and a run's folder is more files than that.

`pack` writes `run.json` (the run's config, timing, loss log and every JSON file of its
`final/` checkpoint) and the checkpoint's weights as fp16 safetensors shards, leaving out
every weight file equal to the one the run started from (a student's frozen VAE and image
encoder), and every tensor equal to the start's in a file that changed only in part (a
frozen encoder beside a tuned decoder), which `unpack` copies from that starting checkpoint
again, exactly. The unpacked folder is a
run folder `ship` and `--teacher` accept; it has no optimizer state. To continue a run
elsewhere, carry its state instead (`pack --state`, `carry_state`).

Usage:
    python -m amodal_ros.train.carry pack RUN PACKED          # on the machine that trained
    python -m amodal_ros.train.carry pack --state RUN PACKED  # a run to continue elsewhere
    python -m amodal_ros.train.carry pack --within 56 RUN PACKED  # whatever a stop left best
    python -m amodal_ros.train.carry unpack PACKED RUN        # where it is shipped/continued
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from amodal_ros.accel.artifacts import file_sha256
from amodal_ros.core.errors import CheckpointError, InputError
from amodal_ros.core.staging import escaping, remove_dead_partials, stage_name, staged_path
from amodal_ros.train.config import TrainConfig
from amodal_ros.train.run_folder import INIT_FINGERPRINT, last_save

# the run's own files that travel with it; with the init fingerprint a carried state is still
# checked against the init it resumes from
RUN_FILES = ("train_config.json", "timing.json", "loss.csv", INIT_FINGERPRINT)
SHARD_MIB = 15.0  # under the GPU machine's 16 MiB per returned file
HEADER_ENTRY_BYTES = 128  # most a tensor's header entry takes beside its name
CARRIED_DTYPE = torch.float16  # half the bytes; the weights' own dtype comes back on unpack
CARRIED_SUFFIXES = (".json", ".safetensors")  # what a published-layout checkpoint holds


def pack(
    run: Path, packed: Path, shard_mib: float = SHARD_MIB, checkpoint: str = "final"
) -> list[Path]:
    """Write `run`'s checkpoint (`final`, or `checkpoint-N` of a run stopped early) and logs
    into `packed`, to be unpacked as the run's `final/`; returns the files written."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    final = run / checkpoint
    if not (final / "model_index.json").is_file():
        raise FileNotFoundError(f"{final} is not a finished checkpoint (no model_index.json)")
    other = [p for p in final.rglob("*") if p.is_file() and p.suffix not in CARRIED_SUFFIXES]
    if other:
        raise ValueError(f"{final}: {other[0].name} is neither JSON nor safetensors weights")
    start = _starting_folder(TrainConfig(**json.loads((run / "train_config.json").read_text())))
    record: dict = {
        "run": run_files(run),
        "json": {_rel(p, final): p.read_text() for p in sorted(final.rglob("*.json"))},
        "from_start": [],
        "dtypes": {},
        "metadata": {},  # each weight file's safetensors header (transformers reads "format")
        "checkpoint": checkpoint,
    }
    tensors = {}
    for path in sorted(final.rglob("*.safetensors")):
        rel, state = _rel(path, final), load_file(path)
        with safe_open(path, "pt") as f:
            record["metadata"][rel] = f.metadata()
        origin = start / rel if start is not None else None
        before = load_file(origin) if origin is not None and origin.is_file() else {}
        # tensors the run left as they were (a frozen encoder beside a tuned decoder) come from
        # the start again, exactly: fp16 would round them
        kept = sorted(k for k in state if k in before and _equal(state[k], before[k]))
        if kept:
            whole = same_weights(state, before)  # the file itself, byte for byte
            entry = {"file": rel, "sha256": file_sha256(origin)}
            record["from_start"].append(entry | ({} if whole else {"keys": kept}))
        for key, value in state.items():
            if key not in kept:
                record["dtypes"][f"{rel}:{key}"] = str(value.dtype).removeprefix("torch.")
                tensors[f"{rel}:{key}"] = _carried(value)
    record["start"] = str(start) if start is not None else None
    return write_packed(packed, record, tensors, shard_mib)


def pack_within(run: Path, packed: Path, limit_mib: float) -> list[Path]:
    """Pack what a run stopped anywhere is best carried on from, in at most `limit_mib` (the
    GPU machine returns 64 MiB in all): its final checkpoint when it finished; else its last
    saved state, to continue exactly elsewhere, where that fits (the shipped student's weights
    and AdamW's moments are about 59 MiB, 78 with a weight average; a 96-wide student's do
    not fit); else its newest checkpoint, weights alone. Files already in `packed` other than
    its own stay."""
    from amodal_ros.train.carry_state import UncarriedStateError, pack_state

    if _finished(run):
        return pack(run, packed)
    limit = limit_mib * 2**20
    state = [p for p in last_save(run).rglob("*") if p.is_file()]
    why = f"its state is over {limit_mib} MiB"  # when the state does not go instead
    if state and sum(p.stat().st_size for p in state) <= limit:
        try:
            written = pack_state(run, packed, SHARD_MIB)
        except UncarriedStateError as err:
            print(f"{err}: carrying its newest checkpoint instead", file=sys.stderr)
            written, why = [], f"its state cannot be carried ({err})"
        if written and sum(p.stat().st_size for p in written) <= limit:
            return written
        for path in written:
            path.unlink()
    try:
        return pack(run, packed, checkpoint=newest_checkpoint(run))
    except FileNotFoundError as error:
        if state:  # a state rebuilt from a carried one has no checkpoint folders beside it
            raise FileNotFoundError(f"{error}, and {why}") from None
        raise


def _finished(run: Path) -> bool:
    """Whether `run`'s final checkpoint is its last word: a finished run continued with more
    steps keeps the old `final/` while its state and checkpoints move past it."""
    if not (run / "final" / "model_index.json").is_file():
        return False
    step_file = last_save(run) / "step.json"
    if not step_file.is_file():
        return True
    steps = json.loads((run / "train_config.json").read_text())["steps"]
    return json.loads(step_file.read_text())["step"] >= steps


def newest_checkpoint(run: Path) -> str:
    """The name of `run`'s newest finished `checkpoint-N`."""
    steps = [
        int(step)
        for folder in run.glob("checkpoint-*")
        if (step := folder.name.removeprefix("checkpoint-")).isdigit()
        and (folder / "model_index.json").is_file()
    ]
    if not steps:
        raise FileNotFoundError(
            f"{run} has no finished checkpoint: it stopped before its first save"
        )
    return f"checkpoint-{max(steps)}"


def run_files(run: Path) -> dict[str, str]:
    """The run's config, timing and loss log, by name (those it has)."""
    return {name: (run / name).read_text() for name in RUN_FILES if (run / name).is_file()}


def write_packed(packed: Path, record: dict, tensors: dict, shard_mib: float) -> list[Path]:
    """`tensors` into safetensors shards of at most `shard_mib` and `record` (naming them)
    into run.json, in `packed`; returns the files written."""
    from safetensors.torch import save_file

    packed.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(packed, "pack")
    stage = packed / stage_name(packed / "pack")  # the new pack, whole before it moves in
    try:
        stage.mkdir()
        names = []
        for i, shard in enumerate(_shards(tensors, int(shard_mib * 2**20))):
            names.append(f"weights-{i:02d}.safetensors")
            save_file(shard, str(stage / names[-1]))
        record["shards"] = names
        (stage / "run.json").write_text(json.dumps(record, indent=1))
        for old in [packed / "run.json", *packed.glob("weights-*.safetensors")]:
            old.unlink(missing_ok=True)  # an earlier pack's would travel too
        for name in [*names, "run.json"]:  # run.json last: it names shards already there
            (stage / name).rename(packed / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [packed / "run.json", *(packed / name for name in names)]


def read_shards(packed: Path, record: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Every carried tensor, by the file (or part) it belongs to and its name there."""
    from safetensors.torch import load_file

    files: dict[str, dict] = {}
    for shard in record["shards"]:
        for key, value in load_file(packed / shard).items():
            rel, name = key.split(":", 1)
            files.setdefault(rel, {})[name] = value
    return files


def refuse_used(run: Path) -> None:
    """Unpack only into a new (or empty) folder: a run there, finished or not, would be mixed
    with the carried one (its config, log and state overwritten or kept under another's)."""
    if run.exists() and any(run.iterdir()):
        raise FileExistsError(
            f"{run} is not empty: unpack into a new run folder (a run there would be mixed "
            "with the carried one)"
        )


def unpack(packed: Path, run: Path, start: Path | None = None) -> Path:
    """Rebuild the run folder (`final/`, config, timing, loss log) from `packed`; weights left
    out come from `start` (default: the starting checkpoint recorded when packing, resolved
    again here, so 'embedded' is this machine's). Returns `run / 'final'`, or `run / 'state'`
    for a carried state (`pack --state`)."""
    from safetensors.torch import load_file, save_file

    from amodal_ros.train.run_folder import truncate_log

    record = json.loads((packed / "run.json").read_text())
    refuse_used(run)
    unknown = sorted(set(record["run"]) - set(RUN_FILES))
    if unknown:  # data, never a path to write elsewhere
        raise ValueError(f"{packed}: run.json names files a run does not hold: {unknown}")
    if record.get("kind") == "state":  # a run to continue, not a checkpoint to ship
        from amodal_ros.train.carry_state import unpack_state

        if start is not None:
            raise ValueError(f"{packed} is a carried state: it needs no starting checkpoint")
        return unpack_state(packed, run, record)
    _check_names(packed, record)
    config = TrainConfig(**json.loads(record["run"]["train_config.json"]))
    start = start or _starting_folder(config)
    final = run / "final"
    for left_out in record["from_start"]:  # checked before anything is written
        source = start / left_out["file"] if start is not None else None
        if source is None or not source.is_file() or file_sha256(source) != left_out["sha256"]:
            raise ValueError(
                f"{left_out['file']} was left out as equal to the run's starting checkpoint, "
                f"and {source or 'no starting folder'} is not that file: unpack with the "
                "checkpoint the run started from (unpack --start DIR)"
            )
    files = read_shards(packed, record)  # all read before anything is written: one may be missing
    for rel, state in files.items():  # fp16 on the way: the weights' own dtype back
        for name, value in state.items():
            state[name] = value.to(getattr(torch, record["dtypes"][f"{rel}:{name}"]))
    for name, text in record["run"].items():
        write_text(run / name, text)
    if record["checkpoint"] != "final":  # a run stopped early: its log past the checkpoint
        truncate_log(run / "loss.csv", int(record["checkpoint"].removeprefix("checkpoint-")))
    for left_out in record["from_start"]:
        if "keys" in left_out:  # some of the file's tensors: joined with the carried ones
            before = load_file(start / left_out["file"])
            files.setdefault(left_out["file"], {}).update({k: before[k] for k in left_out["keys"]})
    with staged_path(final) as staged:  # `final/` appears whole or not at all
        for rel, text in record["json"].items():
            write_text(staged / rel, text)
        for left_out in record["from_start"]:
            if "keys" in left_out:
                continue
            rel = left_out["file"]
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(start / rel, staged / rel)
        for rel, state in files.items():
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            save_file(state, str(staged / rel), metadata=record["metadata"][rel])
    return final


def _check_names(packed: Path, record: dict) -> None:
    """Every file run.json names stays inside the folder it is written to: a carried file
    is data, never a path to write elsewhere."""
    names = [*record["json"], *(e["file"] for e in record["from_start"]), *record["metadata"]]
    names += [key.split(":", 1)[0] for key in record["dtypes"]]  # the shards' files
    bad = escaping(names)
    if bad:
        raise ValueError(f"{packed}: run.json names files outside a run's checkpoint: {bad}")


def _starting_folder(config: TrainConfig) -> Path | None:
    """The checkpoint folder the run's components were loaded from (None: built from a seed)."""
    from amodal_ros.models import registry

    if not config.init:
        return None
    if registry.is_embedded(config.init):
        return registry.embedded_folder(2 if config.completion else 1)
    return Path(config.init)


def same_weights(mine: dict, theirs: dict) -> bool:
    """The same tensors under the same names, dtypes included."""
    return mine.keys() == theirs.keys() and all(
        v.dtype == theirs[k].dtype and torch.equal(v, theirs[k]) for k, v in mine.items()
    )


def _equal(mine: torch.Tensor, theirs: torch.Tensor) -> bool:
    return mine.dtype == theirs.dtype and mine.shape == theirs.shape and torch.equal(mine, theirs)


def _carried(value: torch.Tensor) -> torch.Tensor:
    """fp32 weights as fp16 where that holds them (finite); anything else as it is."""
    if value.dtype == torch.float32:
        half = value.to(CARRIED_DTYPE)
        if torch.isfinite(half).all():
            return half
    return value


def _shards(tensors: dict, limit: int) -> list[dict]:
    """Tensors in groups whose safetensors files stay within `limit` bytes (a larger tensor
    alone in its own)."""
    shards: list[dict] = [{}]
    size = 8  # the file's header length field
    for key, value in tensors.items():
        # the data, and its header entry: {"KEY":{"dtype":..,"shape":[..],"data_offsets":[..]}
        nbytes = value.numel() * value.element_size() + len(key) + HEADER_ENTRY_BYTES
        if nbytes + 8 > limit:
            raise ValueError(
                f"{key} alone takes {nbytes / 2**20:.1f} MiB, over {limit / 2**20:.1f}"
            )
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 8
        shards[-1][key] = value.contiguous()
        size += nbytes
    return [s for s in shards if s]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def write_text(path: Path, text: str) -> None:
    """`text` into `path`, its folders made first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """The `pack` and `unpack` commands (the module docstring's usage)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packing = verbs.add_parser("pack", help="a finished run -> run.json + fp16 shards")
    packing.add_argument("run", type=Path)
    packing.add_argument("packed", type=Path)
    packing.add_argument("--checkpoint", default="final", help="or checkpoint-N of RUN")
    packing.add_argument(
        "--state", action="store_true", help="the run's last saved state, to continue it"
    )
    packing.add_argument(
        "--within",
        type=float,
        metavar="MIB",
        help="final if finished, else the state if it fits in MIB, else the newest checkpoint",
    )
    unpacking = verbs.add_parser("unpack", help="run.json + shards -> a run folder")
    unpacking.add_argument("packed", type=Path)
    unpacking.add_argument("run", type=Path)
    unpacking.add_argument("--start", type=Path, help="the run's starting checkpoint folder")
    ns = parser.parse_args(argv)
    try:
        _run(parser, ns)
    except (InputError, CheckpointError, ValueError, OSError, KeyError) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        print(f"carry {ns.verb}: error: {what}", file=sys.stderr)
        return 2
    return 0


def _run(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    if ns.verb == "pack":
        within = ns.within is not None
        if (ns.state or within) and ns.checkpoint != "final":
            parser.error("--state and --within choose what to carry; --checkpoint names it")
        if ns.state and within:
            parser.error("--within carries the state where it fits; give one of them")
        if within:
            written = pack_within(ns.run, ns.packed, ns.within)
            record = json.loads(written[0].read_text())
            state = record.get("kind") == "state"
            print(
                "carried:",
                f"its state at step {record['step']}" if state else record["checkpoint"],
            )
        elif ns.state:
            from amodal_ros.train.carry_state import pack_state

            written = pack_state(ns.run, ns.packed, SHARD_MIB)
        else:
            written = pack(ns.run, ns.packed, checkpoint=ns.checkpoint)
        for path in written:
            print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    else:
        print(unpack(ns.packed, ns.run, ns.start))


if __name__ == "__main__":
    raise SystemExit(main())
