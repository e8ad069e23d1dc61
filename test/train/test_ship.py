"""Shipping trained runs as the embedded model: only loader files are copied, with a report."""

from __future__ import annotations

import json
import shutil

import pytest

from amodal_ros.eval.calibrate import CRITERION, best_threshold
from amodal_ros.models.architectures import build_components
from amodal_ros.models.layout import load_components, save_published_layout
from amodal_ros.train.ship import main, ship, ship_decoder, ship_student


def _run(root, name: str, seconds: float, losses: list[float], seed: int | None = None):
    run = root / name
    seed = len(name) if seed is None else seed  # stage1 and stage2: the same components
    save_published_layout(build_components("tiny", seed=seed), run / "final")
    (run / "state").mkdir()
    (run / "state" / "optimizer.bin").write_bytes(b"not shipped")
    (run / "final" / "unet" / "notes.txt").write_text("not shipped")
    vae_config = run / "final" / "vae" / "config.json"  # as diffusers saves a loaded model
    config = json.loads(vae_config.read_text())
    vae_config.write_text(json.dumps({**config, "_name_or_path": "/home/me/train_out/vae"}))
    stage = {"stage1": "amodal", "stage2": "completion"}.get(name, name)
    (run / "train_config.json").write_text(json.dumps({"stage": stage, "steps": len(losses)}))
    rows = "".join(f"{10 * (i + 1)},{v}\n" for i, v in enumerate(losses))
    (run / "loss.csv").write_text("step,loss\n" + rows)
    (run / "timing.json").write_text(json.dumps([{"steps": 5, "seconds": seconds}] * 2))


def test_ship_copies_weights_and_configs_and_reports_runs(tmp_path):
    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0, 0.5, 0.25])
    _run(train_out, "stage2", 10.0, [2.0, 1.0])
    ship(train_out, dest)
    shipped = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert all(p.endswith((".safetensors", ".json")) for p in shipped), shipped
    assert "stage1/unet/diffusion_pytorch_model.safetensors" in shipped
    assert load_components(dest / "stage1").unet.config.in_channels == 12
    assert "_name_or_path" not in (dest / "stage1" / "vae" / "config.json").read_text()
    report = json.loads((dest / "TRAINING.json").read_text())
    assert set(report) == {"stage1", "stage2"}
    assert report["stage1"]["seconds"] == 60.0 and report["stage1"]["steps"] == 30
    assert report["stage1"]["loss_first_logged"] == 1.0
    assert report["stage2"]["loss_last_20_logged_mean"] == pytest.approx(1.5)


def test_ship_refuses_an_unfinished_run(tmp_path):
    (tmp_path / "stage1").mkdir()
    with pytest.raises(FileNotFoundError, match="not a finished checkpoint"):
        ship(tmp_path, tmp_path / "embedded")


def test_ship_refuses_a_run_of_another_stage_and_a_student_that_is_none(tmp_path, capsys):
    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    (train_out / "stage2" / "train_config.json").write_text('{"stage": "amodal"}')
    with pytest.raises(ValueError, match="trained stage 'amodal'; stage2/ ships a 'completion'"):
        ship(train_out, dest)  # a mask model would load as stage 2: 12 channels both
    assert not dest.exists()
    with pytest.raises(SystemExit):
        main(["--student", str(train_out / "stage1"), "--dest", str(dest)])
    assert "is not a distilled student" in capsys.readouterr().err
    # options that would be ignored: shipped without the threshold, or only the decoder
    for ignored, says in {
        ("--threshold", "400"): "--threshold ship a student: give --student",
        ("--decoder", "d", "--student", "s"): "--decoder ships a decoder alone",
    }.items():
        with pytest.raises(SystemExit):
            main([str(train_out), "--dest", str(dest), *ignored])
        assert says in capsys.readouterr().err
    assert not dest.exists()


def test_ship_calibrates_the_threshold_on_validation_clips(tmp_path):
    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    from amodal_ros.core.config import InferenceConfig

    ship(train_out, dest, 1, InferenceConfig(num_frames=4, num_steps=1))
    report = json.loads((dest / "TRAINING.json").read_text())["calibration"]
    assert report["split"] == "val" and report["clips"] == 1
    chosen = report["rgb_sum_threshold"]
    assert chosen == best_threshold({int(t): s for t, s in report["scores"].items()})
    assert report["criterion"] == CRITERION  # the model card can say how it was chosen
    index = json.loads((dest / "stage1" / "model_index.json").read_text())
    assert index["amodal_ros"]["defaults"]["rgb_sum_threshold"] == chosen
    assert load_components(dest / "stage1").defaults["rgb_sum_threshold"] == chosen


