"""The VAE's reconstruction ceiling is measured as the pipeline encodes, decodes and
thresholds masks."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="torch is not installed (bash scripts/setup.sh)")

from amodal_ros.core.config import InferenceConfig  # noqa: E402
from amodal_ros.data.scenes import make_scene  # noqa: E402
from amodal_ros.eval.autoencoder import (  # noqa: E402
    ceiling_scores,
    reconstruction_iou,
    reconstruction_psnr,
)
from amodal_ros.eval.metrics import occluded_region  # noqa: E402


def test_reconstruction_iou_at_the_working_and_the_clip_size(components12):
    clips = [make_scene(3, num_frames=4, height=32, width=64)]
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    scores = reconstruction_iou(components12, config, clips)
    assert scores["masks"] >= 2 and 0.0 <= scores["working"] <= 1.0
    assert 0.0 <= scores["clip"] <= 1.0
    # an untrained VAE with nothing above the threshold reconstructs nothing: IoU 0
    none = reconstruction_iou(components12, config.replace(rgb_sum_threshold=764), clips)
    assert none["working"] == 0.0 and none["clip"] == 0.0


def test_a_lossless_autoencoder_is_capped_only_below_half_coverage(components12):
    """Soft masks are true where an object covers more than half a working pixel, so a perfect
    reconstruction cut at half (R+G+B 382) or above the next coverage level scores 1, and one
    cut lower also counts the half-covered pixels in (below 1): the cap the VAE is read against."""
    clips = [make_scene(seed, num_frames=4, height=128, width=256) for seed in (2, 3)]
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    config = config.replace(mask_resize="area")
    caps = {
        t: reconstruction_iou(components12, config.replace(rgb_sum_threshold=t), clips)
        for t in (350, 382, 400)
    }
    assert caps[382]["working_lossless"] == caps[400]["working_lossless"] == 1.0
    assert 0.8 < caps[350]["working_lossless"] < 1.0


def test_reconstruction_psnr_of_hidden_appearance_against_the_resizing_alone(components12):
    """Stage 2's ceiling: an untrained VAE loses far more of an object's hidden appearance than
    the working size does, and objects without a hidden part are not counted."""
    clips = [make_scene(seed, num_frames=4, height=64, width=128) for seed in (2, 3, 5)]
    hidden = sum(
        bool(occluded_region(c.visible[i], c.amodal[i]).any()) for c in clips for i in c.target_ids
    )
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    # the embedded stage 2's compositing (area: edges blend with white); a nearest model's
    # hard edge at the working size keeps less of the object near its outline (18.96 dB here)
    config = config.replace(mask_resize="area")
    scores = reconstruction_psnr(components12, config, clips)
    assert scores["objects"] == hidden > 0
    assert scores["working_size"] > 20.0 and scores["vae"] < scores["working_size"] - 5.0


def test_the_ceiling_of_stage_1_is_the_truth_at_the_working_size(components12):
    """A perfect model scores 100 where the clip is the working size, less where the working
    size loses detail, and an untrained VAE loses far more."""
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    config = config.replace(mask_resize="nearest", rgb_sum_threshold=382)
    same = [make_scene(seed, num_frames=4, height=32, width=64) for seed in (2, 3)]
    exact = ceiling_scores(components12, config, same)["working_size"]
    assert exact["frames_occ_all"] > 0
    assert exact["mIoU"] == exact["mIoU_occ_all"] == 100.0 and exact["stray_share"] == 0.0
    finer = [make_scene(seed, num_frames=4, height=128, width=256) for seed in (2, 3)]
    scores = ceiling_scores(components12, config, finer)
    assert 80.0 < scores["working_size"]["mIoU"] < 100.0
    assert scores["vae"]["mIoU_occ_all"] < scores["working_size"]["mIoU_occ_all"] - 20.0
    # the same frames are scored (those with a hidden part: set by the truth alone)
    assert scores["vae"]["frames_occ_all"] == scores["working_size"]["frames_occ_all"] > 0


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    from amodal_ros.eval.autoencoder import main

    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "nowhere"), "--clips", "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("size", ["64", "64x", "60x128", "8x16"])
def test_a_malformed_working_size_is_refused_as_training_refuses_it(size, capsys):
    from amodal_ros.eval.autoencoder import main

    with pytest.raises(SystemExit) as exit_:
        main(["embedded", "--clips", "1", "--working-size", size])
    assert exit_.value.code == 2
    assert "give HEIGHTxWIDTH in pixels, multiples of 8 from 16" in capsys.readouterr().err


def test_the_pooled_completion_ceiling_counts_what_stage_1_misses(components12):
    """eval pools a completion's error over every hidden pixel, white where the mask missed:
    behind masks lossless at the clip's own size nothing is missed (the pooled figure is the
    appearance's own), and behind an untrained VAE cut where nothing passes almost everything
    is white."""
    clips = [make_scene(seed, num_frames=4, height=32, width=64) for seed in (2, 3, 5)]
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    masks = config.replace(mask_resize="nearest", rgb_sum_threshold=382)
    scores = reconstruction_psnr(components12, config, clips, (components12, masks))
    assert scores["coverage_working_size"] == 1.0
    assert scores["pooled_working_size"] == scores["working_size"]
    none = reconstruction_psnr(
        components12, config, clips, (components12, masks.replace(rgb_sum_threshold=764))
    )
    assert none["coverage_vae"] < 0.2 and none["coverage_working_size"] == 1.0
    assert none["pooled_vae"] < none["vae"] - 1.0
    assert "pooled_vae" not in reconstruction_psnr(components12, config, clips)


def test_the_pooled_ceiling_leaves_out_objects_the_pipeline_does_not_run(components12):
    """eval scores completions of the objects it runs only: an object its labels never show
    (or too small to run) is no white miss in the ceiling either, or eval could beat it."""
    clips = [make_scene(seed, num_frames=4, height=32, width=64) for seed in (2, 3, 5)]
    config = InferenceConfig(num_frames=4).for_model(components12.defaults)
    masks = (components12, config.replace(mask_resize="nearest", rgb_sum_threshold=382))
    hidden_objects = [
        (clip, i)
        for clip in clips
        for i in clip.target_ids
        if occluded_region(clip.visible[i], clip.amodal[i]).any() and clip.modal(i).any()
    ]
    clip, i = hidden_objects[0]
    clip.labels[clip.labels == i] = 0  # the segmenter never saw it
    scores = reconstruction_psnr(components12, config, clips, masks)
    assert scores["coverage_working_size"] == 1.0  # its hidden pixels are not counted missed


def test_stage_2_names_the_masks_it_paints_behind(capsys):
    import json

    from amodal_ros.eval.autoencoder import main

    main(["embedded", "--stage", "2", "--clips", "1"])
    report = json.loads(capsys.readouterr().out)
    assert report["masks"] == {"checkpoint": "embedded", "threshold": 400}
    psnr = report["psnr_db_hidden"]
    assert (
        psnr["pooled_vae"] <= psnr["vae"] and psnr["pooled_working_size"] <= psnr["working_size"]
    )
    assert 0.5 < psnr["coverage_vae"] <= psnr["coverage_working_size"] <= 1.0
