"""`amodal-ros replay-many`: many bags through `amodal-ros replay`, in parallel on Ray.

Each bag is one job of the same replay code (`amodal_ros.bags.replay.run`) with the same
options; Ray places the jobs on workers by the resources they declare (`--cpus-per-bag`,
`--gpus-per-bag`). A worker is a Ray actor that loads the models once and replays one bag after
another, so a bag costs its frames, not a model load. Without `--address` a local Ray starts
in this process (and stops with it), even where RAY_ADDRESS is set or `ray start` ran; with
`--address auto` or `ray://head:10001` the bags go to a running cluster, whose machines must
see the bag and output paths (a shared file system; both are made absolute here, as a worker's
working folder is not ours).

    BAGS  (rosbag2 folders, ROS 1 .bag files, lone .mcap files, folders holding them, globs,
           .txt lists)
      --find_bags--> jobs --skip complete outputs--> Ray workers (models loaded once each)
      --replay.run per bag--> OUT/<bag name>/ (staged, renamed when complete)
      --> OUT/summary.csv, OUT/summary.json, a table

Safe to stop and run again: an output exists only when complete (replay stages it), so a
second run skips the bags that are done (`--overwrite` redoes them) and keeps their rows' numbers
from summary.json's "replays", which records, run after run, the bag that made each output
(its path, recording's fingerprint and the options that shape the output). An output made by
another bag of the same name is skipped only when that bag is the same recording moved; a
different recording, or other options, are refused before anything starts. A bag that fails is
reported with its error and the others go on; its row (as a bag not run or left out) stays in
the summary, and the exit code, until a run answers it or the bag is gone.
A bag whose model windows failed is done (flagged visible masks), replayed again by the next run.
Recordings that cannot be bags yet (no metadata.yaml, a ROS 1 `.bag.active`) are rows `left
out`. Ctrl-C stops the workers and removes what they had half-written. The rows, totals and
summary files: fleet_summary.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from amodal_ros.bags.discovery import find_bags
from amodal_ros.bags.fleet_summary import (
    DONE,
    FAILED,
    LEFT_OUT,
    NOT_RUN,
    SKIPPED,
    Job,
    earlier_summary,
    earlier_unanswered,
    format_table,
    output_name,
    recorded_replays,
    summarise,
    what_failed,
    write_summary,
)
from amodal_ros.bags.output import RESULTS_MARKER, is_results_bag, mark_results, results_record
from amodal_ros.bags.replay import ReplayArgs, output_options
from amodal_ros.core.config import param
from amodal_ros.core.errors import CheckpointError, InputError, ProcessingError
from amodal_ros.core.staging import (
    remove_dead_partials,
    remove_partials,
    wait_until_gone,
    writer_id,
)
from amodal_ros.pipeline.video import video_files

log = logging.getLogger("amodal_ros.fleet")
# how long a killed worker's process may take to end before its stages are removed (it can
# still stage a video after Ray has answered that it died)
WORKER_EXIT_S = 10.0

LOGGED_LINES = 20  # a worker's warnings and errors kept per bag (its own output stays there)
MODEL_FOLDERS = ("checkpoint", "completion_checkpoint", "depth_model")  # StreamConfig's


@dataclass
class ReplayManyArgs(ReplayArgs):
    """`replay`'s options for every bag, plus where the bags go and how many run at once."""

    bag: list[str] = param(  # type: ignore[assignment]
        MISSING,
        "bags: rosbag2 folders, ROS 1 .bag files, lone .mcap files, folders holding bags, "
        "globs ('runs/*') or .txt files listing one of those per line",
        positional=True,
    )
    out: Path = param(MISSING, "output folder: OUT/<bag name> per bag, summary.csv, summary.json")
    video: bool = param(False, "also write each bag's overlays as OUT/<bag name>.mp4")  # type: ignore[assignment]
    address: str = param(
        "",
        "Ray cluster to use ('auto', 'ray://head:10001'); '' = a local Ray started here "
        "(RAY_ADDRESS and a running `ray start` are not used)",
    )
    cpus_per_bag: float = param(1.0, "CPUs a bag's worker reserves (its torch threads)", 0.1)
    gpus_per_bag: float = param(0.0, "GPUs a bag's worker reserves (0.5 = two share one)", 0.0)
    workers: int = param(
        0, "parallel workers, each loading the models once; 0 = as many as the resources allow", 0
    )


