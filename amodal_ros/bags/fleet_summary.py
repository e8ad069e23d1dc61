"""`replay-many`'s account of a run: one row per bag (its status, counts, error), the totals,
OUT/summary.json and summary.csv (written whole after every bag), and what an earlier run's
summary.json leaves to this one (the replays that made OUT's outputs, bags not yet answered).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from amodal_ros.core.staging import staged_path

log = logging.getLogger("amodal_ros.fleet")

DONE, SKIPPED, FAILED, NOT_RUN, LEFT_OUT = "done", "skipped", "failed", "not run", "left out"
COUNTS = (  # a summary row's counts, which the totals add up
    "frames",
    "sampled",
    "windows",
    "windows_failed",
    "results",
    "unmatched_messages",
    "skipped_messages",
)
SUMMARY_COLUMNS = ("bag", "status", *COUNTS, "seconds", "error")
EARLIER_RUN = "in an earlier run: "  # a failure kept from the summary of an earlier run


@dataclass
class Job:
    """One bag: where it goes and how it went (status done, skipped, failed, not run or left
    out)."""

    bag: Path
    out: Path
    status: str = ""
    summary: dict | None = None
    error: str = ""
    seconds: float = 0.0
    retry: bool = False  # its output holds model windows that failed: replaced if this works


def what_failed(rows: list[dict]) -> str:
    """What makes the exit code 1 ('' when nothing does): failed, left-out and unrun bags (a
    stopped run's, kept by a later one; the stopped run itself exits 130 or 2), and done
    bags whose model windows failed (their frames hold the visible mask; the next run replays
    them again)."""
    bad = {
        "failed": [r["bag"] for r in rows if r["status"] == FAILED],
        "were left out": [r["bag"] for r in rows if r["status"] == LEFT_OUT],
        "were not run": [r["bag"] for r in rows if r["status"] == NOT_RUN],
        "had model windows that failed": [
            r["bag"] for r in rows if r["status"] == DONE and r["windows_failed"]
        ],
    }
    return " and ".join(
        f"{len(b)} of {len(rows)} bags {said} ({', '.join(b)})" for said, b in bad.items() if b
    )


def output_name(bag: Path) -> str:
    """The output bag's name: the bag folder's name, or a .bag or .mcap file's stem."""
    return bag.stem if bag.suffix in (".bag", ".mcap") else bag.name


def earlier_summary(out: Path) -> dict:
    """OUT/summary.json as the last run wrote it ({} when none can be read)."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError) as err:
        if (out / "summary.json").exists():
            log.warning(
                "%s cannot be read (%s): skipped bags show 0 frames", out / "summary.json", err
            )
        return {}
    return summary if isinstance(summary, dict) else {}


def recorded_replays(earlier: dict) -> dict:
    """The per-bag replay summaries of summary.json, by bag path: which bag made each output,
    with which options, and the numbers a skipped bag's row keeps."""
    replays = earlier.get("replays", {})
    if not isinstance(replays, dict):
        return {}
    return {bag: s for bag, s in replays.items() if isinstance(s, dict)}


def earlier_unanswered(earlier: dict, jobs: list[Job]) -> list[Job]:
    """The bags earlier runs did not answer (failed, not run: a run stopped; left out) that
    this run neither names nor replaces (by output name): their rows stay in the summary, and
    in the exit code, until a run answers them or the bag is gone (a later run over other
    bags wrote a summary.csv that looked complete, and exited 0)."""
    bags, names = {str(job.bag) for job in jobs}, {job.out.name for job in jobs}
    kept = []
    for row in earlier.get("bags", []) if isinstance(earlier.get("bags"), list) else []:
        if not isinstance(row, dict) or row.get("status") not in (FAILED, NOT_RUN, LEFT_OUT):
            continue
        bag = Path(str(row.get("bag", "")))
        if str(bag) in bags or output_name(bag) in names:
            continue
        if not (bag.exists() or bag.is_symlink()):
            log.info("%s is gone: its earlier row (%s) is dropped", bag, row["status"])
            continue
        error = str(row.get("error", ""))
        error = error if error.startswith(EARLIER_RUN) else EARLIER_RUN + error
        kept.append(Job(bag, Path(), row["status"], error=error))
    return kept


def replays_kept(jobs: list[Job], earlier: dict) -> dict:
    """summary.json's "replays": the bag that made each output in OUT, with its numbers. Those
    of bags outside this run are kept for the runs that name them again; an output this run
    replaced, or whose bag failed or was not run and has none, loses its earlier record."""
    names = {job.out.name for job in jobs}
    replays = {bag: s for bag, s in earlier.items() if output_name(Path(bag)) not in names}
    for job in jobs:
        if job.summary:
            replays[str(job.bag)] = job.summary
        elif job.out.exists():  # a failed or stopped --overwrite left the earlier output
            replays.update(
                (bag, s) for bag, s in earlier.items() if output_name(Path(bag)) == job.out.name
            )
    return replays


def summarise(
    jobs: list[Job],
    workers: int,
    seconds: float,
    earlier: dict | None = None,
    others: list[Job] | None = None,
) -> dict:
    """The summary of this run's jobs; `earlier`: the replays of OUT's summary.json before it;
    `others`: rows of bags this run did not replay (left out, failed in an earlier run)."""
    rows = [row_of(job) for job in [*jobs, *(others or [])]]
    totals = {k: sum(r[k] for r in rows) for k in COUNTS}
    totals.update(
        {
            status: sum(r["status"] == status for r in rows)
            for status in (DONE, SKIPPED, FAILED, NOT_RUN, LEFT_OUT)
        }
    )
    totals["seconds"] = round(seconds, 2)
    replayed = sum(r["frames"] for r in rows if r["status"] != SKIPPED)  # by this run
    totals["frames_per_s"] = round(replayed / seconds, 3) if seconds > 0 else 0.0
    return {
        "bags": rows,
        "totals": totals,
        "workers": workers,
        "seconds": round(seconds, 2),
        "replays": replays_kept(jobs, earlier or {}),
    }


def row_of(job: Job) -> dict:
    """`job`'s row of the summary (its replay's numbers; a skipped bag's took no time)."""
    s = job.summary or {}
    return {
        "bag": str(job.bag),
        "status": job.status,
        "frames": s.get("frames_synchronised", 0),
        "sampled": s.get("frames_sampled", 0),
        "windows": s.get("windows", 0),
        "windows_failed": s.get("windows_failed", 0),
        "results": s.get("results_written", 0),
        # input messages that never paired into a frame, so never got a result
        "unmatched_messages": sum(s.get("unmatched", {}).values()),
        "skipped_messages": sum(s.get("skipped", {}).values()),
        "seconds": round(job.seconds, 2) if job.status != SKIPPED else 0.0,
        "error": job.error or failed_windows(s),
    }


def failed_windows(summary: dict) -> str:
    """What a done bag's row says when some of its model windows failed (their frames carry
    the visible mask, flagged REASON_ERROR): how many, and the first error its replay logged."""
    failed = summary.get("windows_failed", 0)
    if not failed:
        return ""
    first = next((line for line in summary.get("log", []) if line.startswith("ERROR")), "")
    return f"{failed} model windows failed, their frames hold the visible mask; {first}"


def write_summary(out: Path, result: dict) -> None:
    """OUT/summary.json and summary.csv, each replaced whole (a stop leaves the last ones)."""
    with staged_path(out / "summary.json") as path:
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    with staged_path(out / "summary.csv") as path, path.open("w", newline="") as f:
        writer = csv.DictWriter(f, SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(result["bags"])


def windows_text(counts: dict) -> str:
    """A row's (or the totals') windows, with how many failed when any did."""
    failed = counts["windows_failed"]
    return f"{counts['windows']} ({failed} failed)" if failed else str(counts["windows"])


def format_table(result: dict) -> str:
    """The per-bag table and the totals, for the terminal."""
    header = ("bag", "status", "frames", "windows", "results", "unmatched", "skipped", "s")
    rows = [
        (
            Path(r["bag"]).name,
            r["status"],
            r["frames"],
            windows_text(r),
            r["results"],
            r["unmatched_messages"],
            r["skipped_messages"],
            f"{r['seconds']:.1f}",
        )
        for r in result["bags"]
    ]
    t = result["totals"]
    rows.append(
        (
            "total",
            f"{t[DONE]} done, {t[SKIPPED]} skipped, {t[FAILED]} failed"
            + (f", {t[NOT_RUN]} not run" if t.get(NOT_RUN) else "")
            + (f", {t[LEFT_OUT]} left out" if t.get(LEFT_OUT) else ""),
            t["frames"],
            windows_text(t),
            t["results"],
            t["unmatched_messages"],
            t["skipped_messages"],
            f"{t['seconds']:.1f}",
        )
    )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in (header, *rows)]
    errors = [f"  {Path(r['bag']).name}: {r['error']}" for r in result["bags"] if r["error"]]
    rate = f"{result['workers']} workers, {t['frames_per_s']:.2f} frames/s"
    return "\n".join(lines + (["errors:"] + errors if errors else []) + [rate])
