"""Outputs that never exist half-written under their final name.

Every writer in the package stages an output FINAL beside it under a hidden name starting
`.{FINAL.name}.partial` (`partial_prefix`), so what a killed process left behind can be found
and removed (`remove_partials`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amodal_ros.core.errors import InputError


@contextmanager
def staged_path(out: Path) -> Iterator[Path]:
    """Yield a not-yet-existing path beside `out` to write into (a folder or a file); when the
    block succeeds it replaces `out`, when it raises it is removed and `out` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f"{partial_prefix(out)}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        new = stage / out.name
        yield new
        if not (new.exists() or new.is_symlink()):
            raise FileNotFoundError(f"nothing was written to replace {out}; it is kept")
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


def remove_partials(final: Path) -> None:
    """Remove what writers of `final` left half-written beside it (staging folders or files):
    a process that was killed never reached its own cleanup."""
    final = Path(final)
    for partial in final.parent.glob(f"{partial_prefix(final)}*"):
        remove_partial(partial)


def remove_partial(partial: Path) -> None:
    """Remove one staging folder or file (a link is unlinked, never followed)."""
    if partial.is_dir() and not partial.is_symlink():
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.unlink(missing_ok=True)