def test_students_ship_beside_the_stages_by_their_teachers_stage(tmp_path):
    from amodal_ros.models.components import student_schedule

    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0, 0.5])
    _run(train_out, "stage2", 10.0, [2.0, 1.0])
    ship(train_out, dest)
    # a student made before stage-2 students existed records no stage: stage 1's
    fine_tuned = {"teacher": "embedded", "stage": 2, "fine_tuned_from": "embedded/student2"}
    for name, record in (
        ("student1", {"teacher": "embedded", "targets": "teacher"}),
        ("student2", {"teacher": "embedded", "targets": "truth", "stage": 2}),
        ("student2", fine_tuned),  # keeps the run it continued
    ):
        student = build_components("tiny", seed=3)
        student.scheduler_config = student_schedule(student.scheduler_config)
        student.student = record
        distill_out = tmp_path / f"distill_{name}_{len(record)}"
        save_published_layout(student, distill_out / "final")
        (distill_out / "train_config.json").write_text(json.dumps({"stage": "distill"}))
        (distill_out / "loss.csv").write_text("step,loss\n10,0.5\n20,0.25\n")
        assert ship_student(distill_out, dest) == dest / name
        shipped = load_components(dest / name)
        assert shipped.is_student and shipped.student == record
        assert shipped.scheduler_config["sigma_min"] == 1.0
    report = json.loads((dest / "TRAINING.json").read_text())
    assert set(report) == {"stage1", "stage2", "student1", "student2"}
    assert report["student2"]["loss_last_20_logged_mean"] == pytest.approx(0.375)
    assert report["student2"]["before"]["loss_last_20_logged_mean"] == pytest.approx(0.375)
    assert "before" not in report["student2"]["before"]
    # re-shipping the stages keeps the students' records (the model card quotes them)
    ship(train_out, dest)
    again = json.loads((dest / "TRAINING.json").read_text())
    assert again["student2"] == report["student2"] and again["student1"] == report["student1"]


def test_a_student_ships_at_a_given_threshold_and_only_a_stage_1_student(tmp_path, capsys):
    """`--threshold` (and `--default` for the other fields a model decides): a choice made by
    a rule the calibration does not express reaches the loader's defaults and the report;
    a threshold given to stage 2's student, or a field no model decides, is refused."""
    dest = tmp_path / "embedded"
    for stage in (1, 2):
        _student(tmp_path, f"distill{stage}", seed=3, stage=stage)
    chosen = {"mirror_ensemble": "on", "initial_noise": "zeros"}
    given = ["--student", str(tmp_path / "distill1"), "--dest", str(dest), "--threshold", "412"]
    assert (
        main([*given, "--default", "mirror_ensemble=on", "--default", "initial_noise=zeros"]) == 0
    )
    shipped = load_components(dest / "student1").defaults
    assert shipped["rgb_sum_threshold"] == 412
    assert shipped["mirror_ensemble"] == "on" and shipped["initial_noise"] == "zeros"
    report = json.loads((dest / "TRAINING.json").read_text())
    assert report["student1"]["threshold_choice"]["rgb_sum_threshold"] == 412
    assert report["student1"]["defaults_chosen"] == chosen
    with pytest.raises(ValueError, match="not a field this sets"):
        ship_student(tmp_path / "distill1", dest, defaults={"seed": "3"})
    with pytest.raises(ValueError, match="initial_noise"):
        ship_student(tmp_path / "distill1", dest, defaults={"initial_noise": "pink"})
    with pytest.raises(ValueError, match="stage-1 student"):
        ship_student(tmp_path / "distill2", dest, threshold=412)
    with pytest.raises(ValueError, match="not beside --calibrate"):
        ship_student(tmp_path / "distill1", dest, calibrate_clips=1, threshold=412)
    with pytest.raises(ValueError, match="--calibrate chooses a stage-1 student's threshold"):
        ship_student(tmp_path / "distill2", dest, calibrate_clips=1)
    assert not (dest / "student2").exists()
    for wrong, says in [
        (["--default", "rgb_sum_threshold=300"], "it has an option of its own"),
        (["--default", "initial_noise"], "give FIELD=VALUE"),
        (["--default", "initial_noise=zeros", "--dest", str(dest)], "give --student"),
    ]:
        with pytest.raises(SystemExit):
            main(wrong)
        assert says in capsys.readouterr().err


