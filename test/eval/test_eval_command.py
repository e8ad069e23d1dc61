"""`amodal-ros eval` end to end on a tiny run: baselines and a tiny model on the same clips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from amodal_ros.cli.main import main
from amodal_ros.core.config import InferenceConfig, StreamConfig
from amodal_ros.data.scenes import make_scene, split_seeds, write_clip_folder
from amodal_ros.eval.baselines import BASELINES
from amodal_ros.eval.metrics import (
    average_precision,
    box_detections,
    frame_iou,
    mean_scores,
    score_window,
)
from amodal_ros.eval.run import clip_window
from amodal_ros.pipeline.processor import WindowProcessor

pytestmark = pytest.mark.slow  # starts whole commands on real files


def processor_answers(checkpoint, **inference):
    """(clip, object id, the node's processor's per-frame answers for it, or None where the
    object is never visible and nothing runs) over the 5 test clips, as eval runs them."""
    processor = WindowProcessor.from_config(
        StreamConfig(checkpoint=str(checkpoint), publish_frames="new"),
        InferenceConfig(num_frames=4, num_steps=1, height=32, width=64, **inference),
    )
    for seed in split_seeds("test", 5):
        clip = make_scene(seed, num_frames=4, height=32, width=64)
        visible = [i for i in clip.target_ids if clip.modal(i).any()]
        processor.reset()
        frames = processor.process(clip_window(clip, visible)) if visible else []
        for i in clip.target_ids:
            answers = [f.objects[visible.index(i)] for f in frames] if i in visible else None
            yield clip, i, answers


def pooled_ap(dets) -> float:
    """AP over every window's `box_detections`, pooled as eval pools them."""
    return average_precision(
        [s for d in dets for s in d[0]], [h for d in dets for h in d[1]], sum(d[2] for d in dets)
    )


def test_eval_scores_model_and_baselines_on_the_same_clips(
    tmp_path, published_folder, stage2_folder, capsys
):
    out = tmp_path / "eval"
    # 5 clips: the first two test clips have no occluded region at 32x64 (nothing to complete)
    args = ["eval", "--out", str(out), "--clips", "5", "--num-frames", "4", "--no-progress"]
    args += ["--clip-height", "32", "--clip-width", "64", "--height", "32", "--width", "64"]
    args += ["--checkpoint", str(published_folder), "--steps", "1", "--samples", "2"]
    args += ["--rgb-sum-threshold", "380"]  # where the tiny model's two samples differ
    assert main([*args, "--completion-checkpoint", str(stage2_folder)]) == 0
    summary = json.loads((out / "results.json").read_text())
    results = summary["results"]
    assert list(results) == [*BASELINES, "convex_hull_carved", "model"]
    model = results["model"]
    assert 0 <= model["mIoU"] <= 100 and 0 <= model["top2_mIoU"] <= 100
    assert model["completion_ssim"] <= 1.0 and model["completion_psnr_db"] > 0
    # stage 2 where the mask covers the hidden part, and how much of it the mask covers
    assert 0 <= model["completion_coverage"] <= 100 and "completion_psnr_found_db" in model
    # the simplest completion behind the same masks, stage 2's baseline
    assert model["mean_colour_completion_psnr_db"] > 0
    assert "mean_colour_completion_psnr_found_db" in model
    # ... its own scores, not stage 2's again
    assert model["mean_colour_completion_psnr_db"] != model["completion_psnr_db"]
    # the baseline rows are exactly what the metrics give on the same fixed test clips
    windows, modal_windows = [], []
    for seed in split_seeds("test", 5):
        clip = make_scene(seed, num_frames=4, height=32, width=64)
        for i in clip.target_ids:
            windows.append(score_window(clip.modal(i), clip.amodal[i], clip.modal(i)))
            modal_windows.append((clip.modal(i), clip.amodal[i]))
    expected = mean_scores(windows)
    assert results["modal"]["mIoU"] == pytest.approx(expected["mIoU"])
    # AP50 of the modal boxes: one operating point, from the per-frame box hits
    dets = [box_detections(w_pred, w_gt) for w_pred, w_gt in modal_windows]
    assert results["modal"]["AP50_box"] == pytest.approx(100.0 * pooled_ap(dets))
    # the reference's AP50: true boxes matched, no ranking
    hits, num_gt = sum(h for d in dets for h in d[1]), sum(d[2] for d in dets)
    assert results["modal"]["box_hit50"] == pytest.approx(100.0 * hits / num_gt)
    # the model's rows from what the node's processor answers: the best of its 2 samples per
    # window, and its boxes ranked by the mean soft score inside each frame's mask
    best, model_dets, differ = [], [], 0
    for clip, i, answers in processor_answers(
        published_folder, num_samples=2, rgb_sum_threshold=380
    ):
        if answers is None:
            model_dets.append(box_detections(clip.modal(i), clip.amodal[i]))
            continue
        amodal, soft = np.stack([o.amodal for o in answers]), np.stack([o.soft for o in answers])
        hypotheses = np.stack([o.samples for o in answers], axis=1)  # [2, T, H, W]
        # the best sample's frames, OR-ed with the modal input and pooled as mIoU pools them
        ious = [frame_iou(h | clip.modal(i), clip.amodal[i]) for h in hypotheses]
        top = max(ious, key=np.nanmean)
        best.extend(top[np.isfinite(top)])
        differ += int((hypotheses[0] != hypotheses[1]).sum())
        mean_soft = [soft[t][amodal[t]].mean() if amodal[t].any() else 0.0 for t in range(4)]
        model_dets.append(box_detections(amodal, clip.amodal[i], np.array(mean_soft)))
    assert differ > 0 and model["top2_mIoU"] == pytest.approx(100.0 * np.mean(best))
    assert results["model"]["AP50_box"] == pytest.approx(100.0 * pooled_ap(model_dets))
    assert summary["windows"] == len(windows)
    # the record says which model, at which size, made the model row
    assert summary["model"].startswith(f"{published_folder} at 32x64 (HxW)")
    table = (out / "results.md").read_text()
    assert "| model |" in table and f"{expected['mIoU']:.2f}" in table
    assert "| model |" in capsys.readouterr().out
    grid = cv2.imread(str(out / "examples.png"))
    assert grid.shape[1] == 64 * (
        2 + len(BASELINES) + 2
    )  # RGB, truth, methods (the hull carved too)


