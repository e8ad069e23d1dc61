"""`amodal-ros replay-many` on a real local Ray (2 CPUs here) with the tiny seeded model: the
same outputs as `amodal-ros replay`, one corrupt bag reported without stopping the others,
skipping what is done (and only what this bag made), run after run, Ctrl-C leaving nothing
half-written; and finding the bags."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from bag_helpers import FPS, FRAME_RATE, HEIGHT, STRIDE, WIDTH, WINDOW, read_bag  # noqa: E402

from amodal_ros.bags.demo_bag import write_demo_bag  # noqa: E402
from amodal_ros.bags.discovery import find_bags  # noqa: E402
from amodal_ros.bags.fleet_summary import Job, output_name, summarise  # noqa: E402
from amodal_ros.bags.output import mark_results  # noqa: E402
from amodal_ros.bags.reader import InputBag  # noqa: E402
from amodal_ros.cli.main import main  # noqa: E402
from amodal_ros.core.errors import InputError  # noqa: E402
from amodal_ros.core.staging import HOST  # noqa: E402

TINY = [
    "--frame-rate", str(FRAME_RATE), "--stride", str(STRIDE), "--height", "32",
    "--width", "64", "--num-frames", str(WINDOW), "--num-steps", "1",
]  # fmt: skip


def bags_folder(root: Path, frames: int = 14, corrupt: bool = True, first: int = 0) -> Path:
    """Three demo bags of different scenes (`frames` long, the first `first` when given), and
    (with `corrupt`) one whose storage is junk."""
    folder = root / "bags"
    for seed in range(3):
        length = first if seed == 0 and first else frames
        write_demo_bag(
            folder / f"run{seed}", frames=length, fps=FPS, seed=seed, height=HEIGHT, width=WIDTH
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
    (out / f".run3_corrupt.partial-{HOST}-999999999" / "run3_corrupt").mkdir(parents=True)
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
    shutil.rmtree(out / "run0")
    (out / "run0.mp4").write_bytes(b"a video without its bag")
    run0 = ["replay-many", str(bags / "run0")] + args[2:] + TINY + ["--no-progress", "--video"]
    assert main(run0) == 1  # before: run0 refused; 1: run3_corrupt's failure stays
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(Path(r["bag"]).name, r["status"]) for r in rows] == [
        ("run0", "done"), ("run3_corrupt", "failed")
    ]  # fmt: skip
    assert (out / "run0" / "metadata.yaml").is_file() and (out / "run0.mp4").stat().st_size > 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],  # SIGTERM:
    ids=["ctrl-c", "sigterm"],  # Ray's own handler exited with code 15 and no word
)
def test_ctrl_c_stops_the_workers_and_leaves_no_partial_output(
    tmp_path, published_folder, stop, code, said
):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    bags = bags_folder(tmp_path, frames=400, corrupt=False)  # long enough to interrupt
    out = tmp_path / "results"
    # another run on the same OUT, alive (this process), is writing each bag: its stages stay
    live = [out / f".run{i}.partial-{HOST}-{os.getpid()}" for i in range(3)]
    for stage in live:
        stage.mkdir(parents=True)
    # the console script users run (`python -m` exits by SIGINT after some SIGTERM stops)
    command = str(Path(sys.executable).with_name("amodal-ros"))
    cmd = [command, "replay-many", str(bags), "--out"]
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
        proc.send_signal(stop)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, output
    assert said in output and "Traceback" not in output
    assert all(stage.is_dir() for stage in live)  # the stopped workers' own stages went
    for stage in live:
        stage.rmdir()
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


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Ray's raylet and its workers run under the driver)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_bag_fails_that_bag_and_a_new_worker_replays_the_rest(
    tmp_path, published_folder
):
    """A worker process that dies (the kernel's out-of-memory killer, a driver crash) fails
    the bag it was replaying, with the cause, and leaves none of it; a new worker replays the
    bags left. Only this run's worker is killed (another test's Ray may run beside it)."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    # the first bag, replayed first, long enough to be killed in; the rest short
    bags = bags_folder(tmp_path, corrupt=False, first=120)
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "amodal_ros.cli.main", "replay-many", str(bags), "--out"]
    cmd += [str(out), "--checkpoint", str(published_folder), "--no-progress"]
    cmd += ["--cpus-per-bag", "2"] + TINY  # one worker on 2 CPUs: the bags in turn
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # Ray's start-up alone takes a minute under load
        while not list(out.glob(".run?.partial-*")):  # the worker is writing a bag
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        (busy,) = list(out.glob(".run?.partial-*"))
        workers = [
            p
            for p in _descendants(proc.pid)
            if b"ray::ReplayWorker" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        output, _ = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 1, output  # a bag failed
    rows = {Path(r["bag"]).name: r for r in csv.DictReader((out / "summary.csv").open())}
    killed = busy.name.split(".")[1]
    assert rows[killed]["status"] == "failed" and "the worker failed" in rows[killed]["error"]
    assert [rows[n]["status"] for n in sorted(rows) if n != killed] == ["done", "done"]
    assert not [n for n in everything_under(out) if ".partial" in n]
    assert not (out / killed).exists()


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
    for missing in ("missing.bag", "missing.mcap"):  # named like a bag, but not there
        with pytest.raises(InputError, match=f"{missing}: no such bag"):
            find_bags([str(tmp_path / missing)])
    # a glob of folders of bags takes the bags inside them, as a folder would
    assert find_bags([str(tmp_path / "b*")]) == [(bags / n).resolve() for n in "abc"]


def test_a_recording_stopped_before_its_metadata_is_named_with_the_fix(tmp_path, caplog):
    """A recorder killed mid-bag leaves its .db3 without metadata.yaml: a folder scan says so
    (it was passed over in silence), and replaying it names `ros2 bag reindex`."""
    write_demo_bag(tmp_path / "good", frames=2, fps=FPS, seed=0, height=HEIGHT, width=WIDTH)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / "crashed_0.db3").write_bytes((tmp_path / "good" / "good.db3").read_bytes())
    with caplog.at_level("WARNING", logger="amodal_ros.bags"):
        assert find_bags([str(tmp_path)]) == [(tmp_path / "good").resolve()]
    assert "crashed holds a recording without metadata.yaml" in caplog.text
    with pytest.raises(InputError, match="ros2 bag reindex"):
        InputBag(crashed)


