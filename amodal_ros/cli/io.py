"""Writing results atomically, and reading YAML settings (input folders: `cli.folders`)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import check_makeable, check_replaceable, staged_path
from amodal_ros.data.clip_folder import write_png  # noqa: F401 (the writer infer calls)


def read_yaml_mapping(path: Path, what: str) -> dict:
    """The mapping a YAML file of settings holds ({} for an empty file); raises InputError
    naming the file for a missing, unreadable or unparsable one, or one that is no mapping."""
    import yaml

    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; name the YAML file in it")
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{what} {path} is not readable YAML: {one_line(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"{what} {path} is a YAML {type(data).__name__}, not a mapping of settings "
            "(`name: value` lines)"
        )
    return data


def one_line(err: Exception) -> str:
    """A YAML error as `line L, column C: problem` (PyYAML's own spans several lines and names
    the text `<unicode string>`, not the file)."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(err).split())


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty folder, and with `overwrite` one that is not an earlier
    output (checked before any work, and again at the end)."""
    if out.is_file():
        raise InputError(f"--out {out} is a file; infer writes a folder: choose another --out")
    check_makeable(out, "--out")  # found only once the models had loaded
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InputError(
                f"output folder {out} exists and is not empty; pass --overwrite or another --out"
            )
        check_replaceable(out, "summary.json", "amodal-ros infer output", command="infer")


@contextmanager
def staged_output(out: Path, overwrite: bool):
    """Yield a temporary folder beside `out`; it becomes `out` only if the block succeeds."""
    check_output(out, overwrite)
    with staged_path(out, recheck=lambda: check_output(out, overwrite)) as stage:
        stage.mkdir()
        yield stage
