"""Camera-resolution inputs -> conditioning pixels at working resolution, as the reference."""

from __future__ import annotations

import cv2
import numpy as np

WHITE = 255


def resize_stack(frames: np.ndarray, height: int, width: int, nearest: bool) -> np.ndarray:
    """[T, H, W(, C)] -> [T, height, width(, C)]; nearest for masks, else area where a side
    shrinks and linear where one grows: where one shrinks and the other grows (a square
    camera into a 1:2 working size), area on the first, then linear on the second, since
    OpenCV averages areas only where both shrink (linear would skip thin parts).

    Nearest shrinks about pixel centres (INTER_NEAREST_EXACT), as every other mode does:
    INTER_NEAREST samples source pixel floor(i * s), which moves a mask (s - 1) / 2 source
    pixels down and right (3.3 px from 480x640 to 64x128) against the depth and RGB beside it
    (the published model was trained on masks resized about pixel centres, cv2 linear on 0/1).
    Growing keeps INTER_NEAREST, the reference's postprocess: its offset is under half a
    source pixel there."""
    if frames.shape[1:3] == (height, width):
        return frames
    down = frames.shape[1] > height or frames.shape[2] > width
    up = frames.shape[1] < height or frames.shape[2] < width
    if down and up and not nearest:
        h, w = min(height, frames.shape[1]), min(width, frames.shape[2])
        return resize_stack(resize_stack(frames, h, w, False), height, width, nearest=False)
    if nearest:
        interp = cv2.INTER_NEAREST_EXACT if down else cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if down else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def extend_inside(frames: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """[T, h, w, C] frames with every pixel outside `inside` ([T, h, w] bool) given the colour
    of the nearest pixel inside (frames with nothing inside are kept): stage 2 paints an object
    on white, and the white past its edge would bleed into the object's edge pixels when the
    painting grows to the camera's size."""
    out = frames.copy()
    for t, (frame, keep) in enumerate(zip(frames, inside, strict=True)):
        if keep.all() or not keep.any():
            continue
        _, nearest = cv2.distanceTransformWithLabels(
            (~keep).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )  # label k: the k-th pixel inside in row-major order, as np.nonzero lists them
        ys, xs = np.nonzero(keep)
        out[t] = frame[ys[nearest - 1], xs[nearest - 1]]
    return out


def mask_pixels(masks: np.ndarray, height: int, width: int, resize: str = "nearest") -> np.ndarray:
    """[T, H, W] bool -> [T, 3, h, w] float32 in [-1, 1] (replicated to 3 channels).

    `resize` 'nearest' keeps the mask binary ({-1, 1}, as the reference); 'area' keeps the share
    of each working pixel the mask covers, so an outline finer than the working grid survives.
    """
    if resize == "area":
        small = resize_stack(masks.astype(np.float32), height, width, nearest=False)
    else:
        small = resize_stack(masks.astype(np.uint8), height, width, nearest=True)
    pixels = small.astype(np.float32) * 2.0 - 1.0
    return np.repeat(pixels[:, None], 3, axis=1)


def depth_pixels(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, H, W] window-normalised depth in [-1, 1] -> [T, 3, h, w] float32."""
    small = resize_stack(depth.astype(np.float32), height, width, nearest=False)
    return np.repeat(np.clip(small, -1.0, 1.0)[:, None], 3, axis=1)


def modal_rgb_pixels(
    rgb: np.ndarray, masks: np.ndarray, height: int, width: int, resize: str = "nearest"
) -> np.ndarray:
    """The object's visible pixels on white (stage-2 input): [T, H, W, 3] uint8 and [T, H, W]
    bool -> [T, 3, h, w] float32 in [-1, 1].

    `resize` as the model's masks (`mask_pixels`): 'nearest' puts the resized RGB on white
    where the mask resized nearest is, a hard edge, as the reference's training composites at
    its working size; 'area' composites at the camera's size and shrinks, so edge pixels
    blend with white by the share the object covers (how the embedded stage 2 was trained).
    """
    if resize == "area":
        on_white = np.where(masks[..., None], rgb, np.uint8(WHITE))
        small = resize_stack(on_white, height, width, nearest=False)
    else:
        inside = resize_stack(masks.astype(np.uint8), height, width, nearest=True) > 0
        small_rgb = resize_stack(rgb, height, width, nearest=False)
        small = np.where(inside[..., None], small_rgb, np.uint8(WHITE))
    return small.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