def test_eval_scores_a_student_at_one_and_two_evaluations(tmp_path, published_folder):
    """The student rows run the distilled model (here the untrained student of 'tiny') at 1
    and 2 UNet evaluations on the same clips as the teacher."""
    out = tmp_path / "eval"
    # 5 clips: the first two have nothing to complete
    args = ["eval", "--out", str(out), "--clips", "5", "--num-frames", "4", "--no-progress"]
    args += ["--clip-height", "32", "--clip-width", "64", "--height", "32", "--width", "64"]
    # a low threshold: the untrained model's masks reach past the visible ones
    args += ["--checkpoint", str(published_folder), "--steps", "1", "--rgb-sum-threshold", "200"]
    args += ["--student-checkpoint"]
    # with a completion checkpoint, the student rows run its student too
    assert main([*args, "tiny", "--completion-checkpoint", "tiny"]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["results"]) == [
        *BASELINES,
        "convex_hull_carved",
        "model",
        "student-1",
        "student-2",
    ]
    assert summary["student"] == "tiny"
    for row in ("model", "student-1", "student-2"):
        assert 0 <= summary["results"][row]["mIoU"] <= 100
        assert summary["results"][row]["completion_psnr_db"] > 0
    # the model row scores what the node's processor answers on the same clips (a row of the
    # visible masks passed the ranges above)
    windows = []
    for clip, i, answers in processor_answers(published_folder, rgb_sum_threshold=200):
        pred = np.stack([o.amodal for o in answers]) if answers else clip.modal(i)
        windows.append(score_window(pred, clip.amodal[i], clip.modal(i), clip.visible[i]))
    model = summary["results"]["model"]
    assert model["mIoU"] == pytest.approx(mean_scores(windows)["mIoU"])
    assert model["mIoU"] != summary["results"]["modal"]["mIoU"]
    assert "| student-2 |" in (out / "results.md").read_text()
    # one step count only: the row preset realtime runs, the same scores at half the cost
    one = tmp_path / "one"
    only = [*args, "tiny", "--completion-checkpoint", "tiny", "--student-steps", "1"]
    assert main([*only[:2], str(one), *only[3:]]) == 0
    alone = json.loads((one / "results.json").read_text())["results"]
    assert list(alone) == [*BASELINES, "convex_hull_carved", "model", "student-1"]
    assert alone["student-1"] == pytest.approx(summary["results"]["student-1"])
    # a folder that is not a student is refused with the command that makes one
    assert main([*args, str(published_folder)]) == 2