def run(args: ReplayManyArgs) -> dict:
    """Replay every bag of `args.bag` into `args.out`; prints a table and writes the summary.

    Returns:
        {"bags": [per-bag rows], "totals": {...}, "workers": n, "seconds": s}.

    Raises:
        InputError: no bags (or only earlier results of OUT), two bags with one name, an output
            folder that is a file or that would replace a bag, or an output of a different
            recording of the same name or made with other options (without --overwrite), an
            OUT another run is writing to.
        CheckpointError: the models cannot be loaded (the same for every bag: stops all).
        ProcessingError: after the summary is written, when any bag failed or was left out.
        KeyboardInterrupt: Ctrl-C, after the workers are stopped and partial outputs removed.
    """
    out = Path(args.out).resolve()  # as the bags (find_bags): a worker's cwd is not ours
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; replay-many writes a folder of bags")
    with _OutLock(out) as lock:
        lock.claim()  # before an earlier run's summary is read
        _check_devices(args)
        left_out: dict[Path, str] = {}
        earlier = earlier_summary(out)
        records = recorded_replays(earlier)
        _mark_recorded_outputs(out, records)
        bags = _recordings(find_bags(args.bag, left_out), out)
        jobs = [Job(bag, out / output_name(bag)) for bag in bags]
        _check_outputs(jobs)
        if not args.overwrite:
            _skip_done(jobs, records, args)
        left = [
            Job(bag, out / output_name(bag), LEFT_OUT, error=why) for bag, why in left_out.items()
        ]
        # rows of bags this run has not run
        others = left + earlier_unanswered(earlier, jobs + left)
        todo = [job for job in jobs if not job.status]
        for job in jobs:  # a skipped output too: a killed --overwrite run left its stage beside it
            _remove_dead_partials(job)  # what a killed run left half-written here
        for job in todo:
            job.status = NOT_RUN
            if args.video and not job.out.exists():
                _remove_orphan_videos(job)
        started = time.perf_counter()
        workers = 0

        def save(count: int = 0) -> dict:
            """The summary as it stands, written after every bag: a stopped or killed run keeps
            the numbers of the bags it finished, which the next run's skipped rows show."""
            nonlocal workers
            workers = max(workers, count)
            result = summarise(jobs, workers, time.perf_counter() - started, records, others)
            write_summary(out, result)
            return result

        if todo:
            _check_model_folders(args)  # before Ray starts (a minute on a busy machine)
            _check_address(args.address)
            ray = _ray()  # before anything is written: a missing Ray is one clear error
            out.mkdir(parents=True, exist_ok=True)
            lock.claim()  # a new OUT: claimed as it appears
            try:
                _run_on_ray(ray, args, todo, started, save)
            finally:  # stopped (Ctrl-C, a checkpoint that cannot load): bags not run say so
                result = save()
        else:  # every bag done before, or failed to open (their outputs, and so OUT, exist)
            lock.claim()
            result = save()
        print(format_table(result), flush=True)
        problems = what_failed(result["bags"])
        if problems:
            raise ProcessingError(f"{problems}; their errors are in {out / 'summary.csv'}")
        return result


class _OutLock:
    """This run's hold on OUT (an advisory lock on the folder, released when the run or its
    process ends): two runs at once each rewrote summary.json from what they had read at
    their start, and the last to finish dropped the other's bags, later skipped unrecorded."""

    def __init__(self, out: Path):
        self.out, self.fd = out, None

    def claim(self) -> None:
        """Hold OUT once it exists.

        Raises:
            InputError: another run holds it.
        """
        import fcntl

        if self.fd is not None or not self.out.is_dir():
            return
        fd = os.open(self.out, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"another replay-many is writing to {self.out}: wait for it to end, or choose "
                "another --out"
            ) from None
        self.fd = fd

    def __enter__(self) -> _OutLock:
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _mark_recorded_outputs(out: Path, records: dict) -> None:
    """Outputs an earlier run wrote before replay marked its results bags: summary.json
    records them, so they get the mark now (a glob over OUT took them for recordings, and a
    failed bag's retry was refused its own output)."""
    for bag, record in records.items():
        output = out / output_name(Path(bag))
        if (output / "metadata.yaml").is_file() and not is_results_bag(output):
            made = {"written_by": "amodal-ros replay-many (marked later from summary.json)"}
            mark_results(output, {**made, "bag": bag, "recording": record.get("recording")})