def _student(root, name: str, seed: int, stage: int = 1):
    from amodal_ros.models.components import student_schedule

    student = build_components("tiny", seed=seed)
    student.scheduler_config = student_schedule(student.scheduler_config)
    student.student = {"teacher": "embedded", "targets": "truth", "stage": stage}
    save_published_layout(student, root / name / "final")
    (root / name / "train_config.json").write_text('{"stage": "distill"}')
    (root / name / "loss.csv").write_text("step,loss\n10,0.5\n")
    return root / name


def test_a_carried_runs_student_ships_as_its_rule_decided_and_only_if_it_passed(tmp_path, capsys):
    """`--judged-by runs/NAME`: the verdict comes from the run folder's kept scores (no model
    runs here); its threshold and run settings ship, the verdict is recorded; a run its rule
    does not ship is refused and nothing is written."""
    from amodal_ros.train.judge import kept_path, model_id

    dest, shipped = tmp_path / "embedded", _student(tmp_path, "shipped", seed=3) / "final"
    distill = _student(tmp_path, "distill", seed=4)
    zeros = {"initial_noise": "zeros"}
    rule = {
        "shipped": str(shipped),
        "shipped_threshold": 400,
        "candidates": [350, 400],
        "choice": [0, 3],
        "confirm": [[10, 3]],
        "run_settings": zeros,
    }
    run = tmp_path / "runs" / "name"
    (run / "scores").mkdir(parents=True)
    (run / "plan.json").write_text(json.dumps({"distill": ["--steps", "1"], "rule": rule}))
    old = {
        "mIoU": 80.0,
        "mIoU_occ": 40.0,
        "mIoU_occ_all": 38.0,
        "mIoU_occ_all_newest": 30.0,
        "stray_share": 1.0,
        "area_ratio_median": 1.0,
    }

    def keep(name, clips, scores):
        kept_path(run / "scores", name, clips, scores).write_text(
            json.dumps({"checkpoint": "x", "scores": scores})
        )

    def student_keeps(rise: float):
        key = f"run-{model_id(str(distill / 'final'), zeros)}"
        keep(key, (0, 3), {"350": {**old, "mIoU": 81.0}, "400": old})
        keep(key, (10, 3), {"350": {**old, "mIoU_occ": 40 + rise, "mIoU_occ_all": 38 + rise}})

    keep(f"shipped-{model_id(str(shipped))}", (10, 3), {"400": old})
    student_keeps(rise=0.0)  # equal is not a rise
    given = ["--student", str(distill), "--judged-by", str(run), "--dest", str(dest)]
    with pytest.raises(SystemExit):
        main(given)
    assert "does not ship" in capsys.readouterr().err and not dest.exists()
    with pytest.raises(SystemExit):
        main([*given, "--threshold", "400"])
    assert "leave out --threshold" in capsys.readouterr().err
    student_keeps(rise=2.0)
    with pytest.raises(SystemExit):  # a setting the rule did not judge
        main([*given, "--default", "initial_noise=gaussian"])
    err = capsys.readouterr().err  # and which settings its rule did judge
    assert "was not judged (the rule ran {'initial_noise': 'zeros'})" in err
    assert not dest.exists()
    judged = ["--default", "initial_noise=zeros", "--default", "mask_upsample=smooth"]
    assert main([*given, *judged]) == 0  # the rule's setting, and the student's own
    defaults = json.loads((dest / "student1" / "model_index.json").read_text())
    defaults = defaults["amodal_ros"]["defaults"]
    assert defaults["rgb_sum_threshold"] == 350 and defaults["initial_noise"] == "zeros"
    choice = json.loads((dest / "TRAINING.json").read_text())["student1"]["threshold_choice"]
    assert choice["rgb_sum_threshold"] == 350 and choice["verdict"]["run"] == str(run)
    assert (
        choice["verdict"]["ships"] and choice["verdict"]["choice"]["val 0-2"]["350"]["mIoU"] == 81
    )


