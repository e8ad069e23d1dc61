"""`amodal-ros train` on a tiny run: checkpoints the loader reads, CSV log, resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml
from conftest import fit_fixed_batch

from amodal_ros.cli.main import main
from amodal_ros.core.config import InferenceConfig
from amodal_ros.core.errors import InputError
from amodal_ros.core.types import ObjectTrack
from amodal_ros.pipeline import AmodalSegmenter


def _config(tmp_path, steps: int, name: str = "run", **extra) -> str:
    path = tmp_path / f"{name}.yaml"
    settings = dict(
        out=str(tmp_path / name),
        steps=steps,
        num_frames=4,
        height=32,
        width=64,
        lr=1e-3,
        save_every=2,
        log_every=1,
        progress=False,
    )
    path.write_text(yaml.safe_dump({**settings, **extra}))
    return str(path)


def _rows(tmp_path) -> list[list[str]]:
    with open(tmp_path / "run" / "loss.csv") as f:
        return list(csv.reader(f))


def test_train_saves_loadable_checkpoints_and_resumes(tmp_path):
    assert main(["train", _config(tmp_path, 3)]) == 0
    run = tmp_path / "run"
    assert (run / "checkpoint-2" / "unet").is_dir() and (run / "final" / "unet").is_dir()
    rows = _rows(tmp_path)
    assert rows[0] == ["step", "loss"] and [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert all(np.isfinite(float(r[1])) for r in rows[1:])
    # the final checkpoint is what the inference pipeline loads (mask + depth, 12 channels)
    seg = AmodalSegmenter.from_pretrained(
        run / "final", InferenceConfig(height=32, width=64, num_frames=4, num_steps=1)
    )
    assert seg.needs_depth
    masks = np.zeros((4, 32, 64), bool)
    masks[:, 8:20, 10:30] = True
    result = seg([ObjectTrack(1, masks)], np.ones((4, 32, 64), np.float32))[0]
    assert not (masks & ~result.amodal).any()
    # a stop after the last save logged a row the saved state does not have
    with open(run / "loss.csv", "a") as f:
        f.write("4,9.999\n")
    # resuming continues at step 4 (the saved state), redoing the lost row in the same log
    old_final = (run / "final" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert main(["train", _config(tmp_path, 5)]) == 0
    # the old final is kept under its step, and final/ is the longer run's
    kept = run / "checkpoint-3" / "unet" / "diffusion_pytorch_model.safetensors"
    assert kept.read_bytes() == old_final
    assert (
        run / "final" / "unet" / "diffusion_pytorch_model.safetensors"
    ).read_bytes() != old_final
    rows = _rows(tmp_path)[1:]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"] and "9.999" not in rows[3][1]
    sessions = json.loads((run / "timing.json").read_text())
    assert [s["steps"] for s in sessions] == [3, 2]  # one entry per session
    # how much of each session went on windows: this stage 1 renders and encodes each step's
    assert all(0 < s["windows_share"] < 1 for s in sessions)


def test_a_run_resumed_with_more_steps_follows_the_longer_schedule(tmp_path):
    """A cosine run stopped after step 1 of 1 and resumed with 3 steps trains like a run of 3
    from the start: its next learning rate is the 3-step cosine's (0.775 of lr at step 1),
    not the one the saved 1-step schedule had reached (its floor, 0.1 of lr)."""
    import torch
    from safetensors.torch import load_file

    cosine = dict(lr_schedule="cosine", save_every=1)
    assert main(["train", _config(tmp_path, 3, "straight", **cosine)]) == 0
    assert main(["train", _config(tmp_path, 1, "resumed", **cosine)]) == 0
    assert main(["train", _config(tmp_path, 3, "resumed", **cosine)]) == 0
    runs = [tmp_path / name for name in ("straight", "resumed")]
    logs = [(run / "loss.csv").read_text() for run in runs]
    assert logs[0] == logs[1] and len(logs[0].splitlines()) == 4
    unet = "final/unet/diffusion_pytorch_model.safetensors"
    straight, resumed = (load_file(run / unet) for run in runs)
    assert all(torch.equal(resumed[k], v) for k, v in straight.items())


def test_a_run_killed_while_saving_resumes_from_its_last_complete_state(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text("{}")  # a run killed before its first save
    (run / "loss.csv").write_text("step,loss\n1,0.5\n")
    assert main(["train", _config(tmp_path, 2)]) == 0
    assert [r[0] for r in _rows(tmp_path)] == ["step", "1", "2"]  # started over, one header
    # killed between the swap's two renames, with the next save half-written beside it
    (run / "state").rename(run / ".state.previous")
    (run / ".state.partial").mkdir()
    (run / ".state.partial" / "step.json").write_text('{"step": 4}')
    (run / "final").rename(run / ".final.partial-1")
    assert main(["train", _config(tmp_path, 3)]) == 0
    assert [r[0] for r in _rows(tmp_path)[1:]] == ["1", "2", "3"]  # resumed at step 2
    assert json.loads((run / "state" / "step.json").read_text()) == {"step": 3}
    assert (run / "final" / "unet").is_dir()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".state")]
    # other settings would be overruled by the saved state: refused, nothing changed
    assert main(["train", _config(tmp_path, 4, lr=1e-4)]) == 2
    assert "lr 0.001 -> 0.0001" in capsys.readouterr().err
    assert main(["train", _config(tmp_path, 2)]) == 2  # fewer steps than it has done
    assert "at step 3, past steps 2" in capsys.readouterr().err
    assert [r[0] for r in _rows(tmp_path)[1:]] == ["1", "2", "3"]


def test_steps_of_a_save_killed_before_its_swap_are_timed_once(tmp_path, monkeypatch):
    """They were logged before the swap: the resumed run redid them and the model card's
    seconds counted them twice."""
    from amodal_ros.train import loop

    real, calls = loop.swap_in_state, {"n": 0}

    def killed_on_the_second(out):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while its step-4 save was being published
        real(out)

    monkeypatch.setattr(loop, "swap_in_state", killed_on_the_second)
    assert main(["train", _config(tmp_path, 4)]) == 130  # as Ctrl-C
    run = tmp_path / "run"
    assert json.loads((run / "state" / "step.json").read_text()) == {"step": 2}
    assert [s["steps"] for s in json.loads((run / "timing.json").read_text())] == [2]
    assert main(["train", _config(tmp_path, 4)]) == 0  # steps 3 and 4 again
    assert [s["steps"] for s in json.loads((run / "timing.json").read_text())] == [2, 2]


def test_a_damaged_saved_state_is_one_line_naming_it(tmp_path, capsys):
    assert main(["train", _config(tmp_path, 2)]) == 0
    optimizer = tmp_path / "run" / "state" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # a disk error
    assert main(["train", _config(tmp_path, 3)]) == 2
    err = capsys.readouterr().err
    assert "the saved training state in" in err and "does not load" in err
    assert "Traceback" not in err


def test_a_resume_on_an_init_trained_further_meanwhile_is_refused(tmp_path, capsys, caplog):
    # stage 1 starts from an autoencoder run's final; that run is continued (its final
    # changes under the same path); resuming stage 1 would move it to another latent space
    assert main(["train", _config(tmp_path, 2, name="vae_run", stage="vae")]) == 0
    init = str(tmp_path / "vae_run" / "final")
    assert main(["train", _config(tmp_path, 2, init=init)]) == 0
    assert main(["train", _config(tmp_path, 3, init=init)]) == 0  # the same init: resumes
    assert main(["train", _config(tmp_path, 4, name="vae_run", stage="vae")]) == 0
    assert main(["train", _config(tmp_path, 4, init=init)]) == 2
    err = capsys.readouterr().err
    assert "the vae of init" in err and "changed since the run" in err
    # refused: the finished run keeps its final/ and its settings
    run = tmp_path / "run"
    assert (run / "final" / "model_index.json").is_file() and not (run / "checkpoint-3").exists()
    assert json.loads((run / "train_config.json").read_text())["steps"] == 3
    # an older version's record (its hashes varied per process) is recorded anew, not refused
    record = tmp_path / "run" / "init_fingerprint.json"
    record.write_text(json.dumps({"vae": "0" * 64, "image_encoder": "0" * 64}))
    assert main(["train", _config(tmp_path, 5, init=init)]) == 0
    assert "recorded by an older amodal_ros" in caplog.text
    assert json.loads(record.read_text())["fingerprint"] == 3
    # a record of version 2 hashed transformers' version with the image encoder: not refused
    saved = json.loads(record.read_text())
    record.write_text(json.dumps({**saved, "fingerprint": 2, "image_encoder": "0" * 64}))
    assert main(["train", _config(tmp_path, 6, init=init)]) == 0
    assert json.loads(record.read_text()) == saved
    record.write_text(json.dumps({**saved, "fingerprint": 2, "vae": "0" * 64}))
    assert main(["train", _config(tmp_path, 7, init=init)]) == 2  # its other parts still hold


def test_a_resume_on_an_init_whose_settings_changed_is_refused(tmp_path, capsys, caplog):
    """A model shipped anew under the same path (another working size or threshold, same
    weights) would have the run train and publish with settings it did not start with."""
    assert main(["train", _config(tmp_path, 2, name="first")]) == 0
    init = tmp_path / "first" / "final"
    assert main(["train", _config(tmp_path, 2, init=str(init))]) == 0
    index = json.loads((init / "model_index.json").read_text())
    index.setdefault("amodal_ros", {}).setdefault("defaults", {})["rgb_sum_threshold"] = 123
    (init / "model_index.json").write_text(json.dumps(index))
    assert main(["train", _config(tmp_path, 3, init=str(init))]) == 2
    assert "model settings (working size" in capsys.readouterr().err
    # a record from before settings were kept: not refused, said, and recorded from now on
    record = tmp_path / "run" / "init_fingerprint.json"
    old = json.loads(record.read_text())
    record.write_text(json.dumps({k: v for k, v in old.items() if k != "settings"}))
    assert main(["train", _config(tmp_path, 3, init=str(init))]) == 0
    assert "recorded before it held init" in caplog.text
    assert "settings" in json.loads(record.read_text())


@pytest.mark.timeout(300)
def test_a_cut_foreign_or_stepless_saved_state_is_refused_in_one_line(tmp_path, capsys):
    """A cut safetensors file was a SafetensorError traceback, another model's state a
    hundred-line size-mismatch list; a step.json without a whole-number step a traceback (or
    `final/` retired, then a crash), and a state/ without one (or a FIFO) was started over
    beside, its first save deleting the run's state (the FIFO hung it)."""
    import os
    import shutil

    run = tmp_path / "run"
    assert main(["train", _config(tmp_path, 2)]) == 0
    state, kept = run / "state", tmp_path / "kept"
    shutil.copytree(state, kept)
    model = state / "model.safetensors"
    model.write_bytes(model.read_bytes()[:1000])
    assert main(["train", _config(tmp_path, 3)]) == 2
    err = capsys.readouterr().err
    assert "does not load" in err and "Traceback" not in err
    assert main(["train", _config(tmp_path, 2, name="wide", unet_width=64)]) == 0
    shutil.copy(tmp_path / "wide" / "state" / "model.safetensors", model)
    assert main(["train", _config(tmp_path, 3)]) == 2
    err = capsys.readouterr().err
    assert "another model's" in err and len(err.splitlines()) == 1
    for step in ('{"step": "x"}', "[]", '{"step": -5}', '{"step": 2.5}', None, "fifo"):
        shutil.rmtree(state)
        shutil.copytree(kept, state)
        if step is None:
            (state / "step.json").unlink()
        elif step == "fifo":
            shutil.rmtree(state)
            os.mkfifo(state)
        else:
            (state / "step.json").write_text(step)
        assert main(["train", _config(tmp_path, 3)]) == 2, step
        err = capsys.readouterr().err
        assert "is no saved state" in err and "Traceback" not in err, step
        assert (run / "final" / "unet").is_dir() and not (run / "checkpoint-2").exists()
    state.unlink()
    shutil.copytree(kept, state)
    assert main(["train", _config(tmp_path, 3)]) == 0  # restored: it resumes
    assert [r[0] for r in _rows(tmp_path)[1:]] == ["1", "2", "3"]


