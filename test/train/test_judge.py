"""A carried run's rule: the verdict follows its plan.json, from kept scores, without a model."""

import hashlib
import json
from pathlib import Path

import pytest

from amodal_ros.train.judge import Rule, failures, kept_path, load_plan, main, model_id, verdict

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {
    "mIoU": 81.0,
    "mIoU_occ": 48.0,
    "mIoU_occ_all": 46.0,
    "mIoU_occ_all_newest": 44.0,
    "stray_share": 1.2,
    "area_ratio_median": 1.04,
}


def _rule(**changes) -> Rule:
    raw = {
        "shipped": "shipped",
        "shipped_threshold": 400,
        "candidates": [350, 400],
        "choice": [0, 3],
        "confirm": [[10, 3], [20, 3]],
    }
    return Rule.of({**raw, **changes})


def test_a_run_passes_only_by_rising_where_it_must_and_falling_within_the_margins():
    rule = _rule()
    assert failures({**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}, SHIPPED, rule) == []
    tied = failures(SHIPPED, SHIPPED, rule)  # equal is not a rise
    assert [f.split()[0] for f in tied] == ["mIoU_occ", "mIoU_occ_all"]
    better = {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}
    assert failures({**better, "mIoU": 80.4}, SHIPPED, rule) == [
        "mIoU 80.40 more than 0.5 below 81.00"
    ]
    assert failures({**better, "mIoU": 80.5}, SHIPPED, rule) == []  # the margin itself passes
    assert failures({**better, "mIoU_occ_all_newest": float("nan")}, SHIPPED, rule)
    assert failures({**better, "stray_share": 2.1}, SHIPPED, rule) == ["stray 2.10 % over 2.0"]
    assert failures({**better, "area_ratio_median": 1.2}, SHIPPED, rule)
    costly = _rule(min_rise={"mIoU_occ_all": 1.5})  # a costlier model must gain this much
    assert failures(better, SHIPPED, costly) == ["mIoU_occ_all 47.00 not 1.5 above 46.00"]
    assert failures({**better, "mIoU_occ_all": 47.5}, SHIPPED, costly) == []


def test_an_unknown_rule_key_is_refused_not_ignored():
    with pytest.raises(ValueError, match="unknown rule keys \\['stray_limit'\\]"):
        _rule(stray_limit=3.0)


@pytest.mark.parametrize("key", ["must_rise", "min_rise", "may_fall"])
def test_a_rule_on_a_score_the_evaluation_does_not_report_is_refused_when_read(key):
    named = ["mIoU_occ_al"] if key == "must_rise" else {"mIoU_occ_al": 1.0}
    with pytest.raises(ValueError, match=f"{key} names scores .* \\['mIoU_occ_al'\\]"):
        _rule(**{key: named})
    _rule(**{key: ["mIoU_hidden"] if key == "must_rise" else {"mIoU_hidden": 1.0}})


def _checkpoint(folder: Path, weights: bytes) -> str:
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(weights)
    (folder / "model_index.json").write_text("{}")
    return str(folder)


def _keep(scores: Path, name: str, clips, thresholds: dict) -> None:
    scores.mkdir(exist_ok=True)
    kept_path(scores, name, clips, thresholds).write_text(
        json.dumps({"checkpoint": "x", "scores": thresholds})
    )


def test_the_verdict_chooses_on_the_choice_clips_and_needs_every_confirmation_set(tmp_path):
    shipped = _checkpoint(tmp_path / "shipped", b"old")
    final = _checkpoint(tmp_path / "final", b"new")
    rule = _rule(shipped=shipped)
    scores = tmp_path / "scores"
    run, old = f"run-{model_id(final)}", f"shipped-{model_id(shipped)}"
    _keep(scores, run, (0, 3), {"350": {**SHIPPED, "mIoU": 82}, "400": SHIPPED})
    for clips in rule.confirm:
        _keep(scores, old, clips, {"400": SHIPPED})
    _keep(scores, run, (10, 3), {"350": {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}})
    _keep(scores, run, (20, 3), {"350": {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 45}})
    result = verdict(rule, final, scores)  # every score kept: no model runs
    assert result["threshold"] == 350
    assert result["sets"]["val 10-12"]["failures"] == []
    assert result["sets"]["val 20-22"]["failures"] == ["mIoU_occ_all 45.00 not above 46.00"]
    assert result["ships"] is False


