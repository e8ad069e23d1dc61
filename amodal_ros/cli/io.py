"""Reading frame/mask/depth folders and writing results atomically."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np

from amodal_ros.core.errors import InputError
from amodal_ros.core.staging import check_replaceable, staged_path

log = logging.getLogger("amodal_ros.io")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")  # lossless only: JPEG changes ids at edges
# more ids than any scene holds objects (the node's tracker keeps 256): a semantic map, JPEG
# artifacts, or a depth image; each id is a model call per window
MAX_OBJECTS = 256
SPECK_PIXELS = 16  # an id never larger than this in any frame is noise, not an object
# images are read as stored: a JPEG's EXIF rotation would turn the frames but not the masks
AS_STORED = cv2.IMREAD_IGNORE_ORIENTATION


def natural_key(path: Path) -> list:
    """Sort key reading the numbers in a name as numbers: frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _decimal_key(path: Path) -> list:
    """Sort key reading digits after a dot as a decimal fraction (1690000000.15 before .2)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", path.name)
    return [Decimal(part) if i % 2 else part for i, part in enumerate(parts)]


def list_images(folder: Path, what: str, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """The image files of `folder` in frame order: by name, its numbers read as numbers
    (frame_2 before frame_10, as 0002 before 0010); raises InputError naming `what`."""
    _check_folder(folder, what)
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in suffixes and not _hidden(p)),
        key=natural_key,
    )
    if not files:
        lossy = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if lossy:  # masks: JPEG's compression changes ids along every edge
            raise InputError(
                f"{what} folder {folder} holds JPEG images ({lossy[0]}, ...): masks must be "
                "lossless (JPEG changes ids along every edge); save them as PNG"
            )
        raise InputError(f"{what} folder {folder} holds no images ({', '.join(suffixes)})")
    _check_one_order(files, folder, what)
    for a, b in zip(files, files[1:]):
        if a.stem == b.stem:  # outputs are named by the stem: one would overwrite the other
            raise InputError(
                f"{what} folder {folder}: {a.name} and {b.name} are one frame name twice; "
                "keep one of them"
            )
    return files


def _check_one_order(files: list[Path], folder: Path, what: str) -> None:
    """Refuse names whose order depends on how the digits after a dot are read: as a fraction
    (`str(stamp.to_sec())`: .15 before .2) or as a whole number (secs.nsecs unpadded: .2 before
    .15). Either guess would shuffle some folder's frames in time, silently."""
    by_fraction = sorted(files, key=_decimal_key)
    if by_fraction == files:
        return
    a, b = next((x, y) for x, y in zip(by_fraction, files) if x != y)
    raise InputError(
        f"{what} folder {folder}: the frame names sort one way with the digits after a dot "
        f"read as a fraction ({a.name} first) and another read as a whole number ({b.name} "
        "first, as unpadded secs.nsecs names are); rename them so that both agree, e.g. "
        "zero-pad the part after the dot to one length (1690000000.150000000)"
    )


def _hidden(path: Path) -> bool:
    """Dot files (macOS's ._NAME resource forks) are no frames."""
    return path.name.startswith(".")


def _check_folder(folder: Path, what: str) -> None:
    if folder.is_file():
        raise InputError(f"{what} {folder} is a file; pass the folder that holds the images")
    if not folder.is_dir():
        raise InputError(f"{what} folder {folder} does not exist")


def read_rgb(folder: Path) -> tuple[np.ndarray, list[str]]:
    """Frames as [T, H, W, 3] uint8 RGB and their file stems."""
    files = list_images(folder, "frames")
    frames = [_imread(p, cv2.IMREAD_COLOR | AS_STORED) for p in files]
    _check_sizes(frames, files, "frames")
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]), [p.stem for p in files]


def read_masks(folder: Path) -> tuple[np.ndarray, list[int]]:
    """Modal masks from one label image per frame, or one binary-mask folder per object.

    Returns (labels [T, H, W] int32, the object ids in it).
    """
    _check_folder(folder, "masks")
    # hidden folders (.ipynb_checkpoints, .git) are no objects
    subfolders = sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=natural_key,
    )
    if subfolders:
        images = [p.name for p in folder.iterdir() if p.suffix.lower() in MASK_SUFFIXES]
        if images:
            raise InputError(
                f"masks folder {folder} holds label images ({images[0]}, ...) and folders "
                f"({subfolders[0].name}, ...): keep one kind, label images (one per frame) "
                "or one folder of binary masks per object"
            )
        return _read_object_folders(subfolders)
    files = list_images(folder, "masks", MASK_SUFFIXES)
    labels = [_read_label(p) for p in files]
    for p, lab in zip(files, labels):
        if lab.ndim != 2:
            raise InputError(
                f"label image {p} has {lab.shape[2]} channels; instance labels must be "
                "single-channel (8/16-bit PNG, pixel = object id, 0 = background)"
            )
    _check_sizes(labels, files, "masks")
    labels = np.stack(labels).astype(np.int32)
    largest: dict[int, int] = {}  # label value: its largest area in a frame
    for frame in labels:
        for value, count in zip(*np.unique(frame, return_counts=True)):
            largest[int(value)] = max(largest.get(int(value), 0), int(count))
    ids = sorted(value for value in largest if value != 0)
    if not ids:
        raise InputError(f"masks in {folder} are empty: every label image is all background (0)")
    _check_ids(largest, ids, folder)
    return labels, ids


