"""Judge a carried training run by the rule written in its `runs/NAME/plan.json` before any
result, so the decision is the rule's and not a reading of the numbers afterwards.

A plan holds the run's `distill` arguments (what `runs/run.sh NAME` runs) and its rule: the
mask threshold is the candidate with the best whole-mask mIoU on the `choice` validation
clips; the run replaces the shipped student only if, on every `confirm` set of validation
clips no rule has scored, against the shipped student at its threshold, each `must_rise`
score rises (each `min_rise` score by at least its margin: the price of a costlier model),
each `may_fall` score falls by at most its margin, stray area stays at most `stray_max` % and
the median area ratio at most `area_max`; `run_settings` names inference fields the run's
student is judged with (as it would ship: `ship --default`). Each model's scores are kept as
JSON under the run's `scores/` (keyed by its weights and defaults; commit them), so a session
can score the shipped student while the run trains and the next one only the run's final
weights.

A stage-2 run's rule (`"stage": 2`) judges a completion student: it and the shipped one
(`shipped`, embedded/student2) each fill the masks of the same stage-1 student (`masks`) on
every `confirm` set, scored by `eval`'s completion scores (`must_rise`, `min_rise` and
`may_fall` name those); it has no threshold to choose and no mask bars.

Usage, from the project root:
    python -m amodal_ros.train.judge runs/NAME train_out/NAME/final
    python -m amodal_ros.train.judge runs/NAME --shipped-only   # ahead of time
    python -m amodal_ros.train.judge runs/NAME --distill-args   # one a line, for the scripts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

PLAN = "plan.json"


STAGE_ONE_NEEDED = ("shipped_threshold", "candidates", "choice")  # its threshold choice
STAGE_ONE_ONLY = (*STAGE_ONE_NEEDED, "stray_max", "area_max")  # and its mask bars


@dataclass(frozen=True)
class Rule:
    """A run's shipping rule (`plan.json`'s "rule"); clip ranges are (start, count). A
    stage-1 rule chooses a threshold among `candidates` on the `choice` clips; a stage-2 rule
    compares completions of the stage-1 student `masks`."""

    shipped: str
    confirm: tuple[tuple[int, int], ...]
    stage: int = 1
    masks: str = ""
    shipped_threshold: int = 0
    candidates: tuple[int, ...] = ()
    choice: tuple[int, int] = (0, 0)
    must_rise: tuple[str, ...] = ("mIoU_occ", "mIoU_occ_all")
    may_fall: dict[str, float] = field(
        default_factory=lambda: {"mIoU": 0.5, "mIoU_occ_all_newest": 1.0}
    )
    stray_max: float = 2.0
    area_max: float = 1.15
    min_rise: dict[str, float] = field(default_factory=dict)
    run_settings: dict[str, str | int] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: dict) -> Rule:
        """The rule from its JSON form; a key the rule does not know (or not at its stage), a
        score the evaluation does not report, or a run setting the sweep does not take, is an
        error when the plan is read, not after the scoring."""
        from amodal_ros.core.config import model_settings
        from amodal_ros.eval.calibrate import SWEPT
        from amodal_ros.eval.metrics import COMPLETION_SCORES, mean_scores

        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{PLAN}: unknown rule keys {sorted(unknown)}")
        stage = raw.get("stage", 1)
        if stage == 1:
            needed, refused = set(STAGE_ONE_NEEDED), {"masks"}
            names = set(mean_scores([]))
        elif stage == 2:  # the same masks on both sides (settings would change them too)
            needed = {"masks", "must_rise", "may_fall"}
            refused = {*STAGE_ONE_ONLY, "run_settings"}
            names = set(COMPLETION_SCORES)
        else:
            raise ValueError(f"{PLAN}: stage must be 1 (masks) or 2 (completions), got {stage!r}")
        needed |= {"confirm", "shipped"}  # a verdict with nothing to confirm on passes any run
        missing, extra = sorted(needed - set(raw)), sorted(refused & set(raw))
        if missing or extra:
            raise ValueError(
                f"{PLAN}: a stage-{stage} rule needs {sorted(needed)}"
                + (f" (missing {missing})" if missing else "")
                + (f" and takes no {extra}" if extra else "")
            )
        for key in ("must_rise", "min_rise", "may_fall"):
            unscored = sorted(set(raw.get(key, ())) - names)
            if unscored:
                raise ValueError(
                    f"{PLAN}: {key} names scores the evaluation does not report: {unscored}"
                    f" (it reports {sorted(names)})"
                )
        margins = {**raw.get("may_fall", {}), **raw.get("min_rise", {})}
        bars = {k: raw[k] for k in ("stray_max", "area_max") if k in raw}
        wrong = sorted(
            k
            for k, v in {**margins, **bars}.items()
            if isinstance(v, bool) or not isinstance(v, (int, float))
        )
        if wrong:  # a string margin failed only inside the verdict, after the scoring
            raise ValueError(f"{PLAN}: {wrong} must be numbers")
        try:
            settings = model_settings(raw.get("run_settings", {}), leave_out=SWEPT)
        except ValueError as err:
            raise ValueError(f"{PLAN}: run_settings: {err}") from None
        tuples = {"confirm": tuple(map(tuple, raw["confirm"]))}
        tuples |= {k: tuple(raw[k]) for k in ("choice", "candidates", "must_rise") if k in raw}
        sets = [tuples["choice"]] if "choice" in tuples else []
        if not tuples["confirm"] or tuples.get("candidates") == ():  # stage 2 has none
            raise ValueError(f"{PLAN}: a rule needs at least one confirm set and one candidate")
        for clip_set in [*sets, *tuples["confirm"]]:
            whole = all(isinstance(n, int) and not isinstance(n, bool) for n in clip_set)
            if len(clip_set) != 2 or not whole or clip_set[1] < 1:
                raise ValueError(
                    f"{PLAN}: a clip set is [first clip, count >= 1], got {list(clip_set)}"
                )
        clips = [set(range(start, start + count)) for start, count in [*sets, *tuples["confirm"]]]
        if sum(map(len, clips)) != len(set().union(*clips)):  # a set scored twice says nothing new
            raise ValueError(
                f"{PLAN}: the rule's clip sets overlap ({list(tuples.get('choice', ()))} and "
                f"{[list(c) for c in tuples['confirm']]}): each confirms on clips no other "
                "set of the rule scored"
            )
        return cls(**{**raw, **tuples, "run_settings": settings})


def load_plan(run_folder: Path) -> tuple[list[str], Rule]:
    """A run folder's `distill` arguments and rule. No arguments is an error: `distill`
    would run its defaults."""
    plan = json.loads((run_folder / PLAN).read_text())
    args = plan.get("distill")
    if not args or not isinstance(args, list):
        raise ValueError(f"{run_folder / PLAN}: 'distill' must list the run's distill arguments")
    return [str(a) for a in args], Rule.of(plan["rule"])


def failures(run: dict, shipped: dict, rule: Rule) -> list[str]:
    """What the run's scores on one confirmation set break of the rule (empty: it passes).
    A NaN (nothing to score) fails every comparison."""
    broken = [
        f"{key} {run[key]:.2f} not above {shipped[key]:.2f}"
        for key in rule.must_rise
        if not run[key] > shipped[key]
    ]
    broken += [
        f"{key} {run[key]:.2f} not {margin} above {shipped[key]:.2f}"
        for key, margin in rule.min_rise.items()
        if not run[key] >= shipped[key] + margin
    ]
    broken += [
        f"{key} {run[key]:.2f} more than {margin} below {shipped[key]:.2f}"
        for key, margin in rule.may_fall.items()
        if not run[key] >= shipped[key] - margin
    ]
    if rule.stage == 2:  # the same masks on both sides
        return broken
    if not run["stray_share"] <= rule.stray_max:
        broken.append(f"stray {run['stray_share']:.2f} % over {rule.stray_max}")
    if not run["area_ratio_median"] <= rule.area_max:
        broken.append(f"area ratio {run['area_ratio_median']:.3f} over {rule.area_max}")
    return broken


def scores(
    checkpoint: str,
    clips: tuple[int, int],
    thresholds,
    folder: Path,
    shipped: str,
    settings: dict[str, str | int] | None = None,
) -> dict[int, dict[str, float]]:
    """{threshold: mean scores} of `checkpoint` (preset realtime, with `settings` over its
    defaults) on validation `clips`, read from `folder` when scored before, else scored and
    kept there."""
    from amodal_ros.eval.calibrate import validation_scores

    name = f"{'shipped' if checkpoint == shipped else 'run'}-{model_id(checkpoint, settings)}"
    path = kept_path(folder, name, clips, thresholds)
    kept = _kept(
        path,
        lambda: validation_scores(checkpoint, "realtime", *clips, thresholds, settings),
        {"checkpoint": checkpoint, "settings": settings or {}},
    )
    return {int(t): s for t, s in kept.items()}


def completion_scores(checkpoint: str, clips: tuple[int, int], folder: Path, rule: Rule):
    """Stage 2's completion scores of `checkpoint` filling `rule.masks`'s masks on validation
    `clips`, read from `folder` when scored before, else scored and kept there."""
    from amodal_ros.eval.run import validation_completion_scores

    side = "shipped" if checkpoint == rule.shipped else "run"
    name = f"{side}-{model_id(checkpoint)}-masks-{model_id(rule.masks)}"
    return _kept(
        kept_path(folder, name, clips),
        lambda: validation_completion_scores(checkpoint, rule.masks, *clips),
        {"checkpoint": checkpoint, "masks": rule.masks},
    )


def _kept(path: Path, score, about: dict) -> dict:
    """The "scores" kept at `path`, or `score()`'s, kept there with `about` beside them."""
    if path.is_file():
        return json.loads(path.read_text())["scores"]
    from amodal_ros.core.staging import staged_path
    from amodal_ros.data.clip import CLIPS_VERSION

    result = score()
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {**about, "clips_version": CLIPS_VERSION, "scores": result}
    with staged_path(path) as staged:
        staged.write_text(json.dumps(kept, indent=1))
    return result


