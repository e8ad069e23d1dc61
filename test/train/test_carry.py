"""`train.carry`: a finished run packed into run.json + fp16 shards and rebuilt elsewhere."""

from __future__ import annotations

import json
import shutil

import pytest
from tiny_training import train_tiny

from amodal_ros.cli.main import main

torch = pytest.importorskip("torch")


def _weights(folder):
    from safetensors.torch import load_file

    return {p.relative_to(folder).as_posix(): load_file(p) for p in folder.rglob("*.safetensors")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run from a seeded tiny model, and one continuing its UNet (its VAE left as it was)."""
    root = tmp_path_factory.mktemp("carry")
    first = train_tiny(root, "first", 2)
    return root, first, train_tiny(root, "second", 1, init=str(first / "final"))


def test_a_packed_run_unpacks_to_the_same_run(runs):
    from amodal_ros.models.layout import load_components
    from amodal_ros.train.carry import pack, unpack
    from amodal_ros.train.ship import _run_report

    root, first, _ = runs
    files = pack(first, root / "packed_first", shard_mib=0.5)
    shards = [f for f in files if f.suffix == ".safetensors"]
    assert len(shards) > 1 and all(f.stat().st_size <= 0.5 * 2**20 for f in shards)
    final = unpack(root / "packed_first", root / "first_again")
    before, after = _weights(first / "final"), _weights(final)
    assert before.keys() == after.keys()  # nothing to leave out: it started from a seed
    for rel, state in before.items():
        for key, value in state.items():  # fp16 on the way, the weights' own dtype back
            assert after[rel][key].dtype == value.dtype
            assert torch.equal(after[rel][key], value.half().to(value.dtype)), (rel, key)
    assert _run_report(root / "first_again") == _run_report(first)
    for name in ("model_index.json", "unet/config.json"):
        assert (final / name).read_text() == (first / "final" / name).read_text()
    assert load_components(final).unet.config == load_components(first / "final").unet.config


def test_a_missing_shard_writes_no_checkpoint(runs):
    """Unpacking stops before `final/` exists: a half checkpoint would pass for a run."""
    from amodal_ros.train.carry import pack, unpack

    root, first, _ = runs
    files = pack(first, root / "packed_short", shard_mib=0.5)
    [f for f in files if f.suffix == ".safetensors"][-1].unlink()
    with pytest.raises(FileNotFoundError):
        unpack(root / "packed_short", root / "short_again")
    assert not (root / "short_again" / "final").exists()


def test_a_file_changed_in_part_keeps_its_unchanged_tensors_exactly(runs):
    """A decoder fine-tune: the VAE file changed, its encoder did not. The encoder comes
    back from the start bit for bit (fp16 would round it), the decoder through fp16."""
    from safetensors.torch import load_file, save_file

    from amodal_ros.train.carry import pack, unpack

    root, first, second = runs
    third = root / "third"
    shutil.copytree(second, third)
    vae = third / "final" / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(vae)
    tuned = {k: v + 1e-3 if k.startswith("decoder.") else v for k, v in state.items()}
    save_file(tuned, str(vae), metadata={"format": "pt"})
    pack(third, root / "packed_third")
    record = json.loads((root / "packed_third" / "run.json").read_text())
    (partial,) = [e for e in record["from_start"] if e["file"].startswith("vae/")]
    assert partial["keys"] and not any(k.startswith("decoder.") for k in partial["keys"])
    back = load_file(unpack(root / "packed_third", root / "third_again") / partial["file"])
    assert back.keys() == tuned.keys()
    for key, value in tuned.items():
        expected = value if key in partial["keys"] else value.half().float()
        assert torch.equal(back[key], expected), key


def test_weights_equal_to_the_start_travel_by_name_and_must_match_it(runs):
    from amodal_ros.train.carry import pack, unpack

    root, first, second = runs
    pack(second, root / "packed_second")
    record = json.loads((root / "packed_second" / "run.json").read_text())
    left_out = {entry["file"] for entry in record["from_start"] if "keys" not in entry}
    assert left_out == {  # whole files (the UNet's untouched tensors travel by name too)
        "vae/diffusion_pytorch_model.safetensors",
        "image_encoder/model.safetensors",
    }
    assert all(key.startswith("unet/") for key in record["dtypes"])
    final = unpack(root / "packed_second", root / "second_again")
    for rel in left_out:  # copied from the starting checkpoint, byte for byte
        assert (final / rel).read_bytes() == (first / "final" / rel).read_bytes()
    changed = first / "final" / "vae" / "diffusion_pytorch_model.safetensors"
    changed.write_bytes(changed.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match="unpack --start"):
        unpack(root / "packed_second", root / "second_broken")
    assert not (root / "second_broken").exists()  # checked before anything is written
    with pytest.raises(FileExistsError, match="new run folder"):
        unpack(root / "packed_second", root / "second_again")
    # nor into a run still going (no final/ yet): its config, log and state stay its own
    live = root / "live"
    (live / "state").mkdir(parents=True)
    (live / "train_config.json").write_text("mine")
    with pytest.raises(FileExistsError, match="live is not empty"):
        unpack(root / "packed_second", live)
    assert (live / "train_config.json").read_text() == "mine"
    assert sorted(p.name for p in live.iterdir()) == ["state", "train_config.json"]


def test_a_run_stopped_early_unpacks_its_last_checkpoint_and_its_log_up_to_it(runs):
    from amodal_ros.train.carry import pack, unpack
    from amodal_ros.train.ship import _run_report

    root, first, _ = runs
    pack(first, root / "packed_early", checkpoint="checkpoint-1")
    final = unpack(root / "packed_early", root / "early")
    unet = "unet/diffusion_pytorch_model.safetensors"
    saved, unpacked = _weights(first / "checkpoint-1")[unet], _weights(final)[unet]
    assert all(torch.equal(unpacked[k], v.half().float()) for k, v in saved.items())
    assert _run_report(root / "early")["steps"] == 1 and _run_report(first)["steps"] == 2


def test_a_carried_state_continues_the_run_as_if_it_never_stopped(tmp_path):
    """A run stopped after step 1 of 3, its state carried to a new folder and resumed
    there, ends where the run that never stopped did, bit for bit: the optimizer's moments
    and the schedule's place (a warm-up over all 3 steps) travel exactly; fine-tuning from a
    checkpoint would restart them."""
    from amodal_ros.train.carry import unpack
    from amodal_ros.train.carry_state import pack_state

    warm = dict(warmup_steps=3, lr_schedule="constant")  # each step its own learning rate
    straight = train_tiny(tmp_path, "straight", 3, **warm)
    stopped = train_tiny(tmp_path, "stopped", 1, **warm)
    files = pack_state(stopped, tmp_path / "packed", shard_mib=0.5)
    assert {f.suffix for f in files} == {".json", ".safetensors"}  # nothing to unpickle
    assert unpack(tmp_path / "packed", tmp_path / "moved") == tmp_path / "moved" / "state"
    runs = (stopped, tmp_path / "moved")
    for name in ("optimizer.bin", "scheduler.bin"):  # as saved: tuples, int keys, dtypes
        saved, carried = (torch.load(r / "state" / name, weights_only=True) for r in runs)
        assert _same(carried, saved), name
    with pytest.raises(FileExistsError, match="new run folder"):
        unpack(tmp_path / "packed", tmp_path / "moved")
    # the init it started from travels: resuming checks it (a changed VAE would be refused)
    fingerprint = "init_fingerprint.json"
    assert (tmp_path / "moved" / fingerprint).read_text() == (stopped / fingerprint).read_text()
    moved = tmp_path / "moved"  # continued from what was carried alone: its own config
    assert (
        main(["train", str(moved / "train_config.json"), "--out", str(moved), "--steps", "3"]) == 0
    )
    sessions = json.loads((moved / "timing.json").read_text())
    assert [s["steps"] for s in sessions] == [1, 2]  # resumed at step 1, not started over
    assert (moved / "loss.csv").read_text() == (straight / "loss.csv").read_text()
    unet = "unet/diffusion_pytorch_model.safetensors"
    ended, never_stopped = _weights(moved / "final")[unet], _weights(straight / "final")[unet]
    assert all(torch.equal(ended[k], v) for k, v in never_stopped.items())


def test_a_state_carried_at_its_last_step_publishes_the_final_checkpoint(tmp_path):
    """A finished run carried as its state (to be judged or shipped elsewhere) has no
    checkpoint beside it: continuing it trains nothing and writes the final checkpoint, the
    same weights as the run's own (it once said where the student was and wrote nothing)."""
    from amodal_ros.train.carry import unpack
    from amodal_ros.train.carry_state import pack_state

    finished = train_tiny(tmp_path, "finished", 1)
    pack_state(finished, tmp_path / "packed", shard_mib=1.0)
    moved = tmp_path / "moved"
    unpack(tmp_path / "packed", moved)
    assert not (moved / "final").exists()
    assert main(["train", str(moved / "train_config.json"), "--out", str(moved)]) == 0
    unet = "unet/diffusion_pytorch_model.safetensors"
    made, own = _weights(moved / "final")[unet], _weights(finished / "final")[unet]
    assert made.keys() == own.keys() and all(torch.equal(made[k], v) for k, v in own.items())
    assert (moved / "loss.csv").read_text() == (finished / "loss.csv").read_text()


def test_a_state_is_carried_whole_or_not_at_all(tmp_path):
    """No save to carry, a file train could not resume from elsewhere, a run folder that
    already holds a run: each is an error naming it, and nothing is written."""
    from amodal_ros.train.carry import unpack
    from amodal_ros.train.carry_state import pack_state

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no saved training state"):
        pack_state(tmp_path / "empty", tmp_path / "packed", shard_mib=1.0)
    run = train_tiny(tmp_path, "run", 1)
    (run / "state" / "scaler.pt").write_bytes(b"")  # an fp16 GradScaler's state
    with pytest.raises(ValueError, match="scaler.pt"):
        pack_state(run, tmp_path / "packed", shard_mib=1.0)
    (run / "state" / "scaler.pt").unlink()
    pack_state(run, tmp_path / "packed", shard_mib=1.0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "loss.csv").write_text("step,loss\n")
    with pytest.raises(FileExistsError, match="not empty"):
        unpack(tmp_path / "packed", tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["loss.csv"]


def test_a_pack_that_fails_midway_keeps_the_earlier_pack(runs, monkeypatch, capsys):
    """A new pack is written whole beside the old one before it replaces it: a full disk on
    a shard left neither (the old one's files were deleted first). The command says so in
    one line."""
    import safetensors.torch

    from amodal_ros.train.carry import main as carry
    from amodal_ros.train.carry import pack

    root, first, _ = runs
    packed = root / "packed_twice"
    pack(first, packed, shard_mib=0.5)
    before = {p.name: p.read_bytes() for p in packed.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    assert carry(["pack", str(first), str(packed)]) == 2
    assert capsys.readouterr().err.startswith("carry pack: error: [Errno 28] No space left")
    assert {p.name: p.read_bytes() for p in packed.iterdir()} == before


def _same(mine, theirs) -> bool:
    """Equal values of equal types all the way down, tensors by dtype and value."""
    if type(mine) is not type(theirs):
        return False
    if torch.is_tensor(mine):
        return mine.dtype == theirs.dtype and torch.equal(mine, theirs)
    if isinstance(mine, dict):
        return mine.keys() == theirs.keys() and all(_same(v, theirs[k]) for k, v in mine.items())
    if isinstance(mine, list | tuple):
        return len(mine) == len(theirs) and all(map(_same, mine, theirs))
    return mine == theirs


def test_a_run_json_naming_files_outside_the_run_is_refused(runs):
    """A carried run.json is data: a name that climbs out of the run folder writes nothing."""
    from amodal_ros.train.carry import pack, unpack

    root, first, _ = runs
    pack(first, root / "packed_escape")
    record = json.loads((root / "packed_escape" / "run.json").read_text())
    record["json"]["../../escaped.json"] = "{}"
    (root / "packed_escape" / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="outside"):
        unpack(root / "packed_escape", root / "escape" / "run")
    assert not (root / "escape").exists() and not (root / "escaped.json").exists()


def test_a_run_stopped_anywhere_carries_what_it_is_best_continued_from(runs, tmp_path):
    """`pack --within`, what the GPU script returns: a finished run its final checkpoint; a
    stopped one its state, to continue exactly, or where the state would not fit the limit
    its newest checkpoint; one stopped before its first save, an error naming that."""
    from amodal_ros.train.carry import pack_within

    _, first, _ = runs
    pack_within(first, tmp_path / "finished", 60)
    assert json.loads((tmp_path / "finished" / "run.json").read_text())["checkpoint"] == "final"

    continued = tmp_path / "continued"  # finished, then continued with more steps and stopped
    shutil.copytree(first, continued)
    config = json.loads((continued / "train_config.json").read_text())
    (continued / "train_config.json").write_text(json.dumps({**config, "steps": 99}))
    pack_within(continued, tmp_path / "continued_packed", 60)  # not its old final/
    assert json.loads((tmp_path / "continued_packed" / "run.json").read_text())["kind"] == "state"

    stopped = tmp_path / "stopped"  # its state saved with its last step, final not reached
    shutil.copytree(first, stopped)
    shutil.rmtree(stopped / "final")
    pack_within(stopped, tmp_path / "state", 60)
    assert json.loads((tmp_path / "state" / "run.json").read_text())["kind"] == "state"

    mid_swap = tmp_path / "mid_swap"  # stopped between a save's two renames
    shutil.copytree(stopped, mid_swap)
    (mid_swap / "state").rename(mid_swap / ".state.previous")
    pack_within(mid_swap, tmp_path / "mid_swap_packed", 60)
    carried = json.loads((tmp_path / "mid_swap_packed" / "run.json").read_text())
    saved = json.loads((stopped / "state" / "step.json").read_text())["step"]
    assert carried["kind"] == "state" and carried["step"] == saved

    fp16 = tmp_path / "fp16"  # a state train cannot resume elsewhere: its checkpoint instead
    shutil.copytree(stopped, fp16)
    (fp16 / "state" / "scaler.pt").write_bytes(b"")
    pack_within(fp16, tmp_path / "fp16_packed", 60)
    assert json.loads((tmp_path / "fp16_packed" / "run.json").read_text())["checkpoint"] == (
        "checkpoint-1"
    )

    small = tmp_path / "small"  # a carried run's folder: its plan stays whatever is packed
    small.mkdir()
    (small / "plan.json").write_text("{}")
    written = pack_within(stopped, small, 0.001)  # no state fits in 1 KiB
    record = json.loads((small / "run.json").read_text())
    assert record["checkpoint"] == "checkpoint-1" and "kind" not in record
    assert sorted(p.name for p in small.iterdir()) == sorted(
        ["plan.json", *(p.name for p in written)]
    )

    for folder in stopped.glob("checkpoint-*"):
        shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError, match="its state is over 0.001 MiB"):
        pack_within(stopped, tmp_path / "over", 0.001)
    shutil.rmtree(stopped / "state")
    with pytest.raises(FileNotFoundError, match="before its first save"):
        pack_within(stopped, tmp_path / "none", 60)


def test_shards_are_as_few_as_the_limit_allows_and_an_oversized_tensor_is_refused():
    """The GPU machine returns 8 files: tensors share a shard until the next would pass the
    limit (not one file each), and a tensor that alone would pass it is an error, not a shard
    over the limit."""
    from amodal_ros.train.carry import HEADER_ENTRY_BYTES, _shards

    tensors = {f"t{i}": torch.zeros(256) for i in range(6)}  # 1 KiB each
    entry = 1024 + len("t0") + HEADER_ENTRY_BYTES
    assert [list(s) for s in _shards(tensors, 8 + 3 * entry)] == [
        ["t0", "t1", "t2"],
        ["t3", "t4", "t5"],
    ]
    assert len(_shards(tensors, 2**20)) == 1
    assert len(_shards({"t0": tensors["t0"]}, 8 + entry)) == 1  # a file the limit exactly
    with pytest.raises(ValueError, match="big alone takes 2.0 MiB, over 1.0"):
        _shards({"big": torch.zeros(2**19)}, 2**20)


def test_only_weights_fp16_holds_travel_as_fp16():
    """fp32 weights travel as fp16 where that keeps them finite; one fp16 would overflow
    (a large buffer) and weights of another dtype travel as they are."""
    from amodal_ros.train.carry import _carried

    assert _carried(torch.ones(3)).dtype == torch.float16
    large = torch.tensor([1.0, 1e6])
    assert torch.equal(_carried(large), large)
    steps = torch.arange(3)
    assert _carried(steps).dtype == torch.int64


def test_the_newest_checkpoint_is_the_highest_finished_step(tmp_path):
    """`pack --within` falls back on the newest finished checkpoint: by step number (10 after
    9), never one a stop left without its model_index.json, nor another folder's name."""
    from amodal_ros.train.carry import newest_checkpoint

    for name, finished in [
        ("checkpoint-9", True),
        ("checkpoint-10", True),
        ("checkpoint-11", False),
        ("checkpoint-best", True),
    ]:
        (tmp_path / name).mkdir()
        if finished:
            (tmp_path / name / "model_index.json").write_text("{}")
    assert newest_checkpoint(tmp_path) == "checkpoint-10"


def test_only_a_finished_checkpoint_of_loader_files_is_packed(runs, tmp_path):
    """A checkpoint a stop left without model_index.json, or one holding a file the loader
    does not read (not JSON, not safetensors), is refused by name: no pack to ship."""
    from amodal_ros.train.carry import pack

    _, first, _ = runs
    with pytest.raises(FileNotFoundError, match="checkpoint-7 is not a finished checkpoint"):
        pack(first, tmp_path / "packed", checkpoint="checkpoint-7")
    odd = tmp_path / "odd"
    shutil.copytree(first, odd)
    (odd / "final" / "unet" / "notes.txt").write_text("not carried")
    with pytest.raises(ValueError, match="notes.txt is neither JSON nor safetensors"):
        pack(odd, tmp_path / "packed")
    assert not (tmp_path / "packed").exists()


def test_a_new_pack_replaces_an_earlier_one_whole_and_names_its_start(runs, tmp_path):
    """Packing again into a folder (made with its parents) leaves the new pack alone: an
    earlier pack's extra shards and a killed pack's staging folder would travel with it.
    run.json records the checkpoint the left-out weights come from (none from a seed)."""
    import subprocess
    import sys

    from amodal_ros.core.staging import HOST
    from amodal_ros.train.carry import pack

    _, first, second = runs
    packed = tmp_path / "new" / "packed"
    many = pack(first, packed, shard_mib=0.5)
    assert json.loads((packed / "run.json").read_text())["start"] is None
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its PID names no running process now
    (packed / f".pack.partial-{HOST}-{killed.pid}" / "weights-00.safetensors").mkdir(parents=True)
    written = pack(second, packed)
    assert len(written) < len(many)
    assert sorted(p.name for p in packed.iterdir()) == sorted(p.name for p in written)
    assert json.loads((packed / "run.json").read_text())["start"] == str(first / "final")


def test_unpacking_refuses_foreign_run_files_a_start_for_a_state_and_names_a_wrong_start(
    runs, tmp_path
):
    """run.json is data: a run file it names that no run holds writes nothing; a carried
    state takes no starting checkpoint; a wrong --start is named in the error."""
    from amodal_ros.train.carry import pack, unpack
    from amodal_ros.train.carry_state import pack_state

    _, first, second = runs
    packed = tmp_path / "packed"
    pack(first, packed)
    record = json.loads((packed / "run.json").read_text())
    record["run"]["../escaped.txt"] = "written outside the run"
    (packed / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="names files a run does not hold"):
        unpack(packed, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "escaped.txt").exists()
    pack_state(first, tmp_path / "state", shard_mib=1.0)
    with pytest.raises(ValueError, match="a carried state: it needs no starting checkpoint"):
        unpack(tmp_path / "state", tmp_path / "moved", start=first / "final")
    assert not (tmp_path / "moved").exists()
    pack(second, tmp_path / "second")
    with pytest.raises(ValueError, match=r"elsewhere/\S+ is not that file"):
        unpack(tmp_path / "second", tmp_path / "again", start=tmp_path / "elsewhere")


def test_an_unpacked_run_is_finished_and_carries_its_final_checkpoint_again(runs, tmp_path):
    """An unpacked run has final/ and no saved state: `pack --within` carries that final
    checkpoint (it has no state to continue, nor checkpoints beside it)."""
    from amodal_ros.train.carry import pack, pack_within, unpack

    _, first, _ = runs
    pack(first, tmp_path / "packed")
    unpack(tmp_path / "packed", tmp_path / "run")
    pack_within(tmp_path / "run", tmp_path / "again", 60)
    assert json.loads((tmp_path / "again" / "run.json").read_text())["checkpoint"] == "final"


def test_pack_within_takes_its_limit_in_mib_up_to_and_including_it(runs, tmp_path):
    """The state goes when its files and its pack both fit in the limit, a limit exactly
    their size included; at three quarters of its files' size the newest checkpoint goes."""
    from amodal_ros.train.carry import SHARD_MIB, pack_within
    from amodal_ros.train.carry_state import pack_state

    _, first, _ = runs
    stopped = tmp_path / "stopped"
    shutil.copytree(first, stopped)
    shutil.rmtree(stopped / "final")
    saved = sum(p.stat().st_size for p in (stopped / "state").rglob("*") if p.is_file())
    packed = sum(p.stat().st_size for p in pack_state(stopped, tmp_path / "size", SHARD_MIB))
    pack_within(stopped, tmp_path / "exact", max(saved, packed) / 2**20)
    assert json.loads((tmp_path / "exact" / "run.json").read_text())["kind"] == "state"
    pack_within(stopped, tmp_path / "under", 0.75 * saved / 2**20)
    record = json.loads((tmp_path / "under" / "run.json").read_text())
    assert record["checkpoint"] == "checkpoint-1" and "kind" not in record


def test_shards_stay_under_the_gpu_machines_16_mib_per_file(runs, tmp_path):
    """The default shard size keeps every file the GPU machine returns under its 16 MiB."""
    from safetensors.torch import save_file

    from amodal_ros.train.carry import pack

    _, first, _ = runs
    big = tmp_path / "big"
    shutil.copytree(first, big)
    weights = {"a": torch.zeros(6 * 2**20), "b": torch.zeros(6 * 2**20)}  # 12 MiB each in fp16
    save_file(weights, str(big / "final" / "unet" / "diffusion_pytorch_model.safetensors"))
    shards = [p for p in pack(big, tmp_path / "packed") if p.suffix == ".safetensors"]
    assert len(shards) >= 2 and all(p.stat().st_size <= 16 * 2**20 for p in shards)


def test_the_carry_command_packs_unpacks_and_refuses_conflicting_choices(runs, tmp_path, capsys):
    """`carry pack` (--within, --checkpoint, --state) says what it carried and each file's
    size; `carry unpack` prints the checkpoint it rebuilt; choices that contradict each other
    are refused before anything is packed."""
    from amodal_ros.train.carry import main as carry

    _, first, _ = runs
    out = tmp_path / "within"
    assert carry(["pack", "--within", "60", str(first), str(out)]) == 0
    written = [out / "run.json", *sorted(out.glob("weights-*.safetensors"))]
    sizes = [f"{p}  {p.stat().st_size / 2**20:.1f} MiB" for p in written]
    assert capsys.readouterr().out.splitlines() == ["carried: final", *sizes]
    assert "MiB" in sizes[-1] and sizes[-1] != f"{written[-1]}  0.0 MiB"
    stopped = tmp_path / "stopped"  # its state fp16 training could not resume elsewhere
    shutil.copytree(first, stopped)
    shutil.rmtree(stopped / "final")
    (stopped / "state" / "scaler.pt").write_bytes(b"")
    assert carry(["pack", "--within", "60", str(stopped), str(tmp_path / "fp16")]) == 0
    said = capsys.readouterr()
    assert said.out.startswith("carried: checkpoint-1\n")
    assert "carrying its newest checkpoint instead" in said.err
    (stopped / "state" / "scaler.pt").unlink()
    assert carry(["pack", "--within", "60", str(stopped), str(tmp_path / "state")]) == 0
    assert capsys.readouterr().out.startswith("carried: its state at step 2\n")
    assert carry(["pack", "--state", str(first), str(tmp_path / "state2")]) == 0
    assert json.loads((tmp_path / "state2" / "run.json").read_text())["kind"] == "state"
    early = tmp_path / "early"
    assert carry(["pack", "--checkpoint", "checkpoint-1", str(first), str(early)]) == 0
    assert json.loads((early / "run.json").read_text())["checkpoint"] == "checkpoint-1"
    capsys.readouterr()
    start = ["--start", str(first / "final")]
    assert carry(["unpack", *start, str(early), str(tmp_path / "back")]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "back" / "final")]
    for wrong, says in [
        (["--state", "--checkpoint", "checkpoint-1"], "--checkpoint names it"),
        (["--within", "60", "--checkpoint", "checkpoint-1"], "--checkpoint names it"),
        (["--state", "--within", "60"], "give one of them"),
    ]:
        with pytest.raises(SystemExit):
            carry(["pack", *wrong, str(first), str(tmp_path / "refused")])
        assert says in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    with pytest.raises(SystemExit):
        carry([])  # pack or unpack
    with pytest.raises(SystemExit):
        carry(["--help"])
    assert "Carry a finished training run from one machine" in capsys.readouterr().out