def test_a_stage2_runs_student_ships_as_student2_with_its_verdict(tmp_path):
    """A stage-2 rule ships a completion student with no threshold: the verdict (the same
    masks under both students) is recorded as the student's, its defaults untouched."""
    from amodal_ros.train.judge import kept_path, model_id

    dest, shipped = tmp_path / "embedded", _student(tmp_path, "shipped", 3, stage=2) / "final"
    distill, masks = _student(tmp_path, "distill", 4, stage=2), _student(tmp_path, "masks", 5)
    rule = {
        "stage": 2,
        "shipped": str(shipped),
        "masks": str(masks / "final"),
        "confirm": [[10, 3]],
        "must_rise": ["completion_psnr_found_db"],
        "may_fall": {"completion_ssim": 0.01},
    }
    run = tmp_path / "runs" / "name"
    (run / "scores").mkdir(parents=True)
    (run / "plan.json").write_text(json.dumps({"distill": ["--steps", "1"], "rule": rule}))
    old = {"completion_psnr_db": 12.0, "completion_ssim": 0.5, "completion_psnr_found_db": 14.0}
    old |= {"completion_coverage": 80.0, "completion_psnr_coverage_bound_db": 14.7}
    tail = f"-masks-{model_id(rule['masks'])}"
    for side, folder, found in (("shipped", shipped, 14.0), ("run", distill / "final", 14.6)):
        kept = kept_path(run / "scores", f"{side}-{model_id(str(folder))}{tail}", (10, 3))
        kept.write_text(json.dumps({"scores": {**old, "completion_psnr_found_db": found}}))
    given = ["--student", str(distill), "--judged-by", str(run), "--dest", str(dest)]
    assert main(given) == 0
    report = json.loads((dest / "TRAINING.json").read_text())["student2"]
    assert report["verdict"]["ships"] and report["verdict"]["masks"] == rule["masks"]
    assert "threshold_choice" not in report
    assert (dest / "student2" / "unet").is_dir() and not (dest / "student1").exists()


def test_a_checkpoint_without_its_weights_is_refused_and_the_shipped_one_kept(tmp_path):
    """A half-unpacked run (configs, no UNet weights) never replaces a shipped folder."""
    from amodal_ros.core.errors import CheckpointError

    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    ship(train_out, dest)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    _run(tmp_path / "newer", "stage1", 40.0, [0.5], seed=7)  # a new stage 1 beside it...
    _run(tmp_path / "newer", "stage2", 10.0, [2.0])
    (
        tmp_path / "newer" / "stage2" / "final" / "unet" / "diffusion_pytorch_model.safetensors"
    ).unlink()
    with pytest.raises(CheckpointError):  # ... is not shipped alone: nothing changes
        ship(tmp_path / "newer", dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".*partial*"))


def test_the_shared_autoencoder_is_stored_once_and_never_changes_under_a_student(tmp_path):
    """Components equal to stage 1's are links to them; re-shipping stage 1 with another
    autoencoder turns the links of folders it does not replace into copies of the old one."""
    import os

    from amodal_ros.models.components import student_schedule

    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    ship(train_out, dest)
    student = build_components("tiny", seed=len("stage1"))  # trained in stage 1's latents
    student.scheduler_config = student_schedule(student.scheduler_config)
    student.student = {"teacher": "embedded", "targets": "truth"}
    save_published_layout(student, tmp_path / "distill" / "final")
    (tmp_path / "distill" / "train_config.json").write_text(json.dumps({"stage": "distill"}))
    (tmp_path / "distill" / "loss.csv").write_text("step,loss\n10,0.5\n")
    ship_student(tmp_path / "distill", dest)
    for folder in ("stage2", "student1"):
        for name in ("vae", "image_encoder"):
            assert os.readlink(dest / folder / name) == f"../stage1/{name}", (folder, name)
    weights = "vae/diffusion_pytorch_model.safetensors"
    trained_with = (dest / "student1" / weights).read_bytes()
    assert load_components(dest / "student1").is_student

    other = tmp_path / "other"
    _run(other, "stage1", 30.0, [1.0], seed=99)  # a new autoencoder, and stages in it
    _run(other, "stage2", 10.0, [2.0], seed=99)
    ship(other, dest)
    assert (dest / "stage1" / weights).read_bytes() != trained_with
    assert not (dest / "student1" / "vae").is_symlink()
    assert (dest / "student1" / weights).read_bytes() == trained_with
    assert os.readlink(dest / "stage2" / "vae") == "../stage1/vae"