def test_a_stage2_rule_scores_the_completions_eval_reports(tmp_path):
    """What a stage-2 shipping rule scores on validation clips (`validation_completion_scores`)
    is `eval`'s student-1 completion row on the same clips: one path through the models."""
    from amodal_ros.eval.metrics import COMPLETION_SCORES
    from amodal_ros.eval.run import validation_completion_scores

    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--split", "val", "--start", "3", "--clips", "3"]
    args += ["--num-frames", "4", "--no-progress", "--checkpoint", "", "--examples", "0"]
    args += ["--student-checkpoint", "tiny", "--completion-checkpoint", "tiny"]
    assert main([*args, "--student-steps", "1"]) == 0
    row = json.loads((out / "results.json").read_text())["results"]["student-1"]
    scored = validation_completion_scores("tiny", "tiny", 3, 3, {"num_frames": 4})
    assert list(scored) == list(COMPLETION_SCORES)
    assert scored == pytest.approx({key: row[key] for key in COMPLETION_SCORES})
    assert 0 < scored["completion_coverage"] <= 100


def test_a_hidden_pixel_the_mask_misses_is_scored_white_whatever_stage_2_paints():
    """`eval` scores a completion as the node shows it, through its alpha (the predicted
    mask): what the decoder paints past the mask is never seen, so on the hidden pixels the
    mask misses the error is white's, the same behind any stage 2 (a true coverage bound)."""
    from amodal_ros.core.config import InferenceConfig, StreamConfig
    from amodal_ros.eval.metrics import completion_errors, occluded_region
    from amodal_ros.eval.run import _run_model
    from amodal_ros.pipeline.processor import WindowProcessor

    config = InferenceConfig(preset="realtime", num_frames=4, height=32, width=64)
    stream = StreamConfig(checkpoint="tiny", completion_checkpoint="tiny", publish_frames="new")
    processor = WindowProcessor.from_config(stream, config)
    missed_pixels = 0
    for seed in split_seeds("val", 6):
        clip = make_scene(seed, num_frames=4, height=32, width=64)
        predictions, _, _, pairs = _run_model(clip, processor)
        hidden = {i: occluded_region(clip.visible[i], clip.amodal[i]) for i in predictions}
        scored = [i for i in clip.target_ids if clip.modal(i).any() and hidden[i].any()]
        assert len(pairs) == len(scored)
        for i, both in zip(scored, pairs):
            missed = hidden[i] & ~predictions[i]
            truth = clip.appearance[i][..., :3]
            white = completion_errors(np.full_like(truth, 255), truth, missed, clip.amodal[i])
            expected = 0.0 if white is None else white[0]
            for every, found in both:  # stage 2's, and the mean colour's behind the same masks
                assert every[0] - (found[0] if found else 0.0) == pytest.approx(expected)
            missed_pixels += int(missed.sum())
    assert missed_pixels > 0  # the clips test what they are meant to