def _recordings(bags: list[Path], out: Path) -> list[Path]:
    """`bags` less the results of earlier runs in `out` (a glob 'runs/*' with --out runs/res
    finds them); the recordings in or under `out` stay.

    Raises:
        InputError: nothing but earlier results is left to replay.
    """
    results = [b for b in bags if b.parent == out and is_results_bag(b)]
    if results:
        log.warning("not replaying %d results of earlier runs in --out %s", len(results), out)
    left = [b for b in bags if b not in results]
    if not left:
        raise InputError(
            f"every bag found is a result of an earlier run in --out {out}: nothing to replay; "
            "name the recordings"
        )
    return left


def _check_outputs(jobs: list[Job]) -> None:
    """Refuse two bags of one name (one output), an output that would replace its bag (a
    recording directly in --out), and an --out inside a bag's folder (results written into
    the recording: every bag failed, after Ray had started)."""
    inside = [job for job in jobs if job.out == job.bag or job.out in job.bag.parents]
    if inside:
        text = ", ".join(str(job.bag) for job in inside)
        raise InputError(
            f"{text}: a bag's results would replace it (OUT/<bag name> is the bag); choose "
            "another --out"
        )
    holders = [job for job in jobs if job.bag in job.out.parent.parents]  # OUT in a bag
    if holders:
        raise InputError(
            f"--out {holders[0].out.parent} is inside the bag {holders[0].bag}: its results "
            "would be written into the recording; choose an --out outside it"
        )
    by_out: dict[Path, list[Path]] = {}
    for job in jobs:
        by_out.setdefault(job.out, []).append(job.bag)
    clashes = {out: bags for out, bags in by_out.items() if len(bags) > 1}
    if clashes:
        text = "; ".join(f"{', '.join(map(str, b))} -> {o}" for o, b in clashes.items())
        raise InputError(f"bags with the same name would write the same output: {text}")


def bag_args(args: ReplayManyArgs, job: Job) -> ReplayArgs:
    """The `replay` arguments of one bag: every shared option, its own bag, out and video;
    model folders named relative to here made absolute (a worker's working folder is not
    ours on a cluster)."""
    shared = {f.name: getattr(args, f.name) for f in fields(ReplayArgs)}
    shared["stream"] = args.stream.replace(
        **{name: _absolute(getattr(args.stream, name)) for name in MODEL_FOLDERS}
    )
    cache = args.inference.engine_cache  # `~` stays: each worker's own home
    shared["inference"] = args.inference.replace(
        engine_cache=str(Path(cache).resolve()) if cache and cache[0] != "~" else cache
    )
    video = _video(job) if args.video else None
    own = {
        "bag": job.bag,
        "out": job.out,
        "video": video,
        "overwrite": args.overwrite or job.retry,
    }
    return ReplayArgs(**{**shared, **own, "progress": False})


def _changed_option(recorded: dict, now: dict) -> str:
    """The first option whose value in `now` differs from `recorded`, as the flag and both
    values; '' when none does. An option only one of them has (another version's) is not
    compared."""
    for key, value in now.items():
        if key in recorded and recorded[key] != value:
            flag = "--" + key.rsplit(".", 1)[-1].replace("_", "-")
            return f"{flag} {_shown(recorded[key])} (this run: {_shown(value)})"
    return ""


