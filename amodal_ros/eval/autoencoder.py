"""How well a checkpoint's VAE reconstructs what its stage writes: the ceiling of every mask
(stage 1) or completion (stage 2) the model can produce.

Each target's amodal and modal masks of held-out clips go through the VAE as the pipeline
sends them (resized with the model's `mask_resize`, encoded to the posterior mode, decoded by
the temporal decoder in chunks of 8 frames) and are thresholded as the pipeline thresholds
(R+G+B > the model's threshold); the IoU is pooled over all frames, at the working size (against
the mask as resized there, soft masks at half coverage) and at the clip's own size (what a user
sees: the decoded score upsampled, then thresholded, OR nothing).

Next to it, the ceiling of stage 1's scores (`ceiling_scores`): `eval`'s metrics (mIoU,
mIoU_occ, mIoU_occ_all, ...) of the true amodal masks as a perfect model at this working size
would return them, resized to it and back (`working_size`), and also through the VAE (`vae`).
No model of this working size and VAE can score above these.

Stage 2 (`--stage 2`): each target's whole appearance on white goes through the VAE as stage
2's targets do (`modal_rgb_pixels` of the amodal mask, decoded and resized back as a
completion is); the PSNR is taken inside the hidden regions (as `eval` scores completions:
`occluded_region`), next to what the working size alone loses (the same frames resized down and up,
no VAE). `eval`'s pooled completion PSNR also counts the hidden pixels stage 1's mask misses
(white in a completion), so its ceiling (`pooled_*`) paints these appearances behind stage 1's
ceiling masks (`--masks-checkpoint`'s VAE and threshold), with the share they cover.

Usage:
    python -m amodal_ros.eval.autoencoder embedded [--clips 20] [--split test] [--stage 2]
        [--threshold 400] [--working-size 64x128] [--masks-checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from amodal_ros.core.config import InferenceConfig, working_size
from amodal_ros.core.errors import CheckpointError


def reconstruction_iou(components, config: InferenceConfig, clips) -> dict[str, float]:
    """{"working": pooled IoU at the working size, "clip": at the clips' size,
    "working_lossless": what a perfect autoencoder scores at the working size with this
    threshold, "masks": n}. The truth there is a soft mask's half coverage, so a threshold
    below R+G+B 382.5 counts half-covered pixels in and caps even a perfect reconstruction
    below 1: the VAE's score is read against this cap.

    Args:
        components: VasComponents of one stage (its VAE is measured).
        config: resolved for the model (working size, mask_resize, rgb_sum_threshold).
        clips: AmodalClips.
    """
    from amodal_ros.pipeline import preprocess

    sums = {"working": [0, 0], "clip": [0, 0], "working_lossless": [0, 0]}
    count = 0
    for clip in clips:
        for i in clip.target_ids:
            for masks in (clip.amodal[i], clip.modal(i)):
                if not masks.any():
                    continue
                pixels = preprocess.mask_pixels(
                    masks, config.height, config.width, config.mask_resize
                )
                truth = pixels[:, 0] > 0.0  # binary, or soft coverage above a half
                score = _vae_score(components.vae, pixels, config)  # [T, h, w]
                _add(sums["working"], _thresholded(score, config), truth)
                _add(sums["clip"], _upsampled(score, masks.shape[1:], config), masks)
                _add(sums["working_lossless"], _thresholded(_lossless(pixels), config), truth)
                count += 1
    return {name: inter / max(union, 1) for name, (inter, union) in sums.items()} | {
        "masks": count
    }


def ceiling_scores(components, config: InferenceConfig, clips) -> dict[str, dict]:
    """{"working_size": eval's scores (`metrics.mean_scores`) of the true amodal masks
    resized to the working size and back, "vae": of them also through the VAE}: what a
    perfect stage 1 of this working size (and VAE) would score, object by object as `eval`
    runs them (an object not run, never visible or too small, keeps its modal mask)."""
    from amodal_ros.eval.metrics import mean_scores, score_window

    windows: dict[str, list] = {"working_size": [], "vae": []}
    for clip in clips:
        for i in clip.target_ids:
            truth, modal, visible = clip.amodal[i], clip.modal(i), clip.visible[i]
            for name, pred in _ceiling_masks(clip, i, (components, config)).items():
                windows[name].append(score_window(pred, truth, modal, visible))
    return {name: mean_scores(w) for name, w in windows.items()}


def _vae_score(vae, pixels: np.ndarray, config: InferenceConfig) -> np.ndarray:
    """[T, h, w] mask score in [0, 1] (R+G+B / 765) of mask frames [T, 3, h, w] sent through
    the VAE."""
    from amodal_ros.pipeline.runner import rgb_sum

    return rgb_sum(_through_vae(vae, pixels, config)).numpy() / 765.0


def _through_vae(vae, pixels: np.ndarray, config: InferenceConfig):
    """Frames [T, 3, h, w] (a tensor in [-1, 1]) encoded and decoded as the pipeline sends
    them through the VAE (posterior mode, decoded in chunks)."""
    import torch

    from amodal_ros.pipeline.sampling import decode

    with torch.no_grad():
        x = torch.from_numpy(pixels).to(vae.dtype)
        latents = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        return decode(vae, latents[None], config.decode_chunk_size)[0]


def _lossless(pixels: np.ndarray) -> np.ndarray:
    """[T, h, w] the mask score in [0, 1] a perfect autoencoder returns for frames
    [T, 3, h, w] in [-1, 1]: the frames themselves."""
    return (pixels.mean(1) + 1.0) / 2.0


def _thresholded(score: np.ndarray, config: InferenceConfig) -> np.ndarray:
    """[T, h, w] bool: a score in [0, 1] cut as the pipeline cuts R+G+B (exactly, in uint8)."""
    return np.rint(score * 765.0) > config.rgb_sum_threshold


def _upsampled(score: np.ndarray, size: tuple[int, int], config: InferenceConfig) -> np.ndarray:
    """[T, H, W] bool: a working-size score upsampled smoothly and thresholded, as the
    pipeline returns masks at the camera's size."""
    from amodal_ros.pipeline import preprocess

    big = preprocess.resize_stack(score.astype(np.float32), *size, nearest=False)
    return big * 765.0 > config.rgb_sum_threshold + 0.5


