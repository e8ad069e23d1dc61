"""A clip given as folders of images (RGB frames, instance masks, depth), read frame by frame.

Opening a folder checks it whole (every image decoded once, nothing kept: sizes, ids, depth
units), so bad input is refused before any model loads; `Clip.frame(t)` then reads frame t
again when a window needs it. Memory holds a window, not the clip (a clip of 640x480 frames
took ~2.7 MB a frame held whole).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np

from amodal_ros.core.errors import InputError
from amodal_ros.core.frames import MAX_DECODED_PIXELS, MAX_OBJECTS, Frame, clip_frame

log = logging.getLogger("amodal_ros.io")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")  # lossless only: JPEG changes ids at edges
DEPTH_SUFFIXES = (".png", ".npy", ".tif", ".tiff")
SPECK_PIXELS = 16  # an id never larger than this in any frame is noise, not an object
MAX_ID = 2**31 - 1  # labels are read as int32 (`LabelImages.read`): a larger id would wrap
# images are read as stored: a JPEG's EXIF rotation would turn the frames but not the masks
AS_STORED = cv2.IMREAD_IGNORE_ORIENTATION


@dataclass
class Clip:
    """Frames, masks and (optionally) depth folders of one clip, of one length and size; the
    frames it runs are the folders' `used` ones (all of them, or those `at_rate` keeps)."""

    rgb: RgbFolder
    masks: LabelImages | ObjectFolders
    depth: DepthFolder | None = None
    used: list[int] | None = None

    @property
    def names(self) -> list[str]:
        """The frames' file stems, in frame order (outputs are named by them)."""
        return [self.rgb.names[i] for i in self._used()]

    @property
    def ids(self) -> list[int]:
        """The object ids the masks hold."""
        return self.masks.ids

    def __len__(self) -> int:
        return len(self._used())

    def frame(self, t: int) -> Frame:
        """Frame t, read now and stamped as a camera at the model's rate would stamp it."""
        i = self._used()[t]
        depth = None if self.depth is None else self.depth.read(i)
        encoding = "32FC1" if self.depth is None else self.depth.encoding
        return clip_frame(t, self.rgb.read(i), self.masks.read(i), depth, encoding)

    def at_rate(self, input_fps: float, model_fps: float) -> Clip:
        """The clip's frames, taken at `input_fps`, sampled down to `model_fps` by time as the
        node samples a camera's stamps (`FrameRateSampler`)."""
        from amodal_ros.pipeline.rate import FrameRateSampler

        sampler = FrameRateSampler(model_fps)
        stamps = [round(i * 1e9 / input_fps) for i in range(len(self.rgb.files))]
        used = [i for i, stamp in enumerate(stamps) if sampler.accept(stamp)]
        return replace(self, used=used)

    def _used(self) -> list[int]:
        return list(range(len(self.rgb.files))) if self.used is None else self.used


def _mask_folders(masks, folder: Path) -> list[tuple[Path, list[str]]]:
    """Each mask folder and its frame names: the label images', or every object folder's (one
    object's named a frame later than the others' was paired a frame off, silently)."""
    if isinstance(masks, LabelImages):
        return [(folder, [p.stem for p in masks.files])]
    return [(files[0].parent, [p.stem for p in files]) for files in masks.objects.values()]


def _first_unpaired(frame_names: list[str], other_names: list[str], other: str = "mask") -> str:
    """Where the frames' and the `other` images' names (paired in name order) part: the first
    one without a partner of its name, as "; ...", or "" when the names say nothing (named
    otherwise). Names match by their numbers' values (`frame_1` is `frame_001`)."""
    frames, others = ([_name_key(n) for n in names] for names in (frame_names, other_names))
    pairs = enumerate(zip(frames, others, strict=False))
    t = next((i for i, (a, b) in pairs if a != b), min(len(frames), len(others)))
    if frames[:t] != others[:t] or not set(frames) & set(others):
        return ""
    if t < len(frames) and frames[t] not in others:
        return f"; frame {frame_names[t]} has no {other} of its name"
    if t < len(others) and others[t] not in frames:
        return f"; {other} {other_names[t]} has no frame of its name"
    return ""