def test_a_recording_left_out_is_one_row_however_its_folder_is_named(tmp_path):
    """A folder named twice, once through a link (`~/bags` pointing at the disk): its bag is
    replayed once and its unfinished recording is one left-out row, under its real path as
    the bags' (unresolved, the summary counted it twice and a later run matched neither)."""
    recs = tmp_path / "disk" / "recs"
    (recs / "run").mkdir(parents=True)
    (recs / "run" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}")
    (recs / "crashed").mkdir()
    (recs / "crashed" / "crashed_0.db3").write_bytes(b"")
    (tmp_path / "bags").symlink_to(recs)
    left_out = {}
    found = find_bags([str(recs), str(tmp_path / "bags")], left_out)
    assert found == [(recs / "run").resolve()]
    assert list(left_out) == [(recs / "crashed").resolve()]


def test_only_a_ros1_bag_active_file_is_an_unfinished_recording(tmp_path):
    """`rosbag record` writes `<name>.bag.active` until it closes; another tool's `.active`
    file beside the bags (a lock, a session marker) is no recording: not left out, which
    made replay-many exit 1 for it."""
    recs = tmp_path / "recs"
    (recs / "run").mkdir(parents=True)
    (recs / "run" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}")
    (recs / "session.active").write_text("")
    (recs / "old.bag.active").write_bytes(b"#ROSBAG V2.0\n")
    left_out = {}
    assert find_bags([str(recs)], left_out) == [(recs / "run").resolve()]
    assert list(left_out) == [(recs / "old.bag.active").resolve()]


def test_two_bags_of_one_name_and_a_missing_ray_are_one_clear_error(tmp_path, capsys, monkeypatch):
    for parent in ("day1", "day2"):
        (tmp_path / parent / "run").mkdir(parents=True)
        (tmp_path / parent / "run" / "metadata.yaml").write_text("{}")
    out = str(tmp_path / "out")
    assert main(["replay-many", str(tmp_path / "day1"), str(tmp_path / "day2"), "--out", out]) == 2
    assert "same name would write the same output" in capsys.readouterr().err
    inside = tmp_path / "day1" / "run" / "results"  # was refused bag by bag after Ray started
    assert main(["replay-many", str(tmp_path / "day1"), "--out", str(inside)]) == 2
    assert (
        f"--out {inside} is inside the bag {tmp_path / 'day1' / 'run'}" in capsys.readouterr().err
    )
    assert not inside.exists()
    assert main(["replay-many", str(tmp_path / "day1"), "--out", out, "--gpus-per-bag", "1"]) == 2
    assert "reserves GPUs but --device is cpu: add --device cuda" in capsys.readouterr().err
    assert not os.path.exists(out)
    # a cluster address nothing answers at: Ray retried it for minutes, saying only that
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port of this machine no one listens on
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
        argv = ["replay-many", str(tmp_path / "day1"), "--out", out, "--address", nowhere]
        assert main([*argv, "--checkpoint", "embedded"]) == 2
    assert f"--address {nowhere}: no Ray cluster answers there" in capsys.readouterr().err
    assert not os.path.exists(out)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["replay-many", str(tmp_path / "day1"), "--out", out]) == 2
    assert "pip install 'ray>=2.40'" in capsys.readouterr().err
    assert not os.path.exists(out)  # nothing written before the error


def test_a_bag_whose_windows_fail_says_so_with_the_cause(tmp_path, published_folder, monkeypatch):
    """A replay whose model windows fail is done (every frame answered, flagged REASON_ERROR),
    and its row says how many failed and why: the worker's log stays on its machine."""
    from amodal_ros.bags.fleet import ReplayManyArgs, ReplayWorker, bag_args
    from amodal_ros.bags.fleet_summary import Job, format_table, summarise
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
    row = summarise([job], 1, 1.0)["bags"][0]
    failed = row["windows_failed"]
    logged = answer["summary"]["log"]
    assert failed == sum(line.startswith("ERROR") for line in logged) > 0
    assert f"{failed} model windows failed" in row["error"]
    assert "RuntimeError: CUDA out of memory" in row["error"]
    assert f"{row['windows']} ({failed} failed)" in format_table(summarise([job], 1, 1.0))