def test_eval_reads_clip_folders(tmp_path, capsys):
    for seed in (3, 4, 5):
        write_clip_folder(
            make_scene(seed, num_frames=5, height=32, width=64), tmp_path / f"c{seed}"
        )
    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--data", str(tmp_path), "--no-progress", "--clips", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "scoring folders 1-2 of the 3 clip folders" in err
    # training clips: scored (how well a model fits), but said, in the log and the results
    assert "are of the train split: their scores say how well the model fits" in err
    assert "earlier generator" not in err
    summary = json.loads((out / "results.json").read_text())
    assert summary["split"] == "data folder (train)" and summary["clips_version"] == [2]
    assert "(data folder (train), clips version 2)" in (out / "results.md").read_text()
    assert summary["clips"] == 2 and summary["results"]["modal"]["frames_occ"] == 0
    assert summary["results"]["modal"]["mIoU_occ"] is None  # no counted frame: null, not NaN
    assert np.isfinite(summary["results"]["interpolation"]["mIoU"])
    # --start skips folders (fresh clips for a choice made on the first ones)
    assert main([*args, "--start", "2"]) == 0
    err = capsys.readouterr().err
    assert "scoring folders 3-3 of the 3" in err
    assert "holds 3 clip folders: scoring 1 from --start 2, not the 2 of --clips" in err
    summary = json.loads((out / "results.json").read_text())
    assert summary["clips"] == 1 and summary["start"] == 2
    assert main([*args, "--start", "3"]) == 2
    assert "--start 3 is past the 3 clip folders" in capsys.readouterr().err
    # folders of the generator before it recorded its version (the clips changed since)
    meta = json.loads((tmp_path / "c3" / "meta.json").read_text())
    del meta["clips_version"]
    (tmp_path / "c3" / "meta.json").write_text(json.dumps(meta))
    assert main(args) == 0
    assert "written by an earlier generator (clips version 1; today's is 2" in (
        capsys.readouterr().err
    )
    assert json.loads((out / "results.json").read_text())["clips_version"] == [1, 2]
    # train and test clips synthesised into one folder would be scored together
    write_clip_folder(make_scene(10**6, num_frames=5, height=32, width=64), tmp_path / "t0")
    assert main([*args, "--clips", "4"]) == 2
    assert "several splits (1 test, 3 train)" in capsys.readouterr().err
    (tmp_path / "t0" / "meta.json").unlink()
    # a model runs each clip as one window of its length: 5 frames are no 25-frame window
    assert main([*args, "--checkpoint", "tiny"]) == 2
    assert "c3 has 5 frames, but eval scores each clip as one window of --num-frames 25" in (
        capsys.readouterr().err
    )
    # so does a student alone (no teacher checkpoint)
    assert main([*args, "--checkpoint", "", "--student-checkpoint", "tiny"]) == 2
    assert "c3 has 5 frames, but eval scores each clip as one window" in capsys.readouterr().err
    # a user's own clip may name its seed in any way: of no split (a TypeError traceback)
    for seed in (3, 4, 5):
        meta = json.loads((tmp_path / f"c{seed}" / "meta.json").read_text())
        meta["seed"] = f"kitchen-{seed}"
        (tmp_path / f"c{seed}" / "meta.json").write_text(json.dumps(meta))
    assert main(args) == 0
    assert json.loads((out / "results.json").read_text())["split"] == "data folder (other)"


def test_eval_without_clips_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--out", str(tmp_path / "o"), "--data", str(tmp_path)]) == 2
    assert "no clip folders" in capsys.readouterr().err
    assert main(["eval", "--out", str(tmp_path / "o"), "--data", str(tmp_path / "nope")]) == 2
    assert "is no folder: pass a folder of clip folders" in capsys.readouterr().err
    # options of generated clips do nothing with --data: refused, not ignored
    data = ["eval", "--out", str(tmp_path / "o"), "--data", str(tmp_path)]
    assert main([*data, "--split", "val", "--clip-height", "64"]) == 2
    assert "--split, --clip-height choose generated clips" in capsys.readouterr().err


def test_an_out_eval_cannot_write_is_refused_before_any_clip_is_scored(tmp_path, capsys):
    """A file or another program's results.md at --out failed after the whole run (an hour
    for the README's), or was replaced without a word."""
    args = ["eval", "--clips", "1", "--num-frames", "4", "--no-progress"]
    (tmp_path / "file").write_text("mine")
    assert main([*args, "--out", str(tmp_path / "file")]) == 2
    assert "is a file; eval writes a folder" in capsys.readouterr().err
    mine = tmp_path / "report"
    mine.mkdir()
    (mine / "results.md").write_text("my notes")
    assert main([*args, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "holds results.md that no earlier eval wrote" in err
    assert (mine / "results.md").read_text() == "my notes"
    # another tool's results.json (lm-evaluation-harness writes one) is no eval's
    (mine / "results.json").write_text('{"results": {"task": 0.5}}')
    assert main([*args, "--out", str(mine)]) == 2
    assert "holds results.md, results.json that no earlier eval wrote" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "file" / "sub")]) == 2  # under a file
    assert "is no folder it can write" in capsys.readouterr().err


