"""core.staging: outputs replaced whole or not at all, and what killed writers left behind
removed without touching a live writer's stages, other folders or what a link points at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import (
    HOST,
    check_replaceable,
    escaping,
    remove_dead_partials,
    remove_partials,
    running,
    stage_name,
    staged_path,
    wait_until_gone,
    writer_id,
)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stage_left_by_an_earlier_process_of_this_id_does_not_block_the_write(tmp_path):
    out = tmp_path / "out.txt"
    (tmp_path / f".out.txt.partial-{writer_id()}").mkdir()  # a process id reused
    with staged_path(out) as stage:
        stage.write_text("x")
    assert out.read_text() == "x" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_link_is_an_output_and_is_replaced_not_followed(tmp_path):
    latest = tmp_path / "latest"
    with staged_path(latest) as stage:
        stage.symlink_to("run-7")  # dangling: still written
    assert os.readlink(latest) == "run-7"
    (tmp_path / "run-7").mkdir()
    (tmp_path / "run-7" / "keep").write_text("k")
    with staged_path(latest) as stage:  # a file for a link to a folder
        stage.write_text("file")
    assert latest.read_text() == "file" and not latest.is_symlink()
    assert (tmp_path / "run-7" / "keep").exists()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    with staged_path(dangling) as stage:  # a folder for a dangling link
        stage.mkdir()
        (stage / "f").write_text("x")
    assert (dangling / "f").read_text() == "x" and not dangling.is_symlink()


def test_a_writer_that_wrote_nothing_fails_and_the_output_is_kept(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("earlier")
    nothing = pytest.raises(FileNotFoundError, match="nothing was written to replace .*out.txt")
    with nothing, staged_path(out):
        pass
    assert out.read_text() == "earlier" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_new_folder_failing_to_move_in_puts_the_old_one_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("o")
    rename = Path.rename

    def failing(self, target):  # the new folder's move fails (a full disk, another device)
        if Path(target) == out and self.name == out.name and self.parent != tmp_path:
            raise OSError("cannot move")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="cannot move"), staged_path(out) as stage:
        stage.mkdir()
        (stage / "new").write_text("n")
    assert [p.name for p in out.iterdir()] == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrite_replaces_a_link_but_no_folder_without_its_marker(tmp_path):
    (tmp_path / "recordings").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "recordings")
    check_replaceable(tmp_path / "link", "metadata.yaml", "bag")  # the link goes, not them
    with pytest.raises(InputError, match="nothing was deleted"):
        check_replaceable(tmp_path / "recordings", "metadata.yaml", "bag")
    (tmp_path / "recordings" / "metadata.yaml").mkdir()  # a folder so named is no marker
    with pytest.raises(InputError):
        check_replaceable(tmp_path / "recordings", "metadata.yaml", "bag")
    summary = tmp_path / "run" / "summary.json"
    summary.parent.mkdir()
    summary.write_text("[1, 2]")  # JSON, but no record of a command
    with pytest.raises(InputError, match="written by `amodal-ros infer`"):
        check_replaceable(summary.parent, "summary.json", "infer output", command="infer")


def test_dead_writers_stages_go_and_a_live_ones_and_look_alikes_stay(tmp_path, dead_pid):
    dead = tmp_path / f".a.partial-{HOST}-{dead_pid}"
    dead_video = tmp_path / f".b.mp4.partial-{HOST}-{dead_pid}.mp4"
    dead_gif = tmp_path / f".v.gif.partial-{HOST}-{dead_pid}.gif"
    # an earlier run's video set aside until the new one was in place (pipeline.video)
    set_aside = tmp_path / f".e.mp4.partial-{HOST}-{dead_pid}.earlier.mp4"
    live = tmp_path / f".c.partial-{writer_id()}"
    look_alike = tmp_path / f".a.partial-{HOST}-{dead_pid}.bak"  # not a name staging writes
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("x")
    dead_link = tmp_path / f".d.partial-{HOST}-{dead_pid}"
    dead_link.symlink_to(tmp_path / "data")
    dead.mkdir()
    dead_video.write_text("x")
    dead_gif.write_text("x")
    set_aside.write_text("x")
    live.mkdir()
    look_alike.write_text("mine")
    removed = remove_dead_partials(tmp_path)
    dead_ones = [dead.name, dead_video.name, dead_gif.name, set_aside.name, dead_link.name]
    assert sorted(p.name for p in removed) == sorted(dead_ones)
    assert live.exists() and look_alike.exists() and not dead_link.is_symlink()
    assert (tmp_path / "data" / "f").exists()  # the link was unlinked, not followed


def test_a_writers_cleanup_leaves_a_writer_whose_id_it_prefixes(tmp_path):
    other = tmp_path / f".run1.partial-{HOST}-123"
    other.mkdir()
    ours = tmp_path / f".run1.partial-{HOST}-12"
    ours.mkdir()
    remove_partials(tmp_path / "run1", f"{HOST}-12")
    assert other.exists() and not ours.exists()


def test_a_writer_id_without_a_process_id_is_not_waited_for():
    assert wait_until_gone(f"{HOST}-notapid", timeout=0.1)


def test_another_users_process_is_running(monkeypatch):
    def kill(pid, signal):
        raise PermissionError  # EPERM: it exists, and is not ours

    monkeypatch.setattr(os, "kill", kill)
    assert running(12345)


def test_a_files_stage_keeps_its_whole_name():
    assert stage_name(Path("x/results.json")) == f".results.json.partial-{writer_id()}"


def test_absolute_names_and_names_through_parent_folders_escape():
    assert escaping(["/etc/passwd", "a/b.bin", "../x", "a/../../y"]) == [
        "/etc/passwd",
        "../x",
        "a/../../y",
    ]


def test_an_interrupt_just_after_the_stage_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A SIGTERM's KeyboardInterrupt is raised at the next bytecode, which may be the one
    after the stage's mkdir: the stage was made before the block that removes it (a CI run
    of `demo-bag` stopped by SIGTERM left `.bag.partial-*` behind). The signal's moment is
    forced here: mkdir makes the folder, then the interrupt comes."""
    made = Path.mkdir

    def mkdir_then_interrupted(self, *args, **kwargs):
        made(self, *args, **kwargs)
        if ".partial" in self.name:
            raise KeyboardInterrupt

    monkeypatch.setattr(Path, "mkdir", mkdir_then_interrupted)
    with pytest.raises(KeyboardInterrupt), staged_path(tmp_path / "out") as stage:
        stage.write_text("never")
    assert list(tmp_path.iterdir()) == []
