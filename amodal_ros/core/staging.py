"""Outputs that never exist half-written under their final name.

Every writer in the package stages an output FINAL beside it under a hidden name starting
`.{FINAL.name}.partial` (`partial_prefix`) and ending in its machine and process id, so what a
killed process left behind can be found and removed: by the next writer of FINAL on that
machine (`remove_dead_partials`), or by whoever ran a writer it saw killed, that writer's
(`remove_partials`: a Ray worker's, on any machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from amodal_ros.core.errors import InputError


def _machine() -> str:
    """This machine as far as process ids go: its host name, and its PID namespace where it
    has one (containers started with --network host share the host's name, not its process
    ids: one took another's live stage for a dead one's and deleted it)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc (macOS): the host name alone
        return socket.gethostname()
    return f"{socket.gethostname()}~{namespace}"


HOST = _machine()


@contextmanager
def staged_path(out: Path, recheck: Callable[[], object] | None = None) -> Iterator[Path]:
    """Yield a not-yet-existing path beside `out` to write into (a folder or a file); when the
    block succeeds it replaces `out`, when it raises it is removed and `out` is untouched.
    `recheck`, when given, runs just before the replacement and may refuse it by raising:
    the writer's checks of `out`, made again (another run may have written it meanwhile)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(out.parent, out.name)
    stage = out.parent / stage_name(out)
    try:  # from its making: a Ctrl-C or SIGTERM just after mkdir left the stage behind
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        new = stage / out.name
        yield new
        if not (new.exists() or new.is_symlink()):
            raise FileNotFoundError(f"nothing was written to replace {out}; it is kept")
        if recheck is not None:
            recheck()
        if out.is_dir() and not out.is_symlink() and not new.is_dir():
            raise InputError(  # a file for a folder would delete all it holds
                f"{out} is a folder and a file was written for it: the folder is kept and "
                "nothing was written; name a file path"
            )
        if not new.is_dir() and not (out.is_dir() and not out.is_symlink()):
            new.replace(out)  # a file: one atomic step, never a moment without `out`
            return
        old = stage / f"{out.name}.replaced"
        if out.exists() or out.is_symlink():
            out.rename(old)  # set aside, not deleted, until the new one is in place
        try:
            new.rename(out)
        except BaseException:
            if old.exists() or old.is_symlink():
                old.rename(out)
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def special_file(path: Path) -> bool:
    """Whether `path` is there but neither a file nor a folder (a FIFO, socket or device):
    nothing this package writes is one, and opening one to read waits for a writer forever."""
    return path.exists() and not (path.is_file() or path.is_dir())


def check_makeable(out: Path, flag: str) -> None:
    """Refuse an output path beneath a file, naming the option `flag`: its staging folder
    cannot be made there, which was found only once the work was done (a raw "[Errno 20] Not
    a directory" after a whole replay or benchmark)."""
    above = next((p for p in Path(out).parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InputError(
            f"{flag} {out} cannot be made: {above} is a file, not a folder; choose another {flag}"
        )


def check_replaceable(out: Path, marker: str, kind: str, command: str = "") -> None:
    """Refuse to replace an existing `out` that is not an earlier `kind` (a folder holding
    `marker`, a JSON file naming `command` when given: other commands write a summary.json
    too): --overwrite replaces an earlier output, never a folder of other files (`--out bags`
    beside the recordings would delete them all). Checked before any work."""
    out = Path(out)
    if out.is_symlink() or not out.exists() or (out.is_dir() and _marks(out / marker, command)):
        return
    what = f"{marker} written by `amodal-ros {command}`" if command else marker
    raise InputError(
        f"--overwrite replaces an earlier {kind}, and {out} is not one (it has no {what}); "
        "nothing was deleted: choose another --out"
    )


def _marks(marker: Path, command: str) -> bool:
    if not marker.is_file():
        return False
    if not command:
        return True
    try:
        return json.loads(marker.read_text()).get("command") == command
    except (ValueError, AttributeError, OSError):
        return False


def partial_prefix(final: Path) -> str:
    """The start of the name under which `final` is written before it is complete."""
    return f".{Path(final).name}.partial"


# what may follow a stage's writer id: an earlier video set aside until the new one is in
# place, and a video's own suffix (OpenCV picks the container by it; pipeline.video)
SUFFIXES = r"(?:\.earlier)?(?:\.mp4|\.gif)?"


def writer_id() -> str:
    """HOST-PID (HOST: the host name and PID namespace): the writer's part of the names it
    stages outputs under (`stage_name`)."""
    return f"{HOST}-{os.getpid()}"


def stage_name(final: Path) -> str:
    """The name this process writes `final` under before it is complete."""
    return f"{partial_prefix(final)}-{writer_id()}"


def remove_dead_partials(folder: Path, name: str = "") -> list[Path]:
    """Remove from `folder` what writers of output `name` (any output for '') on this machine
    left half-written when they were killed; a live writer's, and other machines' on a
    shared folder, are left alone. Returns what was removed."""
    stem = re.escape(f".{name}") if name else r"\..+"
    # this host's exact name: a glob's '*' would take host node1-gpu's stages for node1's
    ours = re.compile(rf"{stem}\.partial-{re.escape(HOST)}-(\d+)" + SUFFIXES)
    removed = []
    for partial in Path(folder).glob(".*.partial-*"):
        match = ours.fullmatch(partial.name)
        if match and not running(int(match.group(1))):
            remove_partial(partial)
            removed.append(partial)
    return removed


def running(pid: int) -> bool:
    """Whether a process of this machine has the id `pid`."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def wait_until_gone(writer: str, timeout: float) -> bool:
    """Wait up to `timeout` s for the writer `writer` (its `writer_id`), when it is a process
    of this machine, to have exited: a killed Ray worker's answer comes before its process
    ends, and what it stages meanwhile would outlive a cleanup done at once. True once gone
    (or not ours to see)."""
    host, _, pid = writer.rpartition("-")
    if host != HOST or not pid.isdigit():
        return True
    deadline = time.monotonic() + timeout
    while running(int(pid)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def remove_partials(final: Path, writer: str) -> None:
    """Remove what the writer `writer` (its `writer_id`) left half-written of `final` beside
    it (staging folders or files): a process that was killed never reached its own cleanup.
    Another writer's stages (a live run on the same folder) stay."""
    final = Path(final)
    own = re.compile(re.escape(f"{partial_prefix(final)}-{writer}") + SUFFIXES)
    for partial in final.parent.glob(".*.partial-*"):
        if own.fullmatch(partial.name):
            remove_partial(partial)


def escaping(names) -> list[str]:
    """The names among `names` (relative paths read from a file) that would lead outside the
    folder they are joined to: absolute, or through '..'. Such names are data, never a path
    to read or write elsewhere."""
    return [n for n in names if Path(n).is_absolute() or ".." in Path(n).parts]


def remove_partial(partial: Path) -> None:
    """Remove one staging folder or file (a link is unlinked, never followed)."""
    if partial.is_dir() and not partial.is_symlink():
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.unlink(missing_ok=True)