def test_eval_start_scores_the_later_clips_of_a_split(tmp_path):
    """--start N scores the split's clips from index N on (fresh clips to confirm a choice),
    the same seeds as `amodal-ros synth --start N`, and says so."""
    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--clips", "2", "--start", "3", "--split", "val"]
    args += ["--num-frames", "4", "--clip-height", "32", "--clip-width", "64", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "results.json").read_text())
    windows = []
    for seed in split_seeds("val", 2, 3):
        clip = make_scene(seed, num_frames=4, height=32, width=64)
        windows += [
            score_window(clip.modal(i), clip.amodal[i], clip.modal(i)) for i in clip.target_ids
        ]
    assert summary["start"] == 3 and summary["windows"] == len(windows)
    assert summary["results"]["modal"]["mIoU"] == pytest.approx(mean_scores(windows)["mIoU"])
    assert (
        "2 synthetic clips (val from clip 3, clips version 2)" in (out / "results.md").read_text()
    )
    # the default shows example rows; a rerun without them takes the old figure away
    assert (out / "examples.png").is_file()
    assert main([*args, "--examples", "0"]) == 0
    assert not (out / "examples.png").exists() and not list(out.glob(".*partial*"))


def test_eval_scores_each_object_family_apart(tmp_path):
    """results.json's by_family holds each family's scores over its own windows (here the
    hull's), and results.md shows mIoU_occ_all per family and method."""
    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--clips", "4", "--num-frames", "4", "--no-progress"]
    assert main([*args, "--clip-height", "32", "--clip-width", "64"]) == 0
    summary = json.loads((out / "results.json").read_text())
    per_family: dict[str, list] = {}
    for seed in split_seeds("test", 4):
        clip = make_scene(seed, num_frames=4, height=32, width=64)
        for i in clip.target_ids:
            hull = BASELINES["convex_hull"](clip.modal(i))
            window = score_window(hull, clip.amodal[i], clip.modal(i))
            per_family.setdefault(clip.families[i], []).append(window)
    table = summary["by_family"]
    assert set(table) == set(per_family) and len(table) > 1
    for family, windows in per_family.items():
        assert table[family]["windows"] == len(windows)
        expected = mean_scores(windows)["mIoU"]
        assert table[family]["convex_hull"]["mIoU"] == pytest.approx(expected)
    text = (out / "results.md").read_text()
    assert "mIoU_occ_all by object family" in text
    assert all(f"| {family} | {len(w)} |" in text for family, w in per_family.items())


def test_the_hull_gets_the_free_space_carving_the_models_masks_get(tmp_path):
    """The model's rows were carved by the clips' camera depth and the baselines not: part of
    its lead was depth's. The carved hull is the hull less free space (a subset of it), and it
    goes with the carving (free_space_margin 0: neither)."""
    args = ["eval", "--clips", "4", "--num-frames", "6", "--no-progress", "--examples", "0"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())["results"]
    hull, carved = results["convex_hull"], results["convex_hull_carved"]
    assert carved["frames"] == hull["frames"] and carved["stray_share"] < hull["stray_share"]
    assert carved["area_ratio_median"] < hull["area_ratio_median"]
    assert main([*args, "--out", str(tmp_path / "b"), "--free-space-margin", "0"]) == 0
    assert (
        "convex_hull_carved"
        not in json.loads((tmp_path / "b" / "results.json").read_text())["results"]
    )


def test_results_json_tells_no_frame_from_an_exact_completion():
    """results.json is strict JSON: a metric with no counted frame is null, an exact
    completion's PSNR the string "inf" (both were null: a reader could not tell them apart)."""
    from amodal_ros.eval.run import _strict_json

    summary = {
        "results": {"m": {"mIoU_occ": float("nan"), "psnr": float("inf"), "mIoU": 0.5}},
        "gaps": [float("-inf"), 1.0, float("nan")],
    }
    text = json.dumps(_strict_json(summary), allow_nan=False)
    assert json.loads(text) == {
        "results": {"m": {"mIoU_occ": None, "psnr": "inf", "mIoU": 0.5}},
        "gaps": ["-inf", 1.0, None],
    }


