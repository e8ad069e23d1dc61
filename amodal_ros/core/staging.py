"""Outputs that never exist half-written under their final name.

Every writer in the package stages an output FINAL beside it under a hidden name starting
`.{FINAL.name}.partial` (`partial_prefix`), so what a killed process left behind can be found
and removed (`remove_partials`)."""

from __future__ import annotations

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
        yield stage / out.name
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():
            out.unlink()
        (stage / out.name).rename(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_replaceable(out: Path, marker: str, kind: str) -> None:
    """Refuse to replace an existing `out` that is not an earlier `kind` (a folder holding
    `marker`): --overwrite replaces an earlier output, never a folder of other files (`--out
    bags` beside the recordings would delete them all). Checked before any work."""
    out = Path(out)
    if out.is_symlink() or not out.exists() or (out.is_dir() and (out / marker).is_file()):
        return
    raise InputError(
        f"--overwrite replaces an earlier {kind}, and {out} is not one (it has no {marker}); "
        "nothing was deleted: choose another --out"
    )


def partial_prefix(final: Path) -> str:
    """The start of the name under which `final` is written before it is complete."""
    return f".{Path(final).name}.partial"


def remove_partials(final: Path) -> None:
    """Remove what writers of `final` left half-written beside it (staging folders or files):
    a process that was killed never reached its own cleanup."""
    final = Path(final)
    for partial in final.parent.glob(f"{partial_prefix(final)}*"):
        if partial.is_dir() and not partial.is_symlink():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
