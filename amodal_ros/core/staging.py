"""Outputs that never exist half-written under their final name."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_path(out: Path) -> Iterator[Path]:
    """Yield a not-yet-existing path beside `out` to write into (a folder or a file); when the
    block succeeds it replaces `out`, when it raises it is removed and `out` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
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