def reconstruction_psnr(
    components, config: InferenceConfig, clips, masks: tuple | None = None
) -> dict[str, float]:
    """{"vae": PSNR (dB) of the VAE's reconstruction of objects' whole appearance inside their
    hidden regions, "working_size": of the resizing alone, "objects": n}, the squared errors
    pooled over all objects' hidden pixels.

    With `masks` (the VasComponents and resolved InferenceConfig of the stage 1 whose masks
    stage 2 paints behind) also "pooled_vae" and "pooled_working_size": the same appearances
    behind stage 1's ceiling masks (the truth through its VAE, or the working size alone, cut
    and upsampled as the pipeline does, OR the input labels), white where those miss a hidden
    pixel, over the objects the pipeline runs, as `eval` pools completions: no model of this
    working size (and these VAEs) scores above them; "coverage_vae" and
    "coverage_working_size": the share of hidden pixels those masks cover.
    """
    import torch

    from amodal_ros.eval.metrics import occluded_region
    from amodal_ros.pipeline import preprocess
    from amodal_ros.pipeline.runner import to_uint8

    names = ("vae", "working_size")
    pooled = names if masks is not None else ()
    errors = {key: [0.0, 0] for key in (*names, *(f"pooled_{n}" for n in pooled))}
    covered = {name: [0, 0] for name in pooled}
    count = 0
    for clip in clips:
        for i in clip.target_ids:
            hidden = occluded_region(clip.visible[i], clip.amodal[i])
            if not hidden.any():
                continue
            truth = clip.appearance[i][..., :3]
            pixels = preprocess.modal_rgb_pixels(
                truth, clip.amodal[i], config.height, config.width, config.mask_resize
            )
            frames = _through_vae(components.vae, pixels, config)
            h, w = hidden.shape[1:]
            small = to_uint8(torch.from_numpy(pixels)).numpy()
            runs = masks is not None and _runs(clip.modal(i))  # eval pools those it runs
            found = _ceiling_masks(clip, i, masks) if runs else {}
            for name, images in (("vae", to_uint8(frames).numpy()), ("working_size", small)):
                big = preprocess.resize_stack(images, h, w, nearest=False).astype(np.float64)
                _pool(errors[name], big[hidden], truth[hidden])
                if name in found:  # white where stage 1's mask misses the hidden part
                    painted = np.where(found[name][..., None], big, 255.0)
                    _pool(errors[f"pooled_{name}"], painted[hidden], truth[hidden])
                    covered[name][0] += int((found[name] & hidden).sum())
                    covered[name][1] += int(hidden.sum())
            count += 1
    report = {
        key: 10.0 * float(np.log10(255.0**2 / max(total / max(n, 1), 1e-12)))
        for key, (total, n) in errors.items()
    }
    for name, (inside, total) in covered.items():
        report[f"coverage_{name}"] = inside / max(total, 1)
    return report | {"objects": count}