def test_a_stop_mid_save_or_a_damaged_run_file_does_not_block_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", _config(tmp_path, 2)]) == 0
    (run / ".checkpoint-4.partial-123" / "unet").mkdir(parents=True)  # a save killed midway
    (run / "timing.json").write_text('[{"steps": 2, "sec')  # a file cut short
    assert main(["train", _config(tmp_path, 4)]) == 0
    assert not list(run.glob(".checkpoint-*")) and (run / "final" / "unet").is_dir()
    assert (run / "timing.json.unreadable").is_file()  # kept aside, a new one begun
    assert json.loads((run / "timing.json").read_text())[-1]["steps"] == 2
    (run / "timing.json").write_text('{"steps": 2}')  # JSON, not a list: was a KeyError
    assert main(["train", _config(tmp_path, 5)]) == 0
    assert json.loads((run / "timing.json").read_text())[-1]["steps"] == 1
    # fp16 would load a gradient scaler that a run saved in fp32 never wrote (a GPU's crash;
    # the check itself, since one process keeps its first accelerate precision)
    from amodal_ros.train.config import TrainConfig
    from amodal_ros.train.run_folder import check_resumable

    fp16 = TrainConfig(**{**json.loads((run / "train_config.json").read_text()), "steps": 5})
    fp16.mixed_precision = "fp16"
    with pytest.raises(InputError, match="fp16 resumes a gradient scaler"):
        check_resumable(run, fp16, 4)
    (run / "train_config.json").write_text("{")
    assert main(["train", _config(tmp_path, 5)]) == 2
    assert "train_config.json is not valid JSON" in capsys.readouterr().err


