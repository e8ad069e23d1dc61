"""bags.output: what a results bag may replace, and what appears at its path meanwhile."""

from __future__ import annotations

import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")

from amodal_ros.bags.output import (  # noqa: E402
    RESULTS_MARKER,
    check_output,
    results_record,
    staged_bag,
)
from amodal_ros.core.errors import InputError  # noqa: E402


def recording(path):
    path.mkdir()
    (path / "metadata.yaml").write_text("a recording")
    return path


def test_a_folder_made_at_the_output_while_the_bag_is_written_is_kept(tmp_path):
    """Another run (or a user) made `out` while this bag was written: checked again before
    the rename, it is refused and what they wrote stays."""
    out = tmp_path / "out"
    with pytest.raises(InputError, match="exists; pass --overwrite"), staged_bag(out):
        out.mkdir()
        (out / "mine.txt").write_text("theirs")
    assert (out / "mine.txt").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no stage left


def test_results_record_reads_a_marker_that_is_no_record_as_empty(tmp_path):
    assert results_record(tmp_path) is None  # no marker: not a results bag
    (tmp_path / RESULTS_MARKER).write_text("[1]")
    assert results_record(tmp_path) == {}
    (tmp_path / RESULTS_MARKER).write_text("{cut sh")
    assert results_record(tmp_path) == {}
    (tmp_path / RESULTS_MARKER).write_text('{"command": "replay"}')
    assert results_record(tmp_path) == {"command": "replay"}


def test_a_dangling_link_at_the_output_is_replaced_only_with_overwrite(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        check_output(link, overwrite=False)
    check_output(link, overwrite=True, results=True)


def test_overwrite_replaces_a_link_to_a_recording_and_not_the_recording(tmp_path):
    """A link is replaced, not followed: the recording it pointed at is untouched. Without
    `results` (a bag another command writes) a recording itself may be replaced."""
    rec = recording(tmp_path / "rec")
    check_output(rec, overwrite=True, results=False)
    link = tmp_path / "link"
    link.symlink_to(rec)
    with staged_bag(link, overwrite=True, results={"command": "test"}):
        pass
    assert not link.is_symlink() and results_record(link) == {"command": "test"}
    assert (rec / "metadata.yaml").read_text() == "a recording"