STAGE2 = {
    "stage": 2,
    "shipped": "s2",
    "masks": "m",
    "confirm": [[10, 3], [20, 3]],
    "must_rise": ["completion_psnr_found_db"],
    "may_fall": {"completion_ssim": 0.01},
}
COMPLETIONS = {
    "completion_psnr_db": 12.0,
    "completion_ssim": 0.50,
    "completion_psnr_found_db": 14.0,
    "completion_coverage": 80.0,
    "completion_psnr_coverage_bound_db": 14.7,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"candidates": [400]}, "takes no \\['candidates'\\]"),  # no threshold to choose
        ({"stray_max": 2.0}, "takes no \\['stray_max'\\]"),  # the masks are the same
        ({"run_settings": {"initial_noise": "zeros"}}, "takes no \\['run_settings'\\]"),
        ({"masks": None}, "missing \\['masks'\\]"),
        ({"must_rise": ["mIoU"]}, "must_rise names scores .* \\['mIoU'\\]"),
        ({"stage": 3}, "stage must be 1 \\(masks\\) or 2"),
    ],
)
def test_a_stage2_rule_names_completion_scores_and_nothing_of_the_masks(change, says):
    raw = {k: v for k, v in {**STAGE2, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=says):
        Rule.of(raw)
    assert Rule.of(STAGE2).must_rise == ("completion_psnr_found_db",)
    with pytest.raises(ValueError, match="missing \\['choice'\\]"):  # stage 1 still chooses
        Rule.of({k: v for k, v in _rule_json().items() if k != "choice"})


def test_a_stage2_verdict_compares_completions_of_the_same_masks(tmp_path):
    shipped = _checkpoint(tmp_path / "shipped", b"old")
    final = _checkpoint(tmp_path / "final", b"new")
    masks = _checkpoint(tmp_path / "masks", b"masks")
    rule = Rule.of({**STAGE2, "shipped": shipped, "masks": masks})
    scores = tmp_path / "scores"
    scores.mkdir()
    run, old = (
        f"{side}-{model_id(c)}-masks-{model_id(masks)}"
        for side, c in (("run", final), ("shipped", shipped))
    )

    def keep(name, clips, kept):
        kept_path(scores, name, clips).write_text(json.dumps({"scores": kept}))

    for clips in rule.confirm:
        keep(old, clips, COMPLETIONS)
    keep(run, (10, 3), {**COMPLETIONS, "completion_psnr_found_db": 15.0, "completion_ssim": 0.495})
    keep(run, (20, 3), {**COMPLETIONS, "completion_psnr_found_db": 14.5, "completion_ssim": 0.48})
    result = verdict(rule, final, scores)  # every score kept: no model runs
    assert result["threshold"] is None and result["masks"] == masks
    assert result["sets"]["val 10-12"]["failures"] == []
    assert result["sets"]["val 20-22"]["failures"] == [
        "completion_ssim 0.48 more than 0.01 below 0.50"
    ]
    assert result["ships"] is False


def test_a_verdict_needs_the_runs_final_checkpoint(tmp_path, capsys):
    plan = {"distill": ["--steps", "1"], "rule": _rule_json()}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(SystemExit):
        main([str(tmp_path), str(tmp_path / "checkpoint-100")])
    assert "final checkpoint folder" in capsys.readouterr().err


def _rule_json() -> dict:
    return {
        "shipped": "s",
        "shipped_threshold": 400,
        "candidates": [400],
        "choice": [0, 1],
        "confirm": [[1, 1]],
    }


@pytest.mark.parametrize("choice, confirm", [([0, 3], [[2, 3]]), ([0, 3], [[10, 3], [11, 2]])])
def test_a_rule_whose_clip_sets_overlap_is_refused_when_read(choice, confirm):
    with pytest.raises(ValueError, match="clip sets overlap"):
        Rule.of({**_rule_json(), "choice": choice, "confirm": confirm})


@pytest.mark.parametrize(
    "change, says",
    [
        ({"confirm": []}, "at least one confirm set"),
        ({"candidates": []}, "at least one confirm set and one candidate"),
        ({"confirm": [[10, 0]]}, "count >= 1"),
        ({"choice": [0]}, "count >= 1"),
        ({"confirm": [[10.5, 2]]}, "count >= 1"),  # clip numbers are whole
        ({"may_fall": {"mIoU": "1"}}, "\\['mIoU'\\] must be numbers"),  # failed after scoring
        ({"stray_max": None}, "\\['stray_max'\\] must be numbers"),
    ],
)
def test_a_rule_that_would_confirm_on_nothing_is_refused_when_read(change, says):
    with pytest.raises(ValueError, match=says):  # an empty confirm passed every run
        Rule.of({**_rule_json(), **change})
    no_confirm = {k: v for k, v in _rule_json().items() if k != "confirm"}
    with pytest.raises(ValueError, match="missing \\['confirm'\\]"):
        Rule.of(no_confirm)
    no_shipped = {k: v for k, v in _rule_json().items() if k != "shipped"}  # was a TypeError
    with pytest.raises(ValueError, match="missing \\['shipped'\\]"):
        Rule.of(no_shipped)


@pytest.mark.parametrize(
    "plan", sorted((ROOT / "runs").glob("*/plan.json")), ids=lambda p: p.parent.name
)
def test_every_carried_runs_plan_reads_and_confirms_on_clips_it_does_not_choose_on(plan):
    args, rule = load_plan(plan.parent)
    # it continues the student it is judged against
    assert args[args.index("--teacher") + 1] == rule.shipped
    chosen = set(range(rule.choice[0], sum(rule.choice)))
    for start, count in rule.confirm:
        assert chosen.isdisjoint(range(start, start + count))


def test_no_two_carried_runs_confirm_on_the_same_clips():
    """A rule confirms on clips no rule has scored: a second run on the same clips would be
    judged on clips chosen with the first's results in view."""
    confirmed = [
        set(range(start, start + count))
        for plan in (ROOT / "runs").glob("*/plan.json")
        for start, count in load_plan(plan.parent)[1].confirm
    ]
    assert len(confirmed) >= 4
    assert sum(map(len, confirmed)) == len(set().union(*confirmed))
    watched = set(range(810, 830))  # where sessions watch runs learn (runs/student1_64x128)
    assert not watched & set().union(*confirmed)


def _run_sh(tmp_path, plan: dict | None, shards: bool = False, run_json: dict | None = None):
    import subprocess

    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    if plan is not None:
        (folder / "plan.json").write_text(json.dumps(plan))
    if shards:
        (folder / "weights-00.safetensors").write_bytes(b"")
    if run_json is not None:
        (folder / "run.json").write_text(json.dumps(run_json))
    env = {"PATH": "/usr/bin:/bin", "RUNS": str(tmp_path / "runs"), "OUT": str(tmp_path / "out")}
    done = subprocess.run(
        ["bash", str(ROOT / "runs" / "run.sh"), "r"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a broken guard would start training: fail, do not wait for it
    )
    return done.returncode, done.stderr


CHECKPOINT_PACK = {"checkpoint": "checkpoint-1", "run": {}}  # pack --within's fallback


@pytest.mark.parametrize(
    "plan, shards, run_json, says",
    [
        (None, False, None, "plan.json is missing"),
        ({"distill": [], "rule": _rule_json()}, False, None, "'distill' must list"),
        (
            {"distill": ["--steps", "1"], "rule": {**_rule_json(), "x": 1}},
            False,
            None,
            "unknown rule",
        ),
        ({"distill": ["--steps", "1"], "rule": _rule_json()}, True, None, "an interrupted pack"),
        (
            {"distill": ["--steps", "1"], "rule": _rule_json()},
            True,
            CHECKPOINT_PACK,
            "a carried checkpoint, not a training state",
        ),
    ],
)
def test_run_sh_stops_before_training_on_a_broken_run_folder(
    tmp_path, plan, shards, run_json, says
):
    """A plan that does not load must not start `distill` with its defaults, and a half-packed
    state or a carried checkpoint must not be trained over."""
    returncode, stderr = _run_sh(tmp_path, plan, shards, run_json)
    assert returncode != 0 and says in stderr
    assert not (tmp_path / "out").exists()  # nothing trained, nothing unpacked


def test_the_scripts_read_a_plans_arguments_one_a_line(tmp_path, capsys):
    """What runs/run.sh and train_on_gpu.sh hand to distill: each argument whole, in order."""
    plan = {"distill": ["--teacher", "a b", "--steps", 3], "rule": _rule_json()}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert main([str(tmp_path), "--distill-args"]) == 0
    assert capsys.readouterr().out.splitlines() == ["--teacher", "a b", "--steps", "3"]


def test_scores_are_kept_per_model_not_per_weights(tmp_path):
    """The same weights run with other defaults (e.g. from zero noise) are another model."""
    first = _checkpoint(tmp_path / "a", b"same")
    second = _checkpoint(tmp_path / "b", b"same")
    assert model_id(first) == model_id(second)
    # the key of scores kept before settings existed: the weights, then the defaults' JSON
    digest = hashlib.sha256(b"same" + json.dumps({}, sort_keys=True).encode()).hexdigest()
    assert model_id(first) == model_id(first, {}) == digest[:12]
    index = {"amodal_ros": {"defaults": {"initial_noise": "zeros"}}}
    (tmp_path / "b" / "model_index.json").write_text(json.dumps(index))
    assert model_id(first) != model_id(second)


def test_a_run_is_judged_with_the_settings_its_rule_names(tmp_path):
    """A student trained from noise, judged as the shipped one runs (from zeros): its kept
    scores are those of the weights under the rule's settings, not under its own defaults."""
    shipped = _checkpoint(tmp_path / "shipped", b"old")
    final = _checkpoint(tmp_path / "final", b"new")
    settings = {"initial_noise": "zeros"}
    rule = _rule(shipped=shipped, run_settings=settings)
    assert model_id(final, settings) != model_id(final)
    scores = tmp_path / "scores"
    run, old = f"run-{model_id(final, settings)}", f"shipped-{model_id(shipped)}"
    better = {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}
    _keep(scores, run, (0, 3), {"350": SHIPPED, "400": {**SHIPPED, "mIoU": 82}})
    for clips in rule.confirm:
        _keep(scores, old, clips, {"400": SHIPPED})
        _keep(scores, run, clips, {"400": better})
    result = verdict(rule, final, scores)  # found under the settings' key: no model runs
    assert result["threshold"] == 400 and result["ships"] is True
    assert result["settings"] == settings  # what it ships with, beside the verdict
    for wrong, says in [
        ({"initial_nois": "zeros"}, "'initial_nois' is not a field"),
        ({"initial_noise": "zero"}, "initial_noise"),  # a value inference refuses
        ({"rgb_sum_threshold": 350}, "an option of its own"),  # the rule's candidates
    ]:
        with pytest.raises(ValueError, match=f"run_settings: .*{says}"):
            _rule(run_settings=wrong)
    assert _rule(run_settings={"height": "64"}).run_settings == {"height": 64}  # typed once


def test_kept_scores_are_not_reused_for_a_model_whose_decoder_changed(tmp_path, published_folder):
    """`ship --decoder` changes every folder's VAE: scores kept under the UNet's hash alone
    were reused for a model that draws other masks."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(published_folder, folder)
    before = model_id(str(folder))
    vae = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights = load_file(str(vae))
    weights["decoder.conv_out.bias"] += 0.5
    save_file(weights, str(vae))
    assert model_id(str(folder)) != before


def test_kept_scores_are_not_reused_for_clips_of_another_generator_version(tmp_path, monkeypatch):
    """The same validation seeds make other clips when the generator changes (version 2 cut
    objects by the image edge): scores kept on version 1's clips were read as today's."""
    from amodal_ros.data import clip
    from amodal_ros.train.judge import scores

    folder = tmp_path / "scores"
    monkeypatch.setattr(clip, "CLIPS_VERSION", 1)
    _keep(folder, "shipped-abc", (840, 30), {400: {"mIoU": 1.0}})
    assert (
        kept_path(folder, "shipped-abc", (840, 30), [400]).name
        == "shipped-abc_val840-869_400.json"
    )
    monkeypatch.setattr(clip, "CLIPS_VERSION", 2)
    today = kept_path(folder, "shipped-abc", (840, 30), [400])
    assert not today.exists() and today.name.endswith("_clips2.json")

    scored = []
    monkeypatch.setattr(
        "amodal_ros.eval.calibrate.validation_scores",
        lambda *args: scored.append(args) or {400: {"mIoU": 2.0}},
    )
    monkeypatch.setattr("amodal_ros.train.judge.model_id", lambda *args: "abc")
    assert scores("shipped", (840, 30), [400], folder, "shipped") == {400: {"mIoU": 2.0}}
    assert len(scored) == 1 and json.loads(today.read_text())["clips_version"] == 2


def test_a_score_at_the_bar_itself_passes_and_the_default_margins_hold():
    """The rule's bars are "at most" (stray at `stray_max` %, the area ratio at `area_max`
    pass) and a rule that names no `may_fall` lets the newest-frame score fall by 1.0, not
    more."""
    rule = _rule()
    better = {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}
    at_bars = {**better, "stray_share": rule.stray_max, "area_ratio_median": rule.area_max}
    assert failures(at_bars, SHIPPED, rule) == []
    assert failures({**better, "mIoU_occ_all_newest": 43.0}, SHIPPED, rule) == []
    assert failures({**better, "mIoU_occ_all_newest": 42.9}, SHIPPED, rule) == [
        "mIoU_occ_all_newest 42.90 more than 1.0 below 44.00"
    ]


def test_a_plan_without_distill_arguments_is_refused_by_name(tmp_path):
    """`distill` run with no arguments would train its defaults: the plan is refused, saying
    which file and what is missing."""
    (tmp_path / "plan.json").write_text(json.dumps({"distill": [], "rule": _rule_json()}))
    with pytest.raises(ValueError, match="plan.json: 'distill' must list"):
        load_plan(tmp_path)


def test_the_same_defaults_in_another_order_are_the_same_model(tmp_path):
    """A model's key is its weights and its defaults, not the order model_index.json lists
    them in: scores kept for it are found again after the file is rewritten."""
    first = _checkpoint(tmp_path / "a", b"same")
    second = _checkpoint(tmp_path / "b", b"same")
    defaults = {"initial_noise": "zeros", "rgb_sum_threshold": 400}
    for folder, order in ((first, defaults), (second, dict(reversed(defaults.items())))):
        index = {"amodal_ros": {"defaults": order}}
        (Path(folder) / "model_index.json").write_text(json.dumps(index))
    assert model_id(first) == model_id(second)


@pytest.mark.parametrize("stage", [1, 2])
def test_shipped_only_scores_the_shipped_student_on_every_confirm_set_once(
    tmp_path, monkeypatch, stage
):
    """`judge --shipped-only` (while the run trains): the shipped student is scored on each
    confirm set (at its threshold; stage 2 filling the rule's masks) and kept under the run
    folder's new scores/, where the verdict reads it; a second call scores nothing again."""
    shipped = _checkpoint(tmp_path / "shipped", b"old")
    masks = _checkpoint(tmp_path / "masks", b"masks")
    run = tmp_path / "runs" / "r"  # a new run folder: no scores/ yet
    run.mkdir(parents=True)
    if stage == 1:
        rule = {**_rule_json(), "shipped": shipped, "confirm": [[10, 3], [20, 3]]}
    else:
        rule = {**STAGE2, "shipped": shipped, "masks": masks}
    (run / "plan.json").write_text(json.dumps({"distill": ["--steps", "1"], "rule": rule}))
    scored = []

    def score(*args):
        scored.append(args)
        return COMPLETIONS if stage == 2 else {400: SHIPPED}

    monkeypatch.setattr("amodal_ros.eval.calibrate.validation_scores", score)
    monkeypatch.setattr("amodal_ros.eval.run.validation_completion_scores", score)
    assert main([str(run), "--shipped-only"]) == 0
    if stage == 1:
        assert scored == [(shipped, "realtime", 10, 3, (400,), None)] + [
            (shipped, "realtime", 20, 3, (400,), None)
        ]
        name = f"shipped-{model_id(shipped)}"
        kept = [kept_path(run / "scores", name, c, (400,)) for c in ((10, 3), (20, 3))]
    else:
        assert scored == [(shipped, masks, 10, 3), (shipped, masks, 20, 3)]
        name = f"shipped-{model_id(shipped)}-masks-{model_id(masks)}"
        kept = [kept_path(run / "scores", name, c) for c in ((10, 3), (20, 3))]
    for path in kept:
        record = json.loads(path.read_text())
        assert record["checkpoint"] == shipped
        assert record["scores"] == (COMPLETIONS if stage == 2 else {"400": SHIPPED})
        assert record.get("settings", {}) == {}  # the shipped student's own defaults
    assert main([str(run), "--shipped-only"]) == 0
    assert len(scored) == 2  # read back, not scored again


def test_the_verdict_command_prints_the_rules_decision(tmp_path, capsys):
    """`judge runs/NAME FINAL` prints the verdict as JSON (from the run's kept scores) and
    exits 0 whether or not the run ships: the decision is in what it prints."""
    shipped = _checkpoint(tmp_path / "shipped", b"old")
    final = _checkpoint(tmp_path / "final", b"new")
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    rule = {**_rule_json(), "shipped": shipped, "candidates": [350, 400], "choice": [0, 3]}
    rule["confirm"] = [[10, 3]]
    (run / "plan.json").write_text(json.dumps({"distill": ["--steps", "1"], "rule": rule}))
    scores, better = run / "scores", {**SHIPPED, "mIoU_occ": 49, "mIoU_occ_all": 47}
    _keep(
        scores, f"run-{model_id(final)}", (0, 3), {"350": {**SHIPPED, "mIoU": 82}, "400": SHIPPED}
    )
    _keep(scores, f"shipped-{model_id(shipped)}", (10, 3), {"400": SHIPPED})
    _keep(scores, f"run-{model_id(final)}", (10, 3), {"350": better})
    assert main([str(run), final]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["threshold"] == 350 and printed["ships"] is True
    assert printed["sets"]["val 10-12"]["run"] == better