def _check_ids(largest: dict[int, int], ids: list[int], folder: Path) -> None:
    """Refuse more ids than objects; warn of label images that look like something else
    (`largest`: each label value's largest area in a frame)."""
    if len(ids) > MAX_OBJECTS:
        raise InputError(
            f"masks in {folder} hold {len(ids)} ids, more than {MAX_OBJECTS} objects: instance "
            "labels give each object one id (0 = background); a semantic map, a lossy image "
            "or depth would each be taken for thousands of objects"
        )
    if 0 not in largest:
        log.warning(
            "masks in %s: no pixel of any frame is 0, the background; is it another value "
            "(%d covers the most)? Every id, that one too, is taken for an object",
            folder,
            max(largest, key=largest.__getitem__),
        )
    specks = [i for i in ids if largest[i] <= SPECK_PIXELS]
    if len(specks) >= 3:
        log.warning(
            "masks in %s: %d ids never cover more than %d pixels in a frame (%s); lossy "
            "compression or a segmenter's noise? They are skipped below min_object_pixels",
            folder,
            len(specks),
            SPECK_PIXELS,
            ", ".join(map(str, specks[:10])) + (", ..." if len(specks) > 10 else ""),
        )


def read_depth(folder: Path) -> tuple[np.ndarray, str]:
    """Depth [T, H, W] and its encoding: 16-bit PNG = millimetres, float .npy/.tiff = metres."""
    files = list_images(folder, "depth", (".png", ".npy", ".tif", ".tiff"))
    frames = []
    for p in files:
        if p.suffix.lower() == ".npy":
            try:
                frames.append(np.load(p, allow_pickle=False))  # never unpickle user files
            except ValueError as err:  # not an array file, or one of Python objects
                raise InputError(f"depth file {p} is not a numeric .npy array ({err})") from None
        else:
            frames.append(_imread(p, cv2.IMREAD_UNCHANGED))
    for f, p in zip(frames, files):
        if f.ndim != 2:
            raise InputError(f"depth image {p} has shape {f.shape}; depth must be single-channel")
    _check_sizes(frames, files, "depth")
    kinds = {f.dtype: p.name for f, p in zip(frames, files)}
    if len(kinds) > 1:  # stacked, millimetres would pass for metres
        raise InputError(
            f"depth in {folder} mixes {', '.join(f'{d} ({n})' for d, n in kinds.items())}; "
            "use one kind: 16-bit PNG (millimetres) or float .npy/.tiff (metres)"
        )
    depth = np.stack(frames)
    if depth.dtype == np.uint16:
        _check_depth_range(depth, "16UC1", folder)
        return depth, "16UC1"
    if depth.dtype.kind == "f":
        depth = depth.astype(np.float32)
        _check_depth_range(depth, "32FC1", folder)
        return depth, "32FC1"
    raise InputError(
        f"depth in {folder} is {depth.dtype}; use 16-bit PNG (millimetres) "
        "or float .npy/.tiff (metres)"
    )


def _check_depth_range(depth: np.ndarray, encoding: str, folder: Path) -> None:
    """Refuse depth no frame of which has a usable value (every window would fail after the
    models load), naming the unit it was read in: metres saved as 16-bit PNG read as mm."""
    from amodal_ros.depth.camera import MIN_DEPTH_M, depth_metres, valid_depth

    # frame by frame, stopping at the first return: no metric copy of the whole clip
    if any(valid_depth(depth_metres(frame, encoding)).any() for frame in depth):
        return
    metres = depth_metres(depth, encoding)
    finite = metres[np.isfinite(metres)]
    top = float(finite.max()) if finite.size else float("nan")
    unit = "millimetres (16-bit PNG)" if encoding == "16UC1" else "metres (float)"
    raise InputError(
        f"depth in {folder} has no usable pixel: read as {unit}, its largest value is "
        f"{top:g} m, and depth under {MIN_DEPTH_M:g} m (or 0, NaN) is no return; 16-bit PNG "
        "must hold millimetres, float .npy/.tiff metres"
    )