def _check_partner(frames: Path, rgb, folder: Path, names: list[str], size, other: str) -> None:
    """The `other` images of `folder` (file stems `names`, of image size `size`) pair with the
    frames one to one in name order, at their size; else InputError, naming the first frame
    without a partner. Equal counts of one naming scheme, shifted (`rgb/0000..` beside
    `labels/0001..`), would pair every image a frame off."""
    unpaired = _first_unpaired(rgb.names, names, other)
    if len(names) != len(rgb.names):
        raise InputError(
            f"frame count mismatch: {len(rgb.names)} frames in {frames}, {len(names)} {other}s "
            f"in {folder}{unpaired}"
        )
    if unpaired:
        raise InputError(
            f"{frames} and {folder} are paired in name order, but their names differ{unpaired} "
            "(rename them, or give folders of the same frames)"
        )
    if size != rgb.size:
        raise InputError(
            f"size mismatch: frames are {rgb.size[0]}x{rgb.size[1]} (HxW), {other}s in "
            f"{folder} are {size[0]}x{size[1]} (HxW)"
        )


def _name_key(name: str) -> tuple:
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", name))


def open_clip(frames: Path, masks: Path, depth: Path | None = None) -> Clip:
    """Open and check the folders of a clip; raises InputError naming what is wrong."""
    clip = Clip(open_rgb(frames), open_masks(masks), None if depth is None else open_depth(depth))
    for folder, names in _mask_folders(clip.masks, masks):
        _check_partner(frames, clip.rgb, folder, names, clip.masks.size, "mask")
    if clip.depth is not None:
        depth_names = [p.stem for p in clip.depth.files]
        _check_partner(frames, clip.rgb, depth, depth_names, clip.depth.size, "depth image")
    return clip