def _ceiling_masks(clip, i: int, masks: tuple) -> dict[str, np.ndarray]:
    """{"vae", "working_size": [T, H, W] bool}: target `i`'s true amodal masks as a perfect
    stage 1 (`masks`: its components and config) returns them, OR its input labels."""
    from amodal_ros.pipeline import preprocess

    components, config = masks
    truth, modal = clip.amodal[i], clip.modal(i)
    if not _runs(modal):  # not run (never visible, too small): its labels stand
        return {"vae": modal, "working_size": modal}
    pixels = preprocess.mask_pixels(truth, config.height, config.width, config.mask_resize)
    scores = {"vae": _vae_score(components.vae, pixels, config), "working_size": _lossless(pixels)}
    return {name: _upsampled(s, truth.shape[1:], config) | modal for name, s in scores.items()}


def _runs(modal: np.ndarray) -> bool:
    """Whether the pipeline runs an object of these modal masks (eval's default settings)."""
    from amodal_ros.core.config import StreamConfig
    from amodal_ros.pipeline.processor import not_run_reason

    return not_run_reason(modal, StreamConfig().min_object_pixels) is None


def _pool(acc: list, painted: np.ndarray, truth: np.ndarray) -> None:
    diff = painted.astype(np.float64) - truth.astype(np.float64)
    acc[0] += float((diff**2).sum())
    acc[1] += diff.size


def _add(acc: list, pred: np.ndarray, truth: np.ndarray) -> None:
    acc[0] += int((pred & truth).sum())
    acc[1] += int((pred | truth).sum())


def main(argv: list[str] | None = None) -> None:
    """Print the reconstruction IoU of a checkpoint's VAE on held-out clips as JSON."""
    from amodal_ros.data.scenes import make_scene, split_seeds
    from amodal_ros.models import registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint folder or model name")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument(
        "--threshold", type=int, default=-1, help="R+G+B mask threshold; -1 = the model's"
    )
    parser.add_argument("--stage", type=int, default=1, choices=(1, 2))
    parser.add_argument(
        "--working-size",
        default="",
        metavar="HxW",
        help="measure at this working size instead of the model's (what a larger one allows)",
    )
    parser.add_argument(
        "--masks-checkpoint",
        default="",
        help="stage 2: the stage-1 model whose masks it paints behind (default: the "
        "checkpoint's own stage 1, e.g. embedded's; a folder is taken as it is)",
    )
    ns = parser.parse_args(argv)
    try:
        size = tuple(working_size(ns.working_size).values()) or None
    except ValueError as err:
        parser.error(str(err))

    def load(name: str, stage: int):
        try:
            components = registry.components(name, stage=stage)
        except CheckpointError as err:  # one line and exit 2, as amodal-ros says it
            parser.error(str(err))
        config = InferenceConfig(rgb_sum_threshold=ns.threshold).for_model(components.defaults)
        if size is not None:
            config = config.replace(height=size[0], width=size[1])
        return components, config

    components, config = load(ns.checkpoint, ns.stage)
    clips = [make_scene(seed) for seed in split_seeds(ns.split, ns.clips)]
    report = {
        "checkpoint": ns.checkpoint,
        "split": ns.split,
        "stage": ns.stage,
        "working_size": [config.height, config.width],
    }
    if ns.stage == 2:
        masks = load(ns.masks_checkpoint or ns.checkpoint, 1)
        report["masks"] = {
            "checkpoint": ns.masks_checkpoint or ns.checkpoint,
            "threshold": masks[1].rgb_sum_threshold,
        }
        report["psnr_db_hidden"] = reconstruction_psnr(components, config, clips, masks)
    else:
        report["threshold"] = config.rgb_sum_threshold
        report |= reconstruction_iou(components, config, clips)
        report["ceiling"] = ceiling_scores(components, config, clips)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