def read_yaml_mapping(path: Path, what: str) -> dict:
    """The mapping a YAML file of settings holds ({} for an empty file); raises InputError
    naming the file for a missing, unreadable or unparsable one, or one that is no mapping."""
    import yaml

    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{what} {path} is not readable YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"{what} {path} is a YAML {type(data).__name__}, not a mapping of settings "
            "(`name: value` lines)"
        )
    return data


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty folder, and with `overwrite` one that is not an earlier
    output (checked before any work, and again at the end)."""
    if out.is_file():
        raise InputError(f"--out {out} is a file; infer writes a folder: choose another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InputError(
                f"output folder {out} exists and is not empty; pass --overwrite or another --out"
            )
        check_replaceable(out, "summary.json", "amodal-ros infer output", command="infer")


@contextmanager
def staged_output(out: Path, overwrite: bool):
    """Yield a temporary folder beside `out`; it becomes `out` only if the block succeeds."""
    check_output(out, overwrite)
    with staged_path(out) as stage:
        stage.mkdir()
        yield stage


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB(A) or single-channel image as PNG, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _object_ids(subfolders: list[Path]) -> dict[Path, int]:
    """A folder whose name ends in a number (`7`, `obj_10`) is that object; the others, in
    name order, take the ids after the largest number. 0 (the background) and one number
    twice (`1`, `01`) are refused: an object would vanish or take another's place."""
    numbered = {}
    for sub in subfolders:
        number = re.search(r"(\d+)$", sub.name)
        if number:
            numbered[sub] = int(number.group(1))
    taken: dict[int, str] = {}
    for sub, object_id in numbered.items():
        if object_id == 0:
            raise InputError(f"object folder {sub}: id 0 is the background; rename it")
        if object_id in taken:
            raise InputError(
                f"object folders {taken[object_id]} and {sub.name} are both object {object_id}; "
                "rename one"
            )
        taken[object_id] = sub.name
    named = [sub for sub in subfolders if sub not in numbered]
    first = max(taken, default=0) + 1
    return numbered | {sub: first + i for i, sub in enumerate(named)}


def _read_object_folders(subfolders: list[Path]) -> tuple[np.ndarray, list[int]]:
    objects: dict[int, np.ndarray] = {}
    counts = {}
    ids = _object_ids(subfolders)
    for sub in subfolders:
        files = list_images(sub, f"masks of object {sub.name}", MASK_SUFFIXES)
        masks = [_one_channel(_read_label(p)) for p in files]  # grey and colour frames mix
        _check_sizes(masks, files, f"masks of object {sub.name}")
        object_id = ids[sub]
        objects[object_id] = _binary(np.stack(masks))
        counts[sub.name] = len(files)
        if not objects[object_id].any():
            raise InputError(f"masks of object {sub.name} are empty in every frame ({sub})")
    if len(set(counts.values())) > 1:
        raise InputError(f"object mask folders have different frame counts: {counts}")
    shapes = {k: v.shape[1:] for k, v in objects.items()}
    if len(set(shapes.values())) > 1:
        raise InputError(f"object mask folders have different image sizes: {shapes}")
    labels = np.zeros(next(iter(objects.values())).shape, np.int32)
    for object_id, masks in objects.items():
        overlap = masks & (labels != 0)
        if overlap.any():  # a visible pixel belongs to one object
            log.warning(
                "object %s's masks overlap earlier objects' in %d pixels; they stay with the "
                "earlier object",
                object_id,
                int(overlap.sum()),
            )
        labels[masks & (labels == 0)] = object_id
    return labels, list(objects)


def _one_channel(mask: np.ndarray) -> np.ndarray:
    """[H, W] of a mask image: its largest colour channel (not alpha) where it has several."""
    if mask.ndim == 3:  # grey+alpha, BGR, BGRA
        return mask[..., : 1 if mask.shape[-1] == 2 else 3].max(axis=-1)
    return mask


def _binary(masks: np.ndarray) -> np.ndarray:
    """[T, H, W] binary mask images as bool: at half their full scale or more, as the
    reference thresholds 8-bit masks at 128; full scale is 255 for 8-bit values, 65535 for
    16-bit ones, and 1 for masks saved as 0/1 (and palette indices)."""
    top = int(masks.max())
    full = 1 if top == 1 else 255 if top <= 255 else 65535
    return masks >= (full + 1) // 2


def _read_label(path: Path) -> np.ndarray:
    """A label image's ids; a palette PNG (DAVIS, YouTube-VOS) gives its palette indices,
    which OpenCV would turn into colours."""
    if path.suffix.lower() == ".png":
        from PIL import Image

        try:
            with Image.open(path) as image:
                if image.mode == "P":
                    return np.array(image)
        except OSError:  # not readable by PIL either: OpenCV's error below names the file
            pass
    return _imread(path, cv2.IMREAD_UNCHANGED)


def _imread(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise InputError(f"cannot read image {path} (corrupt or unsupported format)")
    return image


def _check_sizes(frames: list[np.ndarray], files: list[Path], what: str) -> None:
    first = frames[0].shape[:2]
    for f, p in zip(frames, files):
        if f.shape[:2] != first:
            raise InputError(
                f"{what}: {p.name} is {f.shape[0]}x{f.shape[1]} (HxW), but {files[0].name} "
                f"is {first[0]}x{first[1]}; all images of a folder must have one size"
            )