def test_a_decoder_fine_tune_ships_to_every_folder_in_its_latent_space(tmp_path):
    """One new decoder for all folders sharing the encoder (still stored once); a decoder of
    another latent space is refused before anything is written."""
    import os

    import torch

    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    ship(train_out, dest)
    weights = "vae/diffusion_pytorch_model.safetensors"
    before = (dest / "stage2" / weights).read_bytes()

    tuned = build_components("tiny", seed=len("stage1"))  # the shipped autoencoder ...
    with torch.no_grad():
        for p in tuned.vae.decoder.parameters():  # ... with another decoder
            p.add_(0.01)
    run = tmp_path / "vae_decoder"
    save_published_layout(tuned, run / "final")
    (run / "train_config.json").write_text(json.dumps({"stage": "vae", "trainable": "decoder"}))
    (run / "loss.csv").write_text("step,loss\n10,0.03\n")
    pixels = save_published_layout(build_components("tiny", seed=len("stage1")), dest / "px")
    index = json.loads((pixels / "model_index.json").read_text())  # a pixel-space student
    index["amodal_ros"]["student"] = {"space": "pixels"}
    (pixels / "model_index.json").write_text(json.dumps(index))
    own = (pixels / weights).read_bytes()
    assert ship_decoder(run, dest) == [dest / "stage1", dest / "stage2"]
    assert (pixels / weights).read_bytes() == own  # the decoder it was distilled through
    shutil.rmtree(pixels)
    assert (dest / "stage2" / weights).read_bytes() != before
    assert (dest / "stage1" / weights).read_bytes() == (run / "final" / weights).read_bytes()
    assert os.readlink(dest / "stage2" / "vae") == "../stage1/vae"
    assert json.loads((dest / "TRAINING.json").read_text())["vae_decoder"]["steps"] == 10

    other = build_components("tiny", seed=99)  # another encoder: other latents
    save_published_layout(other, run / "final")
    shipped = (dest / "stage1" / weights).read_bytes()
    with pytest.raises(ValueError, match="encoder is not .*stage1/vae's"):
        ship_decoder(run, dest)
    assert (dest / "stage1" / weights).read_bytes() == shipped
    assert sorted(p.name for p in dest.glob("*/*.*")) == ["model_index.json"] * 2


def test_a_failed_ship_leaves_what_is_equal_stored_once(tmp_path):
    import os
    import shutil

    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    ship(train_out, dest)
    shutil.rmtree(train_out / "stage2" / "final")  # stage 1 is copied, then stage 2 fails
    with pytest.raises(FileNotFoundError, match="not a finished checkpoint"):
        ship(train_out, dest)
    assert os.readlink(dest / "stage2" / "vae") == "../stage1/vae"
    assert not list(dest.glob("*/*.link")) + list(dest.glob("*/*.copy"))


def _decoder_run(root, seed: int = len("stage1")):
    """A decoder fine-tune of the autoencoder `_run` ships as stage 1's (same seed)."""
    import torch

    tuned = build_components("tiny", seed=seed)
    with torch.no_grad():
        for p in tuned.vae.decoder.parameters():
            p.add_(0.01)
    run = root / "vae_decoder"
    save_published_layout(tuned, run / "final")
    (run / "train_config.json").write_text(json.dumps({"stage": "vae", "trainable": "decoder"}))
    (run / "loss.csv").write_text("step,loss\n10,0.03\n")
    return run