def test_train_rejects_unknown_settings(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("steps: 2\nlearning_rate: 0.1\n")
    assert main(["train", str(path)]) == 2
    assert "unknown training settings ['learning_rate']" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train", _config(tmp_path, 2), "--set", "lr"]) == 2
    assert "--set 'lr': expected KEY=VALUE" in capsys.readouterr().err
    assert main(["train", _config(tmp_path, 2), "--set", "Lr=0.1"]) == 2  # named as --set's
    assert "--set 'Lr=0.1': unknown training setting 'Lr'" in capsys.readouterr().err
    distill = _config(tmp_path, 2, name="d", stage="distill", data=str(tmp_path / "nope"))
    assert main(["train", distill]) == 2  # train, as distill, refuses before writing
    assert "is not a folder: pass 'synth'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    (tmp_path / "file").write_text("mine")  # was a bare "[Errno 17] File exists"
    assert main(["train", _config(tmp_path, 2), "--out", str(tmp_path / "file")]) == 2
    assert "is a file; a training run writes a folder there" in capsys.readouterr().err
    # a folder of other files: its loss.csv and final/ were replaced by the run's
    mine = tmp_path / "mine"
    (mine / "final").mkdir(parents=True)
    (mine / "loss.csv").write_text("my data\n")
    assert main(["train", _config(tmp_path, 2), "--out", str(mine)]) == 2
    assert "holds other files and is no training run" in capsys.readouterr().err
    assert (mine / "loss.csv").read_text() == "my data\n" and not any((mine / "final").iterdir())
    assert main(["train", _config(tmp_path, 2), "--out", ""]) == 2  # the current folder
    assert "out is empty" in capsys.readouterr().err
    assert main(["train", _config(tmp_path, 2, height=20)]) == 2  # refused before any file
    assert "height 20: the models work on multiples of 8" in capsys.readouterr().err


def test_a_student_is_no_start_for_a_many_step_stage(tmp_path, capsys):
    """Its student record and 1-step schedule shipped with the new model, which then ran as a
    1-step student under realtime and was refused under quality."""
    from amodal_ros.models.registry import EMBEDDED_ROOT

    student = str(EMBEDDED_ROOT / "student1")
    assert main(["train", _config(tmp_path, 1, init=student)]) == 2
    assert "is a distilled student (1-2 steps): stages amodal and completion" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_shipped_training_configs_chain_the_embedded_recipe():
    """vae -> stage 1 (mask + depth) and vae -> stage 2, each a new UNet in the autoencoder's
    latent space, all with the autoencoder's mask resizing and clip rendering."""
    from pathlib import Path

    from amodal_ros.train.loop import TrainConfig

    root = Path(__file__).resolve().parents[2] / "config"
    load = lambda name: TrainConfig(**yaml.safe_load((root / name).read_text()))  # noqa: E731
    vae, stage1, stage2 = (load(f"train_{n}.yaml") for n in ("vae", "stage1", "stage2"))
    assert vae.stage == "vae" and vae.init == ""
    assert stage1.init == f"{vae.out}/final" and stage1.fresh_unet and stage1.depth
    assert stage2.init == f"{vae.out}/final" and stage2.stage == "completion"
    assert {c.num_frames for c in (stage1, stage2)} == {25}
    decoder = load("train_vae_decoder.yaml")  # the shipped autoencoder's decoder, afterwards
    assert decoder.stage == "vae" and decoder.trainable == "decoder"
    assert (
        decoder.init == "amodal_ros/models/embedded/stage1"
        and (root.parent / decoder.init).is_dir()
    )
    runs = (vae, stage1, stage2, decoder)
    assert len({(c.mask_resize, c.render_scale, c.height, c.width) for c in runs}) == 1


@pytest.mark.parametrize(
    "field, value",
    [("steps", 0), ("mixed_precision", "fp8"), ("vae_width", 8), ("vae_width", 48)],
)
def test_train_config_names_bad_fields(field, value):
    from amodal_ros.train.loop import TrainConfig

    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_autoencoder_loss_decreases_on_a_fixed_window():
    import torch

    from amodal_ros.models.architectures import build_components
    from amodal_ros.train.loop import autoencoder_loss

    vae = build_components("tiny", seed=0).vae.train().requires_grad_(True)
    frames = torch.zeros(4, 3, 32, 64)
    frames[:, :, 8:24, 16:40] = 1.0  # a box mask in {0, 1}, mapped to [-1, 1] below
    frames = frames * 2 - 1
    torch.manual_seed(0)
    losses = fit_fixed_batch(
        lambda: autoencoder_loss(vae, frames, kl_weight=1e-6), vae.parameters(), 12, 2e-3
    )
    assert losses[-1] < 0.7 * losses[0], losses


def test_vae_stage_trains_the_autoencoder_only(tmp_path):
    import torch

    from amodal_ros.models.architectures import build_components
    from amodal_ros.models.layout import load_components

    assert main(["train", _config(tmp_path, 2, name="vae_run", stage="vae")]) == 0
    timing = json.loads((tmp_path / "vae_run" / "timing.json").read_text())
    assert 0 < timing[0]["windows_share"] < 1  # rendering its frames, timed as stage 1's are
    trained = load_components(tmp_path / "vae_run" / "final")
    start = build_components("tiny", seed=0)
    changed = lambda a, b: any(  # noqa: E731
        not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )
    assert changed(trained.vae, start.vae)
    assert not changed(trained.unet, start.unet)


def test_cosine_schedule_runs_from_lr_to_a_tenth():
    from amodal_ros.train.loop import TrainConfig, _lr_factor

    factor = _lr_factor(TrainConfig(steps=100, lr_schedule="cosine"))
    values = [factor(s) for s in range(0, 101, 10)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.1)
    assert values[5] == pytest.approx(0.55) and values == sorted(values, reverse=True)
    assert _lr_factor(TrainConfig(steps=100))(50) == 1.0  # constant: the reference


def test_learning_rate_warms_up_then_follows_the_cosine():
    import math

    from amodal_ros.train.loop import TrainConfig, _lr_factor

    factor = _lr_factor(TrainConfig(steps=100, warmup_steps=10, lr_schedule="cosine"))

    def cosine(step):
        return 0.1 + 0.45 * (1 + math.cos(math.pi * step / 100))

    assert factor(0) == pytest.approx(0.1 * cosine(0))  # warm-up: 1/10 of the way
    assert factor(4) == pytest.approx(0.5 * cosine(4))
    assert factor(50) == pytest.approx(cosine(50)) and factor(100) == pytest.approx(0.1)
    constant = _lr_factor(TrainConfig(steps=100, lr_schedule="constant"))
    assert constant(0) == constant(99) == 1.0


def test_data_workers_train_on_the_same_batches(tmp_path):
    """Windows rendered by worker processes are the ones the training process would draw:
    the same losses and the same weights, with a batch of 2 over a stage-1 run."""
    import torch
    from safetensors.torch import load_file

    runs = {}
    for workers in (0, 2):
        name = f"workers{workers}"
        config = _config(tmp_path, 2, name=name, batch_size=2, data_workers=workers)
        assert main(["train", config]) == 0
        with open(tmp_path / name / "loss.csv") as f:
            losses = [row[1] for row in list(csv.reader(f))[1:]]
        weights = load_file(
            tmp_path / name / "final" / "unet" / "diffusion_pytorch_model.safetensors"
        )
        runs[workers] = losses, weights
    (serial, serial_weights), (ahead, ahead_weights) = runs[0], runs[2]
    assert serial == ahead and len(serial) == 2
    assert all(torch.equal(serial_weights[k], ahead_weights[k]) for k in serial_weights)


@pytest.mark.parametrize(
    "extra, named",
    [
        (dict(sample_reuse=4), "sample_reuse 1"),
        (dict(stage="vae"), "stage vae without workers"),
        (dict(stage="distill", distill_target="teacher"), "distill_target truth"),
    ],
)
def test_data_workers_refuse_runs_they_cannot_feed(extra, named):
    from amodal_ros.train.loop import TrainConfig

    with pytest.raises(ValueError, match=named):
        TrainConfig(data_workers=2, **extra)


class _DyingRenderer:
    """A worker that dies in the middle of an item, as one killed for memory would."""

    def item(self, rng):
        import os

        os._exit(1)


def test_a_dead_render_worker_stops_training_with_an_error():
    from concurrent.futures.process import BrokenProcessPool

    from amodal_ros.train.windows import RenderedAhead

    ahead = RenderedAhead(_DyingRenderer(), seed=0, slots=range(1), workers=1)
    try:
        with pytest.raises(BrokenProcessPool):
            ahead.take(0, 0)
    finally:
        ahead.close()


def test_numbers_yaml_reads_as_text_are_numbers():
    """YAML 1.1 reads 1e-4 (no dot) as text, as in `--set lr=1e-4` or a config file."""
    from amodal_ros.train.loop import TrainConfig

    assert yaml.safe_load("lr: 1e-4") == {"lr": "1e-4"}
    assert TrainConfig(lr="1e-4", kl_weight="0").lr == 1e-4
    with pytest.raises(ValueError, match="lr must be float, got 'fast'"):
        TrainConfig(lr="fast")


def test_the_frozen_vae_encodes_in_its_own_precision_under_a_mixed_precision_step():
    """The training step runs under autocast (bf16 here); the frozen VAE's targets and
    conditions, and the image encoder's context, are encoded as the pipeline encodes them, in
    float32, not in bf16 (the context moved by 0.5 %)."""
    import torch

    from amodal_ros.train.batches import Batches, data_config
    from amodal_ros.train.config import TrainConfig
    from amodal_ros.train.loop import _starting_components

    config = TrainConfig(num_frames=4, height=32, width=64, render_scale=2, sample_reuse=1)
    components = _starting_components(config)

    def sample(autocast: bool):
        batches = Batches(components, data_config(config, components), "cpu")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            target, cond, context, *_ = batches.sample(0, range(1))
        batches.close()
        return target, cond, context

    plain, mixed = sample(False), sample(True)
    assert mixed[0].dtype == torch.float32 and mixed[2].dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(plain, mixed))