def natural_key(path: Path) -> list:
    """Sort key reading the numbers in a name as numbers: frame_2 before frame_10."""
    # isdecimal, not isdigit: '²' is a digit int() cannot read (a frame `a1²1.png` raised)
    return [int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", path.name)]


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
    _check_files(files, folder, what)
    _check_one_order(files, folder, what)
    for a, b in zip(files, files[1:]):
        if a.stem == b.stem:  # outputs are named by the stem: one would overwrite the other
            raise InputError(
                f"{what} folder {folder}: {a.name} and {b.name} are one frame name twice; "
                "keep one of them"
            )
        if _name_key(a.stem) == _name_key(b.stem):  # their order was the file system's
            raise InputError(
                f"{what} folder {folder}: {a.name} and {b.name} are one frame number twice "
                "(names pair and sort by their numbers' values); keep one of them"
            )
    return files


def _check_files(files: list[Path], folder: Path, what: str) -> None:
    """Refuse what is named like an image but is no file: reading a FIFO waited for a writer
    forever, and a folder or a broken link was called a corrupt image."""
    for p in files:
        if not p.is_file():
            raise InputError(
                f"{what} folder {folder}: {p.name} is {_kind_of(p)}, not an image file; remove "
                "it or put the image there"
            )


def _kind_of(path: Path) -> str:
    """What a path that is not a regular file is, in words."""
    if path.is_dir():
        return "a folder"
    if path.exists():
        return "a FIFO, socket or device"
    if path.is_symlink():
        return "a link to nothing (or a loop of links)"
    return "missing"


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


class _Sizes:
    """Checks that every image of a folder has the size of its first."""

    def __init__(self, what: str):
        self.what, self.first, self.size = what, None, (0, 0)

    def check(self, image: np.ndarray, path: Path) -> None:
        if self.first is None:
            self.first, self.size = path, image.shape[:2]
        elif image.shape[:2] != self.size:
            h, w = self.size
            raise InputError(
                f"{self.what}: {path.name} is {image.shape[0]}x{image.shape[1]} (HxW), but "
                f"{self.first.name} is {h}x{w}; all images of a folder must have one size"
            )


class RgbFolder:
    """A folder of RGB frames (PNG/JPG...)."""

    def __init__(self, files: list[Path]):
        self.files, self.names = files, [p.stem for p in files]
        sizes = _Sizes("frames")
        for p in files:
            sizes.check(_imread(p, cv2.IMREAD_COLOR | AS_STORED), p)
        self.size = sizes.size

    def read(self, t: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB of frame t."""
        bgr = _imread(self.files[t], cv2.IMREAD_COLOR | AS_STORED)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def open_rgb(folder: Path) -> RgbFolder:
    """A folder of RGB frames, checked."""
    return RgbFolder(list_images(folder, "frames"))


class LabelImages:
    """One single-channel instance-label image per frame (pixel = object id, 0 = background)."""

    def __init__(self, folder: Path, files: list[Path]):
        self.files = files
        sizes = _Sizes("masks")
        largest: dict[int, int] = {}  # label value: its largest area in a frame
        for p in files:
            labels = self._decode(p)
            sizes.check(labels, p)
            for value, count in zip(*np.unique(labels, return_counts=True)):
                largest[int(value)] = max(largest.get(int(value), 0), int(count))
        self.size = sizes.size
        self.ids = sorted(value for value in largest if value != 0)
        if not self.ids:
            raise InputError(
                f"masks in {folder} are empty: every label image is all background (0)"
            )
        _check_ids(largest, self.ids, folder)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, t: int) -> np.ndarray:
        """[H, W] int32 labels of frame t."""
        return self._decode(self.files[t]).astype(np.int32)

    @staticmethod
    def _decode(path: Path) -> np.ndarray:
        labels = _read_label(path)
        if labels.ndim != 2:
            raise InputError(
                f"label image {path} has {labels.shape[2]} channels; instance labels must be "
                "single-channel (8/16-bit PNG, pixel = object id, 0 = background)"
            )
        _check_ids_fit(labels, path)
        return labels


class ObjectFolders:
    """One folder of binary masks per object (`obj_3/0000.png`...); a visible pixel masked by
    several objects belongs to the first."""

    def __init__(self, subfolders: list[Path]):
        ids = _object_ids(subfolders)
        self.objects = {
            ids[sub]: list_images(sub, f"masks of object {sub.name}", MASK_SUFFIXES)
            for sub in subfolders
        }
        counts = {sub.name: len(self.objects[ids[sub]]) for sub in subfolders}
        if len(set(counts.values())) > 1:
            raise InputError(f"object mask folders have different frame counts: {counts}")
        self.ids = list(self.objects)
        # full scale of each object's masks, judged over its whole clip (`_full_scale`); a
        # frame is read at its own bit depth's where that is lower (`_frame_scale`)
        self.full: dict[int, int] = {}
        shapes = {}
        for sub in subfolders:
            object_id, sizes = ids[sub], _Sizes(f"masks of object {sub.name}")
            tops, depths = [], []
            for p in self.objects[object_id]:
                mask = _one_channel(_read_label(p))  # grey and colour frames mix
                sizes.check(mask, p)
                tops.append(int(mask.max()))
                depths.append(_bit_depth_max(mask))
            shapes[object_id] = sizes.size
            self.full[object_id] = full = _full_scale(max(tops))
            scales = [_frame_scale(full, depth) for depth in depths]
            faint = [t for t, (top, s) in enumerate(zip(tops, scales)) if 0 < top < _half(s)]
            if all(top < _half(s) for top, s in zip(tops, scales)):
                raise InputError(f"masks of object {sub.name} are empty in every frame ({sub})")
            if faint:
                log.warning(
                    "masks of object %s: %d frame(s) (first %s) have no pixel at half the "
                    "full scale of its other frames (brightest %d of %d) and read as empty; "
                    "save every frame of an object at one scale (0/1, 0/255 or 0/65535)",
                    sub.name,
                    len(faint),
                    self.objects[object_id][faint[0]].name,
                    tops[faint[0]],
                    scales[faint[0]],
                )
        if len(set(shapes.values())) > 1:
            raise InputError(f"object mask folders have different image sizes: {shapes}")
        self.size = next(iter(shapes.values()))
        overlaps = dict.fromkeys(self.ids, 0)
        for t in range(len(self)):
            for object_id, pixels in self._compose(t)[1].items():
                overlaps[object_id] += pixels
        for object_id, pixels in overlaps.items():
            if pixels:
                log.warning(
                    "object %s's masks overlap earlier objects' in %d pixels; they stay with "
                    "the earlier object",
                    object_id,
                    pixels,
                )

    def __len__(self) -> int:
        return len(next(iter(self.objects.values())))

    def read(self, t: int) -> np.ndarray:
        """[H, W] int32 labels of frame t: each object's id where its mask is set."""
        return self._compose(t)[0]

    def _compose(self, t: int) -> tuple[np.ndarray, dict[int, int]]:
        """Frame t's labels, and each object's pixels already taken by an earlier one."""
        labels = np.zeros(self.size, np.int32)
        overlaps = {}
        for object_id, files in self.objects.items():
            mask = _one_channel(_read_label(files[t]))
            mask = mask >= _half(_frame_scale(self.full[object_id], _bit_depth_max(mask)))
            overlaps[object_id] = int((mask & (labels != 0)).sum())
            labels[mask & (labels == 0)] = object_id
        return labels, overlaps


def open_masks(folder: Path) -> LabelImages | ObjectFolders:
    """Modal masks from one label image per frame, or one binary-mask folder per object."""
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
        return ObjectFolders(subfolders)
    return LabelImages(folder, list_images(folder, "masks", MASK_SUFFIXES))


def _check_ids_fit(labels: np.ndarray, path: Path) -> None:
    """Ids are whole numbers 0..MAX_ID: a float TIFF's 1.25 and 1.5 were both read as object 1,
    an id past int32 wrapped to another (its object empty in every frame), and negative ones
    became objects `obj_-1`."""
    if labels.dtype.kind not in "ui":
        raise InputError(
            f"label image {path} is {labels.dtype}; instance labels are whole-number ids "
            "(8/16-bit PNG, pixel = object id, 0 = background)"
        )
    if labels.size and (labels.min() < 0 or labels.max() > MAX_ID):
        raise InputError(
            f"label image {path} holds ids from {labels.min()} to {labels.max()}; instance "
            f"labels are ids 0..{MAX_ID} (0 = background)"
        )


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


class DepthFolder:
    """Camera depth, one image per frame: 16-bit PNG = millimetres, float .npy/.tiff = metres."""

    def __init__(self, folder: Path, files: list[Path]):
        from amodal_ros.depth.camera import depth_metres, millimetres_as_metres, valid_depth

        self.files = files
        sizes = _Sizes("depth")
        first: tuple[np.dtype, str] | None = None  # the first frame's dtype and name
        usable, top = False, float("nan")  # any return seen; the largest finite value (m)
        for p in files:
            depth = self._decode(p)
            if depth.ndim != 2:
                raise InputError(
                    f"depth image {p} has shape {depth.shape}; depth must be single-channel"
                )
            sizes.check(depth, p)
            if first is None:
                first = (depth.dtype, p.name)
                self.encoding = _depth_encoding(depth.dtype, folder)
            elif depth.dtype != first[0]:  # stacked, millimetres would pass for metres
                raise InputError(
                    f"depth in {folder} mixes {first[0]} ({first[1]}), {depth.dtype} "
                    f"({p.name}); use one kind: 16-bit PNG (millimetres) or float .npy/.tiff "
                    "(metres)"
                )
            if usable and self.encoding != "32FC1":
                continue  # 16-bit millimetres: nothing left to learn from the other frames
            metres = depth_metres(depth, self.encoding)
            median = millimetres_as_metres(metres) if self.encoding == "32FC1" else None
            if median is not None:  # every float frame: one saved in millimetres is 1000x off
                raise InputError(
                    f"depth {p} is float, read as metres, and its median is {median:.0f} "
                    "m: millimetres stored as floats? Save metres (divide by 1000) or "
                    "16-bit PNG millimetres"
                )
            if not usable:
                usable = bool(valid_depth(metres).any())
                finite = metres[np.isfinite(metres)]
                if finite.size:
                    top = np.fmax(top, float(finite.max()))
        self.size = sizes.size
        if not usable:
            _refuse_unusable_depth(folder, self.encoding, top)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, t: int) -> np.ndarray:
        """[H, W] depth of frame t in `encoding` units (uint16 mm or float32 m)."""
        depth = self._decode(self.files[t])
        return depth.astype(np.float32) if self.encoding == "32FC1" else depth

    @staticmethod
    def _decode(path: Path) -> np.ndarray:
        if path.suffix.lower() != ".npy":
            return _imread(path, cv2.IMREAD_UNCHANGED)
        try:  # mapped: a header is checked against the file's size before any allocation
            depth = np.load(path, mmap_mode="r", allow_pickle=False)  # never unpickle
        except (ValueError, EOFError) as err:  # not an array file (or empty), or of objects
            raise InputError(f"depth file {path} is not a numeric .npy array ({err})") from None
        if not isinstance(depth, np.ndarray):  # an .npz archive under a .npy name
            depth.close()
            raise InputError(f"depth file {path} is an .npz archive, not one .npy array")
        if depth.size > MAX_DECODED_PIXELS:
            raise InputError(
                f"depth file {path} holds {depth.size} values, more than any camera's "
                f"({MAX_DECODED_PIXELS}) pixels"
            )
        # in memory, in this machine's byte order: '>f4' beside '<f4' were "mixed" kinds
        return np.array(depth, depth.dtype.newbyteorder("="))


def open_depth(folder: Path) -> DepthFolder:
    """A folder of camera depth images, checked."""
    return DepthFolder(folder, list_images(folder, "depth", DEPTH_SUFFIXES))


def _depth_encoding(dtype: np.dtype, folder: Path) -> str:
    if dtype == np.uint16:
        return "16UC1"
    if dtype.kind == "f":
        return "32FC1"
    raise InputError(
        f"depth in {folder} is {dtype}; use 16-bit PNG (millimetres) or float .npy/.tiff (metres)"
    )


def _refuse_unusable_depth(folder: Path, encoding: str, top: float) -> None:
    """Depth no frame of which has a usable value would fail every window after the models
    load: named with the unit it was read in (metres saved as 16-bit PNG read as mm)."""
    from amodal_ros.depth.camera import MIN_DEPTH_M

    unit = "millimetres (16-bit PNG)" if encoding == "16UC1" else "metres (float)"
    raise InputError(
        f"depth in {folder} has no usable pixel: read as {unit}, its largest value is "
        f"{top:g} m, and depth under {MIN_DEPTH_M:g} m (or 0, NaN) is no return; 16-bit PNG "
        "must hold millimetres, float .npy/.tiff metres"
    )


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
        if object_id > MAX_ID:  # labels are int32: it overflowed them
            raise InputError(f"object folder {sub}: id {object_id} is past {MAX_ID}; rename it")
        if object_id in taken:
            raise InputError(
                f"object folders {taken[object_id]} and {sub.name} are both object {object_id}; "
                "rename one"
            )
        taken[object_id] = sub.name
    named = [sub for sub in subfolders if sub not in numbered]
    first = max(taken, default=0) + 1
    return numbered | {sub: first + i for i, sub in enumerate(named)}


def _one_channel(mask: np.ndarray) -> np.ndarray:
    """[H, W] of a mask image: its largest colour channel (not alpha) where it has several."""
    if mask.ndim == 3:  # grey+alpha, BGR, BGRA
        return mask[..., : 1 if mask.shape[-1] == 2 else 3].max(axis=-1)
    return mask


def _full_scale(top: int) -> int:
    """Full scale of binary mask images whose brightest pixel is `top`: 255 for 8-bit values,
    65535 for 16-bit ones, and 1 for masks saved as 0/1 (and palette indices); a pixel is the
    object at half full scale or more, as the reference thresholds 8-bit masks at 128."""
    return 1 if top == 1 else 255 if top <= 255 else 65535


def _bit_depth_max(mask: np.ndarray) -> int:
    """The largest value a mask image's type holds (a float image: as 16-bit)."""
    return int(np.iinfo(mask.dtype).max) if mask.dtype.kind in "ui" else 65535


def _frame_scale(full: int, bit_depth_max: int) -> int:
    """The full scale a frame is read at: its object's, or its own bit depth's where that is
    lower (an 8-bit frame among 16-bit ones read empty at 65535's half)."""
    return min(full, bit_depth_max)


def _half(scale: int) -> int:
    return (scale + 1) // 2


def _read_label(path: Path) -> np.ndarray:
    """A label image's ids; a palette PNG (DAVIS, YouTube-VOS) gives its palette indices,
    which OpenCV would turn into colours."""
    if path.suffix.lower() == ".png":
        try:
            with _pil_open(path) as image:
                if image.mode == "P":
                    return np.array(image)
        except OSError:  # not readable by PIL either: OpenCV's error below names the file
            pass
    return _imread(path, cv2.IMREAD_UNCHANGED)


def _imread(path: Path, flags: int) -> np.ndarray:
    try:
        with _pil_open(path):  # the header's size checked before OpenCV allocates for it
            pass
    except OSError:  # a format PIL does not know: OpenCV's to read or refuse
        pass
    try:
        image = cv2.imread(str(path), flags)
    except cv2.error:  # a header past OpenCV's own limit (2^30 pixels) raised
        image = None
    if image is None:
        raise InputError(f"cannot read image {path} (corrupt or unsupported format)")
    return image


def _pil_open(path: Path):
    """PIL's lazy open (the header only), refusing an image whose header claims more pixels
    than any camera's: OpenCV allocates up to 2^30 pixels on a header's word (a 1 kB PNG
    claiming 30000 x 30000 took 2.7 GB), and PIL raised its own DecompressionBombError."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # PIL's warning of a large image: refused below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        pixels = None
    else:
        pixels = image.size[0] * image.size[1]
        if pixels <= MAX_DECODED_PIXELS:
            return image
        image.close()
    raise InputError(
        f"image {path} claims {pixels or f'more than {2 * Image.MAX_IMAGE_PIXELS}'} pixels, "
        f"more than any camera's ({MAX_DECODED_PIXELS}); not decoded (a damaged or hostile "
        "file?)"
    )