def test_a_bag_whose_windows_failed_is_replayed_again_and_the_exit_code_says_so(
    tmp_path, monkeypatch, capsys
):
    """Such a bag was skipped by every later run, and the run exited 0: an overnight run on a
    GPU out of memory looked done. Now the exit code is 1 and the next run replays it (its
    output replaced only by a replay that completes)."""
    from amodal_ros.bags.fleet import ReplayManyArgs, _skip_done, bag_args, output_options
    from amodal_ros.bags.fleet_summary import recorded_replays, what_failed
    from amodal_ros.cli.main import build_parser
    from amodal_ros.cli.options import from_namespace

    write_demo_bag(tmp_path / "day1" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    bag, out = (tmp_path / "day1" / "run").resolve(), (tmp_path / "R").resolve()
    cmd = ["replay-many", str(bag), "--out", str(out), "--no-progress"]
    args = from_namespace(ReplayManyArgs, build_parser().parse_args(cmd))
    options = output_options(bag_args(args, Job(bag, out / "run")))
    done_output(bag, out, windows_failed=3, options=options)

    jobs = [Job(bag, out / "run")]
    _skip_done(jobs, recorded_replays(json.loads((out / "summary.json").read_text())), args)
    assert jobs[0].retry and not jobs[0].status  # to run, not skipped
    assert bag_args(args, jobs[0]).overwrite and not bag_args(args, Job(bag, out)).overwrite
    monkeypatch.setitem(sys.modules, "ray", None)  # it needs a replay: Ray is asked for
    assert main(cmd) == 2 and "pip install 'ray>=2.40'" in capsys.readouterr().err
    assert (out / "run" / "metadata.yaml").is_file()  # the earlier output is still there

    rows = [
        {"bag": "a", "status": "done", "windows_failed": 2},
        {"bag": "b", "status": "done", "windows_failed": 0},
        {"bag": "c", "status": "failed", "windows_failed": 0},
    ]
    assert what_failed(rows) == (
        "1 of 3 bags failed (c) and 1 of 3 bags had model windows that failed (a)"
    )
    assert what_failed(rows[1:2]) == ""


@pytest.mark.slow
def test_a_local_run_ignores_ray_address_and_later_runs_keep_every_bags_numbers(
    tmp_path, published_folder, monkeypatch, capsys
):
    """Without --address a Ray starts here, although RAY_ADDRESS names a cluster (it joined
    that one); a relative --out is made absolute before it goes to the workers; and a run of
    some bags keeps summary.json's records of the others (they were dropped: a later run
    naming them again showed 0 frames)."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    # a cluster to keep away from; not even an address, so that joining it fails at once (a
    # host:port of no cluster is retried for minutes)
    monkeypatch.setenv("RAY_ADDRESS", "no-cluster-here")
    monkeypatch.chdir(tmp_path)
    for seed, name in enumerate(("run", "other")):
        write_demo_bag(
            tmp_path / "day1" / name, frames=8, fps=FPS, seed=seed, height=HEIGHT, width=WIDTH
        )
    options = ["--out", "R", "--checkpoint", str(published_folder), "--no-progress"] + TINY
    assert main(["replay-many", "day1"] + options) == 0
    out, day1 = (tmp_path / "R").resolve(), (tmp_path / "day1").resolve()
    replays = json.loads((out / "summary.json").read_text())["replays"]
    assert set(replays) == {str(day1 / "run"), str(day1 / "other")}
    assert replays[str(day1 / "run")]["out"] == str(out / "run")  # not R/run, a worker's cwd
    frames = {Path(bag).name: s["frames_synchronised"] for bag, s in replays.items()}
    assert all(n > 0 for n in frames.values())
    with InputBag(day1 / "run") as bag:  # what tells a moved bag from another of one name
        assert replays[str(day1 / "run")]["recording"] == bag.recording
    # the options that made them are recorded: other ones are refused, not skipped
    assert main(["replay-many", "day1"] + options + ["--storage", "mcap"]) == 2
    assert "was made with --storage sqlite3 (this run: mcap)" in capsys.readouterr().err
    # the results alone are nothing to replay (it exited 0, having dropped them all)
    assert main(["replay-many", "R"] + options) == 2
    assert "nothing to replay" in capsys.readouterr().err

    # one bag, then both: the other's numbers survive the run that did not name it
    assert main(["replay-many", "day1/run"] + options) == 0
    assert main(["replay-many", "day1/run", "day1/other"] + options) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(Path(r["bag"]).name, r["status"], r["frames"]) for r in summary["bags"]] == [
        ("run", "skipped", frames["run"]), ("other", "skipped", frames["other"])
    ]  # fmt: skip
    assert summary["totals"]["frames"] == frames["run"] + frames["other"]

    # the same recording moved: its output is found, with its numbers, under its new path
    shutil.copytree(day1 / "run", tmp_path / "moved" / "run")
    assert main(["replay-many", "moved"] + options) == 0
    replays = json.loads((out / "summary.json").read_text())["replays"]
    assert set(replays) == {str(tmp_path.resolve() / "moved" / "run"), str(day1 / "other")}
    capsys.readouterr()


def test_an_output_of_another_bag_of_the_same_name_is_refused_not_skipped(
    tmp_path, capsys, caplog
):
    """OUT/run made by day1/run was skipped as done for day2/run, which was never replayed.
    Now a different recording is refused before anything starts, the same recording moved
    is skipped with its numbers, and an output with no record in summary.json is judged by
    its own (a folder without one was skipped as done)."""
    for day, frames in (("day1", 2), ("day2", 3)):  # different recordings: counts differ
        write_demo_bag(tmp_path / day / "run", frames=frames, fps=FPS, height=HEIGHT, width=WIDTH)
    shutil.copytree(tmp_path / "day1" / "run", tmp_path / "moved" / "run")
    day1, day2 = (tmp_path / "day1" / "run").resolve(), (tmp_path / "day2" / "run").resolve()
    out = (tmp_path / "R").resolve()
    shutil.copytree(day1, out / "run")  # as if replayed: a complete output of day1/run
    with InputBag(day1) as bag:
        record = {"frames_synchronised": 2, "results_written": 1, "recording": bag.recording}
    (out / "summary.json").write_text(json.dumps({"replays": {str(day1): record}}))
    before = (out / "summary.json").read_text()
    cmd = ["replay-many", "--out", str(out), "--no-progress"]

    assert main(cmd + [str(tmp_path / "day2")]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'run'} holds the results of {day1}, not {day2}: use another --out" in err
    assert "--overwrite to replay every bag" in err
    assert (out / "summary.json").read_text() == before  # nothing was written

    assert main(cmd + [str(tmp_path / "moved")]) == 0  # all skipped: no Ray needed
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["status"], r["frames"], r["results"]) for r in summary["bags"]] == [
        ("skipped", 2, 1)
    ]

    # moved/run (now the record's) recorded again at that path: not taken for the new one
    moved = (tmp_path / "moved" / "run").resolve()
    shutil.rmtree(moved)
    shutil.copytree(day2, moved)
    assert main(cmd + [str(tmp_path / "moved")]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'run'} holds the results of an earlier recording at {moved}, not" in err

    # summary.json lost (deleted; two runs at once): the output's own record decides, and a
    # folder without one (a copy of a recording, notes, empty) is no result: it was skipped
    (out / "summary.json").unlink()
    (out / "run" / "amodal_ros_results.json").unlink()  # the mark a run gave it from the record
    assert main(cmd + [str(tmp_path / "day1")]) == 2
    assert f"{out / 'run'} is no bag of results replay wrote" in capsys.readouterr().err
    mark_results(out / "run", {"bag": str(day1), "recording": record["recording"]})
    assert main(cmd + [str(tmp_path / "day2")]) == 2
    assert f"holds the results of {day1}, not {day2}" in capsys.readouterr().err
    with caplog.at_level("WARNING", logger="amodal_ros.fleet"):
        assert main(cmd + [str(tmp_path / "day1")]) == 0
    assert (
        "has no record in" in caplog.text and "amodal_ros_results.json is checked" in caplog.text
    )
    assert summary_rows(out) == [("run", "skipped")]
    # its record is summary.json's again: the next run needs no marker
    replays = json.loads((out / "summary.json").read_text())["replays"]
    assert replays[str(day1)]["recording"] == record["recording"]
    (out / "summary.json").unlink()
    (out / "run" / "amodal_ros_results.json").write_text("{")  # damaged
    assert main(cmd + [str(tmp_path / "day1")]) == 2
    assert "amodal_ros_results.json cannot be read" in capsys.readouterr().err


def test_summary_keeps_the_records_of_bags_this_run_did_not_replay(tmp_path):
    """summary.json's "replays" held only the bags of the latest run: the records of earlier
    ones were lost. A record goes only with its output: replaced, or failed and absent."""
    out = tmp_path / "R"
    for name in ("a", "b", "c"):
        (out / name).mkdir(parents=True)
    earlier = {
        "/x/a": {"frames_synchronised": 5},  # not in this run: kept
        "/x/b": {"frames_synchronised": 6},  # its output replaced by /y/b's: dropped
        "/x/c": {"frames_synchronised": 7},  # failed again, --overwrite kept the output: kept
        "/x/d": {"frames_synchronised": 8},  # failed, its output gone: dropped
    }
    jobs = [
        Job(Path("/y/b"), out / "b", "done", {"frames_synchronised": 9}),
        Job(Path("/x/c"), out / "c", "failed", error="RuntimeError: boom"),
        Job(Path("/x/d"), out / "d", "failed", error="RuntimeError: boom"),
    ]
    replays = summarise(jobs, 1, 1.0, earlier)["replays"]
    assert replays == {
        "/x/a": {"frames_synchronised": 5},
        "/y/b": {"frames_synchronised": 9},
        "/x/c": {"frames_synchronised": 7},
    }


def test_a_lone_mcap_file_is_a_bag_and_a_rosbag2_folders_own_are_not(tmp_path, caplog):
    """A bare .mcap (a Foxglove recording) was 'no such bag' and left out of folders and
    globs; the .mcap files of a rosbag2 folder stay parts of that one bag."""
    recs = tmp_path / "recs"
    write_demo_bag(tmp_path / "m", frames=2, fps=FPS, height=HEIGHT, width=WIDTH, storage="mcap")
    recs.mkdir()
    (tmp_path / "m" / "m.mcap").rename(recs / "fox.mcap")
    write_demo_bag(recs / "split", frames=2, fps=FPS, height=HEIGHT, width=WIDTH, storage="mcap")
    fox, split = (recs / "fox.mcap").resolve(), (recs / "split").resolve()
    crashed = tmp_path / "more" / "crashed"  # a recording stopped before its metadata.yaml
    crashed.mkdir(parents=True)
    (crashed / "crashed_0.mcap").write_bytes(fox.read_bytes())

    with InputBag(fox) as bag:  # what replay opens
        assert bag.recording["messages"] > 0
    assert find_bags([str(fox)]) == [fox] and output_name(fox) == "fox"
    assert find_bags([str(recs)]) == [fox, split]
    assert find_bags([str(recs / "*")]) == [fox, split]
    # the folder and its own files: one bag, not two
    assert find_bags([str(split), str(split / "*")]) == [split]
    with pytest.raises(InputError, match="is a file of the rosbag2 bag .*split: name the folder"):
        find_bags([str(next(split.glob("*.mcap")))])
    warnings = caplog.at_level("WARNING", logger="amodal_ros.bags")
    with warnings, pytest.raises(InputError, match="neither a bag"):
        find_bags([str(tmp_path / "more")])
    assert "crashed holds a recording without metadata.yaml" in caplog.text
    assert "one of its .mcap files can also be named directly" in caplog.text
    # its storage files are pieces of one recording, not lone bags: a glob or the folder
    # itself does not list them (they were replayed as bags of their own)
    (crashed / "crashed_1.mcap").write_bytes(fox.read_bytes())
    with pytest.raises(InputError, match="no bags found"):
        find_bags([str(tmp_path / "more" / "*")])
    with pytest.raises(InputError, match="ros2 bag reindex"):
        find_bags([str(crashed)])
    assert find_bags([str(crashed / "crashed_0.mcap")]) == [(crashed / "crashed_0.mcap").resolve()]


def test_model_folders_named_relative_to_here_reach_the_workers_absolute(tmp_path, monkeypatch):
    """A cluster's worker runs in its own folder: `--checkpoint models/ck` named nothing
    there. Model names stay names."""
    from amodal_ros.bags.fleet import ReplayManyArgs, bag_args
    from amodal_ros.core.config import InferenceConfig, StreamConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "ck").mkdir(parents=True)
    args = ReplayManyArgs(
        bag=["recordings"],
        out=tmp_path / "out",
        stream=StreamConfig(checkpoint="models/ck", completion_checkpoint="embedded"),
        inference=InferenceConfig(engine_cache="engines"),
    )
    job = Job(tmp_path / "recordings" / "run", tmp_path / "out" / "run")
    (tmp_path / "embedded").mkdir()  # a folder named as a model here: the name still wins
    sent = bag_args(args, job)
    assert sent.stream.checkpoint == str(tmp_path / "models" / "ck")
    assert sent.stream.completion_checkpoint == "embedded"
    assert sent.inference.engine_cache == str(tmp_path / "engines")


def test_the_frame_rate_counts_the_frames_this_run_replayed():
    """A skipped bag's frames were replayed by an earlier run: they do not speed this one up."""
    done = Job(Path("a"), Path("out/a"), "done", summary={"frames_synchronised": 10})
    skipped = Job(Path("b"), Path("out/b"), "skipped", summary={"frames_synchronised": 100})
    totals = summarise([done, skipped], 1, 10.0)["totals"]
    assert totals["frames"] == 110 and totals["frames_per_s"] == 1.0


def test_bags_an_earlier_run_did_not_answer_stay_rows_until_answered_or_gone(tmp_path):
    """Failed, not run or left out in an earlier summary, a bag this run does not name keeps
    its row (a dangling link too: the recording may come back); a done one, this run's and a
    gone one do not."""
    from amodal_ros.bags.fleet_summary import EARLIER_RUN, earlier_unanswered

    for name in ("failed", "not_run", "left_out", "done", "named"):
        (tmp_path / name).mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "moved")
    rows = [
        ("failed", "failed"),
        ("not_run", "not run"),
        ("left_out", "left out"),
        ("link", "failed"),
        ("done", "done"),
        ("named", "failed"),
        ("gone", "failed"),
    ]
    earlier = {"bags": [{"bag": str(tmp_path / b), "status": st, "error": "x"} for b, st in rows]}
    named = [Job(tmp_path / "named", tmp_path / "out" / "named")]
    kept = earlier_unanswered(earlier, named)
    assert [(j.bag.name, j.status) for j in kept] == [
        ("failed", "failed"),
        ("not_run", "not run"),
        ("left_out", "left out"),
        ("link", "failed"),
    ]
    assert all(j.error == EARLIER_RUN + "x" for j in kept)


