"""`amodal-ros replay-many` on a real local Ray (2 CPUs here) with the tiny seeded model: the
same outputs as `amodal-ros replay`, one corrupt bag reported without stopping the others,
skipping what is done, Ctrl-C leaving nothing half-written; and finding the bags."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from bag_helpers import FPS, FRAME_RATE, HEIGHT, STRIDE, WIDTH, WINDOW, read_bag  # noqa: E402

from amodal_ros.bags.demo_bag import write_demo_bag  # noqa: E402
from amodal_ros.bags.fleet import find_bags, output_name  # noqa: E402
from amodal_ros.cli.main import main  # noqa: E402
from amodal_ros.core.errors import InputError  # noqa: E402

TINY = [
    "--frame-rate", str(FRAME_RATE), "--stride", str(STRIDE), "--height", "32",
    "--width", "64", "--num-frames", str(WINDOW), "--num-steps", "1",
]  # fmt: skip


def bags_folder(root: Path, frames: int = 14, corrupt: bool = True) -> Path:
    """Three demo bags of different scenes, and (with `corrupt`) one whose storage is junk."""
    folder = root / "bags"
    for seed in range(3):
        write_demo_bag(
            folder / f"run{seed}", frames=frames, fps=FPS, seed=seed, height=HEIGHT, width=WIDTH
        )
    if corrupt:
        bad = folder / "run3_corrupt"
        bad.mkdir()
        (bad / "metadata.yaml").write_text((folder / "run0" / "metadata.yaml").read_text())
        (bad / "run0.db3").write_bytes(b"this is not an sqlite database" * 100)
    return folder


def everything_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.slow
def test_replay_many_matches_replay_reports_the_corrupt_bag_and_skips_done_ones(
    tmp_path, published_folder, capsys
):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    bags = bags_folder(tmp_path)
    out = tmp_path / "results"
    args = ["replay-many", str(bags), "--out", str(out), "--checkpoint", str(published_folder)]
    assert main(args + TINY + ["--no-progress"]) == 1  # one bag failed
    printed = capsys.readouterr()
    assert "3 done, 0 skipped, 1 failed" in printed.out and "run3_corrupt" in printed.out
    assert "1 of 4 bags failed (" in printed.err and "summary.csv" in printed.err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(Path(r["bag"]).name, r["status"]) for r in rows] == [
        ("run0", "done"), ("run1", "done"), ("run2", "done"), ("run3_corrupt", "failed")
    ]  # fmt: skip
    assert rows[3]["error"] and all(not r["error"] for r in rows[:3])
    assert all(int(r["frames"]) == 14 and int(r["results"]) == 7 for r in rows[:3])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["frames"] == 42 and summary["workers"] == min(os.cpu_count(), 4)
    replays = summary["replays"].values()  # models loaded once per worker, not once per bag
    assert sum(r["loaded_models"] for r in replays) == len({r["worker_pid"] for r in replays})
    # nothing else is left in the output folder: no partial bag of the corrupt one
    names = {p.name for p in out.iterdir()}
    assert names == {"run0", "run1", "run2", "summary.csv", "summary.json"}

    # each output is what `amodal-ros replay` writes for that bag
    for seed in range(3):
        single = tmp_path / f"single{seed}"
        replay = ["replay", str(bags / f"run{seed}"), "--out", str(single)]
        assert main(replay + ["--checkpoint", str(published_folder), "--no-progress"] + TINY) == 0
        assert read_bag(out / f"run{seed}") == read_bag(single)

    # more CPUs per bag than the machine has: one clear error, not a wait for ever
    assert main(args + TINY + ["--no-progress", "--cpus-per-bag", "64"]) == 2
    assert "no machine of the Ray cluster has that much" in capsys.readouterr().err

    # a second run skips the three done bags (untouched) and tries the failed one again,
    # clearing what a run killed outright (no cleanup of its own) left half-written
    before = {p: p.stat().st_mtime_ns for p in out.rglob("run[0-2]/*")}
    (out / ".run3_corrupt.partial-999999" / "run3_corrupt").mkdir(parents=True)
    assert main(args + TINY + ["--no-progress"]) == 1
    assert not list(out.glob(".*partial*"))
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["skipped"] * 3 + ["failed"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("run[0-2]/*")} == before
    # their rows keep the numbers of the run that replayed them, run after run
    assert all(int(r["frames"]) == 14 and int(r["results"]) == 7 for r in rows[:3])
    summary = json.loads((out / "summary.json").read_text())  # where the next run reads them
    assert summary["totals"]["frames"] == 42 and len(summary["replays"]) == 3

    # a replay killed between renaming its video and its bag left the video alone: redone
    import shutil

    shutil.rmtree(out / "run0")
    (out / "run0.mp4").write_bytes(b"a video without its bag")
    assert main(args + TINY + ["--no-progress", "--video"]) == 1  # before: run0 refused too
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["done", "skipped", "skipped", "failed"]
    assert (out / "run0" / "metadata.yaml").is_file() and (out / "run0.mp4").stat().st_size > 100


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_leaves_no_partial_output(tmp_path, published_folder):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    bags = bags_folder(tmp_path, frames=400, corrupt=False)  # long enough to interrupt
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "amodal_ros.cli.main", "replay-many", str(bags), "--out"]
    cmd += [str(out), "--checkpoint", str(published_folder), "--no-progress", "--video"] + TINY
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a shell's background job ignores SIGINT, and so would the child: Ctrl-C's default back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300  # Ray's start-up alone takes a minute under load
        # a worker is writing a bag (a staging folder) and its video (a staging file)
        while not (list(out.glob(".run?.partial-*")) and list(out.glob(".run?.mp4.partial-*"))):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output
    assert not [n for n in everything_under(out) if ".partial" in n]
    # the summary says what was finished (a rerun's skipped rows keep those numbers)
    summary = json.loads((out / "summary.json").read_text())
    statuses = {Path(row["bag"]).name: row["status"] for row in summary["bags"]}
    assert set(statuses) == {"run0", "run1", "run2"}
    assert set(statuses.values()) <= {"done", "not run"} and "not run" in statuses.values()
    assert set(summary["replays"]) == {
        row["bag"] for row in summary["bags"] if row["status"] == "done"
    }
    for path in out.iterdir():  # the rest is a complete bag, or the video of one
        if path.name in ("summary.json", "summary.csv"):
            continue
        bag = path if path.is_dir() else path.with_suffix("")
        assert bag.name.startswith("run") and (bag / "metadata.yaml").is_file(), path


def test_gpus_and_device_must_agree_before_anything_starts(tmp_path, capsys):
    """Without --gpus-per-bag Ray gives the workers no GPU of their own, and every worker
    loaded its models onto the first GPU; a worker sees its own GPUs as cuda:0 on."""
    bags = bags_folder(tmp_path, frames=4, corrupt=False)
    base = ["replay-many", str(bags), "--out", str(tmp_path / "out"), "--checkpoint", "tiny"]
    assert main(base + ["--device", "cuda"]) == 2
    assert "--device cuda needs --gpus-per-bag" in capsys.readouterr().err
    assert main(base + ["--device", "cuda:1", "--gpus-per-bag", "1"]) == 2
    assert "use --device cuda (Ray picks the GPU)" in capsys.readouterr().err
    assert main(base + ["--gpus-per-bag", "1"]) == 2
    assert "reserves GPUs but --device is cpu" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bags_are_found_in_folders_globs_and_lists(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "bags" / name).mkdir(parents=True)
        (tmp_path / "bags" / name / "metadata.yaml").write_text("rosbag2_bagfile_information: {}")
    (tmp_path / "bags" / "notes").mkdir()  # not a bag: ignored inside a folder
    (tmp_path / "old.bag").write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text("# two bags\nbags/c\n\nold.bag\n")
    bags = tmp_path / "bags"
    assert find_bags([str(bags)]) == [(bags / n).resolve() for n in "abc"]
    assert find_bags([str(bags / "a"), str(tmp_path / "bags/[ab]")]) == [
        (bags / "a").resolve(), (bags / "b").resolve()
    ]  # fmt: skip
    assert find_bags([str(listing)]) == [(bags / "c").resolve(), (tmp_path / "old.bag").resolve()]
    assert output_name(tmp_path / "old.bag") == "old"
    with pytest.raises(InputError, match="neither a bag"):
        find_bags([str(bags / "notes")])
    # a glob takes what a folder would: its README and an empty results folder are no bags
    (bags / "README.md").write_text("recorded on the lab robot")
    assert find_bags([str(bags / "*")]) == [(bags / n).resolve() for n in "abc"]
    with pytest.raises(InputError, match="matches nothing"):
        find_bags([str(tmp_path / "nothing*")])
    with pytest.raises(InputError, match="no such bag"):
        find_bags([str(tmp_path / "missing")])


def test_a_recording_stopped_before_its_metadata_is_named_with_the_fix(tmp_path, caplog):
    """A recorder killed mid-bag leaves its .db3 without metadata.yaml: a folder scan says so
    (it was passed over in silence), and replaying it names `ros2 bag reindex`."""
    from amodal_ros.bags.reader import InputBag

    write_demo_bag(tmp_path / "good", frames=2, fps=FPS, seed=0, height=HEIGHT, width=WIDTH)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / "crashed_0.db3").write_bytes((tmp_path / "good" / "good.db3").read_bytes())
    with caplog.at_level("WARNING", logger="amodal_ros.fleet"):
        assert find_bags([str(tmp_path)]) == [(tmp_path / "good").resolve()]
    assert "crashed holds a recording without metadata.yaml" in caplog.text
    with pytest.raises(InputError, match="ros2 bag reindex"):
        InputBag(crashed)


def test_two_bags_of_one_name_and_a_missing_ray_are_one_clear_error(tmp_path, capsys, monkeypatch):
    for parent in ("day1", "day2"):
        (tmp_path / parent / "run").mkdir(parents=True)
        (tmp_path / parent / "run" / "metadata.yaml").write_text("{}")
    out = str(tmp_path / "out")
    assert main(["replay-many", str(tmp_path / "day1"), str(tmp_path / "day2"), "--out", out]) == 2
    assert "same name would write the same output" in capsys.readouterr().err
    assert main(["replay-many", str(tmp_path / "day1"), "--out", out, "--gpus-per-bag", "1"]) == 2
    assert "reserves GPUs but --device is cpu: add --device cuda" in capsys.readouterr().err
    assert not os.path.exists(out)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["replay-many", str(tmp_path / "day1"), "--out", out]) == 2
    assert "pip install 'ray>=2.40'" in capsys.readouterr().err
    assert not os.path.exists(out)  # nothing written before the error


def test_a_bag_whose_windows_fail_says_so_with_the_cause(tmp_path, published_folder, monkeypatch):
    """A replay whose model windows fail is done (every frame answered, flagged REASON_ERROR),
    and its row says how many failed and why: the worker's log stays on its machine."""
    from amodal_ros.bags.fleet import (
        Job,
        ReplayManyArgs,
        ReplayWorker,
        _summary,
        bag_args,
        format_table,
    )
    from amodal_ros.cli.main import build_parser
    from amodal_ros.cli.options import from_namespace
    from amodal_ros.pipeline.processor import WindowProcessor

    def broken(self, window):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(WindowProcessor, "_run", broken)
    bags = bags_folder(tmp_path, corrupt=False)
    argv = ["replay-many", str(bags / "run0"), "--out", str(tmp_path / "out")]
    argv += ["--checkpoint", str(published_folder), "--no-progress"] + TINY
    args = from_namespace(ReplayManyArgs, build_parser().parse_args(argv))
    job = Job(bags / "run0", tmp_path / "out" / "run0")
    answer = ReplayWorker(1).replay(bag_args(args, job))
    job.status, job.summary = "done", answer["summary"]
    row = _summary([job], 1, 1.0)["bags"][0]
    failed = row["windows_failed"]
    logged = answer["summary"]["log"]
    assert failed == sum(line.startswith("ERROR") for line in logged) > 0
    assert f"{failed} model windows failed" in row["error"]
    assert "RuntimeError: CUDA out of memory" in row["error"]
    assert f"{row['windows']} ({failed} failed)" in format_table(_summary([job], 1, 1.0))
