"""The paper's amodal segmentation metrics (diffusion-vas), numpy only, and
the ones a user of the masks sees: how much too large they are, how much of them lies away
from the object, and how well a fully hidden object is kept.

All masks are [T, H, W] bool over one object's window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from amodal_ros.core.types import mask_bbox

# the reference erodes occluded regions 5x5 once, at SAIL-VOS's 800 rows (diffusion-vas): a
# 2-px rim of annotation mismatch there; at other heights the same share of the object
REFERENCE_EROSION, REFERENCE_HEIGHT = 5, 800
MIN_OCC_IOU = 1e-6  # frames whose occluded-region IoU is below this are left out (reference)
STRAY_DISTANCE = 3.0  # px: predicted pixels farther than this from the true mask are strays


def frame_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """[T] IoU per frame; NaN where both masks are empty (nothing to segment)."""
    inter = (pred & gt).reshape(len(gt), -1).sum(1).astype(np.float64)
    union = (pred | gt).reshape(len(gt), -1).sum(1).astype(np.float64)
    out = np.full(len(gt), np.nan)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def occluded_region(modal: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """[T, H, W] bool: amodal and not modal, eroded once per frame as the reference erodes at
    800 rows (5x5 there, scaled to H: none up to 200 rows, 3x3 below 600; it ignores the thin
    rim where modal annotations are slightly smaller than amodal ones). At 128 rows a 5x5
    kernel would be 6x the reference's and drop about half of the truly hidden pixels (thin
    parts entirely)."""
    hidden = amodal & ~modal
    size = erosion_size(amodal.shape[1])
    if size == 1:
        return hidden
    kernel = np.ones((size, size), np.uint8)
    return np.stack([cv2.erode(h, kernel, iterations=1) > 0 for h in hidden.astype(np.uint8)])


def erosion_size(height: int) -> int:
    """Side of the occluded-region erosion for frames `height` rows high (odd, >= 1): the
    reference's 5x5 at 800 rows, scaled."""
    radius = (REFERENCE_EROSION // 2) * height / REFERENCE_HEIGHT
    return 2 * int(round(radius)) + 1


@dataclass
class WindowScores:
    """Per-frame scores of one object window; NaN marks a frame left out of that metric."""

    iou: np.ndarray  # [T] amodal IoU
    iou_occ: np.ndarray  # [T] occluded-region IoU, NaN where below MIN_OCC_IOU (reference)
    # [T] occluded-region IoU on every frame whose ground truth has an occluded region, misses
    # counted as 0: the reference's rule drops misses, which flatters weak predictors (the
    # modal baseline would have no frame at all)
    iou_occ_all: np.ndarray
    # [T] predicted / true amodal area, NaN where the true mask is empty
    area_ratio: np.ndarray | None = field(default=None, repr=False)
    # [T] predicted pixels, and those farther than STRAY_DISTANCE from the true mask
    pred_pixels: np.ndarray | None = field(default=None, repr=False)
    stray_pixels: np.ndarray | None = field(default=None, repr=False)
    # [T] amodal IoU on frames where the object is fully hidden (nothing of it visible)
    iou_hidden: np.ndarray | None = field(default=None, repr=False)
    # [T] amodal IoU of the mask as given, not OR-ed with the modal input: what the node
    # publishes, which may lack label pixels it removed as detached parts
    iou_as_published: np.ndarray | None = field(default=None, repr=False)


def score_window(
    pred: np.ndarray, gt: np.ndarray, modal: np.ndarray, visible: np.ndarray | None = None
) -> WindowScores:
    """Scores of a predicted amodal window against the ground truth, given the modal input.

    Args:
        pred: [T, H, W] bool predicted amodal masks.
        gt: [T, H, W] bool true amodal masks.
        modal: [T, H, W] bool modal (visible) masks the method was given, which may carry a
            segmenter's errors.
        visible: [T, H, W] bool the object's exact visible part (default: `modal`, for exact
            input). It decides the occluded region and the fully hidden frames: a frame whose
            label missed a visible object is not a hidden one.

    Returns:
        WindowScores with [T] float64 arrays. The prediction is OR-ed with the modal mask
        first, as the reference does (but for `iou_as_published`).
    """
    visible = modal if visible is None else visible
    if not pred.shape == gt.shape == modal.shape == visible.shape:
        raise ValueError(
            f"shapes differ: pred {pred.shape}, gt {gt.shape}, modal {modal.shape}, "
            f"visible {visible.shape}"
        )
    iou_as_published = frame_iou(pred, gt)
    pred = pred | modal
    gt_occ = occluded_region(visible, gt)
    iou_occ_all = frame_iou(occluded_region(visible, pred), gt_occ)
    has_occ = gt_occ.reshape(len(gt), -1).any(1)
    iou_occ_all[~has_occ] = np.nan  # (where it has one, the union is never empty)
    iou_occ = iou_occ_all.copy()
    iou_occ[~(iou_occ >= MIN_OCC_IOU)] = np.nan  # also drops NaN (both regions empty)
    iou = frame_iou(pred, gt)
    pred_area = pred.reshape(len(gt), -1).sum(1).astype(np.float64)
    gt_area = gt.reshape(len(gt), -1).sum(1).astype(np.float64)
    area_ratio = np.full(len(gt), np.nan)
    np.divide(pred_area, gt_area, out=area_ratio, where=gt_area > 0)
    hidden = (gt_area > 0) & ~visible.reshape(len(gt), -1).any(1)
    return WindowScores(
        iou,
        iou_occ,
        iou_occ_all,
        area_ratio=area_ratio,
        pred_pixels=pred_area,
        stray_pixels=stray_pixels(pred, gt),
        iou_hidden=np.where(hidden, iou, np.nan),
        iou_as_published=iou_as_published,
    )


def stray_pixels(pred: np.ndarray, gt: np.ndarray, distance: float = STRAY_DISTANCE) -> np.ndarray:
    """[T] float64 count of `pred` pixels farther than `distance` px (Euclidean) from `gt`;
    every predicted pixel of a frame with an empty `gt` counts. Detached blobs and masks that
    reach far beyond the object show up here, a rim of a pixel or two does not."""
    out = np.zeros(len(gt))
    for t in range(len(gt)):
        outside = pred[t] & ~gt[t]
        if not outside.any():
            continue
        if not gt[t].any():
            out[t] = outside.sum()
            continue
        # distance of every pixel to the nearest true pixel (exact Euclidean)
        dist = cv2.distanceTransform((~gt[t]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out[t] = (outside & (dist > distance)).sum()
    return out


def mean_scores(windows: list[WindowScores]) -> dict[str, float]:
    """Scores over the counted frames of all windows.

    Returns:
        mIoU, mIoU_occ and mIoU_occ_all (in %) with the frame counts of each (frames,
        frames_occ, frames_occ_all); area_ratio_median (median predicted / true amodal area
        over frames with a true mask); stray_share (% of all predicted pixels farther than
        STRAY_DISTANCE px from the true mask, pooled over frames); mIoU_hidden (in %, frames
        where the object is fully hidden) with frames_hidden; mIoU_newest and
        mIoU_occ_all_newest (in %, each window's newest frame only: what the node publishes
        with `publish_frames: latest`, and where a window has no later frames to lean on);
        mIoU_as_published (in %, the masks as given, not OR-ed with the modal input: what
        the node publishes). NaN where no frame counts.
    """
    iou = np.concatenate([w.iou for w in windows]) if windows else np.zeros(0)
    occ = np.concatenate([w.iou_occ for w in windows]) if windows else np.zeros(0)
    occ_all = np.concatenate([w.iou_occ_all for w in windows]) if windows else np.zeros(0)
    iou, occ, occ_all = (a[~np.isnan(a)] for a in (iou, occ, occ_all))
    ratio, hidden = (_valid(windows, name) for name in ("area_ratio", "iou_hidden"))
    predicted = _valid(windows, "pred_pixels").sum()
    stray = _valid(windows, "stray_pixels").sum()
    return {
        "mIoU": _percent(iou),
        "mIoU_occ": _percent(occ),
        "mIoU_occ_all": _percent(occ_all),
        "frames": int(len(iou)),
        "frames_occ": int(len(occ)),
        "frames_occ_all": int(len(occ_all)),
        "area_ratio_median": float(np.median(ratio)) if len(ratio) else float("nan"),
        "stray_share": 100.0 * float(stray / predicted) if predicted else float("nan"),
        "mIoU_hidden": _percent(hidden),
        "frames_hidden": int(len(hidden)),
        "mIoU_newest": _percent(_newest(windows, "iou")),
        "mIoU_occ_all_newest": _percent(_newest(windows, "iou_occ_all")),
        "mIoU_as_published": _percent(_valid(windows, "iou_as_published")),
    }


def _newest(windows: list[WindowScores], name: str) -> np.ndarray:
    """The non-NaN values of one field at each window's newest (last) frame."""
    values = np.array([getattr(w, name)[-1] for w in windows], np.float64)
    return values[~np.isnan(values)]


def _valid(windows: list[WindowScores], name: str) -> np.ndarray:
    """The non-NaN per-frame values of one field over all windows (windows made without it,
    by older code, add none)."""
    parts = [getattr(w, name) for w in windows if getattr(w, name) is not None]
    values = np.concatenate(parts) if parts else np.zeros(0)
    return values[~np.isnan(values)]


def _percent(values: np.ndarray) -> float:
    return 100.0 * float(values.mean()) if len(values) else float("nan")


def as_shown(rgba: np.ndarray) -> np.ndarray:
    """[..., 3] uint8: a completion ([..., 4] RGBA) as a user sees it, its RGB where its alpha
    (the predicted amodal mask) is set and white elsewhere. The decoder paints past the mask
    too, but nothing shows that, so a hidden pixel the mask misses counts as white whatever
    stage 2 paints."""
    return np.where(rgba[..., 3:] > 0, rgba[..., :3], np.uint8(255))


def completion_errors(
    pred: np.ndarray, gt: np.ndarray, region: np.ndarray, inside: np.ndarray
) -> tuple[float, float, int] | None:
    """(sum over pixels of the squared error averaged over R, G and B; sum of SSIM; pixels) of
    RGB `pred` vs `gt` ([T, H, W, 3]
    uint8) over `region` ([T, H, W] bool, the hidden part of an object), for `pooled_psnr_ssim`;
    None when the region is empty.

    Both images are painted white outside `inside` ([T, H, W] bool, the true amodal mask)
    first: SSIM's 11-px window reaches past the object's outline, where a completion is white
    and the true appearance black, so content outside the object would otherwise count.
    SSIM is the standard Gaussian-window (sigma 1.5) form on the grey image.
    """
    if not region.any():
        return None
    pred, gt = (np.where(inside[..., None], x, 255).astype(np.uint8) for x in (pred, gt))
    diff = pred.astype(np.float64)[region] - gt.astype(np.float64)[region]
    ssim = np.stack([_ssim_map(p, g) for p, g in zip(pred, gt)])[region]
    return float((diff**2).mean(axis=1).sum()), float(ssim.sum()), int(region.sum())


def pooled_psnr_ssim(errors: list[tuple[float, float, int]]) -> tuple[float, float]:
    """PSNR (dB) of the pooled squared error, and the mean SSIM, over every pixel of every
    window's region: each pixel weighs the same (as the autoencoder's ceiling is computed),
    and a perfect window adds zero error instead of an infinite PSNR to leave out."""
    squared, ssim, pixels = (float(sum(v)) for v in zip(*errors))
    mse = squared / pixels
    return (float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))), ssim / pixels


COMPLETION_SCORES = (  # what `completion_scores` reports: the scores a stage-2 rule may name
    "completion_psnr_db",
    "completion_ssim",
    "completion_psnr_found_db",
    "completion_coverage",
    "completion_psnr_coverage_bound_db",
)


def completion_scores(pairs: list[tuple[tuple, tuple | None]]) -> dict[str, float]:
    """The completion columns of `eval` from each window's (`completion_errors` over the whole
    hidden region, the same over the part the predicted mask covers or None).

    The pooled PSNR over every hidden pixel is what a user sees, but a hidden pixel the mask
    missed is white in the completion whatever stage 2 paints, so it mixes two stages; the
    PSNR over covered pixels and the covered share keep them apart, and the missed pixels'
    error alone bounds the pooled PSNR whatever stage 2 paints (`..._coverage_bound_db`: a
    stage 2 that painted every covered pixel exactly)."""
    psnr, ssim = pooled_psnr_ssim([every for every, _ in pairs])
    found = [f for _, f in pairs if f is not None]
    hidden = sum(every[2] for every, _ in pairs)
    # the missed pixels' squared error (white whatever stage 2 paints), over every hidden pixel
    missed = max(sum(every[0] for every, _ in pairs) - sum(f[0] for f in found), 0.0)
    bound, _ = pooled_psnr_ssim([(missed, 0.0, hidden)])
    found_psnr = pooled_psnr_ssim(found)[0] if found else float("nan")
    coverage = 100.0 * sum(f[2] for f in found) / hidden
    return dict(zip(COMPLETION_SCORES, (psnr, ssim, found_psnr, coverage, bound)))


def psnr_ssim_in_region(
    pred: np.ndarray, gt: np.ndarray, region: np.ndarray, inside: np.ndarray
) -> tuple[float, float] | None:
    """PSNR (dB) and mean SSIM of one window's `completion_errors`; None for an empty region."""
    errors = completion_errors(pred, gt, region, inside)
    return None if errors is None else pooled_psnr_ssim([errors])


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) exclusive bounds of a [H, W] bool mask (the published box,
    `mask_bbox`'s x, y, w, h, as corners); None when it is empty."""
    x, y, w, h = (int(v) for v in mask_bbox(mask))
    return None if w == 0 else (x, y, x + w, y + h)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes, ends exclusive."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / float(area(a) + area(b) - inter)


def average_precision(scores: np.ndarray, hits: np.ndarray, num_gt: int) -> float:
    """COCO-style AP (101 recall points, precision made monotone) of detections with
    confidence `scores` and `hits` (matched a ground truth at the IoU threshold). Detections
    with equal scores form one operating point (a method without a confidence has one)."""
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    scores, hits = np.asarray(scores, float)[order], np.asarray(hits, bool)[order]
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    tp = np.cumsum(hits)[last]
    det = (np.arange(len(hits)) + 1)[last]
    recall, precision = tp / num_gt, tp / np.maximum(det, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at >= recall
    points = np.linspace(0.0, 1.0, 101)
    at = np.searchsorted(recall, points, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in at]))


def box_detections(
    pred: np.ndarray, gt: np.ndarray, scores: np.ndarray | None = None
) -> tuple[list[float], list[bool], int]:
    """Per-frame amodal-box detections of one object window for AP50 (TAO-Amodal's metric):
    (scores, hits at box IoU >= 0.5, ground truths). A frame with an amodal ground truth is one
    ground truth; a non-empty prediction is one detection (score 1 without `scores`)."""
    det_scores, hits, num_gt = [], [], 0
    for t in range(len(gt)):
        gt_box, pred_box = mask_box(gt[t]), mask_box(pred[t])
        num_gt += gt_box is not None
        if pred_box is not None:
            det_scores.append(1.0 if scores is None else float(scores[t]))
            hits.append(gt_box is not None and box_iou(pred_box, gt_box) >= 0.5)
    return det_scores, hits, num_gt
