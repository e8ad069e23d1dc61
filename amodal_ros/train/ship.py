"""Copy trained checkpoints into the package as the embedded default model.

Only what the loader reads is copied (safetensors weights and JSON configs; never training
state), plus TRAINING.json: each run's config, wall time and last logged losses, which the
model card quotes. With `--calibrate N`, stage 1's mask threshold is chosen on N clips of the
validation split (never the test split) and recorded in its model_index.json defaults.

The folders share one autoencoder and image encoder (every stage and student is trained in
stage 1's latent space), stored once: a component equal file for file to stage 1's is a
relative link to `stage1/` (`_share`), and links become copies again before anything is
replaced (`_unshare`), so re-shipping stage 1 never changes what a student reads.

Each command works on a copy of the embedded folder that replaces it only when everything
succeeded (`_shipping`): a refused checkpoint, or Ctrl-C during a calibration, leaves the
shipped model and its report as they were, never a new stage beside the old threshold.

`--decoder VAE_RUN` ships a decoder fine-tune of the shipped autoencoder (`amodal-ros train
config/train_vae_decoder.yaml`: encoder, latents and scaling factor kept) to every folder at
once, refused unless its encoder is each folder's, tensor for tensor: every stage and student
then decodes the same latents with the new decoder.

`--student DISTILL_OUT` ships a distilled student (`amodal-ros distill`) as embedded/student1
(stage 1's, its threshold chosen the same way under preset realtime) or embedded/student2
(stage 2's), and adds its run to TRAINING.json (a fine-tuned student's keeps the run it
continued as `before`). `--judged-by runs/NAME` ships a carried run's student as its rule
decided (`amodal_ros.train.judge`: refused unless the rule ships it; the threshold and run
settings are the rule's, the verdict is recorded): run it before the student it replaces
is gone, since the verdict compares with that one's kept scores.

Usage:
    python -m amodal_ros.train.ship train_out [--calibrate 30]
    python -m amodal_ros.train.ship --student distill_out [--calibrate 30 | --threshold 400]
        [--default initial_noise=zeros ...]
    python -m amodal_ros.train.ship --student train_out/NAME --judged-by runs/NAME
    python -m amodal_ros.train.ship --decoder train_out/vae_decoder
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from amodal_ros.core.staging import staged_path

RUNS = ("vae", "stage1", "stage2")
SHIPPED = {"stage1": "stage1", "stage2": "stage2"}  # run -> embedded folder
SHIPPED_STAGE = {"stage1": "amodal", "stage2": "completion"}  # what each run must have trained
KEPT_SUFFIXES = (".safetensors", ".json")
OWN_OPTIONS = ("rgb_sum_threshold",)  # a student's threshold has --threshold and --calibrate
SHARED = ("vae", "image_encoder")  # stored once, in stage1/


def ship(
    train_out: Path, dest: Path | None = None, calibrate_clips: int = 0, calibrate_config=None
) -> Path:
    """Copy train_out/{stage1,stage2}/final into `dest` (the embedded folder); returns it.

    `calibrate_clips` > 0: choose stage 1's threshold on that many validation clips, sampled
    with `calibrate_config` (an InferenceConfig; default: the published sampling settings).
    """
    from amodal_ros.models.registry import EMBEDDED_ROOT

    dest = dest or EMBEDDED_ROOT
    for run in SHIPPED:  # before anything is copied
        _check_finished(train_out / run / "final")
        _check_stage(train_out / run, SHIPPED_STAGE[run])
    with _shipping(dest) as work:
        for run, folder in SHIPPED.items():
            _copy_checkpoint(train_out / run / "final", work / folder)
        report = _read_report(work)  # the students' and the decoder's records stay
        report.pop("calibration", None)  # it was the old stage 1's
        runs = {run: _run_report(train_out / run) for run in RUNS if (train_out / run).is_dir()}
        report |= runs
        if calibrate_clips:
            stage1 = work / SHIPPED["stage1"]
            report["calibration"] = calibrate(stage1, calibrate_clips, calibrate_config)
        _write_json(work / "TRAINING.json", report)
    return dest


def ship_student(
    distill_out: Path,
    dest: Path | None = None,
    calibrate_clips: int = 0,
    threshold: int | None = None,
    defaults: dict[str, str] | None = None,
    verdict: dict | None = None,
) -> Path:
    """Copy distill_out/final into `dest`/student1 or student2 (its teacher's stage) and add
    its run to TRAINING.json; with `calibrate_clips`, a stage-1 student's threshold is chosen
    on validation clips under preset realtime; with `threshold`, it is that one (chosen by a
    rule the calibration criterion does not express; recorded as `threshold_choice`, with the
    `verdict` of a carried run's rule that chose it: `judge.shipping_verdict`).
    `defaults` {field: value} sets other fields the model decides (mirror_ensemble,
    initial_noise, ...), chosen by rules of their own, so a recipe reproduces the shipped
    model; recorded as `defaults_chosen`."""
    from amodal_ros.core.config import InferenceConfig, model_settings
    from amodal_ros.models.layout import METADATA_KEY
    from amodal_ros.models.registry import EMBEDDED_ROOT, STUDENT_FOLDERS

    defaults = model_settings(defaults or {}, leave_out=OWN_OPTIONS)
    index = json.loads((distill_out / "final" / "model_index.json").read_text())
    record = index.get(METADATA_KEY, {}).get("student")
    if record is None:
        raise ValueError(
            f"{distill_out / 'final'} is not a distilled student (amodal-ros distill)"
        )
    stage = record.get("stage", 1)  # students before stage 2: 1
    name = STUDENT_FOLDERS[stage]
    if threshold is not None and (calibrate_clips or stage != 1):
        raise ValueError(
            "--threshold sets a stage-1 student's threshold, and not beside --calibrate "
            "(which chooses one)"
        )
    if calibrate_clips and stage != 1:
        raise ValueError("--calibrate chooses a stage-1 student's threshold; this one is stage 2")
    dest = dest or EMBEDDED_ROOT
    with _shipping(dest) as work:
        _copy_checkpoint(distill_out / "final", work / name)
        report = _read_report(work)
        before = report.get(name) if record.get("fine_tuned_from") else None
        report[name] = {**_run_report(distill_out), **({"before": before} if before else {})}
        if calibrate_clips and stage == 1:
            config = InferenceConfig(preset="realtime")
            report[name]["calibration"] = calibrate(work / name, calibrate_clips, config)
        if threshold is not None:
            _set_threshold(work / name, threshold)
            choice: dict = {"rgb_sum_threshold": threshold, "date": time.strftime("%Y-%m-%d")}
            if verdict:
                choice["verdict"] = verdict
            report[name]["threshold_choice"] = choice
        elif verdict:  # a stage-2 rule's: it chooses no threshold
            report[name]["verdict"] = verdict
        if defaults:
            _set_defaults(work / name, defaults)
            report[name]["defaults_chosen"] = dict(defaults)
        _write_json(work / "TRAINING.json", report)
    return dest / name


def ship_decoder(vae_run: Path, dest: Path | None = None) -> list[Path]:
    """Copy vae_run/final's autoencoder into every folder of `dest` (the embedded folder)
    whose encoder it shares, and add the run to TRAINING.json as `vae_decoder`; returns the
    folders. Nothing is written unless every folder's encoder equals the run's. A student
    distilled in pixel space keeps the decoder it was trained with (`_own_decoder`)."""
    from amodal_ros.models.registry import EMBEDDED_ROOT
    from amodal_ros.train.carry import same_weights

    dest = dest or EMBEDDED_ROOT
    _check_finished(vae_run / "final")
    source = vae_run / "final" / "vae"
    encoder = _encoder(source)
    folders = sorted(p for p in dest.iterdir() if (p / "vae").is_dir() and not _own_decoder(p))
    for folder in folders:
        if not same_weights(_encoder(folder / "vae"), encoder):
            raise ValueError(
                f"{source}'s encoder is not {folder / 'vae'}'s: a decoder ships only into "
                "the latent space it was fine-tuned in (train with trainable: decoder and "
                "init the shipped model)"
            )
    with _shipping(dest) as work:
        for folder in folders:
            _copy_files(source, work / folder.name / "vae")
        report = _read_report(work)
        report["vae_decoder"] = _run_report(vae_run)
        _write_json(work / "TRAINING.json", report)
    return folders


def _own_decoder(folder: Path) -> bool:
    """Whether the model in `folder` is a student distilled through its own decoder
    (`distill_space: pixels`): another decoder would decode what it was never trained with."""
    from amodal_ros.models.layout import METADATA_KEY

    index = folder / "model_index.json"
    record = json.loads(index.read_text()).get(METADATA_KEY, {}) if index.is_file() else {}
    return record.get("student", {}).get("space") == "pixels"


def _read_report(dest: Path) -> dict:
    path = dest / "TRAINING.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_json(path: Path, data: dict) -> None:
    """Written beside and renamed: a killed run leaves the old file, never half a new one."""
    with staged_path(path) as staged:
        staged.write_text(json.dumps(data, indent=2))


def _encoder(vae: Path) -> dict:
    """The VAE's weights that make its latents: everything but the decoder's."""
    from safetensors.torch import load_file

    weights = load_file(vae / "diffusion_pytorch_model.safetensors")
    return {k: v for k, v in weights.items() if not k.startswith("decoder.")}


def _check_stage(run: Path, stage: str) -> None:
    """Refuse a run that trained another stage than the folder it ships to (a mask model
    shipped as stage 2 would load: both have 12 input channels)."""
    config = run / "train_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{run} is not a training run (no train_config.json)")
    trained = json.loads(config.read_text()).get("stage")
    if trained != stage:
        raise ValueError(f"{run} trained stage {trained!r}; {run.name}/ ships a {stage!r} run")


def _check_finished(checkpoint: Path) -> None:
    if not (checkpoint / "model_index.json").is_file():
        raise FileNotFoundError(f"{checkpoint} is not a finished checkpoint (no model_index.json)")


def _copy_checkpoint(source: Path, target: Path) -> None:
    """The loader's files of a finished checkpoint (weights and JSON configs), nothing else."""
    _check_finished(source)
    _copy_files(source, target)


def _copy_files(source: Path, target: Path) -> None:
    """`target` becomes the weights and JSON configs under `source`, once all are copied (and,
    for a whole checkpoint, its layout checks: a half-unpacked run is refused, not shipped)."""
    from amodal_ros.models.layout import check_layout

    with staged_path(target) as staged:
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in KEPT_SUFFIXES:
                copy = staged / path.relative_to(source)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
                if path.name == "config.json":  # diffusers records the training machine's path
                    config = json.loads(copy.read_text())
                    if config.pop("_name_or_path", None) is not None:
                        copy.write_text(json.dumps(config, indent=2) + "\n")
        if (source / "model_index.json").is_file():
            check_layout(staged)


@contextlib.contextmanager
def _shipping(dest: Path) -> Iterator[Path]:
    """A copy of `dest` to ship into, its shared components as copies while the body replaces
    folders and linked again after it; it replaces `dest` when the body succeeds and is removed
    when it fails."""
    with staged_path(dest) as work:
        if dest.is_dir():
            shutil.copytree(dest, work, symlinks=True)
        else:
            work.mkdir(parents=True)
        _unshare(work)
        yield work
        _share(work)


def _share(dest: Path) -> None:
    """Each folder's shared component that equals stage 1's, file for file, becomes a
    relative link to it."""
    base = dest / SHIPPED["stage1"]
    if not base.is_dir():
        return
    for folder in sorted(p for p in dest.iterdir() if p.is_dir() and p != base):
        for name in SHARED:
            mine, theirs = folder / name, base / name
            if mine.is_symlink() or not (mine.is_dir() and theirs.is_dir()):
                continue
            if _files(mine) == _files(theirs):  # the link replaces the copy in one rename
                link, old = mine.with_name(f"{name}.link"), mine.with_name(f"{name}.old")
                link.symlink_to(Path("..") / base.name / name, target_is_directory=True)
                mine.rename(old)
                link.rename(mine)
                shutil.rmtree(old)


def _unshare(dest: Path) -> None:
    """Links to stage 1's components become copies of what they point to now."""
    if not dest.is_dir():
        return
    for link in sorted(p for p in dest.glob("*/*") if p.is_symlink()):
        copy = link.with_name(f"{link.name}.copy")
        shutil.copytree(link.resolve(), copy)
        link.unlink()  # then the copy takes the link's name (a folder cannot replace a link)
        copy.rename(link)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def calibrate(stage1: Path, clips: int, config=None) -> dict:
    """Choose stage 1's mask threshold on `clips` validation clips and record it in its
    model_index.json; returns what was measured and chosen."""
    from amodal_ros.core.config import InferenceConfig, StreamConfig
    from amodal_ros.data.scenes import make_scene, split_seeds
    from amodal_ros.eval.calibrate import CRITERION, best_threshold, sweep_thresholds

    config = config or InferenceConfig()
    val = [make_scene(seed, num_frames=config.num_frames) for seed in split_seeds("val", clips)]
    scores = sweep_thresholds(StreamConfig(checkpoint=str(stage1)), config, val, progress=True)
    chosen = best_threshold(scores)
    _set_threshold(stage1, chosen)
    keys = ("mIoU", "mIoU_occ", "mIoU_occ_all", "area_ratio_median", "stray_share")
    return {
        "split": "val",
        "clips": clips,
        "steps": config.num_steps,
        "rgb_sum_threshold": chosen,
        "criterion": CRITERION,
        "scores": {t: {k: round(s[k], 3) for k in keys if k in s} for t, s in scores.items()},
    }


def _set_threshold(folder: Path, threshold: int) -> None:
    """Record the mask threshold in the folder's model_index.json defaults (the loader's)."""
    _set_defaults(folder, {"rgb_sum_threshold": threshold})


def _set_defaults(folder: Path, fields: dict) -> None:
    """Record `fields` in the folder's model_index.json defaults (what the loader runs it with)."""
    from amodal_ros.models.layout import METADATA_KEY

    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index.setdefault(METADATA_KEY, {}).setdefault("defaults", {}).update(fields)
    _write_json(index_path, index)


def _run_report(run: Path) -> dict:
    config = json.loads((run / "train_config.json").read_text())
    timing_path = run / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else []
    with open(run / "loss.csv") as f:
        rows = [(int(s), float(v)) for s, v in list(csv.reader(f))[1:]]
    tail = [v for _, v in rows[-20:]]
    return {
        "config": config,
        "sessions": timing,
        "seconds": round(sum(t["seconds"] for t in timing), 1),
        "steps": rows[-1][0] if rows else 0,
        "loss_first_logged": rows[0][1] if rows else None,
        "loss_last_20_logged_mean": round(sum(tail) / len(tail), 6) if tail else None,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m amodal_ros.train.ship`: ship stage checkpoints, a student or a decoder."""
    from amodal_ros.core.config import model_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_out", type=Path, nargs="?", default=Path("train_out"))
    parser.add_argument("--calibrate", type=int, default=0, help="validation clips (0 = none)")
    parser.add_argument("--student", type=Path, help="ship this distill output as the student")
    parser.add_argument("--decoder", type=Path, help="ship this decoder fine-tune to all folders")
    parser.add_argument("--threshold", type=int, help="a stage-1 student's threshold, as given")
    parser.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a student's default for a field the model decides (e.g. initial_noise=zeros)",
    )
    parser.add_argument(
        "--judged-by",
        type=Path,
        metavar="RUNS/NAME",
        help="a carried run whose rule passed --student: its threshold and run settings ship, "
        "its verdict is recorded (python -m amodal_ros.train.judge)",
    )
    parser.add_argument(
        "--dest", type=Path, help="the model folder to ship into (default: the embedded model)"
    )
    ns = parser.parse_args(argv)
    try:
        chosen = model_settings(ns.default, leave_out=OWN_OPTIONS)
    except ValueError as err:
        parser.error(f"--default {err}")
    if (chosen or ns.judged_by or ns.threshold is not None) and ns.student is None:
        parser.error(
            "--default, --judged-by and --threshold ship a student: give --student DISTILL_OUT"
        )
    if ns.decoder is not None and (ns.student or ns.calibrate):
        parser.error("--decoder ships a decoder alone: leave out --student and --calibrate")
    threshold, verdict = ns.threshold, None
    if ns.judged_by is not None:
        from amodal_ros.train.judge import judged_settings, shipping_verdict

        if ns.threshold is not None:
            parser.error("--judged-by gives the threshold its rule chose: leave out --threshold")
        try:
            verdict = shipping_verdict(ns.judged_by, str(ns.student / "final"))
        except (OSError, ValueError) as err:
            parser.error(f"--judged-by: {err}")
        judged = judged_settings(str(ns.student / "final"), verdict["settings"])
        unjudged = {k: v for k, v in chosen.items() if judged.get(k) != v}
        if unjudged:  # the verdict is of the settings its rule ran, and only of those
            parser.error(
                f"--judged-by ships what its rule judged, and --default {unjudged} was not "
                f"judged (the rule ran {verdict['settings'] or 'the model defaults'}): judge "
                "it with that run_settings entry in the run's plan.json instead"
            )
        threshold, chosen = verdict["threshold"], dict(verdict["settings"])
    try:
        if ns.decoder is not None:
            print(*ship_decoder(ns.decoder, ns.dest), sep="\n")
        elif ns.student is not None:
            print(ship_student(ns.student, ns.dest, ns.calibrate, threshold, chosen, verdict))
        else:
            print(ship(ns.train_out, ns.dest, calibrate_clips=ns.calibrate))
    except (OSError, ValueError) as err:  # nothing was shipped: `_shipping` keeps dest as it was
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