def _shown(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _absolute(value: str) -> str:
    """`value` made absolute when it is a folder here and not a model name."""
    from amodal_ros.models.registry import DEPTH_SIZES, NAMES

    if value and value not in (*NAMES, *DEPTH_SIZES) and Path(value).exists():
        return str(Path(value).resolve())
    return value


class ReplayWorker:
    """A Ray actor's state: the models, loaded at the first bag and kept for the next ones."""

    def __init__(self, cpus: float):
        import torch

        torch.set_num_threads(max(1, int(cpus)))
        self.pipelines = None

    def writer(self) -> str:
        """Its `staging.writer_id`: whose staged outputs to remove when it dies mid-bag."""
        return writer_id()

    def replay(self, args: ReplayArgs) -> dict:
        """{"summary": replay's summary} or {"error": text, "checkpoint": bool}; never raises,
        so one bad bag does not take the worker (and its loaded models) down."""
        from amodal_ros.bags import replay
        from amodal_ros.pipeline.factory import build

        logged = _Lines()
        library = logging.getLogger("amodal_ros")
        library.addHandler(logged)
        options = output_options(args)  # a later run skips the bag only with the same ones
        try:
            loads = self.pipelines is None
            if loads:
                self.pipelines = build(args.stream, args.inference)
            with contextlib.redirect_stdout(io.StringIO()):  # one table, not a summary per bag
                summary = replay.run(args, pipelines=self.pipelines)
            extra = {
                "worker_pid": os.getpid(),
                "loaded_models": loads,
                "log": logged.lines,
                "options": options,
            }
            return {"summary": {**summary, **extra}}
        except CheckpointError as err:
            return {"error": f"{type(err).__name__}: {err}", "checkpoint": True}
        except Exception as err:  # the bag boundary: report it, keep the worker
            return {"error": f"{type(err).__name__}: {err}", "checkpoint": False}
        finally:
            library.removeHandler(logged)


class _Lines(logging.Handler):
    """The first LOGGED_LINES warnings and errors of a bag's replay: a worker's log stays on
    its machine (log_to_driver off), so why a bag's windows failed travels in its summary."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname}: {record.getMessage()}"
        if len(self.lines) < LOGGED_LINES:
            self.lines.append(line)
        elif record.levelno >= logging.ERROR and not any(
            kept.startswith("ERROR") for kept in self.lines
        ):  # the first error, in place of the last warning: it is why windows failed
            self.lines[-1] = line


def _ray():
    from amodal_ros.core.imports import require

    return require("ray", "replay-many")


def _check_model_folders(args: ReplayManyArgs) -> None:
    """Refuse a model folder that does not exist (nor is a model's name) on a local run, whose
    workers read this machine's files; a cluster's machines may hold folders this one lacks."""
    from amodal_ros.models.registry import DEPTH_SIZES, NAMES, missing_folder

    if args.address:
        return
    for field in MODEL_FOLDERS:
        value = getattr(args.stream, field)
        named = DEPTH_SIZES if field == "depth_model" else NAMES
        if missing_folder(value, named):
            raise CheckpointError(
                f"--{field.replace('_', '-')} {value} does not exist (nor is it a model's "
                f"name: {', '.join(named)}); nothing was replayed"
            )


def _check_address(address: str) -> None:
    """Refuse a cluster address nothing answers at, before Ray tries it: ray.init retried for
    minutes, printing only its own retries. 'auto' and an address without a port are Ray's
    to look up."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdecimal():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise InputError(
            f"--address {address}: no Ray cluster answers there ({err}); start one with `ray "
            "start --head` on that machine, or check the host and port; nothing was replayed"
        ) from None


def _check_devices(args: ReplayManyArgs) -> None:
    """A worker sees only the GPUs Ray gave it, as cuda:0 on: GPUs and device must agree."""
    device, gpus = args.inference.device, args.gpus_per_bag
    if gpus > 0 and device == "cpu":
        raise InputError(
            f"--gpus-per-bag {gpus} reserves GPUs but --device is cpu: add --device cuda "
            "(each worker sees only its own GPUs, as cuda:0)"
        )
    if gpus <= 0 and device != "cpu":
        raise InputError(
            f"--device {device} needs --gpus-per-bag (1, or 0.5 for two bags per GPU): "
            "without it Ray gives the workers no GPU of their own and every worker loads "
            "its models onto the first GPU"
        )
    if device.startswith("cuda:") and device != "cuda:0":
        raise InputError(
            f"--device {device}: each worker sees only its own GPUs, numbered from 0; use "
            "--device cuda (Ray picks the GPU)"
        )


def _run_on_ray(ray, args: ReplayManyArgs, todo: list[Job], started: float, save) -> None:
    """Run the jobs on Ray workers, calling `save(workers)` after each bag."""
    local = not args.address
    if not ray.is_initialized():
        handler = signal.getsignal(signal.SIGTERM)
        ray.init(
            # "local": a new Ray here; None would join the cluster of RAY_ADDRESS or of an
            # earlier `ray start` on this machine
            address=args.address or "local",
            # None: Ray counts the CPUs itself, within a container's limit (cpu_count is the
            # host's: a worker and its models per host CPU)
            num_cpus=None,
            include_dashboard=False,
            log_to_driver=False,  # per-bag output is in the summary, not interleaved here
            configure_logging=False,
        )
        if threading.current_thread() is threading.main_thread():
            # Ray's own handler exits with code 15 and no word: SIGTERM stops as Ctrl-C does
            signal.signal(signal.SIGTERM, handler)
        shutdown = local
    else:
        shutdown = False
    try:
        _dispatch(ray, args, todo, started, save)
    finally:
        if shutdown:
            ray.shutdown()


def _worker_count(ray, args: ReplayManyArgs, jobs: int) -> int:
    """Workers the cluster can place, node by node: a worker's CPUs and GPUs must be on one
    machine, so a request that no node can hold is refused instead of waiting for ever."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]

    def fits(resources: dict) -> int:
        cpu = int(resources.get("CPU", 0) // args.cpus_per_bag)
        if args.gpus_per_bag <= 0:
            return cpu
        return min(cpu, int(resources.get("GPU", 0) // args.gpus_per_bag))

    total = sum(fits(r) for r in nodes)
    if total == 0:
        have = ", ".join(f"{r.get('CPU', 0):g} CPUs / {r.get('GPU', 0):g} GPUs" for r in nodes)
        raise InputError(
            f"--cpus-per-bag {args.cpus_per_bag}, --gpus-per-bag {args.gpus_per_bag}: no "
            f"machine of the Ray cluster has that much (its nodes: {have or 'none'})"
        )
    wanted = args.workers or total
    return max(1, min(wanted, total, jobs))


def _dispatch(ray, args: ReplayManyArgs, todo: list[Job], started: float, save) -> None:
    from tqdm.auto import tqdm

    remote = ray.remote(num_cpus=args.cpus_per_bag, num_gpus=args.gpus_per_bag)(ReplayWorker)
    count = _worker_count(ray, args, len(todo))

    def start():  # a worker, and (the ref of) its writer id, asked first: it answers even dead
        worker = remote.remote(args.cpus_per_bag)
        return worker, worker.writer.remote()

    idle = [start() for _ in range(count)]
    pending, running = deque(todo), {}
    frames = 0
    bar = tqdm(total=len(todo), desc="replay-many", unit="bag", disable=not args.progress)
    try:
        with bar:
            while pending or running:
                while pending and idle:
                    job, (worker, writer) = pending.popleft(), idle.pop()
                    ref = worker.replay.remote(bag_args(args, job))
                    running[ref] = (job, (worker, writer), time.perf_counter())
                (ref,), _ = ray.wait(list(running), num_returns=1)
                job, (worker, writer), job_started = running.pop(ref)
                job.seconds = time.perf_counter() - job_started
                try:
                    answer = ray.get(ref)
                except ray.exceptions.RayError as err:  # its process died, ran out of memory,
                    # lost its node: the bag failed, a new worker takes the next one
                    answer = {"error": f"the worker failed: {err}", "checkpoint": False}
                    ray.kill(worker)
                    _remove_partial(ray, job, writer)  # what it left half-written
                    worker, writer = start()
                idle.append((worker, writer))
                if "summary" in answer:
                    _done(job, answer["summary"])
                    frames += job.summary["frames_synchronised"]
                else:  # the worker's own cleanup removed what it staged
                    job.status, job.error = FAILED, answer["error"]
                    if answer["checkpoint"]:  # the same for every bag: stop here
                        raise CheckpointError(answer["error"].split(": ", 1)[-1])
                save(count)
                bar.update()
                elapsed = max(1e-9, time.perf_counter() - started)
                bar.set_postfix({"frames/s": f"{frames / elapsed:.2f}"}, refresh=False)
    except BaseException:  # Ctrl-C, or a checkpoint that cannot load: stop every worker
        for worker, _ in idle + [w for _, w, _ in running.values()]:  # kills its process
            ray.kill(worker)
        # the kill is asynchronous: wait for the in-flight bags to end before cleaning up
        ray.wait(list(running), num_returns=len(running), timeout=30)
        for job, (_, writer), _ in running.values():
            _remove_partial(ray, job, writer)
        raise


def _done(job: Job, summary: dict) -> None:
    """Mark `job` done; messages that never paired into a frame (so got no result) are said
    here, as its row counts them."""
    job.status, job.summary = DONE, summary
    unmatched = {topic: n for topic, n in summary.get("unmatched", {}).items() if n}
    if unmatched:
        per_topic = ", ".join(f"{topic} {n}" for topic, n in unmatched.items())
        behind = summary.get("stamped_behind", 0)
        log.warning(
            "%s: %d messages never paired into a frame, so they have no result (%s): %s",
            job.bag,
            sum(unmatched.values()),
            per_topic,
            f"{behind} images were stamped before a frame already paired (their stamps went back)"
            if behind
            else "a topic stopped or its stamps do not agree with the others'",
        )


def _video(job: Job) -> Path:
    """OUT/<bag name>.mp4, the video `--video` writes beside a bag's results (and a GIF)."""
    return job.out.parent / f"{job.out.name}.mp4"


def _remove_orphan_videos(job: Job) -> None:
    """A replay renames its videos just before its bag: one killed between the two left
    videos without their bag, which would refuse every later replay of it."""
    for video in video_files(_video(job)):
        if video.is_file():
            log.warning("removing %s: its bag %s was never completed", video, job.out)
            video.unlink()


def _remove_partial(ray, job: Job, writer) -> None:
    """What a killed worker (`writer`: the ref of its writer id) left half-written of `job`:
    its bag and videos; another run's on the same OUT stay."""
    try:
        owner = ray.get(writer, timeout=30)
    except Exception as err:  # it died before it answered, so before it staged anything
        log.warning("cannot say what the worker of %s left half-written (%s)", job.bag, err)
        return
    if not wait_until_gone(owner, WORKER_EXIT_S):
        log.warning("the worker of %s (%s) is still running after its kill", job.bag, owner)
    for final in (job.out, *video_files(_video(job))):
        remove_partials(final, owner)


def _remove_dead_partials(job: Job) -> None:
    """What a killed replay of `job` on this machine left half-written; a live one's (another
    run on this OUT) stays."""
    for final in (job.out, *video_files(_video(job))):
        remove_dead_partials(final.parent, final.name)


def _skip_done(jobs: list[Job], earlier: dict, args: ReplayManyArgs) -> None:
    """Mark skipped the jobs whose output exists (complete: replay renames an output only when
    it is), with the numbers of the replay that made it. An output made by another bag of the
    same name is skipped only when that bag is the same recording moved; a bag that can no
    longer be read to tell is failed, with why.

    Raises:
        InputError: an output holds the results of a different recording, or was made with
            other options (checked for every job before any work starts).
    """
    made_by = {output_name(Path(bag)): bag for bag in earlier}
    clashes, unrecorded = [], 0
    for job in jobs:
        if not job.out.exists():
            continue
        bag = str(job.bag)
        maker = bag if bag in earlier else made_by.get(job.out.name)
        if maker:
            record = earlier[maker]
        else:  # summary.json lost it (deleted, a killed run): the output's own record serves
            record = results_record(job.out)
            if record is None:  # an empty folder, notes, a copied recording: not done
                clashes.append(
                    f"{job.out} is no bag of results replay wrote (no {RESULTS_MARKER})"
                )
                continue
            if not record:
                clashes.append(f"{job.out}/{RESULTS_MARKER} cannot be read (damaged?)")
                continue
            maker = str(record.get("bag", ""))
            log.warning(
                "%s has no record in %s of the bag that made it: its own %s is checked",
                job.out,
                job.out.parent / "summary.json",
                RESULTS_MARKER,
            )
        recorded = record.get("recording")
        if maker != bag or recorded:  # another bag of the name, or this path recorded again
            now = _recording(job.bag)
            if isinstance(now, str):  # unreadable: this bag fails, the others go on
                job.status, job.error = FAILED, now
                continue
            if recorded is None or recorded != now:
                what = (
                    (maker or "another bag") if maker != bag else f"an earlier recording at {bag}"
                )
                why = "" if recorded else " (its record has no fingerprint to compare)"
                clashes.append(f"{job.out} holds the results of {what}, not {bag}{why}")
                continue
        if not isinstance(record.get("options"), dict):
            unrecorded += 1
        else:
            change = _changed_option(record["options"], output_options(bag_args(args, job)))
            if change:
                clashes.append(f"{job.out} was made with {change}")
                continue
        if record.get("windows_failed"):  # as a failed bag is: run again
            job.retry = True
            continue
        if maker and maker != bag:
            log.warning("%s was replayed as %s, the same recording moved: skipped", bag, maker)
        # the output's own record, when summary.json lost the bag's: kept there from now on
        job.status, job.summary = SKIPPED, earlier.get(maker) or record
    if clashes:  # --overwrite redoes every bag: removing just these outputs redoes them alone
        raise InputError(
            f"{'; '.join(clashes)}: use another --out, remove those outputs (their bags alone "
            "are replayed again), or --overwrite to replay every bag"
        )
    if unrecorded:
        log.warning(
            "%d outputs in %s have no record of the options that made them (an earlier "
            "version's run): skipped as made with this run's (--overwrite replays them)",
            unrecorded,
            jobs[0].out.parent,
        )


def _recording(bag: Path) -> dict | str:
    """`bag`'s fingerprint as replay records it (InputBag.recording), or why it cannot be read
    (as a failed bag's error)."""
    from amodal_ros.bags.reader import InputBag

    try:
        with InputBag(bag) as opened:
            return opened.recording
    except InputError as err:
        return f"{type(err).__name__}: {err}"
