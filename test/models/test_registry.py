"""Model names: what a user is told when one runs, and a folder named like one."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.core.errors import CheckpointError  # noqa: E402
from amodal_ros.models import registry  # noqa: E402


@pytest.mark.parametrize("name", sorted(registry.RANDOM))
def test_an_untrained_model_is_noted_as_one(name):
    """`checkpoint: tiny` ran random weights without a word."""
    assert "untrained" in registry.note(name) and name in registry.note(name)
    assert registry.note("/some/checkpoint") == ""


def test_the_embedded_note_fits_the_node_and_the_command_line():
    note = registry.note(registry.EMBEDDED)
    assert "checkpoint DIR and preset quality" in note and "parameters of the node" in note


def test_a_folder_named_like_a_model_is_named_in_a_warning_and_reached_as_dot_slash(
    tmp_path, monkeypatch, caplog, components12
):
    """A name means the model wherever a command runs; the folder was silently shadowed."""
    from amodal_ros.models.layout import save_published_layout

    save_published_layout(components12, tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="amodal_ros.models"):
        model = registry.components("tiny")
    assert model.source == "<tiny seeded>"
    assert "pass ./tiny for the folder" in caplog.text
    caplog.clear()
    folder = registry.components("./tiny")
    assert folder.source == "tiny" and "pass ./tiny" not in caplog.text


def test_a_mistyped_model_name_is_answered_with_the_name():
    """`--checkpoint embeded` said to download a Diffusion-VAS checkpoint folder."""
    with pytest.raises(CheckpointError, match="did you mean 'embedded'"):
        registry.components("embeded")
    with pytest.raises(CheckpointError, match="does not exist; download"):  # no name near it
        registry.components("/no/such/checkpoint")


def test_a_missing_folder_is_neither_a_model_name_nor_a_path_here(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ckpt").mkdir()
    assert not registry.missing_folder("embedded") and not registry.missing_folder("")
    assert not registry.missing_folder("~/ckpt")  # the shell would expand it; so does this
    assert registry.missing_folder("~/gone") and registry.missing_folder(str(tmp_path / "gone"))
    assert registry.missing_folder("vits", registry.NAMES)  # a depth size is no stage-1 name
    assert not registry.missing_folder("vits", registry.DEPTH_SIZES)


def test_training_takes_a_folder_of_either_stage_and_the_others_refuse_the_wrong_one():
    stage2 = str(registry.embedded_folder(2))
    with pytest.raises(CheckpointError, match="is a stage-2 checkpoint"):
        registry.components(stage2, stage=1)
    assert registry.components(stage2, stage=1, any_stage=True).stage == 2


def test_an_untrained_student_is_marked_and_steps_as_a_student():
    teacher, student = registry.components("tiny"), registry.components("tiny", student=True)
    assert student.student == {"teacher": "tiny", "untrained": True} and not teacher.student
    assert student.scheduler_config != teacher.scheduler_config