def done_output(bag: Path, out: Path, **record) -> None:
    """OUT/<bag name> as if replayed from `bag` (a copy of it), with its record in summary.json
    (its fingerprint and the fields given)."""
    shutil.copytree(bag, out / bag.name)
    with InputBag(bag) as opened:
        recording = opened.recording
    path = out / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"replays": {}}
    record = {"frames_synchronised": 2, "recording": recording, **record}
    summary["replays"][str(bag.resolve())] = record
    path.write_text(json.dumps(summary))


def summary_rows(out: Path) -> list[tuple[str, str]]:
    return [
        (Path(r["bag"]).name, r["status"]) for r in csv.DictReader((out / "summary.csv").open())
    ]


def test_an_output_made_with_other_options_is_refused_not_skipped(tmp_path, capsys, caplog):
    """A bag done before was skipped whatever options made it: a second run with --video, or
    --storage mcap --start 0.3, skipped every bag and wrote nothing. Now the first option that
    differs is named before anything starts; a record without options (an earlier version's)
    is skipped with a note."""
    from amodal_ros.bags.fleet import ReplayManyArgs, bag_args, output_options
    from amodal_ros.cli.main import build_parser
    from amodal_ros.cli.options import from_namespace

    write_demo_bag(tmp_path / "day1" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    bag, out = (tmp_path / "day1" / "run").resolve(), (tmp_path / "R").resolve()
    cmd = ["replay-many", str(bag), "--out", str(out), "--no-progress"]
    args = from_namespace(ReplayManyArgs, build_parser().parse_args(cmd))
    done_output(bag, out, options=output_options(bag_args(args, Job(bag, out / "run"))))

    assert main(cmd) == 0  # the same options: skipped, no Ray needed
    assert summary_rows(out) == [("run", "skipped")]
    assert main(cmd + ["--video"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'run'} was made with --video off (this run: on)" in err
    assert "remove those outputs (their bags alone are replayed again), or --overwrite" in err
    assert main(cmd + ["--storage", "mcap", "--start", "0.3"]) == 2
    assert "was made with --start unset (this run: 0.3)" in capsys.readouterr().err
    # which machine or how fast is not what the output holds
    faster = [
        "--engine-cache",
        str(tmp_path / "engines"),
        "--no-compressed",
        "--dtype",
        "bfloat16",
        "--fail-after",
        "3",  # a bag done got past it, whatever it was
    ]
    assert main(cmd + faster) == 0  # a CPU run finished on GPUs (README)

    summary = json.loads((out / "summary.json").read_text())
    del summary["replays"][str(bag)]["options"]
    (out / "summary.json").write_text(json.dumps(summary))
    with caplog.at_level("WARNING", logger="amodal_ros.fleet"):
        assert main(cmd + ["--video"]) == 0
    assert "1 outputs in" in caplog.text and "no record of the options" in caplog.text


def test_results_in_out_are_left_out_and_recordings_there_are_not(
    tmp_path, published_folder, capsys
):
    """Every bag found inside --out was dropped as an earlier result, and the run exited 0 with
    an empty table: --out holding the recordings, or above them. Only replay's results
    directly in OUT are earlier results; nothing else to replay is an error."""
    runs = tmp_path / "runs"
    write_demo_bag(runs / "a", frames=4, fps=FPS, height=HEIGHT, width=WIDTH)
    replay = ["replay", str(runs / "a"), "--out", str(runs / "res" / "a"), "--no-progress"]
    assert main(replay + ["--checkpoint", str(published_folder)] + TINY) == 0
    capsys.readouterr()

    # 'runs/*' --out runs/res finds runs/res/a, a result: not replayed (runs/a's is done, by
    # its own record: replay wrote no summary.json; made with other options, it is refused)
    many = ["replay-many", str(runs / "*"), "--out", str(runs / "res")]
    assert main(many) == 2
    assert f"{runs / 'res' / 'a'} was made with --checkpoint" in capsys.readouterr().err
    assert main(many + ["--checkpoint", str(published_folder)] + TINY) == 0
    assert summary_rows(runs / "res") == [("a", "skipped")]
    # the results alone: nothing to replay
    assert main(["replay-many", str(runs / "res"), "--out", str(runs / "res")]) == 2
    assert "nothing to replay" in capsys.readouterr().err
    # --out the folder of the recordings: a bag's results would replace the bag
    assert main(["replay-many", str(runs), "--out", str(runs)]) == 2
    assert "a bag's results would replace it" in capsys.readouterr().err
    # a bag in a folder of its own name under --out: OUT/a would be the bag's folder
    nested = shutil.copytree(runs / "a", tmp_path / "nest" / "a" / "a")
    assert main(["replay-many", str(nested), "--out", str(tmp_path / "nest")]) == 2
    assert f"{nested}: a bag's results would replace it" in capsys.readouterr().err
    # --out above the recordings: replayed, here skipped as done (they were dropped)
    done_output(runs / "a", tmp_path)
    assert main(["replay-many", str(runs / "a"), "--out", str(tmp_path)]) == 0
    assert summary_rows(tmp_path) == [("a", "skipped")]


def without_masks_after(src: Path, dst: Path, kept: int) -> None:
    """A copy of the demo bag `src` whose segmenter stopped after `kept` label images."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Writer

    from amodal_ros.bags.topics import MASK_TOPIC
    from amodal_ros.bags.typestore import amodal_typestore

    store, masks = amodal_typestore(), 0
    with AnyReader([src], default_typestore=store) as reader, Writer(dst, version=8) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store)
                 for c in reader.connections}  # fmt: skip
        for conn, t, raw in reader.messages():
            masks += conn.topic == MASK_TOPIC
            if conn.topic != MASK_TOPIC or masks <= kept:
                writer.write(conns[conn.id], t, raw)


def test_frames_that_never_got_a_result_are_counted_and_said(tmp_path, published_folder, caplog):
    """A bag whose mask topic stops early read 'done, frames 4' with nothing about the frames
    that got no result; its row, the totals and summary.csv count them, and the driver's log
    says so."""
    from amodal_ros.bags.fleet import ReplayManyArgs, ReplayWorker, _done, bag_args
    from amodal_ros.bags.fleet_summary import format_table, write_summary
    from amodal_ros.bags.topics import DEPTH_TOPIC, RGB_TOPIC
    from amodal_ros.cli.main import build_parser
    from amodal_ros.cli.options import from_namespace

    write_demo_bag(tmp_path / "full", frames=14, fps=FPS, height=HEIGHT, width=WIDTH)
    without_masks_after(tmp_path / "full", tmp_path / "half", kept=4)
    out = tmp_path / "out"
    argv = ["replay-many", str(tmp_path / "half"), "--out", str(out), "--no-progress"]
    argv += ["--checkpoint", str(published_folder)] + TINY
    args = from_namespace(ReplayManyArgs, build_parser().parse_args(argv))
    job = Job(tmp_path / "half", out / "half")
    answer = ReplayWorker(1).replay(bag_args(args, job))
    with caplog.at_level("WARNING", logger="amodal_ros.fleet"):
        _done(job, answer["summary"])
    said = f"20 messages never paired into a frame, so they have no result ({RGB_TOPIC} 10, "
    assert said + f"{DEPTH_TOPIC} 10): a topic stopped" in caplog.text
    caplog.clear()  # stamps that went back are said as such
    with caplog.at_level("WARNING", logger="amodal_ros.fleet"):
        _done(job, {**answer["summary"], "stamped_behind": 3})
    assert "10): 3 images were stamped before a frame already paired" in caplog.text
    result = summarise([job], 1, 1.0)
    row = result["bags"][0]
    assert (row["status"], row["frames"], row["unmatched_messages"]) == ("done", 4, 20)
    assert result["totals"]["unmatched_messages"] == 20
    header, line, total = format_table(result).splitlines()[:3]
    assert header.split()[5] == "unmatched" and line.split()[5] == total.split()[-3] == "20"
    write_summary(out, result)
    assert [r["unmatched_messages"] for r in csv.DictReader((out / "summary.csv").open())] == [
        "20"
    ]


def test_an_unanswered_bag_stays_in_the_summary_until_answered_or_gone(tmp_path, capsys):
    """A later run over fewer bags wrote a summary.csv without the bag that had failed, or a
    stopped run had not run, as if OUT were complete (exit 0); their rows are kept (and the
    exit code says so) until a run replaces them or the bag is deleted (a failure was kept
    for ever: every nightly run exited 1)."""
    write_demo_bag(tmp_path / "day1" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    bag, out = (tmp_path / "day1" / "run").resolve(), (tmp_path / "R").resolve()
    broken, unrun = tmp_path / "x" / "broken", tmp_path / "x" / "unrun"
    for folder in (broken, unrun):
        folder.mkdir(parents=True)
    done_output(bag, out)
    summary = json.loads((out / "summary.json").read_text())
    failed = {"bag": str(broken), "status": "failed", "error": "InputError: cannot read bag"}
    stopped = {"bag": str(unrun), "status": "not run", "error": ""}
    summary["bags"] = [{"bag": str(bag), "status": "done"}, failed, stopped]
    (out / "summary.json").write_text(json.dumps(summary))
    cmd = ["replay-many", str(bag), "--out", str(out), "--no-progress"]
    for _ in range(2):  # run after run, said once as an earlier run's
        assert main(cmd) == 1
        assert "1 of 3 bags failed" in capsys.readouterr().err
        rows = list(csv.DictReader((out / "summary.csv").open()))
        assert [(r["bag"], r["status"]) for r in rows] == [
            (str(bag), "skipped"), (str(broken), "failed"), (str(unrun), "not run")
        ]  # fmt: skip
        assert rows[1]["error"] == "in an earlier run: InputError: cannot read bag"
    unrun.rmdir()  # deleted: nothing is left to answer
    assert main(cmd) == 1
    assert summary_rows(out) == [("run", "skipped"), ("broken", "failed")]
    # a bag of the same name done into OUT/broken replaces its row
    write_demo_bag(tmp_path / "day2" / "broken", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    done_output((tmp_path / "day2" / "broken").resolve(), out)
    assert main(cmd[:2] + [str(tmp_path / "day2" / "broken")] + cmd[2:]) == 0
    assert summary_rows(out) == [("run", "skipped"), ("broken", "skipped")]


def test_a_second_run_into_an_out_in_use_is_refused(tmp_path, capsys):
    """Two runs at once each rewrote summary.json from what they read at their start: the
    last to finish dropped the other's bags, which later runs skipped unrecorded."""
    import fcntl

    write_demo_bag(tmp_path / "day1" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    bag, out = (tmp_path / "day1" / "run").resolve(), (tmp_path / "R").resolve()
    done_output(bag, out)
    before = (out / "summary.json").read_text()
    cmd = ["replay-many", str(bag), "--out", str(out), "--no-progress"]
    held = os.open(out, os.O_RDONLY)  # as a run writing there holds it
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(cmd) == 2
        assert f"another replay-many is writing to {out}" in capsys.readouterr().err
        assert (out / "summary.json").read_text() == before
    finally:
        os.close(held)
    assert main(cmd) == 0 and main(cmd) == 0  # released when a run ends


def test_a_done_bag_that_cannot_be_read_fails_alone(tmp_path, capsys):
    """A done bag whose storage later became unreadable stopped the whole run with 'holds the
    results of an earlier recording at X, not X'; now that bag fails with why, and the others
    go on."""
    for name in ("run", "other"):
        write_demo_bag(tmp_path / "day1" / name, frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
        done_output((tmp_path / "day1" / name).resolve(), tmp_path / "R")
    (tmp_path / "day1" / "run" / "run.db3").write_bytes(b"not an sqlite database" * 100)
    assert main(["replay-many", str(tmp_path / "day1"), "--out", str(tmp_path / "R")]) == 1
    err = capsys.readouterr().err
    assert "holds the results" not in err and "1 of 2 bags failed" in err
    rows = list(csv.DictReader((tmp_path / "R" / "summary.csv").open()))
    assert [(Path(r["bag"]).name, r["status"]) for r in rows] == [
        ("other", "skipped"), ("run", "failed")
    ]  # fmt: skip
    assert rows[1]["error"].startswith("InputError: cannot ")
    assert (tmp_path / "R" / "run" / "metadata.yaml").is_file()  # its output is kept


def test_recordings_left_out_are_rows_of_the_summary(tmp_path, capsys, caplog):
    """A rosbag2 folder without metadata.yaml was only a log line and a ROS 1 `.bag.active`
    nothing at all: the run read as complete. Both are rows `left out`, with why, counted in
    the totals, and the exit code is 1."""
    recs = tmp_path / "recs"
    write_demo_bag(recs / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    done_output((recs / "run").resolve(), tmp_path / "R")
    (recs / "crashed").mkdir()
    (recs / "crashed" / "crashed_0.db3").write_bytes((recs / "run" / "run.db3").read_bytes())
    (recs / "old.bag.active").write_bytes(b"#ROSBAG V2.0\n")
    with caplog.at_level("WARNING", logger="amodal_ros.bags"):
        assert main(["replay-many", str(recs), "--out", str(tmp_path / "R")]) == 1
    assert "old.bag.active is a ROS 1 recording still being written" in caplog.text
    printed = capsys.readouterr()
    assert "0 done, 1 skipped, 0 failed, 2 left out" in printed.out
    assert "2 of 3 bags were left out" in printed.err
    rows = list(csv.DictReader((tmp_path / "R" / "summary.csv").open()))
    assert [(Path(r["bag"]).name, r["status"]) for r in rows] == [
        ("run", "skipped"), ("crashed", "left out"), ("old.bag.active", "left out")
    ]  # fmt: skip
    assert "ros2 bag reindex" in rows[1]["error"] and "rosbag reindex" in rows[2]["error"]
    totals = json.loads((tmp_path / "R" / "summary.json").read_text())["totals"]
    assert totals["left out"] == 2
    with pytest.raises(InputError, match="ROS 1 recording still being written"):
        find_bags([str(recs / "old.bag.active")])


def test_a_model_folder_that_does_not_exist_is_refused_before_ray_starts(
    tmp_path, capsys, monkeypatch
):
    """It failed only once Ray had started and a worker tried to load it (a minute here)."""
    write_demo_bag(tmp_path / "day1" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray is never asked for
    cmd = ["replay-many", str(tmp_path / "day1"), "--out", str(tmp_path / "R")]
    assert main([*cmd, "--checkpoint", str(tmp_path / "typo")]) == 2
    assert f"--checkpoint {tmp_path / 'typo'} does not exist" in capsys.readouterr().err
    assert main([*cmd, "--depth-source", "model", "--depth-model", "vitz"]) == 2
    assert "--depth-model vitz does not exist (nor is it a model's name: tiny, vits" in (
        capsys.readouterr().err
    )
    assert main(cmd) == 2  # the embedded model: on to Ray
    assert "pip install 'ray>=2.40'" in capsys.readouterr().err
    # a cluster's machines may hold a folder this one lacks: not refused here
    assert main([*cmd, "--checkpoint", str(tmp_path / "typo"), "--address", "auto"]) == 2
    assert "pip install 'ray>=2.40'" in capsys.readouterr().err
    assert not (tmp_path / "R").exists()
    (tmp_path / "R").write_text("notes")
    assert main(cmd) == 2
    assert f"--out {tmp_path / 'R'} is a file; replay-many writes a folder" in (
        capsys.readouterr().err
    )


def test_start_up_leaves_a_live_runs_partial_output_alone(tmp_path, monkeypatch, capsys):
    """A second run on the same OUT deleted what the first one was writing: only what a dead
    process of this machine left half-written is removed."""
    write_demo_bag(tmp_path / "recs" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    out = tmp_path / "R"
    live = out / f".run.partial-{HOST}-{os.getpid()}"  # this process is alive
    dead = out / f".run.partial-{HOST}-999999999"  # above any pid_max
    for partial in (live, dead):
        (partial / "run").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "ray", None)  # stop right after the start-up clean-up
    assert main(["replay-many", str(tmp_path / "recs"), "--out", str(out)]) == 2
    assert "pip install 'ray>=2.40'" in capsys.readouterr().err
    assert live.is_dir() and not dead.exists()


def test_a_dead_runs_stage_beside_a_skipped_output_is_removed(tmp_path, capsys):
    """A killed `--overwrite` run leaves its stage (a partial copy of a bag) beside a complete
    output: only the bags still to do were cleaned, so every later run kept it."""
    write_demo_bag(tmp_path / "recs" / "run", frames=2, fps=FPS, height=HEIGHT, width=WIDTH)
    done_output((tmp_path / "recs" / "run").resolve(), tmp_path / "R")
    dead = tmp_path / "R" / f".run.partial-{HOST}-999999999"  # above any pid_max
    (dead / "run").mkdir(parents=True)
    assert main(["replay-many", str(tmp_path / "recs"), "--out", str(tmp_path / "R")]) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out
    assert not dead.exists()


def test_a_bags_first_error_is_kept_after_many_warnings():
    """A bag with many skipped messages filled the kept lines with warnings before the first
    ERROR, and its row said its windows failed with no cause."""
    import logging

    from amodal_ros.bags.fleet import LOGGED_LINES, _Lines
    from amodal_ros.bags.fleet_summary import failed_windows

    lines, log = _Lines(), logging.getLogger("amodal_ros.test_lines")
    log.addHandler(lines)
    try:
        for i in range(LOGGED_LINES + 5):
            log.warning("skipped message %d", i)
        log.error("window 3 failed: CUDA out of memory")
        log.error("window 4 failed: the same")
    finally:
        log.removeHandler(lines)
    assert len(lines.lines) == LOGGED_LINES
    row = failed_windows({"windows_failed": 2, "log": lines.lines})
    assert row.endswith("ERROR: window 3 failed: CUDA out of memory")


def test_outputs_written_before_results_were_marked_are_marked_from_the_summary(tmp_path):
    """An earlier run's output without the mark (made before replay wrote it) was taken for a
    recording by a glob over OUT, and a failed bag's retry was refused its own output."""
    from amodal_ros.bags.output import is_results_bag

    runs = tmp_path / "runs"
    write_demo_bag(runs / "a", frames=4, fps=FPS, height=HEIGHT, width=WIDTH)
    done_output(runs / "a", runs / "res")  # recorded in summary.json, unmarked
    assert not is_results_bag(runs / "res" / "a")
    assert main(["replay-many", str(runs / "*"), "--out", str(runs / "res")]) == 0
    assert summary_rows(runs / "res") == [("a", "skipped")]
    assert is_results_bag(runs / "res" / "a")