def test_without_dest_each_command_ships_into_the_embedded_folder(tmp_path, monkeypatch, capsys):
    """With no --dest the stages, a student and a decoder go to the package's embedded folder
    (a tmp folder in its place here), and the command prints what it shipped."""
    from amodal_ros.models import registry
    from amodal_ros.train import ship

    embedded = tmp_path / "embedded"
    monkeypatch.setattr(registry, "EMBEDDED_ROOT", embedded)
    # and where ship may hold its own name of it: never the package's real folder
    monkeypatch.setattr(ship, "EMBEDDED_ROOT", embedded, raising=False)
    _run(tmp_path / "train_out", "stage1", 30.0, [1.0])
    _run(tmp_path / "train_out", "stage2", 10.0, [2.0])
    assert main([str(tmp_path / "train_out")]) == 0
    assert capsys.readouterr().out.splitlines() == [str(embedded)]
    assert load_components(embedded / "stage2").unet is not None
    assert main(["--student", str(_student(tmp_path, "distill", seed=len("stage1")))]) == 0
    assert capsys.readouterr().out.splitlines() == [str(embedded / "student1")]
    assert load_components(embedded / "student1").is_student
    assert main(["--decoder", str(_decoder_run(tmp_path))]) == 0
    shipped = [str(embedded / name) for name in ("stage1", "stage2", "student1")]
    assert capsys.readouterr().out.splitlines() == shipped
    assert set(json.loads((embedded / "TRAINING.json").read_text())) == {
        "stage1",
        "stage2",
        "student1",
        "vae_decoder",
    }
    with pytest.raises(SystemExit):
        main(["--help"])  # the module docstring's first line says what it does
    assert "Copy trained checkpoints into the package" in capsys.readouterr().out


def test_a_run_without_its_config_or_an_unfinished_decoder_is_refused(tmp_path):
    """A stage folder that is no training run (no train_config.json: which stage it trained is
    unknown) and a decoder run whose final/ was never finished are refused by name, and
    nothing is written."""
    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 30.0, [1.0])
    _run(train_out, "stage2", 10.0, [2.0])
    (train_out / "stage2" / "train_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="stage2 is not a training run"):
        ship(train_out, dest)
    assert not dest.exists()
    (train_out / "stage2" / "train_config.json").write_text('{"stage": "completion"}')
    ship(train_out, dest)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    run = _decoder_run(tmp_path)
    (run / "final" / "model_index.json").unlink()  # stopped while it was being written
    with pytest.raises(FileNotFoundError, match="vae_decoder/final is not a finished checkpoint"):
        ship_decoder(run, dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before


def test_the_report_quotes_wall_time_steps_and_the_last_20_losses(tmp_path):
    """TRAINING.json's numbers, as the model card quotes them: seconds to one decimal, the mean
    of the last 20 logged losses (of 25) to six, no steps and no loss for an empty log; an old
    stage 1's calibration goes with it while the students' records stay; the file is indented
    as committed (2 spaces)."""
    train_out, dest = tmp_path / "train_out", tmp_path / "embedded"
    _run(train_out, "stage1", 12.345, [i / 7 for i in range(25)])
    _run(train_out, "stage2", 10.0, [])
    dest.mkdir()
    old = {"calibration": {"rgb_sum_threshold": 300}, "student1": {"steps": 5}}
    (dest / "TRAINING.json").write_text(json.dumps(old))
    ship(train_out, dest)
    text = (dest / "TRAINING.json").read_text()
    report = json.loads(text)
    assert text == json.dumps(report, indent=2)
    assert "calibration" not in report and report["student1"] == {"steps": 5}
    stage1, stage2 = report["stage1"], report["stage2"]
    assert stage1["seconds"] == 24.7 and stage1["steps"] == 250
    assert stage1["loss_first_logged"] == 0.0
    assert stage1["loss_last_20_logged_mean"] == round(sum(range(5, 25)) / 20 / 7, 6) == 2.071429
    assert stage2["steps"] == 0 and stage2["loss_first_logged"] is None
    assert stage2["loss_last_20_logged_mean"] is None


def test_a_stage_1_student_calibrates_its_threshold_under_preset_realtime(tmp_path):
    """`--student --calibrate N`: the student's threshold is chosen on validation clips with
    one step (preset realtime, how a student runs), written to its defaults and reported."""
    from amodal_ros.eval.calibrate import best_threshold

    dest = tmp_path / "embedded"
    ship_student(_student(tmp_path, "distill", seed=3), dest, calibrate_clips=1)
    report = json.loads((dest / "TRAINING.json").read_text())["student1"]["calibration"]
    assert report["split"] == "val" and report["clips"] == 1 and report["steps"] == 1
    chosen = report["rgb_sum_threshold"]
    assert chosen == best_threshold({int(t): s for t, s in report["scores"].items()})
    assert load_components(dest / "student1").defaults["rgb_sum_threshold"] == chosen


def test_the_module_runs_as_its_usage_says(tmp_path):
    """`python -m amodal_ros.train.ship` runs the command and exits with its status."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "amodal_ros.train.ship", "--threshold", "400"]
    done = subprocess.run([*command, "--dest", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "give --student" in done.stderr
