"""The mask threshold is chosen on validation clips from one run of the model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.core.config import InferenceConfig, StreamConfig  # noqa: E402
from amodal_ros.data.scenes import make_scene, split_seeds  # noqa: E402
from amodal_ros.eval.calibrate import MIOU_TOLERANCE, best_threshold, sweep_thresholds  # noqa: E402


def test_the_chosen_threshold_finds_most_hidden_parts_without_costing_the_whole_mask():
    scores = {  # the shape of a real sweep: lower thresholds find more, then over-reach
        300: {"mIoU": 79.0, "mIoU_occ_all": 45.0},  # most hidden parts, whole mask 1.9 lower
        350: {"mIoU": 80.6, "mIoU_occ_all": 40.0},
        400: {"mIoU": 80.8, "mIoU_occ_all": 37.0},
        450: {"mIoU": 80.9, "mIoU_occ_all": 34.0},  # best whole mask
    }
    assert best_threshold(scores) == 350
    assert best_threshold({t: scores[t] for t in (400, 450)}) == 400
    assert best_threshold({450: scores[450]}) == 450


def test_the_sweep_scores_every_threshold_and_chooses_by_the_criterion(published_folder):
    clips = [make_scene(s, num_frames=4, height=32, width=64) for s in split_seeds("val", 2)]
    scores = sweep_thresholds(
        StreamConfig(checkpoint=str(published_folder)),
        InferenceConfig(num_frames=4, num_steps=1),
        clips,
        thresholds=(100, 400, 700),
    )
    assert set(scores) == {100, 400, 700}
    # a lower threshold marks more pixels: never a smaller predicted area
    ratios = [scores[t]["area_ratio_median"] for t in (100, 400, 700)]
    assert ratios[0] >= ratios[1] >= ratios[2]
    chosen = scores[best_threshold(scores)]
    best = max(s["mIoU"] for s in scores.values())
    close = [s for s in scores.values() if s["mIoU"] >= best - MIOU_TOLERANCE]
    assert chosen in close
    assert chosen["mIoU_occ_all"] == max(s["mIoU_occ_all"] for s in close)


def test_small_detached_parts_are_removed_at_every_threshold(published_folder):
    """As the pipeline publishes: a low threshold's specks apart from the object are not
    scored as the model's (they would be stray pixels)."""
    clips = [make_scene(s, num_frames=4, height=32, width=64) for s in split_seeds("val", 2)]
    config = InferenceConfig(num_frames=4, num_steps=1)

    def sweep(share):
        stream = StreamConfig(checkpoint=str(published_folder), detached_part_share=share)
        return sweep_thresholds(stream, config, clips, thresholds=(50, 400))

    kept, removed = sweep(0.0), sweep(0.9)  # 0.9: every part but the largest goes
    assert removed[50]["stray_share"] < kept[50]["stray_share"]  # the random model's specks
    assert removed[50]["area_ratio_median"] <= kept[50]["area_ratio_median"]


def test_the_command_prints_each_threshold_and_the_choice(published_folder, capsys):
    from amodal_ros.eval.calibrate import main

    main(
        [str(published_folder), "--preset", "fast", "--start", "3", "--clips", "1"]
        + ["--thresholds", "100,400"]
    )
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == [3, 4] and report["split"] == "val"
    assert set(report["scores"]) == {"100", "400"}
    scores = {int(t): s for t, s in report["scores"].items()}
    assert report["chosen"] == best_threshold(scores)  # the criterion's choice, not any
    assert report["best_mIoU"] == max(scores, key=lambda t: scores[t]["mIoU"])
    with pytest.raises(SystemExit):
        main([str(published_folder), "--thresholds", "high"])


def test_the_command_runs_the_model_with_the_settings_it_is_given(published_folder, capsys):
    """`--set FIELD=VALUE` over the model's defaults (a student judged from zero noise, a
    model run at another working size), each value of its field's type; the swept threshold
    and unknown fields are refused."""
    from amodal_ros.eval.calibrate import main

    def report(*sets: str) -> dict:
        argv = [str(published_folder), "--preset", "fast", "--clips", "1"]
        main(argv + ["--thresholds", "100"] + [a for s in sets for a in ("--set", s)])
        return json.loads(capsys.readouterr().out)

    small = report("height=16", "width=32")
    assert small["settings"] == {"height": 16, "width": 32}
    assert small["scores"] != report()["scores"]  # another working size, other masks
    refusals = {
        "rgb_sum_threshold=300": "an option of its own",  # the sweep's thresholds
        "mask_upsample=nearest": "an option of its own",  # the sweep upsamples smoothly
        "height=tall": "takes a whole number",
        "initial_noise=zero": "initial_noise",
        "heigth=16": "not a field this sets",
        "height": "give FIELD=VALUE",
    }
    for wrong, says in refusals.items():
        with pytest.raises(SystemExit):
            report(wrong)
        assert says in capsys.readouterr().err.splitlines()[-1]


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    from amodal_ros.eval.calibrate import main

    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "nowhere"), "--clips", "1"])
    assert exit_.value.code == 2
    assert "does not exist" in capsys.readouterr().err
    # no clips (every score NaN) and a preset's wrong case were tracebacks
    for wrong, says in {
        ("--clips", "0"): "--clips: must be >= 1, got 0",
        ("--preset", "Realtime"): "--preset: invalid choice: 'Realtime'",
    }.items():
        with pytest.raises(SystemExit) as exit_:
            main([str(tmp_path / "nowhere"), *wrong])
        assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_the_sweep_refuses_several_samples_whose_soft_score_is_a_vote():
    """With samples, `soft` is the share of samples voting for a pixel: a threshold of 400 of
    765 read it as more than 52 % of the votes, nothing to do with rgb_sum_threshold."""
    with pytest.raises(ValueError, match="num_samples must be 1, got 3"):
        sweep_thresholds(StreamConfig(checkpoint="tiny"), InferenceConfig(num_samples=3), [])
