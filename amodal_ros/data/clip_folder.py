"""The folder format of synthetic clips (`amodal-ros synth` writes it, `eval --data` reads it).

One clip per folder:

    rgb/0000.png ...          RGB frames
    depth/0000.png ...        16-bit depth in millimetres, 0 = invalid
    labels/0000.png ...       16-bit instance labels: targets 1..N, occluders N+1.., 0 background
    amodal/obj_<id>/0000.png  8-bit amodal mask of each target (255 = object)
    visible/obj_<id>/0000.png 8-bit exact visible mask of each target (255 = visible)
    appearance/obj_<id>/0000.png  RGBA: the target's full appearance, alpha = amodal mask
    meta.json                 seed, size, target ids, occluder ids, per-target depth (m),
                              per-target family, camera shift per frame (px), the
                              generator's clips_version
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from amodal_ros.core.errors import InputError
from amodal_ros.data.clip import AmodalClip


def write_clip_folder(clip: AmodalClip, folder: Path) -> Path:
    """Write a clip in the folder format of this module's docstring; returns the folder."""
    folder = Path(folder)
    t_count = len(clip.rgb)
    for sub in ("rgb", "depth", "labels"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    depth_mm = np.clip(np.round(clip.depth * 1000.0), 0, 65535).astype(np.uint16)
    for t in range(t_count):
        name = f"{t:04d}.png"
        write_png(folder / "rgb" / name, clip.rgb[t])
        write_png(folder / "depth" / name, depth_mm[t])
        write_png(folder / "labels" / name, clip.labels[t])
        for i in clip.target_ids:
            write_png(
                folder / "amodal" / f"obj_{i}" / name, clip.amodal[i][t].astype(np.uint8) * 255
            )
            write_png(
                folder / "visible" / f"obj_{i}" / name, clip.visible[i][t].astype(np.uint8) * 255
            )
            rgba = clip.appearance[i][t]
            write_png(folder / "appearance" / f"obj_{i}" / name, rgba)
    meta = {
        "seed": clip.seed,
        "num_frames": t_count,
        "height": int(clip.rgb.shape[1]),
        "width": int(clip.rgb.shape[2]),
        "target_ids": clip.target_ids,
        "occluder_ids": clip.occluder_ids,
        "target_depth_m": {str(k): v for k, v in clip.target_depth.items()},
        "families": {str(k): v for k, v in clip.families.items()},
        "camera_shift_px": np.asarray(clip.camera, np.float64).tolist(),
        "clips_version": clip.clips_version,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def read_clip_folder(folder: Path) -> AmodalClip:
    """Read a clip written by `write_clip_folder` (depth comes back at millimetre precision).
    Folders written before `visible` existed read it as `labels == id` (they had exact
    labels)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a synthetic clip folder (no meta.json)")
    meta = read_meta(meta_path)
    last = folder / "rgb" / f"{meta['num_frames'] - 1:04d}.png"
    if not last.is_file():  # before listing its names: a damaged count of 10^12 never ended
        raise InputError(
            f"{meta_path} says {meta['num_frames']} frames, but {last} is missing; "
            "regenerate the clip"
        )
    names = [f"{t:04d}.png" for t in range(meta["num_frames"])]
    size = _size(meta, folder / "rgb" / names[0])

    def frames(sub: str, kind: str) -> np.ndarray:
        return np.stack([_read(folder / sub / n, kind, size) for n in names])

    rgb = frames("rgb", "rgb")[..., ::-1]
    depth = frames("depth", "depth").astype(np.float32) / 1000.0
    labels = frames("labels", "labels").astype(np.uint16)
    amodal, appearance, visible = {}, {}, {}
    for i in meta["target_ids"]:
        amodal[i] = frames(f"amodal/obj_{i}", "mask") > 127
        appearance[i] = frames(f"appearance/obj_{i}", "appearance")[..., [2, 1, 0, 3]]
        if (folder / "visible" / f"obj_{i}").is_dir():
            visible[i] = frames(f"visible/obj_{i}", "mask") > 127
    if visible and len(visible) != len(amodal):  # the exact visible truth, for all or none
        lost = sorted(set(amodal) - set(visible))
        raise InputError(
            f"{folder}: visible/ lacks obj_{', obj_'.join(map(str, lost))} (its other objects "
            "have one; the labels would stand in for their visible truth): regenerate the clip"
        )
    camera = meta.get("camera_shift_px")
    return AmodalClip(
        rgb=np.ascontiguousarray(rgb),
        depth=depth,
        labels=labels,
        amodal=amodal,
        appearance=appearance,
        target_depth={int(k): v for k, v in meta["target_depth_m"].items()},
        occluder_ids=list(meta["occluder_ids"]),
        seed=meta["seed"],
        visible=visible or None,
        families={int(k): v for k, v in meta.get("families", {}).items()},
        camera=None if camera is None else np.asarray(camera, np.float32).reshape(-1, 2),
        clips_version=int(meta.get("clips_version", 1)),  # folders before it was recorded: 1
    )


META_KEYS = ("num_frames", "target_ids", "target_depth_m", "occluder_ids", "seed")
# what each key a clip reads holds (the optional ones where present): a damaged value was a
# TypeError or AttributeError deep in the reader (`"target_ids": 1`, `"families": []`)
META_TYPES = {
    "target_ids": (list, "a list of object ids"),
    "occluder_ids": (list, "a list of object ids"),
    "target_depth_m": (dict, "a mapping of object id to metres"),
    "families": (dict, "a mapping of object id to family"),
    "camera_shift_px": (list, "a list of [x, y] shifts"),
    "clips_version": (int, "a whole number"),
}


def read_meta(path: Path) -> dict:
    """meta.json with the keys a clip needs; a damaged one is an InputError naming it."""
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # deep nesting: recursion
        raise InputError(f"{path} is not readable JSON ({err}); regenerate the clip") from None
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else META_KEYS
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)}; regenerate the clip")
    frames = meta["num_frames"]
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise InputError(f"{path}: num_frames is {frames!r}, not a count of frames (>= 1)")
    for key, (kind, what) in META_TYPES.items():
        value = meta.get(key, kind())
        ids = meta[key] if key.endswith("_ids") and isinstance(value, list) else []
        if not isinstance(value, kind) or isinstance(value, bool) or not _whole(ids):
            raise InputError(f"{path}: {key} is {value!r:.60}, not {what}; regenerate the clip")
    return meta


def _whole(values: list) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


# what each image of a clip is: (channels, pixel types)
KINDS = {
    "rgb": (3, (np.uint8,)),
    "depth": (1, (np.uint16,)),
    "labels": (1, (np.uint8, np.uint16)),
    "mask": (1, (np.uint8,)),
    "appearance": (4, (np.uint8,)),
}


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB(A) or single-channel image as PNG, creating its folder (the one PNG
    writer: OpenCV's order is BGR(A), every image in this package is RGB(A))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image)):
        raise OSError(f"could not write {path}")


def _size(meta: dict, first: Path) -> tuple[int, int]:
    """(H, W) of the clip's frames: meta.json's, else its first RGB frame's."""
    if isinstance(meta.get("height"), int) and isinstance(meta.get("width"), int):
        return meta["height"], meta["width"]
    return _read(first, "rgb", None).shape[:2]


def _read(path: Path, kind: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image of a clip, refused (naming it) unless it is of `kind` and `size`: a
    grayscale frame read as RGB came back mirrored, an 8-bit depth as 0.23 m at most."""
    try:  # a FIFO waited for a writer forever; a header past 2^30 pixels raised cv2.error
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    except cv2.error:
        image = None
    if image is None:
        raise FileNotFoundError(f"missing or unreadable image {path}")
    channels, dtypes = KINDS[kind]
    got = 1 if image.ndim == 2 else image.shape[2]
    if got != channels or image.dtype not in dtypes or size not in (None, image.shape[:2]):
        want = f"{size[0]}x{size[1]}, " if size else ""
        types = " or ".join(np.dtype(d).name for d in dtypes)
        raise InputError(
            f"{path} is {image.shape[0]}x{image.shape[1]}, {got} channel(s), "
            f"{image.dtype}; a clip's {kind} images are {want}{channels} channel(s), {types}"
        )
    return image