def test_sampled_targets_from_a_wide_posterior_are_warned_about(caplog):
    """An autoencoder trained here keeps a posterior spread near its latents' own: sampling
    the targets from it (the reference's default) would train on noise, so it is said."""
    import logging

    from amodal_ros.train.batches import Batches, data_config
    from amodal_ros.train.config import TrainConfig
    from amodal_ros.train.loop import _starting_components

    said = "the diffusion targets would be largely noise"
    for sampled in (True, False):
        config = TrainConfig(num_frames=4, height=32, width=64, sample_targets=sampled)
        components = _starting_components(config)
        batches = Batches(components, data_config(config, components), "cpu")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="amodal_ros.train"):
            batches.sample(0, range(2))
        batches.close()
        warned = sum(said in r.message for r in caplog.records)
        assert warned == (1 if sampled else 0)  # once per run, not per item


def test_progress_on_the_command_line_overrides_the_config_either_way(tmp_path, capsys):
    """`--progress` over a config's `progress: false` showed no bar (only `--no-progress` was
    heard); without the flag the config decides."""
    assert main(["train", _config(tmp_path, 1, "on"), "--progress"]) == 0
    assert "train: 100%" in capsys.readouterr().err
    assert main(["train", _config(tmp_path, 1, "off")]) == 0
    assert "train:" not in capsys.readouterr().err
    assert main(["train", _config(tmp_path, 1, "yaml_on", progress=True), "--no-progress"]) == 0
    assert "train:" not in capsys.readouterr().err
