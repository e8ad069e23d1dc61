"""What a real RGB-D camera and instance segmenter make of the synthetic scenes' clean render.

RGB noise, depth like an active stereo camera (noise growing with z^2, millimetre steps, 0 =
invalid in a shadow band beside near objects, in patches and specks, sometimes along the left
image edge) and segmenter errors in the labels (1-px boundary errors, jagged edges, missed
and spurious instances). The ground truth (amodal, visible, appearance) never passes here.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal_ros.data.draw import ellipse

MAX_DEPTH_HOLE_JUMP = 0.3  # m: a depth step this large casts a stereo shadow (invalid band)


def _noise(rng, shape, sigma: float) -> np.ndarray:
    """float32 zero-mean noise of standard deviation `sigma`: the sum of two uniform bytes (a
    triangular distribution, close enough to a Gaussian for sensor noise and 3x faster to
    draw than float32 normals, which took a third of a clip's time)."""
    pair = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    out = pair[0].astype(np.float32)
    out += pair[1]
    out -= 255.0
    out *= np.float32(sigma / np.sqrt(2 * (256**2 - 1) / 12.0))  # sd of a uniform byte: 73.9
    return out


def sensor_rgb(rng, rgb: np.ndarray, sigma: float) -> np.ndarray:
    """[T, H, W, 3] uint8 frames `rgb` with sensor noise of sigma `sigma` (0-255 scale)."""
    if sigma <= 0:
        return rgb
    noisy = _noise(rng, rgb.shape, sigma)
    noisy += rgb
    return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)


def segmenter_labels(rng, exact, ids_far_to_near, n_targets: int, amount: float) -> np.ndarray:
    """[T, H, W] uint16 labels with an instance segmenter's errors, from the exact ones
    `exact` [T, H, W] uint16 (targets 1..n_targets, then occluders; painted in the order
    `ids_far_to_near`); `amount` scales the error rates (0 = exact labels).

    Each instance's mask is eroded or dilated by 1 px in some frames (each instance leans one
    way; less often below 256 px wide), its edge made jagged, a target's labels go missing in
    a frame now and then, and small spurious blobs of a target's id appear near it or
    anywhere."""
    if amount <= 0:
        return exact.copy()
    t_count, height, width = exact.shape
    # 1-px boundary errors are sized for a 256-px-wide image (a camera's 1-2 px at 640 px):
    # smaller images get them less often, else they would swamp a 10-px object
    fine = min(1.0, width / 256.0)
    p_morph, p_jag = min(1.0, 0.5 * amount * fine), min(1.0, 0.4 * amount * fine)
    p_missed, p_spur = min(1.0, 0.02 * amount), min(1.0, 0.04 * amount)
    lean = {i: int(rng.choice([-1, 1])) for i in ids_far_to_near}
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    out = np.zeros_like(exact)
    spot = max(1.0, 0.03 * min(height, width))
    for t in range(t_count):
        coarse = rng.random((height // 3 + 1, width // 3 + 1), dtype=np.float32)
        field = cv2.resize(coarse, (width + 2, height + 2), interpolation=cv2.INTER_NEAREST)
        jag = (field[:height, :width] < 0.5).astype(np.uint8)  # 3-px blocks: jagged steps
        draws = rng.random((len(ids_far_to_near), 4))
        for i, u in zip(ids_far_to_near, draws):
            mask = (exact[t] == i).view(np.uint8)
            if i <= n_targets and u[0] < p_missed:
                continue
            if u[1] < p_morph:
                grow = lean[i] if u[2] < 0.75 else -lean[i]
                mask = (cv2.dilate if grow > 0 else cv2.erode)(mask, kernel)
            if u[3] < p_jag:
                ring = cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)
                mask = mask ^ (ring & jag)
            out[t][mask > 0] = i
        for i in range(1, n_targets + 1):
            if rng.random() >= p_spur:
                continue
            ys, xs = np.nonzero(exact[t] == i)
            x, y, r = rng.random(), rng.random(), spot * rng.uniform(0.5, 1.5)
            if len(xs) and rng.random() < 0.7:  # near the object: a fragment the segmenter
                x = xs.min() + (xs.max() - xs.min()) * x + rng.uniform(-3, 3) * spot
                y = ys.min() + (ys.max() - ys.min()) * y + rng.uniform(-3, 3) * spot
            else:
                x, y = x * width, y * height
            ellipse(out[t], x, y, r, r * rng.uniform(0.5, 1.0), i)
    return out


def sensor_depth(rng, z: np.ndarray, camera: np.ndarray, holes: float, noise: float):
    """[T, H, W] float32 depth as an active-stereo camera gives from the exact depth `z`:
    noise (sigma `noise` * z^2), millimetre steps, and 0 where there is no return: a shadow
    band left of near objects, flickering patches fixed in the world, specks, sometimes a
    band along the left image edge."""
    out = z.copy()
    if noise > 0:
        out += _noise(rng, z.shape, noise) * z * z
        out = np.round(np.maximum(out, 0.05) * 1000.0) / np.float32(1000.0)
    if holes <= 0:
        return out.astype(np.float32)
    t_count, height, width = z.shape
    size = min(height, width)
    shadow = int(rng.integers(1, 4))
    # min over [x, x + shadow]: a pixel is dark if a nearer surface is just right of it
    kernel = np.ones((1, shadow + 1), np.uint8)
    band = int(width * rng.uniform(0.01, 0.05)) if rng.random() < 0.5 * holes else 0
    patches = [
        (
            width * rng.uniform(0, 1),
            height * rng.uniform(0, 1),
            size * rng.uniform(0.03, 0.1),
            size * rng.uniform(0.02, 0.08),
        )
        for _ in range(int(rng.poisson(1.5 * holes)))
    ]
    p_shadow = min(1.0, 0.7 * holes)
    for t in range(t_count):
        near = cv2.erode(z[t], kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        hole = ((z[t] - near) > MAX_DEPTH_HOLE_JUMP) & (
            rng.random((height, width), dtype=np.float32) < p_shadow
        )
        spots = np.zeros((height, width), np.uint8)
        for x, y, ax, ay in patches:
            if rng.random() < 0.85:  # flickers
                ellipse(spots, x - camera[t, 0], y - camera[t, 1], ax, ay, 1)
        for _ in range(int(rng.poisson(2.0 * holes))):
            r = rng.uniform(0.5, 2.0)
            ellipse(spots, rng.uniform(0, width), rng.uniform(0, height), r, r, 1)
        hole |= spots.astype(bool)
        hole[:, :band] = True
        out[t][hole] = 0.0
    return out.astype(np.float32)