def kept_path(folder: Path, name: str, clips: tuple[int, int], thresholds=()) -> Path:
    """Where model `name`'s scores on validation `clips` (start, count) are kept: one file per
    model, clip set, threshold list (none for completions) and the generator's version of the
    clips (the same seeds make other clips in another version; version 1's files keep their
    names)."""
    from amodal_ros.data.clip import CLIPS_VERSION

    swept = f"_{'-'.join(map(str, thresholds))}" if thresholds else ""
    version = f"_clips{CLIPS_VERSION}" if CLIPS_VERSION > 1 else ""
    return folder / f"{name}_val{_clip_range(clips)}{swept}{version}.json"


def _clip_range(clips: tuple[int, int]) -> str:
    """'first-last' of validation `clips` (start, count), as kept files and verdicts name
    them."""
    return f"{clips[0]}-{clips[0] + clips[1] - 1}"


def judged_settings(checkpoint: str, settings: dict[str, str | int] | None = None) -> dict:
    """The defaults a checkpoint is scored with: its own (model_index.json), `settings` over
    them."""
    index = json.loads((Path(checkpoint) / "model_index.json").read_text())
    return {**index.get("amodal_ros", {}).get("defaults", {}), **(settings or {})}


def model_id(checkpoint: str, settings: dict[str, str | int] | None = None) -> str:
    """The start of the SHA-256 of the UNet and VAE weights and the defaults the model runs
    with (threshold, ensembles, initial noise; `settings` over its own): scores kept for
    another model are not these (`ship --decoder` changes the VAE of every folder; since
    2026-12-05, so scores kept before are not reused)."""
    folder = Path(checkpoint)
    defaults = json.dumps(judged_settings(checkpoint, settings), sort_keys=True)
    digest = hashlib.sha256((folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes())
    for weights in sorted((folder / "vae").glob("*.safetensors")):
        digest.update(weights.read_bytes())
    digest.update(defaults.encode())
    return digest.hexdigest()[:12]


def verdict(rule: Rule, final: str, folder: Path) -> dict:
    """The rule applied to the run's final checkpoint: its threshold, each confirmation set's
    scores and failures, and whether it ships."""
    if rule.stage == 2:
        return _completion_verdict(rule, final, folder)
    choice = scores(final, rule.choice, rule.candidates, folder, rule.shipped, rule.run_settings)
    threshold = max(rule.candidates, key=lambda t: _or_lowest(choice[t]["mIoU"]))
    result: dict = {
        "threshold": threshold,
        "settings": rule.run_settings,
        "choice": {f"val {_clip_range(rule.choice)}": choice},
        "sets": {},
    }
    for clips in rule.confirm:
        run = scores(final, clips, (threshold,), folder, rule.shipped, rule.run_settings)
        run = run[threshold]
        old = scores(rule.shipped, clips, (rule.shipped_threshold,), folder, rule.shipped)
        result["sets"][f"val {_clip_range(clips)}"] = {
            "run": run,
            "shipped": old[rule.shipped_threshold],
            "failures": failures(run, old[rule.shipped_threshold], rule),
        }
    result["ships"] = not any(s["failures"] for s in result["sets"].values())
    return result


def _completion_verdict(rule: Rule, final: str, folder: Path) -> dict:
    """A stage-2 rule applied: each confirmation set's completion scores of the run and the
    shipped student, on the same masks, and whether it ships (no threshold: None)."""
    result: dict = {"threshold": None, "settings": {}, "masks": rule.masks, "sets": {}}
    for clips in rule.confirm:
        run = completion_scores(final, clips, folder, rule)
        old = completion_scores(rule.shipped, clips, folder, rule)
        result["sets"][f"val {_clip_range(clips)}"] = {
            "run": run,
            "shipped": old,
            "failures": failures(run, old, rule),
        }
    result["ships"] = not any(s["failures"] for s in result["sets"].values())
    return result


def shipping_verdict(run_folder: Path, final: str) -> dict:
    """The verdict of `run_folder`'s rule on `final` (its kept scores read, not redone) with
    the run folder named; an error, saying what failed, unless the rule ships it."""
    _, rule = load_plan(run_folder)
    result = verdict(rule, final, run_folder / "scores")
    if not result["ships"]:
        failed = {name: s["failures"] for name, s in result["sets"].items() if s["failures"]}
        raise ValueError(f"{run_folder}'s rule does not ship {final}: {failed}")
    return {"run": str(run_folder), **result}


def _or_lowest(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def main(argv: list[str] | None = None) -> int:
    """Print the verdict as JSON (or, with --shipped-only, score the shipped student only;
    with --distill-args, print the plan's distill arguments one a line: what runs/run.sh and
    scripts/train_on_gpu.sh train)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path, help=f"runs/NAME, holding {PLAN}")
    parser.add_argument("final", nargs="?", help="the run's final checkpoint folder")
    parser.add_argument("--shipped-only", action="store_true", help="score the shipped student")
    parser.add_argument("--distill-args", action="store_true", help="print the plan's arguments")
    ns = parser.parse_args(argv)
    args, rule = load_plan(ns.run_folder)
    if ns.distill_args:
        print(*args, sep="\n")
        return 0
    folder = ns.run_folder / "scores"
    if ns.shipped_only:
        for clips in rule.confirm:
            if rule.stage == 2:
                completion_scores(rule.shipped, clips, folder, rule)
            else:
                scores(rule.shipped, clips, (rule.shipped_threshold,), folder, rule.shipped)
        return 0
    if not ns.final or not (Path(ns.final) / "model_index.json").is_file():
        parser.error("give the run's final checkpoint folder (its final weights only)")
    print(json.dumps(verdict(rule, ns.final, folder), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