def test_a_folder_of_clips_of_no_split_and_without_families_is_said_as_such(tmp_path, capsys):
    """A folder whose clips are of no split reads 'data folder (other)', not a split it is not
    of; a clip without families (an older generator's) leaves by_family out rather than
    tabling it as a family of its own; all the folders asked for, scored: no warning; with no
    checkpoint the record says none (null), not an empty name."""
    data = tmp_path / "clips"
    for seed in (5 * 10**6, 5 * 10**6 + 1):  # past every split's seeds
        write_clip_folder(make_scene(seed, num_frames=4, height=32, width=64), data / f"c{seed}")
    meta_path = data / f"c{5 * 10**6}" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["families"]
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--data", str(data), "--clips", "2", "--no-progress"]
    assert main([*args, "--checkpoint", "", "--examples", "0"]) == 0
    err = capsys.readouterr().err
    assert "scoring folders" not in err and "clip folders: scoring" not in err
    summary = json.loads((out / "results.json").read_text())
    assert summary["split"] == "data folder (other)" and summary["clips"] == 2
    assert summary["checkpoint"] is None
    assert "by_family" not in summary
    assert "by object family" not in (out / "results.md").read_text()


def test_results_md_tables_are_well_formed_markdown(tmp_path):
    """Each results.md table has one separator cell per header cell and one cell per column
    in every row, and no column twice: a renderer drops or shifts the cells of a table that
    does not (the README copies these tables)."""
    out = tmp_path / "eval"
    args = ["eval", "--out", str(out), "--clips", "2", "--num-frames", "4", "--no-progress"]
    args += ["--clip-height", "32", "--clip-width", "64", "--examples", "0"]
    assert main(args) == 0
    text = (out / "results.md").read_text()
    tables = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            tables[-1].append(line.strip("|").split("|"))
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 2  # the methods' scores, mIoU_occ_all by object family
    summary = json.loads((out / "results.json").read_text())
    # the note counts the object windows, and names the figure's columns in their order
    assert f"{summary['windows']} object windows" in text and summary["windows"] != 2
    methods = ", ".join(summary["results"])
    assert f"examples.png columns: RGB, ground truth, {methods}." in text
    for header, separator, *rows in tables:
        assert all(cell == "---" for cell in separator)
        assert len(separator) == len(header) == len(set(header))
        assert rows and all(len(row) == len(header) for row in rows)


def test_the_carved_hull_is_carved_as_the_models_masks_are():
    """convex_hull_carved is the hull carved as the pipeline carves the model's masks: at the
    configured margin, keeping the band around the visible mask that the model's working grid
    keeps (carving the hull harder than the model's masks understated depth's share of the
    model's lead)."""
    from amodal_ros.core.types import AmodalResult
    from amodal_ros.eval.run import _carved
    from amodal_ros.pipeline.free_space import carve, keep_band

    margin = 0.4  # these clips carve differently at 0.2 and 0.8 (alike at 0.1 and 0.2)
    removed, banded = 0, 0
    for seed in split_seeds("test", 4):
        clip = make_scene(seed, num_frames=6, height=64, width=128)
        for i in clip.target_ids:
            modal = clip.modal(i)
            hull = BASELINES["convex_hull"](modal)
            carved = {}
            for working in (None, (32, 64)):
                keep = keep_band(hull.shape[1:], working) if working else 0
                pipeline = AmodalResult(i, hull.copy(), hull.astype(np.float32), modal)
                carve(pipeline, list(clip.depth), margin, keep)
                carved[working] = _carved(hull, clip, i, margin, working)
                np.testing.assert_array_equal(carved[working], pipeline.amodal)
            removed += int((hull & ~carved[None]).sum())
            banded += int((carved[(32, 64)] & ~carved[None]).sum())
    assert removed > 0 and banded > 0  # the clips test what they are meant to


def test_results_md_tells_no_score_from_no_counted_frame():
    """A cell is '-' where a method has no such score (a baseline's completion), 'n/a' where the
    score counted no frame, a score to 2 decimals otherwise: a reader of results.md tells them
    apart as results.json's null and a number do."""
    from amodal_ros.eval.run import _fmt

    assert [_fmt(None), _fmt(float("nan")), _fmt(12.345), _fmt(3)] == ["-", "n/a", "12.35", "3"]
